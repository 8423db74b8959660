//! The nodes behind the balancer: their health (the dial peers' state machine, fed
//! by OPTIONS probes and by a node's own 503 + Retry-After), and the choice of node
//! for a new dialog. Sans-IO: the caller sends the probes and passes the clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gateway::health::{Evidence, Health, Keepalive, ProbeId, State, Transition};
use serde::Serialize;

use super::config::NodeSpec;

/// Probe Call-IDs start with this, so their answers are told apart from calls'.
pub const PROBE_PREFIX: &str = "lb-probe-";

struct Member {
    spec: NodeSpec,
    health: Health,
    /// The probe in flight: its Call-ID and the health machine's id for it.
    probe: Option<(String, ProbeId)>,
    /// New dialogs sent here.
    chosen: u64,
    /// Calls in progress the node reported in its last probe answer.
    load: Option<u32>,
    /// New dialogs sent here since that answer.
    sent_since_report: u32,
}

/// A node as the status view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    pub address: String,
    pub weight: u32,
    pub state: &'static str,
    pub since_ms: u64,
    pub reason: String,
    /// Requests sent here by the hash or load choice rather than a recorded route:
    /// new dialogs and registrations, with their challenges' second tries.
    pub picked: u64,
    pub probes_sent: u64,
    /// Calls in progress, as the node last reported them.
    pub calls: Option<u32>,
}

pub struct NodeSet {
    members: Vec<Member>,
}

/// A probe to send: where, and the Call-ID that ties its answer back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOut {
    pub addr: SocketAddr,
    pub call_id: String,
}

impl NodeSet {
    pub fn new(specs: Vec<NodeSpec>, keepalive: Keepalive, now: Instant) -> NodeSet {
        let count = specs.len().max(1) as u32;
        let members = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Member {
                spec,
                // Spread the first probes over one interval.
                health: Health::new(keepalive, now, keepalive.interval * i as u32 / count),
                probe: None,
                chosen: 0,
                load: None,
                sent_since_report: 0,
            })
            .collect();
        NodeSet { members }
    }

    pub fn at(&self, addr: SocketAddr) -> Option<usize> {
        self.members.iter().position(|m| m.spec.addr == addr)
    }

    /// The node at this IP, whatever the port.
    pub fn at_ip(&self, ip: std::net::IpAddr) -> Option<usize> {
        self.members.iter().position(|m| m.spec.addr.ip() == ip)
    }

    pub fn named(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.spec.name == name)
    }

    pub fn spec(&self, idx: usize) -> &NodeSpec {
        &self.members[idx].spec
    }

    pub fn state(&self, idx: usize) -> State {
        self.members[idx].health.state()
    }

    /// The node for a new dialog: weighted rendezvous hashing of the Call-ID over
    /// the nodes that take calls, so every balancer (and a restarted one) makes the
    /// same choice, and losing a node moves only that node's share. When none takes
    /// calls, None: the caller answers 503.
    pub fn pick(&mut self, call_id: &str) -> Option<usize> {
        let best = self.peek(call_id)?;
        self.chose(best);
        Some(best)
    }

    /// The node with the fewest calls for its weight: what it reported at its last
    /// probe plus what was sent to it since. Ties go to the first listed.
    pub fn pick_least_loaded(&mut self) -> Option<usize> {
        let best = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.health.takes_calls())
            .map(|(i, m)| {
                let calls = f64::from(m.load.unwrap_or(0) + m.sent_since_report);
                (calls / f64::from(m.spec.weight), i)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, i)| i)?;
        self.chose(best);
        Some(best)
    }

    fn chose(&mut self, idx: usize) {
        let m = &mut self.members[idx];
        m.chosen += 1;
        m.sent_since_report = m.sent_since_report.saturating_add(1);
    }

    /// Whether a node may still get requests of its dialogs (it is not down).
    pub fn reachable(&self, idx: usize) -> bool {
        !matches!(self.members[idx].health.state(), State::Down)
    }

    /// The node [`NodeSet::pick`] would choose now, without counting it.
    pub fn peek(&self, call_id: &str) -> Option<usize> {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.health.takes_calls())
            .map(|(i, m)| (score(call_id, &m.spec.name, m.spec.weight), i))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, i)| i)
    }

    /// Runs the health timers; returns the probes due now and the changes made.
    pub fn poll(&mut self, now: Instant) -> (Vec<ProbeOut>, Vec<(String, Transition)>) {
        let mut probes = Vec::new();
        let mut changes = Vec::new();
        for m in &mut self.members {
            let (change, probe) = m.health.poll(now);
            if let Some(t) = change {
                changes.push((m.spec.name.clone(), t));
            }
            if let Some(id) = probe {
                let call_id = format!("{PROBE_PREFIX}{}-{}", m.spec.name, id.0);
                m.probe = Some((call_id.clone(), id));
                probes.push(ProbeOut {
                    addr: m.spec.addr,
                    call_id,
                });
            }
        }
        (probes, changes)
    }

    /// A response to a probe; returns the change it made, if any.
    /// `calls`: the calls in progress the node reported with its answer.
    pub fn on_probe_response(
        &mut self,
        call_id: &str,
        status: u16,
        retry_after: Option<&str>,
        calls: Option<u32>,
        now: Instant,
    ) -> Option<(String, Transition)> {
        let m = self
            .members
            .iter_mut()
            .find(|m| m.probe.as_ref().is_some_and(|(c, _)| c == call_id))?;
        let (_, id) = m.probe.take()?;
        if calls.is_some() {
            m.load = calls;
            m.sent_since_report = 0;
        }
        let t = m
            .health
            .on_probe(id, Evidence::from_response(status, retry_after), now)?;
        Some((m.spec.name.clone(), t))
    }

    /// A node refused a new dialog itself (503 with Retry-After): no new dialogs go
    /// there until it says otherwise.
    pub fn refused(
        &mut self,
        idx: usize,
        retry_after: Duration,
        now: Instant,
    ) -> Option<(String, Transition)> {
        let m = &mut self.members[idx];
        let t = m.health.on_call(Evidence::Refused { retry_after }, now)?;
        Some((m.spec.name.clone(), t))
    }

    pub fn view(&self, now: Instant) -> Vec<NodeView> {
        self.members
            .iter()
            .map(|m| NodeView {
                name: m.spec.name.clone(),
                address: m.spec.addr.to_string(),
                weight: m.spec.weight,
                state: m.health.state().as_str(),
                since_ms: now.saturating_duration_since(m.health.since()).as_millis() as u64,
                reason: m.health.reason().to_owned(),
                picked: m.chosen,
                probes_sent: m.health.probes_sent(),
                calls: m.load,
            })
            .collect()
    }
}

