//! `softswitch dialplan trace`: a dry run of a new, unanswered inbound call in
//! virtual time (issue 3). The same interpreter the switch uses is driven by a
//! scripted caller who never presses a key and stays on the line until the dialplan
//! ends it.
//!
//! Human format, one line per executed priority, as Asterisk logs it:
//!
//! ```text
//! Executing [1001@internal:1] NoOp("Trace/trace-00000001", "calling 1001")
//! Executing [1001@internal:2] Dial("Trace/trace-00000001", "SIP/1001,20,tT")
//! == Dial SIP/1001 (timeout 20, options "tT"): the dry run stops here; use --dial-status to go on
//! ```
//!
//! and a last `== Call ended: ...` line naming the outcome, the cause and the SIP
//! answer an unanswered caller gets. `--json` prints JSON Lines instead: one object per
//! step and one final outcome object.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::json;

use super::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::causes::{DialStatus, cause_name, cause_to_sip};
use crate::env::{AstDb, SimEnv};
use crate::interp::{Action, CallStart, DialRequest, DialResult, Event, Interpreter, Resume};
use crate::model::Dialplan;

/// Steps after which a trace gives up (a dialplan loop with waits in it).
const MAX_TRACE_STEPS: usize = 10_000;

/// Arguments of `softswitch dialplan trace`, as raw command-line text so the CLI can
/// pass them through; malformed values are reported by [`trace`].
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    pub file: PathBuf,
    pub context: String,
    pub exten: String,
    /// `'Name <num>'` or `num`.
    pub callerid: Option<String>,
    /// `VAR=VALUE` channel variables.
    pub set: Vec<String>,
    /// `VAR=VALUE` globals (override `[globals]`).
    pub global: Vec<String>,
    /// `family/key=VALUE` AstDB entries.
    pub db: Vec<String>,
    /// `ANSWER`, `BUSY`, `NOANSWER`, `CHANUNAVAIL` or `CONGESTION`.
    pub dial_status: Option<String>,
    pub json: bool,
    /// Virtual start time; default now.
    pub now: Option<Timestamp>,
    /// Zone for time specs; default the system zone.
    pub time_zone: Option<TimeZone>,
}

fn split_assign<'a>(flag: &str, v: &'a str) -> Result<(&'a str, &'a str), String> {
    match v.split_once('=') {
        Some((k, val)) if !k.is_empty() => Ok((k, val)),
        _ => Err(format!("{flag} expects NAME=VALUE, got '{v}'")),
    }
}

/// Runs the trace and returns the exit code: 0 when the run completed (whatever the
/// call's outcome), 1 when the file could not be loaded, 2 for bad options.
pub fn trace(opts: &TraceOptions, out: &mut dyn Write) -> i32 {
    match run(opts, out) {
        Ok(code) => code,
        Err(msg) => {
            let _ = writeln!(out, "error: {msg}");
            EXIT_USAGE
        }
    }
}

