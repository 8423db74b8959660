//! Symmetric RTP (RFC 4961) with latching: the address a phone announces in SDP is
//! often its private address behind a NAT, so the relay sends to wherever the
//! phone's packets actually come from. Latching to the first source, and moving
//! only after that source has been silent for a while, keeps a stray or spoofed
//! packet from stealing an active stream ("RTP bleed") while still following a
//! phone whose NAT mapping changed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the latched source must be silent before another source may take over.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// What to do with a packet, as decided by [`Latch::on_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// From the latched source.
    Accept,
    /// From a new source, which is now latched.
    Latched,
    /// From another source while the latched one is active: drop it.
    Reject,
}

/// The latch of one relay socket. Sans-IO: the caller passes the time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latch {
    addr: Option<SocketAddr>,
    last_seen: Option<Instant>,
}

impl Latch {
    /// `announced` is the address the phone put in its SDP for this socket, if
    /// known: the signalling vouches for it, so it may always take over.
    pub(crate) fn on_packet(
        &mut self,
        src: SocketAddr,
        announced: Option<SocketAddr>,
        now: Instant,
    ) -> Verdict {
        let verdict = match (self.addr, self.last_seen) {
            (Some(a), _) if a == src => Verdict::Accept,
            (Some(_), Some(seen))
                if Some(src) != announced
                    && now.saturating_duration_since(seen) < RELATCH_AFTER =>
            {
                return Verdict::Reject;
            }
            _ => Verdict::Latched,
        };
        self.addr = Some(src);
        self.last_seen = Some(now);
        verdict
    }

    /// Forgets the source, so the next packet latches (the phone announced a new
    /// address: a re-INVITE after a network change, or a transfer).
    pub(crate) fn reset(&mut self) {
        *self = Latch::default();
    }

    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_source_latches_and_others_are_rejected() {
        let t0 = Instant::now();
        let mut l = Latch::default();
        assert_eq!(l.on_packet(sa("1.1.1.1:5000"), None, t0), Verdict::Latched);
        assert_eq!(l.on_packet(sa("1.1.1.1:5000"), None, t0), Verdict::Accept);
        let later = t0 + Duration::from_millis(1900);
        assert_eq!(
            l.on_packet(sa("6.6.6.6:5000"), None, later),
            Verdict::Reject
        );
        assert_eq!(l.addr(), Some(sa("1.1.1.1:5000")));
    }

    #[test]
    fn silence_lets_a_new_source_take_over() {
        let t0 = Instant::now();
        let mut l = Latch::default();
        l.on_packet(sa("1.1.1.1:5000"), None, t0);
        // Rejected packets do not refresh the old source's last-seen time.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(l.on_packet(sa("2.2.2.2:6000"), None, t1), Verdict::Reject);
        let t2 = t0 + RELATCH_AFTER;
        assert_eq!(l.on_packet(sa("2.2.2.2:6000"), None, t2), Verdict::Latched);
        assert_eq!(l.addr(), Some(sa("2.2.2.2:6000")));
        // And now the old one is the stranger.
        assert_eq!(l.on_packet(sa("1.1.1.1:5000"), None, t2), Verdict::Reject);
    }

    #[test]
    fn announced_address_always_wins() {
        let t0 = Instant::now();
        let mut l = Latch::default();
        l.on_packet(sa("203.0.113.5:40000"), None, t0);
        let announced = Some(sa("10.0.0.5:7078"));
        assert_eq!(
            l.on_packet(sa("10.0.0.5:7078"), announced, t0),
            Verdict::Latched
        );
        assert_eq!(l.addr(), announced);
    }

    #[test]
    fn reset_relatches_at_once() {
        let t0 = Instant::now();
        let mut l = Latch::default();
        l.on_packet(sa("1.1.1.1:5000"), None, t0);
        l.reset();
        assert_eq!(l.addr(), None);
        assert_eq!(l.on_packet(sa("2.2.2.2:5000"), None, t0), Verdict::Latched);
    }
}
