//! The call agent driven by hand: phones are SIP text written here, the clock is an
//! `Instant` moved by the test, media is a stand-in that records what the agent told
//! it. Every RFC 3261 timer the agent and its transactions use fires at the simulated
//! time it should.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::relay::Side as RelaySide;

use super::{Admission, CallAgent, MediaSession, Recorder, Services};
use crate::call::CallTable;
use crate::config::Config;
use crate::registrar::Binding;
use crate::sip::transaction::{Peer, TimerConfig, TransactionLayer, TransportKind, TuEvent, TxKey};
use crate::sip::wire::{Framing, HeaderName, Message, Method, ResponseBuilder};
use crate::store::cdr::Cdr;

const CALLER: &str = "127.0.0.1:5071";
const BOB: &str = "127.0.0.1:5072";
const CAROL: &str = "127.0.0.1:5073";
const RELAY_A: &str = "127.0.0.9:40000";
const RELAY_B: &str = "127.0.0.9:40002";

const PLAN: &str = "\
[internal]
exten => 1002,1,Dial(SIP/1002,20)
 same => n,Hangup()
exten => 1010,1,Dial(SIP/1002&SIP/1003,20)
 same => n,Hangup()
exten => 1020,1,Dial(SIP/1002,2)
 same => n,Hangup()
exten => 1030,1,Dial(SIP/1002,20,rTt)
 same => n,Hangup()
exten => 600,1,Answer()
 same => n,Echo()
 same => n,Hangup()
exten => 700,1,Playback(hello-world)
 same => n,Set(DB(test/status)=${PLAYBACKSTATUS})
 same => n,SayDigits(42)
 same => n,Hangup()
exten => 800,1,Background(hello-world)
 same => n,WaitExten(3)
exten => 1,1,Set(DB(test/choice)=one)
 same => n,Hangup()
exten => 2,1,Set(DB(test/choice)=two)
 same => n,Hangup()
exten => t,1,Set(DB(test/choice)=timeout)
 same => n,Hangup()
exten => 810,1,Read(PIN,hello-world,4)
 same => n,Set(DB(test/pin)=${PIN}:${READSTATUS})
 same => n,Hangup()
exten => 820,1,Answer()
 same => n,Echo()
 same => n,Set(DB(test/echo)=done)
 same => n,Hangup()
exten => 830,1,Record(msg%d.wav,2,5,${OPTS})
 same => n,Set(DB(test/rec)=${RECORD_STATUS}:${RECORDED_FILE})
 same => n,Hangup()
exten => 831,1,Set(OPTS=k)
 same => n,Goto(830,1)
exten => 840,1,Answer()
 same => n,MixMonitor(calls/${UNIQUEID}.wav)
 same => n,Echo()
 same => n,Hangup()
exten => 850,1,VoiceMail(1002@default,u)
 same => n,Set(DB(test/vm)=${VMSTATUS})
 same => n,Hangup()
exten => 851,1,VoiceMailMain(1002@default)
 same => n,Set(DB(test/vmm)=done)
 same => n,Hangup()
exten => 860,1,ConfBridge(sales)
 same => n,Set(DB(test/conf)=${CONFBRIDGE_RESULT})
 same => n,Hangup()
exten => 870,1,Answer()
 same => n,Busy(3)
exten => 871,1,Busy()
exten => 880,1,Answer()
 same => n,SendDTMF(12#)
 same => n,Set(DB(test/dtmf)=sent)
 same => n,Hangup()
exten => _*67X.,1,Set(CALLERID(pres)=prohib)
 same => n,Dial(SIP/${EXTEN:3},20)
exten => _*8XXXX,1,Pickup(${EXTEN:2})
 same => n,Set(DB(test/pickup)=nothing)
 same => n,Hangup()
exten => 890,1,SayNumber(242)
 same => n,Set(DB(test/said)=yes)
 same => n,Hangup()
exten => 1040,1,Dial(SIP/1002,20,dD(55:66))
 same => n,Hangup()
exten => 5,1,Set(DB(test/exit)=five)
 same => n,Hangup()
exten => _33X,1,Dial(PEER/${EXTEN},20)
 same => n,Set(DB(test/peer)=${DIALSTATUS})
 same => n,Hangup()
[from-site-b]
exten => _1XXX,1,Set(DB(test/inbound)=${CALLERID(num)}:${EXTEN})
 same => n,Hangup()
[internal]
exten => 701,1,Playback(no-such-sound)
 same => n,Set(DB(test/status)=${PLAYBACKSTATUS})
 same => n,Hangup()
";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// What the agent told one call's media anchor, and when media last flowed.
#[derive(Default)]
struct MediaLog {
    remotes: HashMap<&'static str, SocketAddr>,
    last_packet: Option<Instant>,
    echo: bool,
    /// (payload bytes, payload type, looped) of every prompt played to the caller.
    played: Vec<(usize, u8, bool)>,
    /// How often playing was stopped.
    stops: usize,
    /// The telephone-event payload type the relay listens for.
    dtmf_pt: Option<u8>,
    /// (file, sides) of every recording started.
    recordings: Vec<(std::path::PathBuf, [bool; 2])>,
    /// How each finished recording ended, in order.
    endings: Vec<media::record::Ending>,
    /// The caller's voice is heard until this instant (silence afterwards).
    voice_until: Option<Instant>,
    /// Finished recordings leave a WAV file of this many seconds where they were
    /// asked to (voicemail tests, whose spool is a temporary directory).
    write_seconds: Option<f64>,
    /// (room, payload type) of every conference joined, and whether the seat
    /// is still held.
    seats: Vec<(String, u8)>,
    /// (digits, payload type, duration, gap) of every SendDTMF.
    sent_digits: Vec<(String, u8, Duration, Duration)>,
    seated: Arc<std::sync::atomic::AtomicBool>,
    muted: Arc<std::sync::atomic::AtomicBool>,
    /// Seats per conference room.
    rooms: Arc<Mutex<HashMap<String, usize>>>,
}

struct FakeSeat(
    Arc<std::sync::atomic::AtomicBool>,
    Arc<std::sync::atomic::AtomicBool>,
    /// The room and how many sit in it.
    String,
    Arc<Mutex<HashMap<String, usize>>>,
);

impl super::ConferenceSeat for FakeSeat {
    fn set_muted(&self, muted: bool) {
        self.1.store(muted, std::sync::atomic::Ordering::Relaxed);
    }
    fn muted(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn members(&self) -> usize {
        self.3.lock().unwrap().get(&self.2).copied().unwrap_or(0)
    }
}

impl Drop for FakeSeat {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
        *self.3.lock().unwrap().entry(self.2.clone()).or_default() -= 1;
    }
}

struct FakeRecorder(Arc<Mutex<MediaLog>>, std::path::PathBuf);

impl Recorder for FakeRecorder {
    fn silent_for(&self, now: Instant) -> Duration {
        match self.0.lock().unwrap().voice_until {
            Some(t) => now.saturating_duration_since(t),
            None => Duration::ZERO,
        }
    }
    fn finish(self: Box<Self>, ending: media::record::Ending) {
        let mut log = self.0.lock().unwrap();
        log.endings.push(ending);
        if let Some(seconds) = log.write_seconds
            && ending != media::record::Ending::Discard
        {
            let bytes = vec![0u8; 44 + (seconds * 16_000.0) as usize];
            std::fs::write(&self.1, bytes).unwrap();
        }
    }
}

struct FakeMedia(Arc<Mutex<MediaLog>>);

impl MediaSession for FakeMedia {
    fn local_rtp(&self, side: RelaySide) -> SocketAddr {
        match side {
            RelaySide::A => addr(RELAY_A),
            RelaySide::B => addr(RELAY_B),
        }
    }
    fn set_remote(&self, side: RelaySide, rtp: SocketAddr, _: Option<SocketAddr>, _: bool) {
        let name = if side == RelaySide::A { "A" } else { "B" };
        self.0.lock().unwrap().remotes.insert(name, rtp);
    }
    fn set_echo(&self, side: RelaySide, on: bool) {
        assert_eq!(side, RelaySide::A, "only the caller is echoed");
        self.0.lock().unwrap().echo = on;
    }
    fn play(&self, side: RelaySide, payload: Arc<[u8]>, payload_type: u8, looped: bool) {
        assert_eq!(side, RelaySide::A, "prompts go to the caller");
        let mut log = self.0.lock().unwrap();
        log.played.push((payload.len(), payload_type, looped));
    }
    fn stop_playing(&self) {
        self.0.lock().unwrap().stops += 1;
    }
    fn send_digits(
        &self,
        side: RelaySide,
        digits: &str,
        pt: u8,
        duration: Duration,
        gap: Duration,
    ) {
        let _ = side;
        let mut log = self.0.lock().unwrap();
        log.sent_digits
            .push((digits.to_string(), pt, duration, gap));
    }
    fn listen_for_digits(&self, side: RelaySide, payload_type: u8, _: media::relay::DigitSink) {
        assert_eq!(side, RelaySide::A);
        self.0.lock().unwrap().dtmf_pt = Some(payload_type);
    }
    fn idle_for(&self, now: Instant) -> Duration {
        match self.0.lock().unwrap().last_packet {
            Some(t) => now.saturating_duration_since(t),
            None => Duration::from_secs(3600),
        }
    }
    fn report(&self) -> serde_json::Value {
        serde_json::json!({ "fake": true })
    }
    fn join_conference(&self, room: &str, payload_type: u8) -> Box<dyn super::ConferenceSeat> {
        let mut log = self.0.lock().unwrap();
        log.seats.push((room.to_string(), payload_type));
        log.seated.store(true, std::sync::atomic::Ordering::Relaxed);
        *log.rooms
            .lock()
            .unwrap()
            .entry(room.to_string())
            .or_default() += 1;
        Box::new(FakeSeat(
            log.seated.clone(),
            log.muted.clone(),
            room.to_string(),
            log.rooms.clone(),
        ))
    }
    fn record(&self, spec: &media::record::RecordSpec) -> Result<Box<dyn Recorder>, String> {
        let mut log = self.0.lock().unwrap();
        log.recordings.push((spec.path.clone(), spec.sides));
        Ok(Box::new(FakeRecorder(
            Arc::clone(&self.0),
            spec.path.clone(),
        )))
    }
}

struct FakeNode {
    config: Config,
    plan: Arc<dialplan::Dialplan>,
    globals: dialplan::Globals,
    db: RefCell<dialplan::MemoryDb>,
    bindings: HashMap<String, Vec<Binding>>,
    media: Arc<Mutex<MediaLog>>,
    seq: Cell<u64>,
    cdrs: RefCell<Vec<Cdr>>,
    /// Mailboxes the agent said changed.
    changed: RefCell<Vec<String>>,
    /// Calls in progress per endpoint, as the agent reported them.
    in_use: RefCell<HashMap<String, i32>>,
    /// (ringing endpoint, picker's Call-ID) of every Pickup asked for.
    pickups: RefCell<Vec<(String, String)>>,
    /// The node's dial-peer table, fed by the agent's evidence.
    peers: RefCell<crate::runtime::peers::PeerTable>,
}

struct Env<'a> {
    node: &'a FakeNode,
    db: std::cell::RefMut<'a, dialplan::MemoryDb>,
    wall_ms: i64,
}

