//! The call agent (B2BUA) as a sans-IO core: an authenticated INVITE starts a
//! [`Call`] that runs the caller's dialplan; `Dial` rings every registered contact of
//! each target in parallel, the first answer wins and the others are cancelled; the
//! media of the call is anchored on a relay session whose addresses replace the
//! phones' in every SDP the switch passes on.
//!
//! The agent never reads a clock, opens a socket or spawns a task. The runtime builds
//! one [`CallAgent`] per event under the shard lock, hands it the shard's transaction
//! layer and call table plus "now", and the agent queues its messages on the layer.
//! Everything else it needs from the node (who is registered, a media session, the
//! dialplan, where CDRs go) comes through [`Services`], which tests replace.

mod conference;
mod dial;
mod dialog;
mod digits;
mod pickup;
mod playback;
pub(crate) mod record;
mod session_timer;
mod setup;
mod teardown;
mod timers;
pub(crate) mod voicemail;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::relay::Side as RelaySide;
use media::sdp::{Anchor, Sdp};

use dialplan::causes::{DialStatus, cause_to_sip, dial_status_for_failed_legs, sip_to_cause};
use dialplan::{Action, CallStart, Event, Interpreter, Resume};

use crate::call::messages::{self, Dialog, Local, caller_from, new_branch, new_tag, uri_of};
use crate::call::{
    Call, CallTable, CdrDraft, ClientUse, DialRun, Inbound, LegState, Listen, Outbound, Phase,
    Relayed, Route, Side, Timer,
};
use crate::config::Config;
use crate::registrar::Binding;
use crate::sip::ALLOW;
use crate::sip::transaction::{ClientKey, Peer, ServerKey, TransactionLayer, TransportKind};
use crate::sip::wire::{HeaderName, Message, Method, ResponseBuilder, Uri};
use crate::store::cdr::Cdr;

/// RFC 3261 T1 and T2, for re-sending our 2xx until the caller's ACK.
const T1_MS: u64 = 500;
const T2_MS: u64 = 4000;
/// 64*T1: how long a UAS waits for the ACK of its 2xx.
const ACK_WAIT: Duration = Duration::from_secs(32);
/// The relay is checked for silence this often at most; a short media timeout is
/// checked at half its length so a call ends within 1.5 timeouts of going quiet.
const MEDIA_CHECK: Duration = Duration::from_secs(5);

