//! The SIP core: wire format, transport drivers and RFC 3261 transactions.

pub mod transaction;
pub mod transport;
pub mod wire;
