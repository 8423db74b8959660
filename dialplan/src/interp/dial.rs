//! `Dial` (§13): argument parsing into a [`DialRequest`] and the variables and flow
//! after the call agent reports the result.

use crate::args::{Split, split_args};
use crate::causes::{DialStatus, NORMAL_CLEARING};
use crate::env::Env;

use super::{
    Action, DialOption, DialOptions, DialRequest, DialResult, DialTarget, Flow, Interpreter,
    Outcome, Pending,
};

/// Option letters app_dial knows (§13.1).
const KNOWN_OPTIONS: &str = "AabBCcDdeFfGgHhiIjKkLmMnNoOpPQrRsStTuUwWxXz";

/// Why Dial refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error("Dial requires an argument (technology/resource)")]
    Empty,
    #[error("Dial argument takes format (technology/resource), got '{0}'")]
    NoTechnology(String),
    #[error("invalid Dial option: {0}")]
    InvalidArgs(String),
}

/// Parses Dial's (substituted) data. Unknown option letters are returned as warnings.
pub fn parse_dial(data: &str) -> Result<(DialRequest, Vec<String>), DialError> {
    let a = split_args(data, ',', Split::Standard);
    let targets_text = a.first().map(|s| s.trim()).unwrap_or("");
    if targets_text.is_empty() {
        return Err(DialError::Empty);
    }
    let mut targets = Vec::new();
    for t in targets_text
        .split('&')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let Some((tech, res)) = t.split_once('/') else {
            return Err(DialError::NoTechnology(t.to_string()));
        };
        // design.md principle 6: PJSIP/1001 is accepted as SIP/1001.
        let tech = if tech.eq_ignore_ascii_case("pjsip") {
            "SIP".to_string()
        } else {
            tech.to_string()
        };
        targets.push(DialTarget {
            tech,
            resource: res.to_string(),
        });
    }
    let timeout_text = a.get(1).map(|s| s.trim().to_string()).unwrap_or_default();
    let (answer_t, progress_t) = match timeout_text.split_once('^') {
        Some((x, y)) => (x, Some(y)),
        None => (timeout_text.as_str(), None),
    };
    let parse_secs = |s: &str| s.trim().parse::<f64>().ok().filter(|v| *v > 0.0);
    let raw = a.get(2).cloned().unwrap_or_default();
    let (options, warnings) = parse_options(&raw)?;
    Ok((
        DialRequest {
            targets,
            timeout: parse_secs(answer_t),
            progress_timeout: progress_t.and_then(parse_secs),
            timeout_text: timeout_text.clone(),
            options,
            url: a.get(3).cloned().filter(|u| !u.is_empty()),
        },
        warnings,
    ))
}

