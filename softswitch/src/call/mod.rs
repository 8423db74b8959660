//! The call agent's state: one [`Call`] per inbound INVITE, its inbound leg toward the
//! caller, the outbound legs a `Dial` creates, and the interpreter running its
//! dialplan. All of it lives in the shard that owns the caller's Call-ID; outbound legs
//! get Call-IDs that hash to the same shard, so one lock covers a whole call.

pub mod agent;
pub mod messages;
pub mod peer_route;
pub mod view;

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use bytes::Bytes;

use crate::sip::transaction::{ClientKey, Peer, ServerKey};
use crate::sip::wire::Message;

/// The caller's side: we are its UAS.
#[derive(Debug)]
pub struct Inbound {
    pub call_id: String,
    pub invite: Message,
    pub key: ServerKey,
    /// Where the INVITE came from; requests to the caller go back there (NAT).
    pub source: Peer,
    pub local_tag: String,
    /// The caller's From (with its tag): the To of our requests to it.
    pub remote_from: String,
    /// The caller's To plus our tag: the From of our requests to it.
    pub local_to: String,
    /// The caller's Contact URI: the Request-URI of our requests to it.
    pub remote_target: String,
    pub local_cseq: u32,
    /// A final response has been sent to the INVITE.
    pub final_sent: bool,
    /// Our 2xx, re-sent until the caller's ACK arrives (RFC 3261 §13.3.1.4).
    pub ok: Option<Bytes>,
    pub ok_acked: bool,
    /// The caller has hung up (BYE or CANCEL).
    pub gone: bool,
    /// When the INVITE arrived.
    pub started: Instant,
    /// The INVITE's Record-Route values in order: the Route of our requests to the
    /// caller, and echoed in our dialog-creating responses (RFC 3261 §12.1.1).
    pub route_set: Vec<String>,
    /// Reliable provisional responses (RFC 3262), when the caller requires them.
    pub prack: Option<Reliable>,
    /// The session timer the caller asked for (RFC 4028).
    pub session: Option<SessionTimer>,
}

/// Our reliable provisional responses toward a caller that requires 100rel.
#[derive(Debug, Default)]
pub struct Reliable {
    pub rseq: u32,
    /// The provisional awaiting its PRACK: its RSeq, bytes and whether it had SDP.
    pub unacked: Option<(u32, Bytes, bool)>,
    /// The latest provisional that came while one was unacknowledged.
    pub queued: Option<(u16, &'static str, Option<String>)>,
    /// A 2xx held until the PRACK of a provisional that carried SDP (RFC 3262 §3).
    pub answer_held: Option<Option<media::sdp::Sdp>>,
}

/// A session timer agreed with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// Seconds.
    pub interval: u32,
    /// The caller supports timers (so its 2xx carries `Require: timer`).
    pub caller_supports: bool,
    /// We refresh (refresher=uas); otherwise the caller does and we only watch.
    pub we_refresh: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    Calling,
    Early,
    Answered,
    Failed(u16),
    /// CANCEL sent; the INVITE's final response (487, or a crossing 2xx) is due.
    Cancelled,
    /// Cancelled, and the final response came.
    Withdrawn,
    Ended,
}

/// One outgoing INVITE of a Dial: we are its UAC.
#[derive(Debug)]
pub struct Outbound {
    pub call_id: String,
    pub dialed: String,
    pub channel: String,
    /// Our From header value, with our tag.
    pub from: String,
    /// The To header value without a tag (the callee's adds one).
    pub to: String,
    pub remote_tag: Option<String>,
    /// Request-URI of the INVITE (the registered contact).
    pub target: String,
    /// The callee's Contact from its answer: Request-URI of later requests.
    pub remote_target: Option<String>,
    pub peer: Peer,
    pub invite: Bytes,
    pub branch: String,
    pub key: ClientKey,
    pub cseq: u32,
    pub state: LegState,
    /// The binding's Path: the Route of the INVITE and of its CANCEL.
    pub path: Vec<String>,
    /// Route of in-dialog requests: the binding's Path, then the answer's
    /// Record-Route reversed (RFC 3261 §12.1.2).
    pub route_set: Vec<String>,
    /// The RSeq of the last reliable provisional we PRACKed.
    pub last_rseq: Option<u32>,
    /// The dial peer this leg went to (`Dial(PEER/…)`).
    pub peer_tag: Option<u32>,
    /// Any response (a 100 included) came back.
    pub responded: bool,
    /// The leg counts among its dial peer's calls in progress.
    pub peer_active: bool,
    /// Username and password for a peer that challenges the INVITE.
    pub credentials: Option<(String, String)>,
    /// The INVITE was re-sent with credentials; a second challenge is final.
    pub authenticated: bool,
}

