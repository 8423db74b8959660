//! Dial peers on the running node: each peer's health (fed by its calls and
//! by OPTIONS probes), its calls in progress, `dns:` targets resolved, and the
//! operator's disable/drain. The state machine itself is `gateway::health`;
//! this is where it meets sockets, clocks and the log.
//!
//! Lock order: a shard lock may be held while the peer table is taken (the call
//! agent reports evidence under its shard), never the other way round — the
//! prober collects what to send, lets go of the table, then takes a shard.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::health::{Evidence, Health, ProbeId, State, Transition};
use serde::Serialize;

use crate::call::messages::{self, Dialog};
use crate::call::peer_route::PeerRoute;
use crate::config::{DialPeerConfig, parse_session_target};
use crate::sip::transaction::Peer;
use crate::sip::wire::{HeaderName, Message, Method};

use super::Node;

/// Call-IDs of our probes start with this, so their responses find the table.
const PROBE_CALL_ID: &str = "peer-probe-";
/// How often `dns:` targets are looked up again.
const DNS_REFRESH: Duration = Duration::from_secs(30);

/// What the operator asks of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAction {
    Disable,
    Drain,
    Enable,
}

impl PeerAction {
    pub fn parse(word: &str) -> Option<PeerAction> {
        match word {
            "disable" => Some(PeerAction::Disable),
            "drain" => Some(PeerAction::Drain),
            "enable" | "undrain" => Some(PeerAction::Enable),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeerActionError {
    #[error("no dial peer {0}")]
    NoSuchPeer(u32),
}

/// One peer as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub tag: u32,
    pub destination_pattern: String,
    pub session_target: String,
    /// The address calls and probes go to (None: a `dns:` name not resolved).
    pub address: Option<String>,
    pub preference: u8,
    pub context: String,
    pub transport: String,
    pub state: &'static str,
    pub reason: String,
    /// Seconds in the current state.
    pub since_secs: f64,
    pub active_calls: u32,
    /// INVITEs sent to the peer.
    pub attempts: u64,
    /// Of those, how many failed on the route (no answer, 5xx, 408).
    pub route_failures: u64,
    pub probes_sent: u64,
    pub state_changes: u64,
    /// State changes by the state entered.
    pub entered: BTreeMap<&'static str, u64>,
}

struct Entry {
    config: DialPeerConfig,
    route: PeerRoute,
    health: Health,
    active: u32,
    attempts: u64,
    route_failures: u64,
    entered: BTreeMap<&'static str, u64>,
    /// The probe in flight and its Call-ID.
    probe: Option<(ProbeId, String)>,
    /// `dns:` host and port to resolve, and when it last was.
    dns: Option<(String, u16, Option<Instant>)>,
}

impl Entry {
    fn new(config: &DialPeerConfig, now: Instant, stagger: Duration) -> Option<Entry> {
        let route = PeerRoute::from_config(config)?;
        let target = config.session_target.get_ref();
        let dns = if route.addr.is_none() {
            parse_session_target(target)
                .ok()
                .map(|(host, port)| (host, port, None))
        } else {
            None
        };
        Some(Entry {
            health: Health::new(config.keepalive(), now, stagger),
            config: config.clone(),
            route,
            active: 0,
            attempts: 0,
            route_failures: 0,
            entered: BTreeMap::new(),
            probe: None,
            dns,
        })
    }

    fn note(&mut self, tag: u32, t: Option<Transition>) {
        let Some(t) = t else {
            return;
        };
        *self.entered.entry(t.to.as_str()).or_default() += 1;
        let kind = match (t.from.takes_calls(), t.to.takes_calls()) {
            (true, false) => Some("peer_down"),
            (false, true) => Some("peer_up"),
            _ => None,
        };
        if let Some(kind) = kind {
            crate::events::events().emit(
                kind,
                format!("dial peer {tag} {} → {}: {}", t.from, t.to, t.reason),
                serde_json::json!({
                    "tag": tag,
                    "from": t.from.as_str(),
                    "to": t.to.as_str(),
                    "reason": t.reason.to_string(),
                }),
            );
        }
        if t.to.takes_calls() {
            tracing::info!(tag, from = %t.from, to = %t.to, reason = %t.reason, "dial peer state changed");
        } else {
            tracing::warn!(tag, from = %t.from, to = %t.to, reason = %t.reason, "dial peer state changed");
        }
        if matches!(t.to, State::Disabled | State::Draining) {
            // The machine dropped the probe in flight; its answer means nothing now.
            self.probe = None;
        }
    }
}

/// A probe to send: where, and its Call-ID.
pub(super) struct ProbeOut {
    call_id: String,
    addr: SocketAddr,
    transport: crate::sip::transaction::TransportKind,
}

#[derive(Default)]
pub struct PeerTable {
    entries: BTreeMap<u32, Entry>,
}

impl PeerTable {
    pub fn new(peers: &[DialPeerConfig], now: Instant) -> PeerTable {
        let mut table = PeerTable::default();
        table.reload(peers, now);
        table
    }

    /// The peers of a (re)loaded config. A peer whose target, transport and
    /// keepalive did not change keeps its health; an operator's disable or
    /// drain stays on the tag whatever changed.
    pub fn reload(&mut self, peers: &[DialPeerConfig], now: Instant) {
        let mut old = std::mem::take(&mut self.entries);
        let count = peers.len().max(1) as u32;
        for (i, p) in peers.iter().enumerate() {
            let tag = *p.tag.get_ref();
            // Spread first probes over the first interval.
            let stagger = p.keepalive().interval * i as u32 / count;
            let Some(mut fresh) = Entry::new(p, now, stagger) else {
                continue;
            };
            if let Some(prev) = old.remove(&tag) {
                fresh.active = prev.active;
                fresh.attempts = prev.attempts;
                fresh.route_failures = prev.route_failures;
                fresh.entered = prev.entered.clone();
                if prev.config.health_key() == p.health_key() {
                    fresh.health = prev.health;
                    fresh.probe = prev.probe;
                    fresh.route.addr = prev.route.addr.or(fresh.route.addr);
                    if let (Some(d), Some(pd)) = (&mut fresh.dns, &prev.dns) {
                        d.2 = pd.2;
                    }
                } else if prev.health.operator_hold() {
                    let t = match prev.health.state() {
                        State::Disabled => fresh.health.disable(now),
                        _ => fresh.health.drain(now),
                    };
                    fresh.note(tag, t);
                }
            }
            self.entries.insert(tag, fresh);
        }
        for tag in old.keys() {
            tracing::info!(tag, "dial peer removed");
        }
    }

    /// The peers for a hunting call, with health and load filled in.
    pub fn routes(&self) -> Vec<PeerRoute> {
        self.entries
            .values()
            .map(|e| {
                let mut r = e.route.clone();
                r.active = e.active;
                r.availability = if e.health.state() == State::Suspect {
                    gateway::select::Availability::Suspect
                } else if e.health.takes_calls() {
                    gateway::select::Availability::Usable
                } else {
                    gateway::select::Availability::Skipped(e.health.state().as_str())
                };
                r
            })
            .collect()
    }

    /// The peer calls from `ip` come from.
    pub fn peer_at(&self, ip: IpAddr) -> Option<crate::call::peer_route::PeerOrigin> {
        self.entries
            .values()
            .find(|e| e.route.addr.is_some_and(|a| a.ip() == ip))
            .map(|e| e.route.origin())
    }

    pub fn evidence(&mut self, tag: u32, evidence: Evidence, now: Instant) {
        let Some(e) = self.entries.get_mut(&tag) else {
            return;
        };
        if matches!(evidence, Evidence::Failed(_) | Evidence::Refused { .. }) {
            e.route_failures += 1;
        }
        let t = e.health.on_call(evidence, now);
        e.note(tag, t);
    }

    pub fn calls(&mut self, tag: u32, delta: i32) {
        if let Some(e) = self.entries.get_mut(&tag) {
            if delta > 0 {
                e.attempts += 1;
            }
            e.active = e.active.saturating_add_signed(delta);
        }
    }

    pub fn act(
        &mut self,
        tag: u32,
        action: PeerAction,
        now: Instant,
    ) -> Result<State, PeerActionError> {
        let e = self
            .entries
            .get_mut(&tag)
            .ok_or(PeerActionError::NoSuchPeer(tag))?;
        let t = match action {
            PeerAction::Disable => e.health.disable(now),
            PeerAction::Drain => e.health.drain(now),
            PeerAction::Enable => e.health.enable(now),
        };
        e.note(tag, t);
        Ok(e.health.state())
    }

    /// Runs every peer's timers; the probes to send now.
    pub(super) fn poll(&mut self, now: Instant) -> Vec<ProbeOut> {
        let mut out = Vec::new();
        for (tag, e) in &mut self.entries {
            let (t, probe) = e.health.poll(now);
            e.note(*tag, t);
            let Some(id) = probe else {
                continue;
            };
            let Some(addr) = e.route.addr else {
                // Nothing to probe yet: count it as unanswered when it times out.
                continue;
            };
            let call_id = format!("{PROBE_CALL_ID}{tag}-{:016x}", rand::random::<u64>());
            e.probe = Some((id, call_id.clone()));
            out.push(ProbeOut {
                call_id,
                addr,
                transport: e.route.transport,
            });
        }
        out
    }

    /// A response to one of our OPTIONS probes.
    pub(super) fn on_probe_response(&mut self, call_id: &str, msg: &Message, now: Instant) {
        let Some(status) = msg.status() else {
            return;
        };
        if status < 200 {
            return;
        }
        let Some((tag, e)) = self
            .entries
            .iter_mut()
            .find(|(_, e)| e.probe.as_ref().is_some_and(|(_, c)| c == call_id))
        else {
            return;
        };
        let Some((id, _)) = e.probe.take() else {
            return;
        };
        let evidence = Evidence::from_response(status, msg.header(HeaderName::RetryAfter));
        let t = e.health.on_probe(id, evidence, now);
        e.note(*tag, t);
    }

    /// `dns:` targets due for a lookup.
    fn dns_due(&self, now: Instant) -> Vec<(u32, String, u16)> {
        self.entries
            .iter()
            .filter_map(|(tag, e)| {
                let (host, port, last) = e.dns.as_ref()?;
                let due = last.is_none_or(|l| now >= l + DNS_REFRESH);
                due.then(|| (*tag, host.clone(), *port))
            })
            .collect()
    }

    fn resolved(&mut self, tag: u32, addr: Option<SocketAddr>, now: Instant) {
        if let Some(e) = self.entries.get_mut(&tag)
            && let Some(d) = &mut e.dns
        {
            d.2 = Some(now);
            if addr.is_some() && addr != e.route.addr {
                tracing::info!(tag, host = %d.0, ?addr, "dial peer target resolved");
            }
            if addr.is_some() {
                e.route.addr = addr;
            }
        }
    }

    pub fn view(&self, now: Instant) -> Vec<PeerView> {
        self.entries
            .iter()
            .map(|(tag, e)| PeerView {
                tag: *tag,
                destination_pattern: e.config.destination_pattern.get_ref().clone(),
                session_target: e.config.session_target.get_ref().clone(),
                address: e.route.addr.map(|a| a.to_string()),
                preference: e.route.preference,
                context: e.route.context.clone(),
                transport: e.config.transport.clone(),
                state: e.health.state().as_str(),
                reason: e.health.reason().to_string(),
                since_secs: now
                    .saturating_duration_since(e.health.since())
                    .as_secs_f64(),
                active_calls: e.active,
                attempts: e.attempts,
                route_failures: e.route_failures,
                probes_sent: e.health.probes_sent(),
                state_changes: e.health.changes(),
                entered: e.entered.clone(),
            })
            .collect()
    }
}

impl Node {
    /// A response whose Call-ID is one of our probes'; false for anything else.
    pub(super) fn probe_response(&self, msg: &Message, now: Instant) -> bool {
        let Some(call_id) = msg.call_id() else {
            return false;
        };
        if !call_id.starts_with(PROBE_CALL_ID) {
            return false;
        }
        super::lock(&self.peers).on_probe_response(call_id, msg, now);
        true
    }

    fn send_probe(self: &Arc<Self>, probe: ProbeOut) {
        let local = self.local_for(probe.transport);
        let host = match probe.addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let uri = format!("sip:{host}");
        let from = format!(
            "<sip:softswitch@{}>;tag={}",
            self.config.sip.domain,
            messages::new_tag()
        );
        let bytes = messages::request(
            &Method::Options,
            Dialog {
                uri: &uri,
                from: &from,
                to: &format!("<{uri}>"),
                call_id: &probe.call_id,
                cseq: 1,
            },
            &local,
            &messages::new_branch(),
            &self.config.sip.user_agent,
            &[("Accept", "application/sdp".to_string())],
            None,
        );
        let peer = Peer {
            transport: probe.transport,
            addr: probe.addr,
            conn: None,
        };
        // Outside any transaction: a probe is one packet, and the health
        // machine's own timeout decides when it went unanswered. A client
        // transaction would go on retransmitting to a dead peer long after.
        self.send_outside_transactions(&probe.call_id, peer, bytes);
    }

    /// The config file's dial peers again (on SIGHUP and `softswitch reload`).
    /// A file that does not load leaves the peers as they are.
    pub fn peer_view(&self) -> Vec<PeerView> {
        super::lock(&self.peers).view(Instant::now())
    }

    pub fn peer_action(&self, tag: u32, action: PeerAction) -> Result<State, PeerActionError> {
        super::lock(&self.peers).act(tag, action, Instant::now())
    }
}

/// Puts a reloaded config's dial peers in place (health and the operator's
/// hand carry over for peers that stay).
pub(super) fn apply(node: &Node, peers: &[DialPeerConfig]) {
    super::lock(&node.peers).reload(peers, Instant::now());
}

/// Probes peers when their health asks for it, and looks `dns:` targets up.
pub(super) async fn probe_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let (probes, lookups) = {
            let mut table = super::lock(&node.peers);
            (table.poll(now), table.dns_due(now))
        };
        for p in probes {
            node.send_probe(p);
        }
        for (tag, host, port) in lookups {
            // The first address of a family the switch listens on: `localhost`
            // names ::1 first on many systems, which an IPv4-only switch cannot reach.
            let families: Vec<bool> = node
                .config
                .sip
                .listen
                .iter()
                .map(|l| l.addr.is_ipv4())
                .collect();
            let addr = match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(addrs) => {
                    let all: Vec<SocketAddr> = addrs.collect();
                    all.iter()
                        .find(|a| families.contains(&a.is_ipv4()))
                        .or(all.first())
                        .copied()
                }
                Err(e) => {
                    tracing::warn!(tag, %host, error = %e, "dial peer target does not resolve");
                    None
                }
            };
            super::lock(&node.peers).resolved(tag, addr, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(toml: &str) -> Vec<DialPeerConfig> {
        let text = format!("[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n{toml}");
        crate::config::Config::parse(&text, std::path::Path::new("t.toml"))
            .unwrap()
            .dial_peers
    }

    const TWO: &str = "[[dial_peer]]\ntag = 1\ndestination_pattern = \"2..\"\nsession_target = \"ipv4:127.0.0.2\"\n\
                       [[dial_peer]]\ntag = 2\ndestination_pattern = \"2..\"\nsession_target = \"ipv4:127.0.0.3\"\n";

    fn state(t: &PeerTable, tag: u32, now: Instant) -> &'static str {
        t.view(now)
            .into_iter()
            .find(|p| p.tag == tag)
            .unwrap()
            .state
    }

    #[test]
    fn a_reload_keeps_the_health_of_unchanged_peers_and_the_operators_hand() {
        let now = Instant::now();
        let mut t = PeerTable::new(&peers(TWO), now);
        t.evidence(1, Evidence::Failed("no response".into()), now);
        t.act(2, PeerAction::Disable, now).unwrap();
        // Peer 2's target moves: its health starts over, its disable stays.
        let moved = TWO.replace("127.0.0.3", "127.0.0.4");
        t.reload(&peers(&moved), now);
        assert_eq!(state(&t, 1, now), "suspect");
        assert_eq!(state(&t, 2, now), "disabled");
        t.act(2, PeerAction::Enable, now).unwrap();
        assert_eq!(state(&t, 2, now), "up");
        assert!(matches!(
            t.act(9, PeerAction::Drain, now),
            Err(PeerActionError::NoSuchPeer(9))
        ));
    }

    #[test]
    fn probes_go_to_the_target_and_their_answers_count() {
        let now = Instant::now();
        let mut t = PeerTable::new(&peers(TWO), now);
        let sent = t.poll(now + Duration::from_secs(1));
        assert_eq!(sent.len(), 2, "both probed within the first interval");
        let probe = sent
            .iter()
            .find(|p| p.addr.ip().to_string() == "127.0.0.2")
            .unwrap();
        assert!(probe.call_id.starts_with(PROBE_CALL_ID));
        let answer = format!(
            "SIP/2.0 503 Busy\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:b>;tag=2\r\nCall-ID: {}\r\nCSeq: 1 OPTIONS\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n",
            probe.call_id
        );
        let msg = Message::parse(
            bytes::Bytes::from(answer),
            crate::sip::wire::Framing::Datagram,
        )
        .unwrap();
        t.on_probe_response(&probe.call_id, &msg, now + Duration::from_secs(1));
        assert_eq!(state(&t, 1, now), "draining");
        let routes = t.routes();
        assert!(
            !routes
                .iter()
                .find(|r| r.tag == 1)
                .unwrap()
                .availability
                .eq(&gateway::select::Availability::Usable)
        );
        // Peer 2 never answered: after the probe timeout it is suspect.
        t.poll(now + Duration::from_secs(2));
        assert_eq!(state(&t, 2, now), "suspect");
    }
}