impl dialplan::Env for Env<'_> {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.wall_ms).unwrap()
    }
    fn random(&mut self) -> u64 {
        4
    }
    fn db(&mut self) -> &mut dyn dialplan::AstDb {
        &mut *self.db
    }
    fn globals(&self) -> &dialplan::Globals {
        &self.node.globals
    }
}

impl Services for FakeNode {
    fn config(&self) -> &Config {
        &self.config
    }
    fn authenticate(&self, msg: &Message, _: Peer, _: i64, _: Instant) -> Admission {
        let user = msg
            .header(HeaderName::ProxyAuthorization)
            .and_then(|h| h.split("username=\"").nth(1))
            .and_then(|rest| rest.split('"').next());
        match user {
            Some(u) => Admission::Caller { user: u.to_owned() },
            None => Admission::Refuse {
                status: 407,
                reason: "Proxy Authentication Required".into(),
                headers: vec![(
                    "Proxy-Authenticate",
                    "Digest realm=\"pbx.test\", nonce=\"n\"".into(),
                )],
            },
        }
    }
    fn locate(&self, user: &str, _: i64) -> Vec<Binding> {
        self.bindings.get(user).cloned().unwrap_or_default()
    }
    fn allocate_media(&self) -> Result<Box<dyn MediaSession>, String> {
        Ok(Box::new(FakeMedia(self.media.clone())))
    }
    fn dialplan(&self) -> Arc<dialplan::Dialplan> {
        self.plan.clone()
    }
    fn with_env(&self, wall_ms: i64, f: &mut dyn FnMut(&mut dyn dialplan::Env)) {
        let mut env = Env {
            node: self,
            db: self.db.borrow_mut(),
            wall_ms,
        };
        f(&mut env);
    }
    fn next_seq(&self) -> u64 {
        self.seq.set(self.seq.get() + 1);
        self.seq.get()
    }
    fn leg_call_id(&self) -> String {
        format!("leg-{}", self.next_seq())
    }
    fn write_cdr(&self, cdr: Cdr) {
        self.cdrs.borrow_mut().push(cdr);
    }
    fn request_pickup(&self, target: &str, picker: &str) {
        self.pickups
            .borrow_mut()
            .push((target.to_string(), picker.to_string()));
    }
    fn peer_routes(&self) -> Vec<crate::call::peer_route::PeerRoute> {
        self.peers.borrow().routes()
    }
    fn peer_evidence(&self, tag: u32, evidence: gateway::health::Evidence, now: Instant) {
        self.peers.borrow_mut().evidence(tag, evidence, now);
    }
    fn peer_calls(&self, tag: u32, delta: i32) {
        self.peers.borrow_mut().calls(tag, delta);
    }
    fn device_use(&self, user: &str, busy: bool) {
        let mut in_use = self.in_use.borrow_mut();
        let n = in_use.entry(user.to_string()).or_insert(0);
        if busy {
            *n += 1;
        } else {
            *n -= 1;
        }
    }
    fn mailbox_changed(&self, mailbox: &crate::voicemail::MailboxId) {
        self.changed.borrow_mut().push(mailbox.to_string());
    }
    fn digit_sink(&self, _: &str) -> media::relay::DigitSink {
        // Tests hand digits to the agent themselves.
        Arc::new(|_, _| {})
    }
    fn prompt(
        &self,
        names: &[String],
        _: Option<&str>,
    ) -> Result<Arc<media::prompt::Prompt>, String> {
        // Every known sound is 1.5 s long, digits half a second.
        let mut samples = Vec::new();
        for n in names {
            let len = match n.as_str() {
                "hello-world" => 12_000,
                d if d.starts_with("digits/") => 4_000,
                // Voicemail prompts and messages (absolute paths): a second each.
                v if v.starts_with("vm-") || v == "goodbye" || v.starts_with('/') => 8_000,
                other => return Err(format!("no sound `{other}`")),
            };
            samples.extend(std::iter::repeat_n(0i16, len));
        }
        Ok(Arc::new(media::prompt::Prompt::from_samples(samples)))
    }
}

fn binding(user: &str, at: &str) -> Binding {
    Binding {
        aor: format!("sip:{user}@pbx.test"),
        contact: format!("<sip:{user}@{at}>"),
        expires_at: i64::MAX,
        call_id: format!("reg-{user}"),
        cseq: 1,
        q: None,
        instance: None,
        reg_id: None,
        path: Vec::new(),
        transport: TransportKind::Udp,
        source: addr(at),
        user_agent: "phone".into(),
        updated_at: 0,
    }
}

/// The agent, its transaction layer and the phones' view of the wire.
struct Net {
    node: FakeNode,
    layer: TransactionLayer,
    calls: CallTable,
    t0: Instant,
    now: Instant,
    /// Everything the switch sent and no test has looked at yet.
    wire: Vec<(SocketAddr, Message)>,
}

impl Net {
    fn new(media_timeout: u64) -> Net {
        Net::with_config(media_timeout, "")
    }

    fn with_config(media_timeout: u64, extra: &str) -> Net {
        let toml = format!(
            "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\ndomain = \"pbx.test\"\n\
             [rtp]\nmedia_timeout = {media_timeout}\n\
             [[endpoint]]\nname = \"1001\"\npassword = \"x\"\ncontext = \"internal\"\n\
             callerid = \"Alice <1001>\"\n\
             [[endpoint]]\nname = \"1002\"\npassword = \"x\"\ncontext = \"internal\"\n\
             [[endpoint]]\nname = \"1003\"\npassword = \"x\"\ncontext = \"internal\"\n{extra}"
        );
        let config = Config::parse(&toml, Path::new("test.toml")).unwrap();
        let plan = dialplan::Dialplan::load_str("t.conf", PLAN, ".".as_ref())
            .unwrap()
            .plan;
        let globals = dialplan::Globals::from_plan(&plan);
        let bindings = HashMap::from([
            ("1002".to_owned(), vec![binding("1002", BOB)]),
            ("1003".to_owned(), vec![binding("1003", CAROL)]),
        ]);
        let t0 = Instant::now();
        let peers = RefCell::new(crate::runtime::peers::PeerTable::new(
            &config.dial_peers,
            t0,
        ));
        Net {
            node: FakeNode {
                peers,
                config,
                plan: Arc::new(plan),
                globals,
                db: Default::default(),
                bindings,
                media: Default::default(),
                seq: Cell::new(0),
                cdrs: Default::default(),
                changed: Default::default(),
                in_use: Default::default(),
                pickups: Default::default(),
            },
            layer: TransactionLayer::new(TimerConfig::default()),
            calls: CallTable::default(),
            t0,
            now: t0,
            wire: Vec::new(),
        }
    }

