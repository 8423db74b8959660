//! The node behind the call agent's [`Services`]: the registrar, the relay, the
//! dialplan and AstDB, and the database for CDRs. Also the thin glue that builds a
//! [`CallAgent`] over a shard for each event.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use media::prompt::Prompt;
use media::relay::Side as RelaySide;

use super::lock;
use crate::call::agent::{Admission, CallAgent, ConferenceSeat, MediaSession, Recorder, Services};
use crate::config::Config;
use crate::registrar::{AuthOutcome, Binding};
use crate::sip::transaction::Peer;
use crate::sip::wire::{HeaderName, Message};
use crate::store::Change;
use crate::store::astdb::DbHandle;
use crate::store::cdr::Cdr;

use super::Node;
use super::shard::{ShardState, shard_of};

/// The node as seen from one shard.
pub(super) struct NodeServices<'a> {
    pub node: &'a Node,
    pub shard: usize,
}

/// The interpreter's window on the node: wall clock, randomness, AstDB, globals.
struct CallEnv<'a> {
    db: DbHandle<'a>,
    globals: &'a dialplan::Globals,
    now: jiff::Timestamp,
    node: &'a Node,
}

impl dialplan::Env for CallEnv<'_> {
    fn now(&self) -> jiff::Timestamp {
        self.now
    }
    fn random(&mut self) -> u64 {
        rand::random()
    }
    fn db(&mut self) -> &mut dyn dialplan::AstDb {
        &mut self.db
    }
    fn globals(&self) -> &dialplan::Globals {
        self.globals
    }
    fn device_state(&self, device: &str) -> String {
        let user = device
            .split_once('/')
            .filter(|(tech, _)| {
                ["SIP", "PJSIP"]
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(tech))
            })
            .map(|(_, u)| u);
        let Some(user) = user else {
            return "UNKNOWN".into();
        };
        if lock(&self.node.in_use).get(user).is_some_and(|n| *n > 0) {
            return "INUSE".into();
        }
        let registrar = &self.node.registrar;
        let wall = self.now.as_second();
        if registrar
            .location
            .lookup(&registrar.aor(user), wall)
            .is_empty()
        {
            "UNAVAILABLE".into()
        } else {
            "NOT_INUSE".into()
        }
    }
}

