//! Pointing an SDP at the relay.
//!
//! Only transport addresses change; everything else (codecs, fmtp, crypto, bandwidth,
//! unknown attributes, line order) passes through so that the two phones negotiate
//! with each other exactly as if they were talking directly. The exceptions, each
//! for a reason:
//!
//! - ICE lines are dropped: their candidates name the phone, so the other phone would
//!   run connectivity checks past the relay (and might succeed, bypassing it). Without
//!   them both phones fall back to plain RTP to the c=/m= address (RFC 8445 §5.1.1.1
//!   doesn't apply to a peer that offers no ICE).
//! - An RFC 2543 hold (`c=0.0.0.0`) becomes the relay address plus an explicit
//!   `a=sendonly`/`a=inactive` (RFC 3264 §8.4), since the relay address is not
//!   "unspecified" and the hold would otherwise be lost.
//! - Streams the caller leaves alone keep their own address: if they relied on the
//!   session-level c= that we rewrite, they get a media-level copy of the original.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use super::{Direction, Sdp, attribute};

/// What to do with one m= line in [`Sdp::rewrite_anchors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Leave the stream as the phone wrote it (minus ICE lines).
    Keep,
    /// Point the stream at this relay RTP address (RTCP at port + 1).
    Relay(SocketAddr),
    /// Disable the stream: port 0 (RFC 3264 §6 for answers, §8.2 for offers).
    Reject,
}

impl Sdp {
    /// The SDP with every stream pointed at the relay: `streams[i]` is the relay's RTP
    /// address for m-line i (None = leave that m-line as is, or port 0 stays 0).
    /// Rewrites session- and media-level c= (IP4/IP6 per the address), the m= port,
    /// a=rtcp:PORT [IN IP4 addr] to relay_rtp.port()+1 (and its address), keeps
    /// a=rtcp-mux, drops ICE lines (a=candidate, a=ice-ufrag, a=ice-pwd, a=ice-options,
    /// a=end-of-candidates, a=remote-candidates), rewrites o= address and increments
    /// nothing else; `version` is the o= session version to write (the caller bumps it
    /// on every new offer/answer it sends on a leg). Output uses \r\n line ends.
    ///
    /// Entries missing at the end of `streams` count as `None`.
    pub fn rewrite(&self, streams: &[Option<SocketAddr>], version: u64) -> String {
        let anchors: Vec<Anchor> = streams
            .iter()
            .map(|s| s.map_or(Anchor::Keep, Anchor::Relay))
            .collect();
        self.rewrite_anchors(&anchors, version)
    }

