//! Jumps, subroutines and loops (§6.3, §12.4, §12.5).

use crate::args::{Split, split_args, split_once_grouped};
use crate::env::Env;
use crate::lookup::{Want, When};

use super::channel::Frame;
use super::functions::time_matches;
use super::truth::check_condition;
use super::{Flow, Interpreter, Outcome};

/// The priority part of a Goto target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrioSpec {
    Absolute(i32),
    Relative(i32),
    Label(String),
}

/// `[[context,]exten,]priority` with every part trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub context: Option<String>,
    pub exten: Option<String>,
    pub priority: PrioSpec,
}

/// Parses Goto syntax. The priority is a number only when the whole field is an
/// integer (`+N`/`-N` are relative); anything else is a label (§12.4).
pub(crate) fn parse_target(text: &str) -> Target {
    let parts: Vec<String> = text.split(',').map(|p| p.trim().to_string()).collect();
    let (context, exten, prio) = match parts.len() {
        1 => (None, None, parts[0].clone()),
        2 => (None, Some(parts[0].clone()), parts[1].clone()),
        _ => (
            Some(parts[0].clone()),
            Some(parts[1].clone()),
            parts[2..].join(","),
        ),
    };
    let priority = match prio.parse::<i32>() {
        Ok(n) if prio.starts_with('+') || prio.starts_with('-') => PrioSpec::Relative(n),
        Ok(n) => PrioSpec::Absolute(n),
        Err(_) => PrioSpec::Label(prio),
    };
    Target {
        context: context.filter(|c| !c.is_empty()),
        exten: exten.filter(|e| !e.is_empty()),
        priority,
    }
}

impl Interpreter {
    /// Resolves a target to (context, exten, priority). Labels are looked up now with
    /// the current caller id (§12.4); with `must_exist` the numeric target is checked
    /// too (Gosub).
    fn resolve(
        &self,
        t: &Target,
        must_exist: bool,
        env: &dyn Env,
    ) -> Result<(String, String, i32), String> {
        let ctx = t
            .context
            .clone()
            .unwrap_or_else(|| self.chan.context.clone());
        let exten = t.exten.clone().unwrap_or_else(|| self.chan.exten.clone());
        let tz = env.time_zone();
        let when = When {
            now: env.now(),
            tz: &tz,
        };
        let prio = match &t.priority {
            PrioSpec::Absolute(n) => *n,
            PrioSpec::Relative(n) => self.chan.priority + n,
            PrioSpec::Label(l) => {
                match self
                    .plan
                    .find(&ctx, &exten, Want::Label(l), self.chan.cid(), Some(when))
                {
                    Some(f) => f.priority.number,
                    None => {
                        return Err(format!(
                            "priority '{l}' must be a number > 0 or a valid label in {exten}@{ctx}"
                        ));
                    }
                }
            }
        };
        if prio < 1 {
            return Err(format!("priority {prio} must be a number > 0"));
        }
        if must_exist
            && self
                .plan
                .find(
                    &ctx,
                    &exten,
                    Want::Priority(prio),
                    self.chan.cid(),
                    Some(when),
                )
                .is_none()
        {
            return Err(format!("destination {exten}@{ctx}:{prio} does not exist"));
        }
        Ok((ctx, exten, prio))
    }

    /// Goto: a numeric target is not checked (§12.4); an unknown label fails the call.
    pub(super) fn goto(&mut self, text: &str, env: &dyn Env) -> Flow {
        match self.resolve(&parse_target(text), false, env) {
            Ok((c, e, p)) => {
                self.chan.set_position(&c, &e, p);
                Flow::Jumped
            }
            Err(msg) => {
                self.warn(format!("Goto({text}): {msg}"));
                Flow::Stop(Outcome::AppError)
            }
        }
    }

    pub(super) fn app_goto(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        if data.trim().is_empty() {
            self.warn("Goto requires an argument ([[context,]extension,]priority)".into());
            return Flow::Stop(Outcome::AppError);
        }
        self.goto(data, env)
    }

