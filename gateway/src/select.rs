//! The hunt list: which dial peers a called number tries, in which order, and
//! why — Cisco's hunt scheme 0 (most specific pattern, then lowest
//! `preference`), with ties shared among equal peers.
//!
//! Sans-IO: the caller hands in the peers with their health and the live-call
//! counts; nothing here keeps state between calls except what `Share` names.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use crate::pattern::{Match, Pattern};

/// How calls are shared among peers with the same pattern and preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Share {
    /// Rendezvous hash of the Call-ID: one call always lands on the same peer,
    /// and a failed peer's calls are the only ones that move.
    #[default]
    Hash,
    /// The peer with the fewest calls in progress through this node.
    LeastActive,
    /// In turn, by a counter the caller keeps per tie group.
    RoundRobin,
}

impl Share {
    pub fn parse(s: &str) -> Option<Share> {
        Some(match s {
            "hash" => Share::Hash,
            "least_active" => Share::LeastActive,
            "round_robin" => Share::RoundRobin,
            _ => return None,
        })
    }
}

/// Whether a peer takes new calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Usable,
    /// A failure was seen and a probe is confirming it: still tried, but after
    /// its equal peers, so calls do not queue up behind a peer that is
    /// probably dead.
    Suspect,
    /// Down, draining (503 Retry-After) or disabled by the operator.
    Skipped(&'static str),
}

/// One configured peer as selection sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub tag: u32,
    pub pattern: Pattern,
    pub preference: u8,
    pub availability: Availability,
    /// Calls in progress through this peer (for `least_active`).
    pub active: u32,
}

/// A peer in the hunt list, with what put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub tag: u32,
    pub pattern: String,
    pub preference: u8,
    /// Literal digits the pattern matched.
    pub literals: usize,
    /// Why it sits where it does (for `--explain`).
    pub reason: String,
}

/// What selection found for one number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HuntList {
    /// To be tried in this order.
    pub order: Vec<Candidate>,
    /// Peers whose pattern matched but that take no calls now, with why.
    pub skipped: Vec<(u32, String)>,
}

/// The peers `number` would try. `call_id` drives `Share::Hash`; `turn` is the
/// caller's round-robin counter.
pub fn hunt_list(peers: &[Peer], number: &str, call_id: &str, share: Share, turn: u64) -> HuntList {
    let mut hits: Vec<(&Peer, Match)> = Vec::new();
    let mut out = HuntList::default();
    for p in peers {
        let Some(m) = p.pattern.matches(number) else {
            continue;
        };
        match p.availability {
            Availability::Usable | Availability::Suspect => hits.push((p, m)),
            Availability::Skipped(why) => out.skipped.push((p.tag, why.to_string())),
        }
    }
    hits.sort_by(|(a, ma), (b, mb)| {
        ma.rank(mb)
            .then(a.preference.cmp(&b.preference))
            .then(a.tag.cmp(&b.tag))
    });
    // Tie groups: same specificity and preference.
    let mut i = 0;
    while i < hits.len() {
        let mut j = i + 1;
        while j < hits.len()
            && hits[j].1.rank(&hits[i].1) == Ordering::Equal
            && hits[j].0.preference == hits[i].0.preference
        {
            j += 1;
        }
        let group = &mut hits[i..j];
        let tie = group.len() > 1;
        match share {
            Share::Hash => {
                group.sort_by_key(|(p, _)| std::cmp::Reverse(rendezvous(call_id, p.tag)))
            }
            Share::LeastActive => group.sort_by_key(|(p, _)| (p.active, p.tag)),
            Share::RoundRobin => {
                let k = (turn % group.len() as u64) as usize;
                group.rotate_left(k);
            }
        }
        // Stable: the share order stands among the healthy and among the suspect.
        group.sort_by_key(|(p, _)| p.availability == Availability::Suspect);
        for (rank_in_group, (p, m)) in group.iter().enumerate() {
            let mut reason = format!(
                "pattern {} matches {} literal digit{}",
                p.pattern,
                m.literals(),
                if m.literals() == 1 { "" } else { "s" }
            );
            if !m.whole {
                reason.push_str(&format!(
                    " (variable length: {} more digit(s) travel on)",
                    number.len() - m.consumed
                ));
            }
            reason.push_str(&format!(", preference {}", p.preference));
            if p.availability == Availability::Suspect {
                reason.push_str(", suspect (tried after equal peers)");
            }
            if tie {
                let how = match share {
                    Share::Hash => "Call-ID hash",
                    Share::LeastActive => "fewest active calls",
                    Share::RoundRobin => "round robin",
                };
                reason.push_str(&format!(
                    "; shares with {} equal peer(s), {} by {how}",
                    group.len() - 1,
                    ordinal(rank_in_group + 1)
                ));
            }
            out.order.push(Candidate {
                tag: p.tag,
                pattern: p.pattern.to_string(),
                preference: p.preference,
                literals: m.literals(),
                reason,
            });
        }
        i = j;
    }
    out
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, r) if r != 11 => "st",
        (2, r) if r != 12 => "nd",
        (3, r) if r != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Highest-random-weight score of a peer for a call (FNV-1a over both): stable
