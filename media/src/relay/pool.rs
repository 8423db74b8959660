//! The port range, as pairs of an even RTP port and the RTCP port above it
//! (RFC 3550 §11: RTP on an even port, RTCP on the next odd one, which is what a
//! phone that ignores a=rtcp assumes).
//!
//! Allocation walks the range round-robin from where the last one stopped instead
//! of taking the lowest free pair: a port freed by a call that just ended may still
//! receive that call's stragglers, and those should not land in the next call.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};

use socket2::{Domain, Protocol, Socket, Type};

/// Kernel socket buffers we ask for. A burst (a paused VM, a GC pause upstream)
/// must not overflow the default ~200 KiB; the kernel caps this at
/// net.core.rmem_max/wmem_max anyway, so asking costs nothing on small systems.
const SOCKET_BUFFER: usize = 1 << 20;
/// DSCP EF (46), the class for voice (RFC 4594 §4.2), in the TOS byte.
const TOS_EF: u32 = 46 << 2;

/// Which pairs of the range are taken. Plain data; the caller holds it in a Mutex
/// that only allocation and release touch.
#[derive(Debug)]
pub(crate) struct PortPool {
    first: u16,
    in_use: Vec<bool>,
    count: usize,
    next: usize,
}

impl PortPool {
    pub(crate) fn new(ports: &RangeInclusive<u16>) -> PortPool {
        let start = u32::from(*ports.start());
        let end = u32::from(*ports.end());
        let first = start + (start & 1);
        let pairs = if end > first {
            ((end - first - 1) / 2 + 1) as usize
        } else {
            0
        };
        PortPool {
            first: first.min(u32::from(u16::MAX)) as u16,
            in_use: vec![false; pairs],
            count: 0,
            next: 0,
        }
    }

    /// Number of pairs in the range.
    pub(crate) fn capacity(&self) -> usize {
        self.in_use.len()
    }

    /// Number of pairs taken.
    pub(crate) fn in_use(&self) -> usize {
        self.count
    }

    /// The RTP port of pair `index`.
    pub(crate) fn port(&self, index: usize) -> u16 {
        self.first + 2 * index as u16
    }

    /// The first free pair at or after the `k`-th position from `start` in
    /// round-robin order, with its position; stops after one lap.
    pub(crate) fn free_from(&self, start: usize, k: usize) -> Option<(usize, usize)> {
        let n = self.in_use.len();
        (k..n)
            .map(|k| (k, (start + k) % n))
            .find(|&(_, i)| !self.in_use[i])
    }

    /// Where the round-robin walk starts.
    pub(crate) fn cursor(&self) -> usize {
        self.next
    }

    pub(crate) fn take(&mut self, index: usize) {
        debug_assert!(!self.in_use[index]);
        self.in_use[index] = true;
        self.count += 1;
        self.next = (index + 1) % self.in_use.len();
    }

    pub(crate) fn release(&mut self, index: usize) {
        if std::mem::replace(&mut self.in_use[index], false) {
            self.count -= 1;
        }
    }
}

/// Locks the pool even if a panicking thread poisoned it: the pool is a bitmap
/// that every operation leaves consistent.
pub(crate) fn lock(pool: &Mutex<PortPool>) -> MutexGuard<'_, PortPool> {
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ports held by one session. Dropping it returns them, which happens when the
/// relay task (which owns this lease after its sockets) is dropped, so a port is
/// never handed out while its socket is still open.
#[derive(Debug)]
pub(crate) struct PortLease {
    pool: Arc<Mutex<PortPool>>,
    pairs: Vec<usize>,
}

impl PortLease {
    pub(crate) fn new(pool: Arc<Mutex<PortPool>>) -> PortLease {
        PortLease {
            pool,
            pairs: Vec::with_capacity(2),
        }
    }

    /// Records a pair already marked taken in the pool.
    pub(crate) fn push(&mut self, index: usize) {
        self.pairs.push(index);
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut pool = lock(&self.pool);
        for &i in &self.pairs {
            pool.release(i);
        }
    }
}

/// Whether a bind failure means "this pair is not available, try the next" rather
/// than "this relay cannot bind at all".
pub(crate) fn skippable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
    )
}

/// Binds a non-blocking UDP socket for media.
pub(crate) fn bind(ip: IpAddr, port: u16) -> io::Result<std::net::UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Tuning is best effort: a relay that cannot set DSCP or big buffers still relays.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    match ip {
        IpAddr::V4(_) => {
            let _ = socket.set_tos_v4(TOS_EF);
        }
        IpAddr::V6(_) => {
            #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
            let _ = socket.set_tclass_v6(TOS_EF);
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds the RTP socket on `port` and the RTCP socket on `port + 1`.
pub(crate) fn bind_pair(
    ip: IpAddr,
    port: u16,
) -> io::Result<(std::net::UdpSocket, std::net::UdpSocket)> {
    let rtp = bind(ip, port)?;
    let rtcp = bind(ip, port + 1)?;
    Ok((rtp, rtcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_start_even_and_fit_the_range() {
        let p = PortPool::new(&(30001..=30010));
        assert_eq!(p.capacity(), 4); // 30002/3 .. 30008/9; 30010 has no partner
        assert_eq!(p.port(0), 30002);
        assert_eq!(p.port(3), 30008);
        assert_eq!(PortPool::new(&(30000..=30001)).capacity(), 1);
        assert_eq!(PortPool::new(&(30000..=30000)).capacity(), 0);
        assert_eq!(PortPool::new(&(30001..=30002)).capacity(), 0);
        assert_eq!(
            PortPool::new(&RangeInclusive::new(30010, 30000)).capacity(),
            0
        );
        let top = PortPool::new(&(65534..=65535));
        assert_eq!((top.capacity(), top.port(0)), (1, 65534));
        assert_eq!(PortPool::new(&(65535..=65535)).capacity(), 0);
    }

    /// Every free pair in the order allocation visits them.
    fn free(p: &PortPool) -> Vec<usize> {
        let start = p.cursor();
        let mut out = Vec::new();
        let mut k = 0;
        while let Some((at, index)) = p.free_from(start, k) {
            out.push(index);
            k = at + 1;
        }
        out
    }

    #[test]
    fn round_robin_and_release() {
        let mut p = PortPool::new(&(30000..=30007));
        assert_eq!(free(&p), [0, 1, 2, 3]);
        p.take(0);
        p.take(1);
        assert_eq!(p.in_use(), 2);
        assert_eq!(free(&p), [2, 3]);
        p.release(0);
        // The freed pair comes last.
        assert_eq!(free(&p), [2, 3, 0]);
        p.release(0);
        assert_eq!(p.in_use(), 1);
    }

    #[test]
    fn lease_returns_pairs_on_drop() {
        let pool = Arc::new(Mutex::new(PortPool::new(&(30000..=30007))));
        let mut lease = PortLease::new(pool.clone());
        for i in [1, 2] {
            lock(&pool).take(i);
            lease.push(i);
        }
        assert_eq!(lock(&pool).in_use(), 2);
        drop(lease);
        assert_eq!(lock(&pool).in_use(), 0);
    }
}
