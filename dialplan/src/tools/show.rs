//! `softswitch dialplan show [CONTEXT] [--exten N]`, in the shape of Asterisk's
//! `dialplan show`: extensions in the order they are tried, hints, includes.

use std::io::Write;
use std::path::Path;

use super::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::model::{Context, Dialplan, Extension};

/// Loads `path` and shows it (see [`show_plan`]).
pub fn show(path: &Path, context: Option<&str>, exten: Option<&str>, out: &mut dyn Write) -> i32 {
    match Dialplan::load(path) {
        Ok(l) => show_plan(&l.plan, context, exten, out),
        Err(f) => {
            for d in &f.diagnostics {
                let _ = write!(out, "{d}");
            }
            let _ = writeln!(out, "error: {} was not loaded", path.display());
            EXIT_ERRORS
        }
    }
}

/// Prints `plan` (or one context). With `exten`, only extensions matching that number
/// are listed, followed by the matching extensions of included contexts in search
/// order (§5.4), which is what a call to that number would consider.
pub fn show_plan(
    plan: &Dialplan,
    context: Option<&str>,
    exten: Option<&str>,
    out: &mut dyn Write,
) -> i32 {
    let mut stats = Stats::default();
    match context {
        Some(name) => {
            let Some(ctx) = plan.context(name) else {
                let _ = writeln!(out, "error: there is no context '{name}' in the dialplan");
                return EXIT_USAGE;
            };
            let mut visited = Vec::new();
            show_tree(plan, ctx, exten, false, &mut visited, &mut stats, out);
        }
        None => {
            for ctx in plan.contexts() {
                show_context(plan, ctx, exten, false, &mut stats, out);
            }
        }
    }
    let _ = writeln!(
        out,
        "-= {} extension{} ({} priorit{}) in {} context{}. =-",
        stats.exts,
        plural(stats.exts, "", "s"),
        stats.prios,
        plural(stats.prios, "y", "ies"),
        stats.contexts,
        plural(stats.contexts, "", "s"),
    );
    EXIT_OK
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[derive(Default)]
struct Stats {
    exts: usize,
    prios: usize,
    contexts: usize,
}

fn show_tree<'a>(
    plan: &'a Dialplan,
    ctx: &'a Context,
    exten: Option<&str>,
    included: bool,
    visited: &mut Vec<&'a str>,
    stats: &mut Stats,
    out: &mut dyn Write,
) {
    if visited.contains(&ctx.name.as_str()) {
        return;
    }
    visited.push(&ctx.name);
    show_context(plan, ctx, exten, included, stats, out);
    if exten.is_some() {
        for inc in &ctx.includes {
            if let Some(c) = plan.context(&inc.context) {
                show_tree(plan, c, exten, true, visited, stats, out);
            }
        }
    }
}

fn location(plan: &Dialplan, pos: crate::diag::Pos) -> String {
    let file = plan.sources().file_name(pos.file);
    let short = Path::new(file)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    format!("[{short}:{}]", pos.line)
}

fn show_context(
    plan: &Dialplan,
    ctx: &Context,
    exten: Option<&str>,
    included: bool,
    stats: &mut Stats,
    out: &mut dyn Write,
) {
    let exts: Vec<&Extension> = ctx
        .extensions
        .iter()
        .filter(|e| exten.is_none_or(|x| e.name == x || e.matcher.matches(x)))
        .collect();
    if exten.is_some() && exts.is_empty() && included {
        return;
    }
    stats.contexts += 1;
    let kind = if included {
        "Included context"
    } else {
        "Context"
    };
    let _ = writeln!(
        out,
        "[ {kind} '{}' created by {} ]",
        ctx.name,
        location(plan, ctx.pos)
    );
    for e in exts {
        stats.exts += 1;
        let mut head = format!("'{}' =>", e.display_name());
        if let Some(h) = &e.hint {
            let _ = writeln!(
                out,
                "  {head:<18} {:<44} {}",
                format!("hint: {}", h.device),
                location(plan, h.pos)
            );
            head.clear();
        }
        for p in e.priorities.values() {
            stats.prios += 1;
            let label = p
                .label
                .as_ref()
                .map(|l| format!("[{l}] "))
                .unwrap_or_default();
            let body = format!("{}. {label}{}({})", p.number, p.app, p.data);
            let _ = writeln!(out, "  {head:<18} {body:<44} {}", location(plan, p.pos));
            head.clear();
        }
    }
    for inc in &ctx.includes {
        let name = match &inc.timing_text {
            Some(t) => format!("'{}|{}'", inc.context, t),
            None => format!("'{}'", inc.context),
        };
        let _ = writeln!(
            out,
            "  {:<18} {name:<44} {}",
            "Include =>",
            location(plan, inc.pos)
        );
    }
    let _ = writeln!(out);
}
