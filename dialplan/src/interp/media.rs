//! Applications that need the call agent (§12.1, §12.3, §12.6) and what happens when
//! the agent resumes the interpreter after them.

use crate::args::{Split, split_args};
use crate::env::Env;

use super::{Action, Flow, Interpreter, Outcome, Pending, Resume};

fn arg(a: &[String], i: usize) -> Option<String> {
    a.get(i)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `dir/name.wav` → `dir/name`; a dot in a directory name is not an extension.
fn without_extension(file: &str) -> String {
    match file.rsplit_once('.') {
        Some((base, ext)) if !ext.contains('/') => base.to_string(),
        _ => file.to_string(),
    }
}

fn secs(a: &[String], i: usize) -> Option<f64> {
    arg(a, i).and_then(|s| s.parse::<f64>().ok())
}

fn files(a: &[String]) -> Vec<String> {
    a.first()
        .map(|f| {
            f.split('&')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

impl Interpreter {
    pub(super) fn exec_media(&mut self, app: &str, data: &str, _env: &mut dyn Env) -> Flow {
        let a = split_args(data, ',', Split::Standard);
        let answered = self.chan.answered;
        match app {
            "Answer" => {
                if answered {
                    return Flow::Continue;
                }
                let delay_ms = arg(&a, 0).and_then(|d| d.parse().ok());
                Flow::Yield(Action::Answer { delay_ms }, Pending::Answer)
            }
            "Progress" => Flow::Yield(Action::Progress, Pending::Plain),
            "Ringing" => Flow::Yield(Action::Ringing, Pending::Plain),
            "Wait" => match secs(&a, 0) {
                Some(s) if s > 0.0 => Flow::Yield(Action::Wait { seconds: s }, Pending::Plain),
                _ => Flow::Continue,
            },
            "Busy" => Flow::Yield(
                Action::Busy {
                    timeout: secs(&a, 0),
                },
                Pending::Indicate(Outcome::Busy),
            ),
            "Congestion" => Flow::Yield(
                Action::Congestion {
                    timeout: secs(&a, 0),
                },
                Pending::Indicate(Outcome::Congestion),
            ),
            "Playback" => {
                let options = a.get(1..).map(|o| o.join(",")).unwrap_or_default();
                if options.contains("skip") && !answered {
                    self.chan.vars.set("PLAYBACKSTATUS", "SUCCESS");
                    return Flow::Continue;
                }
                let answer = !answered && !options.contains("noanswer");
                Flow::Yield(
                    Action::Playback {
                        files: files(&a),
                        options,
                        answer,
                    },
                    Pending::Playback { answer },
                )
            }
            "BackGround" => {
                let options = arg(&a, 1).unwrap_or_default();
                if options.contains('s') && !answered {
                    self.chan.vars.set("BACKGROUNDSTATUS", "SUCCESS");
                    return Flow::Continue;
                }
                let answer = !answered && !options.contains('n');
                let context = arg(&a, 3).unwrap_or_else(|| self.chan.context.clone());
                Flow::Yield(
                    Action::Background {
                        files: files(&a),
                        options,
                        language: arg(&a, 2),
                        context: context.clone(),
                        answer,
                    },
                    Pending::Background { answer, context },
                )
            }
            "WaitExten" => Flow::Yield(
                Action::WaitExten {
                    timeout: secs(&a, 0).unwrap_or(self.chan.response_timeout),
                    options: arg(&a, 1).unwrap_or_default(),
                },
                Pending::WaitExten,
            ),
            "Read" => {
                let var = arg(&a, 0).unwrap_or_default();
                let prompts = a.get(1..2).map(files).unwrap_or_default();
                Flow::Yield(
                    Action::Read {
                        variable: var.clone(),
                        files: prompts,
                        max_digits: arg(&a, 2).and_then(|m| m.parse().ok()).filter(|m| *m > 0),
                        options: arg(&a, 3).unwrap_or_default(),
                        attempts: arg(&a, 4).and_then(|m| m.parse().ok()).unwrap_or(1),
                        timeout: secs(&a, 5),
                    },
                    Pending::Read { var },
                )
            }
            "SayDigits" => Flow::Yield(
                Action::SayDigits {
                    digits: a.first().cloned().unwrap_or_default(),
                },
                Pending::Plain,
            ),
            "SayNumber" => Flow::Yield(
                Action::SayNumber {
                    number: a.first().cloned().unwrap_or_default(),
                    gender: arg(&a, 1),
                },
                Pending::Plain,
            ),
            "Echo" => Flow::Yield(Action::Echo, Pending::Plain),
            "SendDTMF" => {
                let digits: String = arg(&a, 0)
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| c.is_ascii_digit() || "*#ABCDabcdwW".contains(*c))
                    .collect();
                if digits.is_empty() {
                    return Flow::Continue;
                }
                let ms = |i: usize, default: u64| {
                    arg(&a, i)
                        .and_then(|v| v.parse::<u64>().ok())
                        .filter(|v| *v > 0)
                        .unwrap_or(default)
                };
                Flow::Yield(
                    Action::SendDtmf {
                        digits,
                        gap_ms: ms(1, 250),
                        duration_ms: ms(2, 100),
                    },
                    Pending::Plain,
                )
            }
            "Record" => {
                let file = arg(&a, 0).unwrap_or_default();
                Flow::Yield(
                    Action::Record {
                        file: file.clone(),
                        silence: secs(&a, 1),
                        max_duration: secs(&a, 2),
                        options: arg(&a, 3).unwrap_or_default(),
                    },
                    Pending::Record { file },
                )
            }
            "MixMonitor" => {
                let file = arg(&a, 0).unwrap_or_default();
                self.chan.vars.set("MIXMONITOR_FILENAME", &file);
                Flow::Yield(
                    Action::MixMonitor {
                        file,
                        options: arg(&a, 1).unwrap_or_default(),
                    },
                    Pending::Plain,
                )
            }
            "StopMixMonitor" => Flow::Yield(Action::StopMixMonitor, Pending::Plain),
            "VoiceMail" => Flow::Yield(
                Action::VoiceMail {
                    mailboxes: files(&a),
                    options: arg(&a, 1).unwrap_or_default(),
                },
                Pending::VoiceMail,
            ),
            "VoiceMailMain" => Flow::Yield(
                Action::VoiceMailMain {
                    mailbox: arg(&a, 0),
                    options: arg(&a, 1).unwrap_or_default(),
                },
                Pending::Plain,
            ),
            "Pickup" => Flow::Yield(Action::Pickup { targets: files(&a) }, Pending::Plain),
            "ConfBridge" => Flow::Yield(
                Action::ConfBridge {
                    conference: arg(&a, 0).unwrap_or_default(),
                    bridge_profile: arg(&a, 1),
                    user_profile: arg(&a, 2),
                    menu: arg(&a, 3),
                },
                Pending::ConfBridge,
            ),
            other => {
                self.warn(format!("application '{other}' is not implemented"));
                Flow::Stop(Outcome::AppError)
            }
        }
    }

    /// Applies the agent's answer to the action the interpreter was waiting on.
    pub(super) fn on_resume(&mut self, p: Pending, input: Resume, env: &mut dyn Env) -> Flow {
        match input {
            Resume::AbsoluteTimeout => return self.absolute_timeout(env),
            Resume::CallerHangup => {
                match &p {
                    Pending::Read { .. } => self.chan.vars.set("READSTATUS", "HANGUP"),
                    Pending::Record { .. } => self.chan.vars.set("RECORD_STATUS", "HANGUP"),
                    Pending::Dial { .. } => self.chan.vars.set("DIALSTATUS", "CANCEL"),
                    Pending::ConfBridge => self.chan.vars.set("CONFBRIDGE_RESULT", "HANGUP"),
                    _ => {}
                }
                return Flow::Stop(match p {
                    Pending::Indicate(o) => o,
                    _ => Outcome::Hangup,
                });
            }
            Resume::AppFailed => return Flow::Stop(Outcome::AppError),
            _ => {}
        }
        let ctx = self.chan.context.clone();
        match (p, input) {
            (Pending::Answer, _) => {
                self.chan.answered = true;
                Flow::Continue
            }
            (Pending::Indicate(o), _) => Flow::Stop(o),
            (
                Pending::Dial {
                    digit_context,
                    continue_g,
                },
                Resume::Dial(r),
            ) => self.apply_dial_result(r, &digit_context, continue_g, env),
            (Pending::Playback { answer }, input) => {
                self.chan.answered |= answer;
                let ok = !matches!(input, Resume::Played { ok: false });
                self.chan
                    .vars
                    .set("PLAYBACKSTATUS", if ok { "SUCCESS" } else { "FAILED" });
                Flow::Continue
            }
            (Pending::Background { answer, context }, input) => {
                self.chan.answered |= answer;
                if let Resume::Digit(c) = input {
                    self.chan.vars.set("BACKGROUNDSTATUS", "SUCCESS");
                    return Flow::Collect {
                        digits: c.to_string(),
                        context,
                    };
                }
                let ok = !matches!(input, Resume::Played { ok: false });
                self.chan
                    .vars
                    .set("BACKGROUNDSTATUS", if ok { "SUCCESS" } else { "FAILED" });
                Flow::Continue
            }
            (Pending::WaitExten | Pending::FallthroughWait, Resume::Digit(c)) => Flow::Collect {
                digits: c.to_string(),
                context: ctx,
            },
            (Pending::WaitExten, _) => {
                // §12.3: on timeout continue at the next priority if there is one.
                let (c, e, next) = (ctx.clone(), self.chan.exten.clone(), self.chan.priority + 1);
                let tz = env.time_zone();
                let when = crate::lookup::When {
                    now: env.now(),
                    tz: &tz,
                };
                let has_next = self
                    .plan
                    .find(
                        &c,
                        &e,
                        crate::lookup::Want::Priority(next),
                        self.chan.cid(),
                        Some(when),
                    )
                    .is_some();
                if has_next {
                    Flow::Continue
                } else {
                    self.response_timeout(&ctx, env)
                }
            }
            (Pending::FallthroughWait, _) => self.response_timeout(&ctx, env),
            (
                Pending::Collect {
                    mut digits,
                    context,
                },
                Resume::Digit(c),
            ) => {
                digits.push(c);
                Flow::Collect { digits, context }
            }
            (Pending::Collect { digits, context }, _) => {
                // Timeout: stop collecting and decide with what we have (§6.5).
                self.finish_collect(digits, context, env)
            }
            (Pending::Read { var }, input) => {
                let (digits, status) = match input {
                    Resume::Read { digits, status } => (digits, status),
                    Resume::Digit(c) => (c.to_string(), "OK".to_string()),
                    _ => (String::new(), "TIMEOUT".to_string()),
                };
                self.with_scope(env, |s| s.set(&var, &digits));
                self.chan.vars.set("READSTATUS", &status);
                Flow::Continue
            }
            (Pending::Record { file }, input) => {
                // The agent names the file it chose (a `%d` filled in) without
                // its extension; otherwise the extension comes off the one asked for.
                let (status, base) = match input {
                    Resume::Recorded {
                        status,
                        file: Some(f),
                    } => (status, f),
                    Resume::Recorded { status, file: None } => (status, without_extension(&file)),
                    _ => ("TIMEOUT".into(), without_extension(&file)),
                };
                self.chan.vars.set("RECORDED_FILE", &base);
                self.chan.vars.set("RECORD_STATUS", &status);
                Flow::Continue
            }
            (Pending::VoiceMail, input) => {
                let (status, exit) = match input {
                    Resume::VoiceMail { status, exit } => (status, exit),
                    _ => ("SUCCESS".to_string(), None),
                };
                self.chan.vars.set("VMSTATUS", &status);
                let target = match exit {
                    Some('0') => Some("o"),
                    Some('*') => Some("a"),
                    _ => None,
                };
                match target {
                    Some(t) if self.exists(&ctx, t, env) => {
                        self.chan.set_position(&ctx, t, 1);
                        Flow::Jumped
                    }
                    _ => Flow::Continue,
                }
            }
            (Pending::ConfBridge, input) => {
                let result = match input {
                    Resume::ConfBridge { result } => result,
                    _ => "HANGUP".into(),
                };
                self.chan.vars.set("CONFBRIDGE_RESULT", &result);
                Flow::Continue
            }
            (Pending::Dial { .. }, _) | (Pending::Plain, _) => Flow::Continue,
        }
    }

    fn finish_collect(&mut self, digits: String, context: String, env: &mut dyn Env) -> Flow {
        if self.exists(&context, &digits, env) {
            self.chan.set_position(&context, &digits, 1);
            return Flow::Jumped;
        }
        self.chan.context = context.clone();
        self.invalid_extension(&context, &digits, env)
    }
}
