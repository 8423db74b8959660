//! The sans-IO interpreter (§6, §7). It never blocks, sleeps or reads a clock: each
//! `resume` runs internal applications until one needs the outside world, then hands
//! out an [`Action`] and waits for the matching [`Resume`].
//!
//! ```text
//!   new ──resume(Start)──► Running ──app needs media/signalling──► Waiting(pending)
//!                            ▲   │                                     │
//!                            │   └──Hangup/Busy/fallthrough/error──┐   │ resume(input)
//!                            └─────────────────────────────────────┼───┘
//!                                                                  ▼
//!                                   run `h` (internal apps only) ──► Finished(Ending)
//! ```

mod apps;
mod channel;
mod dial;
mod flow;
mod functions;
mod media;
mod truth;
mod types;

use std::collections::VecDeque;
use std::sync::Arc;

use jiff::Timestamp;

pub use truth::check_condition;

/// Parses caller id text `"Name" <num>`, `Name <num>` or `num` into (name, number).
pub fn parse_callerid_text(text: &str) -> (Option<String>, Option<String>) {
    functions::parse_callerid(text)
}
pub use dial::{DialError, parse_dial};
pub use types::*;

use crate::appnames::canonical_app;
use crate::env::Env;
use crate::lookup::{Want, When};
use crate::model::Dialplan;
use channel::{Chan, ExceptionInfo, Scope};

/// Internal steps allowed in one `resume` before the call is ended. Asterisk would
/// spin forever on `Goto` loops without a blocking application; a call task must not.
const MAX_INTERNAL_STEPS: usize = 100_000;

/// What the interpreter is waiting for after handing out an action.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Plain,
    Answer,
    Indicate(Outcome),
    Dial {
        digit_context: String,
        continue_g: bool,
    },
    Playback {
        answer: bool,
    },
    Background {
        answer: bool,
        context: String,
    },
    WaitExten,
    Collect {
        digits: String,
        context: String,
    },
    FallthroughWait,
    Read {
        var: String,
    },
    Record {
        file: String,
    },
    VoiceMail,
    ConfBridge,
}

#[derive(Debug, Clone)]
enum State {
    NotStarted,
    Running,
    Waiting(Pending),
    Finished(Ending),
}

/// How an application hands control back to the loop (§6).
#[derive(Debug, Clone)]
pub(crate) enum Flow {
    /// Success: next priority.
    Continue,
    /// The position was changed: run exactly there.
    Jumped,
    /// The PBX ends (`h` runs).
    Stop(Outcome),
    /// Hand an action out and wait.
    Yield(Action, Pending),
    /// A digit arrived: collect an extension number (§6.5).
    Collect { digits: String, context: String },
}

/// Runs one call through a dialplan. Create it with [`Interpreter::new`], then call
/// [`Interpreter::resume`] with `Resume::Start` and after every action; drain
/// [`Interpreter::poll_event`] to observe each executed step.
#[derive(Debug)]
pub struct Interpreter {
    plan: Arc<Dialplan>,
    chan: Chan,
    state: State,
    events: VecDeque<Event>,
    in_h: bool,
    outcome: Outcome,
}

impl Interpreter {
    pub fn new(plan: Arc<Dialplan>, start: CallStart) -> Self {
        let mut chan = Chan {
            context: start.context,
            exten: if start.exten.is_empty() {
                "s".into()
            } else {
                start.exten
            },
            priority: 1,
            caller_num: start.caller_id_num,
            caller_name: start.caller_id_name,
            caller_pres: "allowed_not_screened".into(),
            vars: Default::default(),
            name: start.channel,
            uniqueid: start.uniqueid,
            hangup_cause: None,
            answered: false,
            hung_up: false,
            frames: Vec::new(),
            exception: None,
            digit_timeout: 5.0,
            response_timeout: 10.0,
            absolute_deadline: None,
        };
        for (k, v) in &start.variables {
            chan.vars.set(k, v);
        }
        Interpreter {
            plan,
            chan,
            state: State::NotStarted,
            events: VecDeque::new(),
            in_h: false,
            outcome: Outcome::Hangup,
        }
    }

