use super::*;

impl CallAgent<'_> {
    /// Fires the call timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for id in self.calls.due(now) {
            let Some(mut call) = self.calls.take(id) else {
                continue;
            };
            let mut resume = None;
            for t in call.due(now) {
                if let Some(r) = self.on_timer(&mut call, t, now) {
                    resume = Some(r);
                }
            }
            match resume {
                Some(input) => self.drive(call, input, now),
                None => self.calls.put(call),
            }
        }
    }

    /// One timer of `call`; what the dialplan resumes with, if anything.
    fn on_timer(&mut self, call: &mut Call, t: Timer, now: Instant) -> Option<Resume> {
        match t {
            Timer::DialTimeout => {
                for n in call.pending_legs().collect::<Vec<_>>() {
                    self.cancel_leg(call, n, now);
                }
                if call.bridged.is_none() && call.dial.is_some() {
                    let mut r = self.dial_failed(call, now);
                    r.status = DialStatus::NoAnswer;
                    r.cause = Some(19);
                    call.cdr.disposition = Some("NO ANSWER");
                    return Some(Resume::Dial(r));
                }
            }
            Timer::Resend2xx(ms) => {
                if !call.a.ok_acked
                    && let Some(ok) = call.a.ok.clone()
                {
                    self.layer.send_stateless(call.a.source, ok);
                    let next = (ms * 2).min(T2_MS);
                    call.arm(now + Duration::from_millis(next), Timer::Resend2xx(next));
                }
            }
            Timer::AckTimeout => {
                if !call.a.ok_acked {
                    tracing::warn!(call = %call.uniqueid, "no ACK for our 2xx: hanging up");
                    call.disarm_resend();
                    call.a.ok_acked = true;
                    // A callee waiting for the answer to its offer is ACKed before its BYE.
                    self.release_late_ack(call, None);
                    return Some(self.hang_up_both(call, "no_ack", now));
                }
            }
            Timer::RecordSilence => return Self::record_silence_check(call, now),
            Timer::PeerCheck => return self.peer_check(call, now),
            Timer::PeerNoResponse(n) => return self.peer_silent(call, n, now),
            Timer::PeerSlow(n) => self.peer_slow(call, n, now),
            Timer::Resume => {
                if call.waiting {
                    if let Some(r) = call.recording.take() {
                        // Record's time limit.
                        r.recorder.finish(media::record::Ending::Keep);
                        call.disarm(Timer::RecordSilence);
                        call.listen = Listen::Ignore;
                    }
                    call.waiting = false;
                    return Some(call.on_wake.take().unwrap_or(Resume::Done));
                }
            }
            Timer::MediaCheck => {
                let limit = Duration::from_secs(self.svc.config().rtp.media_timeout);
                let since_answer = call.answered_at.map_or(Duration::ZERO, |t| now - t);
                let idle = call
                    .relay
                    .as_ref()
                    .map(|r| r.idle_for(now).min(since_answer));
                match idle {
                    Some(idle) if !limit.is_zero() && idle >= limit => {
                        tracing::warn!(call = %call.uniqueid, idle_s = idle.as_secs(), "no media: hanging up");
                        return Some(self.hang_up_both(call, "media_timeout", now));
                    }
                    Some(_) if call.phase == Phase::Answered => {
                        call.arm(now + self.media_check_interval(), Timer::MediaCheck)
                    }
                    _ => {}
                }
            }
            Timer::ResendReliable(ms) => {
                if let Some((_, bytes, _)) = call.a.prack.as_ref().and_then(|p| p.unacked.as_ref())
                {
                    self.layer.send_stateless(call.a.source, bytes.clone());
                    let next = ms * 2;
                    call.arm(
                        now + Duration::from_millis(next),
                        Timer::ResendReliable(next),
                    );
                }
            }
            Timer::PrackTimeout => {
                if call.a.prack.as_ref().is_some_and(|p| p.unacked.is_some()) && !call.a.final_sent
                {
                    // RFC 3262 §3: reject the INVITE with a 5xx after 64*T1 without PRACK.
                    tracing::warn!(call = %call.uniqueid, "no PRACK for a reliable provisional: rejecting the call");
                    call.disarm_reliable();
                    let bytes = self.response_to_caller(call, 504, "No PRACK", None, &[]);
                    let _ = self.layer.send_response(now, &call.a.key, 504, bytes);
                    call.a.final_sent = true;
                    call.a.gone = true;
                    call.cdr.end_reason.get_or_insert("no_prack");
                    for n in call.pending_legs().collect::<Vec<_>>() {
                        self.cancel_leg(call, n, now);
                    }
                    if let Some(b) = call.bridged {
                        self.bye_leg(call, b, now);
                    }
                    return Some(match call.dial.take() {
                        Some(_) => Resume::Dial(self.answered_result(call, true)),
                        None => Resume::CallerHangup,
                    });
                }
            }
            Timer::SessionRefresh => {
                if call.phase == Phase::Answered && !call.a.gone {
                    self.refresh_session(call, now);
                }
            }
            Timer::SessionExpiry => {
                if call.phase == Phase::Answered && !call.a.gone {
                    tracing::warn!(call = %call.uniqueid, "the caller did not refresh its session timer: hanging up");
                    return Some(self.hang_up_both(call, "session_expired", now));
                }
            }
        }
        None
    }

    /// The switch ends an answered call on its own (no ACK, no media, no refresh):
    /// BYE to both phones; the dialplan goes on as if the caller hung up.
    /// The operator ends the call with this UNIQUEID, as if both sides hung up
    /// (cause 16). False when no call in progress has it.
    pub fn hang_up_by_operator(&mut self, uniqueid: &str, now: Instant) -> bool {
        let Some(id) = self
            .calls
            .iter()
            .find(|c| c.uniqueid == uniqueid && c.phase != Phase::Ended)
            .map(|c| c.id)
        else {
            return false;
        };
        let Some(mut call) = self.calls.take(id) else {
            return false;
        };
        tracing::info!(call = %call.uniqueid, "hung up by the operator");
        let input = self.hang_up_both(&mut call, "operator", now);
        self.drive(call, input, now);
        true
    }

    pub(super) fn hang_up_both(
        &mut self,
        call: &mut Call,
        reason: &'static str,
        now: Instant,
    ) -> Resume {
        call.cdr.hangup_cause.get_or_insert(16);
        call.cdr.end_reason.get_or_insert(reason);
        self.bye_caller(call, now);
        if let Some(b) = call.bridged {
            self.bye_leg(call, b, now);
        }
        call.a.gone = true;
        match call.dial.take() {
            Some(_) => Resume::Dial(self.answered_result(call, true)),
            None => Resume::CallerHangup,
        }
    }
}