    /// GotoIf splits at the first `?` and the first `:` with no grouping (§9).
    fn branches(data: &str) -> Option<(String, String, Option<String>)> {
        let (cond, rest) = data.split_once('?')?;
        let (t, f) = match rest.split_once(':') {
            Some((t, f)) => (t.to_string(), Some(f.to_string())),
            None => (rest.to_string(), None),
        };
        Some((cond.to_string(), t, f))
    }

    fn take_branch(&mut self, hit: bool, t: String, f: Option<String>, env: &dyn Env) -> Flow {
        let chosen = if hit { Some(t) } else { f };
        match chosen.filter(|c| !c.trim().is_empty()) {
            Some(c) => self.goto(&c, env),
            None => Flow::Continue,
        }
    }

    pub(super) fn app_goto_if(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        let Some((cond, t, f)) = Self::branches(data) else {
            self.warn(format!(
                "GotoIf requires 'condition?[true][:false]', got '{data}'"
            ));
            return Flow::Continue;
        };
        self.take_branch(check_condition(&cond), t, f, env)
    }

    pub(super) fn app_goto_if_time(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        let Some((spec, t, f)) = Self::branches(data) else {
            self.warn(format!(
                "GotoIfTime requires 'timespec?[true][:false]', got '{data}'"
            ));
            return Flow::Continue;
        };
        let hit = self.with_scope(env, |s| time_matches(s, &spec));
        self.take_branch(hit, t, f, env)
    }

    /// Gosub: checks the target, pushes a frame and sets ARGn/ARGC as locals (§12.5).
    pub(super) fn gosub(&mut self, text: &str, env: &mut dyn Env) -> Flow {
        let (target, args) = match text.find('(') {
            Some(open) => {
                let rest = &text[open + 1..];
                let inner = rest.rfind(')').map(|c| &rest[..c]).unwrap_or(rest);
                (&text[..open], split_args(inner, ',', Split::Raw))
            }
            None => (text, Vec::new()),
        };
        let args: Vec<String> = args.into_iter().take(100).collect();
        let (c, e, p) = match self.resolve(&parse_target(target), true, env) {
            Ok(dest) => dest,
            Err(msg) => {
                self.warn(format!("Gosub({text}): {msg}"));
                return Flow::Stop(Outcome::AppError);
            }
        };
        let caller_argc = self.chan.frames.last().map(|f| f.argc).unwrap_or(0);
        self.chan.frames.push(Frame {
            ret_context: self.chan.context.clone(),
            ret_exten: self.chan.exten.clone(),
            ret_priority: self.chan.priority + 1,
            saved: Vec::new(),
            argc: args.len(),
        });
        self.with_scope(env, |s| {
            for i in 1..=args.len().max(caller_argc) {
                let v = args.get(i - 1).map(String::as_str).unwrap_or("");
                s.set_local(&format!("ARG{i}"), v);
            }
            s.set_local("ARGC", &args.len().to_string());
        });
        self.chan.set_position(&c, &e, p);
        Flow::Jumped
    }

    pub(super) fn app_gosub(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        if data.trim().is_empty() {
            self.warn("Gosub requires an argument".into());
            return Flow::Stop(Outcome::AppError);
        }
        self.gosub(data, env)
    }

    pub(super) fn app_gosub_if(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        let (cond, rest) = split_once_grouped(data, '?');
        let Some(rest) = rest else {
            self.warn(format!(
                "GosubIf requires 'condition?true[:false]', got '{data}'"
            ));
            return Flow::Continue;
        };
        let (t, f) = split_once_grouped(&rest, ':');
        let chosen = if check_condition(&cond) { Some(t) } else { f };
        match chosen.filter(|c| !c.trim().is_empty()) {
            Some(c) => self.gosub(&c, env),
            None => Flow::Continue,
        }
    }

    /// Pops the top frame and restores what it hid. False when the stack is empty.
    pub(super) fn pop_frame(&mut self) -> bool {
        let Some(frame) = self.chan.frames.pop() else {
            return false;
        };
        for (name, old) in frame.saved.into_iter().rev() {
            match old {
                Some((v, inherit)) => self.chan.vars.set_raw(&name, &v, inherit),
                None => self.chan.vars.remove(&name),
            }
        }
        true
    }

