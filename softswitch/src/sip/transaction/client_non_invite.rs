//! Non-INVITE client transaction (RFC 3261 §17.1.2).
//!
//! ```text
//!          start: send request, Timer E (unreliable), Timer F
//!                          |
//!   Timer E: resend,       v        Timer F / transport error: to TU
//!   E = min(2E, T2)  +-- Trying -------------------------------------+
//!                    |     |   \ 200-699: to TU                       |
//!                    +---->|    \                                     |
//!                     1xx  v     v                                    |
//!              +---- Proceeding -----> Completed  (Timer K)           |
//!   Timer E:   |       |  200-699        |  Timer K                   |
//!   resend,    +------>|  to TU          v                            v
//!   E = T2                           Terminated <---------------------+
//! ```

use std::time::Instant;

use super::output::{Notice, Retransmit, TxOutput, due, earliest};
use super::types::TimerConfig;
use crate::sip::wire::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    request: Message,
    reliable: bool,
    cfg: TimerConfig,
    timer_e: Option<Retransmit>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    pub(crate) fn start(
        now: Instant,
        request: Message,
        reliable: bool,
        cfg: TimerConfig,
        out: &mut Vec<TxOutput>,
    ) -> Self {
        out.push(TxOutput::Send(request.buffer().clone()));
        ClientNonInvite {
            state: ClientNonInviteState::Trying,
            timer_e: (!reliable).then_some(Retransmit {
                at: now + cfg.t1,
                interval: cfg.t1,
            }),
            timer_f: Some(now + cfg.timeout()),
            timer_k: None,
            request,
            reliable,
            cfg,
        }
    }

    pub(crate) fn on_response(&mut self, now: Instant, resp: Message, out: &mut Vec<TxOutput>) {
        let Some(code) = resp.status() else { return };
        use ClientNonInviteState::*;
        match (self.state, code) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                out.push(TxOutput::Notify(Notice::Response(resp)));
            }
            (Trying | Proceeding, _) => {
                self.state = Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.timer_k = Some(
                    now + if self.reliable {
                        std::time::Duration::ZERO
                    } else {
                        self.cfg.t4
                    },
                );
                out.push(TxOutput::Notify(Notice::Response(resp)));
            }
            // Retransmitted responses in Completed are absorbed.
            _ => {}
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        if let Some(e) = self.timer_e.filter(|e| e.at <= now) {
            out.push(TxOutput::Send(self.request.buffer().clone()));
            // §17.1.2.2: doubling up to T2 while Trying, T2 flat once Proceeding.
            let interval = match self.state {
                ClientNonInviteState::Trying => (e.interval * 2).min(self.cfg.t2),
                _ => self.cfg.t2,
            };
            self.timer_e = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        if due(self.timer_f, now) {
            self.terminate();
            out.push(TxOutput::Notify(Notice::Timeout));
        }
        if due(self.timer_k, now) {
            self.terminate();
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Vec<TxOutput>) {
        if self.state != ClientNonInviteState::Terminated {
            self.terminate();
            out.push(TxOutput::Notify(Notice::TransportError));
        }
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_e.map(|e| e.at), self.timer_f, self.timer_k])
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }
}
