//! The call agent (B2BUA): an authenticated INVITE starts a [`Call`] that runs the
//! caller's dialplan; `Dial` rings every registered contact of each target in
//! parallel, the first answer wins and the others are cancelled; the media of the
//! call is anchored on a relay session whose addresses replace the phones' in every
//! SDP the switch passes on. Runs under the shard lock like the rest of the TU.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dialplan::causes::{DialStatus, cause_to_sip, dial_status_for_failed_legs, sip_to_cause};
use dialplan::{Action, CallStart, Event, Interpreter, Resume};
use media::relay::Side as RelaySide;
use media::sdp::{Anchor, Sdp};

use crate::call::messages::{self, Dialog, Local, caller_from, new_branch, new_tag, uri_of};
use crate::call::{
    Call, CdrDraft, ClientUse, DialRun, Inbound, LegState, Outbound, Phase, Relayed, Route, Side,
    Timer,
};
use crate::registrar::AuthOutcome;
use crate::sip::transaction::{ClientKey, Peer, ServerKey, TransportKind};
use crate::sip::wire::{HeaderName, Message, Method, ResponseBuilder, Uri};
use crate::store::astdb::DbHandle;
use crate::store::cdr::Cdr;

use super::shard::{ShardState, shard_of};
use super::{ALLOW, Node};

/// RFC 3261 T1 and the 64*T1 a UAS waits for the ACK of its 2xx.
const T1_MS: u64 = 500;
const T2_MS: u64 = 4000;
const ACK_WAIT: Duration = Duration::from_secs(32);
/// The relay is checked for silence this often at most; a short media timeout is
/// checked at half its length so a call ends within 1.5 timeouts of going quiet.
const MEDIA_CHECK: Duration = Duration::from_secs(5);

/// The interpreter's window on the node: wall clock, randomness, AstDB, globals.
struct CallEnv<'a> {
    db: DbHandle<'a>,
    globals: &'a dialplan::Globals,
}

impl dialplan::Env for CallEnv<'_> {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
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
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn is_sdp(msg: &Message) -> bool {
    !msg.body().is_empty()
        && msg.header(HeaderName::ContentType).is_none_or(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/sdp")
        })
}

/// Where the first audio stream of an SDP wants its media.
fn audio_target(sdp: &Sdp) -> Option<(std::net::SocketAddr, Option<std::net::SocketAddr>, bool)> {
    sdp.media()
        .into_iter()
        .find(|m| m.kind == "audio" && m.port != 0)
        .and_then(|m| m.rtp.map(|rtp| (rtp, m.rtcp, m.rtcp_mux)))
}

