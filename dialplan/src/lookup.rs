//! The search of §5.2: a context's own extensions in sort order with priority
//! fallback to the next matching extension, then its includes depth-first in the
//! order written, each context visited at most once per lookup.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::model::{Context, Dialplan, Extension, Priority};
use crate::pattern::cid_matches;

/// Asterisk's limit on contexts visited by one lookup.
const MAX_VISITED: usize = 512;

/// What a lookup looks for in the matching extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want<'a> {
    Priority(i32),
    Label(&'a str),
}

/// The clock a lookup uses for timed includes. `None` in a lookup means "every
/// include applies" (used by the linter).
#[derive(Debug, Clone, Copy)]
pub struct When<'a> {
    pub now: Timestamp,
    pub tz: &'a TimeZone,
}

/// A priority found by a lookup.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// The context that defines the extension (may be an included one; the channel
    /// still reports the context the search began in, §5.3).
    pub context: &'a Context,
    pub extension: &'a Extension,
    pub priority: &'a Priority,
}

impl Dialplan {
    /// Finds `want` for `exten` dialed in `context` by a caller whose number is
    /// `caller` (§5.2).
    pub fn find<'a>(
        &'a self,
        context: &str,
        exten: &str,
        want: Want<'_>,
        caller: Option<&str>,
        when: Option<When<'_>>,
    ) -> Option<Found<'a>> {
        let mut visited: Vec<&str> = Vec::new();
        let mut buf = Vec::new();
        self.find_in(context, exten, want, caller, when, &mut visited, &mut buf)
    }

    #[allow(clippy::too_many_arguments)]
    fn find_in<'a>(
        &'a self,
        context: &str,
        exten: &str,
        want: Want<'_>,
        caller: Option<&str>,
        when: Option<When<'_>>,
        visited: &mut Vec<&'a str>,
        buf: &mut Vec<u32>,
    ) -> Option<Found<'a>> {
        if visited.len() >= MAX_VISITED || visited.contains(&context) {
            return None;
        }
        let ctx = self.contexts.get(context)?;
        ctx.index.candidates(exten, buf);
        for &rank in buf.iter() {
            let e = &ctx.extensions[rank as usize];
            if let Some(cm) = &e.cid_matcher
                && !cid_matches(cm, caller)
            {
                continue;
            }
            let p = match want {
                Want::Priority(n) => e.priority(n),
                Want::Label(l) => e.label(l),
            };
            if let Some(priority) = p {
                return Some(Found {
                    context: ctx,
                    extension: e,
                    priority,
                });
            }
        }
        visited.push(ctx.name.as_str());
        for inc in &ctx.includes {
            if let (Some(t), Some(w)) = (&inc.timing, when)
                && !t.matches(w.now, w.tz)
            {
                continue;
            }
            if let Some(f) = self.find_in(&inc.context, exten, want, caller, when, visited, buf) {
                return Some(f);
            }
        }
        None
    }

    /// "An extension exists if priority 1 is found" (§5.2).
    pub fn exists(
        &self,
        context: &str,
        exten: &str,
        caller: Option<&str>,
        when: Option<When<'_>>,
    ) -> bool {
        self.find(context, exten, Want::Priority(1), caller, when)
            .is_some()
    }

    /// Whether some extension reachable from `context` could match a longer string
    /// that starts with `exten` (digit collection, §6.5).
    pub fn match_more(
        &self,
        context: &str,
        exten: &str,
        caller: Option<&str>,
        when: Option<When<'_>>,
    ) -> bool {
        let mut visited = Vec::new();
        self.fit_in(context, exten, caller, when, &mut visited, false)
    }

    /// Whether `exten` matches now or could match with more digits.
    pub fn can_match(
        &self,
        context: &str,
        exten: &str,
        caller: Option<&str>,
        when: Option<When<'_>>,
    ) -> bool {
        let mut visited = Vec::new();
        self.fit_in(context, exten, caller, when, &mut visited, true)
    }

    fn fit_in<'a>(
        &'a self,
        context: &str,
        exten: &str,
        caller: Option<&str>,
        when: Option<When<'_>>,
        visited: &mut Vec<&'a str>,
        exact_too: bool,
    ) -> bool {
        if visited.len() >= MAX_VISITED || visited.contains(&context) {
            return false;
        }
        let Some(ctx) = self.contexts.get(context) else {
            return false;
        };
        // Digit collection is interactive and rare; a linear scan is fine here.
        let hit = ctx.extensions.iter().any(|e| {
            let f = e.matcher.fit(exten);
            (f.more || (exact_too && f.exact))
                && e.cid_matcher
                    .as_ref()
                    .is_none_or(|cm| cid_matches(cm, caller))
        });
        if hit {
            return true;
        }
        visited.push(ctx.name.as_str());
        ctx.includes.iter().any(|inc| {
            let active = match (&inc.timing, when) {
                (Some(t), Some(w)) => t.matches(w.now, w.tz),
                _ => true,
            };
            active && self.fit_in(&inc.context, exten, caller, when, visited, exact_too)
        })
    }
}
