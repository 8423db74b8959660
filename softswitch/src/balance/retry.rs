//! The one piece of soft state the balancer keeps: each new INVITE it forwarded in
//! the last few seconds, so that when the node answers 503 with Retry-After (it is
//! draining or overloaded) the balancer can ACK that refusal and send the INVITE to
//! another node instead of failing the call. Losing this table (a restart) only
//! means a refusal in that window reaches the phone, as it would without it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long an INVITE is kept: a node refuses at once or not at all.
const KEEP: Duration = Duration::from_secs(4);
/// Entries at most (about 4 s of 25,000 calls/s); past it new INVITEs are not kept.
const MAX: usize = 100_000;
/// Nodes one INVITE may be sent to.
pub const MAX_TRIES: u8 = 3;

#[derive(Debug, Clone)]
pub struct Sent {
    /// The INVITE as it arrived, to forward again.
    pub original: Bytes,
    pub from: SocketAddr,
    /// Request-URI and Route set it went out with, for the ACK of a refusal.
    pub uri: String,
    pub routes: Vec<String>,
    pub tries: u8,
    /// The ACK already sent for a refusal, sent again if the refusal is.
    pub ack: Option<(SocketAddr, Bytes)>,
}

#[derive(Debug, Default)]
pub struct Retries {
    by_branch: HashMap<String, Sent>,
    order: VecDeque<(Instant, String)>,
}

impl Retries {
    /// Keeps a forwarded INVITE under the branch the balancer gave it.
    pub fn remember(&mut self, branch: String, sent: Sent, now: Instant) {
        self.expire(now);
        if self.by_branch.len() >= MAX && !self.by_branch.contains_key(&branch) {
            return;
        }
        if self.by_branch.insert(branch.clone(), sent).is_none() {
            self.order.push_back((now, branch));
        }
    }

    pub fn get_mut(&mut self, branch: &str) -> Option<&mut Sent> {
        self.by_branch.get_mut(branch)
    }

    pub fn len(&self) -> usize {
        self.by_branch.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < KEEP {
                break;
            }
            if let Some((_, branch)) = self.order.pop_front() {
                self.by_branch.remove(&branch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> Sent {
        Sent {
            original: Bytes::from_static(b"INVITE"),
            from: "127.0.0.5:5070".parse().unwrap(),
            uri: "sip:1002@pbx".into(),
            routes: vec![],
            tries: 1,
            ack: None,
        }
    }

    #[test]
    fn invites_are_kept_for_a_few_seconds_only() {
        let t = Instant::now();
        let mut r = Retries::default();
        assert_eq!(r.len(), 0);
        r.remember("b1".into(), sent(), t);
        r.remember("b2".into(), sent(), t + Duration::from_secs(3));
        assert!(r.get_mut("b1").is_some());
        r.remember("b3".into(), sent(), t + Duration::from_secs(5));
        assert!(r.get_mut("b1").is_none());
        assert!(r.get_mut("b2").is_some());
        assert_eq!(r.len(), 2);
    }
}