    fn agent<R>(&mut self, f: impl FnOnce(&mut CallAgent<'_>) -> R) -> R {
        let wall_ms = 1_700_000_000_000 + (self.now - self.t0).as_millis() as i64;
        let mut agent = CallAgent {
            svc: &self.node,
            layer: &mut self.layer,
            calls: &mut self.calls,
            wall_ms,
        };
        f(&mut agent)
    }

    /// A phone at `from` sends `text` to the switch.
    fn deliver(&mut self, from: &str, text: impl Into<Bytes>) {
        let msg = Message::parse(text.into(), Framing::Datagram).expect("test message parses");
        let peer = Peer::udp(addr(from));
        if msg.is_request() {
            self.layer.handle_request(self.now, msg, peer);
        } else {
            self.layer.handle_response(self.now, msg, peer);
        }
        self.pump();
    }

    /// Routes the layer's events to the agent the way the node's dispatcher does.
    fn pump(&mut self) {
        let now = self.now;
        while let Some(ev) = self.layer.poll_event() {
            match ev {
                TuEvent::Request {
                    key: Some(key),
                    msg,
                    source,
                } => {
                    let has_tag = msg.to_header().is_ok_and(|t| t.tag().is_some());
                    if msg.method() == Some(&Method::Invite) && !has_tag {
                        self.agent(|a| a.handle_invite(key, msg, source, now));
                    } else {
                        let known = self.agent(|a| a.handle_in_dialog(key, msg, source, now));
                        assert!(known, "an in-dialog request for no call");
                    }
                }
                TuEvent::Request { key: None, msg, .. } => self.agent(|a| a.handle_ack(&msg)),
                TuEvent::Response { key, msg } => {
                    self.agent(|a| a.handle_response(key, msg, now));
                }
                TuEvent::StrayResponse { msg, .. } => {
                    self.agent(|a| a.handle_stray_response(&msg, now))
                }
                TuEvent::Timeout {
                    key: TxKey::Client(k),
                }
                | TuEvent::TransportError {
                    key: TxKey::Client(k),
                } => {
                    self.agent(|a| a.handle_client_failure(&k, now));
                }
                TuEvent::Timeout { .. } | TuEvent::TransportError { .. } => {}
                TuEvent::Unmatchable { msg, .. } => panic!("unmatchable: {msg:?}"),
            }
        }
        while let Some(t) = self.layer.poll_transmit() {
            let msg = Message::parse(t.bytes, Framing::Datagram).expect("the switch sent SIP");
            self.wire.push((t.peer.addr, msg));
        }
    }

    /// Moves the clock by `by`, firing every deadline on the way at its own time.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            let next = [self.layer.poll_timeout(), self.calls.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    self.layer.handle_timeout(now);
                    self.pump();
                    self.agent(|a| a.handle_timeout(now));
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    /// The first unread message sent to `to` that `what` describes ("INVITE", "180",
    /// "ACK"...); panics with what was sent instead.
    fn expect(&mut self, to: &str, what: &str) -> Message {
        let to = addr(to);
        let pos = self
            .wire
            .iter()
            .position(|(a, m)| *a == to && describe(m) == what);
        match pos {
            Some(i) => self.wire.remove(i).1,
            None => panic!(
                "nothing like {what} was sent to {to}; unread: {:?}",
                self.wire
                    .iter()
                    .map(|(a, m)| format!("{} to {a}", describe(m)))
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// How many unread messages like `what` went to `to` (and forgets them).
    fn count(&mut self, to: &str, what: &str) -> usize {
        let to = addr(to);
        let before = self.wire.len();
        self.wire
            .retain(|(a, m)| !(*a == to && describe(m) == what));
        before - self.wire.len()
    }

    fn cdrs(&self) -> Vec<Cdr> {
        self.node.cdrs.borrow().clone()
    }

    fn remote(&self, side: &str) -> Option<SocketAddr> {
        self.node.media.lock().unwrap().remotes.get(side).copied()
    }
}

/// "INVITE", "ACK", "180", "200 INVITE"-style names for a message.
fn describe(m: &Message) -> String {
    match m.status() {
        Some(s) if s >= 200 => format!(
            "{s} {}",
            m.cseq().map(|c| c.method.to_string()).unwrap_or_default()
        ),
        Some(s) => s.to_string(),
        None => m.method().map(|x| x.to_string()).unwrap_or_default(),
    }
}

fn sdp(port: u16, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

fn media_port(m: &Message) -> SocketAddr {
    let text = std::str::from_utf8(m.body()).unwrap();
    let sdp = media::sdp::Sdp::parse(text).unwrap();
    sdp.media()[0].rtp.unwrap()
}

/// The caller's INVITE to `exten`, authenticated unless `auth` is false.
fn invite(call_id: &str, exten: &str, auth: bool) -> String {
    let creds = if auth { CREDS } else { "" };
    invite_raw(call_id, exten, creds, Some(sdp(7000, "sendrecv")))
}

const CREDS: &str = "Proxy-Authorization: Digest username=\"1001\", realm=\"pbx.test\"\r\n";

/// An authenticated INVITE with `extra` header lines and an optional offer.
fn invite_with(call_id: &str, exten: &str, extra: &str, body: Option<String>) -> String {
    invite_raw(call_id, exten, &format!("{CREDS}{extra}"), body)
}

fn invite_raw(call_id: &str, exten: &str, extra: &str, body: Option<String>) -> String {
    let (ct, body) = match body {
        Some(b) => ("Content-Type: application/sdp\r\n", b),
        None => ("", String::new()),
    };
    format!(
        "INVITE sip:{exten}@pbx.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-{call_id}-1\r\n\
         From: <sip:1001@pbx.test>;tag=caller\r\nTo: <sip:{exten}@pbx.test>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@{CALLER}>\r\n\
         Max-Forwards: 70\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A request from the caller inside its dialog with the switch.
fn caller_request(method: &str, call_id: &str, to_tag: &str, cseq: u32, body: &str) -> String {
    caller_request_with(method, call_id, to_tag, cseq, "", body)
}

fn caller_request_with(
    method: &str,
    call_id: &str,
    to_tag: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    format!(
        "{method} sip:switch@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-{call_id}-{method}-{cseq}\r\n\
         From: <sip:1001@pbx.test>;tag=caller\r\nTo: <sip:1002@pbx.test>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}{ct}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The caller's CANCEL of its first INVITE.
fn cancel(call_id: &str) -> String {
    format!(
        "CANCEL sip:1002@pbx.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-{call_id}-1\r\n\
         From: <sip:1001@pbx.test>;tag=caller\r\nTo: <sip:1002@pbx.test>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A phone's response to a request the switch sent it.
fn reply(req: &Message, status: u16, tag: &str, body: Option<&str>) -> Bytes {
    reply_with(req, status, tag, &[], body)
}

fn reply_with(
    req: &Message,
    status: u16,
    tag: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Bytes {
    let mut b = ResponseBuilder::new(req, status, "Phone", None, Some(tag))
        .header("Contact", format!("<sip:phone@{BOB}>"));
    for (name, value) in headers {
        b = b.header(name, value);
    }
    match body {
        Some(s) => b.body(Some("application/sdp"), s.as_bytes()),
        None => b.finish(),
    }
}

fn to_tag(m: &Message) -> String {
    m.to_header().unwrap().tag().unwrap().to_owned()
}

/// Caller 1001 reaches 1002, who answers; returns the caller's 200 (its To tag is the
/// caller's dialog) and Bob's INVITE.
fn answered_call(net: &mut Net, call_id: &str) -> (Message, Message) {
    net.deliver(CALLER, invite(call_id, "1002", true));
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 180, "bob", None));
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    net.expect(BOB, "ACK");
    let ok = net.expect(CALLER, "200 INVITE");
    (ok, leg)
}

#[test]
fn an_answered_call_is_anchored_relayed_and_billed() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("c1", "1002", true));
    net.expect(CALLER, "100");
    let leg = net.expect(BOB, "INVITE");
    assert_eq!(
        media_port(&leg),
        addr(RELAY_B),
        "the callee is offered the relay"
    );
    assert_eq!(net.remote("A"), Some(addr("127.0.0.1:7000")));
    assert!(leg.header(HeaderName::From).unwrap().contains("Alice"));

    net.deliver(BOB, reply(&leg, 180, "bob", None));
    net.expect(CALLER, "180");
    net.advance(Duration::from_secs(2));
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    let ack = net.expect(BOB, "ACK");
    assert_eq!(to_tag(&ack), "bob");
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(
        media_port(&ok),
        addr(RELAY_A),
        "the caller is answered with the relay"
    );
    assert_eq!(net.remote("B"), Some(addr("127.0.0.1:8000")));

    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "c1", &tag, 1, ""));
    net.advance(Duration::from_secs(5));
    assert_eq!(
        net.count(CALLER, "200 INVITE"),
        0,
        "an ACKed 2xx is not re-sent"
    );

    net.deliver(CALLER, caller_request("BYE", "c1", &tag, 2, ""));
    net.expect(CALLER, "200 BYE");
    let bye = net.expect(BOB, "BYE");
    net.deliver(BOB, reply(&bye, 200, "bob", None));
    let cdrs = net.cdrs();
    assert_eq!(cdrs.len(), 1);
    let cdr = &cdrs[0];
    assert_eq!(cdr.disposition, "ANSWERED");
    assert_eq!((cdr.duration, cdr.billsec), (7, 5));
    assert_eq!(cdr.end_reason, "caller_hangup");
    assert_eq!((cdr.src.as_str(), cdr.dst.as_str()), ("1001", "1002"));
    net.advance(Duration::from_secs(40));
    assert!(
        net.calls.is_empty(),
        "the call is forgotten once its BYE is done"
    );
}

#[test]
fn an_unacknowledged_2xx_is_resent_with_backoff_then_both_sides_are_hung_up() {
    let mut net = Net::new(0);
    let (_, _) = answered_call(&mut net, "c2");
    // T1 doubling up to T2: re-sent at 0.5, 1.5, 3.5, 7.5, then every 4 s until 32 s.
    net.advance(Duration::from_millis(3600));
    assert_eq!(net.count(CALLER, "200 INVITE"), 3);
    net.advance(Duration::from_millis(28_000));
    assert_eq!(net.count(CALLER, "200 INVITE"), 7);
    assert_eq!(net.count(CALLER, "BYE"), 0);
    net.advance(Duration::from_millis(500));
    net.expect(CALLER, "BYE");
    net.expect(BOB, "BYE");
    let cdrs = net.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].end_reason, "no_ack");
}

#[test]
fn a_ring_timeout_cancels_the_leg_and_the_caller_gets_480() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("c3", "1020", true));
    let leg = net.expect(BOB, "INVITE");
    net.advance(Duration::from_millis(300));
    net.deliver(BOB, reply(&leg, 180, "bob", None));
    net.advance(Duration::from_millis(1690));
    assert_eq!(
        net.count(BOB, "CANCEL"),
        0,
        "nothing before the Dial timeout"
    );
    net.advance(Duration::from_millis(20));
    let c = net.expect(BOB, "CANCEL");
    assert_eq!(c.header(HeaderName::Via), leg.header(HeaderName::Via));
    net.deliver(BOB, reply(&c, 200, "bob", None));
    net.deliver(BOB, reply(&leg, 487, "bob", None));
    net.expect(BOB, "ACK");
    net.expect(CALLER, "480 INVITE");
    let cdrs = net.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].disposition, "NO ANSWER");
    assert_eq!(cdrs[0].hangup_cause, 19);
    assert_eq!(cdrs[0].pdd_ms, Some(300), "INVITE to the callee's 180");
}

#[test]
fn a_callee_answering_after_the_caller_cancelled_is_acked_and_hung_up() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("c4", "1002", true));
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 180, "bob", None));
    net.deliver(CALLER, cancel("c4"));
    net.expect(CALLER, "200 CANCEL");
    net.expect(CALLER, "487 INVITE");
    let c = net.expect(BOB, "CANCEL");
    // Bob answered before the CANCEL reached him.
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    net.deliver(BOB, reply(&c, 481, "bob", None));
    net.expect(BOB, "ACK");
    let bye = net.expect(BOB, "BYE");
    assert_eq!(to_tag(&bye), "bob");
    net.deliver(BOB, reply(&bye, 200, "bob", None));
    assert_eq!(
        net.count(CALLER, "200 INVITE"),
        0,
        "the caller is not answered"
    );
    let cdrs = net.cdrs();
    assert_eq!(cdrs.len(), 1, "one CDR per call");
    assert_eq!(cdrs[0].end_reason, "caller_cancel");
    net.advance(Duration::from_secs(40));
    assert!(net.calls.is_empty());
}

#[test]
fn the_first_of_two_phones_to_answer_wins_and_the_other_is_cancelled() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("c5", "1010", true));
    let bob = net.expect(BOB, "INVITE");
    let carol = net.expect(CAROL, "INVITE");
    assert_ne!(bob.call_id(), carol.call_id());
    net.deliver(CAROL, reply(&carol, 180, "carol", None));
    net.deliver(BOB, reply(&bob, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    net.expect(BOB, "ACK");
    net.expect(CALLER, "200 INVITE");
    let c = net.expect(CAROL, "CANCEL");
    net.deliver(CAROL, reply(&c, 200, "carol", None));
    net.deliver(CAROL, reply(&carol, 487, "carol", None));
    net.expect(CAROL, "ACK");
    assert_eq!(net.count(CAROL, "BYE"), 0);
}

#[test]
fn a_busy_callee_makes_the_caller_busy() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("c6", "1002", true));
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 486, "bob", None));
    net.expect(BOB, "ACK");
    net.expect(CALLER, "486 INVITE");
    let cdrs = net.cdrs();
    assert_eq!(cdrs[0].disposition, "BUSY");
    assert_eq!(cdrs[0].hangup_cause, 17);
    assert_eq!(cdrs[0].sip_status, Some(486));
}

#[test]
fn silence_after_the_answer_hangs_the_call_up_within_one_and_a_half_timeouts() {
    let mut net = Net::new(2);
    let (ok, _) = answered_call(&mut net, "c7");
    net.deliver(CALLER, caller_request("ACK", "c7", &to_tag(&ok), 1, ""));
    net.node.media.lock().unwrap().last_packet = Some(net.now);
    net.advance(Duration::from_millis(1900));
    assert_eq!(net.count(CALLER, "BYE"), 0, "media is only 1.9 s quiet");
    net.advance(Duration::from_millis(1100));
    net.expect(CALLER, "BYE");
    net.expect(BOB, "BYE");
    assert_eq!(net.cdrs()[0].end_reason, "media_timeout");
}