fn run(opts: &TraceOptions, out: &mut dyn Write) -> Result<i32, String> {
    let dial_status = match &opts.dial_status {
        Some(s) => Some(DialStatus::parse(s).filter(|d| {
            matches!(
                d,
                DialStatus::Answer
                    | DialStatus::Busy
                    | DialStatus::NoAnswer
                    | DialStatus::ChanUnavail
                    | DialStatus::Congestion
            )
        }).ok_or_else(|| {
            format!("--dial-status must be ANSWER, BUSY, NOANSWER, CHANUNAVAIL or CONGESTION, got '{s}'")
        })?),
        None => None,
    };
    let mut vars = Vec::new();
    for s in &opts.set {
        let (k, v) = split_assign("--set", s)?;
        vars.push((k.to_string(), v.to_string()));
    }
    let mut globals = Vec::new();
    for s in &opts.global {
        let (k, v) = split_assign("--global", s)?;
        globals.push((k.to_string(), v.to_string()));
    }
    let mut db = Vec::new();
    for s in &opts.db {
        let (k, v) = split_assign("--db", s)?;
        let (f, key) = k
            .split_once('/')
            .filter(|(f, key)| !f.is_empty() && !key.is_empty())
            .ok_or_else(|| format!("--db expects family/key=VALUE, got '{s}'"))?;
        db.push((f.to_string(), key.to_string(), v.to_string()));
    }

    let loaded = match Dialplan::load(&opts.file) {
        Ok(l) => l,
        Err(f) => {
            for d in &f.diagnostics {
                let _ = write!(out, "{d}");
            }
            let _ = writeln!(out, "error: {} was not loaded", opts.file.display());
            return Ok(EXIT_ERRORS);
        }
    };
    if loaded.plan.context(&opts.context).is_none() {
        return Err(format!(
            "there is no context '{}' in {}",
            opts.context,
            opts.file.display()
        ));
    }
    if !opts.json {
        for d in &loaded.diagnostics {
            let _ = writeln!(out, "{}", d.header());
        }
    }
    let plan = Arc::new(loaded.plan);
    let now = opts.now.unwrap_or_else(Timestamp::now);
    let mut env = SimEnv::new(now, opts.time_zone.clone().unwrap_or_else(TimeZone::system));
    env.globals.apply_plan(&plan);
    for (k, v) in &globals {
        env.globals.set(k, v);
    }
    for (f, k, v) in &db {
        env.db.put(f, k, v);
    }
    let (name, num) = match &opts.callerid {
        Some(c) => crate::interp::parse_callerid_text(c),
        None => (None, None),
    };
    let channel = "Trace/trace-00000001".to_string();
    let start = CallStart {
        context: opts.context.clone(),
        exten: opts.exten.clone(),
        caller_id_num: num,
        caller_id_name: name,
        channel: channel.clone(),
        uniqueid: format!("{}.1", now.as_second()),
        variables: vars,
    };
    let mut t = Tracer {
        out,
        json: opts.json,
        channel,
        steps: 0,
    };
    let mut interp = Interpreter::new(plan, start);
    let mut input = Resume::Start;
    loop {
        let action = interp.resume(input, &mut env);
        t.drain(&mut interp);
        if t.steps > MAX_TRACE_STEPS {
            t.note(&format!(
                "WARNING: the trace stopped after {MAX_TRACE_STEPS} steps (a dialplan loop?)"
            ));
            t.ending("app_error", interp.hangup_cause().unwrap_or(16));
            return Ok(EXIT_OK);
        }
        input = match action {
            Action::Hangup(e) => {
                t.ending(e.outcome.as_str(), e.cause);
                return Ok(EXIT_OK);
            }
            Action::Dial(req) => match dial_status {
                None => {
                    t.dial_stop(&req);
                    return Ok(EXIT_OK);
                }
                Some(status) => Resume::Dial(dial_result(status, &req)),
            },
            Action::Wait { seconds } => {
                env.advance(seconds);
                Resume::Done
            }
            Action::Busy { timeout } | Action::Congestion { timeout } => {
                env.advance(timeout.unwrap_or(0.0));
                Resume::Done
            }
            Action::Playback { .. } | Action::Background { .. } => Resume::Played { ok: true },
            Action::WaitExten { timeout, .. } | Action::CollectDigit { timeout } => {
                env.advance(timeout);
                Resume::Timeout
            }
            Action::Read {
                timeout, attempts, ..
            } => {
                env.advance(timeout.unwrap_or(0.0) * attempts.max(1) as f64);
                Resume::Read {
                    digits: String::new(),
                    status: "TIMEOUT".into(),
                }
            }
            Action::Record { max_duration, .. } => {
                env.advance(max_duration.unwrap_or(0.0));
                Resume::Recorded {
                    status: "SILENCE".into(),
                    file: None,
                }
            }
            Action::VoiceMail { .. } => Resume::VoiceMail {
                status: "SUCCESS".into(),
                exit: None,
            },
            // The caller stays in an echo test or a conference until hanging up.
            Action::Echo | Action::ConfBridge { .. } => Resume::CallerHangup,
            Action::Answer { .. }
            | Action::Progress
            | Action::Ringing
            | Action::SayDigits { .. }
            | Action::SayNumber { .. }
            | Action::VoiceMailMain { .. }
            | Action::MixMonitor { .. }
            | Action::SendDtmf { .. }
            | Action::Pickup { .. }
            | Action::StopMixMonitor => Resume::Done,
        };
        if let Some(d) = interp.absolute_deadline()
            && env.now >= d
        {
            input = Resume::AbsoluteTimeout;
        }
    }
}