impl Services for NodeServices<'_> {
    fn config(&self) -> &Config {
        &self.node.config
    }

    fn authenticate(&self, msg: &Message, source: Peer, wall: i64, now: Instant) -> Admission {
        let registrar = &self.node.registrar;
        match registrar
            .auth
            .check(msg, HeaderName::ProxyAuthorization, wall)
        {
            AuthOutcome::Authenticated { user } => {
                registrar.guard.record_success(source.addr.ip());
                Admission::Caller { user }
            }
            AuthOutcome::Malformed(reason) => Admission::Refuse {
                status: 400,
                reason: reason.to_owned(),
                headers: Vec::new(),
            },
            outcome => {
                let stale = matches!(outcome, AuthOutcome::Challenge { stale: true });
                if let AuthOutcome::Failed { user } = &outcome {
                    tracing::warn!(%user, source = %source.addr, "call authentication failed");
                    if let Some(ev) = registrar.guard.record_failure(source.addr.ip(), now) {
                        tracing::warn!(?ev, "authentication guard");
                    }
                }
                Admission::Refuse {
                    status: 407,
                    reason: "Proxy Authentication Required".into(),
                    headers: self
                        .node
                        .challenge_headers("Proxy-Authenticate", stale, wall, msg),
                }
            }
        }
    }

    fn locate(&self, user: &str, wall: i64) -> Vec<Binding> {
        let registrar = &self.node.registrar;
        registrar.location.lookup(&registrar.aor(user), wall)
    }

    fn allocate_media(&self) -> Result<Box<dyn MediaSession>, String> {
        self.node
            .relay
            .allocate()
            .map(|s| Box::new(s) as Box<dyn MediaSession>)
            .map_err(|e| e.to_string())
    }

    fn dialplan(&self) -> Arc<dialplan::Dialplan> {
        self.node.dialplan()
    }

    fn with_env(&self, wall_ms: i64, f: &mut dyn FnMut(&mut dyn dialplan::Env)) {
        let mut env = CallEnv {
            db: DbHandle(&self.node.astdb),
            globals: &self.node.globals,
            now: jiff::Timestamp::from_millisecond(wall_ms)
                .unwrap_or_else(|_| jiff::Timestamp::now()),
            node: self.node,
        };
        f(&mut env);
    }

    fn next_seq(&self) -> u64 {
        self.node.call_seq.fetch_add(1, Ordering::Relaxed)
    }

    fn uniqueid(&self, wall: i64, seq: u64) -> String {
        match self.node.store {
            crate::store::Store::Postgres(_) => {
                format!("{}-{wall}.{seq}", self.node.config.node.name)
            }
            crate::store::Store::Sqlite(_) => format!("{wall}.{seq}"),
        }
    }

    fn leg_call_id(&self) -> String {
        loop {
            let cid = format!("{:032x}", rand::random::<u128>());
            if shard_of(&cid, self.node.shards.len()) == self.shard {
                return cid;
            }
        }
    }

    fn digit_sink(&self, call_id: &str) -> media::relay::DigitSink {
        // The media thread only queues the digit; the node's digit task takes the
        // shard lock.
        let tx = self.node.digits.clone();
        let shard = self.shard;
        let call_id = call_id.to_owned();
        Arc::new(move |side, digit| {
            if side == RelaySide::A {
                let _ = tx.send((shard, call_id.clone(), digit));
            }
        })
    }

    fn prompt(&self, names: &[String], language: Option<&str>) -> Result<Arc<Prompt>, String> {
        let language = language.unwrap_or(&self.node.config.media.language);
        if let [one] = names {
            return self.load_prompt(one, language);
        }
        let parts = names
            .iter()
            .map(|n| self.load_prompt(n, language))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Prompt::concat(parts.iter().map(|p| p.as_ref()))))
    }

    fn request_pickup(&self, target: &str, picker: &str) {
        let _ = self
            .node
            .pickups
            .send((target.to_string(), self.shard, picker.to_string()));
    }

    fn peer_routes(&self) -> Vec<crate::call::peer_route::PeerRoute> {
        lock(&self.node.peers).routes()
    }

    fn originated(&self, msg: &Message) -> Option<String> {
        use subtle::ConstantTimeEq as _;
        let presented = msg.header_other(super::originate::SECRET_HEADER)?;
        let secret = self.node.originate_secret.as_bytes();
        if !bool::from(presented.trim().as_bytes().ct_eq(secret)) {
            return None;
        }
        msg.header_other(super::originate::CONTEXT_HEADER)
            .map(|c| c.trim().to_owned())
    }

    fn peer_from(&self, ip: std::net::IpAddr) -> Option<crate::call::peer_route::PeerOrigin> {
        lock(&self.node.peers).peer_at(ip)
    }

    fn peer_evidence(&self, tag: u32, evidence: gateway::health::Evidence, now: Instant) {
        lock(&self.node.peers).evidence(tag, evidence, now);
    }

    fn peer_calls(&self, tag: u32, delta: i32) {
        lock(&self.node.peers).calls(tag, delta);
    }

    fn device_use(&self, user: &str, busy: bool) {
        let mut in_use = lock(&self.node.in_use);
        let n = in_use.entry(user.to_string()).or_insert(0);
        if busy {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_use.remove(user);
            }
        }
    }

    fn mailbox_changed(&self, mailbox: &crate::voicemail::MailboxId) {
        let _ = self.node.mailbox_changes.send(mailbox.clone());
    }

    fn spool(&self) -> crate::voicemail::Spool {
        self.node.spool()
    }

    fn call_opened(&self, call: crate::store::cdr::OpenCall) {
        self.node.calls_in_progress.fetch_add(1, Ordering::Relaxed);
        self.note_open_call(Change::Opened(Box::new(call)));
    }

    fn call_answered(&self, uniqueid: &str, at_ms: i64) {
        self.note_open_call(Change::Answered {
            uniqueid: uniqueid.to_owned(),
            at: at_ms,
        });
    }

    fn write_cdr(&self, cdr: Cdr) {
        self.node.calls_in_progress.fetch_sub(1, Ordering::Relaxed);
        crate::metrics::metrics().call_ended(&cdr);
        let threshold = self.node.config.events.mos_threshold;
        for (leg, mos) in crate::events::poor_legs(&cdr.media, threshold) {
            crate::events::events().emit(
                "call_quality",
                format!(
                    "call {} ({} → {}): {leg} MOS {mos:.2} under {threshold}",
                    cdr.uniqueid, cdr.src, cdr.dst
                ),
                serde_json::json!({ "uniqueid": cdr.uniqueid, "leg": leg, "mos": mos, "src": cdr.src, "dst": cdr.dst }),
            );
        }
        let uniqueid = cdr.uniqueid.clone();
        let done = Box::new(move |result: Result<(), Arc<crate::store::StoreError>>| {
            if let Err(e) = result {
                tracing::error!(error = %e, %uniqueid, "could not write a CDR");
            }
        });
        let Err(full) = self
            .node
            .writer
            .submit(vec![Change::Cdr(Box::new(cdr))], done)
        else {
            return;
        };
        // The queue is full of registrations: write this one on its own.
        let store = self.node.store.clone();
        self.node.rt.spawn(async move {
            for change in full.changes {
                if let Change::Cdr(cdr) = change
                    && let Err(e) = store.insert_cdr(&cdr).await
                {
                    tracing::error!(error = %e, uniqueid = %cdr.uniqueid, "could not write a CDR");
                }
            }
        });
    }
}