/// across nodes and restarts, unlike the standard library's seeded hasher.
fn rendezvous(call_id: &str, tag: u32) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100000001b3);
            }
        }
    }
    let mut h = Fnv(0xcbf29ce484222325);
    call_id.hash(&mut h);
    tag.hash(&mut h);
    // A final mix so that close tags do not give close scores.
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(tag: u32, pattern: &str, preference: u8) -> Peer {
        Peer {
            tag,
            pattern: Pattern::parse(pattern).unwrap(),
            preference,
            availability: Availability::Usable,
            active: 0,
        }
    }

    fn tags(list: &HuntList) -> Vec<u32> {
        list.order.iter().map(|c| c.tag).collect()
    }

    #[test]
    fn most_specific_pattern_then_lowest_preference() {
        let peers = [
            peer(1, "2...", 0),
            peer(2, "200.", 5),
            peer(3, "200.", 1),
            peer(4, "3...", 0),
        ];
        let list = hunt_list(&peers, "2001", "c1", Share::Hash, 0);
        assert_eq!(tags(&list), [3, 2, 1]);
        assert!(
            list.order[0].reason.contains("3 literal digits"),
            "{:?}",
            list.order[0]
        );
        assert!(
            list.order[2].reason.contains("1 literal digit,"),
            "{:?}",
            list.order[2]
        );
    }

    #[test]
    fn peers_that_take_no_calls_are_skipped_and_said_so() {
        let mut down = peer(2, "22.", 0);
        down.availability = Availability::Skipped("down");
        let peers = [peer(1, "22.", 1), down];
        let list = hunt_list(&peers, "221", "c", Share::Hash, 0);
        assert_eq!(tags(&list), [1]);
        assert_eq!(list.skipped, [(2, "down".to_string())]);
    }

    #[test]
    fn equal_peers_share_calls_by_call_id_hash() {
        let peers = [peer(1, "22.", 0), peer(2, "22.", 0), peer(3, "22.", 0)];
        let mut first = [0u32; 4];
        for n in 0..3000 {
            let call_id = format!("call-{n}@host");
            let list = hunt_list(&peers, "221", &call_id, Share::Hash, 0);
            assert_eq!(list.order.len(), 3);
            // The same call always gets the same order (retransmissions, CANCEL).
            assert_eq!(list, hunt_list(&peers, "221", &call_id, Share::Hash, 0));
            first[list.order[0].tag as usize] += 1;
        }
        for (tag, count) in first.iter().enumerate().skip(1) {
            assert!(
                (800..1200).contains(count),
                "peer {tag} first for {count} of 3000"
            );
        }
        // Losing a peer moves only its calls.
        let without_3 = &peers[..2];
        for n in 0..500 {
            let call_id = format!("call-{n}@host");
            let before = hunt_list(&peers, "221", &call_id, Share::Hash, 0).order[0].tag;
            let after = hunt_list(without_3, "221", &call_id, Share::Hash, 0).order[0].tag;
            if before != 3 {
                assert_eq!(before, after, "{call_id} moved though its peer stayed");
            }
        }
    }

    #[test]
    fn least_active_and_round_robin() {
        let mut busy = peer(1, "22.", 0);
        busy.active = 9;
        let peers = [busy, peer(2, "22.", 0)];
        assert_eq!(
            tags(&hunt_list(&peers, "221", "x", Share::LeastActive, 0)),
            [2, 1]
        );
        let peers = [peer(1, "22.", 0), peer(2, "22.", 0), peer(3, "22.", 0)];
        assert_eq!(
            tags(&hunt_list(&peers, "221", "x", Share::RoundRobin, 1)),
            [2, 3, 1]
        );
        let list = hunt_list(&peers, "221", "x", Share::RoundRobin, 1);
        assert!(
            list.order[1].reason.contains("2nd by round robin"),
            "{:?}",
            list.order[1]
        );
    }

    #[test]
    fn no_matching_peer_gives_an_empty_list() {
        let peers = [peer(1, "22.$", 0)];
        assert!(
            hunt_list(&peers, "2217", "c", Share::Hash, 0)
                .order
                .is_empty()
        );
    }

    #[test]
    fn a_suspect_peer_goes_after_its_equal_peers_but_is_still_tried() {
        let mut peers = vec![peer(1, "2...", 0), peer(2, "2...", 0), peer(3, "2...", 1)];
        // Find a Call-ID whose hash puts peer 1 first, then make peer 1 suspect.
        let call_id = (0..100)
            .map(|n| format!("c{n}"))
            .find(|c| hunt_list(&peers, "2001", c, Share::Hash, 0).order[0].tag == 1)
            .unwrap();
        peers[0].availability = Availability::Suspect;
        let list = hunt_list(&peers, "2001", &call_id, Share::Hash, 0);
        let tags: Vec<u32> = list.order.iter().map(|c| c.tag).collect();
        assert_eq!(
            tags,
            [2, 1, 3],
            "behind its equal, ahead of a worse preference"
        );
        assert!(list.order[1].reason.contains("suspect"));
    }
}
