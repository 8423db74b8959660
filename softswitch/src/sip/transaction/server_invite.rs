//! INVITE server transaction (RFC 3261 §17.2.1, with RFC 6026's Accepted state).
//!
//! ```text
//!              INVITE received: to TU, send 100 Trying
//!                          |
//!   INVITE: resend last    v
//!   provisional  +---- Proceeding ------------------+ 2xx from TU: send
//!                |         |  ^  1xx from TU: send   |
//!                +-------->|  |                      v
//!                          |                     Accepted  (Timer L; INVITE absorbed)
//!          300-699 from TU |                         |  Timer L
//!          send, Timer G,H v                         v
//!   INVITE: resend  +-- Completed --- Timer H: ---> Terminated
//!   Timer G: resend |      |          timeout to TU  ^
//!   G = min(2G,T2)  +----->|  ACK                    |
//!                          v                         |
//!                      Confirmed --- Timer I --------+
//! ```

use std::time::Instant;

use bytes::Bytes;

use super::output::{Notice, Retransmit, TxOutput, due, earliest};
use super::types::TimerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Bytes>,
    timer_g: Option<Retransmit>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
}

impl ServerInvite {
    /// A new transaction; the layer sends the `trying` response at once (§17.2.1 allows
    /// it, and it stops the client's INVITE retransmissions early).
    pub(crate) fn start(
        trying: Bytes,
        reliable: bool,
        cfg: TimerConfig,
        out: &mut Vec<TxOutput>,
    ) -> Self {
        out.push(TxOutput::Send(trying.clone()));
        ServerInvite {
            state: ServerInviteState::Proceeding,
            reliable,
            cfg,
            last_response: Some(trying),
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
        }
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// A retransmitted INVITE.
    pub(crate) fn on_request_retransmit(&mut self, out: &mut Vec<TxOutput>) {
        if matches!(
            self.state,
            ServerInviteState::Proceeding | ServerInviteState::Completed
        ) && let Some(r) = &self.last_response
        {
            out.push(TxOutput::Send(r.clone()));
        }
    }

    /// An ACK matching this transaction. Returns true when it was absorbed here (ACK of a
    /// non-2xx final); false means it belongs to the TU.
    pub(crate) fn on_ack(&mut self, now: Instant) -> bool {
        match self.state {
            ServerInviteState::Completed => {
                self.state = ServerInviteState::Confirmed;
                self.timer_g = None;
                self.timer_h = None;
                self.timer_i = Some(
                    now + if self.reliable {
                        std::time::Duration::ZERO
                    } else {
                        self.cfg.t4
                    },
                );
                true
            }
            ServerInviteState::Confirmed => true,
            _ => false,
        }
    }

    /// A response from the TU. Returns false if the transaction can no longer send one.
    pub(crate) fn on_tu_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Bytes,
        out: &mut Vec<TxOutput>,
    ) -> bool {
        if self.state != ServerInviteState::Proceeding {
            return false;
        }
        out.push(TxOutput::Send(bytes.clone()));
        self.last_response = Some(bytes);
        match status {
            100..=199 => {}
            200..=299 => {
                self.state = ServerInviteState::Accepted;
                self.timer_l = Some(now + self.cfg.timeout());
            }
            _ => {
                self.state = ServerInviteState::Completed;
                if !self.reliable {
                    self.timer_g = Some(Retransmit {
                        at: now + self.cfg.t1,
                        interval: self.cfg.t1,
                    });
                }
                self.timer_h = Some(now + self.cfg.timeout());
            }
        }
        true
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        if let Some(g) = self.timer_g.filter(|g| g.at <= now) {
            if let Some(r) = &self.last_response {
                out.push(TxOutput::Send(r.clone()));
            }
            let interval = (g.interval * 2).min(self.cfg.t2);
            self.timer_g = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        if due(self.timer_h, now) {
            self.terminate();
            out.push(TxOutput::Notify(Notice::Timeout));
        }
        if due(self.timer_i, now) || due(self.timer_l, now) {
            self.terminate();
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Vec<TxOutput>) {
        if self.state != ServerInviteState::Terminated {
            self.terminate();
            out.push(TxOutput::Notify(Notice::TransportError));
        }
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.timer_l = None;
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[
            self.timer_g.map(|g| g.at),
            self.timer_h,
            self.timer_i,
            self.timer_l,
        ])
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }
}