impl Outbound {
    /// The To of in-dialog requests: the callee's To with its tag.
    pub fn dialog_to(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={t}", self.to),
            None => self.to.clone(),
        }
    }
}

/// Which side of the call a message or request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Caller,
    Callee(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The dialplan runs; no answer yet.
    Setup,
    /// Answered (by the dialplan or a Dial leg).
    Answered,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The Dial's ring timeout.
    DialTimeout,
    /// Re-send our 2xx to the caller; the value is the next interval in ms.
    Resend2xx(u64),
    /// No ACK for our 2xx within 64*T1: the call is torn down.
    AckTimeout,
    /// `Wait()` and other timed actions end.
    Resume,
    /// Check the relay for silence.
    MediaCheck,
    /// Re-send the unacknowledged reliable provisional; the value is the next
    /// interval in ms.
    ResendReliable(u64),
    /// 64*T1 without a PRACK.
    PrackTimeout,
    /// Our turn to refresh the session (refresher=uas).
    SessionRefresh,
    /// The caller did not refresh the session in time.
    SessionExpiry,
    /// `Record()` with a silence limit: has the caller stopped talking?
    RecordSilence,
    /// A picked-up call: is the other side still in the room?
    PeerCheck,
    /// A dial peer's leg got no response at all in time: hunt on.
    PeerNoResponse(usize),
    /// A third of that time without even a 100 Trying: the peer is suspect
    /// (and probed), while this call still waits for it.
    PeerSlow(usize),
}

/// What a DTMF digit from the caller does to the action the dialplan is parked in.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Listen {
    /// Digits are ignored (Playback, Wait, a bridged call).
    #[default]
    Ignore,
    /// Background, WaitExten, the next digit of an extension: the first digit
    /// resumes the dialplan with it.
    Interrupt,
    /// Echo(): `#` ends it.
    EchoUntilHash,
    /// Read(): digits collect until `max` of them, `#`, or `timeout` without one.
    Read {
        digits: String,
        max: Option<u32>,
        timeout: std::time::Duration,
    },
    /// Dial with `d`: a digit naming an extension ends the Dial there.
    DialExit,
    /// ConfBridge: `1` toggles mute, `#` leaves the room.
    Conference,
    /// A voicemail application's prompt: a digit in `cut` stops it and goes to
    /// the application.
    App { cut: &'static str },
    /// Record(): one of `terminators` ends it (status DTMF), and `0` too when
    /// `operator` (status OPERATOR).
    Record { terminators: String, operator: bool },
}

/// A relayed in-dialog request waiting for the other side's final response.
#[derive(Debug)]
pub struct Relayed {
    pub server_key: ServerKey,
    pub request: Message,
    pub from: Side,
    pub source: Peer,
}

/// A running Dial.
#[derive(Debug)]
pub struct DialRun {
    pub started: Instant,
    pub ring_at: Option<Instant>,
    pub answered_at: Option<Instant>,
    pub continue_on_callee_hangup: bool,
    /// Causes of legs that could not even be created (no registration, bad target).
    pub failed_causes: Vec<u16>,
    /// `r`: ringing was indicated to the caller when the Dial started.
    pub ringback: bool,
    /// `T` and `t`: the caller and the callee may transfer. Recorded for the
    /// in-call feature codes, which need DTMF from the media server.
    pub transfer: (bool, bool),
    /// `d`: a digit from the caller while it rings may leave for an extension.
    pub digit_exit: bool,
    /// `D(called:calling)`: DTMF sent to each side once answered.
    pub send_on_answer: (String, String),
    /// `Dial(PEER/number)`: the peers still to try, in hunt order.
    pub hunt: Option<Hunt>,
}

/// A Dial over dial peers: one peer at a time, the next one when the route
/// (not the callee) failed.
#[derive(Debug, Clone)]
pub struct Hunt {
    pub number: String,
    pub next: std::collections::VecDeque<PeerTarget>,
    /// The peer of the attempt in progress had `huntstop`.
    pub stop_here: bool,
}

/// Where one dial peer is reached.
#[derive(Debug, Clone)]
pub struct PeerTarget {
    pub tag: u32,
    pub addr: std::net::SocketAddr,
    pub transport: crate::sip::transaction::TransportKind,
    pub huntstop: bool,
    /// The called number after this peer's digit rules.
    pub number: String,
    pub credentials: Option<(String, String)>,
    /// The peer's rules for the calling number.
    pub calling: gateway::digits::Translation,
    pub invite_timeout: Option<std::time::Duration>,
}