impl NodeServices<'_> {
    /// Queues an `open_calls` change with the registrations' commits. With the queue
    /// full it is dropped: the row only matters if this node dies mid-call, and the
    /// CDR written at the call's end does not depend on it.
    fn note_open_call(&self, change: Change) {
        let done = Box::new(|result: Result<(), Arc<crate::store::StoreError>>| {
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not record a call in progress");
            }
        });
        if self.node.writer.submit(vec![change], done).is_err() {
            tracing::warn!("database queue full: a call in progress is not recorded");
        }
    }

    /// One sound file by name, from the cache or the sounds directory: first the
    /// language's subdirectory, then the directory itself, each extension in turn.
    fn load_prompt(&self, name: &str, language: &str) -> Result<Arc<Prompt>, String> {
        let key = format!("{language}/{name}");
        // Absolute names are recordings (RECORDED_FILE, voicemail), which change:
        // they are read afresh each time. Shipped sounds are cached.
        let cached = !Path::new(name).is_absolute();
        if cached && let Some(p) = lock(&self.node.prompts).get(&key) {
            return Ok(p.clone());
        }
        let config = &self.node.config;
        let dir = config.resolve(&config.media.sounds);
        let bases = if Path::new(name).is_absolute() {
            vec![PathBuf::from(name)]
        } else {
            vec![dir.join(language).join(name), dir.join(name)]
        };
        for base in &bases {
            for ext in Prompt::EXTENSIONS {
                let path = base.with_extension(ext);
                if path.is_file() {
                    let prompt = Arc::new(Prompt::load(&path).map_err(|e| e.to_string())?);
                    if cached {
                        lock(&self.node.prompts).insert(key, prompt.clone());
                    }
                    return Ok(prompt);
                }
            }
        }
        Err(format!(
            "no sound `{name}` in {} (language {language})",
            dir.display()
        ))
    }
}

impl ConferenceSeat for media::conference::Seat {
    fn set_muted(&self, muted: bool) {
        media::conference::Seat::set_muted(self, muted)
    }
    fn muted(&self) -> bool {
        media::conference::Seat::muted(self)
    }
    fn members(&self) -> usize {
        self.room().members()
    }
}

impl Recorder for media::record::Recording {
    fn silent_for(&self, now: Instant) -> Duration {
        media::record::Recording::silent_for(self, now)
    }

