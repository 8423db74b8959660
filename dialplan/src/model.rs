//! The loaded, immutable dialplan (§1). A `Dialplan` is built once by the loader and
//! shared through `Arc` by every call; a reload builds a new one.

use std::collections::{BTreeMap, HashMap};

use crate::diag::{Pos, SourceMap};
use crate::index::ContextIndex;
use crate::pattern::NameMatcher;
use crate::timespec::TimeSpec;

/// `[general]` options that change behaviour (§3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Default `yes`: running out of priorities hangs up (§6.4).
    pub autofallthrough: bool,
    /// Default `no`: on reload keep globals created at run time.
    pub clearglobalvars: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            autofallthrough: true,
            clearglobalvars: false,
        }
    }
}

/// One executable step of an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priority {
    pub number: i32,
    pub label: Option<String>,
    /// Application name as written (looked up case-insensitively when run).
    pub app: String,
    /// Raw data, substituted only when the priority runs (§8.1).
    pub data: String,
    /// Where the line starts.
    pub pos: Pos,
    /// Where the application name starts.
    pub app_pos: Pos,
    /// Where the data starts.
    pub data_pos: Pos,
}

/// A hint (`exten => 100,hint,SIP/100`): kept for `show`, never executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub device: String,
    pub pos: Pos,
}

/// An extension: a name (literal or pattern), an optional caller-id match and its
/// priorities.
#[derive(Debug, Clone)]
pub struct Extension {
    /// The name as stored (whitespace removed, §3.3 step 5).
    pub name: String,
    pub matcher: NameMatcher,
    /// Normalised caller-id text, if the extension was written `NAME/CID`.
    pub cid: Option<String>,
    pub cid_matcher: Option<NameMatcher>,
    pub priorities: BTreeMap<i32, Priority>,
    pub labels: HashMap<String, i32>,
    pub hint: Option<Hint>,
    pub pos: Pos,
}

impl Extension {
    pub fn priority(&self, n: i32) -> Option<&Priority> {
        self.priorities.get(&n)
    }

    pub fn label(&self, l: &str) -> Option<&Priority> {
        self.labels.get(l).and_then(|n| self.priorities.get(n))
    }

    /// `NAME` or `NAME/CID`, as `dialplan show` prints it.
    pub fn display_name(&self) -> String {
        match &self.cid {
            Some(c) => format!("{}/{}", self.name, c),
            None => self.name.clone(),
        }
    }
}

/// `include => ctx[,timespec]` (§5.4).
#[derive(Debug, Clone)]
pub struct Include {
    pub context: String,
    /// The text after the context name, for display.
    pub timing_text: Option<String>,
    pub timing: Option<TimeSpec>,
    pub pos: Pos,
}

/// A context: extensions in Asterisk's sort order (§5.1) plus includes in the order
/// written.
#[derive(Debug, Clone)]
pub struct Context {
    pub name: String,
    pub pos: Pos,
    /// Sorted: the position in this vector is the rank used by every lookup.
    pub extensions: Vec<Extension>,
    pub includes: Vec<Include>,
    pub(crate) index: ContextIndex,
}

/// The whole plan. Send + Sync; wrap it in `Arc` to share it between calls.
#[derive(Debug, Clone, Default)]
pub struct Dialplan {
    pub(crate) contexts: HashMap<String, Context>,
    /// Context names in the order they first appear in the files.
    pub(crate) order: Vec<String>,
    /// `[globals]` after load-time substitution, in file order.
    pub(crate) globals: Vec<(String, String)>,
    pub(crate) options: Options,
    pub(crate) sources: SourceMap,
}

impl Dialplan {
    pub fn context(&self, name: &str) -> Option<&Context> {
        self.contexts.get(name)
    }

    /// Contexts in file order.
    pub fn contexts(&self) -> impl Iterator<Item = &Context> {
        self.order.iter().filter_map(|n| self.contexts.get(n))
    }

    /// The `[globals]` of the file, in order, after load-time substitution.
    pub fn globals(&self) -> &[(String, String)] {
        &self.globals
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// File names and lines, for rendering diagnostics about this plan.
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialplan_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Dialplan>();
        check::<std::sync::Arc<Dialplan>>();
    }

    #[test]
    fn default_options_follow_asterisk() {
        let o = Options::default();
        assert!(o.autofallthrough);
        assert!(!o.clearglobalvars);
    }
}