fn parse_options(raw: &str) -> Result<(DialOptions, Vec<String>), DialError> {
    let chars: Vec<char> = raw.chars().collect();
    let mut list = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let letter = chars[i];
        i += 1;
        let mut arg = None;
        if chars.get(i) == Some(&'(') {
            let mut depth = 0;
            let start = i + 1;
            let mut j = i;
            while j < chars.len() {
                match chars[j] {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            arg = Some(chars[start..j.min(chars.len())].iter().collect::<String>());
            i = j + 1;
        }
        if letter.is_whitespace() {
            continue;
        }
        if !KNOWN_OPTIONS.contains(letter) {
            warnings.push(format!("unknown Dial option '{letter}' ignored"));
        }
        match letter {
            'S' => {
                let ok = arg
                    .as_deref()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .is_some_and(|v| v > 0.0);
                if !ok {
                    return Err(DialError::InvalidArgs(format!(
                        "S({}) needs a number of seconds > 0",
                        arg.unwrap_or_default()
                    )));
                }
            }
            'L' => {
                let first = arg.as_deref().unwrap_or("").split(':').next().unwrap_or("");
                if first.trim().parse::<u64>().map_or(true, |v| v == 0) {
                    return Err(DialError::InvalidArgs(format!(
                        "L({}) needs a call limit in milliseconds",
                        arg.unwrap_or_default()
                    )));
                }
            }
            _ => {}
        }
        list.push(DialOption { letter, arg });
    }
    Ok((
        DialOptions {
            raw: raw.to_string(),
            list,
        },
        warnings,
    ))
}

/// Variables Dial clears when it starts (§13.2).
const DIAL_VARS: &[&str] = &[
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
];

impl Interpreter {
    pub(super) fn app_dial(&mut self, data: &str, _env: &mut dyn Env) -> Flow {
        for v in DIAL_VARS {
            self.chan.vars.remove(v);
        }
        match parse_dial(data) {
            Ok((req, warnings)) => {
                for w in warnings {
                    self.warn(w);
                }
                if req.targets.is_empty() {
                    self.chan.vars.set("DIALSTATUS", "CHANUNAVAIL");
                    return Flow::Continue;
                }
                let digit_context = self
                    .chan
                    .vars
                    .get("EXITCONTEXT")
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| self.chan.context.clone());
                let continue_g = req.options.continue_on_callee_hangup();
                Flow::Yield(
                    Action::Dial(req),
                    Pending::Dial {
                        digit_context,
                        continue_g,
                    },
                )
            }
            Err(e) => {
                if matches!(e, DialError::InvalidArgs(_)) {
                    self.chan.vars.set("DIALSTATUS", "INVALIDARGS");
                }
                self.warn(e.to_string());
                Flow::Stop(Outcome::AppError)
            }
        }
    }

    /// §13.2 variables and §13.3 flow.
    pub(super) fn apply_dial_result(
        &mut self,
        r: DialResult,
        digit_context: &str,
        continue_g: bool,
        _env: &mut dyn Env,
    ) -> Flow {
        let v = &mut self.chan.vars;
        v.set("DIALSTATUS", r.status.as_str());
        v.set("DIALEDTIME", &(r.dialed_time as u64).to_string());
        v.set(
            "DIALEDTIME_MS",
            &((r.dialed_time * 1000.0) as u64).to_string(),
        );
        if r.status == DialStatus::Answer {
            v.set("ANSWEREDTIME", &(r.answered_time as u64).to_string());
            v.set(
                "ANSWEREDTIME_MS",
                &((r.answered_time * 1000.0) as u64).to_string(),
            );
        }
        if let Some(n) = &r.peer_number {
            v.set("DIALEDPEERNUMBER", n);
        }
        if let Some(n) = &r.peer_name {
            v.set("DIALEDPEERNAME", n);
        }
        if let Some(t) = r.ring_time {
            v.set("RINGTIME", &(t as u64).to_string());
            v.set("RINGTIME_MS", &((t * 1000.0) as u64).to_string());
        }
        if let Some(t) = r.progress_time {
            v.set("PROGRESSTIME", &(t as u64).to_string());
            v.set("PROGRESSTIME_MS", &((t * 1000.0) as u64).to_string());
        }
        // `d`: a digit the caller pressed while it rang leaves for that extension.
        if r.status != DialStatus::Answer
            && let Some(d) = r.digit
        {
            self.chan.set_position(digit_context, &d.to_string(), 1);
            return Flow::Jumped;
        }
        match r.status {
            DialStatus::Answer => {
                self.chan.answered = true;
                self.chan.hangup_cause = Some(NORMAL_CLEARING);
                if continue_g && !r.caller_hung_up {
                    Flow::Continue
                } else {
                    Flow::Stop(Outcome::Hangup)
                }
            }
            DialStatus::Cancel => Flow::Stop(Outcome::Hangup),
            DialStatus::InvalidArgs => Flow::Stop(Outcome::AppError),
            _ => {
                if let Some(c) = r.cause {
                    self.chan.hangup_cause = Some(c);
                }
                if let Some(d) = r.digit {
                    self.chan.set_position(digit_context, &d.to_string(), 1);
                    return Flow::Jumped;
                }
                Flow::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_timeout_options() {
        let (r, w) = parse_dial("PJSIP/1001&SIP/1002@host & PEER/2001,20,rtTg").unwrap();
        assert!(w.is_empty());
        let t: Vec<String> = r.targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(t, ["SIP/1001", "SIP/1002@host", "PEER/2001"]);
        assert_eq!(r.timeout, Some(20.0));
        assert!(r.options.ringback() && r.options.callee_transfer());
        assert!(r.options.caller_transfer() && r.options.continue_on_callee_hangup());
    }

    #[test]
    fn option_arguments_and_errors() {
        let (r, _) = parse_dial("SIP/1,30^5,L(60000:30000)m(jazz)").unwrap();
        assert_eq!(r.progress_timeout, Some(5.0));
        assert_eq!(r.options.arg('m'), Some("jazz"));
        assert!(matches!(
            parse_dial("SIP/1,,S(0)"),
            Err(DialError::InvalidArgs(_))
        ));
        assert!(matches!(
            parse_dial("1001"),
            Err(DialError::NoTechnology(_))
        ));
        assert!(matches!(parse_dial(""), Err(DialError::Empty)));
        let (_, w) = parse_dial("SIP/1,,y").unwrap();
        assert_eq!(w.len(), 1);
    }
}