    fn finish(self: Box<Self>, ending: media::record::Ending) {
        media::record::Recording::finish(*self, ending)
    }
}

impl MediaSession for media::relay::Session {
    fn local_rtp(&self, side: RelaySide) -> SocketAddr {
        media::relay::Session::local_rtp(self, side)
    }

    fn set_remote(&self, side: RelaySide, rtp: SocketAddr, rtcp: Option<SocketAddr>, mux: bool) {
        media::relay::Session::set_remote(self, side, rtp, rtcp, mux)
    }

    fn set_echo(&self, side: RelaySide, on: bool) {
        media::relay::Session::set_echo(self, side, on)
    }

    fn play(&self, side: RelaySide, payload: Arc<[u8]>, payload_type: u8, looped: bool) {
        media::relay::Session::play(self, side, payload, payload_type, looped)
    }

    fn listen_for_digits(&self, side: RelaySide, payload_type: u8, sink: media::relay::DigitSink) {
        media::relay::Session::listen_for_digits(self, side, payload_type, sink)
    }

    fn stop_playing(&self) {
        media::relay::Session::stop_playing(self)
    }

    fn send_digits(
        &self,
        side: RelaySide,
        digits: &str,
        payload_type: u8,
        duration: Duration,
        gap: Duration,
    ) {
        media::relay::Session::send_digits(self, side, digits, payload_type, duration, gap)
    }

    fn idle_for(&self, now: Instant) -> Duration {
        self.idle_at(now)
    }

    fn join_conference(&self, room: &str, payload_type: u8) -> Box<dyn ConferenceSeat> {
        Box::new(media::relay::Session::join(self, room, payload_type))
    }

    fn record(&self, spec: &media::record::RecordSpec) -> Result<Box<dyn Recorder>, String> {
        media::relay::Session::record(self, spec)
            .map(|r| Box::new(r) as Box<dyn Recorder>)
            .map_err(|e| e.to_string())
    }

    fn report(&self) -> serde_json::Value {
        let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
        // One way across the call: half of each side's round trip to the relay,
        // as far as the phones' RTCP told us.
        let network = [RelaySide::A, RelaySide::B]
            .iter()
            .filter_map(|s| self.rtt(*s))
            .map(|rtt| ms(rtt) / 2.0)
            .sum::<f64>();
        let leg = |side: RelaySide| {
            let s = self.stats(side);
            let codec = media::stats::Codec::from_payload_type(self.payload_type(side));
            let pt = self.payload_type(side);
            serde_json::json!({
                "payload_type": pt,
                // RFC 3551's static payload types; a dynamic one (opus,
                // telephone-event) is named only in the SDP.
                "codec": match pt {
                    0 => Some("PCMU"),
                    3 => Some("GSM"),
                    4 => Some("G723"),
                    8 => Some("PCMA"),
                    9 => Some("G722"),
                    18 => Some("G729"),
                    _ => None,
                },
                "packets": s.packets,
                "bytes": s.bytes,
                "lost": s.lost,
                "jitter_ms": (s.jitter_ms * 100.0).round() / 100.0,
                "rtt_ms": self.rtt(side).map(ms),
                // Only meaningful once media flowed; null before the first packet.
                "mos": (s.packets > 0).then(|| (s.mos_for(codec, network) * 100.0).round() / 100.0),
                "forwarded": self.forwarded(side),
                "latched": self.latched(side).map(|a| a.to_string()),
            })
        };
        serde_json::json!({ "caller": leg(RelaySide::A), "callee": leg(RelaySide::B) })
    }
}

impl Node {
    /// The call agent over shard `idx`, for one event at `SystemTime::now()`.
    pub(super) fn with_agent<R>(
        &self,
        idx: usize,
        st: &mut ShardState,
        f: impl FnOnce(&mut CallAgent<'_>) -> R,
    ) -> R {
        let svc = NodeServices {
            node: self,
            shard: idx,
        };
        let mut agent = CallAgent {
            svc: &svc,
            layer: &mut st.layer,
            calls: &mut st.calls,
            wall_ms: super::unix_now_ms(),
        };
        f(&mut agent)
    }
}
