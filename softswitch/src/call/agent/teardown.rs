use super::*;

impl CallAgent<'_> {
    /// A request in the dialog of `side`, from the switch.
    pub(super) fn dialog_request(
        &self,
        route: &Route,
        method: &Method,
        cseq: u32,
        extra: &[(&str, String)],
        body: Option<(&str, &[u8])>,
    ) -> bytes::Bytes {
        let mut headers: Vec<(&str, String)> = route
            .route_set
            .iter()
            .map(|r| ("Route", r.clone()))
            .collect();
        headers.extend(extra.iter().cloned());
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
            &self.svc.config().sip.user_agent,
            &headers,
            body,
        )
    }

    /// ACKs a 2xx to one of our INVITEs on `side` (not a transaction: sent as is).
    pub(super) fn ack(&mut self, call: &Call, side: Side, resp: &Message) {
        let route = call.route(side);
        let cseq = resp.cseq().map(|c| c.seq).unwrap_or(1);
        let bytes = self.dialog_request(&route, &Method::Ack, cseq, &[], None);
        self.layer.send_stateless(route.peer, bytes);
    }

    /// Sends a BYE on `side`; its response only ends the transaction.
    pub(super) fn send_bye(&mut self, call: &mut Call, side: Side, now: Instant) {
        let cseq = call.next_cseq(side);
        let route = call.route(side);
        let bytes = self.dialog_request(&route, &Method::Bye, cseq, &[], None);
        match self.layer.send_request(now, bytes, route.peer) {
            Ok(key) => self.calls.index_client(key, call.id, ClientUse::Own),
            Err(e) => tracing::debug!(error = %e, "BYE not sent"),
        }
    }

    pub(super) fn cancel_leg(&mut self, call: &mut Call, n: usize, now: Instant) {
        let leg = &mut call.legs[n];
        if !matches!(leg.state, LegState::Calling | LegState::Early) {
            return;
        }
        leg.state = LegState::Cancelled;
        let route: Vec<(&str, String)> = leg.path.iter().map(|p| ("Route", p.clone())).collect();
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
            &self.svc.config().sip.user_agent,
            &route,
            None,
        );
        match self.layer.send_request(now, bytes, leg.peer) {
            Ok(key) => self.calls.index_client(key, call.id, ClientUse::Own),
            Err(e) => tracing::debug!(error = %e, "CANCEL not sent"),
        }
    }

    pub(super) fn bye_leg(&mut self, call: &mut Call, n: usize, now: Instant) {
        if call.legs[n].state != LegState::Answered {
            return;
        }
        call.legs[n].state = LegState::Ended;
        self.send_bye(call, Side::Callee(n), now);
    }

    pub(super) fn bye_caller(&mut self, call: &mut Call, now: Instant) {
        if call.a.gone || !call.a.final_sent || call.phase != Phase::Answered {
            return;
        }
        call.a.gone = true;
        self.send_bye(call, Side::Caller, now);
    }

    /// The dialplan is done with the call: answer what is unanswered, hang up what is
    /// up, free the relay and write the CDR.
    pub(super) fn finish_call(&mut self, call: &mut Call, cause: u16, now: Instant) {
        if call.phase == Phase::Ended {
            return;
        }
        if !call.a.final_sent && !call.a.gone {
            let (code, reason) = cause_to_sip(cause);
            let bytes = self.response_to_caller(call, code, reason, None, &[]);
            let _ = self.layer.send_response(now, &call.a.key, code, bytes);
            call.a.final_sent = true;
            call.cdr.sip_status.get_or_insert(code);
        } else {
            self.bye_caller(call, now);
        }
        for n in call.pending_legs().collect::<Vec<_>>() {
            self.cancel_leg(call, n, now);
        }
        if let Some(b) = call.bridged {
            self.bye_leg(call, b, now);
        }
        call.phase = Phase::Ended;
        call.timers.clear();
        call.dial = None;
        call.cdr.hangup_cause.get_or_insert(cause);
        call.end_recordings();
        call.seat = None;
        for user in call.busy.drain(..) {
            self.svc.device_use(&user, false);
        }
        for n in 0..call.legs.len() {
            self.release_peer(call, n);
        }
        let media = call.relay.take().map(|r| r.report());
        self.write_cdr(call, media);
        tracing::info!(call = %call.uniqueid, cause, "call ended");
    }

    /// The call's answer time, set once.
    pub(super) fn mark_answered(&self, call: &mut Call) {
        if call.cdr.answer_ms.is_none() {
            call.cdr.answer_ms = Some(self.wall_ms);
            self.svc.call_answered(&call.uniqueid, self.wall_ms);
        }
    }

    pub(super) fn write_cdr(&self, call: &Call, media: Option<serde_json::Value>) {
        let end = self.wall_ms;
        let c = &call.cdr;
        let cdr = Cdr {
            uniqueid: call.uniqueid.clone(),
            node: self.svc.config().node.name.clone(),
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
            pdd_ms: c.pdd_ms,
        };
        self.svc.write_cdr(cdr);
    }
}
