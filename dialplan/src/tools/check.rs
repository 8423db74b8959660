//! `softswitch dialplan check [FILE]`.

use std::io::Write;
use std::path::Path;

use super::{EXIT_ERRORS, EXIT_OK};
use crate::diag::Severity;
use crate::lint::lint;
use crate::model::Dialplan;

/// Loads `path`, lints it and prints every problem with its source line and a caret.
/// Returns 0 when there is no error (warnings allowed), 1 otherwise.
pub fn check(path: &Path, out: &mut dyn Write) -> i32 {
    let loaded = match Dialplan::load(path) {
        Ok(l) => l,
        Err(f) => {
            for d in &f.diagnostics {
                let _ = write!(out, "{d}");
            }
            let _ = writeln!(
                out,
                "error: {} was not loaded; Asterisk refuses it too",
                path.display()
            );
            return EXIT_ERRORS;
        }
    };
    let mut diags = loaded.diagnostics;
    diags.extend(lint(&loaded.plan));
    diags.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    for d in &diags {
        let _ = write!(out, "{d}");
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let plan = &loaded.plan;
    let contexts = plan.contexts().count();
    let exts: usize = plan.contexts().map(|c| c.extensions.len()).sum();
    let prios: usize = plan
        .contexts()
        .flat_map(|c| &c.extensions)
        .map(|e| e.priorities.len())
        .sum();
    let _ = writeln!(
        out,
        "{}: {contexts} contexts, {exts} extensions, {prios} priorities; {errors} error{}, {warnings} warning{}",
        path.display(),
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" },
    );
    if errors > 0 { EXIT_ERRORS } else { EXIT_OK }
}
