//! The tokio driver of a node: binds the transports, runs the shards' timers, the
//! database writer and the periodic sweeps, and feeds every message through the
//! transaction layer to the dispatcher. The only module that reads the clock.

mod dispatch;
mod keepalive;
mod limits;
mod mwi;
pub mod originate;
pub mod peers;
mod services;
mod shard;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;

use crate::config::Config;
use crate::registrar::nonce::NonceKey;
use crate::registrar::{Admission, Authenticator, Registrar};
use crate::sip::transaction::{Peer, TimerConfig, Transmit, TransportKind};
use crate::sip::transport::{self, Connections, Inbound, StreamLimits, Transports};
use crate::sip::wire::{Framing, HeaderName, Message};
use crate::store::Store;
use crate::store::writer::Writer;

pub use dispatch::{ALLOW, SUPPORTED};
use shard::{Shard, ShardState, shard_of};

/// Shards per worker thread: enough that two workers rarely want the same lock.
const SHARDS_PER_WORKER: usize = 8;

pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Node {
    pub config: Config,
    /// The dialplan in force; a reload swaps it, calls keep the one they started with.
    dialplan: std::sync::RwLock<Arc<dialplan::Dialplan>>,
    pub globals: dialplan::Globals,
    pub registrar: Registrar,
    pub store: Store,
    pub writer: Writer,
    shards: Vec<Shard>,
    transports: Transports,
    /// The media relay every call is anchored on.
    pub relay: media::relay::Relay,
    pub astdb: crate::store::astdb::PersistentDb,
    /// What the node's own test calls (`softswitch originate`) carry to be let in
    /// without digest: random for each run of the process.
    originate_secret: String,
    /// Voicemail messages as the `voicemail` table holds them.
    pub voicemail: Arc<crate::store::voicemail::VoicemailIndex>,
    /// The runtime, for work started from non-async code under a shard lock.
    rt: tokio::runtime::Handle,
    call_seq: std::sync::atomic::AtomicU64,
    /// DTMF the relay heard: (shard, caller's Call-ID, digit), for the digit task.
    digits: tokio::sync::mpsc::UnboundedSender<(usize, String, char)>,
    /// Pickup requests: (ringing endpoint, picker's shard, picker's Call-ID).
    pickups: tokio::sync::mpsc::UnboundedSender<(String, usize, String)>,
    /// Calls in progress per endpoint (as caller or answered callee), for
    /// `DEVICE_STATE`.
    in_use: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Message-waiting subscriptions (SUBSCRIBE to message-summary).
    mwi: std::sync::Mutex<crate::voicemail::mwi::Subscriptions>,
    /// Mailboxes whose messages changed, for the NOTIFY task.
    mailbox_changes: tokio::sync::mpsc::UnboundedSender<crate::voicemail::MailboxId>,
    /// Dial peers with their health and calls in progress.
    peers: std::sync::Mutex<peers::PeerTable>,
    /// `softswitch drain`: new dialogs get 503, calls in progress go on.
    draining: std::sync::atomic::AtomicBool,
    /// Calls started and not yet recorded as ended (reported to balancers in
    /// answers to OPTIONS).
    pub(crate) calls_in_progress: std::sync::atomic::AtomicI64,
    /// `softswitch drain --stop`: stop once the last call has ended.
    stop_when_idle: std::sync::atomic::AtomicBool,
    /// Sound files read so far, by `language/name`; prompts change only with a deploy.
    prompts: std::sync::Mutex<std::collections::HashMap<String, Arc<media::prompt::Prompt>>>,
}

/// Hands received messages to the node.
struct Ingress(Arc<Node>);

impl Inbound for Ingress {
    fn on_message(&self, bytes: Bytes, peer: Peer) {
        self.0.on_message(bytes, peer);
    }
}

/// A started node.
pub struct Running {
    pub node: Arc<Node>,
    pub listening: Vec<String>,
}

