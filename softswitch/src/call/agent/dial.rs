use super::*;
use crate::call::{Hunt, PeerTarget};

impl CallAgent<'_> {
    /// Starts a Dial. Returns the result at once when no leg could be started.
    pub(super) fn start_dial(
        &mut self,
        call: &mut Call,
        req: dialplan::interp::DialRequest,
        now: Instant,
    ) -> Option<dialplan::interp::DialResult> {
        let wall = self.wall_secs();
        let mut run = DialRun {
            started: now,
            ring_at: None,
            answered_at: None,
            continue_on_callee_hangup: req.options.continue_on_callee_hangup(),
            failed_causes: Vec::new(),
            ringback: false,
            transfer: (false, false),
            digit_exit: req.options.digit_exit(),
            send_on_answer: {
                let d = req.options.arg('D').unwrap_or("");
                let mut parts = d.split(':');
                (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                )
            },
            hunt: None,
        };
        let first_leg = call.legs.len();
        for target in &req.targets {
            if target.tech.eq_ignore_ascii_case("PEER") {
                if run.hunt.is_some() {
                    tracing::warn!(call = %call.uniqueid, %target, "one PEER target per Dial: this one is ignored");
                    continue;
                }
                let number = target.resource.split('/').next().unwrap_or_default();
                match self.hunt_for(call, number) {
                    Some(hunt) => run.hunt = Some(hunt),
                    None => run.failed_causes.push(3),
                }
                continue;
            }
            if !target.tech.eq_ignore_ascii_case("SIP") {
                tracing::warn!(call = %call.uniqueid, %target, "no channel technology for this Dial target yet");
                run.failed_causes.push(66);
                continue;
            }
            let user = target.resource.split('/').next().unwrap_or_default();
            let bindings = self.svc.locate(user, wall);
            if bindings.is_empty() {
                tracing::info!(call = %call.uniqueid, %user, "Dial target has no registered contact");
                run.failed_causes.push(20);
            }
            for b in bindings {
                self.start_leg(call, user, &b, None, now);
            }
        }
        if let Some(mut hunt) = run.hunt.take() {
            if self.start_peer_attempt(call, &mut hunt, now) {
                run.hunt = Some(hunt);
            } else {
                run.failed_causes.push(3);
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
        if req.options.ringback() && !call.a.final_sent {
            // `r`: the caller hears ringing now, whatever the callees send: a
            // ringback tone as early media, or a 180 when there is no media to
            // play it on.
            if !self.early_tone(call, media::tones::Tone::Ringback, now) {
                self.provisional_to_caller(call, 180, "Ringing", None, now);
            }
            call.note_ringing(now);
            run.ringback = true;
        }
        run.transfer = (req.options.caller_transfer(), req.options.callee_transfer());
        if let Some(t) = req.timeout.filter(|t| *t > 0.0) {
            call.arm(
                now + Duration::from_secs_f64(t.min(86_400.0)),
                Timer::DialTimeout,
            );
        }
        if run.digit_exit {
            call.listen = Listen::DialExit;
        }
        call.dial = Some(run);
        None
    }

    pub(super) fn start_leg(
        &mut self,
        call: &mut Call,
        user: &str,
        binding: &crate::registrar::Binding,
        calling: Option<&gateway::digits::Translation>,
        now: Instant,
    ) {
        let call_id = self.svc.leg_call_id();
        let tag = new_tag();
        let (num, name) = call.interp.caller_id();
        // A dial peer's translation rules rewrite the number it is shown.
        let translated = calling.zip(num).and_then(|(t, n)| t.apply(n));
        let num = translated.as_deref().or(num);
        let domain = &self.svc.config().sip.domain;
        let restricted = call.interp.caller_restricted();
        let from = if restricted {
            // RFC 3323 §4.1.1.3: the anonymous From a privacy-seeking caller uses.
            format!("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={tag}")
        } else {
            caller_from(name, num.unwrap_or("anonymous"), domain, &tag)
        };
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
            (Some(o), Some(r)) => Some(anchored(o, r.as_ref(), RelaySide::B, call.sdp_version)),
            _ => None,
        };
        // A phone registered through proxies is reached through its Path (RFC 3327).
        let mut headers: Vec<(&str, String)> =
            binding.path.iter().map(|p| ("Route", p.clone())).collect();
        headers.extend([
            ("Allow", ALLOW.to_owned()),
            ("Supported", "100rel".to_owned()),
        ]);
        // CLIR: phones are not trusted to keep an asserted identity to themselves
        // (RFC 3325 §7), so a restricted caller's PAI is not sent at all.
        if restricted {
            headers.push(("Privacy", "id".to_owned()));
        } else {
            headers.push(("P-Asserted-Identity", pai));
        }
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
            &self.svc.config().sip.user_agent,
            &headers,
            sdp.as_deref().map(|s| ("application/sdp", s.as_bytes())),
        );
        let key = match self.layer.send_request(now, bytes.clone(), peer) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "could not start an outbound leg");
                return;
            }
        };
        let n = call.legs.len();
        let seq = self.svc.next_seq();
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
            path: binding.path.clone(),
            route_set: binding.path.clone(),
            last_rseq: None,
            peer_tag: None,
            responded: false,
            peer_active: false,
            credentials: None,
            authenticated: false,
        });
        self.calls.index_call_id(&call_id, call.id);
        self.calls.index_client(key, call.id, ClientUse::Invite(n));
        tracing::info!(call = %call.uniqueid, %user, contact = %call.legs[n].target, "ringing");
    }

    /// A response to one of the call agent's client transactions.
    pub fn handle_response(&mut self, key: ClientKey, msg: Message, now: Instant) -> bool {
        let status = msg.status().unwrap_or(0);
        let Some((id, what)) = self.calls.by_client(&key, status < 200) else {
            return false;
        };
        let Some(mut call) = self.calls.take(id) else {
            return true;
        };
        match what {
            ClientUse::Invite(n) => {
                self.on_leg_response(call, n, &msg, now);
                return true;
            }
            ClientUse::Relayed => self.on_relayed_response(&mut call, &key, &msg, now),
            ClientUse::Own => {}
        }
        self.calls.put(call);
        true
    }

    pub(super) fn on_leg_response(
        &mut self,
        mut call: Call,
        n: usize,
        msg: &Message,
        now: Instant,
    ) {
        let status = msg.status().unwrap_or(0);
        let answer = sdp_of(msg);
        self.peer_response(&mut call, n, msg, status, now);
        call.legs[n].responded = true;
        match status {
            100 => {}
            101..=199 => {
                if msg
                    .option_tags(HeaderName::Require)
                    .any(|t| t.eq_ignore_ascii_case("100rel"))
                    && !self.prack_leg(&mut call, n, msg, now)
                {
                    // A retransmission of a reliable provisional already PRACKed.
                    self.calls.put(call);
                    return;
                }
                if call.legs[n].state == LegState::Calling {
                    call.legs[n].state = LegState::Early;
                }
                if let Some(d) = call.dial.as_mut() {
                    d.ring_at.get_or_insert(now);
                }
                call.note_ringing(now);
                let forced_ringback = call.dial.as_ref().is_some_and(|d| d.ringback);
                if call.bridged.is_none() && !call.a.final_sent {
                    if let (Some(sdp), Some(r)) = (&answer, &call.relay) {
                        learn_remote(r.as_ref(), RelaySide::B, sdp);
                    }
                    let body = answer
                        .as_ref()
                        .and_then(|a| self.caller_sdp(&mut call, Some(a)));
                    if body.is_some()
                        && let Some(r) = &call.relay
                    {
                        // The callee's own early media replaces our ringback.
                        r.stop_playing();
                    }
                    match body {
                        Some(b) => self.provisional_to_caller(
                            &mut call,
                            183,
                            "Session Progress",
                            Some(b),
                            now,
                        ),
                        // With `r` the caller was told it is ringing already.
                        None if forced_ringback => {}
                        None => self.provisional_to_caller(&mut call, 180, "Ringing", None, now),
                    }
                }
            }
            200..=299 => {
                let to_tag = msg
                    .to_header()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned));
                let contact = msg.header(HeaderName::Contact).and_then(uri_of);
                let route_set = reversed_record_route(msg);
                let leg = &mut call.legs[n];
                if leg.state == LegState::Answered {
                    // A retransmitted 2xx: our ACK was lost (or, for a late offer,
                    // is still waiting for the caller's answer).
                    if call.late_ack != Some(n) {
                        self.ack(&call, Side::Callee(n), msg);
                    }
                } else if call.bridged.is_none()
                    && !call.a.gone
                    && call.phase != Phase::Ended
                    && !matches!(leg.state, LegState::Failed(_))
                {
                    leg.state = LegState::Answered;
                    leg.remote_tag = to_tag;
                    leg.remote_target = contact;
                    leg.route_set = route_set;
                    if call.offer.is_none() && answer.is_some() {
                        // The 2xx carries the offer; the answer comes in the caller's ACK.
                        call.late_ack = Some(n);
                    } else {
                        self.ack(&call, Side::Callee(n), msg);
                    }
                    if let (Some(sdp), Some(r)) = (&answer, &call.relay) {
                        learn_remote(r.as_ref(), RelaySide::B, sdp);
                    }
                    if let Some(r) = &call.relay {
                        r.stop_playing();
                    }
                    call.bridged = Some(n);
                    let callee = call.legs[n].dialed.clone();
                    self.svc.device_use(&callee, true);
                    call.busy.push(callee);
                    call.answered_at = Some(now);
                    call.disarm(Timer::DialTimeout);
                    for other in call.pending_legs().collect::<Vec<_>>() {
                        self.cancel_leg(&mut call, other, now);
                    }
                    if let Some(d) = call.dial.as_mut() {
                        d.answered_at = Some(now);
                    }
                    self.send_on_answer(&mut call, answer.as_ref());
                    call.cdr.dstchannel = call.legs[n].channel.clone();
                    call.cdr.disposition = Some("ANSWERED");
                    call.cdr.sip_status = Some(status);
                    if call.a.final_sent {
                        // The dialplan answered already; the caller keeps the SDP it has.
                        self.mark_answered(&mut call);
                    } else {
                        self.answer_caller(&mut call, answer.as_ref(), now);
                    }
                    tracing::info!(call = %call.uniqueid, callee = %call.legs[n].dialed, "answered");
                } else {
                    // Answered too late (another leg won, or the caller left): end it.
                    leg.state = LegState::Answered;
                    leg.route_set = route_set;
                    leg.remote_tag = to_tag;
                    leg.remote_target = contact;
                    self.ack(&call, Side::Callee(n), msg);
                    self.bye_leg(&mut call, n, now);
                }
            }
            401 | 407
                if call.legs[n].credentials.is_some()
                    && !call.legs[n].authenticated
                    && call.legs[n].state != LegState::Cancelled
                    && self.authenticate_leg(&mut call, n, msg, status, now) => {}
            _ => {
                let was = call.legs[n].state;
                call.legs[n].state = match was {
                    LegState::Cancelled | LegState::Withdrawn => LegState::Withdrawn,
                    _ => LegState::Failed(status),
                };
                call.cdr.sip_status.get_or_insert(status);
                if !matches!(was, LegState::Cancelled | LegState::Withdrawn) {
                    tracing::info!(call = %call.uniqueid, callee = %call.legs[n].dialed, status, "leg failed");
                }
                if !matches!(was, LegState::Cancelled | LegState::Withdrawn)
                    && call.legs[n].peer_tag.is_some()
                    && self.hunt_next(&mut call, status, now)
                {
                    self.calls.put(call);
                    return;
                }
                if call.bridged.is_none()
                    && call.phase != Phase::Ended
                    && call.pending_legs().next().is_none()
                    && call.dial.is_some()
                {
                    let result = self.dial_failed(&mut call, now);
                    self.drive(call, Resume::Dial(result), now);
                    return;
                }
            }
        }
        self.calls.put(call);
    }

    /// Every leg failed: the Dial's outcome from the legs' responses.
    pub(super) fn dial_failed(
        &self,
        call: &mut Call,
        now: Instant,
    ) -> dialplan::interp::DialResult {
        call.disarm(Timer::DialTimeout);
        if let Some(r) = &call.relay {
            r.stop_playing();
        }
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
            result.dialed_time = (now - r.started).as_secs_f64();
            result.ring_time = r.ring_at.map(|t| (t - r.started).as_secs_f64());
        }
        result
    }
}

