//! What a transaction machine asks of the layer after each input.

use bytes::Bytes;

use crate::sip::wire::Message;

#[derive(Debug)]
pub(crate) enum TxOutput {
    /// Put these bytes on the wire toward the transaction's peer.
    Send(Bytes),
    /// Tell the transaction user.
    Notify(Notice),
}

#[derive(Debug)]
pub(crate) enum Notice {
    Response(Message),
    /// Timer B/F (no final response) or Timer H (no ACK for our final response).
    Timeout,
    TransportError,
}

/// A deadline with the interval that produced it, for the doubling retransmit timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub at: std::time::Instant,
    pub interval: std::time::Duration,
}

pub(crate) fn earliest(deadlines: &[Option<std::time::Instant>]) -> Option<std::time::Instant> {
    deadlines.iter().flatten().min().copied()
}

pub(crate) fn due(deadline: Option<std::time::Instant>, now: std::time::Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}