/// Starts a node from its configuration: database first (so bindings are loaded before
/// any request is answered), then sockets, then the tasks.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let plan = load_dialplan(&config)?;
    let url = config.database_url();
    let store = Store::connect(&url, config.database.sqlite_synchronous == "full")
        .await
        .context("cannot open the database")?;
    let secret_hex = store
        .setting_or_insert("nonce_secret", &hex::encode(rand::random::<[u8; 32]>()))
        .await
        .context("cannot read the nonce secret")?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(&secret_hex, &mut secret).context("the stored nonce secret is corrupt")?;
    let decoy = hex::encode(rand::random::<[u8; 16]>());
    let auth = Authenticator::new(&config, NonceKey::new(secret), &decoy);
    let registrar = Registrar::new(&config, auth);
    let bindings = store
        .load_bindings(unix_now())
        .await
        .context("cannot load registrations")?;
    let restored = bindings.len();
    registrar.location.load(bindings);
    let astdb = crate::store::astdb::PersistentDb::open(store.clone(), config.node.name.clone())
        .await
        .context("cannot load the AstDB")?;
    let voicemail = Arc::new(
        crate::store::voicemail::VoicemailIndex::open(store.clone(), config.node.name.clone())
            .await
            .context("cannot load the voicemail index")?,
    );
    let imported = crate::voicemail::Spool::indexed(
        config.resolve(&config.voicemail.spool),
        voicemail.clone(),
    )
    .import();
    if imported > 0 {
        tracing::info!(
            messages = imported,
            "indexed voicemail messages found in the spool"
        );
    }
    let ports = config.rtp.port_range();
    limits::raise_open_files(usize::from(ports.end().saturating_sub(*ports.start())) + 1);
    let relay = media::relay::Relay::with_threads(
        config.rtp_address(),
        config.rtp_address(),
        ports,
        config.rtp.thread_count(),
    )
    .context("cannot start the media threads")?;

    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for spec in &config.sip.listen {
        match spec.transport {
            TransportKind::Udp => udp.push(
                transport::bind_udp(spec.addr)
                    .with_context(|| format!("cannot listen on {spec}"))?,
            ),
            TransportKind::Tcp => tcp.push(
                transport::bind_tcp(spec.addr)
                    .with_context(|| format!("cannot listen on {spec}"))?,
            ),
            TransportKind::Tls => {
                anyhow::bail!("cannot listen on {spec}: TLS is not supported yet")
            }
        }
    }

    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let timers = TimerConfig::default();
    let writer = Writer::spawn(store.clone(), config.node.name.clone());
    let (digits, digits_rx) = tokio::sync::mpsc::unbounded_channel();
    let (mailbox_changes, mailbox_rx) = tokio::sync::mpsc::unbounded_channel();
    let (pickups, pickup_rx) = tokio::sync::mpsc::unbounded_channel();
    let connections = Arc::new(Connections::default());
    let globals = dialplan::Globals::from_plan(&plan);
    let node = Arc::new(Node {
        dialplan: std::sync::RwLock::new(Arc::new(plan)),
        globals,
        registrar,
        store,
        writer,
        shards: (0..workers * SHARDS_PER_WORKER)
            .map(|_| Shard::new(timers))
            .collect(),
        transports: Transports {
            udp,
            connections: connections.clone(),
        },
        relay,
        astdb,
        originate_secret: hex::encode(rand::random::<[u8; 16]>()),
        voicemail,
        rt: tokio::runtime::Handle::current(),
        call_seq: std::sync::atomic::AtomicU64::new(1),
        prompts: Default::default(),
        peers: std::sync::Mutex::new(peers::PeerTable::new(&config.dial_peers, Instant::now())),
        draining: Default::default(),
        stop_when_idle: Default::default(),
        calls_in_progress: Default::default(),
        digits,
        mwi: Default::default(),
        in_use: Default::default(),
        pickups,
        mailbox_changes,
        config,
    });

    let inbound: Arc<dyn Inbound> = Arc::new(Ingress(node.clone()));
    let mut listening = Vec::new();
    let max = node.config.sip.max_message_size;
    for (i, ep) in node.transports.udp.iter().enumerate() {
        ep.spawn_receivers(i, workers, max, inbound.clone());
        listening.push(format!("udp:{}", ep.local));
    }
    let limits = StreamLimits {
        max_message: max,
        idle: Duration::from_secs(node.config.sip.tcp_idle_timeout),
    };
    for listener in tcp {
        let handle = transport::serve_tcp(listener, limits, connections.clone(), inbound.clone());
        listening.push(format!("tcp:{}", handle.local));
    }
    if let Some(admin) = crate::admin::spawn(node.clone()).await? {
        listening.push(format!("admin:http://{admin}"));
    }
    for idx in 0..node.shards.len() {
        tokio::spawn(timer_loop(node.clone(), idx));
    }
    tokio::spawn(sweep_loop(node.clone()));
    tokio::spawn(peers::probe_loop(node.clone()));
    tokio::spawn(keepalive::keepalive_loop(node.clone()));
    crate::events::events().set_node(&node.config.node.name);
    crate::webhook::spawn(&node.config.webhooks);
    // Calls this node had when it last went down, before its heartbeat says it is up.
    node.close_lost_calls(Some(&node.config.node.name)).await;
    tokio::spawn(heartbeat_loop(node.clone(), unix_now_ms()));
    tokio::spawn(share_loop(node.clone()));
    tokio::spawn(digit_loop(node.clone(), digits_rx));
    tokio::spawn(mailbox_loop(node.clone(), mailbox_rx));
    tokio::spawn(pickup_loop(node.clone(), pickup_rx));
    tracing::info!(
        node = %node.config.node.name,
        listening = %listening.join(", "),
        domain = %node.config.sip.domain,
        endpoints = node.config.endpoints.len(),
        registrations = restored,
        database = node.store.backend(),
        "softswitch started"
    );
    Ok(Running { node, listening })
}

