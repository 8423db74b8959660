//! The softswitch: SIP core, registrar, call agent and the tokio drivers around them.

pub mod sip;
