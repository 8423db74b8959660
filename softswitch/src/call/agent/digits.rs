//! DTMF from the caller: RFC 4733 telephone-event reported by the relay, or SIP INFO
//! (`application/dtmf-relay`, `application/dtmf`). A digit acts on whatever the
//! dialplan is parked in (see [`Listen`]): it interrupts Background and WaitExten,
//! feeds Read, ends Echo with `#`, and is ignored elsewhere.

use super::*;

impl CallAgent<'_> {
    /// A digit the relay heard from the caller of the call with Call-ID `call_id`.
    pub fn handle_digit(&mut self, call_id: &str, digit: char, now: Instant) {
        let Some(id) = self.calls.by_call_id(call_id) else {
            return;
        };
        let Some(call) = self.calls.take(id) else {
            return;
        };
        if call.a.call_id != call_id {
            self.calls.put(call);
            return;
        }
        self.on_digit(call, digit, now);
    }

    pub(super) fn on_digit(&mut self, mut call: Call, digit: char, now: Instant) {
        if call.a.gone || call.phase == Phase::Ended {
            self.calls.put(call);
            return;
        }
        tracing::debug!(call = %call.uniqueid, %digit, "DTMF from the caller");
        let input = match std::mem::take(&mut call.listen) {
            Listen::Interrupt => Some(Resume::Digit(digit)),
            Listen::EchoUntilHash if digit == '#' => {
                if let Some(r) = &call.relay {
                    r.set_echo(RelaySide::A, false);
                }
                Some(Resume::Done)
            }
            Listen::Read {
                mut digits,
                max,
                timeout,
            } => {
                if digit == '#' {
                    Some(read_result(digits))
                } else {
                    digits.push(digit);
                    if max.is_some_and(|m| digits.len() >= m as usize) {
                        Some(read_result(digits))
                    } else {
                        // The prompt stops at the first digit; each digit restarts
                        // the wait for the next.
                        if let Some(r) = &call.relay {
                            r.stop_playing();
                        }
                        call.disarm(Timer::Resume);
                        call.park(now + timeout, read_result(digits.clone()));
                        call.listen = Listen::Read {
                            digits,
                            max,
                            timeout,
                        };
                        None
                    }
                }
            }
            Listen::DialExit => match self.dial_exit(&mut call, digit, now) {
                Some(done) => Some(done),
                None => {
                    call.listen = Listen::DialExit;
                    None
                }
            },
            Listen::Conference => match Self::conference_digit(&mut call, digit) {
                Some(done) => Some(done),
                None => {
                    call.listen = Listen::Conference;
                    None
                }
            },
            Listen::App { cut } if cut.contains(digit) => {
                call.unpark();
                Some(Resume::Digit(digit))
            }
            Listen::Record {
                terminators,
                operator,
            } => match Self::record_digit(&mut call, digit, &terminators, operator) {
                Some(done) => return self.drive(call, done, now),
                None => {
                    call.listen = Listen::Record {
                        terminators,
                        operator,
                    };
                    None
                }
            },
            other => {
                call.listen = other;
                None
            }
        };
        match input {
            Some(input) => {
                call.unpark();
                self.drive(call, input, now);
            }
            None => self.calls.put(call),
        }
    }
}

/// What Read() resumes with: `READSTATUS` is OK once digits came, else TIMEOUT.
pub(super) fn read_result(digits: String) -> Resume {
    let status = if digits.is_empty() { "TIMEOUT" } else { "OK" };
    Resume::Read {
        digits,
        status: status.into(),
    }
}

/// The digit of a DTMF INFO: `Signal=5` (application/dtmf-relay) or a bare `5`
/// (application/dtmf).
pub(super) fn info_digit(msg: &Message) -> Option<char> {
    let ct = msg.header(HeaderName::ContentType)?.to_ascii_lowercase();
    let body = std::str::from_utf8(msg.body()).ok()?;
    let value = if ct.starts_with("application/dtmf-relay") {
        body.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("signal"))
            .map(|(_, v)| v.trim())?
    } else if ct.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || "*#ABCDabcd".contains(c) => {
            Some(c.to_ascii_uppercase())
        }
        // Numeric event codes (10 = *, 11 = #) as some phones send them.
        _ => match value.parse::<u8>() {
            Ok(10) => Some('*'),
            Ok(11) => Some('#'),
            _ => None,
        },
    }
}

/// The telephone-event payload type of the first audio stream of `sdp`.
pub(super) fn telephone_event_pt(sdp: &Sdp) -> Option<u8> {
    sdp.media()
        .into_iter()
        .find(|m| m.kind == "audio" && m.port != 0)?
        .codecs
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("telephone-event"))
        .map(|c| c.pt)
}
