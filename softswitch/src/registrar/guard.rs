//! Brute-force protection per source address. Failed authentications (credentials
//! present and wrong, or for an unknown user) are counted in a sliding window; past
//! `throttle_after` the address may try one password per second (requests carrying
//! credentials beyond that are dropped; plain requests are still answered), past
//! `ban_after` it is banned and every packet from it is dropped unanswered until the
//! ban ends. A
//! challenge, a stale nonce or a correct answer is never a failure, so working phones
//! are never banned; a success clears the address's record.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{SecurityConfig, parse_network};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allow,
    /// Throttled and over its one-per-second allowance, or banned.
    Drop,
}

/// A change worth logging and alerting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardEvent {
    Throttled {
        ip: IpAddr,
        failures: u32,
    },
    Banned {
        ip: IpAddr,
        failures: u32,
        for_secs: u64,
    },
}

#[derive(Debug, Default)]
struct Record {
    failures: VecDeque<Instant>,
    banned_until: Option<Instant>,
    last_allowed: Option<Instant>,
}

#[derive(Debug)]
pub struct Guard {
    throttle_after: u32,
    ban_after: u32,
    window: Duration,
    ban_time: Duration,
    trusted: Vec<(IpAddr, u8)>,
    shards: Vec<Mutex<HashMap<IpAddr, Record>>>,
}

impl Guard {
    pub fn new(cfg: &SecurityConfig) -> Guard {
        Guard {
            throttle_after: cfg.throttle_after.max(1),
            ban_after: cfg.ban_after.max(1),
            window: Duration::from_secs(cfg.failure_window),
            ban_time: Duration::from_secs(cfg.ban_time),
            trusted: cfg
                .trusted
                .iter()
                .filter_map(|t| parse_network(t))
                .collect(),
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, Record>> {
        let h = match ip {
            IpAddr::V4(a) => u32::from(*a) as usize,
            IpAddr::V6(a) => u128::from(*a) as usize,
        };
        &self.shards[h % self.shards.len()]
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted
            .iter()
            .any(|(net, len)| in_network(ip, *net, *len))
    }

    /// Checked for every packet before any work is done on it: drops banned sources.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admission {
        let mut map = self.shard(&ip).lock().expect("guard lock");
        let Some(rec) = map.get_mut(&ip) else {
            return Admission::Allow;
        };
        if let Some(until) = rec.banned_until {
            if now < until {
                return Admission::Drop;
            }
            rec.banned_until = None;
            rec.failures.clear();
        }
        Admission::Allow
    }

    /// Checked for requests that carry credentials: a throttled source gets one guess a
    /// second.
    pub fn admit_attempt(&self, ip: IpAddr, now: Instant) -> Admission {
        let mut map = self.shard(&ip).lock().expect("guard lock");
        let Some(rec) = map.get_mut(&ip) else {
            return Admission::Allow;
        };
        prune(&mut rec.failures, now, self.window);
        if rec.failures.len() as u32 >= self.throttle_after {
            if rec
                .last_allowed
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
            {
                return Admission::Drop;
            }
            rec.last_allowed = Some(now);
        }
        Admission::Allow
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) -> Option<GuardEvent> {
        crate::metrics::metrics().auth_failures.inc();
        if self.is_trusted(ip) {
            return None;
        }
        let mut map = self.shard(&ip).lock().expect("guard lock");
        let rec = map.entry(ip).or_default();
        prune(&mut rec.failures, now, self.window);
        rec.failures.push_back(now);
        let failures = rec.failures.len() as u32;
        if failures >= self.ban_after && rec.banned_until.is_none() {
            rec.banned_until = Some(now + self.ban_time);
            crate::metrics::metrics().bans.inc();
            crate::events::events().emit(
                "ban",
                format!("{ip} banned for {} s after {failures} failed logins", self.ban_time.as_secs()),
                serde_json::json!({ "address": ip.to_string(), "failures": failures, "for_secs": self.ban_time.as_secs() }),
            );
            return Some(GuardEvent::Banned {
                ip,
                failures,
                for_secs: self.ban_time.as_secs(),
            });
        }
        if failures == self.throttle_after {
            crate::events::events().emit(
                "registration_flood",
                format!("{ip} throttled after {failures} failed logins"),
                serde_json::json!({ "address": ip.to_string(), "failures": failures }),
            );
        }
        (failures == self.throttle_after).then_some(GuardEvent::Throttled { ip, failures })
    }

    pub fn record_success(&self, ip: IpAddr) {
        let mut map = self.shard(&ip).lock().expect("guard lock");
        if map.get(&ip).is_some_and(|r| r.banned_until.is_none()) {
            map.remove(&ip);
        }
    }

    /// Lifts a ban (and forgets the address's failures). False when it was not
    /// banned.
    pub fn lift(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.shard(&ip).lock().expect("guard lock");
        let banned = map
            .get(&ip)
            .and_then(|r| r.banned_until)
            .is_some_and(|until| until > now);
        if banned {
            map.remove(&ip);
        }
        banned
    }

    /// Addresses banned now, with the time left.
    pub fn bans(&self, now: Instant) -> Vec<(IpAddr, Duration)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for (ip, rec) in shard.lock().expect("guard lock").iter() {
                if let Some(until) = rec.banned_until.filter(|u| *u > now) {
                    out.push((*ip, until - now));
                }
            }
        }
        out
    }

    /// Forgets quiet addresses so the table does not grow without bound.
    pub fn sweep(&self, now: Instant) {
        for shard in &self.shards {
            shard.lock().expect("guard lock").retain(|_, rec| {
                prune(&mut rec.failures, now, self.window);
                rec.banned_until.is_some_and(|u| u > now) || !rec.failures.is_empty()
            });
        }
    }
}

