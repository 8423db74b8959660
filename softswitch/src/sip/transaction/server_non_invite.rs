//! Non-INVITE server transaction (RFC 3261 §17.2.2).
//!
//! ```text
//!           request received: to TU
//!                    |
//!                    v       request: absorbed
//!                 Trying
//!        1xx from TU |  \ 200-699 from TU: send
//!              send  v   \
//!  request:  +--- Proceeding ---> Completed  (Timer J; request: resend final)
//!  resend    |       |  200-699      |  Timer J
//!  last 1xx  +------>|  send         v
//!                                Terminated
//! ```

use std::time::Instant;

use bytes::Bytes;

use super::output::{TxOutput, due, earliest};
use super::types::TimerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Bytes>,
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    pub(crate) fn start(reliable: bool, cfg: TimerConfig) -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            reliable,
            cfg,
            last_response: None,
            timer_j: None,
        }
    }

    pub(crate) fn on_request_retransmit(&mut self, out: &mut Vec<TxOutput>) {
        if matches!(
            self.state,
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed
        ) && let Some(r) = &self.last_response
        {
            out.push(TxOutput::Send(r.clone()));
        }
    }

    pub(crate) fn on_tu_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Bytes,
        out: &mut Vec<TxOutput>,
    ) -> bool {
        if !matches!(
            self.state,
            ServerNonInviteState::Trying | ServerNonInviteState::Proceeding
        ) {
            return false;
        }
        out.push(TxOutput::Send(bytes.clone()));
        self.last_response = Some(bytes);
        if status < 200 {
            self.state = ServerNonInviteState::Proceeding;
        } else {
            self.state = ServerNonInviteState::Completed;
            self.timer_j = Some(
                now + if self.reliable {
                    std::time::Duration::ZERO
                } else {
                    self.cfg.timeout()
                },
            );
        }
        true
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if due(self.timer_j, now) {
            self.state = ServerNonInviteState::Terminated;
            self.timer_j = None;
        }
    }

    pub(crate) fn on_transport_error(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.timer_j = None;
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_j])
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }
}
