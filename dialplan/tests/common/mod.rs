//! Shared helpers: load text, drive a call with a scripted caller, collect the steps.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use dialplan::causes::DialStatus;
use dialplan::interp::{Action, CallStart, DialResult, Ending, Event, Interpreter, Resume};
use dialplan::{Dialplan, SimEnv};
use jiff::Timestamp;
use jiff::tz::TimeZone;

pub fn plan(text: &str) -> Arc<Dialplan> {
    match Dialplan::load_str("test.conf", text, Path::new(".")) {
        Ok(l) => Arc::new(l.plan),
        Err(f) => panic!("load failed: {:?}", f.diagnostics),
    }
}

/// 2026-08-03 10:00:00 UTC, a Monday.
pub fn monday_10am() -> Timestamp {
    "2026-08-03T10:00:00Z".parse().unwrap()
}

pub fn env() -> SimEnv {
    SimEnv::new(monday_10am(), TimeZone::UTC)
}

/// A scripted caller.
pub struct Script {
    pub digits: VecDeque<char>,
    pub dial: Option<DialResult>,
    pub caller_id: Option<&'static str>,
    pub vars: Vec<(String, String)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            digits: VecDeque::new(),
            dial: Some(DialResult::failed(DialStatus::NoAnswer, Some(19))),
            caller_id: Some("1000"),
            vars: Vec::new(),
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct Run {
    /// `exten@context:prio App(args)` per executed step.
    pub steps: Vec<String>,
    pub warnings: Vec<String>,
    pub actions: Vec<Action>,
    pub ending: Ending,
    pub interp: Interpreter,
}

impl Run {
    pub fn apps(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| s.split_once(' ').unwrap().1.to_string())
            .collect()
    }
}

pub fn run_with(text: &str, ctx: &str, exten: &str, mut script: Script) -> Run {
    let p = plan(text);
    let mut env = env();
    env.globals.apply_plan(&p);
    run_plan(p, &mut env, ctx, exten, &mut script)
}

pub fn run(text: &str, ctx: &str, exten: &str) -> Run {
    run_with(text, ctx, exten, Script::default())
}

pub fn run_plan(
    p: Arc<Dialplan>,
    env: &mut SimEnv,
    ctx: &str,
    exten: &str,
    script: &mut Script,
) -> Run {
    let mut interp = Interpreter::new(
        p,
        CallStart {
            context: ctx.into(),
            exten: exten.into(),
            caller_id_num: script.caller_id.map(str::to_string),
            caller_id_name: Some("Test".into()),
            channel: "SIP/test-00000001".into(),
            uniqueid: "1.1".into(),
            variables: script.vars.clone(),
        },
    );
    let mut steps = Vec::new();
    let mut warnings = Vec::new();
    let mut actions = Vec::new();
    let mut input = Resume::Start;
    for _ in 0..10_000 {
        let a = interp.resume(input, env);
        while let Some(ev) = interp.poll_event() {
            match ev {
                Event::Step(s) => steps.push(format!(
                    "{}@{}:{} {}({})",
                    s.exten, s.context, s.priority, s.app, s.args
                )),
                Event::Warning(w) => warnings.push(w),
                Event::Log { .. } => {}
            }
        }
        actions.push(a.clone());
        input = match a {
            Action::Hangup(ending) => {
                return Run {
                    steps,
                    warnings,
                    actions,
                    ending,
                    interp,
                };
            }
            Action::Dial(_) => match script.dial.clone() {
                Some(r) => Resume::Dial(r),
                None => Resume::CallerHangup,
            },
            Action::Background { .. } => match script.digits.pop_front() {
                Some(d) => Resume::Digit(d),
                None => Resume::Played { ok: true },
            },
            Action::WaitExten { timeout, .. } | Action::CollectDigit { timeout } => {
                match script.digits.pop_front() {
                    Some(d) => Resume::Digit(d),
                    None => {
                        env.advance(timeout);
                        Resume::Timeout
                    }
                }
            }
            Action::Wait { seconds } => {
                env.advance(seconds);
                Resume::Done
            }
            Action::Playback { .. } => Resume::Played { ok: true },
            Action::Read { .. } => Resume::Read {
                digits: script.digits.drain(..).collect(),
                status: "OK".into(),
            },
            Action::Echo | Action::ConfBridge { .. } => Resume::CallerHangup,
            _ => Resume::Done,
        };
    }
    panic!(
        "run did not end; last steps: {:?}",
        &steps[steps.len().saturating_sub(5)..]
    );
}