#[test]
fn a_reinvite_to_hold_is_reanchored_relayed_and_acked_on_the_other_side() {
    let mut net = Net::new(60);
    let (ok, _) = answered_call(&mut net, "c8");
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "c8", &tag, 1, ""));
    net.deliver(
        CALLER,
        caller_request("INVITE", "c8", &tag, 2, &sdp(7002, "sendonly")),
    );
    let hold = net.expect(BOB, "INVITE");
    assert_eq!(to_tag(&hold), "bob");
    assert_eq!(media_port(&hold), addr(RELAY_B));
    assert!(
        std::str::from_utf8(hold.body())
            .unwrap()
            .contains("a=sendonly")
    );
    assert_eq!(net.remote("A"), Some(addr("127.0.0.1:7002")));
    net.deliver(BOB, reply(&hold, 200, "bob", Some(&sdp(8002, "recvonly"))));
    net.expect(BOB, "ACK");
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(media_port(&ok), addr(RELAY_A));
    assert_eq!(net.remote("B"), Some(addr("127.0.0.1:8002")));
}

#[test]
fn an_unauthenticated_invite_is_challenged_and_starts_nothing() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("c9", "1002", false));
    let r = net.expect(CALLER, "407 INVITE");
    assert!(r.header(HeaderName::ProxyAuthenticate).is_some());
    assert_eq!(net.count(BOB, "INVITE"), 0);
    assert!(net.calls.is_empty());
    assert!(net.cdrs().is_empty());
}

fn header<'m>(m: &'m Message, name: &str) -> Option<&'m str> {
    m.header_other(name)
}

#[test]
fn a_caller_that_requires_100rel_gets_reliable_provisionals_in_turn() {
    let mut net = Net::new(60);
    net.deliver(
        CALLER,
        invite_with(
            "r1",
            "1002",
            "Require: 100rel\r\nSupported: 100rel\r\n",
            Some(sdp(7000, "sendrecv")),
        ),
    );
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 180, "bob", None));
    let ringing = net.expect(CALLER, "180");
    assert_eq!(ringing.header(HeaderName::RSeq), Some("1"));
    assert!(
        ringing
            .header(HeaderName::Require)
            .unwrap()
            .contains("100rel")
    );
    net.advance(Duration::from_millis(600));
    assert_eq!(
        net.count(CALLER, "180"),
        1,
        "re-sent after T1 without a PRACK"
    );

    // Early media while the 180 is unacknowledged waits for its PRACK.
    net.deliver(BOB, reply(&leg, 183, "bob", Some(&sdp(8000, "sendrecv"))));
    assert_eq!(net.count(CALLER, "183"), 0);
    let tag = to_tag(&ringing);
    net.deliver(
        CALLER,
        caller_request_with("PRACK", "r1", &tag, 2, "RAck: 1 1 INVITE\r\n", ""),
    );
    net.expect(CALLER, "200 PRACK");
    let early = net.expect(CALLER, "183");
    assert_eq!(early.header(HeaderName::RSeq), Some("2"));
    assert_eq!(media_port(&early), addr(RELAY_A));

    // The 2xx waits for the PRACK of the provisional that carried SDP.
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    net.expect(BOB, "ACK");
    assert_eq!(net.count(CALLER, "200 INVITE"), 0);
    net.deliver(
        CALLER,
        caller_request_with("PRACK", "r1", &tag, 3, "RAck: 9 1 INVITE\r\n", ""),
    );
    net.expect(CALLER, "481 PRACK");
    net.deliver(
        CALLER,
        caller_request_with("PRACK", "r1", &tag, 4, "RAck: 2 1 INVITE\r\n", ""),
    );
    net.expect(CALLER, "200 PRACK");
    net.expect(CALLER, "200 INVITE");
    net.advance(Duration::from_secs(2));
    assert_eq!(
        net.count(CALLER, "183"),
        0,
        "an acknowledged provisional is not re-sent"
    );
}

#[test]
fn a_reliable_provisional_from_the_callee_is_pracked_once() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("r2", "1002", true));
    let leg = net.expect(BOB, "INVITE");
    assert!(
        leg.header(HeaderName::Supported)
            .unwrap()
            .contains("100rel")
    );
    let rel = [("Require", "100rel"), ("RSeq", "7")];
    net.deliver(BOB, reply_with(&leg, 180, "bob", &rel, None));
    let prack = net.expect(BOB, "PRACK");
    assert_eq!(prack.header(HeaderName::RAck), Some("7 1 INVITE"));
    assert_eq!(to_tag(&prack), "bob");
    assert_eq!(prack.cseq().unwrap().seq, 2);
    assert_eq!(
        prack.request_uri(),
        Some(format!("sip:phone@{BOB}").as_str())
    );
    net.expect(CALLER, "180");
    // A retransmission of the same 180 is neither PRACKed again nor relayed.
    net.deliver(BOB, reply_with(&leg, 180, "bob", &rel, None));
    assert_eq!(net.count(BOB, "PRACK"), 0);
    assert_eq!(net.count(CALLER, "180"), 0);
    net.deliver(BOB, reply(&prack, 200, "bob", None));
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    let ack = net.expect(BOB, "ACK");
    assert_eq!(ack.cseq().unwrap().seq, 1);
    net.expect(CALLER, "200 INVITE");
}

#[test]
fn a_session_the_caller_stops_refreshing_is_torn_down() {
    let mut net = Net::new(0);
    net.deliver(
        CALLER,
        invite_with(
            "s1",
            "1002",
            "Session-Expires: 120;refresher=uac\r\nSupported: timer\r\n",
            Some(sdp(7000, "sendrecv")),
        ),
    );
    let leg = net.expect(BOB, "INVITE");
    assert!(
        header(&leg, "Session-Expires").is_none(),
        "the callee is not asked to time the session"
    );
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    net.expect(BOB, "ACK");
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(
        ok.header(HeaderName::SessionExpires),
        Some("120;refresher=uac")
    );
    assert_eq!(ok.header(HeaderName::Require), Some("timer"));
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "s1", &tag, 1, ""));

    // A refresh at 60 s (a re-INVITE) keeps the call up past the first deadline.
    net.advance(Duration::from_secs(60));
    net.deliver(
        CALLER,
        caller_request_with(
            "INVITE",
            "s1",
            &tag,
            2,
            "Session-Expires: 120;refresher=uac\r\n",
            &sdp(7000, "sendrecv"),
        ),
    );
    let refresh = net.expect(BOB, "INVITE");
    net.deliver(
        BOB,
        reply(&refresh, 200, "bob", Some(&sdp(8000, "sendrecv"))),
    );
    net.expect(BOB, "ACK");
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(
        ok.header(HeaderName::SessionExpires),
        Some("120;refresher=uac")
    );
    net.deliver(CALLER, caller_request("ACK", "s1", &tag, 2, ""));
    net.advance(Duration::from_secs(60));
    assert_eq!(net.count(CALLER, "BYE"), 0, "refreshed 60 s ago");
    // Then silence: 120 s minus 32 s after the refresh, the switch hangs up.
    net.advance(Duration::from_secs(29));
    net.expect(CALLER, "BYE");
    net.expect(BOB, "BYE");
    assert_eq!(net.cdrs()[0].end_reason, "session_expired");
}

#[test]
fn we_refresh_a_session_for_a_caller_without_timer_support() {
    let mut net = Net::new(0);
    net.deliver(
        CALLER,
        invite_with(
            "s2",
            "1002",
            "Session-Expires: 200\r\n",
            Some(sdp(7000, "sendrecv")),
        ),
    );
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(
        ok.header(HeaderName::SessionExpires),
        Some("200;refresher=uas")
    );
    assert_eq!(ok.header(HeaderName::Require), None);
    net.deliver(CALLER, caller_request("ACK", "s2", &to_tag(&ok), 1, ""));
    net.advance(Duration::from_secs(99));
    assert_eq!(net.count(CALLER, "UPDATE"), 0);
    // Every half interval, for as long as the caller answers.
    for n in 0..3 {
        net.advance(Duration::from_secs(if n == 0 { 1 } else { 100 }));
        let update = net.expect(CALLER, "UPDATE");
        assert!(update.body().is_empty());
        assert_eq!(
            update.header(HeaderName::SessionExpires),
            Some("200;refresher=uas")
        );
        net.deliver(CALLER, reply(&update, 200, "caller", None));
        assert_eq!(net.count(CALLER, "UPDATE"), 0);
    }
    assert_eq!(net.count(CALLER, "BYE"), 0);
}

#[test]
fn a_session_interval_below_min_se_gets_422() {
    let mut net = Net::new(60);
    net.deliver(
        CALLER,
        invite_with(
            "s3",
            "1002",
            "Session-Expires: 30\r\n",
            Some(sdp(7000, "sendrecv")),
        ),
    );
    let r = net.expect(CALLER, "422 INVITE");
    assert_eq!(r.header(HeaderName::MinSe), Some("90"));
    assert_eq!(net.count(BOB, "INVITE"), 0);
}

#[test]
fn a_late_offer_is_answered_in_the_callers_ack_and_anchored_both_ways() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite_with("l1", "1002", "", None));
    let leg = net.expect(BOB, "INVITE");
    assert!(leg.body().is_empty(), "no offer to pass on");
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    assert_eq!(
        net.count(BOB, "ACK"),
        0,
        "the ACK waits for the caller's answer"
    );
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(
        media_port(&ok),
        addr(RELAY_A),
        "the callee's offer, anchored"
    );
    assert_eq!(net.remote("B"), Some(addr("127.0.0.1:8000")));
    // The callee re-sends its 2xx meanwhile: still no body-less ACK.
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&sdp(8000, "sendrecv"))));
    assert_eq!(net.count(BOB, "ACK"), 0);

    net.deliver(
        CALLER,
        caller_request("ACK", "l1", &to_tag(&ok), 1, &sdp(7004, "sendrecv")),
    );
    let ack = net.expect(BOB, "ACK");
    assert_eq!(
        media_port(&ack),
        addr(RELAY_B),
        "the caller's answer, anchored"
    );
    assert_eq!(net.remote("A"), Some(addr("127.0.0.1:7004")));
}