/// Loads the configured dialplan. Only what Asterisk itself would refuse stops the
/// node; everything else is logged as a warning with its position.
fn load_dialplan(config: &Config) -> anyhow::Result<dialplan::Dialplan> {
    let path = config.resolve(&config.dialplan.file);
    // Like Asterisk, the node refuses only what cannot be loaded at all; what
    // `dialplan check` flags beyond that (an unknown application, a Goto to a missing
    // label) is logged here and fails the call that reaches it, as Asterisk does.
    match dialplan::Dialplan::load(&path) {
        Ok(loaded) => {
            for d in loaded
                .diagnostics
                .iter()
                .chain(&dialplan::lint(&loaded.plan))
            {
                tracing::warn!("{}", d.header());
            }
            Ok(loaded.plan)
        }
        Err(failure) => {
            let first = failure
                .diagnostics
                .first()
                .map(|d| d.header())
                .unwrap_or_else(|| format!("{}: cannot be loaded", path.display()));
            anyhow::bail!("{first}")
        }
    }
}

impl Node {
    /// The plan new calls run on.
    pub fn dialplan(&self) -> Arc<dialplan::Dialplan> {
        self.dialplan
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the dialplan file; a plan with errors is refused and the running one stays.
    /// Seconds a draining node asks callers (a balancer, a peer switch) to
    /// stay away before they ask again: short, so an undrained node is back
    /// in service soon.
    pub const DRAIN_RETRY_AFTER: u32 = 10;

    /// Starts or ends a drain: new INVITEs and OPTIONS get 503 with
    /// Retry-After, so balancers and peer switches move new calls elsewhere at
    /// once, while every call in progress runs to its end.
    pub fn set_draining(&self, on: bool) {
        let was = self.draining.swap(on, std::sync::atomic::Ordering::Relaxed);
        if was != on {
            let calls = self.active_calls().len();
            if on {
                tracing::warn!(
                    calls,
                    "draining: new calls are refused, calls in progress go on"
                );
            } else {
                tracing::info!(calls, "drain lifted: taking new calls");
            }
        }
    }

    /// This node as the nodes table holds it.
    pub fn node_row(&self, started_at: i64, state: &str) -> crate::store::nodes::NodeRow {
        crate::store::nodes::NodeRow {
            name: self.config.node.name.clone(),
            sip: self
                .config
                .sip
                .listen
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            admin: self
                .config
                .admin
                .addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            started_at,
            heartbeat_at: unix_now_ms(),
            state: state.to_string(),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drains and then stops the node once no call is left (Asterisk's `core stop
    /// gracefully`); `false` (with the drain lifted) cancels that.
    pub fn set_stop_when_idle(&self, on: bool) {
        self.stop_when_idle
            .store(on, std::sync::atomic::Ordering::Relaxed);
        if on {
            self.set_draining(true);
        }
    }

    pub fn stops_when_idle(&self) -> bool {
        self.stop_when_idle
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Returns once a drain with `--stop` has seen the last call end.
    pub async fn idle_after_drain(&self) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            if self.stops_when_idle() && self.is_draining() && self.active_calls().is_empty() {
                return;
            }
        }
    }

    /// `softswitch reload` and SIGHUP: the dialplan and the dial peers again.
    /// Both are read and checked before either is applied, so a mistake in one
    /// leaves both running as they were; the error is `file:line:col: message`.
    pub fn reload(&self) -> Result<Reloaded, String> {
        let result = |r| crate::metrics::ResultLabels { result: r };
        let reloads = &crate::metrics::metrics().dialplan_reloads;
        let fresh = crate::config::Config::load(&self.config.path)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                load_dialplan(&self.config)
                    .map(|plan| (config, plan))
                    .map_err(|e| format!("{e:#}"))
            });
        let (config, plan) = match fresh {
            Ok(f) => f,
            Err(e) => {
                reloads.get_or_create(&result("failed")).inc();
                crate::events::events().emit(
                    "reload_failed",
                    format!("reload refused: {e}"),
                    serde_json::json!({ "error": e }),
                );
                tracing::error!(
                    "dialplan reload refused, the running plan and dial peers stay: {e}"
                );
                return Err(e);
            }
        };
        reloads.get_or_create(&result("ok")).inc();
        self.globals.apply_plan(&plan);
        let done = Reloaded {
            contexts: plan.contexts().count(),
            peers: config.dial_peers.len(),
        };
        *self.dialplan.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(plan);
        peers::apply(self, &config.dial_peers);
        tracing::info!(contexts = done.contexts, "dialplan reloaded");
        tracing::info!(peers = done.peers, "dial peers reloaded");
        Ok(done)
    }

    /// The operator ends a call (`softswitch hangup`): both sides get a BYE or
    /// a final response, and the CDR says `end_reason = operator`. False when no
    /// call in progress has this UNIQUEID.
    pub fn hang_up(self: &Arc<Self>, uniqueid: &str) -> bool {
        for idx in 0..self.shards.len() {
            let now = Instant::now();
            let mut out = Vec::new();
            let mut st = self.shards[idx].lock();
            let found = self.with_agent(idx, &mut st, |a| a.hang_up_by_operator(uniqueid, now));
            self.pump(idx, &mut st, now, &mut out);
            self.flush(out);
            if found {
                return true;
            }
        }
        false
    }

    fn on_message(self: &Arc<Self>, bytes: Bytes, peer: Peer) {
        let now = Instant::now();
        if self.registrar.guard.admit(peer.addr.ip(), now) == Admission::Drop {
            return;
        }
        let framing = if peer.transport.is_reliable() {
            Framing::Stream
        } else {
            Framing::Datagram
        };
        let msg = match Message::parse(bytes, framing) {
            Ok(m) => m,
            Err(e) => {
                tracing::trace!(source = %peer.addr, error = %e, "dropped unreadable bytes");
                return;
            }
        };
        if msg.is_request()
            && (msg.header(HeaderName::Authorization).is_some()
                || msg.header(HeaderName::ProxyAuthorization).is_some())
            && self.registrar.guard.admit_attempt(peer.addr.ip(), now) == Admission::Drop
        {
            tracing::trace!(source = %peer.addr, "dropped a throttled authentication attempt");
            return;
        }
        crate::metrics::metrics().sip_message("received", msg.buffer());
        let idx = shard_of(msg.call_id().unwrap_or_default(), self.shards.len());
        let mut out = Vec::new();
        {
            let mut st = self.shards[idx].lock();
            if msg.is_request() {
                st.layer.handle_request(now, msg, peer);
            } else {
                st.layer.handle_response(now, msg, peer);
            }
            self.pump(idx, &mut st, now, &mut out);
            self.flush(out);
        }
    }

    /// Drains the layer: events to the dispatcher, transmits to `out`, and wakes the
    /// shard's timer if the next deadline moved earlier.
    fn pump(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) {
        while let Some(ev) = st.layer.poll_event() {
            self.on_event(idx, st, ev, now);
        }
        while let Some(t) = st.layer.poll_transmit() {
            out.push(t);
        }
        let next = st.next_deadline();
        if next.is_some() && st.armed.is_none_or(|armed| next < Some(armed)) {
            st.armed = next;
            self.shards[idx].wake.notify_one();
        }
    }

    /// Sends what a shard produced. Called with the shard lock still held: two workers
    /// handling a callee's 180 and 200 must not put them on the wire in the other
    /// order. Sends never block (UDP `send_to`, a bounded queue per TCP connection).
    fn flush(&self, out: Vec<Transmit>) {
        let metrics = crate::metrics::metrics();
        for t in out {
            metrics.sip_message("sent", &t.bytes);
            let peer = t.peer.addr;
            if let Err(e) = self.transports.send(t) {
                tracing::debug!(%peer, error = %e, "send failed");
            }
        }
    }

    /// Sends a request once, with no client transaction (probes, keepalives:
    /// their own timers decide what silence means), on the shard its Call-ID
    /// belongs to so sends stay in order with that shard's.
    fn send_outside_transactions(self: &Arc<Self>, call_id: &str, peer: Peer, bytes: Bytes) {
        let idx = shard_of(call_id, self.shards.len());
        let now = Instant::now();
        let mut out = Vec::new();
        let mut st = self.shards[idx].lock();
        st.layer.send_stateless(peer, bytes);
        self.pump(idx, &mut st, now, &mut out);
        self.flush(out);
    }

    /// Open SIP TCP connections.
    pub fn tcp_connection_count(&self) -> usize {
        self.transports.connections.len()
    }

    /// A snapshot of every call in progress, oldest first.
    pub fn active_calls(&self) -> Vec<crate::call::view::CallView> {
        let now = Instant::now();
        let mut calls: Vec<_> = self
            .shards
            .iter()
            .flat_map(|s| {
                let st = s.lock();
                st.calls
                    .iter()
                    .filter(|c| c.phase != crate::call::Phase::Ended)
                    .map(|c| c.view(now))
                    .collect::<Vec<_>>()
            })
            .collect();
        calls.sort_by_key(|c| std::cmp::Reverse(c.age));
        calls
    }

    pub fn transaction_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().layer.len()).sum()
    }
}

