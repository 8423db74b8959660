//! Findings of `softswitch dialplan check` beyond what loading reports (issue 3). The
//! server does not refuse a plan for these: Asterisk loads such files and fails the
//! call at run time.
//!
//! Errors: unknown application, unknown function in `${...}`, bad pattern, a static
//! Goto/GotoIf/Gosub/GosubIf target that does not exist. Warnings: an extension
//! without priority 1, priorities unreachable because of a gap.

use crate::appnames::{FUNCTIONS, canonical_app, is_function};
use crate::args::split_once_grouped;
use crate::diag::{Diagnostic, Pos, Severity};
use crate::lookup::Want;
use crate::model::{Context, Dialplan, Extension, Priority};
use crate::pattern::{NameMatcher, PatternIssue};

/// Lints a loaded plan. Diagnostics come sorted by file and position.
pub fn lint(plan: &Dialplan) -> Vec<Diagnostic> {
    let mut l = Linter {
        plan,
        out: Vec::new(),
    };
    for ctx in plan.contexts() {
        for ext in &ctx.extensions {
            l.extension(ctx, ext);
        }
    }
    l.out
        .sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    l.out
}

struct Linter<'a> {
    plan: &'a Dialplan,
    out: Vec<Diagnostic>,
}

fn shift(pos: Pos, chars: usize) -> Pos {
    Pos {
        col: pos.col + chars as u32,
        ..pos
    }
}

