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
                match t {
                    Timer::DialTimeout => {
                        for n in call.pending_legs().collect::<Vec<_>>() {
                            self.cancel_leg(&mut call, n, now);
                        }
                        if call.bridged.is_none() && call.dial.is_some() {
                            let mut r = self.dial_failed(&mut call, now);
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
                            self.layer.send_stateless(call.a.source, ok);
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
                            self.bye_caller(&mut call, now);
                            if let Some(b) = call.bridged {
                                self.bye_leg(&mut call, b, now);
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
                        let limit = Duration::from_secs(self.svc.config().rtp.media_timeout);
                        let since_answer = call.answered_at.map_or(Duration::ZERO, |t| now - t);
                        let idle = call
                            .relay
                            .as_ref()
                            .map(|r| r.idle_for(now).min(since_answer));
                        match idle {
                            Some(idle) if !limit.is_zero() && idle >= limit => {
                                tracing::warn!(call = %call.uniqueid, idle_s = idle.as_secs(), "no media: hanging up");
                                call.cdr.hangup_cause = Some(16);
                                call.cdr.end_reason.get_or_insert("media_timeout");
                                self.bye_caller(&mut call, now);
                                if let Some(b) = call.bridged {
                                    self.bye_leg(&mut call, b, now);
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
                Some(input) => self.drive(call, input, now),
                None => self.calls.put(call),
            }
        }
    }
}
