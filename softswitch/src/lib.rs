//! The softswitch: SIP core, registrar, call agent and the tokio drivers around them.

pub mod config;
pub mod registrar;
pub mod sip;
pub mod store;
