//! The state of one call as the dialplan sees it (§1 "channel position", §8) and the
//! substitution scope over it.

use jiff::Timestamp;

use crate::env::Env;
use crate::subst::{Resolver, substitute};
use crate::vars::{Inherit, VarStore, split_prefix};

use super::functions;

/// A Gosub frame (§12.5): where Return goes and the variables this frame hid.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub ret_context: String,
    pub ret_exten: String,
    pub ret_priority: i32,
    /// Previous values of frame-local names (ARGn, ARGC, LOCAL()), restored on Return.
    pub saved: Vec<(String, Option<(String, Inherit)>)>,
    pub argc: usize,
}

impl Frame {
    /// Remembers the current value of `name` the first time this frame shadows it.
    pub fn save(&mut self, vars: &VarStore, name: &str) {
        if !self.saved.iter().any(|(n, _)| n == name) {
            self.saved.push((name.to_string(), vars.entry(name)));
        }
    }
}

/// What `EXCEPTION()` reads (§7.3).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExceptionInfo {
    pub reason: String,
    pub context: String,
    pub exten: String,
    pub priority: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct Chan {
    pub context: String,
    pub exten: String,
    pub priority: i32,
    pub caller_num: Option<String>,
    pub caller_name: Option<String>,
    /// Caller ID presentation (`CALLERID(pres)`): `allowed_not_screened` unless
    /// the dialplan restricts it (`prohib`, CLIR).
    pub caller_pres: String,
    pub vars: VarStore,
    pub name: String,
    pub uniqueid: String,
    pub hangup_cause: Option<u16>,
    pub answered: bool,
    pub hung_up: bool,
    pub frames: Vec<Frame>,
    pub exception: Option<ExceptionInfo>,
    /// Seconds (§6.5 default 5).
    pub digit_timeout: f64,
    /// Seconds (§6.4 default 10).
    pub response_timeout: f64,
    pub absolute_deadline: Option<Timestamp>,
}

impl Chan {
    /// `caller_num` as used for caller-id matching: absent when empty (§4.5).
    pub fn cid(&self) -> Option<&str> {
        self.caller_num.as_deref().filter(|s| !s.is_empty())
    }

    pub fn set_position(&mut self, context: &str, exten: &str, priority: i32) {
        self.context = context.to_string();
        self.exten = exten.to_string();
        self.priority = priority;
    }
}

/// Substitution scope: the channel plus the environment for one step.
pub(crate) struct Scope<'a> {
    pub chan: &'a mut Chan,
    pub env: &'a mut dyn Env,
    pub warnings: &'a mut Vec<String>,
}

impl Scope<'_> {
    pub fn subst(&mut self, text: &str) -> String {
        substitute(text, self)
    }

    /// `Set(name=value)`: a function write when `name` ends with `)` (§8.4).
    pub fn set(&mut self, name: &str, value: &str) {
        if name.ends_with(')')
            && let Some(open) = name.find('(')
        {
            let fname = &name[..open];
            let args = &name[open + 1..name.len() - 1];
            if let Err(e) = functions::write(self, fname, args, value) {
                self.warnings.push(e);
            }
            return;
        }
        if name.contains(char::is_whitespace) {
            self.warnings.push(format!(
                "variable name '{name}' contains whitespace (Asterisk keeps it as written)"
            ));
        }
        self.chan.vars.set(name, value);
    }

    /// Sets a variable the core owns (DIALSTATUS, ...), never a function write.
    pub fn set_plain(&mut self, name: &str, value: &str) {
        self.chan.vars.set(name, value);
    }

    /// Frame-local write used by LOCAL() and Gosub arguments.
    pub fn set_local(&mut self, name: &str, value: &str) {
        let (base, _) = split_prefix(name);
        if let Some(f) = self.chan.frames.last_mut() {
            f.save(&self.chan.vars, base);
        }
        self.chan.vars.set(name, value);
    }

    fn builtin(&mut self, name: &str) -> Option<String> {
        let c = &self.chan;
        Some(match name {
            "EXTEN" => c.exten.clone(),
            "CONTEXT" => c.context.clone(),
            "PRIORITY" => c.priority.to_string(),
            "CHANNEL" => c.name.clone(),
            "UNIQUEID" => c.uniqueid.clone(),
            "HANGUPCAUSE" => c.hangup_cause.unwrap_or(0).to_string(),
            "CALLINGPRES" => "0".into(),
            "CALLINGANI2" | "CALLINGTON" | "CALLINGTNS" => "0".into(),
            "EPOCH" => self.env.now().as_second().to_string(),
            "SYSTEMNAME" | "ENTITYID" => String::new(),
            _ => return None,
        })
    }
}

impl Resolver for Scope<'_> {
    fn variable(&mut self, name: &str) -> Option<String> {
        if let Some(v) = self.builtin(name) {
            return Some(v);
        }
        if let Some(v) = self.chan.vars.get(name) {
            return Some(v.to_string());
        }
        self.env.globals().get(name)
    }

    fn function(&mut self, name: &str, args: &str) -> Option<String> {
        functions::read(self, name, args)
    }

    fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }
}
