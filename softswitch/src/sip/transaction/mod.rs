//! RFC 3261 §17 transactions as sans-IO state machines. Nothing here reads the clock or
//! touches a socket: inputs carry `now`, outputs are bytes to send and events for the
//! transaction user, and the driver arms one timer for [`TransactionLayer::poll_timeout`].

mod client_invite;
mod client_non_invite;
mod key;
mod layer;
mod output;
mod server_invite;
mod server_non_invite;
mod types;

pub use key::{ClientKey, KeyMethod, ServerKey};
pub use layer::{TransactionError, TransactionLayer, TuEvent, TxKey};
pub use server_invite::ServerInviteState;
pub use types::{Peer, TimerConfig, Transmit, TransportKind};

#[cfg(test)]
mod tests;
