//! The authoring commands behind `softswitch dialplan check|show|trace`. Each writes
//! to `out` and returns the process exit code, so the CLI only parses arguments.

mod check;
mod show;
mod trace;

pub use check::check;
pub use show::{show, show_plan};
pub use trace::{TraceOptions, trace};

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code when the dialplan has errors (or could not be loaded).
pub const EXIT_ERRORS: i32 = 1;
/// Exit code for bad command-line input (an unknown context, a malformed `--set`).
pub const EXIT_USAGE: i32 = 2;