    /// [`Sdp::rewrite`] with the choice to disable streams too (for example the video
    /// stream of a call whose relay session carries only audio). Entries missing at
    /// the end of `anchors` count as [`Anchor::Keep`].
    pub fn rewrite_anchors(&self, anchors: &[Anchor], version: u64) -> String {
        let anchor = |i: usize| match anchors.get(i).copied().unwrap_or(Anchor::Keep) {
            // A rejected stream stays rejected: there is nothing to anchor.
            Anchor::Relay(_) if self.media[i].port == 0 => Anchor::Keep,
            a => a,
        };
        let relay_ip = (0..self.media.len()).find_map(|i| match anchor(i) {
            Anchor::Relay(a) => Some(a.ip()),
            _ => None,
        });
        // The session-level c= as we write it.
        let session_ip = match (self.session_conn, relay_ip) {
            (Some(_), Some(ip)) => Some(ip),
            (original, _) => original,
        };
        let session_changed = session_ip != self.session_conn;

        let mut out = String::with_capacity(self.lines.iter().map(|l| l.len() + 2).sum());
        let session_end = self.sections.first().map_or(self.lines.len(), |s| s.start);
        for line in &self.lines[..session_end] {
            match line.as_bytes()[0] {
                b'o' => push(&mut out, &origin(line, relay_ip, version)),
                b'c' => match session_ip.filter(|_| session_changed) {
                    Some(ip) => push_conn(&mut out, ip),
                    None => push(&mut out, line),
                },
                b'a' if is_ice(line) => {}
                _ => push(&mut out, line),
            }
        }

        for (i, section) in self.sections.iter().enumerate() {
            let lines = &self.lines[section.start..section.end];
            let info = &self.media[i];
            let anchor = anchor(i);
            let target = match anchor {
                Anchor::Relay(a) => Some(a),
                _ => None,
            };
            // A media-level c= to insert when the stream has none of its own and the
            // session-level one no longer says the right thing.
            let mut missing_conn = match anchor {
                Anchor::Relay(a) if !section.has_conn && session_ip != Some(a.ip()) => Some(a.ip()),
                Anchor::Keep if !section.has_conn && info.port != 0 && session_changed => {
                    self.session_conn
                }
                _ => None,
            };
            let rehold = target.is_some() && section.held_by_address;
            let mut wrote_conn = false;

            match anchor {
                Anchor::Relay(a) => push(&mut out, &media_line(&lines[0], a.port())),
                Anchor::Reject => push(&mut out, &media_line(&lines[0], 0)),
                Anchor::Keep => push(&mut out, &lines[0]),
            }
            for line in &lines[1..] {
                let kind = line.as_bytes()[0];
                // RFC 8866 §5 order is m=, i=, c=: put an inserted c= after any i=.
                if kind != b'i'
                    && let Some(ip) = missing_conn.take()
                {
                    push_conn(&mut out, ip);
                }
                match (kind, target) {
                    (b'c', Some(a)) => {
                        // Multicast layering aside (not relayed), one c= is enough.
                        if !wrote_conn {
                            push_conn(&mut out, a.ip());
                            wrote_conn = true;
                        }
                    }
                    (b'a', _) if is_ice(line) => {}
                    (b'a', Some(a)) if attribute(line).0 == "rtcp" => {
                        push(&mut out, &rtcp_line(line, a));
                    }
                    (b'a', Some(_))
                        if rehold && Direction::from_attr(attribute(line).0).is_some() => {}
                    _ => push(&mut out, line),
                }
            }
            if let Some(ip) = missing_conn {
                push_conn(&mut out, ip);
            }
            if rehold {
                let _ = write!(out, "a={}\r\n", info.direction);
            }
        }
        out
    }
}

fn push(out: &mut String, line: &str) {
    out.push_str(line);
    out.push_str("\r\n");
}

fn push_conn(out: &mut String, ip: IpAddr) {
    let _ = write!(out, "c=IN {} {ip}\r\n", family(ip));
}

fn family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// RFC 8445 §15 and RFC 8840 attributes; `ice-lite`, `ice-mismatch` and
/// `ice-pacing` share the prefix.
fn is_ice(line: &str) -> bool {
    let name = attribute(line).0;
    name == "candidate"
        || name == "end-of-candidates"
        || name == "remote-candidates"
        || name.starts_with("ice-")
}

/// `o=` with the given session version and, when anchoring, the relay address.
/// Parsing checked the six fields.
fn origin(line: &str, relay_ip: Option<IpAddr>, version: u64) -> String {
    let f: Vec<&str> = line[2..].split_whitespace().collect();
    match relay_ip {
        Some(ip) => format!("o={} {} {version} {} {} {ip}", f[0], f[1], f[3], family(ip)),
        None => format!("o={} {} {version} {} {} {}", f[0], f[1], f[3], f[4], f[5]),
    }
}

/// The m= line with another port. A `/<count>` suffix is dropped: the relay gives
/// each stream one port pair.
fn media_line(line: &str, port: u16) -> String {
    let mut fields = line[2..].split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let _old_port = fields.next();
    let mut out = format!("m={kind} {port}");
    for f in fields {
        out.push(' ');
        out.push_str(f);
    }
    out
}

/// RFC 3605 `a=rtcp:` at the relay's RTCP port, with an address only when the
/// original had one.
fn rtcp_line(line: &str, relay: SocketAddr) -> String {
    let with_addr = attribute(line)
        .1
        .is_some_and(|v| v.split_whitespace().count() > 1);
    let port = relay.port().wrapping_add(1);
    if with_addr {
        format!("a=rtcp:{port} IN {} {}", family(relay.ip()), relay.ip())
    } else {
        format!("a=rtcp:{port}")
    }
}