async fn timer_loop(node: Arc<Node>, idx: usize) {
    let shard = &node.shards[idx];
    loop {
        let deadline = shard.lock().armed;
        match deadline {
            None => {
                shard.wake.notified().await;
                continue;
            }
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = shard.wake.notified() => continue,
                }
            }
        }
        let now = Instant::now();
        let mut out = Vec::new();
        {
            let mut st = shard.lock();
            st.layer.handle_timeout(now);
            st.armed = None;
            node.pump(idx, &mut st, now, &mut out);
            node.with_agent(idx, &mut st, |a| a.handle_timeout(now));
            node.pump(idx, &mut st, now, &mut out);
            node.flush(out);
        }
    }
}

/// What a reload put in place.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Reloaded {
    pub contexts: usize,
    pub peers: usize,
}

/// Digits the relay heard, handed to the call agent of their call's shard.
async fn digit_loop(
    node: Arc<Node>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(usize, String, char)>,
) {
    while let Some((idx, call_id, digit)) = rx.recv().await {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut st = node.shards[idx].lock();
        node.with_agent(idx, &mut st, |a| a.handle_digit(&call_id, digit, now));
        node.pump(idx, &mut st, now, &mut out);
        node.flush(out);
    }
}

/// Mailboxes whose messages changed: NOTIFYs to their phones, off the call's
/// shard (the spool is read and other shards' locks are taken).
async fn mailbox_loop(
    node: Arc<Node>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::voicemail::MailboxId>,
) {
    // The other nodes hear of the change from the voicemail index's writer, once
    // the change is in the database.
    while let Some(mailbox) = rx.recv().await {
        node.mailbox_changed(&mailbox, true);
    }
}