pub struct Call {
    pub id: u64,
    pub uniqueid: String,
    pub a: Inbound,
    pub legs: Vec<Outbound>,
    /// The answered outbound leg.
    pub bridged: Option<usize>,
    pub interp: dialplan::Interpreter,
    pub relay: Option<Box<dyn agent::MediaSession>>,
    /// The caller's offer, kept to offer it to every outbound leg.
    pub offer: Option<media::sdp::Sdp>,
    pub phase: Phase,
    pub timers: Vec<(Instant, Timer)>,
    pub dial: Option<DialRun>,
    /// Waiting for a timed action (Wait, Playback, WaitExten...) to end.
    pub waiting: bool,
    /// What the dialplan resumes with when that action's timer fires (default `Done`).
    pub on_wake: Option<dialplan::Resume>,
    /// What a digit from the caller does now.
    pub listen: Listen,
    pub relayed: HashMap<ClientKey, Relayed>,
    pub sdp_version: u64,
    pub cdr: CdrDraft,
    /// When the call was answered: the media timeout counts from here at the
    /// earliest, however long the phones rang in silence.
    pub answered_at: Option<Instant>,
    /// A leg whose 2xx carried the offer (the caller's INVITE had none): its ACK
    /// waits for the answer in the caller's ACK.
    pub late_ack: Option<usize>,
    /// The `Record()` the dialplan waits for.
    pub recording: Option<agent::record::ForegroundRecord>,
    /// `MixMonitor()` recordings, running until the call ends.
    pub monitors: Vec<Box<dyn agent::Recorder>>,
    /// VoiceMail or VoiceMailMain in progress: it gets the inputs the dialplan
    /// would have.
    pub app: Option<agent::voicemail::AppRun>,
    /// The caller's seat while in a ConfBridge.
    pub seat: Option<Box<dyn agent::ConferenceSeat>>,
    /// Endpoints this call counts as busy (the caller; the answered callee),
    /// released when the call or that leg ends.
    pub busy: Vec<String>,
}

/// What the CDR needs, gathered as the call goes.
#[derive(Debug, Clone, Default)]
pub struct CdrDraft {
    pub start_ms: i64,
    pub answer_ms: Option<i64>,
    pub src: String,
    pub dst: String,
    pub dcontext: String,
    pub clid: String,
    pub dstchannel: String,
    pub lastapp: String,
    pub disposition: Option<&'static str>,
    pub sip_status: Option<u16>,
    pub hangup_cause: Option<u16>,
    /// Who or what ended the call (the CDR's `end_reason`); the first one set wins.
    pub end_reason: Option<&'static str>,
    /// Post-dial delay: the caller's INVITE to the first ringing, in milliseconds.
    pub pdd_ms: Option<i64>,
}

impl Call {
    /// Parks the dialplan in a timed action until `at`, then resumes it with `wake`.
    pub fn park(&mut self, at: Instant, wake: dialplan::Resume) {
        self.waiting = true;
        self.on_wake = Some(wake);
        self.arm(at, Timer::Resume);
    }

    /// Ends whatever timed or media action the dialplan is parked in (a hangup or a
    /// digit cut it short): its timer, its prompt and what it listened for.
    pub fn unpark(&mut self) {
        self.waiting = false;
        self.on_wake = None;
        self.listen = Listen::Ignore;
        self.disarm(Timer::Resume);
        self.disarm(Timer::RecordSilence);
        if let Some(r) = &self.relay {
            r.stop_playing();
        }
        // Leaving a conference (a hangup, or `#`).
        self.seat = None;
        // Still here only when a hangup cut the recording short.
        if let Some(r) = self.recording.take() {
            let keep = r.keep_on_hangup;
            r.recorder.finish(if keep {
                media::record::Ending::Keep
            } else {
                media::record::Ending::Discard
            });
        }
    }

    /// The first sign of ringing the caller gets fixes the post-dial delay.
    pub fn note_ringing(&mut self, now: Instant) {
        if self.cdr.pdd_ms.is_none() {
            let ms = now.saturating_duration_since(self.a.started).as_millis();
            self.cdr.pdd_ms = Some(i64::try_from(ms).unwrap_or(i64::MAX));
        }
    }

    pub fn arm(&mut self, at: Instant, timer: Timer) {
        self.timers.push((at, timer));
    }