/// The Record-Route of a response to our request, as our route set (§12.1.2).
fn reversed_record_route(msg: &Message) -> Vec<String> {
    let mut set: Vec<String> = msg
        .header_all(HeaderName::RecordRoute)
        .map(str::to_owned)
        .collect();
    set.reverse();
    set
}

pub(super) fn disposition_of(status: DialStatus) -> &'static str {
    match status {
        DialStatus::Answer => "ANSWERED",
        DialStatus::Busy => "BUSY",
        DialStatus::NoAnswer | DialStatus::Cancel => "NO ANSWER",
        DialStatus::Congestion => "CONGESTION",
        _ => "FAILED",
    }
}

impl CallAgent<'_> {
    /// PRACKs a reliable provisional from leg `n` (RFC 3262 §4), which also sets up
    /// the early dialog it belongs to. False for a retransmission already PRACKed.
    fn prack_leg(&mut self, call: &mut Call, n: usize, msg: &Message, now: Instant) -> bool {
        let Some(rseq) = msg
            .header(HeaderName::RSeq)
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            return true;
        };
        let leg = &mut call.legs[n];
        if leg.last_rseq.is_some_and(|last| rseq <= last) {
            return false;
        }
        leg.last_rseq = Some(rseq);
        if let Some(tag) = msg
            .to_header()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
        {
            leg.remote_tag = Some(tag);
        }
        if let Some(contact) = msg.header(HeaderName::Contact).and_then(uri_of) {
            leg.remote_target = Some(contact);
        }
        let rr = reversed_record_route(msg);
        if !rr.is_empty() {
            leg.route_set = rr;
        }
        let invite_cseq = msg.cseq().map(|c| c.seq).unwrap_or(1);
        let cseq = call.next_cseq(Side::Callee(n));
        let route = call.route(Side::Callee(n));
        let rack = [("RAck", format!("{rseq} {invite_cseq} INVITE"))];
        let bytes = self.dialog_request(&route, &Method::Prack, cseq, &rack, None);
        match self.layer.send_request(now, bytes, route.peer) {
            Ok(key) => self.calls.index_client(key, call.id, ClientUse::Own),
            Err(e) => tracing::debug!(error = %e, "PRACK not sent"),
        }
        true
    }
}