/// Pickup requests: each shard in turn is offered the pickup (one shard lock at
/// a time), then the picker's shard hears where to meet the caller.
async fn pickup_loop(
    node: Arc<Node>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(String, usize, String)>,
) {
    while let Some((target, picker_shard, picker)) = rx.recv().await {
        let room = format!("pickup-{:016x}", rand::random::<u64>());
        let mut found = false;
        for idx in 0..node.shards.len() {
            let now = Instant::now();
            let mut out = Vec::new();
            let mut st = node.shards[idx].lock();
            found = node.with_agent(idx, &mut st, |a| a.offer_pickup(&target, &room, now));
            node.pump(idx, &mut st, now, &mut out);
            node.flush(out);
            if found {
                break;
            }
        }
        let now = Instant::now();
        let mut out = Vec::new();
        let mut st = node.shards[picker_shard].lock();
        let room = found.then_some(room.as_str());
        node.with_agent(picker_shard, &mut st, |a| a.pickup_done(&picker, room, now));
        node.pump(picker_shard, &mut st, now, &mut out);
        node.flush(out);
    }
}

/// This node's row in the nodes table, once a second: it is how other nodes
/// and `softswitch cluster` know it is alive.
async fn heartbeat_loop(node: Arc<Node>, started_at: i64) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    // The other nodes' states as last seen, for node_joined / node_lost.
    let mut seen: Option<std::collections::HashMap<String, String>> = None;
    loop {
        tick.tick().await;
        if let Ok(rows) = node.store.nodes().await {
            let now = unix_now_ms();
            let states: std::collections::HashMap<String, String> = rows
                .iter()
                .filter(|r| r.name != node.config.node.name)
                .map(|r| (r.name.clone(), r.state_at(now).to_owned()))
                .collect();
            if let Some(before) = &seen {
                for (name, state) in &states {
                    let was = before.get(name).map(String::as_str);
                    match (was, state.as_str()) {
                        (Some("lost"), "lost") | (Some("up"), "up") => {}
                        (_, "lost") if was.is_some() => crate::events::events().emit(
                            "node_lost",
                            format!("cluster node {name} lost (no heartbeat)"),
                            serde_json::json!({ "name": name }),
                        ),
                        (None | Some("lost" | "stopped"), "up") => crate::events::events().emit(
                            "node_joined",
                            format!("cluster node {name} joined"),
                            serde_json::json!({ "name": name }),
                        ),
                        _ => {}
                    }
                }
            }
            seen = Some(states);
        }
        let state = if node.is_draining() { "draining" } else { "up" };
        match node
            .store
            .heartbeat(&node.node_row(started_at, state))
            .await
        {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("heartbeat written again");
            }
            Ok(()) => {}
            // Said once, not every second.
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "cannot write this node's heartbeat");
            }
            Err(_) => {}
        }
        node.close_lost_calls(None).await;
    }
}