#[test]
fn record_route_and_path_shape_the_dialogs_routes() {
    let mut net = Net::new(60);
    let mut b = binding("1002", BOB);
    b.path = vec!["<sip:edge.test;lr>".into()];
    net.node.bindings.insert("1002".into(), vec![b]);
    net.deliver(
        CALLER,
        invite_with(
            "rr1",
            "1002",
            "Record-Route: <sip:proxy.test;lr>\r\n",
            Some(sdp(7000, "sendrecv")),
        ),
    );
    let leg = net.expect(BOB, "INVITE");
    assert_eq!(leg.header(HeaderName::Route), Some("<sip:edge.test;lr>"));
    let rr = [("Record-Route", "<sip:b2.test;lr>, <sip:b1.test;lr>")];
    net.deliver(BOB, reply_with(&leg, 180, "bob", &rr, None));
    let ringing = net.expect(CALLER, "180");
    assert_eq!(
        ringing.header(HeaderName::RecordRoute),
        Some("<sip:proxy.test;lr>")
    );
    net.deliver(
        BOB,
        reply_with(&leg, 200, "bob", &rr, Some(&sdp(8000, "sendrecv"))),
    );
    let ack = net.expect(BOB, "ACK");
    assert_eq!(
        ack.header(HeaderName::Route),
        Some("<sip:b2.test;lr>, <sip:b1.test;lr>")
    );
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(
        ok.header(HeaderName::RecordRoute),
        Some("<sip:proxy.test;lr>")
    );
    net.deliver(CALLER, caller_request("ACK", "rr1", &to_tag(&ok), 1, ""));

    // The callee hangs up: our BYE to the caller follows the caller's route set.
    let bye = format!(
        "BYE sip:switch@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-bye\r\n\
         From: <sip:1002@pbx.test>;tag=bob\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 5 BYE\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        leg.header(HeaderName::From).unwrap(),
        leg.call_id().unwrap()
    );
    net.deliver(BOB, bye);
    net.expect(BOB, "200 BYE");
    let to_caller = net.expect(CALLER, "BYE");
    assert_eq!(
        to_caller.header(HeaderName::Route),
        Some("<sip:proxy.test;lr>")
    );
    assert_eq!(
        to_caller.request_uri(),
        Some(format!("sip:1001@{CALLER}").as_str())
    );
}

#[test]
fn dial_option_r_indicates_ringing_at_once_and_early_media_still_passes() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("o1", "1030", true));
    // Ringback as early media: a 183 with the relay's address and a looped US
    // ringback cadence (6 s of PCMU).
    let early = net.expect(CALLER, "183");
    assert_eq!(media_port(&early), addr(RELAY_A));
    assert_eq!(net.node.media.lock().unwrap().played, [(48_000, 0, true)]);
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 180, "bob", None));
    assert_eq!(net.count(CALLER, "180"), 0, "ringing was indicated already");
    assert_eq!(net.node.media.lock().unwrap().stops, 0);
    net.deliver(BOB, reply(&leg, 183, "bob", Some(&sdp(8000, "sendrecv"))));
    let early = net.expect(CALLER, "183");
    assert_eq!(media_port(&early), addr(RELAY_A));
    assert!(
        net.node.media.lock().unwrap().stops > 0,
        "the callee's early media replaces the ringback"
    );
    let call = net.calls.iter().next().unwrap();
    assert_eq!(call.dial.as_ref().unwrap().transfer, (true, true));
}

#[test]
fn echo_answers_and_turns_the_callers_media_around_until_it_hangs_up() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("e1", "600", true));
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(media_port(&ok), addr(RELAY_A));
    assert!(net.node.media.lock().unwrap().echo);
    net.deliver(CALLER, caller_request("ACK", "e1", &to_tag(&ok), 1, ""));
    net.node.media.lock().unwrap().last_packet = Some(net.now);
    net.advance(Duration::from_secs(30));
    assert_eq!(
        net.count(CALLER, "BYE"),
        0,
        "Echo() lasts until the caller leaves"
    );
    net.deliver(CALLER, caller_request("BYE", "e1", &to_tag(&ok), 2, ""));
    net.expect(CALLER, "200 BYE");
    let cdrs = net.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].lastapp, "Echo");
    assert_eq!(cdrs[0].end_reason, "caller_hangup");
}

fn db(net: &Net, key: &str) -> Option<String> {
    use dialplan::AstDb as _;
    net.node.db.borrow().get("test", key)
}

#[test]
fn playback_answers_plays_in_the_callers_law_and_waits_for_the_prompt_to_end() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("p1", "700", true));
    let ok = net.expect(CALLER, "200 INVITE");
    assert_eq!(media_port(&ok), addr(RELAY_A));
    net.deliver(CALLER, caller_request("ACK", "p1", &to_tag(&ok), 1, ""));
    assert_eq!(net.node.media.lock().unwrap().played, [(12_000, 0, false)]);
    net.advance(Duration::from_millis(1490));
    assert_eq!(
        net.node.media.lock().unwrap().played.len(),
        1,
        "still playing"
    );
    net.advance(Duration::from_millis(20));
    assert_eq!(db(&net, "status").as_deref(), Some("SUCCESS"));
    // SayDigits(42): "digits/4" and "digits/2" back to back.
    assert_eq!(net.node.media.lock().unwrap().played[1], (8_000, 0, false));
    // It ends 2.5 s after the INVITE.
    net.advance(Duration::from_millis(980));
    assert_eq!(net.count(CALLER, "BYE"), 0);
    net.advance(Duration::from_millis(20));
    net.expect(CALLER, "BYE");
}

#[test]
fn a_missing_sound_fails_the_playback_and_the_dialplan_goes_on() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("p2", "701", true));
    assert_eq!(db(&net, "status").as_deref(), Some("FAILED"));
    assert!(net.node.media.lock().unwrap().played.is_empty());
    // Nothing answered it, so the Hangup() is a final response.
    assert_eq!(net.count(CALLER, "200 INVITE"), 0);
}

#[test]
fn a_caller_offering_only_pcma_hears_pcma() {
    let mut net = Net::new(60);
    let body = sdp(7000, "sendrecv").replace("RTP/AVP 0 101", "RTP/AVP 8 101");
    net.deliver(CALLER, invite_with("p3", "700", "", Some(body)));
    net.expect(CALLER, "200 INVITE");
    assert_eq!(net.node.media.lock().unwrap().played, [(12_000, 8, false)]);
}

#[test]
fn hanging_up_during_a_prompt_ends_the_call_at_once() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("p4", "700", true));
    let ok = net.expect(CALLER, "200 INVITE");
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "p4", &tag, 1, ""));
    net.advance(Duration::from_millis(500));
    net.deliver(CALLER, caller_request("BYE", "p4", &tag, 2, ""));
    net.expect(CALLER, "200 BYE");
    assert_eq!(net.cdrs().len(), 1);
    assert_eq!(net.cdrs()[0].lastapp, "Playback");
    net.advance(Duration::from_secs(5));
    assert_eq!(
        net.node.media.lock().unwrap().played.len(),
        1,
        "SayDigits never ran"
    );
}

fn digit(net: &mut Net, call_id: &str, d: char) {
    let now = net.now;
    net.agent(|a| a.handle_digit(call_id, d, now));
    net.pump();
}

#[test]
fn a_digit_during_background_picks_the_menu_branch() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("d1", "800", true));
    assert_eq!(net.node.media.lock().unwrap().dtmf_pt, Some(101));
    net.advance(Duration::from_millis(700));
    digit(&mut net, "d1", '2');
    assert_eq!(db(&net, "choice").as_deref(), Some("two"));
    net.expect(CALLER, "BYE");
}

#[test]
fn no_digit_lets_waitexten_time_out_to_t() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("d2", "800", true));
    // 1.5 s of prompt, then 3 s of WaitExten.
    net.advance(Duration::from_millis(4400));
    assert_eq!(db(&net, "choice"), None);
    net.advance(Duration::from_millis(200));
    assert_eq!(db(&net, "choice").as_deref(), Some("timeout"));
}

#[test]
fn a_dtmf_info_from_the_caller_is_a_digit_too() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("d3", "800", true));
    let ok = net.expect(CALLER, "200 INVITE");
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "d3", &tag, 1, ""));
    let info = caller_request_with(
        "INFO",
        "d3",
        &tag,
        2,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=1\r\nDuration=160\r\n",
    )
    // caller_request_with labels any body as SDP; this one is dtmf-relay.
    .replace("Content-Type: application/sdp\r\n", "");
    net.deliver(CALLER, info);
    net.expect(CALLER, "200 INFO");
    // 1002, 1010... also start with 1: the plan waits the digit timeout for more.
    assert_eq!(db(&net, "choice"), None);
    net.advance(Duration::from_secs(6));
    assert_eq!(db(&net, "choice").as_deref(), Some("one"));
}

#[test]
fn read_collects_digits_until_max_hash_or_silence() {
    for (call_id, keys, expected) in [
        ("r4", "1234", "1234:OK"),
        ("r5", "5#", "5:OK"),
        ("r6", "", ":TIMEOUT"),
    ] {
        let mut net = Net::new(60);
        net.deliver(CALLER, invite(call_id, "810", true));
        net.advance(Duration::from_millis(300));
        for k in keys.chars() {
            digit(&mut net, call_id, k);
            net.advance(Duration::from_millis(300));
        }
        net.advance(Duration::from_secs(7));
        assert_eq!(db(&net, "pin").as_deref(), Some(expected), "keys {keys:?}");
    }
}

#[test]
fn hash_ends_echo_and_the_dialplan_goes_on() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("d7", "820", true));
    assert!(net.node.media.lock().unwrap().echo);
    digit(&mut net, "d7", '5');
    assert_eq!(db(&net, "echo"), None, "only # ends Echo()");
    digit(&mut net, "d7", '#');
    assert!(!net.node.media.lock().unwrap().echo);
    assert_eq!(db(&net, "echo").as_deref(), Some("done"));
}

/// Record(msg%d.wav,2,5): the caller hears a beep, the dialplan waits, and `#`
/// ends it with DTMF; the first free number fills in %d.
#[test]
fn record_ends_on_hash_with_the_file_named() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("rec1", "830", true));
    net.expect(CALLER, "200 INVITE");
    {
        let log = net.node.media.lock().unwrap();
        assert_eq!(log.played, [(2000, 0, false)], "a quarter-second beep");
        assert_eq!(log.recordings.len(), 1);
        assert!(log.recordings[0].0.ends_with("recordings/msg0.wav"));
        assert_eq!(log.recordings[0].1, [true, false], "only the caller");
    }
    net.node.media.lock().unwrap().voice_until = Some(net.now + Duration::from_secs(10));
    net.advance(Duration::from_secs(1));
    digit(&mut net, "rec1", '5');
    assert_eq!(db(&net, "rec"), None, "only # ends it");
    digit(&mut net, "rec1", '#');
    let rec = db(&net, "rec").unwrap();
    assert!(
        rec.starts_with("DTMF:/") && rec.ends_with("recordings/msg0"),
        "{rec}"
    );
    assert_eq!(
        net.node.media.lock().unwrap().endings,
        [media::record::Ending::Keep]
    );
}

#[test]
fn record_ends_after_the_silence_limit_and_cuts_it_off() {
    let mut net = Net::new(60);
    net.node.media.lock().unwrap().voice_until = Some(net.now + Duration::from_millis(1500));
    net.deliver(CALLER, invite("rec2", "830", true));
    // Voice until 1.5 s, then 2 s of silence: over by 3.5 s (polled every 200 ms).
    net.advance(Duration::from_millis(3300));
    assert_eq!(db(&net, "rec"), None);
    net.advance(Duration::from_millis(400));
    assert!(db(&net, "rec").unwrap().starts_with("SILENCE:"));
    assert_eq!(
        net.node.media.lock().unwrap().endings,
        [media::record::Ending::TrimSilence]
    );
}