/// What the scripted Dial returns for `--dial-status`.
fn dial_result(status: DialStatus, req: &DialRequest) -> DialResult {
    let peer = req.targets.first().map(|t| t.resource.clone());
    match status {
        // The callee answers and later hangs up, so option `g` continues.
        DialStatus::Answer => DialResult::answered(peer.as_deref().unwrap_or(""), false),
        s => DialResult::failed(s, s.typical_cause()),
    }
}

struct Tracer<'a> {
    out: &'a mut dyn Write,
    json: bool,
    channel: String,
    steps: usize,
}

impl Tracer<'_> {
    fn drain(&mut self, interp: &mut Interpreter) {
        while let Some(ev) = interp.poll_event() {
            match ev {
                Event::Step(s) => {
                    self.steps += 1;
                    if self.json {
                        let _ = writeln!(self.out, "{}", step_json(&s));
                    } else {
                        let _ = writeln!(
                            self.out,
                            "Executing [{}@{}:{}] {}(\"{}\", \"{}\")",
                            s.exten, s.context, s.priority, s.app, self.channel, s.args
                        );
                    }
                }
                Event::Log { level, message } => self.note(&format!("{level}: {message}")),
                Event::Warning(w) => self.note(&format!("WARNING: {w}")),
            }
        }
    }

    fn note(&mut self, line: &str) {
        if !self.json {
            let _ = writeln!(self.out, "{line}");
        }
    }

    fn dial_stop(&mut self, req: &DialRequest) {
        let targets: Vec<String> = req.targets.iter().map(|t| t.to_string()).collect();
        if self.json {
            let mut fields = vec![("outcome", json!("dial")), ("dial_targets", json!(targets))];
            if !req.timeout_text.is_empty() {
                fields.push(("dial_timeout", json!(req.timeout_text)));
            }
            if !req.options.raw.is_empty() {
                fields.push(("dial_options", json!(req.options.raw)));
            }
            let _ = writeln!(self.out, "{}", ordered(&fields));
        } else {
            let timeout = if req.timeout_text.is_empty() {
                "no timeout".to_string()
            } else {
                format!("timeout {}", req.timeout_text)
            };
            let _ = writeln!(
                self.out,
                "== Dial {} ({timeout}, options \"{}\"): the dry run stops here; use --dial-status to go on",
                targets.join(" & "),
                req.options.raw
            );
        }
    }

    fn ending(&mut self, outcome: &str, cause: u16) {
        if self.json {
            let o = ordered(&[("outcome", json!(outcome)), ("cause", json!(cause))]);
            let _ = writeln!(self.out, "{o}");
        } else {
            let name = cause_name(cause).unwrap_or("UNKNOWN");
            let (code, reason) = cause_to_sip(cause);
            let _ = writeln!(
                self.out,
                "== Call ended: {outcome}, cause {cause} ({name}); an unanswered SIP caller gets {code} {reason}"
            );
        }
    }
}

/// A JSON object with its keys in the given order (serde_json's map sorts them).
fn ordered(fields: &[(&str, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// `{"context","exten","priority","app","args"}` in the documented order.
fn step_json(s: &crate::interp::Step) -> String {
    ordered(&[
        ("context", json!(s.context)),
        ("exten", json!(s.exten)),
        ("priority", json!(s.priority)),
        ("app", json!(s.app)),
        ("args", json!(s.args)),
    ])
}
