//! The soft state the balancer keeps, all of it short-lived and keyed by the branch
//! it gave a request:
//!
//! - each new INVITE forwarded in the last few seconds, so that when the node
//!   answers 503 with Retry-After (it is draining or overloaded) the balancer can
//!   ACK that refusal and send the INVITE to another node instead of failing the
//!   call;
//! - with `share = "least_load"`, the node each new request went to, for as long as
//!   its transaction lives, so that retransmissions, its CANCEL and the ACK of a
//!   failure follow it (with the Call-ID hash they follow by themselves).
//!
//! Losing it (a restart) only means a refusal in that window reaches the phone, or
//! a CANCEL is answered 481 by another node, as it would be without it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long an INVITE is kept for a retry: a node refuses at once or not at all.
pub const KEEP_INVITES: Duration = Duration::from_secs(4);
/// How long a request's node is remembered: an INVITE transaction's lifetime
/// (64 × T1, RFC 3261 Timer B) plus margin.
pub const KEEP_CHOICES: Duration = Duration::from_secs(40);
/// Entries at most per table; past it new ones are not kept.
const MAX: usize = 100_000;
/// Nodes one INVITE may be sent to.
pub const MAX_TRIES: u8 = 3;

#[derive(Debug, Clone)]
pub struct Sent {
    /// The INVITE as it arrived, to forward again.
    pub original: Bytes,
    pub from: super::proxy::Flow,
    /// Request-URI and Route set it went out with, for the ACK of a refusal.
    pub uri: String,
    pub routes: Vec<String>,
    pub tries: u8,
    /// The ACK already sent for a refusal, sent again if the refusal is.
    pub ack: Option<(SocketAddr, Bytes)>,
}

/// A map whose entries expire `keep` after they were first put in.
#[derive(Debug)]
pub struct Window<V> {
    keep: Duration,
    by_key: HashMap<String, V>,
    order: VecDeque<(Instant, String)>,
}

impl<V> Window<V> {
    pub fn new(keep: Duration) -> Window<V> {
        Window {
            keep,
            by_key: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn insert(&mut self, key: String, value: V, now: Instant) {
        self.expire(now);
        if self.by_key.len() >= MAX && !self.by_key.contains_key(&key) {
            return;
        }
        if self.by_key.insert(key.clone(), value).is_none() {
            self.order.push_back((now, key));
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.by_key.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.by_key.get_mut(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.keep {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.by_key.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_for_their_window_only() {
        let t = Instant::now();
        let mut w = Window::new(KEEP_INVITES);
        assert_eq!(w.len(), 0);
        w.insert("b1".into(), 1, t);
        w.insert("b2".into(), 2, t + Duration::from_secs(3));
        assert_eq!(w.get("b1"), Some(&1));
        w.insert("b3".into(), 3, t + Duration::from_secs(5));
        assert!(w.get("b1").is_none());
        assert_eq!(w.get_mut("b2"), Some(&mut 2));
        assert_eq!(w.len(), 2);
    }
}
