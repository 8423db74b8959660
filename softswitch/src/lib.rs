//! The softswitch: SIP core, registrar, call agent and the tokio drivers around them.

pub mod admin;
pub mod balance;
pub mod call;
pub mod cli;
pub mod config;
pub mod events;
pub mod metrics;
pub mod registrar;
pub mod runtime;
pub mod sip;
pub mod store;
pub mod voicemail;
pub mod webhook;