impl Linter<'_> {
    fn push(&mut self, sev: Severity, pos: Pos, msg: String) {
        self.out.push(self.plan.sources().diag(sev, pos, msg));
    }

    fn extension(&mut self, ctx: &Context, ext: &Extension) {
        let where_ = format!("'{}' in context '{}'", ext.display_name(), ctx.name);
        for (text, is_cid) in [(Some(ext.name.as_str()), false), (ext.cid.as_deref(), true)] {
            let Some(text) = text else { continue };
            let (_, issues) = NameMatcher::new(text);
            for issue in issues {
                let what = if is_cid {
                    "caller-id pattern"
                } else {
                    "pattern"
                };
                let msg = match issue {
                    PatternIssue::Unterminated { .. } => {
                        format!("bad {what} '{text}': '[' without ']' never matches")
                    }
                    PatternIssue::EmptySet { .. } => {
                        format!("bad {what} '{text}': empty character set '[]' is ignored")
                    }
                    PatternIssue::ReversedRange { .. } => {
                        format!(
                            "bad {what} '{text}': a range like '[9-1]' is backwards and matches nothing"
                        )
                    }
                };
                self.push(Severity::Error, ext.pos, msg);
            }
        }
        if let Some((&first, p)) = ext.priorities.iter().next()
            && first != 1
        {
            self.push(
                Severity::Warning,
                p.pos,
                format!("extension {where_} has no priority 1: calls to it never start here"),
            );
        }
        let mut prev: Option<i32> = None;
        for (&n, p) in &ext.priorities {
            if let Some(pr) = prev
                && n != pr + 1
                && p.label.is_none()
            {
                self.push(
                    Severity::Warning,
                    p.pos,
                    format!(
                        "priority {n} of {where_} is unreachable: there is no priority {} (execution stops after {pr})",
                        n - 1
                    ),
                );
            }
            prev = Some(n);
            self.priority(ctx, ext, p);
        }
    }

    fn priority(&mut self, ctx: &Context, ext: &Extension, p: &Priority) {
        let Some(app) = canonical_app(&p.app) else {
            let hint = suggest(&p.app)
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            let msg = if p.app.is_empty() {
                "missing application name".to_string()
            } else {
                format!("unknown application '{}'{hint}", p.app)
            };
            self.push(Severity::Error, p.app_pos, msg);
            return;
        };
        self.functions(p);
        match app {
            "Goto" => self.target(ctx, ext, p, &p.data, false),
            "GotoIf" | "GotoIfTime" => {
                if let Some((_, rest)) = p.data.split_once('?') {
                    let (t, f) = match rest.split_once(':') {
                        Some((t, f)) => (t, Some(f)),
                        None => (rest, None),
                    };
                    for b in std::iter::once(t).chain(f) {
                        self.target(ctx, ext, p, b, false);
                    }
                }
            }
            "Gosub" => self.target(ctx, ext, p, strip_args(&p.data), true),
            "GosubIf" => {
                let (_, rest) = split_once_grouped(&p.data, '?');
                if let Some(rest) = rest {
                    let (t, f) = split_once_grouped(&rest, ':');
                    for b in std::iter::once(t).chain(f) {
                        self.target(ctx, ext, p, strip_args(&b), true);
                    }
                }
            }
            _ => {}
        }
    }

    /// Every `${NAME(` with a literal name, and `Set(NAME(...)=...)` writes.
    fn functions(&mut self, p: &Priority) {
        let data = &p.data;
        let mut names: Vec<(usize, String)> = Vec::new();
        let mut from = 0;
        while let Some(i) = data[from..].find("${") {
            let start = from + i + 2;
            let name: String = data[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && data[start + name.len()..].starts_with('(') {
                names.push((start, name));
            }
            from = start;
        }
        if canonical_app(&p.app) == Some("Set")
            && let Some((lhs, _)) = data.split_once('=')
            && lhs.trim_end().ends_with(')')
            && let Some(open) = lhs.find('(')
            && !lhs[..open].contains('$')
        {
            names.push((0, lhs[..open].trim().to_string()));
        }
        for (at, name) in names {
            if is_function(&name) {
                continue;
            }
            let hint = FUNCTIONS
                .iter()
                .find(|f| f.eq_ignore_ascii_case(&name))
                .map(|f| format!("; function names are case-sensitive: '{f}'"))
                .unwrap_or_default();
            let pos = shift(p.data_pos, data[..at].chars().count());
            self.push(
                Severity::Error,
                pos,
                format!("unknown function '{name}'{hint}"),
            );
        }
    }

    /// Checks a static Goto/Gosub target (one with no `$` in it).
    fn target(&mut self, ctx: &Context, ext: &Extension, p: &Priority, text: &str, gosub: bool) {
        let text = text.trim();
        if text.is_empty() || text.contains('$') {
            return;
        }
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let (c, e, prio) = match parts.as_slice() {
            [pr] => (None, None, *pr),
            [e, pr] => (None, Some(*e), *pr),
            [c, e, pr, ..] => (Some(*c), Some(*e), *pr),
            [] => return,
        };
        if prio.starts_with('+') || prio.starts_with('-') {
            return;
        }
        let app = if gosub { "Gosub" } else { "Goto" };
        let ctx_name = c.unwrap_or(&ctx.name);
        if self.plan.context(ctx_name).is_none() {
            self.push(
                Severity::Error,
                p.data_pos,
                format!("{app} target context '{ctx_name}' does not exist"),
            );
            return;
        }
        let want = match prio.parse::<i32>() {
            Ok(n) => Want::Priority(n),
            Err(_) => Want::Label(prio),
        };
        let exten = match e {
            Some(e) => e.to_string(),
            None if !ext.matcher.is_pattern() => ext.name.clone(),
            None => {
                // The dialed number is unknown for a pattern: the label must at least
                // exist in this extension or somewhere in the context.
                if let Want::Label(l) = want
                    && ext.label(l).is_none()
                    && !ctx.extensions.iter().any(|x| x.label(l).is_some())
                {
                    self.push(
                        Severity::Error,
                        p.data_pos,
                        format!(
                            "{app} to label '{l}', which does not exist in context '{}'",
                            ctx.name
                        ),
                    );
                }
                return;
            }
        };
        let found = self
            .plan
            .find(
                ctx_name,
                &exten,
                want,
                ext.cid.as_deref().filter(|c| !c.starts_with('_')),
                None,
            )
            .is_some()
            || self.plan.find(ctx_name, &exten, want, None, None).is_some();
        if !found {
            let msg = match want {
                Want::Label(l) => {
                    format!("{app} to label '{l}', which does not exist in {exten}@{ctx_name}")
                }
                Want::Priority(n) => {
                    format!("{app} to {exten}@{ctx_name}:{n}, which does not exist")
                }
            };
            self.push(Severity::Error, p.data_pos, msg);
        }
    }
}

/// `target(args)` → `target`.
fn strip_args(s: &str) -> &str {
    match s.find('(') {
        Some(i) => &s[..i],
        None => s,
    }
}

/// The known application closest to `name` (edit distance ≤ 2).
fn suggest(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    crate::appnames::INTERNAL
        .iter()
        .chain(crate::appnames::EXTERNAL)
        .map(|a| (distance(&n, &a.to_ascii_lowercase()), *a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Edit distance counting a swap of neighbours as one edit (`Dail` → `Dial`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("Dail"), Some("Dial"));
        assert_eq!(suggest("playbak"), Some("Playback"));
        assert_eq!(suggest("Frobnicate"), None);
    }
}
