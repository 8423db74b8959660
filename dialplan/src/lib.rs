//! Asterisk `extensions.conf`, parsed and run exactly (dialplan.md), with authoring
//! tools.
//!
//! # Loading
//! [`Dialplan::load`] reads a file and its includes into an immutable [`Dialplan`]
//! (share it with `Arc`; a reload builds a new one). It fails only where Asterisk
//! refuses the file ([`LoadFailure`]); everything else is a warning in
//! [`Loaded::diagnostics`]. [`lint`] adds the findings of `dialplan check`.
//!
//! # Running a call
//! [`interp::Interpreter`] is a sans-IO state machine: `resume(Resume, &mut dyn Env)`
//! returns the next [`interp::Action`] for the call agent; `poll_event()` yields every
//! executed step. [`env::Env`] injects the clock, randomness, the AstDB and the
//! [`vars::Globals`].
//!
//! # Tools
//! [`tools::check`], [`tools::show`] and [`tools::trace`] implement
//! `softswitch dialplan check|show|trace`.

pub mod appnames;
pub mod args;
pub mod causes;
mod conf;
pub mod diag;
pub mod env;
pub mod expr;
mod index;
pub mod interp;
mod lint;
mod loader;
pub mod lookup;
pub mod model;
pub mod pattern;
pub mod subst;
pub mod timespec;
pub mod tools;
pub mod vars;

pub use diag::{Diagnostic, Severity};
pub use env::{AstDb, Env, MemoryDb, SimEnv};
pub use interp::{Action, CallStart, Event, Interpreter, Resume, Step};
pub use lint::lint;
pub use loader::{LoadFailure, Loaded};
pub use model::Dialplan;
pub use vars::Globals;