impl Node {
    /// Writes `node_lost` CDRs for the calls of nodes that died (or of this node's
    /// previous life, at start).
    async fn close_lost_calls(&self, restarting: Option<&str>) {
        match self.store.close_lost_calls(unix_now_ms(), restarting).await {
            Ok(cdrs) if !cdrs.is_empty() => {
                let mut nodes: Vec<&str> = cdrs.iter().map(|c| c.node.as_str()).collect();
                nodes.dedup();
                tracing::warn!(calls = cdrs.len(), nodes = %nodes.join(","), "closed the calls of lost nodes (node_lost)");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot close the calls of lost nodes"),
        }
    }
}

/// Expired registrations, old nonce-counts and quiet guard records, every few seconds.
/// On a shared PostgreSQL database, keeps this node's location cache and AstDB map in
/// step with what the other nodes commit (see [`crate::store::share`]).
async fn share_loop(node: Arc<Node>) {
    use crate::store::share::{Follower, RESYNC, Shared};
    let Store::Postgres(pool) = &node.store else {
        return;
    };
    let mut retry = Duration::from_millis(200);
    loop {
        let mut follower = match Follower::connect(pool).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the other nodes' changes; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        retry = Duration::from_millis(200);
        // Whatever changed while this node was not listening.
        if let Err(e) = node.resync_shared().await {
            tracing::warn!(error = %e, "cannot re-read shared state");
        }
        let mut resync = tokio::time::interval(RESYNC);
        resync.tick().await;
        loop {
            let change = tokio::select! {
                c = follower.next() => c,
                _ = resync.tick() => {
                    if let Err(e) = node.resync_shared().await {
                        tracing::warn!(error = %e, "cannot re-read shared state");
                    }
                    continue;
                }
            };
            let result = match change {
                Ok(Some(Shared::Location(aors))) => node.refresh_location(&aors).await,
                Ok(Some(Shared::Mailbox { origin, mailbox })) => {
                    // Its own changes were handled when they were made; phones
                    // without a subscription heard from the node that made them.
                    match crate::voicemail::MailboxId::parse(&mailbox) {
                        Some(mb) if origin != node.config.node.name => {
                            let read = node.voicemail.reload_mailbox(&node.store, &mb).await;
                            node.mailbox_changed(&mb, false);
                            read
                        }
                        _ => Ok(()),
                    }
                }
                Ok(Some(Shared::AstDb { family, key })) => {
                    match node.store.astdb_get(&family, &key).await {
                        Ok(v) => {
                            node.astdb.refresh(family, key, v);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Ok(None) => {
                    tracing::warn!("lost the database notification connection; re-reading");
                    node.resync_shared().await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "database notifications failed; reconnecting");
                    break;
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot take in another node's change");
            }
        }
    }
}

impl Node {
    /// Re-reads these AORs' bindings into the location cache.
    async fn refresh_location(&self, aors: &[String]) -> Result<(), crate::store::StoreError> {
        for (aor, bindings) in self.store.bindings_of(aors, unix_now()).await? {
            self.registrar
                .location
                .with_aor(&aor, |list| *list = bindings);
        }
        Ok(())
    }

    /// Re-reads every shared binding and AstDB entry.
    async fn resync_shared(&self) -> Result<(), crate::store::StoreError> {
        let bindings = self.store.load_bindings(unix_now()).await?;
        self.registrar.location.load(bindings);
        self.voicemail.reload(&self.store).await?;
        self.astdb.reload(&self.store).await
    }
}

async fn sweep_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let wall = unix_now();
        let expired = node.registrar.location.sweep(wall);
        for b in &expired {
            tracing::info!(aor = %b.aor, contact = %b.contact, "registration expired");
        }
        if let Err(e) = node.store.delete_expired(wall).await {
            tracing::warn!(error = %e, "could not delete expired registrations");
        }
        node.registrar.guard.sweep(Instant::now());
        node.sweep_subscriptions(wall);
        node.registrar.auth.sweep(wall);
    }
}

/// Locks a Mutex of plain data, ignoring poison: a panic elsewhere leaves no
/// half-written value behind in what these guard.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