    /// Runs until the next action. After `Action::Hangup` every further call returns
    /// the same `Action::Hangup`.
    pub fn resume(&mut self, input: Resume, env: &mut dyn Env) -> Action {
        let flow = match std::mem::replace(&mut self.state, State::Running) {
            State::Finished(e) => {
                self.state = State::Finished(e);
                return Action::Hangup(e);
            }
            State::NotStarted | State::Running => Flow::Jumped,
            State::Waiting(p) => self.on_resume(p, input, env),
        };
        self.drive(flow, env)
    }

    /// The next observable event (executed step, log line, warning), oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Current position: (context, exten, priority).
    pub fn position(&self) -> (&str, &str, i32) {
        (&self.chan.context, &self.chan.exten, self.chan.priority)
    }

    /// A channel variable (not built-ins, not globals).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.chan.vars.get(name)
    }

    /// Every channel variable, in the order first set.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.chan
            .vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What a channel created by this one (a Dial leg) inherits (§8.5): pass it as
    /// `CallStart::variables` of the child.
    pub fn inherited_variables(&self) -> Vec<(String, String)> {
        self.chan.vars.inherited()
    }

    /// The current caller-id number (it may change through `Set(CALLERID(num)=..)`).
    pub fn caller_id(&self) -> (Option<&str>, Option<&str>) {
        (
            self.chan.caller_num.as_deref(),
            self.chan.caller_name.as_deref(),
        )
    }

    /// Whether the caller asked not to show their number (CLIR): presentation
    /// `prohib…` or `unavailable`.
    pub fn caller_restricted(&self) -> bool {
        let p = self.chan.caller_pres.as_str();
        p.starts_with("prohib") || p == "unavailable"
    }

    pub fn hangup_cause(&self) -> Option<u16> {
        self.chan.hangup_cause
    }

    pub fn is_answered(&self) -> bool {
        self.chan.answered
    }

    /// When `TIMEOUT(absolute)` fires; deliver `Resume::AbsoluteTimeout` then.
    pub fn absolute_deadline(&self) -> Option<Timestamp> {
        self.chan.absolute_deadline
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_))
    }

    /// For Background: whether digit `c` can start an extension in `context` (only
    /// such digits interrupt the prompt).
    pub fn digit_can_match(&self, context: &str, c: char, env: &dyn Env) -> bool {
        let tz = env.time_zone();
        let when = When {
            now: env.now(),
            tz: &tz,
        };
        self.plan
            .can_match(context, &c.to_string(), self.chan.cid(), Some(when))
    }

    fn warn(&mut self, msg: String) {
        self.events.push_back(Event::Warning(msg));
    }

    fn drive(&mut self, mut flow: Flow, env: &mut dyn Env) -> Action {
        let mut budget = MAX_INTERNAL_STEPS;
        loop {
            match flow {
                Flow::Continue => self.chan.priority += 1,
                Flow::Jumped => {}
                Flow::Stop(o) => return self.finish(o, env),
                Flow::Yield(a, p) => {
                    if self.in_h {
                        // §7.1: the channel is hung up; media applications fail at once.
                        flow = Flow::Stop(Outcome::AppError);
                        continue;
                    }
                    self.state = State::Waiting(p);
                    return a;
                }
                Flow::Collect { digits, context } => {
                    flow = self.collect(digits, context, env);
                    continue;
                }
            }
            if budget == 0 {
                let (c, e, p) = (
                    self.chan.context.clone(),
                    self.chan.exten.clone(),
                    self.chan.priority,
                );
                self.warn(format!(
                    "{MAX_INTERNAL_STEPS} steps without waiting for anything (at {e}@{c}:{p}); the call is ended to stop a dialplan loop"
                ));
                return self.finish(Outcome::AppError, env);
            }
            budget -= 1;
            flow = self.step(env);
        }
    }

    /// Runs the priority at the current position (§6.2).
    fn step(&mut self, env: &mut dyn Env) -> Flow {
        let now = env.now();
        if !self.in_h
            && let Some(d) = self.chan.absolute_deadline
            && now >= d
        {
            self.chan.absolute_deadline = None;
            return self.absolute_timeout(env);
        }
        let plan = Arc::clone(&self.plan);
        let tz = env.time_zone();
        let when = When { now, tz: &tz };
        let found = plan.find(
            &self.chan.context,
            &self.chan.exten,
            Want::Priority(self.chan.priority),
            self.chan.cid(),
            Some(when),
        );
        let Some(found) = found else {
            return self.missing(env);
        };
        let Some(app) = canonical_app(&found.priority.app) else {
            let msg = format!(
                "no application '{}' for extension ({}, {}, {})",
                found.priority.app, self.chan.context, self.chan.exten, self.chan.priority
            );
            self.warn(msg);
            return Flow::Stop(Outcome::AppError);
        };
        let data = self.subst(&found.priority.data, env);
        self.events.push_back(Event::Step(Step {
            context: self.chan.context.clone(),
            exten: self.chan.exten.clone(),
            priority: self.chan.priority,
            app: app.to_string(),
            args: data.clone(),
        }));
        self.exec(app, &data, env)
    }

    /// Substitutes `text` in this channel's scope, logging warnings as events.
    fn subst(&mut self, text: &str, env: &mut dyn Env) -> String {
        let mut warnings = Vec::new();
        let out = Scope {
            chan: &mut self.chan,
            env,
            warnings: &mut warnings,
        }
        .subst(text);
        self.flush(warnings);
        out
    }

    fn with_scope<R>(&mut self, env: &mut dyn Env, f: impl FnOnce(&mut Scope<'_>) -> R) -> R {
        let mut warnings = Vec::new();
        let r = f(&mut Scope {
            chan: &mut self.chan,
            env,
            warnings: &mut warnings,
        });
        self.flush(warnings);
        r
    }

    fn flush(&mut self, warnings: Vec<String>) {
        for w in warnings {
            self.events.push_back(Event::Warning(w));
        }
    }

    /// Dial's `d` option: whether `digit` names an extension of the context the
    /// running Dial exits to (`EXITCONTEXT`, else the current one).
    pub fn dial_exit_exists(&self, digit: char, env: &dyn Env) -> bool {
        match &self.state {
            State::Waiting(Pending::Dial { digit_context, .. }) => {
                self.exists(digit_context, &digit.to_string(), env)
            }
            _ => false,
        }
    }

    fn exists(&self, context: &str, exten: &str, env: &dyn Env) -> bool {
        let tz = env.time_zone();
        let when = When {
            now: env.now(),
            tz: &tz,
        };
        self.plan
            .exists(context, exten, self.chan.cid(), Some(when))
    }

    /// Records an exception and moves to `e`,1 (§7.3). `None` when there is no `e` or
    /// we are already in it (the call ends instead of looping).
    fn raise(&mut self, reason: &str, env: &dyn Env) -> Option<Flow> {
        self.chan.exception = Some(ExceptionInfo {
            reason: reason.to_string(),
            context: self.chan.context.clone(),
            exten: self.chan.exten.clone(),
            priority: self.chan.priority,
        });
        if self.chan.exten == "e" || !self.exists(&self.chan.context.clone(), "e", env) {
            return None;
        }
        let ctx = self.chan.context.clone();
        self.chan.set_position(&ctx, "e", 1);
        Some(Flow::Jumped)
    }

    /// §6.4: the lookup failed.
    fn missing(&mut self, env: &mut dyn Env) -> Flow {
        if self.in_h {
            return Flow::Stop(self.outcome);
        }
        let ctx = self.chan.context.clone();
        let exten = self.chan.exten.clone();
        if !self.exists(&ctx, &exten, env) {
            return self.invalid_extension(&ctx, &exten, env);
        }
        if self.plan.options().autofallthrough {
            return match self.chan.vars.get("DIALSTATUS") {
                Some("BUSY") => Flow::Stop(Outcome::Busy),
                Some("CONGESTION") | Some("CHANUNAVAIL") => Flow::Stop(Outcome::Congestion),
                _ => Flow::Stop(Outcome::EndOfDialplan),
            };
        }
        Flow::Yield(
            Action::CollectDigit {
                timeout: self.chan.response_timeout,
            },
            Pending::FallthroughWait,
        )
    }

    /// `i` with INVALID_EXTEN, else `e` with INVALID, else the call ends.
    fn invalid_extension(&mut self, ctx: &str, exten: &str, env: &mut dyn Env) -> Flow {
        if exten != "i" && self.exists(ctx, "i", env) {
            self.chan.vars.set("INVALID_EXTEN", exten);
            self.chan.set_position(ctx, "i", 1);
            return Flow::Jumped;
        }
        self.chan.set_position(ctx, exten, self.chan.priority);
        if let Some(f) = self.raise("INVALID", env) {
            return f;
        }
        self.warn(format!(
            "channel '{}' sent to invalid extension '{exten}' in context '{ctx}', and there is no 'i' or 'e' extension",
            self.chan.name
        ));
        Flow::Stop(Outcome::NoSuchExtension)
    }

    /// Nothing was dialed in time: `t`, else `e` (RESPONSETIMEOUT), else hang up.
    fn response_timeout(&mut self, context: &str, env: &mut dyn Env) -> Flow {
        if self.exists(context, "t", env) {
            self.chan.set_position(context, "t", 1);
            return Flow::Jumped;
        }
        if let Some(f) = self.raise("RESPONSETIMEOUT", env) {
            return f;
        }
        Flow::Stop(Outcome::Hangup)
    }

    /// §6.6: `T`, else `e` (ABSOLUTETIMEOUT), else the call ends.
    fn absolute_timeout(&mut self, env: &mut dyn Env) -> Flow {
        self.chan.absolute_deadline = None;
        let ctx = self.chan.context.clone();
        if self.exists(&ctx, "T", env) {
            self.chan.set_position(&ctx, "T", 1);
            return Flow::Jumped;
        }
        if let Some(f) = self.raise("ABSOLUTETIMEOUT", env) {
            return f;
        }
        Flow::Stop(Outcome::Hangup)
    }

    /// §6.5: keep reading digits while a longer extension could still match.
    fn collect(&mut self, digits: String, context: String, env: &mut dyn Env) -> Flow {
        let tz = env.time_zone();
        let when = When {
            now: env.now(),
            tz: &tz,
        };
        if !digits.is_empty()
            && self
                .plan
                .match_more(&context, &digits, self.chan.cid(), Some(when))
        {
            return Flow::Yield(
                Action::CollectDigit {
                    timeout: self.chan.digit_timeout,
                },
                Pending::Collect { digits, context },
            );
        }
        if digits.is_empty() {
            return self.response_timeout(&context, env);
        }
        if self.exists(&context, &digits, env) {
            self.chan.set_position(&context, &digits, 1);
            return Flow::Jumped;
        }
        self.chan.context = context.clone();
        self.invalid_extension(&context, &digits, env)
    }

    /// The PBX ends: run `h` in the current context (§7.1), then report the ending.
    fn finish(&mut self, outcome: Outcome, env: &mut dyn Env) -> Action {
        if !self.in_h {
            self.in_h = true;
            self.outcome = outcome;
            let c = &mut self.chan;
            c.hung_up = true;
            match outcome {
                Outcome::Busy if !c.answered => c.hangup_cause = Some(crate::causes::USER_BUSY),
                Outcome::Congestion if !c.answered => {
                    c.hangup_cause = Some(crate::causes::CONGESTION)
                }
                // An unknown number answers 404, as chan_pjsip does before the PBX starts.
                Outcome::NoSuchExtension if c.hangup_cause.is_none() => {
                    c.hangup_cause = Some(crate::causes::UNALLOCATED)
                }
                _ => {
                    c.hangup_cause.get_or_insert(crate::causes::NORMAL_CLEARING);
                }
            }
            let ctx = self.chan.context.clone();
            if self.exists(&ctx, "h", env) {
                self.chan.set_position(&ctx, "h", 1);
                return self.drive(Flow::Jumped, env);
            }
        }
        let e = Ending {
            outcome: self.outcome,
            cause: self
                .chan
                .hangup_cause
                .unwrap_or(crate::causes::NORMAL_CLEARING),
        };
        self.state = State::Finished(e);
        Action::Hangup(e)
    }
}