#[test]
fn record_stops_at_its_time_limit() {
    let mut net = Net::new(60);
    net.node.media.lock().unwrap().voice_until = Some(net.now + Duration::from_secs(60));
    net.deliver(CALLER, invite("rec3", "830", true));
    net.advance(Duration::from_millis(4900));
    assert_eq!(db(&net, "rec"), None);
    net.advance(Duration::from_millis(200));
    assert!(db(&net, "rec").unwrap().starts_with("TIMEOUT:"));
    assert_eq!(
        net.node.media.lock().unwrap().endings,
        [media::record::Ending::Keep]
    );
}

/// A hangup during Record loses the recording, as in Asterisk, unless `k`.
#[test]
fn a_hangup_discards_the_recording_unless_k() {
    for (call_id, exten, ending) in [
        ("rec4", "830", media::record::Ending::Discard),
        ("rec5", "831", media::record::Ending::Keep),
    ] {
        let mut net = Net::new(60);
        net.node.media.lock().unwrap().voice_until = Some(net.now + Duration::from_secs(60));
        net.deliver(CALLER, invite(call_id, exten, true));
        let ok = net.expect(CALLER, "200 INVITE");
        let tag = to_tag(&ok);
        net.deliver(CALLER, caller_request("ACK", call_id, &tag, 1, ""));
        net.advance(Duration::from_secs(1));
        net.deliver(CALLER, caller_request("BYE", call_id, &tag, 2, ""));
        net.expect(CALLER, "200 BYE");
        assert_eq!(net.node.media.lock().unwrap().endings, [ending], "{exten}");
        assert_eq!(net.cdrs().len(), 1);
    }
}

/// MixMonitor records both directions in the background and completes the file
/// when the call ends.
#[test]
fn mixmonitor_records_both_sides_until_the_call_ends() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("mm1", "840", true));
    let ok = net.expect(CALLER, "200 INVITE");
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "mm1", &tag, 1, ""));
    {
        let log = net.node.media.lock().unwrap();
        assert_eq!(log.recordings.len(), 1);
        assert_eq!(log.recordings[0].1, [true, true]);
        assert!(log.echo, "the dialplan went on to Echo()");
        assert!(log.endings.is_empty());
    }
    net.deliver(CALLER, caller_request("BYE", "mm1", &tag, 2, ""));
    net.expect(CALLER, "200 BYE");
    assert_eq!(
        net.node.media.lock().unwrap().endings,
        [media::record::Ending::Keep]
    );
}

/// A voicemail spool in a temporary directory and mailbox 1002 (PIN 4242).
fn voicemail_net(spool: &Path) -> Net {
    let net = Net::with_config(
        60,
        &format!(
            "[voicemail]\nspool = \"{}\"\nmax_silence = 3\n\
             [[mailbox]]\nmailbox = \"1002@default\"\npin = \"4242\"\n",
            spool.display()
        ),
    );
    net.node.media.lock().unwrap().write_seconds = Some(2.0);
    net
}

/// VoiceMail(1002@default,u): the unavailable greeting, a beep, the message until
/// silence, "saved", and the mailbox's phones are told.
#[test]
fn voicemail_takes_a_message_after_the_greeting() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = voicemail_net(dir.path());
    net.deliver(CALLER, invite("vm1", "850", true));
    let ok = net.expect(CALLER, "200 INVITE");
    net.deliver(CALLER, caller_request("ACK", "vm1", &to_tag(&ok), 1, ""));
    // vm-theperson (1 s), 1-0-0-2 (4 x 0.5 s), vm-isunavail (1 s), vm-intro (1 s).
    assert_eq!(net.node.media.lock().unwrap().played.len(), 1);
    assert_eq!(net.node.media.lock().unwrap().played[0].0, 40_000);
    net.node.media.lock().unwrap().voice_until = Some(net.now + Duration::from_secs(8));
    net.advance(Duration::from_millis(4900));
    assert!(net.node.media.lock().unwrap().recordings.is_empty());
    net.advance(Duration::from_millis(200));
    {
        let log = net.node.media.lock().unwrap();
        assert_eq!(log.recordings.len(), 1);
        assert!(
            log.recordings[0]
                .0
                .ends_with("default/1002/INBOX/msg0000.wav")
        );
        assert_eq!(log.played[1], (2000, 0, false), "the beep");
    }
    // Voice until 8 s, then 3 s of silence end the message.
    net.advance(Duration::from_millis(5800));
    assert!(net.node.media.lock().unwrap().endings.is_empty());
    net.advance(Duration::from_millis(400));
    assert_eq!(
        net.node.media.lock().unwrap().endings,
        [media::record::Ending::TrimSilence]
    );
    assert_eq!(*net.node.changed.borrow(), ["1002@default"]);
    // "vm-msgsaved" and "goodbye", then the dialplan goes on.
    net.advance(Duration::from_millis(2100));
    assert_eq!(db(&net, "vm").as_deref(), Some("SUCCESS"));
    let spool = crate::voicemail::Spool::new(dir.path());
    let inbox = spool.list(
        &crate::voicemail::MailboxId::parse("1002").unwrap(),
        crate::voicemail::spool::INBOX,
    );
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].meta.duration, 2);
    assert_eq!(inbox[0].meta.callerid, "\"Alice\" <1001>");
}

/// Hanging up while leaving the message keeps it, as callers expect.
#[test]
fn hanging_up_ends_the_voicemail_and_keeps_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = voicemail_net(dir.path());
    net.node.media.lock().unwrap().voice_until = Some(net.now + Duration::from_secs(60));
    net.deliver(CALLER, invite("vm2", "850", true));
    let ok = net.expect(CALLER, "200 INVITE");
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "vm2", &tag, 1, ""));
    net.advance(Duration::from_secs(8));
    net.deliver(CALLER, caller_request("BYE", "vm2", &tag, 2, ""));
    net.expect(CALLER, "200 BYE");
    assert_eq!(
        net.node.media.lock().unwrap().endings,
        [media::record::Ending::Keep]
    );
    assert_eq!(*net.node.changed.borrow(), ["1002@default"]);
    let spool = crate::voicemail::Spool::new(dir.path());
    assert_eq!(
        spool.counts(&crate::voicemail::MailboxId::parse("1002").unwrap()),
        (1, 0)
    );
    assert_eq!(net.cdrs().len(), 1);
}

/// VoiceMailMain: the PIN, the count, `1` plays the message (now old), `#` leaves.
#[test]
fn voicemail_main_logs_in_and_plays_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let spool = crate::voicemail::Spool::new(dir.path());
    let id = crate::voicemail::MailboxId::parse("1002").unwrap();
    let path = spool.next_message(&id).unwrap();
    std::fs::write(&path, vec![0u8; 44 + 16_000]).unwrap();
    spool
        .save_meta(&id, &path, &crate::voicemail::spool::Meta::default())
        .unwrap();
    let mut net = voicemail_net(dir.path());
    net.deliver(CALLER, invite("vm3", "851", true));
    let ok = net.expect(CALLER, "200 INVITE");
    net.deliver(CALLER, caller_request("ACK", "vm3", &to_tag(&ok), 1, ""));
    net.advance(Duration::from_millis(500));
    for k in "4242#".chars() {
        digit(&mut net, "vm3", k);
    }
    // "You have" "one" "new messages": 2.5 s; then the main menu.
    net.advance(Duration::from_millis(3000));
    digit(&mut net, "vm3", '1');
    assert_eq!(spool.counts(&id), (0, 1), "heard: moved to Old");
    assert_eq!(*net.node.changed.borrow(), ["1002@default"]);
    net.advance(Duration::from_millis(2500));
    digit(&mut net, "vm3", '#');
    net.advance(Duration::from_millis(1100));
    assert_eq!(db(&net, "vmm").as_deref(), Some("done"));
}

/// ConfBridge(sales): answered and seated; `1` toggles mute, `#` leaves and the
/// dialplan goes on with CONFBRIDGE_RESULT=DTMF.
#[test]
fn confbridge_seats_the_caller_until_hash() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("cb1", "860", true));
    let ok = net.expect(CALLER, "200 INVITE");
    net.deliver(CALLER, caller_request("ACK", "cb1", &to_tag(&ok), 1, ""));
    let (seated, muted) = {
        let log = net.node.media.lock().unwrap();
        assert_eq!(log.seats, [("sales".to_string(), 0)]);
        (log.seated.clone(), log.muted.clone())
    };
    assert!(seated.load(Relaxed));
    net.advance(Duration::from_secs(30));
    assert!(seated.load(Relaxed), "stays until it leaves");
    digit(&mut net, "cb1", '1');
    assert!(muted.load(Relaxed));
    digit(&mut net, "cb1", '1');
    assert!(!muted.load(Relaxed));
    digit(&mut net, "cb1", '#');
    assert!(!seated.load(Relaxed));
    assert_eq!(db(&net, "conf").as_deref(), Some("DTMF"));
    net.expect(CALLER, "BYE");
}

#[test]
fn hanging_up_leaves_the_conference() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("cb2", "860", true));
    let ok = net.expect(CALLER, "200 INVITE");
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "cb2", &tag, 1, ""));
    let seated = net.node.media.lock().unwrap().seated.clone();
    assert!(seated.load(Relaxed));
    net.deliver(CALLER, caller_request("BYE", "cb2", &tag, 2, ""));
    net.expect(CALLER, "200 BYE");
    assert!(!seated.load(Relaxed));
    assert_eq!(db(&net, "conf"), None, "a hangup ends the dialplan");
    assert_eq!(net.cdrs().len(), 1);
}

/// Busy() on an answered call plays the busy tone in band for its timeout, then
/// hangs up; unanswered, it is a 486.
#[test]
fn busy_after_answer_is_a_tone_then_a_bye() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("bz1", "870", true));
    let ok = net.expect(CALLER, "200 INVITE");
    net.deliver(CALLER, caller_request("ACK", "bz1", &to_tag(&ok), 1, ""));
    // The US busy cadence, looped: 0.5 s on, 0.5 s off.
    assert_eq!(net.node.media.lock().unwrap().played, [(8000, 0, true)]);
    net.advance(Duration::from_millis(2900));
    assert_eq!(net.count(CALLER, "BYE"), 0);
    net.advance(Duration::from_millis(200));
    net.expect(CALLER, "BYE");
    // As in Asterisk, an answered call keeps its normal-clearing cause.
    assert_eq!(net.cdrs()[0].hangup_cause, 16);

    let mut net = Net::new(60);
    net.deliver(CALLER, invite("bz2", "871", true));
    net.expect(CALLER, "486 INVITE");
    assert!(net.node.media.lock().unwrap().played.is_empty());
}