fn prune(failures: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while failures
        .front()
        .is_some_and(|t| now.duration_since(*t) > window)
    {
        failures.pop_front();
    }
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(trusted: Vec<String>) -> Guard {
        Guard::new(&SecurityConfig {
            throttle_after: 3,
            ban_after: 5,
            failure_window: 60,
            ban_time: 600,
            trusted,
        })
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 66));

    #[test]
    fn failures_throttle_then_ban_then_expire() {
        let g = guard(vec![]);
        let t0 = Instant::now();
        assert_eq!(g.record_failure(IP, t0), None);
        assert_eq!(g.record_failure(IP, t0), None);
        assert_eq!(
            g.record_failure(IP, t0),
            Some(GuardEvent::Throttled {
                ip: IP,
                failures: 3
            })
        );
        // Throttled: one guess per second gets through; plain requests all do.
        assert_eq!(g.admit_attempt(IP, t0), Admission::Allow);
        assert_eq!(
            g.admit_attempt(IP, t0 + Duration::from_millis(500)),
            Admission::Drop
        );
        assert_eq!(
            g.admit(IP, t0 + Duration::from_millis(500)),
            Admission::Allow
        );
        assert_eq!(
            g.admit_attempt(IP, t0 + Duration::from_millis(1000)),
            Admission::Allow
        );
        assert_eq!(g.record_failure(IP, t0), None);
        assert!(matches!(
            g.record_failure(IP, t0),
            Some(GuardEvent::Banned { failures: 5, .. })
        ));
        assert_eq!(g.admit(IP, t0 + Duration::from_secs(2)), Admission::Drop);
        assert_eq!(g.bans(t0 + Duration::from_secs(2)).len(), 1);
        assert_eq!(
            g.admit(IP, t0 + Duration::from_secs(601)),
            Admission::Allow,
            "ban over"
        );
        assert_eq!(
            g.admit(IP, t0 + Duration::from_secs(602)),
            Admission::Allow,
            "record cleared"
        );
    }

    #[test]
    fn success_clears_and_old_failures_leave_the_window() {
        let g = guard(vec![]);
        let t0 = Instant::now();
        g.record_failure(IP, t0);
        g.record_failure(IP, t0);
        g.record_success(IP);
        assert_eq!(g.record_failure(IP, t0), None);
        assert_eq!(g.record_failure(IP, t0 + Duration::from_secs(61)), None);
        assert_eq!(
            g.record_failure(IP, t0 + Duration::from_secs(62)),
            None,
            "first one aged out"
        );
        g.sweep(t0 + Duration::from_secs(200));
        assert_eq!(g.admit(IP, t0 + Duration::from_secs(200)), Admission::Allow);
    }

    #[test]
    fn trusted_networks_are_never_banned() {
        let g = guard(vec!["192.0.2.0/24".into()]);
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(g.record_failure(IP, t0), None);
        }
        assert_eq!(g.admit(IP, t0), Admission::Allow);
        assert_eq!(g.admit_attempt(IP, t0), Admission::Allow);
        assert!(!g.is_trusted("198.51.100.1".parse().unwrap()));
    }
}
