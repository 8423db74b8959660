//! Application dispatch and the data-only applications (§12.2, §12.4 ExecIf,
//! §7.3 RaiseException, §12.1 Hangup).

use crate::args::{Split, split_app_call, split_args, split_once_grouped};
use crate::causes::parse_cause;
use crate::env::Env;

use super::functions::time_matches;
use super::truth::check_condition;
use super::{Event, Flow, Interpreter, Outcome};
use crate::appnames::canonical_app;

impl Interpreter {
    /// Runs application `app` (canonical spelling) with substituted `data`.
    pub(super) fn exec(&mut self, app: &'static str, data: &str, env: &mut dyn Env) -> Flow {
        match app {
            "NoOp" => Flow::Continue,
            "Set" => self.app_set(data, env),
            "MSet" => {
                for pair in split_args(data, ',', Split::Standard) {
                    match pair.split_once('=') {
                        Some((n, v)) => self.with_scope(env, |s| s.set(n, v)),
                        None => self.warn(format!("MSet: '{pair}' has no '='")),
                    }
                }
                Flow::Continue
            }
            "Verbose" => {
                let a = split_args(data, ',', Split::Standard);
                let (level, msg) = if a.len() > 1 {
                    (a[0].trim().to_string(), a[1..].join(","))
                } else {
                    ("0".to_string(), a.concat())
                };
                self.events.push_back(Event::Log {
                    level: format!("VERBOSE{level}"),
                    message: msg,
                });
                Flow::Continue
            }
            "Log" => {
                let a = split_args(data, ',', Split::Standard);
                let level = a.first().cloned().unwrap_or_default().trim().to_uppercase();
                let msg = a.get(1..).map(|m| m.join(",")).unwrap_or_default();
                self.events.push_back(Event::Log {
                    level,
                    message: msg,
                });
                Flow::Continue
            }
            "Hangup" => {
                // §12.1: no cause, an invalid one or 0 keeps the current cause (else 16).
                if let Some(c) = parse_cause(data) {
                    self.chan.hangup_cause = Some(c);
                }
                Flow::Stop(Outcome::Hangup)
            }
            "RaiseException" => match self.raise(data.trim(), env) {
                Some(f) => f,
                None => {
                    self.warn(format!(
                        "RaiseException({}): no 'e' extension in context '{}'",
                        data.trim(),
                        self.chan.context
                    ));
                    Flow::Stop(Outcome::AppError)
                }
            },
            "ExecIf" => self.app_exec_if(data, env),
            "ExecIfTime" => {
                let (spec, rest) = split_once_grouped(data, '?');
                let Some(rest) = rest else {
                    self.warn("ExecIfTime requires 'timespec?App(args)'".into());
                    return Flow::Continue;
                };
                if self.with_scope(env, |s| time_matches(s, &spec)) {
                    self.run_inline(&rest, env)
                } else {
                    Flow::Continue
                }
            }
            "Goto" => self.app_goto(data, env),
            "GotoIf" => self.app_goto_if(data, env),
            "GotoIfTime" => self.app_goto_if_time(data, env),
            "Gosub" => self.app_gosub(data, env),
            "GosubIf" => self.app_gosub_if(data, env),
            "Return" => self.app_return(data),
            "StackPop" => {
                if !self.pop_frame() {
                    self.warn("StackPop: the Gosub stack is empty".into());
                }
                Flow::Continue
            }
            "While" => self.app_while(data, env),
            "EndWhile" => self.app_end_while(env),
            "ExitWhile" => self.app_exit_while(env),
            "ContinueWhile" => self.app_continue_while(env),
            "Dial" => self.app_dial(data, env),
            _ => self.exec_media(app, data, env),
        }
    }

    /// `Set(name=value)`: everything after the first `=` is the value (§12.2).
    fn app_set(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        match data.split_once('=') {
            Some((n, v)) => self.with_scope(env, |s| s.set(n, v)),
            None => self.warn(format!("Set requires 'name=value', got '{data}'")),
        }
        Flow::Continue
    }

    /// §12.4 ExecIf: the chosen application runs inside ExecIf, unsubstituted.
    fn app_exec_if(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        let q = data.find('?');
        let comma = data.find(',');
        if q.is_none() || comma.is_some_and(|c| c < q.unwrap_or(usize::MAX)) {
            // Deprecated form ExecIf(expr,App,args).
            let a = split_args(data, ',', Split::Standard);
            let cond = a.first().cloned().unwrap_or_default();
            if !check_condition(&cond) {
                return Flow::Continue;
            }
            let app = a.get(1).cloned().unwrap_or_default();
            let args = a.get(2..).map(|r| r.join(",")).unwrap_or_default();
            return self.run_app_named(&app, &args, env);
        }
        let (cond, rest) = split_once_grouped(data, '?');
        let rest = rest.unwrap_or_default();
        let (t, f) = split_once_grouped(&rest, ':');
        let chosen = if check_condition(&cond) { Some(t) } else { f };
        match chosen.filter(|c| !c.trim().is_empty()) {
            Some(c) => self.run_inline(&c, env),
            None => Flow::Continue,
        }
    }

    fn run_inline(&mut self, call: &str, env: &mut dyn Env) -> Flow {
        let (app, args) = split_app_call(call);
        self.run_app_named(&app, &args, env)
    }

    fn run_app_named(&mut self, app: &str, args: &str, env: &mut dyn Env) -> Flow {
        match canonical_app(app.trim()) {
            Some(a) => self.exec(a, args, env),
            None => {
                self.warn(format!("could not find application '{}'", app.trim()));
                Flow::Stop(Outcome::AppError)
            }
        }
    }
}