/// SendDTMF(12#) to a caller that offered telephone-event: three RFC 4733 keys,
/// and the dialplan waits until they are out.
#[test]
fn senddtmf_sends_events_and_waits_for_them() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("sd1", "880", true));
    let ok = net.expect(CALLER, "200 INVITE");
    net.deliver(CALLER, caller_request("ACK", "sd1", &to_tag(&ok), 1, ""));
    assert_eq!(
        net.node.media.lock().unwrap().sent_digits,
        [(
            "12#".to_string(),
            101,
            Duration::from_millis(100),
            Duration::from_millis(250)
        )]
    );
    // 3 keys x (7 packets x 20 ms + 250 ms) = 1.17 s.
    net.advance(Duration::from_millis(1100));
    assert_eq!(db(&net, "dtmf"), None);
    net.advance(Duration::from_millis(100));
    assert_eq!(db(&net, "dtmf").as_deref(), Some("sent"));
}

/// CLIR (*67): the callee sees an anonymous From with Privacy: id, and no
/// asserted identity.
#[test]
fn a_restricted_caller_id_reaches_the_callee_as_anonymous() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("clir1", "*671002", true));
    let leg = net.expect(BOB, "INVITE");
    let from = leg.header(HeaderName::From).unwrap();
    assert!(
        from.starts_with("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag="),
        "{from}"
    );
    let text = String::from_utf8_lossy(leg.buffer()).into_owned();
    assert!(text.contains("\r\nPrivacy: id\r\n"), "{text}");
    assert!(!text.contains("P-Asserted-Identity"), "{text}");
    assert!(!text.contains("1001"), "the number leaks nowhere: {text}");
}

/// An answered call counts both phones as busy (DEVICE_STATE INUSE) until it ends.
#[test]
fn both_phones_count_as_busy_while_the_call_lasts() {
    let mut net = Net::new(60);
    let (ok, _leg) = answered_call(&mut net, "busy1");
    let count = |net: &Net, u: &str| net.node.in_use.borrow().get(u).copied().unwrap_or(0);
    assert_eq!((count(&net, "1001"), count(&net, "1002")), (1, 1));
    let tag = to_tag(&ok);
    net.deliver(CALLER, caller_request("ACK", "busy1", &tag, 1, ""));
    net.deliver(CALLER, caller_request("BYE", "busy1", &tag, 2, ""));
    net.expect(CALLER, "200 BYE");
    assert_eq!((count(&net, "1001"), count(&net, "1002")), (0, 0));
}

/// Pickup: a call ringing 1002 is answered from another phone; the two callers
/// meet in a two-seat room, and when one hangs up the other is hung up.
#[test]
fn a_ringing_call_is_picked_up_from_another_phone() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("ring1", "1002", true));
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 180, "bob", None));
    net.deliver(CALLER, invite("pick1", "*81002", true));
    assert_eq!(
        *net.node.pickups.borrow(),
        [("1002".to_string(), "pick1".to_string())]
    );
    // What the node does with the request.
    let now = net.now;
    assert!(net.agent(|a| a.offer_pickup("1002", "room-x", now)));
    net.agent(|a| a.pickup_done("pick1", Some("room-x"), now));
    net.pump();
    net.expect(BOB, "CANCEL");
    let mut ring_ok = None;
    let mut answered = Vec::new();
    for _ in 0..2 {
        let ok = net.expect(CALLER, "200 INVITE");
        let id = ok.call_id().unwrap().to_string();
        if id == "ring1" {
            ring_ok = Some(ok);
        }
        answered.push(id);
    }
    answered.sort();
    assert_eq!(answered, ["pick1", "ring1"]);
    assert_eq!(
        net.node
            .media
            .lock()
            .unwrap()
            .rooms
            .lock()
            .unwrap()
            .get("room-x"),
        Some(&2)
    );
    // The picked-up caller hangs up: the picker is hung up too.
    let tag = to_tag(&ring_ok.unwrap());
    net.deliver(CALLER, caller_request("BYE", "ring1", &tag, 2, ""));
    net.expect(CALLER, "200 BYE");
    net.advance(Duration::from_millis(600));
    let bye = net.expect(CALLER, "BYE");
    assert_eq!(bye.call_id(), Some("pick1"));
}

#[test]
fn picking_up_when_nothing_rings_goes_on_in_the_dialplan() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("pick2", "*81003", true));
    let now = net.now;
    assert!(!net.agent(|a| a.offer_pickup("1003", "room-y", now)));
    net.agent(|a| a.pickup_done("pick2", None, now));
    net.pump();
    assert_eq!(db(&net, "pickup").as_deref(), Some("nothing"));
}

/// SayNumber(242): "two hundred forty two", four half-second words.
#[test]
fn saynumber_plays_the_number_in_words() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("sn1", "890", true));
    net.expect(CALLER, "200 INVITE");
    assert_eq!(net.node.media.lock().unwrap().played, [(16_000, 0, false)]);
    net.advance(Duration::from_millis(1900));
    assert_eq!(db(&net, "said"), None);
    net.advance(Duration::from_millis(200));
    assert_eq!(db(&net, "said").as_deref(), Some("yes"));
}

/// Dial's `d`: a digit naming an extension ends the ringing and goes there; one
/// that names none is ignored.
#[test]
fn dial_option_d_leaves_for_the_digits_extension() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("dx1", "1040", true));
    let leg = net.expect(BOB, "INVITE");
    net.deliver(BOB, reply(&leg, 180, "bob", None));
    digit(&mut net, "dx1", '9');
    assert_eq!(net.count(BOB, "CANCEL"), 0, "no extension 9: it rings on");
    digit(&mut net, "dx1", '5');
    net.expect(BOB, "CANCEL");
    assert_eq!(db(&net, "exit").as_deref(), Some("five"));
}

/// Dial's `D(called:calling)`: DTMF to each side once the callee answers.
#[test]
fn dial_option_capital_d_sends_digits_on_answer() {
    let mut net = Net::new(60);
    net.deliver(CALLER, invite("dd1", "1040", true));
    let leg = net.expect(BOB, "INVITE");
    let answer = sdp(8000, "sendrecv");
    net.deliver(BOB, reply(&leg, 200, "bob", Some(&answer)));
    let sent: Vec<(String, u8)> = net
        .node
        .media
        .lock()
        .unwrap()
        .sent_digits
        .iter()
        .map(|(d, pt, _, _)| (d.clone(), *pt))
        .collect();
    assert_eq!(sent, [("55".to_string(), 101), ("66".to_string(), 101)]);
}

const PEER_1: &str = "127.0.0.2:5060";
const PEER_2: &str = "127.0.0.3:5060";

/// Two dial peers for 33.: the first preferred, the second the fallback.
fn gateway_net() -> Net {
    Net::with_config(
        60,
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.2\"\ncontext = \"from-site-b\"\n\
         [[dial_peer]]\ntag = 2\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.3\"\npreference = 1\n",
    )
}

/// A route failure (503) at the preferred peer hunts to the next one, which
/// answers; the CDR names the peer that took the call.
#[test]
fn a_failing_peer_hunts_to_the_next_one() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("gw1", "331", true));
    let first = net.expect(PEER_1, "INVITE");
    assert_eq!(first.request_uri(), Some("sip:331@127.0.0.2:5060"));
    net.deliver(PEER_1, reply(&first, 503, "p1", None));
    net.expect(PEER_1, "ACK");
    let second = net.expect(PEER_2, "INVITE");
    net.deliver(PEER_2, reply(&second, 180, "p2", None));
    net.expect(CALLER, "180");
    net.deliver(
        PEER_2,
        reply(&second, 200, "p2", Some(&sdp(8000, "sendrecv"))),
    );
    let ok = net.expect(CALLER, "200 INVITE");
    net.deliver(CALLER, caller_request("ACK", "gw1", &to_tag(&ok), 1, ""));
    net.deliver(CALLER, caller_request("BYE", "gw1", &to_tag(&ok), 2, ""));
    let cdr = &net.cdrs()[0];
    assert_eq!(cdr.disposition, "ANSWERED");
    assert!(cdr.dstchannel.starts_with("PEER/2-"), "{}", cdr.dstchannel);
}

/// A peer that says nothing at all is given up after [gateway] invite_timeout
/// (1.5 s), not Timer B's 32 s.
#[test]
fn a_silent_peer_is_passed_over_after_the_invite_timeout() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("gw2", "335", true));
    net.expect(PEER_1, "INVITE");
    net.advance(Duration::from_millis(1400));
    assert_eq!(net.count(PEER_2, "INVITE"), 0);
    net.advance(Duration::from_millis(200));
    net.expect(PEER_2, "INVITE");
}

/// Busy is the callee's answer: it goes back to the caller, no other peer rings.
#[test]
fn a_busy_callee_does_not_ring_through_another_peer() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("gw3", "336", true));
    let first = net.expect(PEER_1, "INVITE");
    net.deliver(PEER_1, reply(&first, 486, "p1", None));
    net.expect(CALLER, "486 INVITE");
    assert_eq!(net.count(PEER_2, "INVITE"), 0);
    assert_eq!(db(&net, "peer").as_deref(), Some("BUSY"));
}

/// When every peer fails, the dialplan learns it and goes on.
#[test]
fn every_peer_failing_gives_the_dialplan_its_status() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("gw4", "337", true));
    let first = net.expect(PEER_1, "INVITE");
    net.deliver(PEER_1, reply(&first, 500, "p1", None));
    let second = net.expect(PEER_2, "INVITE");
    net.deliver(PEER_2, reply(&second, 503, "p2", None));
    assert_eq!(db(&net, "peer").as_deref(), Some("CONGESTION"));
}

/// A call from a dial peer's address is trusted without digest and runs in the
/// peer's context, with the caller ID it brought.
#[test]
fn a_call_from_a_peer_runs_in_the_peers_context() {
    let mut net = gateway_net();
    let invite = invite_raw("in1", "1002", "", Some(sdp(7000, "sendrecv")))
        .replace(
            &format!("Via: SIP/2.0/UDP {CALLER}"),
            &format!("Via: SIP/2.0/UDP {PEER_1}"),
        )
        .replace(
            "From: <sip:1001@pbx.test>",
            "From: \"Site B\" <sip:2201@127.0.0.2>",
        );
    net.deliver(PEER_1, invite);
    assert_eq!(db(&net, "inbound").as_deref(), Some("2201:1002"));
}

impl Net {
    /// Dial peer `tag` as the node's table shows it.
    fn peer(&self, tag: u32) -> crate::runtime::peers::PeerView {
        self.node
            .peers
            .borrow()
            .view(self.now)
            .into_iter()
            .find(|p| p.tag == tag)
            .unwrap()
    }
}

