use super::*;

impl CallAgent<'_> {
    /// An in-dialog request or a CANCEL. Returns false when it belongs to no call.
    pub fn handle_in_dialog(
        &mut self,
        key: ServerKey,
        msg: Message,
        source: Peer,
        now: Instant,
    ) -> bool {
        let call_id = msg.call_id().unwrap_or_default();
        let Some(id) = self.calls.by_call_id(call_id) else {
            return false;
        };
        let Some(mut call) = self.calls.take(id) else {
            return false;
        };
        let side = if call.a.call_id == call_id {
            Side::Caller
        } else {
            match call.leg_by_call_id(call_id) {
                Some(n) => Side::Callee(n),
                None => {
                    self.calls.put(call);
                    return false;
                }
            }
        };
        let method = method_of(&msg);
        match (method, side) {
            (Method::Cancel, Side::Caller) => {
                self.respond(&key, &msg, source, 200, "OK", &[], now);
                if call.a.final_sent {
                    self.calls.put(call);
                    return true;
                }
                let bytes = self.response_to_caller(&call, 487, "Request Terminated", None, &[]);
                let _ = self.layer.send_response(now, &call.a.key, 487, bytes);
                call.a.final_sent = true;
                call.a.gone = true;
                call.cdr.sip_status = Some(487);
                call.cdr.disposition.get_or_insert("NO ANSWER");
                call.cdr.hangup_cause = Some(16);
                call.cdr.end_reason.get_or_insert("caller_cancel");
                for n in call.pending_legs().collect::<Vec<_>>() {
                    self.cancel_leg(&mut call, n, now);
                }
                tracing::info!(call = %call.uniqueid, "caller cancelled");
                call.dial = None;
                call.unpark();
                call.disarm(Timer::DialTimeout);
                self.drive(call, Resume::CallerHangup, now);
            }
            (Method::Prack, Side::Caller) => {
                self.on_prack(&mut call, key, msg, source, now);
                self.calls.put(call);
            }
            (Method::Prack, Side::Callee(_)) => {
                // We never send the callee a reliable provisional.
                self.no_such_dialog(&key, &msg, source, now);
                self.calls.put(call);
            }
            (Method::Info, Side::Caller) if call.bridged.is_none() => {
                // Nobody to relay it to: a DTMF INFO is a digit for the dialplan.
                self.respond(&key, &msg, source, 200, "OK", &[], now);
                match digits::info_digit(&msg) {
                    Some(d) => self.on_digit(call, d, now),
                    None => self.calls.put(call),
                }
            }
            (Method::Bye, side) => {
                self.respond(&key, &msg, source, 200, "OK", &[], now);
                let input = match side {
                    Side::Caller => {
                        call.a.gone = true;
                        call.cdr.hangup_cause = Some(16);
                        call.cdr.end_reason.get_or_insert("caller_hangup");
                        if let Some(b) = call.bridged {
                            self.bye_leg(&mut call, b, now);
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
                            self.calls.put(call);
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
                            self.bye_caller(&mut call, now);
                        }
                        call.bridged = None;
                        // The callee is free again even if the caller stays (`g`).
                        let callee = &call.legs[n].dialed;
                        if let Some(i) = call.busy.iter().rposition(|u| u == callee) {
                            let user = call.busy.remove(i);
                            self.svc.device_use(&user, false);
                        }
                        match call.dial.take() {
                            Some(_) => Resume::Dial(self.answered_result(&call, false)),
                            None => Resume::Done,
                        }
                    }
                };
                call.unpark();
                self.drive(call, input, now);
            }
            (_, side) => {
                self.relay_in_dialog(&mut call, side, key, msg, source, now);
                self.calls.put(call);
            }
        }
        true
    }

    pub(super) fn answered_result(
        &self,
        call: &Call,
        caller_hung_up: bool,
    ) -> dialplan::interp::DialResult {
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
    pub(super) fn relay_in_dialog(
        &mut self,
        call: &mut Call,
        side: Side,
        key: ServerKey,
        msg: Message,
        source: Peer,
        now: Instant,
    ) {
        let method = method_of(&msg);
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
            self.respond(&key, &msg, source, code, reason, &[], now);
            return;
        };
        let offer = sdp_of(&msg);
        let (from_relay, to_relay) = match side {
            Side::Caller => (RelaySide::A, RelaySide::B),
            Side::Callee(_) => (RelaySide::B, RelaySide::A),
        };
        let body = match (&offer, &call.relay) {
            (Some(sdp), Some(r)) => {
                learn_remote(r.as_ref(), from_relay, sdp);
                call.sdp_version += 1;
                Some(anchored(sdp, r.as_ref(), to_relay, call.sdp_version))
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
        match self.layer.send_request(now, bytes, peer) {
            Ok(ck) => {
                self.calls
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
                self.respond(&key, &msg, source, 500, "Server Internal Error", &[], now);
            }
        }
    }

    pub(super) fn on_relayed_response(
        &mut self,
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
                        self.ack(call, Side::Callee(b), msg);
                    }
                }
                Side::Callee(_) => self.ack(call, Side::Caller, msg),
            }
        }
        let sdp = sdp_of(msg);
        let body = match (&sdp, &call.relay) {
            (Some(s), Some(relay)) => {
                learn_remote(relay.as_ref(), responder, s);
                call.sdp_version += 1;
                Some(anchored(s, relay.as_ref(), origin, call.sdp_version))
            }
            _ => None,
        };
        let local = self.local_for(r.source.transport);
        let mut b = ResponseBuilder::new(
            &r.request,
            status,
            msg.reason_phrase().unwrap_or(""),
            Some(r.source.addr),
            None,
        )
        .header("Contact", local.contact())
        .header("Server", &self.svc.config().sip.user_agent);
        // A successful re-INVITE or UPDATE from the caller refreshes its session
        // timer; the callee knows nothing of that timer, so its 2xx gets the
        // Session-Expires the caller needs to keep refreshing (RFC 4028 §9).
        let refresh = matches!(r.request.method(), Some(Method::Invite | Method::Update));
        if r.from == Side::Caller
            && refresh
            && (200..300).contains(&status)
            && let Some(t) = call.a.session
        {
            let refresher = if t.we_refresh { "uas" } else { "uac" };
            if msg.header(HeaderName::SessionExpires).is_none() {
                b = b.header(
                    "Session-Expires",
                    format!("{};refresher={refresher}", t.interval),
                );
                if t.caller_supports {
                    b = b.header("Require", "timer");
                }
            }
            self.arm_session_timer(call, now);
        }
        let bytes = match body {
            Some(s) => b.body(Some("application/sdp"), s.as_bytes()),
            None if !msg.body().is_empty() => {
                b.body(msg.header(HeaderName::ContentType), msg.body())
            }
            None => b.finish(),
        };
        if let Err(e) = self.layer.send_response(now, &r.server_key, status, bytes) {
            tracing::debug!(error = %e, "relayed response not sent");
        }
    }

    /// An ACK outside any transaction: the caller acknowledging our 2xx.
    pub fn handle_ack(&mut self, msg: &Message) {
        let call_id = msg.call_id().unwrap_or_default();
        let Some(id) = self.calls.by_call_id(call_id) else {
            return;
        };
        let Some(mut call) = self.calls.take(id) else {
            return;
        };
        if call.a.call_id == call_id && !call.a.ok_acked {
            call.a.ok_acked = true;
            call.disarm_resend();
            if call.late_ack.is_some() {
                let answer = sdp_of(msg);
                if answer.is_none() {
                    tracing::warn!(call = %call.uniqueid, "the caller's ACK carries no answer to the callee's offer");
                }
                self.release_late_ack(&mut call, answer.as_ref());
            }
        }
        self.calls.put(call);
    }

    /// ACKs the callee's 2xx that carried the offer, with the caller's answer
    /// pointed at the relay (or without a body when the caller gave none).
    pub(super) fn release_late_ack(&mut self, call: &mut Call, answer: Option<&Sdp>) {
        let Some(n) = call.late_ack.take() else {
            return;
        };
        let body = match (answer, &call.relay) {
            (Some(sdp), Some(r)) => {
                learn_remote(r.as_ref(), RelaySide::A, sdp);
                call.sdp_version += 1;
                Some(anchored(sdp, r.as_ref(), RelaySide::B, call.sdp_version))
            }
            _ => None,
        };
        let route = call.route(Side::Callee(n));
        let bytes = self.dialog_request(
            &route,
            &Method::Ack,
            1,
            &[],
            body.as_deref().map(|b| ("application/sdp", b.as_bytes())),
        );
        self.layer.send_stateless(route.peer, bytes);
    }

    /// A 2xx that outlived its INVITE transaction: the callee did not get our ACK.
    pub fn handle_stray_response(&mut self, msg: &Message, now: Instant) {
        if !msg.status().is_some_and(|s| (200..300).contains(&s))
            || msg
                .cseq()
                .map(|c| c.method != Method::Invite)
                .unwrap_or(true)
        {
            return;
        }
        let call_id = msg.call_id().unwrap_or_default();
        let Some(id) = self.calls.by_call_id(call_id) else {
            return;
        };
        let Some(call) = self.calls.take(id) else {
            return;
        };
        let leg = call.leg_by_call_id(call_id);
        if let Some(n) = leg
            && matches!(call.legs[n].state, LegState::Failed(_))
        {
            // A dial peer given up for silence answered after all: the leg
            // code acknowledges and ends it like any answer that came too late.
            self.on_leg_response(call, n, msg, now);
            return;
        }
        if let Some(n) = leg
            && call.late_ack != Some(n)
            && matches!(call.legs[n].state, LegState::Answered | LegState::Ended)
        {
            self.ack(&call, Side::Callee(n), msg);
        }
        self.calls.put(call);
    }

    /// A client transaction of a call got no answer or could not be sent.
    pub fn handle_client_failure(&mut self, key: &ClientKey, now: Instant) -> bool {
        let Some((id, what)) = self.calls.by_client(key, false) else {
            return false;
        };
        let Some(mut call) = self.calls.take(id) else {
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
                        self.on_leg_response(call, n, &m, now);
                        return true;
                    }
                    Err(_) => call.legs[n].state = LegState::Failed(408),
                }
            }
            ClientUse::Relayed => {
                if let Some(r) = call.relayed.remove(key) {
                    self.respond(
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
        self.calls.put(call);
        true
    }
}