    pub(super) fn app_return(&mut self, data: &str) -> Flow {
        let Some(frame) = self.chan.frames.last().cloned() else {
            self.warn("Return without Gosub: the stack is empty".into());
            return Flow::Stop(Outcome::AppError);
        };
        self.pop_frame();
        self.chan.vars.set("GOSUB_RETVAL", data);
        self.chan
            .set_position(&frame.ret_context, &frame.ret_exten, frame.ret_priority);
        Flow::Jumped
    }

    /// Lower-cased application name at `priority` of the current extension.
    fn app_at(&self, priority: i32, env: &dyn Env) -> Option<String> {
        let tz = env.time_zone();
        let when = When {
            now: env.now(),
            tz: &tz,
        };
        self.plan
            .find(
                &self.chan.context,
                &self.chan.exten,
                Want::Priority(priority),
                self.chan.cid(),
                Some(when),
            )
            .map(|f| f.priority.app.trim().to_ascii_lowercase())
    }

    /// The EndWhile matching the While at `from`, counting nested loops.
    fn end_while_after(&self, from: i32, env: &dyn Env) -> Option<i32> {
        let mut depth = 0;
        let mut p = from + 1;
        loop {
            match self.app_at(p, env)?.as_str() {
                "while" => depth += 1,
                "endwhile" if depth == 0 => return Some(p),
                "endwhile" => depth -= 1,
                _ => {}
            }
            p += 1;
        }
    }

    /// The While enclosing priority `from`.
    fn while_before(&self, from: i32, env: &dyn Env) -> Option<i32> {
        let mut depth = 0;
        let mut p = from - 1;
        while p >= 1 {
            match self.app_at(p, env).as_deref() {
                Some("endwhile") => depth += 1,
                Some("while") if depth == 0 => return Some(p),
                Some("while") => depth -= 1,
                _ => {}
            }
            p -= 1;
        }
        None
    }

    fn loop_error(&mut self, what: &str) -> Flow {
        let (c, e, p) = (
            self.chan.context.clone(),
            self.chan.exten.clone(),
            self.chan.priority,
        );
        self.warn(format!("{what} at {e}@{c}:{p}"));
        Flow::Stop(Outcome::AppError)
    }

    pub(super) fn app_while(&mut self, data: &str, env: &mut dyn Env) -> Flow {
        if check_condition(data) {
            return Flow::Continue;
        }
        match self.end_while_after(self.chan.priority, env) {
            Some(end) => {
                self.chan.priority = end + 1;
                Flow::Jumped
            }
            None => self.loop_error("While without a matching EndWhile"),
        }
    }

    pub(super) fn app_end_while(&mut self, env: &mut dyn Env) -> Flow {
        match self.while_before(self.chan.priority, env) {
            Some(w) => {
                self.chan.priority = w;
                Flow::Jumped
            }
            None => self.loop_error("EndWhile without a matching While"),
        }
    }

    pub(super) fn app_exit_while(&mut self, env: &mut dyn Env) -> Flow {
        let end = self
            .while_before(self.chan.priority, env)
            .and_then(|w| self.end_while_after(w, env));
        match end {
            Some(e) => {
                self.chan.priority = e + 1;
                Flow::Jumped
            }
            None => self.loop_error("ExitWhile outside a While loop"),
        }
    }

    pub(super) fn app_continue_while(&mut self, env: &mut dyn Env) -> Flow {
        match self.while_before(self.chan.priority, env) {
            Some(w) => {
                self.chan.priority = w;
                Flow::Jumped
            }
            None => self.loop_error("ContinueWhile outside a While loop"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goto_targets() {
        assert_eq!(
            parse_target("2"),
            Target {
                context: None,
                exten: None,
                priority: PrioSpec::Absolute(2)
            }
        );
        assert_eq!(parse_target("+2").priority, PrioSpec::Relative(2));
        assert_eq!(parse_target("-1").priority, PrioSpec::Relative(-1));
        let t = parse_target("ctx, 100 ,start");
        assert_eq!(t.context.as_deref(), Some("ctx"));
        assert_eq!(t.exten.as_deref(), Some("100"));
        assert_eq!(t.priority, PrioSpec::Label("start".into()));
        assert_eq!(parse_target("1x").priority, PrioSpec::Label("1x".into()));
    }
}
