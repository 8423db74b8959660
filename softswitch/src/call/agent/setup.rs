use super::*;

impl CallAgent<'_> {
    /// A new INVITE (no To tag) from a phone.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_invite(&mut self, key: ServerKey, msg: Message, source: Peer, now: Instant) {
        let call_id = msg.call_id().unwrap_or_default().to_owned();
        if self.calls.by_call_id(&call_id).is_some() {
            self.respond(&key, &msg, source, 482, "Loop Detected", &[], now);
            return;
        }
        let wall = self.wall_secs();
        // A dial peer is trusted by its address (and digest, when it is asked
        // for) and runs in its own context; a phone proves who it is with
        // digest. Nothing else gets a dialplan.
        let originated = self.svc.originated(&msg);
        let origin = match self.svc.peer_from(source.addr.ip()) {
            _ if originated.is_some() => {
                let from = msg.from_header().ok();
                let name = from.as_ref().and_then(|f| {
                    f.display
                        .as_deref()
                        .map(|d| d.trim_matches('"').to_string())
                });
                let number = from.as_ref().and_then(|f| f.uri.user().map(str::to_owned));
                Origin {
                    user: "originate".into(),
                    context: originated.unwrap_or_default(),
                    callerid: (name, number),
                    channel: "Local/originate".into(),
                }
            }
            Some(peer) => {
                if let Some(expected) = &peer.auth_as {
                    match self.svc.authenticate(&msg, source, wall, now) {
                        Admission::Caller { user } if &user == expected => {}
                        Admission::Caller { user } => {
                            tracing::warn!(tag = peer.tag, %user, "a dial peer authenticated as someone else");
                            self.respond(&key, &msg, source, 403, "Forbidden", &[], now);
                            return;
                        }
                        Admission::Refuse {
                            status,
                            reason,
                            headers,
                        } => {
                            self.respond(&key, &msg, source, status, &reason, &headers, now);
                            return;
                        }
                    }
                }
                let (tag, context) = (peer.tag, peer.context);
                let from = msg.from_header().ok();
                let name = from
                    .as_ref()
                    .and_then(|f| {
                        f.display
                            .as_deref()
                            .map(|d| d.trim_matches('"').to_string())
                    })
                    .filter(|d| !d.is_empty());
                let number = from
                    .as_ref()
                    .and_then(|f| {
                        f.uri
                            .user()
                            .map(|u| crate::sip::wire::percent_decode(u).into_owned())
                    })
                    .unwrap_or_else(|| "anonymous".into());
                tracing::info!(tag, source = %source.addr, "call from a dial peer");
                Origin {
                    user: format!("PEER/{tag}"),
                    context,
                    callerid: (name, Some(number)),
                    channel: format!("PEER/{tag}"),
                }
            }
            None => {
                let user = match self.svc.authenticate(&msg, source, wall, now) {
                    Admission::Caller { user } => user,
                    Admission::Refuse {
                        status,
                        reason,
                        headers,
                    } => {
                        self.respond(&key, &msg, source, status, &reason, &headers, now);
                        return;
                    }
                };
                let Some(endpoint) = self.svc.config().endpoint(&user).cloned() else {
                    self.respond(&key, &msg, source, 403, "Forbidden", &[], now);
                    return;
                };
                Origin {
                    channel: format!("SIP/{user}"),
                    context: endpoint.context.clone(),
                    callerid: endpoint
                        .callerid
                        .as_deref()
                        .map(dialplan::interp::parse_callerid_text)
                        .unwrap_or((None, None)),
                    user,
                }
            }
        };
        let user = origin.user.clone();

        let offer = match sdp_of(&msg) {
            Some(sdp) => Some(sdp),
            None if is_sdp(&msg) => {
                self.respond(&key, &msg, source, 400, "Malformed SDP", &[], now);
                return;
            }
            None => None,
        };
        let session = match session_timer::requested(&msg) {
            session_timer::SessionRequest::TooSmall => {
                let min = [("Min-SE", session_timer::MIN_SE.to_string())];
                self.respond(
                    &key,
                    &msg,
                    source,
                    422,
                    "Session Interval Too Small",
                    &min,
                    now,
                );
                return;
            }
            session_timer::SessionRequest::Timer(t) => Some(t),
            session_timer::SessionRequest::None => None,
        };
        // Every call is anchored, with or without an offer in the INVITE: a late
        // offer arrives in the callee's 2xx and is anchored then.
        let relay = match self.svc.allocate_media() {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "no media relay for a new call");
                self.respond(
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
        };
        if let (Some(sdp), Some(r)) = (&offer, &relay) {
            learn_remote(r.as_ref(), RelaySide::A, sdp);
            if let Some(pt) = digits::telephone_event_pt(sdp) {
                r.listen_for_digits(RelaySide::A, pt, self.svc.digit_sink(&call_id));
            }
        }

        let exten = msg
            .request_uri()
            .and_then(|u| Uri::parse(u).ok().and_then(|u| u.user().map(str::to_owned)))
            .map(|u| crate::sip::wire::percent_decode(&u).into_owned())
            .unwrap_or_default();
        let (cid_name, cid_num) = origin.callerid.clone();
        let cid_num = cid_num.unwrap_or_else(|| user.clone());
        let seq = self.svc.next_seq();
        let uniqueid = self.svc.uniqueid(wall, seq);
        let channel = format!("{}-{seq:08x}", origin.channel);
        let start = CallStart {
            context: origin.context.clone(),
            exten: exten.clone(),
            caller_id_num: Some(cid_num.clone()),
            caller_id_name: cid_name.clone(),
            channel,
            uniqueid: uniqueid.clone(),
            variables: Vec::new(),
        };
        let interp = Interpreter::new(self.svc.dialplan(), start);
        let local_tag = new_tag();
        let route_set = msg
            .header_all(HeaderName::RecordRoute)
            .map(str::to_owned)
            .collect();
        let prack = msg
            .option_tags(HeaderName::Require)
            .any(|t| t.eq_ignore_ascii_case("100rel"))
            .then(Default::default);
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
            started: now,
            route_set,
            prack,
            session,
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
            on_wake: None,
            listen: Listen::Ignore,
            relayed: Default::default(),
            sdp_version: 1,
            answered_at: None,
            late_ack: None,
            recording: None,
            monitors: Vec::new(),
            app: None,
            seat: None,
            busy: vec![user.clone()],
            cdr: CdrDraft {
                start_ms: self.wall_ms,
                src: cid_num,
                dst: exten,
                dcontext: origin.context.clone(),
                clid,
                ..Default::default()
            },
        };
        tracing::info!(call = %call.uniqueid, from = %user, to = %call.cdr.dst, context = %call.cdr.dcontext, "new call");
        self.svc.call_opened(crate::store::cdr::OpenCall {
            uniqueid: call.uniqueid.clone(),
            node: self.svc.config().node.name.clone(),
            start_at: call.cdr.start_ms,
            answer_at: None,
            src: call.cdr.src.clone(),
            dst: call.cdr.dst.clone(),
            dcontext: call.cdr.dcontext.clone(),
            clid: call.cdr.clid.clone(),
        });
        self.svc.device_use(&user, true);
        self.calls.index_call_id(&call_id, call.id);
        self.drive(call, Resume::Start, now);
    }

    /// Runs the dialplan until it needs the outside world, then puts the call back.
    pub(super) fn drive(&mut self, mut call: Call, input: Resume, now: Instant) {
        let mut input = input;
        if call.app.is_some() {
            match self.app_input(&mut call, input, now) {
                Some(outcome) => input = outcome,
                None => {
                    self.calls.put(call);
                    return;
                }
            }
        }
        loop {
            // A digit acts only on the action that listens for it.
            call.listen = Listen::Ignore;
            let mut action = None;
            let mut pending = Some(input);
            let interp = &mut call.interp;
            self.svc.with_env(self.wall_ms, &mut |env| {
                if let Some(i) = pending.take() {
                    action = Some(interp.resume(i, env));
                }
            });
            let Some(action) = action else {
                // The services never ran the interpreter: a bug, but not one to hang on.
                tracing::error!(call = %call.uniqueid, "dialplan environment unavailable");
                self.finish_call(&mut call, 41, now);
                break;
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
                self.finish_call(&mut call, ending.cause, now);
                break;
            }
            if call.a.gone {
                input = Resume::CallerHangup;
                continue;
            }
            input = match action {
                Action::Answer { .. } => {
                    self.answer_caller(&mut call, None, now);
                    Resume::Done
                }
                Action::Ringing => {
                    self.provisional_to_caller(&mut call, 180, "Ringing", None, now);
                    call.note_ringing(now);
                    Resume::Done
                }
                Action::Progress => {
                    let sdp = self.caller_sdp(&mut call, None);
                    self.provisional_to_caller(&mut call, 183, "Session Progress", sdp, now);
                    Resume::Done
                }
                Action::Wait { seconds } => {
                    call.park(
                        now + Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0)),
                        Resume::Done,
                    );
                    break;
                }
                Action::Echo => {
                    // Until the caller presses # or hangs up.
                    self.answer_caller(&mut call, None, now);
                    if let Some(r) = &call.relay {
                        r.set_echo(RelaySide::A, true);
                    }
                    call.waiting = true;
                    call.listen = Listen::EchoUntilHash;
                    break;
                }
                Action::SendDtmf {
                    digits,
                    gap_ms,
                    duration_ms,
                } => match self.send_dtmf(&call, &digits, gap_ms, duration_ms) {
                    Some(length) => {
                        call.park(now + length, Resume::Done);
                        break;
                    }
                    None => Resume::Done,
                },
                // Unanswered, the following Hangup carries the cause (17/34) that
                // picks the response. Answered, the caller hears the tone in band
                // until the timeout, or until hanging up when there is none.
                Action::Busy { timeout } | Action::Congestion { timeout }
                    if call.a.final_sent && call.relay.is_some() =>
                {
                    let tone = if matches!(action, Action::Busy { .. }) {
                        media::tones::Tone::Busy
                    } else {
                        media::tones::Tone::Congestion
                    };
                    self.inband_tone(&call, tone);
                    let wait = timeout.filter(|t| *t > 0.0).unwrap_or(86_400.0);
                    call.park(
                        now + Duration::from_secs_f64(wait.min(86_400.0)),
                        Resume::Done,
                    );
                    break;
                }
                Action::Busy { .. } | Action::Congestion { .. } => Resume::Done,
                Action::Dial(req) => match self.start_dial(&mut call, req, now) {
                    None => break,
                    Some(result) => Resume::Dial(result),
                },
                Action::Playback { files, answer, .. } => {
                    match self.play(&mut call, &files, None, answer, now) {
                        Some(length) => {
                            call.park(now + length, Resume::Played { ok: true });
                            break;
                        }
                        None => Resume::Played { ok: false },
                    }
                }
                Action::Background {
                    files,
                    answer,
                    language,
                    ..
                } => match self.play(&mut call, &files, language.as_deref(), answer, now) {
                    Some(length) => {
                        call.park(now + length, Resume::Played { ok: true });
                        call.listen = Listen::Interrupt;
                        break;
                    }
                    None => Resume::Played { ok: false },
                },
                Action::SayDigits { digits } => {
                    let files: Vec<String> = digits
                        .chars()
                        .filter(char::is_ascii_digit)
                        .map(|d| format!("digits/{d}"))
                        .collect();
                    match self.play(&mut call, &files, None, true, now) {
                        Some(length) => {
                            call.park(now + length, Resume::Done);
                            break;
                        }
                        None => Resume::Done,
                    }
                }
                Action::SayNumber { number, .. } => {
                    let Some(files) = playback::number_prompts(&number) else {
                        tracing::warn!(call = %call.uniqueid, %number, "SayNumber: not a number");
                        input = Resume::Done;
                        continue;
                    };
                    match self.play(&mut call, &files, None, true, now) {
                        Some(length) => {
                            call.park(now + length, Resume::Done);
                            break;
                        }
                        None => Resume::Done,
                    }
                }
                Action::WaitExten { timeout, .. } => {
                    let wait = if timeout > 0.0 { timeout } else { 10.0 };
                    call.park(
                        now + Duration::from_secs_f64(wait.min(86_400.0)),
                        Resume::Timeout,
                    );
                    call.listen = Listen::Interrupt;
                    break;
                }
                Action::CollectDigit { timeout } => {
                    call.park(
                        now + Duration::from_secs_f64(timeout.clamp(0.0, 86_400.0)),
                        Resume::Timeout,
                    );
                    call.listen = Listen::Interrupt;
                    break;
                }
                Action::Read {
                    files,
                    max_digits,
                    timeout,
                    ..
                } => {
                    let prompt = if files.is_empty() {
                        if !call.a.final_sent {
                            self.answer_caller(&mut call, None, now);
                        }
                        Some(Duration::ZERO)
                    } else {
                        self.play(&mut call, &files, None, true, now)
                    };
                    match prompt {
                        Some(length) => {
                            let wait = Duration::from_secs_f64(
                                timeout.filter(|t| *t > 0.0).unwrap_or(5.0).min(86_400.0),
                            );
                            call.park(now + length + wait, digits::read_result(String::new()));
                            call.listen = Listen::Read {
                                digits: String::new(),
                                max: max_digits.filter(|m| *m > 0),
                                timeout: wait,
                            };
                            break;
                        }
                        None => Resume::Read {
                            digits: String::new(),
                            status: "ERROR".into(),
                        },
                    }
                }
                Action::Record {
                    file,
                    silence,
                    max_duration,
                    options,
                } => {
                    match self.start_record(&mut call, &file, silence, max_duration, &options, now)
                    {
                        Some(input) => input,
                        None => break,
                    }
                }
                Action::MixMonitor { file, options } => {
                    self.start_mixmonitor(&mut call, &file, &options);
                    Resume::Done
                }
                Action::StopMixMonitor => {
                    for m in call.monitors.drain(..) {
                        m.finish(media::record::Ending::Keep);
                    }
                    Resume::Done
                }
                Action::VoiceMail { mailboxes, options } => {
                    match self.start_voicemail(&mut call, &mailboxes, &options, now) {
                        Some(outcome) => outcome,
                        None => break,
                    }
                }
                Action::Pickup { targets } => match self.start_pickup(&mut call, &targets, now) {
                    Some(outcome) => outcome,
                    None => break,
                },
                Action::ConfBridge {
                    conference,
                    user_profile,
                    ..
                } => {
                    match self.join_conference(&mut call, &conference, user_profile.as_deref(), now)
                    {
                        Some(outcome) => outcome,
                        None => break,
                    }
                }
                Action::VoiceMailMain { mailbox, options } => {
                    match self.start_voicemail_main(&mut call, mailbox.as_deref(), &options, now) {
                        Some(outcome) => outcome,
                        None => break,
                    }
                }
                other => {
                    tracing::warn!(call = %call.uniqueid, action = ?other, "this application needs parts of the media server this build does not include yet");
                    match other {
                        Action::ConfBridge { .. } => Resume::ConfBridge {
                            result: "FAILED".into(),
                        },
                        _ => Resume::Done,
                    }
                }
            };
        }
        self.calls.put(call);
    }

    /// SDP for the caller: `answer` (the callee's) or else the caller's own offer,
    /// pointed at the relay's caller side.
    pub(super) fn caller_sdp(&self, call: &mut Call, answer: Option<&Sdp>) -> Option<String> {
        let relay = call.relay.as_ref()?;
        let base = answer.or(call.offer.as_ref())?;
        call.sdp_version += 1;
        Some(anchored(
            base,
            relay.as_ref(),
            RelaySide::A,
            call.sdp_version,
        ))
    }

    /// A response to the caller's INVITE. Dialog-creating ones (1xx above 100 and
    /// 2xx) echo the INVITE's Record-Route, as RFC 3261 §12.1.1 asks of a UAS.
    pub(super) fn response_to_caller(
        &self,
        call: &Call,
        code: u16,
        reason: &str,
        sdp: Option<&str>,
        extra: &[(&str, String)],
    ) -> bytes::Bytes {
        let local = self.local_for(call.a.source.transport);
        let mut b = ResponseBuilder::new(
            &call.a.invite,
            code,
            reason,
            Some(call.a.source.addr),
            Some(&call.a.local_tag),
        );
        if (101..300).contains(&code) {
            for rr in &call.a.route_set {
                b = b.header("Record-Route", rr);
            }
        }
        b = b
            .header("Contact", local.contact())
            .header("Allow", ALLOW)
            .header("Server", &self.svc.config().sip.user_agent);
        for (name, value) in extra {
            b = b.header(name, value);
        }
        match sdp {
            Some(s) => b.body(Some("application/sdp"), s.as_bytes()),
            None => b.finish(),
        }
    }

    /// A 180/183 to the caller; reliable (RFC 3262) when the caller requires it, in
    /// which case only one is in flight at a time and the latest waits its turn.
    pub(super) fn provisional_to_caller(
        &mut self,
        call: &mut Call,
        code: u16,
        reason: &'static str,
        sdp: Option<String>,
        now: Instant,
    ) {
        if call.a.final_sent {
            return;
        }
        let Some(prack) = call.a.prack.as_mut() else {
            let bytes = self.response_to_caller(call, code, reason, sdp.as_deref(), &[]);
            let _ = self.layer.send_response(now, &call.a.key, code, bytes);
            return;
        };
        if prack.unacked.is_some() {
            prack.queued = Some((code, reason, sdp));
            return;
        }
        prack.rseq += 1;
        let rseq = prack.rseq;
        let headers = [("Require", "100rel".to_owned()), ("RSeq", rseq.to_string())];
        let bytes = self.response_to_caller(call, code, reason, sdp.as_deref(), &headers);
        let _ = self
            .layer
            .send_response(now, &call.a.key, code, bytes.clone());
        if let Some(p) = call.a.prack.as_mut() {
            p.unacked = Some((rseq, bytes, sdp.is_some()));
        }
        call.arm(
            now + Duration::from_millis(T1_MS),
            Timer::ResendReliable(T1_MS),
        );
        call.arm(now + ACK_WAIT, Timer::PrackTimeout);
    }

    /// The caller's PRACK: answers it and lets the next held response go.
    pub(super) fn on_prack(
        &mut self,
        call: &mut Call,
        key: ServerKey,
        msg: Message,
        source: Peer,
        now: Instant,
    ) {
        let rack = msg
            .header(HeaderName::RAck)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok());
        let matches = match (&call.a.prack, rack) {
            (Some(p), Some(r)) => p.unacked.as_ref().is_some_and(|(rseq, ..)| *rseq == r),
            _ => false,
        };
        if !matches {
            self.no_such_dialog(&key, &msg, source, now);
            return;
        }
        self.respond(&key, &msg, source, 200, "OK", &[], now);
        call.disarm_reliable();
        let Some(p) = call.a.prack.as_mut() else {
            return;
        };
        p.unacked = None;
        let queued = p.queued.take();
        let held = p.answer_held.take();
        if let Some((code, reason, sdp)) = queued {
            self.provisional_to_caller(call, code, reason, sdp, now);
        }
        if let Some(answer) = held {
            self.answer_caller(call, answer.as_ref(), now);
        }
    }

    /// Sends the 2xx to the caller (once) and starts re-sending it until the ACK.
    pub(super) fn answer_caller(&mut self, call: &mut Call, answer: Option<&Sdp>, now: Instant) {
        if call.a.final_sent {
            return;
        }
        if let Some(p) = call.a.prack.as_mut() {
            if p.unacked.as_ref().is_some_and(|(_, _, with_sdp)| *with_sdp) {
                // RFC 3262 §3: no 2xx before the PRACK of a provisional with SDP.
                p.answer_held = Some(answer.cloned());
                return;
            }
            p.unacked = None;
            p.queued = None;
            call.disarm_reliable();
        }
        let sdp = self.caller_sdp(call, answer);
        let mut extra = Vec::new();
        if let Some(t) = call.a.session {
            let refresher = if t.we_refresh { "uas" } else { "uac" };
            extra.push((
                "Session-Expires",
                format!("{};refresher={refresher}", t.interval),
            ));
            if t.caller_supports {
                extra.push(("Require", "timer".to_owned()));
            }
            self.arm_session_timer(call, now);
        }
        let bytes = self.response_to_caller(call, 200, "OK", sdp.as_deref(), &extra);
        let _ = self
            .layer
            .send_response(now, &call.a.key, 200, bytes.clone());
        call.a.final_sent = true;
        call.a.ok = Some(bytes);
        call.arm(now + Duration::from_millis(T1_MS), Timer::Resend2xx(T1_MS));
        call.arm(now + ACK_WAIT, Timer::AckTimeout);
        call.phase = Phase::Answered;
        call.answered_at = Some(now);
        self.mark_answered(call);
        if call.relay.is_some() && self.svc.config().rtp.media_timeout > 0 {
            call.arm(now + self.media_check_interval(), Timer::MediaCheck);
        }
    }
}

/// Who a new call comes from, once admitted.
struct Origin {
    /// The endpoint's name, or `PEER/tag` for a dial peer.
    user: String,
    context: String,
    /// (name, number) caller ID.
    callerid: (Option<String>, Option<String>),
    /// The channel name's prefix (`SIP/1001`, `PEER/2`).
    channel: String,
}