/// What authentication decided about a new INVITE.
pub enum Admission {
    Caller {
        user: String,
    },
    Refuse {
        status: u16,
        reason: String,
        headers: Vec<(&'static str, String)>,
    },
}

/// One call's media anchor, as the agent sees it: the relay session in the node,
/// a stand-in in tests.
pub trait MediaSession: Send {
    /// The relay's address facing `side`'s phone, for the SDP that phone receives.
    fn local_rtp(&self, side: RelaySide) -> SocketAddr;
    /// Where `side`'s phone said (in its SDP) it wants media.
    fn set_remote(&self, side: RelaySide, rtp: SocketAddr, rtcp: Option<SocketAddr>, mux: bool);
    /// Sends `side`'s media back to it (Echo()) instead of across.
    fn set_echo(&self, side: RelaySide, on: bool);
    /// Reports `side`'s telephone-event digits (RTP payload type `payload_type`).
    fn listen_for_digits(&self, side: RelaySide, payload_type: u8, sink: media::relay::DigitSink);
    /// Plays G.711 `payload` (payload type 0 or 8) to `side`'s phone, in a loop
    /// until stopped when `looped`.
    fn play(&self, side: RelaySide, payload: Arc<[u8]>, payload_type: u8, looped: bool);
    fn stop_playing(&self);
    /// Sends DTMF keys to `side`'s phone as RFC 4733 events (payload type
    /// `payload_type`), each held `duration` and followed by `gap`.
    fn send_digits(
        &self,
        side: RelaySide,
        digits: &str,
        payload_type: u8,
        duration: Duration,
        gap: Duration,
    );
    /// Time since the last media packet from either side.
    fn idle_for(&self, now: Instant) -> Duration;
    /// Seats the caller in conference `room`, hearing it in `payload_type`.
    fn join_conference(&self, room: &str, payload_type: u8) -> Box<dyn ConferenceSeat>;
    /// Starts recording the sides and file `spec` names.
    fn record(&self, spec: &media::record::RecordSpec) -> Result<Box<dyn Recorder>, String>;
    /// Per-stream counters for the CDR.
    fn report(&self) -> serde_json::Value;
}

/// A caller's place in a conference; dropping it leaves the room.
pub trait ConferenceSeat: Send {
    fn set_muted(&self, muted: bool);
    fn muted(&self) -> bool;
    /// Members in the room, this one included.
    fn members(&self) -> usize;
}

/// A recording in progress (Record, MixMonitor).
pub trait Recorder: Send {
    /// Time since the recorded audio last held voice (or since it started).
    fn silent_for(&self, now: Instant) -> Duration;
    /// Stops it; the file is complete (or deleted) on return.
    fn finish(self: Box<Self>, ending: media::record::Ending);
}

/// The node as the call agent needs it.
pub trait Services {
    fn config(&self) -> &Config;
    /// Digest authentication of an INVITE, with the guard's accounting.
    fn authenticate(&self, msg: &Message, source: Peer, wall: i64, now: Instant) -> Admission;
    /// Every current binding of a local user.
    fn locate(&self, user: &str, wall: i64) -> Vec<Binding>;
    fn allocate_media(&self) -> Result<Box<dyn MediaSession>, String>;
    /// The plan new calls start on.
    fn dialplan(&self) -> Arc<dialplan::Dialplan>;
    /// Runs `f` with the interpreter's window on the world (AstDB, globals, time).
    fn with_env(&self, wall_ms: i64, f: &mut dyn FnMut(&mut dyn dialplan::Env));
    /// A node-wide sequence number for unique IDs and channel names.
    fn next_seq(&self) -> u64;
    /// A call's `UNIQUEID` (and CDR key) from the wall clock and a sequence number.
    /// Nodes sharing a database prefix their name, as Asterisk does with
    /// `systemname`, so two nodes never write the same key.
    fn uniqueid(&self, wall: i64, seq: u64) -> String {
        format!("{wall}.{seq}")
    }
    /// A fresh Call-ID for an outbound leg that lands on the same shard as the call.
    fn leg_call_id(&self) -> String;
    /// Messages of `mailbox` changed (left, heard, deleted): tell its phones
    /// (message-waiting NOTIFY); must not block.
    fn mailbox_changed(&self, mailbox: &crate::voicemail::MailboxId);
    /// The voicemail spool, as the node indexes it.
    fn spool(&self) -> crate::voicemail::Spool {
        let config = self.config();
        crate::voicemail::Spool::new(config.resolve(&config.voicemail.spool))
    }
    /// Asks the node to find a call ringing `target` for the caller of the call
    /// with Call-ID `picker`; the answer comes as [`CallAgent::pickup_done`].
    fn request_pickup(&self, target: &str, picker: &str);
    /// The dial peers in force, with their health and calls in progress
    /// (selection skips down, draining and disabled ones). Without a node
    /// to keep health, the configured peers, all up.
    fn peer_routes(&self) -> Vec<crate::call::peer_route::PeerRoute> {
        self.config()
            .dial_peers
            .iter()
            .filter_map(crate::call::peer_route::PeerRoute::from_config)
            .collect()
    }
    /// The dial peer (tag and context) requests from `ip` come from.
    /// The context of a test call the node originated itself (`softswitch
    /// originate`), recognised by the node's secret; None for every other INVITE.
    fn originated(&self, _msg: &Message) -> Option<String> {
        None
    }
    fn peer_from(&self, ip: std::net::IpAddr) -> Option<crate::call::peer_route::PeerOrigin> {
        let routes = self.peer_routes();
        crate::call::peer_route::peer_at(&routes, ip).map(|r| r.origin())
    }
    /// What an INVITE to dial peer `tag` says about its health.
    fn peer_evidence(&self, _tag: u32, _evidence: gateway::health::Evidence, _now: Instant) {}
    /// One more (`+1`) or one fewer (`-1`) call in progress through peer `tag`.
    fn peer_calls(&self, _tag: u32, _delta: i32) {}
    /// One more (`true`) or one fewer call in progress for endpoint `user`, for
    /// the dialplan's `DEVICE_STATE`.
    fn device_use(&self, user: &str, busy: bool);
    /// Stores a finished call's record; must not block.
    fn write_cdr(&self, cdr: Cdr);
    /// A call started (recorded so a survivor can close its CDR if this node dies).
    fn call_opened(&self, _call: crate::store::cdr::OpenCall) {}
    /// A call in progress was answered at `at_ms`.
    fn call_answered(&self, _uniqueid: &str, _at_ms: i64) {}
    /// Where the relay reports the digits of the call whose caller's Call-ID is
    /// `call_id`; they come back as [`CallAgent::handle_digit`].
    fn digit_sink(&self, call_id: &str) -> media::relay::DigitSink;
    /// The sound files `names` (without extension) played back to back, looked up
    /// in `language` first.
    fn prompt(
        &self,
        names: &[String],
        language: Option<&str>,
    ) -> Result<Arc<media::prompt::Prompt>, String>;
}

/// The call agent over one shard, for one event.
pub struct CallAgent<'a> {
    pub svc: &'a dyn Services,
    pub layer: &'a mut TransactionLayer,
    pub calls: &'a mut CallTable,
    /// Unix time in milliseconds, for CDRs, nonces and the dialplan's clock.
    pub wall_ms: i64,
}

