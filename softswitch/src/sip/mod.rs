//! The SIP core: wire format, transport drivers and RFC 3261 transactions.

pub mod transaction;
pub mod transport;
pub mod wire;

/// Methods the switch accepts, for Allow headers.
pub const ALLOW: &str = "REGISTER, OPTIONS, INVITE, ACK, CANCEL, BYE, PRACK, UPDATE, INFO";
/// Option tags the switch supports; others in Require get 420 (RFC 3261 §8.2.2.3).
pub const SUPPORTED: &[&str] = &["path", "100rel", "timer"];