impl CallAgent<'_> {
    /// `D(called:calling)`: the DTMF each side gets once the callee answers, as
    /// RFC 4733 events in the payload type its SDP gave telephone-event.
    fn send_on_answer(&mut self, call: &mut Call, answer: Option<&Sdp>) {
        let Some((called, calling)) = call
            .dial
            .as_ref()
            .map(|d| d.send_on_answer.clone())
            .filter(|(a, b)| !a.is_empty() || !b.is_empty())
        else {
            return;
        };
        let Some(relay) = &call.relay else {
            return;
        };
        let key = Duration::from_millis(100);
        let gap = Duration::from_millis(250);
        if let Some(pt) = answer.and_then(digits::telephone_event_pt)
            && !called.is_empty()
        {
            relay.send_digits(RelaySide::B, &called, pt, key, gap);
        }
        if let Some(pt) = call.offer.as_ref().and_then(digits::telephone_event_pt)
            && !calling.is_empty()
        {
            relay.send_digits(RelaySide::A, &calling, pt, key, gap);
        }
    }

    /// A digit from the caller while a Dial with `d` rings: if it names an
    /// extension, the Dial ends and the dialplan goes there.
    pub(super) fn dial_exit(
        &mut self,
        call: &mut Call,
        digit: char,
        now: Instant,
    ) -> Option<Resume> {
        let mut exists = false;
        let interp = &call.interp;
        self.svc.with_env(self.wall_ms, &mut |env| {
            exists = interp.dial_exit_exists(digit, env);
        });
        if !exists || call.bridged.is_some() {
            return None;
        }
        tracing::info!(call = %call.uniqueid, %digit, "caller left the Dial with a digit");
        for n in call.pending_legs().collect::<Vec<_>>() {
            self.cancel_leg(call, n, now);
        }
        call.disarm(Timer::DialTimeout);
        if let Some(r) = &call.relay {
            r.stop_playing();
        }
        call.dial = None;
        let mut result = dialplan::interp::DialResult::failed(DialStatus::Cancel, None);
        result.digit = Some(digit);
        Some(Resume::Dial(result))
    }
}