    pub fn disarm(&mut self, timer: Timer) {
        self.timers.retain(|(_, t)| *t != timer);
    }

    pub fn disarm_resend(&mut self) {
        self.timers
            .retain(|(_, t)| !matches!(t, Timer::Resend2xx(_) | Timer::AckTimeout));
    }

    pub fn disarm_reliable(&mut self) {
        self.timers
            .retain(|(_, t)| !matches!(t, Timer::ResendReliable(_) | Timer::PrackTimeout));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().map(|(at, _)| *at).min()
    }

    /// Removes and returns the timers due at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due = Vec::new();
        self.timers.retain(|(at, t)| {
            if *at <= now {
                due.push(*t);
                false
            } else {
                true
            }
        });
        due
    }

    pub fn leg_by_call_id(&self, call_id: &str) -> Option<usize> {
        self.legs.iter().position(|l| l.call_id == call_id)
    }

    /// Legs still ringing or trying.
    pub fn pending_legs(&self) -> impl Iterator<Item = usize> + '_ {
        self.legs
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l.state, LegState::Calling | LegState::Early))
            .map(|(i, _)| i)
    }
}

/// What the switch puts in a request it sends on one side of a call, and where the
/// request goes.
#[derive(Debug, Clone)]
pub struct Route {
    pub uri: String,
    pub route_set: Vec<String>,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub peer: Peer,
}

impl Call {
    /// The dialog of `side` as the switch's own requests on it carry it.
    pub fn route(&self, side: Side) -> Route {
        match side {
            Side::Caller => Route {
                uri: self.a.remote_target.clone(),
                route_set: self.a.route_set.clone(),
                from: self.a.local_to.clone(),
                to: self.a.remote_from.clone(),
                call_id: self.a.call_id.clone(),
                peer: self.a.source,
            },
            Side::Callee(n) => {
                let leg = &self.legs[n];
                Route {
                    uri: leg
                        .remote_target
                        .clone()
                        .unwrap_or_else(|| leg.target.clone()),
                    route_set: leg.route_set.clone(),
                    from: leg.from.clone(),
                    to: leg.dialog_to(),
                    call_id: leg.call_id.clone(),
                    peer: leg.peer,
                }
            }
        }
    }

    /// The CSeq of the switch's next request on `side`. Toward the caller it starts
    /// above 1: the caller's dialog has no CSeq of ours yet.
    pub fn next_cseq(&mut self, side: Side) -> u32 {
        match side {
            Side::Caller => {
                self.a.local_cseq = self.a.local_cseq.max(1) + 1;
                self.a.local_cseq
            }
            Side::Callee(n) => {
                self.legs[n].cseq += 1;
                self.legs[n].cseq
            }
        }
    }
}

/// How a client transaction relates to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientUse {
    /// The INVITE of outbound leg `n`.
    Invite(usize),
    /// A relayed in-dialog request (look it up in `Call::relayed`).
    Relayed,
    /// BYE/CANCEL we originated: the response only ends the transaction.
    Own,
}

/// The calls of one shard, with the indexes that route messages to them.
#[derive(Default)]
pub struct CallTable {
    calls: HashMap<u64, Call>,
    by_call_id: HashMap<String, u64>,
    by_client: HashMap<ClientKey, (u64, ClientUse)>,
    /// Each call's earliest timer, ordered, so the shard's next deadline and the due
    /// calls are found without visiting every call on every message.
    deadlines: BTreeSet<(Instant, u64)>,
    armed: HashMap<u64, Instant>,
}

impl CallTable {
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Takes a call out to work on it; [`CallTable::put`] returns it.
    pub fn take(&mut self, id: u64) -> Option<Call> {
        if let Some(at) = self.armed.remove(&id) {
            self.deadlines.remove(&(at, id));
        }
        self.calls.remove(&id)
    }

    /// Puts a call back, or forgets it and its indexes when it has ended. An ended
    /// call whose legs still await a final response, or that still relays a request,
    /// lingers so that a late answer is still ACKed and hung up; the transaction
    /// layer guarantees every one of those ends (a response or Timer B).
    pub fn put(&mut self, call: Call) {
        if call.phase == Phase::Ended {
            self.by_call_id.remove(&call.a.call_id);
            let lingering = !call.relayed.is_empty()
                || call.legs.iter().any(|l| {
                    matches!(
                        l.state,
                        LegState::Calling | LegState::Early | LegState::Cancelled
                    )
                });
            if !lingering {
                // Keys of its BYEs go when their transactions end.
                for leg in &call.legs {
                    self.by_call_id.remove(&leg.call_id);
                    self.by_client.remove(&leg.key);
                }
                return;
            }
        }
        if let Some(at) = call.next_deadline() {
            self.deadlines.insert((at, call.id));
            self.armed.insert(call.id, at);
        }
        self.calls.insert(call.id, call);
    }