/// Weighted rendezvous score (highest wins): `-weight / ln(u)` with `u` a uniform
/// draw in (0, 1) from the Call-ID and the node's name, so a node of weight 2 wins
/// twice as often as one of weight 1.
fn score(call_id: &str, node: &str, weight: u32) -> f64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in call_id.bytes().chain([0xff]).chain(node.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    // Finalizer (splitmix64) so near-identical Call-IDs spread evenly.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^= h >> 31;
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight) / u.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(weights: &[u32], now: Instant) -> NodeSet {
        let specs = weights
            .iter()
            .enumerate()
            .map(|(i, w)| NodeSpec {
                name: format!("node-{}", i + 1),
                addr: format!("127.0.0.{}:5060", i + 2).parse().unwrap(),
                weight: *w,
            })
            .collect();
        NodeSet::new(
            specs,
            super::super::config::ProbeSection::default().keepalive(),
            now,
        )
    }

    #[test]
    fn calls_spread_by_weight_and_stick_to_their_call_id() {
        let now = Instant::now();
        let mut s = set(&[1, 1, 2], now);
        let mut counts = [0u32; 3];
        for i in 0..8_000 {
            counts[s.pick(&format!("call-{i}@host")).unwrap()] += 1;
        }
        for c in &counts[..2] {
            assert!((1_700..2_300).contains(c), "{counts:?}");
        }
        assert!((3_600..4_400).contains(&counts[2]), "{counts:?}");
        assert_eq!(s.pick("same"), s.pick("same"));
    }

    #[test]
    fn a_silent_node_is_taken_out_in_under_a_second_and_only_its_calls_move() {
        let start = Instant::now();
        let mut s = set(&[1, 1], start);
        let before: Vec<usize> = (0..200)
            .map(|i| s.pick(&format!("c{i}")).unwrap())
            .collect();
        // node-1 answers every probe, node-2 none.
        let mut t = start;
        let mut down_at = None;
        while t < start + Duration::from_secs(2) {
            let (probes, changes) = s.poll(t);
            for p in probes {
                if p.call_id.contains("node-1") {
                    s.on_probe_response(&p.call_id, 200, None, None, t);
                }
            }
            if changes
                .iter()
                .any(|(n, c)| n == "node-2" && c.to == State::Down)
            {
                down_at.get_or_insert(t);
            }
            t += Duration::from_millis(10);
        }
        let took = down_at.expect("node-2 never went down") - start;
        assert!(took < Duration::from_secs(1), "{took:?}");
        for (i, was) in before.iter().enumerate() {
            let now_on = s.pick(&format!("c{i}")).unwrap();
            assert_eq!(now_on, 0);
            if *was == 0 {
                assert_eq!(now_on, *was, "a call of the healthy node moved");
            }
        }
    }

    #[test]
    fn least_loaded_counts_reports_and_what_was_sent_since() {
        let now = Instant::now();
        let mut s = set(&[1, 2], now);
        let mut t = now;
        for _ in 0..20 {
            let (probes, _) = s.poll(t);
            for p in probes {
                let calls = if p.call_id.contains("node-1") { 10 } else { 30 };
                s.on_probe_response(&p.call_id, 200, None, Some(calls), t);
            }
            t += Duration::from_millis(50);
        }
        // node-1: 10 calls at weight 1; node-2: 30 at weight 2 (15 per unit).
        let picks: Vec<usize> = (0..12).map(|_| s.pick_least_loaded().unwrap()).collect();
        assert_eq!(&picks[..5], &[0, 0, 0, 0, 0], "{picks:?}");
        assert!(picks[5..].contains(&1), "{picks:?}");
        assert_eq!(s.view(now)[1].calls, Some(30));
    }

    #[test]
    fn a_503_with_retry_after_drains_and_nothing_takes_calls_without_nodes() {
        let now = Instant::now();
        let mut s = set(&[1], now);
        let (probes, _) = s.poll(now);
        let (_, t) = s
            .on_probe_response(&probes[0].call_id, 503, Some("10"), None, now)
            .unwrap();
        assert_eq!(t.to, State::Draining);
        assert_eq!(s.pick("x"), None);
        assert_eq!(s.view(now)[0].state, "draining");
    }
}