impl CallAgent<'_> {
    pub(super) fn wall_secs(&self) -> i64 {
        self.wall_ms.div_euclid(1000)
    }

    /// Our address for requests leaving on `transport`.
    pub(super) fn local_for(&self, transport: TransportKind) -> Local {
        let listen = &self.svc.config().sip.listen;
        let spec = listen
            .iter()
            .find(|l| l.transport == transport)
            .unwrap_or(&listen[0]);
        let hostport = match spec.addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        Local {
            hostport,
            transport: spec.transport,
        }
    }

    pub(super) fn media_check_interval(&self) -> Duration {
        let half = Duration::from_millis(self.svc.config().rtp.media_timeout * 500);
        half.clamp(Duration::from_millis(200), MEDIA_CHECK)
    }

    /// 481: the request names a dialog or transaction we do not have.
    pub(super) fn no_such_dialog(
        &mut self,
        key: &ServerKey,
        req: &Message,
        source: Peer,
        now: Instant,
    ) {
        self.respond(
            key,
            req,
            source,
            481,
            "Call/Transaction Does Not Exist",
            &[],
            now,
        );
    }

    /// Answers a request with a fresh To tag through its server transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn respond(
        &mut self,
        key: &ServerKey,
        req: &Message,
        source: Peer,
        status: u16,
        reason: &str,
        headers: &[(&str, String)],
        now: Instant,
    ) {
        let bytes = response(
            req,
            source,
            status,
            reason,
            headers,
            &self.svc.config().sip.user_agent,
        );
        if let Err(e) = self.layer.send_response(now, key, status, bytes) {
            tracing::debug!(error = %e, status, "response not sent");
        }
    }
}

/// A response to `req` with a fresh To tag, the given headers and our Server header.
pub fn response(
    req: &Message,
    source: Peer,
    status: u16,
    reason: &str,
    headers: &[(&str, String)],
    user_agent: &str,
) -> bytes::Bytes {
    let tag = format!("{:016x}", rand::random::<u64>());
    let mut b = ResponseBuilder::new(req, status, reason, Some(source.addr), Some(&tag));
    for (name, value) in headers {
        b = b.header(name, value);
    }
    b.header("Server", user_agent).finish()
}

fn is_sdp(msg: &Message) -> bool {
    !msg.body().is_empty()
        && msg.header(HeaderName::ContentType).is_none_or(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/sdp")
        })
}

/// The message's SDP body, if it has one that parses.
fn sdp_of(msg: &Message) -> Option<Sdp> {
    if !is_sdp(msg) {
        return None;
    }
    std::str::from_utf8(msg.body())
        .ok()
        .and_then(|t| Sdp::parse(t).ok())
}

/// Where the first audio stream of an SDP wants its media.
fn audio_target(sdp: &Sdp) -> Option<(SocketAddr, Option<SocketAddr>, bool)> {
    sdp.media()
        .into_iter()
        .find(|m| m.kind == "audio" && m.port != 0)
        .and_then(|m| m.rtp.map(|rtp| (rtp, m.rtcp, m.rtcp_mux)))
}

/// Points `side` of the relay at the phone that sent `sdp`.
fn learn_remote(relay: &dyn MediaSession, side: RelaySide, sdp: &Sdp) {
    if let Some((rtp, rtcp, mux)) = audio_target(sdp) {
        relay.set_remote(side, rtp, rtcp, mux);
    }
}

/// `sdp` pointed at the relay's side `side`: the first live audio stream is anchored;
/// other streams are disabled (port 0) since the relay carries one stream per call.
fn anchored(sdp: &Sdp, relay: &dyn MediaSession, side: RelaySide, version: u64) -> String {
    let mut anchored_one = false;
    let anchors: Vec<Anchor> = sdp
        .media()
        .iter()
        .map(|m| {
            if m.port == 0 {
                Anchor::Keep
            } else if m.kind == "audio" && !anchored_one {
                anchored_one = true;
                Anchor::Relay(relay.local_rtp(side))
            } else {
                Anchor::Reject
            }
        })
        .collect();
    sdp.rewrite_anchors(&anchors, version)
}

fn method_of(msg: &Message) -> Method {
    msg.method().cloned().unwrap_or(Method::Other("".into()))
}