    pub fn index_call_id(&mut self, call_id: &str, id: u64) {
        self.by_call_id.insert(call_id.to_owned(), id);
    }

    pub fn index_client(&mut self, key: ClientKey, id: u64, what: ClientUse) {
        self.by_client.insert(key, (id, what));
    }

    pub fn by_call_id(&self, call_id: &str) -> Option<u64> {
        self.by_call_id.get(call_id).copied()
    }

    pub fn by_client(&mut self, key: &ClientKey, keep: bool) -> Option<(u64, ClientUse)> {
        if keep {
            self.by_client.get(key).copied()
        } else {
            self.by_client.remove(key)
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Calls with a timer due at `now`.
    pub fn due(&self, now: Instant) -> Vec<u64> {
        self.deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Call> {
        self.calls.values()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::sip::wire::Framing;

    fn call(id: u64) -> Call {
        let invite = Message::parse(
            Bytes::from(format!(
                "INVITE sip:1002@pbx.test SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{id}\r\n\
                 From: <sip:1001@pbx.test>;tag=a\r\nTo: <sip:1002@pbx.test>\r\n\
                 Call-ID: a-{id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            )),
            Framing::Stream,
        )
        .unwrap();
        let plan =
            dialplan::Dialplan::load_str("t.conf", "[c]\nexten => 1,1,NoOp()\n", ".".as_ref())
                .unwrap()
                .plan;
        Call {
            id,
            uniqueid: id.to_string(),
            a: Inbound {
                call_id: format!("a-{id}"),
                key: crate::sip::transaction::ServerKey::of_request(&invite).unwrap(),
                invite,
                source: Peer::udp("127.0.0.2:5060".parse().unwrap()),
                local_tag: "t".into(),
                remote_from: String::new(),
                local_to: String::new(),
                remote_target: String::new(),
                local_cseq: 0,
                final_sent: false,
                ok: None,
                ok_acked: false,
                gone: false,
                started: Instant::now(),
                route_set: Vec::new(),
                prack: None,
                session: None,
            },
            legs: Vec::new(),
            bridged: None,
            interp: dialplan::Interpreter::new(Arc::new(plan), Default::default()),
            relay: None,
            offer: None,
            phase: Phase::Setup,
            timers: Vec::new(),
            dial: None,
            waiting: false,
            on_wake: None,
            listen: Listen::Ignore,
            relayed: HashMap::new(),
            sdp_version: 1,
            cdr: CdrDraft::default(),
            answered_at: None,
            late_ack: None,
            recording: None,
            monitors: Vec::new(),
            app: None,
            seat: None,
            busy: Vec::new(),
        }
    }

    #[test]
    fn deadlines_follow_the_calls_timers() {
        let t0 = Instant::now();
        let mut table = CallTable::default();
        let mut a = call(1);
        a.arm(t0 + Duration::from_secs(5), Timer::DialTimeout);
        let mut b = call(2);
        b.arm(t0 + Duration::from_secs(2), Timer::Resume);
        b.arm(t0 + Duration::from_secs(9), Timer::MediaCheck);
        table.put(a);
        table.put(b);
        table.put(call(3)); // no timers: never due
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(2)));
        assert!(table.due(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(table.due(t0 + Duration::from_secs(6)), vec![2, 1]);

        // Working on a call takes its deadline out; putting it back re-files it.
        let mut b = table.take(2).unwrap();
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(b.due(t0 + Duration::from_secs(3)), vec![Timer::Resume]);
        table.put(b);
        assert_eq!(table.due(t0 + Duration::from_secs(6)), vec![1]);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn an_ended_call_leaves_no_index_behind() {
        let mut table = CallTable::default();
        let mut c = call(7);
        table.index_call_id("a-7", 7);
        c.arm(Instant::now(), Timer::AckTimeout);
        table.put(c);
        let mut c = table.take(7).unwrap();
        c.phase = Phase::Ended;
        c.timers.clear();
        table.put(c);
        assert!(table.is_empty());
        assert_eq!(table.by_call_id("a-7"), None);
        assert_eq!(table.next_deadline(), None);
    }
}
