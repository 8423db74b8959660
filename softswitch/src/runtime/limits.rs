//! The process's file descriptor limit. Every call in progress holds four relay
//! sockets, and a busy relay keeps finished calls' sockets open for a few seconds
//! (see `media::relay`), so the usual soft limit of 1,024 would cap a switch at
//! a couple of hundred calls. The hard limit is the administrator's ceiling; like
//! most servers, the switch raises its soft limit to it at start.

/// Raises the soft limit on open files to the hard limit, and warns when even
/// that is short of what `sockets` relay sockets plus the SIP side need.
pub fn raise_open_files(sockets: usize) {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::debug!(
                from = limit.rlim_cur,
                to = raised.rlim_cur,
                "raised the open files limit"
            );
            limit = raised;
        }
    }
    // Room for the database, SIP over TCP and the admin API besides the relay.
    let wanted = sockets as u64 + 1024;
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < wanted {
        tracing::warn!(
            limit = limit.rlim_cur,
            wanted,
            "the open files limit is below what the RTP port range can use: \
             raise it (ulimit -n, LimitNOFILE=) or calls will fail with 503 when it runs out"
        );
    }
}