impl CallAgent<'_> {
    /// The peers `Dial(PEER/number)` tries, in hunt order (see `gateway::select`).
    fn hunt_for(&mut self, call: &Call, number: &str) -> Option<Hunt> {
        let config = self.svc.config();
        let routes = self.svc.peer_routes();
        let peers: Vec<_> = routes.iter().map(|r| r.selection()).collect();
        let list = gateway::select::hunt_list(
            &peers,
            number,
            &call.a.call_id,
            config.gateway.share(),
            self.svc.next_seq(),
        );
        for (tag, why) in &list.skipped {
            tracing::info!(call = %call.uniqueid, tag, why = %why, "dial peer skipped");
        }
        let mut next = std::collections::VecDeque::new();
        for c in &list.order {
            let Some(route) = routes.iter().find(|r| r.tag == c.tag) else {
                continue;
            };
            let Some(addr) = route.addr else {
                tracing::warn!(call = %call.uniqueid, tag = c.tag, "dial peer's dns: target has not resolved: peer skipped");
                continue;
            };
            let (sent, steps) = route.digits.apply(&route.pattern, number);
            if !steps.is_empty() {
                tracing::debug!(call = %call.uniqueid, tag = c.tag, steps = ?steps, "digits rewritten");
            }
            next.push_back(PeerTarget {
                tag: c.tag,
                addr,
                transport: route.transport,
                huntstop: route.huntstop,
                number: sent,
                credentials: route.credentials.clone(),
                calling: route.calling.clone(),
                invite_timeout: route.invite_timeout,
            });
        }
        if next.is_empty() {
            tracing::info!(call = %call.uniqueid, %number, "no dial peer takes this number now");
            return None;
        }
        Some(Hunt {
            number: number.to_string(),
            next,
            stop_here: false,
        })
    }

    /// Tells the node what a peer leg's response says of the peer's health, once
    /// per leg for its first response and again for a final one that failed.
    fn peer_response(
        &mut self,
        call: &mut Call,
        n: usize,
        msg: &Message,
        status: u16,
        now: Instant,
    ) {
        let leg = &call.legs[n];
        let Some(tag) = leg.peer_tag else {
            return;
        };
        if status >= 200 {
            let evidence = gateway::health::Evidence::from_response(
                status,
                msg.header(HeaderName::RetryAfter),
            );
            let failed = evidence != gateway::health::Evidence::Alive;
            if failed || !leg.responded {
                self.svc.peer_evidence(tag, evidence, now);
            }
            let will_answer_challenge =
                matches!(status, 401 | 407) && leg.credentials.is_some() && !leg.authenticated;
            if !(200..300).contains(&status) && !will_answer_challenge {
                self.release_peer(call, n);
            }
        } else if !leg.responded {
            self.svc
                .peer_evidence(tag, gateway::health::Evidence::Alive, now);
        }
    }

    /// A dial peer challenged the INVITE (401/407): send it again, once, with
    /// the peer's credentials — a new transaction with CSeq + 1 in the same
    /// dialog attempt. False when the challenge cannot be answered; the leg
    /// then fails as the peer said.
    fn authenticate_leg(
        &mut self,
        call: &mut Call,
        n: usize,
        msg: &Message,
        status: u16,
        now: Instant,
    ) -> bool {
        let (challenge_header, answer_header) = if status == 401 {
            (HeaderName::WwwAuthenticate, "Authorization")
        } else {
            (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
        };
        let leg = &call.legs[n];
        let Some((user, password)) = &leg.credentials else {
            return false;
        };
        let cnonce = format!("{:016x}", rand::random::<u64>());
        // A peer may offer several algorithms, one challenge each: the first we know.
        let Some(value) = msg.header_all(challenge_header).find_map(|v| {
            let c = crate::sip::wire::ParsedChallenge::parse(v).ok()??;
            crate::registrar::digest::authorization(
                &c,
                user,
                password,
                "INVITE",
                &leg.target,
                &cnonce,
            )
        }) else {
            tracing::warn!(call = %call.uniqueid, tag = ?leg.peer_tag, "dial peer's challenge cannot be answered");
            return false;
        };
        let Ok(sent) = std::str::from_utf8(&leg.invite) else {
            return false;
        };
        let branch = new_branch();
        let cseq = leg.cseq + 1;
        let old_cseq = format!("CSeq: {} INVITE\r\n", leg.cseq);
        if !sent.contains(&old_cseq) || !sent.contains(&leg.branch) {
            return false;
        }
        let again = sent.replacen(&leg.branch, &branch, 1).replacen(
            &old_cseq,
            &format!("CSeq: {cseq} INVITE\r\n{answer_header}: {value}\r\n"),
            1,
        );
        let bytes = bytes::Bytes::from(again);
        let key = match self.layer.send_request(now, bytes.clone(), leg.peer) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-send the INVITE with credentials");
                return false;
            }
        };
        tracing::info!(call = %call.uniqueid, tag = ?leg.peer_tag, status, "answering the dial peer's challenge");
        let leg = &mut call.legs[n];
        leg.invite = bytes;
        leg.branch = branch;
        leg.cseq = cseq;
        leg.key = key.clone();
        leg.authenticated = true;
        self.calls.index_client(key, call.id, ClientUse::Invite(n));
        true
    }

    /// The leg no longer counts among its peer's calls in progress.
    pub(super) fn release_peer(&self, call: &mut Call, n: usize) {
        let leg = &mut call.legs[n];
        if leg.peer_active
            && let Some(tag) = leg.peer_tag
        {
            leg.peer_active = false;
            self.svc.peer_calls(tag, -1);
        }
    }

    /// Sends the INVITE to the next peer of the hunt; false when none is left.
    fn start_peer_attempt(&mut self, call: &mut Call, hunt: &mut Hunt, now: Instant) -> bool {
        let Some(target) = hunt.next.pop_front() else {
            return false;
        };
        let wall = self.wall_secs();
        let binding = crate::registrar::Binding {
            aor: format!("sip:{}@{}", target.number, target.addr),
            contact: format!("<sip:{}@{}>", target.number, target.addr),
            expires_at: wall + 3600,
            call_id: String::new(),
            cseq: 0,
            q: None,
            instance: None,
            reg_id: None,
            path: Vec::new(),
            transport: target.transport,
            source: target.addr,
            user_agent: String::new(),
            updated_at: wall,
        };
        let before = call.legs.len();
        self.start_leg(call, &target.number, &binding, Some(&target.calling), now);
        if call.legs.len() == before {
            return self.start_peer_attempt(call, hunt, now);
        }
        let n = call.legs.len() - 1;
        let seq = self.svc.next_seq();
        call.legs[n].peer_tag = Some(target.tag);
        call.legs[n].credentials = target.credentials.clone();
        call.legs[n].peer_active = true;
        self.svc.peer_calls(target.tag, 1);
        call.legs[n].channel = format!("PEER/{}-{seq:08x}", target.tag);
        hunt.stop_here = target.huntstop;
        let wait = target
            .invite_timeout
            .unwrap_or_else(|| self.svc.config().gateway.invite_timeout());
        call.arm(now + wait, Timer::PeerNoResponse(n));
        // A peer answers an INVITE with 100 Trying in milliseconds; one that has
        // said nothing after a third of the timeout is probably gone, and
        // suspecting it now (a probe goes out at once) finds it down before
        // the calls behind this one all pay the whole timeout.
        call.arm(now + wait / 3, Timer::PeerSlow(n));
        tracing::info!(call = %call.uniqueid, tag = target.tag, to = %target.addr, number = %target.number, "trying dial peer");
        true
    }

    /// A peer leg failed with `status`: if the route failed (no answer at all, a
    /// transport error, 408, 5xx, 488/606) and the hunt goes on, the next peer is
    /// tried; true when one was. A callee's own answer (busy, not found,
    /// declined, cancelled) stops the hunt: it would only repeat elsewhere.
    pub(super) fn hunt_next(&mut self, call: &mut Call, status: u16, now: Instant) -> bool {
        let route_failed = matches!(status, 408 | 488 | 606 | 500..=599);
        if !route_failed || call.bridged.is_some() || call.a.gone {
            return false;
        }
        let Some(mut hunt) = call.dial.as_mut().and_then(|d| d.hunt.take()) else {
            return false;
        };
        if hunt.stop_here {
            tracing::info!(call = %call.uniqueid, "huntstop: no further dial peer");
            return false;
        }
        let failed = call.legs.iter().rev().find_map(|l| l.peer_tag);
        let started = self.start_peer_attempt(call, &mut hunt, now);
        if started && let Some(tag) = failed {
            crate::events::events().emit_at_most_every(
                format!("failover-{tag}"),
                Duration::from_secs(10),
                "failover",
                format!("dial peer {tag} answered {status}: calls move to the next peer"),
                serde_json::json!({ "from_peer": tag, "status": status, "uniqueid": call.uniqueid }),
            );
        }
        if let Some(d) = call.dial.as_mut() {
            d.hunt = Some(hunt);
        }
        started
    }

    /// `Timer::PeerSlow`: no word from the peer yet; it becomes suspect.
    pub(super) fn peer_slow(&mut self, call: &mut Call, n: usize, now: Instant) {
        let Some(leg) = call.legs.get(n) else {
            return;
        };
        if leg.responded || leg.state != LegState::Calling {
            return;
        }
        if let Some(tag) = leg.peer_tag {
            self.svc.peer_evidence(
                tag,
                gateway::health::Evidence::Slow("no response to an INVITE yet".into()),
                now,
            );
        }
    }

    /// `Timer::PeerNoResponse`: the peer said nothing at all within
    /// `[gateway] invite_timeout`; the attempt counts as a timeout and the hunt
    /// moves on without waiting for Timer B.
    pub(super) fn peer_silent(
        &mut self,
        call: &mut Call,
        n: usize,
        now: Instant,
    ) -> Option<Resume> {
        let leg = call.legs.get(n)?;
        if leg.responded || leg.state != LegState::Calling {
            return None;
        }
        tracing::warn!(call = %call.uniqueid, tag = ?leg.peer_tag, "dial peer did not answer in time");
        if let Some(tag) = leg.peer_tag {
            self.svc.peer_evidence(
                tag,
                gateway::health::Evidence::Failed("no response within invite_timeout".into()),
                now,
            );
        }
        call.legs[n].state = LegState::Failed(408);
        self.layer.abandon(&call.legs[n].key);
        self.release_peer(call, n);
        if self.hunt_next(call, 408, now) {
            return None;
        }
        if call.bridged.is_none() && call.pending_legs().next().is_none() && call.dial.is_some() {
            return Some(Resume::Dial(self.dial_failed(call, now)));
        }
        None
    }
}