/// A peer that says nothing to an INVITE is suspect after a third of the
/// invite timeout (the node probes it then) and, with no answer from it in
/// between, down when the timeout runs out; later calls go straight to the
/// other peer without waiting.
#[test]
fn a_silent_peer_goes_suspect_then_down_and_is_skipped() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("sil1", "331", true));
    net.expect(PEER_1, "INVITE");
    net.advance(Duration::from_millis(400));
    assert_eq!(net.peer(1).state, "up");
    net.advance(Duration::from_millis(200));
    assert_eq!(net.peer(1).state, "suspect", "slow, not yet failed");
    net.advance(Duration::from_millis(1000));
    let second = net.expect(PEER_2, "INVITE");
    net.deliver(PEER_2, reply(&second, 486, "p2", None));
    net.expect(CALLER, "486 INVITE");
    assert_eq!(net.peer(1).state, "down");
    // Timer A's retransmissions before the give-up.
    net.count(PEER_1, "INVITE");
    net.deliver(CALLER, invite("sil2", "331", true));
    net.expect(PEER_2, "INVITE");
    assert_eq!(net.count(PEER_1, "INVITE"), 0, "a down peer gets no call");
    let p1 = net.peer(1);
    assert_eq!((p1.attempts, p1.route_failures), (1, 1));
}

/// 503 with Retry-After drains the peer: the call moves on at once and the
/// next calls skip it until the time is up.
#[test]
fn a_503_with_retry_after_drains_the_peer() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("dr1", "331", true));
    let first = net.expect(PEER_1, "INVITE");
    net.deliver(
        PEER_1,
        reply_with(&first, 503, "p1", &[("Retry-After", "30")], None),
    );
    net.expect(PEER_2, "INVITE");
    assert_eq!(net.peer(1).state, "draining");
    net.deliver(CALLER, invite("dr2", "332", true));
    net.expect(PEER_2, "INVITE");
    assert_eq!(net.count(PEER_1, "INVITE"), 0);
}

/// With every matching peer out of service the Dial fails at once with
/// CHANUNAVAIL, like IOS's busied-out peers, instead of waiting on timeouts.
#[test]
fn every_peer_out_of_service_fails_the_dial_at_once() {
    use crate::runtime::peers::PeerAction;
    let mut net = gateway_net();
    let t0 = net.now;
    for tag in [1, 2] {
        net.node
            .peers
            .borrow_mut()
            .act(tag, PeerAction::Disable, t0)
            .unwrap();
    }
    net.deliver(CALLER, invite("off1", "331", true));
    assert_eq!(db(&net, "peer").as_deref(), Some("CHANUNAVAIL"));
    assert_eq!(net.count(PEER_1, "INVITE") + net.count(PEER_2, "INVITE"), 0);
}

/// Calls in progress through a peer count up while they last and down after.
#[test]
fn a_peers_active_calls_follow_its_calls() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("ac1", "331", true));
    let leg = net.expect(PEER_1, "INVITE");
    net.deliver(PEER_1, reply(&leg, 200, "p1", Some(&sdp(8000, "sendrecv"))));
    let ok = net.expect(CALLER, "200 INVITE");
    net.deliver(CALLER, caller_request("ACK", "ac1", &to_tag(&ok), 1, ""));
    assert_eq!(net.peer(1).active_calls, 1);
    assert_eq!(net.peer(1).state, "up");
    net.deliver(CALLER, caller_request("BYE", "ac1", &to_tag(&ok), 2, ""));
    assert_eq!(net.peer(1).active_calls, 0);
}

/// digit_strip, forward_digits and prefix shape the number the peer gets.
#[test]
fn digit_rules_rewrite_the_number_sent_to_the_peer() {
    let mut net = Net::with_config(
        60,
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.2\"\n\
         digit_strip = true\nprefix = \"0044\"\n",
    );
    net.deliver(CALLER, invite("dg1", "337", true));
    let leg = net.expect(PEER_1, "INVITE");
    assert_eq!(leg.request_uri(), Some("sip:00447@127.0.0.2:5060"));
}

/// The INVITE to a peer given up for silence is not retransmitted until Timer
/// B; if the peer answers after all, the answer is acknowledged and hung up.
#[test]
fn a_peer_given_up_stops_hearing_retransmissions_and_a_late_answer_is_ended() {
    let mut net = gateway_net();
    net.deliver(CALLER, invite("late1", "331", true));
    let first = net.expect(PEER_1, "INVITE");
    net.advance(Duration::from_millis(1600));
    let second = net.expect(PEER_2, "INVITE");
    net.deliver(PEER_2, reply(&second, 180, "p2", None));
    let retransmitted = net.count(PEER_1, "INVITE");
    net.advance(Duration::from_secs(10));
    assert_eq!(net.count(PEER_1, "INVITE"), 0, "none after giving up");
    assert!(
        retransmitted <= 2,
        "Timer A before the give-up: {retransmitted}"
    );
    net.deliver(
        PEER_1,
        reply(&first, 200, "p1", Some(&sdp(8000, "sendrecv"))),
    );
    net.expect(PEER_1, "ACK");
    net.expect(PEER_1, "BYE");
}

/// A peer that challenges our INVITE gets it again, once, with its credentials;
/// a second challenge is its final word.
#[test]
fn a_challenging_peer_gets_the_invite_again_with_credentials() {
    let mut net = Net::with_config(
        60,
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.2\"\n\
         username = \"site-a\"\npassword = \"trunkpw\"\n",
    );
    net.deliver(CALLER, invite("au1", "331", true));
    let first = net.expect(PEER_1, "INVITE");
    net.deliver(
        PEER_1,
        reply_with(
            &first,
            407,
            "p1",
            &[(
                "Proxy-Authenticate",
                "Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\"",
            )],
            None,
        ),
    );
    net.expect(PEER_1, "ACK");
    let again = net.expect(PEER_1, "INVITE");
    assert_eq!(again.cseq().unwrap().seq, 2);
    assert_eq!(again.call_id(), first.call_id());
    let auth = again
        .header(HeaderName::ProxyAuthorization)
        .unwrap()
        .to_string();
    let creds = crate::sip::wire::Credentials::parse(&auth)
        .unwrap()
        .unwrap();
    let ha1 = crate::registrar::digest::ha1(
        crate::sip::wire::Algorithm::Md5,
        "site-a",
        "carrier",
        "trunkpw",
    );
    let expected = crate::registrar::digest::expected_response(
        crate::sip::wire::Algorithm::Md5,
        &ha1,
        "INVITE",
        &creds,
    );
    assert!(crate::registrar::digest::responses_match(
        &expected,
        &creds.response
    ));
    net.deliver(
        PEER_1,
        reply(&again, 200, "p1", Some(&sdp(8000, "sendrecv"))),
    );
    net.expect(CALLER, "200 INVITE");
    assert_eq!(net.peer(1).active_calls, 1);

    // A second challenge ends the attempt: the credentials are wrong.
    net.deliver(CALLER, invite("au2", "332", true));
    let first = net.expect(PEER_1, "INVITE");
    let challenge = [("WWW-Authenticate", "Digest realm=\"carrier\", nonce=\"n2\"")];
    net.deliver(PEER_1, reply_with(&first, 401, "p1", &challenge, None));
    let again = net.expect(PEER_1, "INVITE");
    assert!(again.header(HeaderName::Authorization).is_some());
    net.deliver(PEER_1, reply_with(&again, 401, "p1", &challenge, None));
    assert_eq!(net.count(PEER_1, "INVITE"), 0);
    assert_eq!(db(&net, "peer").as_deref(), Some("CHANUNAVAIL"));
}

/// With inbound_auth a peer's address is not enough: its call is challenged and
/// runs in the peer's context once it answers as the named endpoint.
#[test]
fn inbound_auth_challenges_a_peers_calls() {
    let mut net = Net::with_config(
        60,
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.2\"\n\
         context = \"from-site-b\"\nusername = \"1003\"\ninbound_auth = true\n",
    );
    let from_peer = |auth: &str| {
        invite_raw("in2", "1002", auth, Some(sdp(7000, "sendrecv")))
            .replace(
                &format!("Via: SIP/2.0/UDP {CALLER}"),
                &format!("Via: SIP/2.0/UDP {PEER_1}"),
            )
            .replace(
                "From: <sip:1001@pbx.test>",
                "From: \"Site B\" <sip:2201@127.0.0.2>",
            )
    };
    net.deliver(PEER_1, from_peer(""));
    net.expect(PEER_1, "407 INVITE");
    assert!(db(&net, "inbound").is_none());
    let wrong = "Proxy-Authorization: Digest username=\"1002\", realm=\"pbx.test\", nonce=\"n\", uri=\"sip:1002@pbx.test\", response=\"x\"\r\n";
    net.deliver(
        PEER_1,
        from_peer(wrong)
            .replace("CSeq: 1 ", "CSeq: 2 ")
            .replace("-in2-1", "-in2-2"),
    );
    net.expect(PEER_1, "403 INVITE");
    let right = wrong.replace("username=\"1002\"", "username=\"1003\"");
    net.deliver(
        PEER_1,
        from_peer(&right)
            .replace("CSeq: 1 ", "CSeq: 3 ")
            .replace("-in2-1", "-in2-3"),
    );
    assert_eq!(db(&net, "inbound").as_deref(), Some("2201:1002"));
}

/// Translation rules rewrite the called number after the digit tools, and
/// the calling number in From and P-Asserted-Identity.
#[test]
fn translation_rules_rewrite_called_and_calling_numbers() {
    let mut net = Net::with_config(
        60,
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.2\"\n\
         translate_called = [{ match = \"^33(.)$\", replace = \"+4420$1\" }]\n\
         translate_calling = [{ match = \"^999$\", replace = \"x\" }, { match = \"^(1...)$\", replace = \"+44207946$1\" }]\n",
    );
    net.deliver(CALLER, invite("tr1", "337", true));
    let leg = net.expect(PEER_1, "INVITE");
    assert_eq!(leg.request_uri(), Some("sip:+44207@127.0.0.2:5060"));
    let from = leg.header(HeaderName::From).unwrap();
    assert!(from.contains("sip:+442079461001@"), "{from}");
    let pai = leg.header(HeaderName::PAssertedIdentity).unwrap();
    assert!(pai.contains("sip:+442079461001@"), "{pai}");
}

/// A peer's own invite_timeout overrides the [gateway] one.
#[test]
fn a_peers_own_invite_timeout_wins() {
    let mut net = Net::with_config(
        60,
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.2\"\ninvite_timeout = 0.5\n\
         [[dial_peer]]\ntag = 2\ndestination_pattern = \"33.\"\nsession_target = \"ipv4:127.0.0.3\"\npreference = 1\n",
    );
    net.deliver(CALLER, invite("it1", "331", true));
    net.expect(PEER_1, "INVITE");
    net.advance(Duration::from_millis(450));
    assert_eq!(net.count(PEER_2, "INVITE"), 0);
    net.advance(Duration::from_millis(100));
    net.expect(PEER_2, "INVITE");
}