/// `sdp` pointed at the relay's side `side`: the first live audio stream is anchored;
/// other streams are disabled (port 0) since the relay carries one stream per call.
fn anchored(sdp: &Sdp, relay: &media::relay::Session, side: RelaySide, version: u64) -> String {
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

impl Node {
    /// Our address for requests leaving on `transport`.
    fn local_for(&self, transport: TransportKind) -> Local {
        let listen = &self.config.sip.listen;
        let spec = listen
            .iter()
            .find(|l| l.transport == transport)
            .unwrap_or(&listen[0]);
        let hostport = match spec.addr {
            std::net::SocketAddr::V4(a) => a.to_string(),
            std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        Local {
            hostport,
            transport: spec.transport,
        }
    }

    fn media_check_interval(&self) -> Duration {
        let half = Duration::from_millis(self.config.rtp.media_timeout * 500);
        half.clamp(Duration::from_millis(200), MEDIA_CHECK)
    }

    /// A Call-ID for an outbound leg that hashes to shard `idx`, so the whole call
    /// stays under one lock.
    fn leg_call_id(&self, idx: usize) -> String {
        loop {
            let cid = format!("{:032x}", rand::random::<u128>());
            if shard_of(&cid, self.shards.len()) == idx {
                return cid;
            }
        }
    }

    /// A new INVITE (no To tag) from a phone.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_invite(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        key: ServerKey,
        msg: Message,
        source: Peer,
        now: Instant,
    ) {
        let call_id = msg.call_id().unwrap_or_default().to_owned();
        if st.calls.by_call_id(&call_id).is_some() {
            self.respond(st, &key, &msg, source, 482, "Loop Detected", &[], now);
            return;
        }
        let wall = super::unix_now();
        let user = match self
            .registrar
            .auth
            .check(&msg, HeaderName::ProxyAuthorization, wall)
        {
            AuthOutcome::Authenticated { user } => {
                self.registrar.guard.record_success(source.addr.ip());
                user
            }
            AuthOutcome::Malformed(reason) => {
                self.respond(st, &key, &msg, source, 400, reason, &[], now);
                return;
            }
            outcome => {
                let stale = matches!(outcome, AuthOutcome::Challenge { stale: true });
                if let AuthOutcome::Failed { user } = &outcome {
                    tracing::warn!(%user, source = %source.addr, "call authentication failed");
                    if let Some(ev) = self.registrar.guard.record_failure(source.addr.ip(), now) {
                        tracing::warn!(?ev, "authentication guard");
                    }
                }
                let headers = self.challenge_headers("Proxy-Authenticate", stale, wall, &msg);
                self.respond(
                    st,
                    &key,
                    &msg,
                    source,
                    407,
                    "Proxy Authentication Required",
                    &headers,
                    now,
                );
                return;
            }
        };
        let Some(endpoint) = self.config.endpoint(&user).cloned() else {
            self.respond(st, &key, &msg, source, 403, "Forbidden", &[], now);
            return;
        };

        let offer = if is_sdp(&msg) {
            match std::str::from_utf8(msg.body())
                .ok()
                .and_then(|t| Sdp::parse(t).ok())
            {
                Some(sdp) => Some(sdp),
                None => {
                    self.respond(st, &key, &msg, source, 400, "Malformed SDP", &[], now);
                    return;
                }
            }
        } else {
            None
        };
        let relay = if offer.is_some() {
            let _rt = self.rt.enter();
            match self.relay.allocate() {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "no media relay for a new call");
                    self.respond(
                        st,
                        &key,
                        &msg,
                        source,
                        503,
                        "Service Unavailable (no media ports)",
                        &[("Retry-After", "5".into())],
                        now,
                    );
                    return;
                }
            }
        } else {
            None
        };
        if let (Some(sdp), Some(r)) = (&offer, &relay)
            && let Some((rtp, rtcp, mux)) = audio_target(sdp)
        {
            r.set_remote(RelaySide::A, rtp, rtcp, mux);
        }

        let exten = msg
            .request_uri()
            .and_then(|u| Uri::parse(u).ok().and_then(|u| u.user().map(str::to_owned)))
            .map(|u| crate::sip::wire::percent_decode(&u).into_owned())
            .unwrap_or_default();
        let (cid_name, cid_num) = endpoint
            .callerid
            .as_deref()
            .map(dialplan::interp::parse_callerid_text)
            .unwrap_or((None, None));
        let cid_num = cid_num.unwrap_or_else(|| user.clone());
        let seq = self.call_seq.fetch_add(1, Ordering::Relaxed);
        let uniqueid = format!("{}.{seq}", wall);
        let channel = format!("SIP/{user}-{seq:08x}");
        let start = CallStart {
            context: endpoint.context.clone(),
            exten: exten.clone(),
            caller_id_num: Some(cid_num.clone()),
            caller_id_name: cid_name.clone(),
            channel,
            uniqueid: uniqueid.clone(),
            variables: Vec::new(),
        };
        let interp = Interpreter::new(self.dialplan(), start);
        let local_tag = new_tag();
        let a = Inbound {
            call_id: call_id.clone(),
            remote_from: msg.header(HeaderName::From).unwrap_or_default().to_owned(),
            local_to: format!(
                "{};tag={local_tag}",
                msg.header(HeaderName::To).unwrap_or_default()
            ),
            remote_target: msg
                .header(HeaderName::Contact)
                .and_then(uri_of)
                .unwrap_or_else(|| format!("sip:{user}@{}", source.addr)),
            local_tag,
            invite: msg,
            key,
            source,
            local_cseq: 0,
            final_sent: false,
            ok: None,
            ok_acked: false,
            gone: false,
        };
        let clid = match &cid_name {
            Some(n) => format!("\"{n}\" <{cid_num}>"),
            None => format!("<{cid_num}>"),
        };
        let call = Call {
            id: seq,
            uniqueid,
            a,
            legs: Vec::new(),
            bridged: None,
            interp,
            relay,
            offer,
            phase: Phase::Setup,
            timers: Vec::new(),
            dial: None,
            waiting: false,
            relayed: Default::default(),
            sdp_version: 1,
            answered_at: None,
            cdr: CdrDraft {
                start_ms: unix_ms(),
                src: cid_num,
                dst: exten,
                dcontext: endpoint.context.clone(),
                clid,
                ..Default::default()
            },
        };
        tracing::info!(call = %call.uniqueid, from = %user, to = %call.cdr.dst, context = %call.cdr.dcontext, "new call");
        st.calls.index_call_id(&call_id, call.id);
        self.drive(idx, st, call, Resume::Start, now);
    }

    /// Runs the dialplan until it needs the outside world, then puts the call back.
    fn drive(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        mut call: Call,
        input: Resume,
        now: Instant,
    ) {
        let mut input = input;
        loop {
            let action = {
                let mut env = CallEnv {
                    db: DbHandle(&self.astdb),
                    globals: &self.globals,
                };
                call.interp.resume(input, &mut env)
            };
            while let Some(ev) = call.interp.poll_event() {
                match ev {
                    Event::Step(s) => {
                        call.cdr.lastapp = s.app.clone();
                        tracing::debug!(call = %call.uniqueid, "Executing [{}@{}:{}] {}(\"{}\")", s.exten, s.context, s.priority, s.app, s.args);
                    }
                    Event::Log { level, message } => {
                        tracing::info!(call = %call.uniqueid, %level, "{message}")
                    }
                    Event::Warning(w) => tracing::warn!(call = %call.uniqueid, "{w}"),
                }
            }
            if let Action::Hangup(ending) = action {
                self.finish_call(st, &mut call, ending.cause, now);
                break;
            }
            if call.a.gone {
                input = Resume::CallerHangup;
                continue;
            }
            input = match action {
                Action::Answer { .. } => {
                    self.answer_caller(st, &mut call, None, now);
                    Resume::Done
                }
                Action::Ringing => {
                    self.provisional_to_caller(st, &mut call, 180, "Ringing", None, now);
                    Resume::Done
                }
                Action::Progress => {
                    let sdp = self.caller_sdp(&mut call, None);
                    self.provisional_to_caller(st, &mut call, 183, "Session Progress", sdp, now);
                    Resume::Done
                }
                Action::Wait { seconds } => {
                    call.waiting = true;
                    call.arm(
                        now + Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0)),
                        Timer::Resume,
                    );
                    break;
                }
                // The following Hangup carries the cause (17/34) that picks the response.
                Action::Busy { .. } | Action::Congestion { .. } => Resume::Done,
                Action::Dial(req) => match self.start_dial(idx, st, &mut call, req, now) {
                    None => break,
                    Some(result) => Resume::Dial(result),
                },
                other => {
                    tracing::warn!(call = %call.uniqueid, action = ?other, "this application needs the media server, which this build does not include yet");
                    match other {
                        Action::Playback { .. } | Action::Background { .. } => {
                            Resume::Played { ok: false }
                        }
                        Action::WaitExten { .. } | Action::CollectDigit { .. } => Resume::Timeout,
                        Action::Read { .. } => Resume::Read {
                            digits: String::new(),
                            status: "ERROR".into(),
                        },
                        Action::Record { .. } => Resume::Recorded {
                            status: "ERROR".into(),
                        },
                        Action::VoiceMail { .. } => Resume::VoiceMail {
                            status: "FAILED".into(),
                            exit: None,
                        },
                        Action::ConfBridge { .. } => Resume::ConfBridge {
                            result: "FAILED".into(),
                        },
                        _ => Resume::Done,
                    }
                }
            };
        }
        st.calls.put(call);
    }

    /// SDP for the caller: `answer` (the callee's) or else the caller's own offer,
    /// pointed at the relay's caller side.
    fn caller_sdp(&self, call: &mut Call, answer: Option<&Sdp>) -> Option<String> {
        let relay = call.relay.as_ref()?;
        let base = answer.or(call.offer.as_ref())?;
        call.sdp_version += 1;
        Some(anchored(base, relay, RelaySide::A, call.sdp_version))
    }

    fn response_to_caller(
        &self,
        call: &Call,
        code: u16,
        reason: &str,
        sdp: Option<&str>,
    ) -> bytes::Bytes {
        let local = self.local_for(call.a.source.transport);
        let b = ResponseBuilder::new(
            &call.a.invite,
            code,
            reason,
            Some(call.a.source.addr),
            Some(&call.a.local_tag),
        )
        .header("Contact", local.contact())
        .header("Allow", ALLOW)
        .header("Server", &self.config.sip.user_agent);
        match sdp {
            Some(s) => b.body(Some("application/sdp"), s.as_bytes()),
            None => b.finish(),
        }
    }

    fn provisional_to_caller(
        &self,
        st: &mut ShardState,
        call: &mut Call,
        code: u16,
        reason: &str,
        sdp: Option<String>,
        now: Instant,
    ) {
        if call.a.final_sent {
            return;
        }
        let bytes = self.response_to_caller(call, code, reason, sdp.as_deref());
        let _ = st.layer.send_response(now, &call.a.key, code, bytes);
    }

    /// Sends the 2xx to the caller (once) and starts re-sending it until the ACK.
    fn answer_caller(
        &self,
        st: &mut ShardState,
        call: &mut Call,
        answer: Option<&Sdp>,
        now: Instant,
    ) {
        if call.a.final_sent {
            return;
        }
        let sdp = self.caller_sdp(call, answer);
        let bytes = self.response_to_caller(call, 200, "OK", sdp.as_deref());
        let _ = st.layer.send_response(now, &call.a.key, 200, bytes.clone());
        call.a.final_sent = true;
        call.a.ok = Some(bytes);
        call.arm(now + Duration::from_millis(T1_MS), Timer::Resend2xx(T1_MS));
        call.arm(now + ACK_WAIT, Timer::AckTimeout);
        call.phase = Phase::Answered;
        call.answered_at = Some(now);
        call.cdr.answer_ms.get_or_insert_with(unix_ms);
        if call.relay.is_some() && self.config.rtp.media_timeout > 0 {
            call.arm(now + self.media_check_interval(), Timer::MediaCheck);
        }
    }

    /// Starts a Dial. Returns the result at once when no leg could be started.
    fn start_dial(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        call: &mut Call,
        req: dialplan::interp::DialRequest,
        now: Instant,
    ) -> Option<dialplan::interp::DialResult> {
        let wall = super::unix_now();
        let mut run = DialRun {
            started: now,
            ring_at: None,
            answered_at: None,
            continue_on_callee_hangup: req.options.continue_on_callee_hangup(),
            failed_causes: Vec::new(),
        };
        let first_leg = call.legs.len();
        for target in &req.targets {
            if !target.tech.eq_ignore_ascii_case("SIP") {
                tracing::warn!(call = %call.uniqueid, %target, "no channel technology for this Dial target yet");
                run.failed_causes.push(66);
                continue;
            }
            let user = target.resource.split('/').next().unwrap_or_default();
            let bindings = self
                .registrar
                .location
                .lookup(&self.registrar.aor(user), wall);
            if bindings.is_empty() {
                tracing::info!(call = %call.uniqueid, %user, "Dial target has no registered contact");
                run.failed_causes.push(20);
            }
            for b in bindings {
                self.start_leg(idx, st, call, user, &b, now);
            }
        }
        if call.legs.len() == first_leg {
            let status = dial_status_for_failed_legs(&run.failed_causes);
            call.cdr.disposition = Some(disposition_of(status));
            return Some(dialplan::interp::DialResult::failed(
                status,
                run.failed_causes.last().copied(),
            ));
        }
        if let Some(t) = req.timeout.filter(|t| *t > 0.0) {
            call.arm(
                now + Duration::from_secs_f64(t.min(86_400.0)),
                Timer::DialTimeout,
            );
        }
        call.dial = Some(run);
        None
    }

    fn start_leg(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        call: &mut Call,
        user: &str,
        binding: &crate::registrar::Binding,
        now: Instant,
    ) {
        let call_id = self.leg_call_id(idx);
        let tag = new_tag();
        let (num, name) = call.interp.caller_id();
        let domain = &self.config.sip.domain;
        let from = caller_from(name, num.unwrap_or("anonymous"), domain, &tag);
        let pai = match name {
            Some(n) if !n.is_empty() => format!(
                "\"{}\" <sip:{}@{domain}>",
                n.replace('"', ""),
                num.unwrap_or("anonymous")
            ),
            _ => format!("<sip:{}@{domain}>", num.unwrap_or("anonymous")),
        };
        let to = format!("<sip:{user}@{domain}>");
        let target = uri_of(&binding.contact).unwrap_or_else(|| binding.contact.clone());
        let peer = Peer {
            transport: binding.transport,
            addr: binding.source,
            conn: None,
        };
        let local = self.local_for(binding.transport);
        let branch = new_branch();
        call.sdp_version += 1;
        let sdp = match (&call.offer, &call.relay) {
            (Some(o), Some(r)) => Some(anchored(o, r, RelaySide::B, call.sdp_version)),
            _ => None,
        };
        let bytes = messages::request(
            &Method::Invite,
            Dialog {
                uri: &target,
                from: &from,
                to: &to,
                call_id: &call_id,
                cseq: 1,
            },
            &local,
            &branch,
            &self.config.sip.user_agent,
            &[("Allow", ALLOW.to_owned()), ("P-Asserted-Identity", pai)],
            sdp.as_deref().map(|s| ("application/sdp", s.as_bytes())),
        );
        let key = match st.layer.send_request(now, bytes.clone(), peer) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "could not start an outbound leg");
                return;
            }
        };
        let n = call.legs.len();
        let seq = self.call_seq.fetch_add(1, Ordering::Relaxed);
        call.legs.push(Outbound {
            call_id: call_id.clone(),
            dialed: user.to_owned(),
            channel: format!("SIP/{user}-{seq:08x}"),
            from,
            to,
            remote_tag: None,
            target,
            remote_target: None,
            peer,
            invite: bytes,
            branch,
            key: key.clone(),
            cseq: 1,
            state: LegState::Calling,
        });
        st.calls.index_call_id(&call_id, call.id);
        st.calls.index_client(key, call.id, ClientUse::Invite(n));
        tracing::info!(call = %call.uniqueid, %user, contact = %call.legs[n].target, "ringing");
    }

    /// A response to one of the call agent's client transactions.
    pub(super) fn on_call_response(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        key: ClientKey,
        msg: Message,
        now: Instant,
    ) -> bool {
        let status = msg.status().unwrap_or(0);
        let Some((id, what)) = st.calls.by_client(&key, status < 200) else {
            return false;
        };
        let Some(mut call) = st.calls.take(id) else {
            return true;
        };
        match what {
            ClientUse::Invite(n) => {
                self.on_leg_response(idx, st, call, n, &msg, now);
                return true;
            }
            ClientUse::Relayed => self.on_relayed_response(st, &mut call, &key, &msg, now),
            ClientUse::Own => {}
        }
        st.calls.put(call);
        true
    }

    fn on_leg_response(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        mut call: Call,
        n: usize,
        msg: &Message,
        now: Instant,
    ) {
        let status = msg.status().unwrap_or(0);
        let answer = if is_sdp(msg) {
            std::str::from_utf8(msg.body())
                .ok()
                .and_then(|t| Sdp::parse(t).ok())
        } else {
            None
        };
        match status {
            100 => {}
            101..=199 => {
                if call.legs[n].state == LegState::Calling {
                    call.legs[n].state = LegState::Early;
                }
                if let Some(d) = call.dial.as_mut() {
                    d.ring_at.get_or_insert(now);
                }
                if call.bridged.is_none() && !call.a.final_sent {
                    if let (Some(sdp), Some(r)) = (&answer, &call.relay)
                        && let Some((rtp, rtcp, mux)) = audio_target(sdp)
                    {
                        r.set_remote(RelaySide::B, rtp, rtcp, mux);
                    }
                    let body = answer
                        .as_ref()
                        .and_then(|a| self.caller_sdp(&mut call, Some(a)));
                    let (code, reason) = if body.is_some() {
                        (183, "Session Progress")
                    } else {
                        (180, "Ringing")
                    };
                    self.provisional_to_caller(st, &mut call, code, reason, body, now);
                }
            }
            200..=299 => {
                let to_tag = msg
                    .to_header()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned));
                let contact = msg.header(HeaderName::Contact).and_then(uri_of);
                let leg = &mut call.legs[n];
                if leg.state == LegState::Answered {
                    // A retransmitted 2xx: our ACK was lost.
                    self.ack(st, &call, Side::Callee(n), msg);
                } else if call.bridged.is_none() && !call.a.gone && call.phase != Phase::Ended {
                    leg.state = LegState::Answered;
                    leg.remote_tag = to_tag;
                    leg.remote_target = contact;
                    self.ack(st, &call, Side::Callee(n), msg);
                    if let (Some(sdp), Some(r)) = (&answer, &call.relay)
                        && let Some((rtp, rtcp, mux)) = audio_target(sdp)
                    {
                        r.set_remote(RelaySide::B, rtp, rtcp, mux);
                    }
                    call.bridged = Some(n);
                    call.answered_at = Some(now);
                    call.disarm(Timer::DialTimeout);
                    for other in call.pending_legs().collect::<Vec<_>>() {
                        self.cancel_leg(st, &mut call, other, now);
                    }
                    if let Some(d) = call.dial.as_mut() {
                        d.answered_at = Some(now);
                    }
                    call.cdr.dstchannel = call.legs[n].channel.clone();
                    call.cdr.disposition = Some("ANSWERED");
                    call.cdr.sip_status = Some(status);
                    if call.a.final_sent {
                        // The dialplan answered already; the caller keeps the SDP it has.
                        call.cdr.answer_ms.get_or_insert_with(unix_ms);
                    } else {
                        self.answer_caller(st, &mut call, answer.as_ref(), now);
                    }
                    tracing::info!(call = %call.uniqueid, callee = %call.legs[n].dialed, "answered");
                } else {
                    // Answered too late (another leg won, or the caller left): end it.
                    leg.state = LegState::Answered;
                    leg.remote_tag = to_tag;
                    leg.remote_target = contact;
                    self.ack(st, &call, Side::Callee(n), msg);
                    self.bye_leg(st, &mut call, n, now);
                }
            }
            _ => {
                let was = call.legs[n].state;
                call.legs[n].state = match was {
                    LegState::Cancelled => LegState::Cancelled,
                    _ => LegState::Failed(status),
                };
                call.cdr.sip_status.get_or_insert(status);
                if was != LegState::Cancelled {
                    tracing::info!(call = %call.uniqueid, callee = %call.legs[n].dialed, status, "leg failed");
                }
                if call.bridged.is_none()
                    && call.pending_legs().next().is_none()
                    && call.dial.is_some()
                {
                    let result = self.dial_failed(&mut call);
                    self.drive(idx, st, call, Resume::Dial(result), now);
                    return;
                }
            }
        }
        st.calls.put(call);
    }

    /// Every leg failed: the Dial's outcome from the legs' responses.
    fn dial_failed(&self, call: &mut Call) -> dialplan::interp::DialResult {
        call.disarm(Timer::DialTimeout);
        let run = call.dial.take();
        let mut causes = run
            .as_ref()
            .map(|r| r.failed_causes.clone())
            .unwrap_or_default();
        let mut last = None;
        for leg in &call.legs {
            if let LegState::Failed(code) = leg.state {
                let c = sip_to_cause(code);
                causes.push(c);
                last = Some(c);
            }
        }
        let status = dial_status_for_failed_legs(&causes);
        call.cdr.disposition = Some(disposition_of(status));
        let mut result =
            dialplan::interp::DialResult::failed(status, last.or(causes.last().copied()));
        if let Some(r) = run {
            result.dialed_time = r.started.elapsed().as_secs_f64();
            result.ring_time = r.ring_at.map(|t| (t - r.started).as_secs_f64());
        }
        result
    }

    /// A request in the dialog of `side`, from the switch.
    fn dialog_request(
        &self,
        route: &Route,
        method: &Method,
        cseq: u32,
        extra: &[(&str, String)],
        body: Option<(&str, &[u8])>,
    ) -> bytes::Bytes {
        messages::request(
            method,
            Dialog {
                uri: &route.uri,
                from: &route.from,
                to: &route.to,
                call_id: &route.call_id,
                cseq,
            },
            &self.local_for(route.peer.transport),
            &new_branch(),
            &self.config.sip.user_agent,
            extra,
            body,
        )
    }

    /// ACKs a 2xx to one of our INVITEs on `side` (not a transaction: sent as is).
    fn ack(&self, st: &mut ShardState, call: &Call, side: Side, resp: &Message) {
        let route = call.route(side);
        let cseq = resp.cseq().map(|c| c.seq).unwrap_or(1);
        let bytes = self.dialog_request(&route, &Method::Ack, cseq, &[], None);
        st.layer.send_stateless(route.peer, bytes);
    }

    /// Sends a BYE on `side`; its response only ends the transaction.
    fn send_bye(&self, st: &mut ShardState, call: &mut Call, side: Side, now: Instant) {
        let cseq = call.next_cseq(side);
        let route = call.route(side);
        let bytes = self.dialog_request(&route, &Method::Bye, cseq, &[], None);
        match st.layer.send_request(now, bytes, route.peer) {
            Ok(key) => st.calls.index_client(key, call.id, ClientUse::Own),
            Err(e) => tracing::debug!(error = %e, "BYE not sent"),
        }
    }

    fn cancel_leg(&self, st: &mut ShardState, call: &mut Call, n: usize, now: Instant) {
        let leg = &mut call.legs[n];
        if !matches!(leg.state, LegState::Calling | LegState::Early) {
            return;
        }
        leg.state = LegState::Cancelled;
        let bytes = messages::request(
            &Method::Cancel,
            Dialog {
                uri: &leg.target,
                from: &leg.from,
                to: &leg.to,
                call_id: &leg.call_id,
                cseq: 1,
            },
            &self.local_for(leg.peer.transport),
            &leg.branch,
            &self.config.sip.user_agent,
            &[],
            None,
        );
        match st.layer.send_request(now, bytes, leg.peer) {
            Ok(key) => st.calls.index_client(key, call.id, ClientUse::Own),
            Err(e) => tracing::debug!(error = %e, "CANCEL not sent"),
        }
    }

    fn bye_leg(&self, st: &mut ShardState, call: &mut Call, n: usize, now: Instant) {
        if call.legs[n].state != LegState::Answered {
            return;
        }
        call.legs[n].state = LegState::Ended;
        self.send_bye(st, call, Side::Callee(n), now);
    }

    fn bye_caller(&self, st: &mut ShardState, call: &mut Call, now: Instant) {
        if call.a.gone || !call.a.final_sent || call.phase != Phase::Answered {
            return;
        }
        call.a.gone = true;
        self.send_bye(st, call, Side::Caller, now);
    }

    /// The dialplan is done with the call: answer what is unanswered, hang up what is
    /// up, free the relay and write the CDR.
    fn finish_call(&self, st: &mut ShardState, call: &mut Call, cause: u16, now: Instant) {
        if call.phase == Phase::Ended {
            return;
        }
        if !call.a.final_sent && !call.a.gone {
            let (code, reason) = cause_to_sip(cause);
            let bytes = self.response_to_caller(call, code, reason, None);
            let _ = st.layer.send_response(now, &call.a.key, code, bytes);
            call.a.final_sent = true;
            call.cdr.sip_status.get_or_insert(code);
        } else {
            self.bye_caller(st, call, now);
        }
        for n in call.pending_legs().collect::<Vec<_>>() {
            self.cancel_leg(st, call, n, now);
        }
        if let Some(b) = call.bridged {
            self.bye_leg(st, call, b, now);
        }
        call.phase = Phase::Ended;
        call.timers.clear();
        call.cdr.hangup_cause.get_or_insert(cause);
        let media = call.relay.take().map(|r| media_json(&r));
        self.write_cdr(call, media);
        tracing::info!(call = %call.uniqueid, cause, "call ended");
    }

    fn write_cdr(&self, call: &Call, media: Option<serde_json::Value>) {
        let end = unix_ms();
        let c = &call.cdr;
        let cdr = Cdr {
            uniqueid: call.uniqueid.clone(),
            node: self.config.node.name.clone(),
            start_at: c.start_ms,
            answer_at: c.answer_ms,
            end_at: end,
            duration: (end - c.start_ms).max(0) / 1000,
            billsec: c.answer_ms.map(|a| (end - a).max(0) / 1000).unwrap_or(0),
            src: c.src.clone(),
            dst: c.dst.clone(),
            dcontext: c.dcontext.clone(),
            clid: c.clid.clone(),
            dstchannel: c.dstchannel.clone(),
            lastapp: c.lastapp.clone(),
            disposition: c
                .disposition
                .unwrap_or(if c.answer_ms.is_some() {
                    "ANSWERED"
                } else {
                    "FAILED"
                })
                .to_owned(),
            hangup_cause: c.hangup_cause.unwrap_or(16) as i64,
            end_reason: c.end_reason.unwrap_or("dialplan").to_owned(),
            sip_status: c.sip_status.map(i64::from),
            media: media.unwrap_or(serde_json::json!({})).to_string(),
        };
        let store = self.store.clone();
        self.rt.spawn(async move {
            if let Err(e) = store.insert_cdr(&cdr).await {
                tracing::error!(error = %e, uniqueid = %cdr.uniqueid, "could not write a CDR");
            }
        });
    }

    /// An in-dialog request or a CANCEL. Returns false when it belongs to no call.
    pub(super) fn on_call_request(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        key: ServerKey,
        msg: Message,
        source: Peer,
        now: Instant,
    ) -> bool {
        let call_id = msg.call_id().unwrap_or_default();
        let Some(id) = st.calls.by_call_id(call_id) else {
            return false;
        };
        let Some(mut call) = st.calls.take(id) else {
            return false;
        };
        let side = if call.a.call_id == call_id {
            Side::Caller
        } else {
            match call.leg_by_call_id(call_id) {
                Some(n) => Side::Callee(n),
                None => {
                    st.calls.put(call);
                    return false;
                }
            }
        };
        let method = msg.method().cloned().unwrap_or(Method::Other("".into()));
        match (method, side) {
            (Method::Cancel, Side::Caller) => {
                self.respond(st, &key, &msg, source, 200, "OK", &[], now);
                if call.a.final_sent {
                    st.calls.put(call);
                    return true;
                }
                let bytes = self.response_to_caller(&call, 487, "Request Terminated", None);
                let _ = st.layer.send_response(now, &call.a.key, 487, bytes);
                call.a.final_sent = true;
                call.a.gone = true;
                call.cdr.sip_status = Some(487);
                call.cdr.disposition.get_or_insert("NO ANSWER");
                call.cdr.hangup_cause = Some(16);
                call.cdr.end_reason.get_or_insert("caller_cancel");
                for n in call.pending_legs().collect::<Vec<_>>() {
                    self.cancel_leg(st, &mut call, n, now);
                }
                tracing::info!(call = %call.uniqueid, "caller cancelled");
                call.dial = None;
                call.waiting = false;
                call.disarm(Timer::DialTimeout);
                call.disarm(Timer::Resume);
                self.drive(idx, st, call, Resume::CallerHangup, now);
            }
            (Method::Bye, side) => {
                self.respond(st, &key, &msg, source, 200, "OK", &[], now);
                let input = match side {
                    Side::Caller => {
                        call.a.gone = true;
                        call.cdr.hangup_cause = Some(16);
                        call.cdr.end_reason.get_or_insert("caller_hangup");
                        if let Some(b) = call.bridged {
                            self.bye_leg(st, &mut call, b, now);
                        }
                        tracing::info!(call = %call.uniqueid, "caller hung up");
                        match call.dial.take() {
                            Some(_) => Resume::Dial(self.answered_result(&call, true)),
                            None => Resume::CallerHangup,
                        }
                    }
                    Side::Callee(n) => {
                        call.legs[n].state = LegState::Ended;
                        if call.bridged != Some(n) {
                            st.calls.put(call);
                            return true;
                        }
                        tracing::info!(call = %call.uniqueid, "callee hung up");
                        call.cdr.hangup_cause = Some(16);
                        call.cdr.end_reason.get_or_insert("callee_hangup");
                        let keep_caller = call
                            .dial
                            .as_ref()
                            .is_some_and(|d| d.continue_on_callee_hangup);
                        if !keep_caller {
                            self.bye_caller(st, &mut call, now);
                        }
                        call.bridged = None;
                        match call.dial.take() {
                            Some(_) => Resume::Dial(self.answered_result(&call, false)),
                            None => Resume::Done,
                        }
                    }
                };
                call.waiting = false;
                call.disarm(Timer::Resume);
                self.drive(idx, st, call, input, now);
            }
            (_, side) => {
                self.relay_in_dialog(st, &mut call, side, key, msg, source, now);
                st.calls.put(call);
            }
        }
        true
    }

    fn answered_result(&self, call: &Call, caller_hung_up: bool) -> dialplan::interp::DialResult {
        let peer = call
            .legs
            .iter()
            .find(|l| l.channel == call.cdr.dstchannel)
            .map(|l| l.dialed.clone())
            .unwrap_or_default();
        dialplan::interp::DialResult::answered(&peer, caller_hung_up)
    }

    /// Passes an in-dialog request (re-INVITE, UPDATE, INFO, OPTIONS, ...) to the
    /// other side, with any SDP re-anchored, and answers the sender when the other
    /// side answers.
    #[allow(clippy::too_many_arguments)]
    fn relay_in_dialog(
        &self,
        st: &mut ShardState,
        call: &mut Call,
        side: Side,
        key: ServerKey,
        msg: Message,
        source: Peer,
        now: Instant,
    ) {
        let method = msg.method().cloned().unwrap_or(Method::Other("".into()));
        let target = match side {
            Side::Caller => call.bridged.map(Side::Callee),
            Side::Callee(n) if call.bridged == Some(n) && !call.a.gone => Some(Side::Caller),
            Side::Callee(_) => None,
        };
        let Some(target) = target else {
            let (code, reason) = match method {
                Method::Options => (200, "OK"),
                Method::Invite | Method::Update if call.phase == Phase::Setup => {
                    (491, "Request Pending")
                }
                _ => (481, "Call/Transaction Does Not Exist"),
            };
            self.respond(st, &key, &msg, source, code, reason, &[], now);
            return;
        };
        let offer = if is_sdp(&msg) {
            std::str::from_utf8(msg.body())
                .ok()
                .and_then(|t| Sdp::parse(t).ok())
        } else {
            None
        };
        let (from_relay, to_relay) = match side {
            Side::Caller => (RelaySide::A, RelaySide::B),
            Side::Callee(_) => (RelaySide::B, RelaySide::A),
        };
        let body = match (&offer, &call.relay) {
            (Some(sdp), Some(r)) => {
                if let Some((rtp, rtcp, mux)) = audio_target(sdp) {
                    r.set_remote(from_relay, rtp, rtcp, mux);
                }
                call.sdp_version += 1;
                Some(anchored(sdp, r, to_relay, call.sdp_version))
            }
            _ => None,
        };
        // Headers the other side needs to understand the request; a non-SDP body
        // (DTMF in INFO, ...) goes through unchanged with its Content-Type.
        let mut extra: Vec<(&str, String)> = Vec::new();
        for name in ["Event", "Info-Package", "Subscription-State"] {
            if let Some(v) = msg.header_other(name) {
                extra.push((name, v.to_owned()));
            }
        }
        let content_type = msg
            .header(HeaderName::ContentType)
            .unwrap_or("application/octet-stream");
        let payload = match &body {
            Some(sdp) => Some(("application/sdp", sdp.as_bytes())),
            None if !msg.body().is_empty() => Some((content_type, msg.body())),
            None => None,
        };
        let cseq = call.next_cseq(target);
        let route = call.route(target);
        let bytes = self.dialog_request(&route, &method, cseq, &extra, payload);
        let peer = route.peer;
        match st.layer.send_request(now, bytes, peer) {
            Ok(ck) => {
                st.calls
                    .index_client(ck.clone(), call.id, ClientUse::Relayed);
                call.relayed.insert(
                    ck,
                    Relayed {
                        server_key: key,
                        request: msg,
                        from: side,
                        source,
                    },
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, "in-dialog request not relayed");
                self.respond(
                    st,
                    &key,
                    &msg,
                    source,
                    500,
                    "Server Internal Error",
                    &[],
                    now,
                );
            }
        }
    }

    fn on_relayed_response(
        &self,
        st: &mut ShardState,
        call: &mut Call,
        key: &ClientKey,
        msg: &Message,
        now: Instant,
    ) {
        let status = msg.status().unwrap_or(500);
        if status < 200 {
            return;
        }
        let Some(r) = call.relayed.remove(key) else {
            return;
        };
        let (responder, origin) = match r.from {
            Side::Caller => (RelaySide::B, RelaySide::A),
            Side::Callee(_) => (RelaySide::A, RelaySide::B),
        };
        if (200..300).contains(&status) && r.request.method() == Some(&Method::Invite) {
            // We are the UAC of the re-INVITE on the other side: ACK it ourselves.
            match r.from {
                Side::Caller => {
                    if let Some(b) = call.bridged {
                        self.ack(st, call, Side::Callee(b), msg);
                    }
                }
                Side::Callee(_) => self.ack(st, call, Side::Caller, msg),
            }
        }
        let sdp = if is_sdp(msg) {
            std::str::from_utf8(msg.body())
                .ok()
                .and_then(|t| Sdp::parse(t).ok())
        } else {
            None
        };
        let body = match (&sdp, &call.relay) {
            (Some(s), Some(relay)) => {
                if let Some((rtp, rtcp, mux)) = audio_target(s) {
                    relay.set_remote(responder, rtp, rtcp, mux);
                }
                call.sdp_version += 1;
                Some(anchored(s, relay, origin, call.sdp_version))
            }
            _ => None,
        };
        let local = self.local_for(r.source.transport);
        let b = ResponseBuilder::new(
            &r.request,
            status,
            msg.reason_phrase().unwrap_or(""),
            Some(r.source.addr),
            None,
        )
        .header("Contact", local.contact())
        .header("Server", &self.config.sip.user_agent);
        let bytes = match body {
            Some(s) => b.body(Some("application/sdp"), s.as_bytes()),
            None if !msg.body().is_empty() => {
                b.body(msg.header(HeaderName::ContentType), msg.body())
            }
            None => b.finish(),
        };
        if let Err(e) = st.layer.send_response(now, &r.server_key, status, bytes) {
            tracing::debug!(error = %e, "relayed response not sent");
        }
    }

    /// An ACK outside any transaction: the caller acknowledging our 2xx.
    pub(super) fn on_call_ack(&self, st: &mut ShardState, msg: &Message) {
        let call_id = msg.call_id().unwrap_or_default();
        let Some(id) = st.calls.by_call_id(call_id) else {
            return;
        };
        let Some(mut call) = st.calls.take(id) else {
            return;
        };
        if call.a.call_id == call_id && !call.a.ok_acked {
            call.a.ok_acked = true;
            call.disarm_resend();
        }
        st.calls.put(call);
    }

    /// A 2xx that outlived its INVITE transaction: the callee did not get our ACK.
    pub(super) fn on_stray_response(&self, st: &mut ShardState, msg: &Message) {
        if !msg.status().is_some_and(|s| (200..300).contains(&s))
            || msg
                .cseq()
                .map(|c| c.method != Method::Invite)
                .unwrap_or(true)
        {
            return;
        }
        let call_id = msg.call_id().unwrap_or_default();
        let Some(id) = st.calls.by_call_id(call_id) else {
            return;
        };
        let Some(call) = st.calls.take(id) else {
            return;
        };
        if let Some(n) = call.leg_by_call_id(call_id)
            && matches!(call.legs[n].state, LegState::Answered | LegState::Ended)
        {
            self.ack(st, &call, Side::Callee(n), msg);
        }
        st.calls.put(call);
    }

    /// A client transaction of a call got no answer or could not be sent.
    pub(super) fn on_call_client_failure(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        key: &ClientKey,
        now: Instant,
    ) -> bool {
        let Some((id, what)) = st.calls.by_client(key, false) else {
            return false;
        };
        let Some(mut call) = st.calls.take(id) else {
            return true;
        };
        match what {
            ClientUse::Invite(n) => {
                let timeout = Message::parse(
                    bytes::Bytes::from(format!(
                        "SIP/2.0 408 Request Timeout\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
                        call.legs[n].call_id
                    )),
                    crate::sip::wire::Framing::Stream,
                );
                match timeout {
                    Ok(m) => {
                        self.on_leg_response(idx, st, call, n, &m, now);
                        return true;
                    }
                    Err(_) => call.legs[n].state = LegState::Failed(408),
                }
            }
            ClientUse::Relayed => {
                if let Some(r) = call.relayed.remove(key) {
                    self.respond(
                        st,
                        &r.server_key,
                        &r.request,
                        r.source,
                        408,
                        "Request Timeout",
                        &[],
                        now,
                    );
                }
            }
            ClientUse::Own => {}
        }
        st.calls.put(call);
        true
    }

    /// Fires the call timers due at `now`.
    pub(super) fn on_call_timers(self: &Arc<Self>, idx: usize, st: &mut ShardState, now: Instant) {
        for id in st.calls.due(now) {
            let Some(mut call) = st.calls.take(id) else {
                continue;
            };
            let mut resume = None;
            for t in call.due(now) {
                match t {
                    Timer::DialTimeout => {
                        for n in call.pending_legs().collect::<Vec<_>>() {
                            self.cancel_leg(st, &mut call, n, now);
                        }
                        if call.bridged.is_none() && call.dial.is_some() {
                            let mut r = self.dial_failed(&mut call);
                            r.status = DialStatus::NoAnswer;
                            r.cause = Some(19);
                            call.cdr.disposition = Some("NO ANSWER");
                            resume = Some(Resume::Dial(r));
                        }
                    }
                    Timer::Resend2xx(ms) => {
                        if !call.a.ok_acked
                            && let Some(ok) = call.a.ok.clone()
                        {
                            st.layer.send_stateless(call.a.source, ok);
                            let next = (ms * 2).min(T2_MS);
                            call.arm(now + Duration::from_millis(next), Timer::Resend2xx(next));
                        }
                    }
                    Timer::AckTimeout => {
                        if !call.a.ok_acked {
                            tracing::warn!(call = %call.uniqueid, "no ACK for our 2xx: hanging up");
                            call.cdr.end_reason.get_or_insert("no_ack");
                            call.disarm_resend();
                            call.a.ok_acked = true;
                            self.bye_caller(st, &mut call, now);
                            if let Some(b) = call.bridged {
                                self.bye_leg(st, &mut call, b, now);
                            }
                            call.a.gone = true;
                            resume = Some(match call.dial.take() {
                                Some(_) => Resume::Dial(self.answered_result(&call, true)),
                                None => Resume::CallerHangup,
                            });
                        }
                    }
                    Timer::Resume => {
                        if call.waiting {
                            call.waiting = false;
                            resume = Some(Resume::Done);
                        }
                    }
                    Timer::MediaCheck => {
                        let limit = Duration::from_secs(self.config.rtp.media_timeout);
                        let since_answer = call.answered_at.map_or(Duration::ZERO, |t| now - t);
                        let idle = call.relay.as_ref().map(|r| r.idle_for().min(since_answer));
                        match idle {
                            Some(idle) if !limit.is_zero() && idle >= limit => {
                                tracing::warn!(call = %call.uniqueid, idle_s = idle.as_secs(), "no media: hanging up");
                                call.cdr.hangup_cause = Some(16);
                                call.cdr.end_reason.get_or_insert("media_timeout");
                                self.bye_caller(st, &mut call, now);
                                if let Some(b) = call.bridged {
                                    self.bye_leg(st, &mut call, b, now);
                                }
                                call.a.gone = true;
                                resume = Some(match call.dial.take() {
                                    Some(_) => Resume::Dial(self.answered_result(&call, true)),
                                    None => Resume::CallerHangup,
                                });
                            }
                            Some(_) if call.phase == Phase::Answered => {
                                call.arm(now + self.media_check_interval(), Timer::MediaCheck)
                            }
                            _ => {}
                        }
                    }
                }
            }
            match resume {
                Some(input) => self.drive(idx, st, call, input, now),
                None => st.calls.put(call),
            }
        }
    }
}

fn disposition_of(status: DialStatus) -> &'static str {
    match status {
        DialStatus::Answer => "ANSWERED",
        DialStatus::Busy => "BUSY",
        DialStatus::NoAnswer | DialStatus::Cancel => "NO ANSWER",
        DialStatus::Congestion => "CONGESTION",
        _ => "FAILED",
    }
}

fn media_json(r: &media::relay::Session) -> serde_json::Value {
    let leg = |side: RelaySide| {
        let s = r.stats(side);
        serde_json::json!({
            "packets": s.packets,
            "bytes": s.bytes,
            "lost": s.lost,
            "jitter_ms": (s.jitter_ms * 100.0).round() / 100.0,
            "forwarded": r.forwarded(side),
            "latched": r.latched(side).map(|a| a.to_string()),
        })
    };
    serde_json::json!({ "caller": leg(RelaySide::A), "callee": leg(RelaySide::B) })
}
