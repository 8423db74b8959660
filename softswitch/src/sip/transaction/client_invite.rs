//! INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state).
//!
//! ```text
//!                     start: send INVITE, Timer A (unreliable), Timer B
//!                               |
//!        Timer A: resend,       v      Timer B: timeout to TU
//!        A doubles     +---- Calling --------------------------> Terminated
//!                      |        |  \
//!                      +------->|   \ 2xx: to TU
//!                          1xx  |    \
//!                       to TU   v     v
//!                  +------ Proceeding -----> Accepted  (2xx: to TU, Timer M)
//!             1xx  |            |              |   Timer M
//!            to TU +----------->| 300-699:     +-----------> Terminated
//!                               | send ACK, to TU
//!                               v
//!                           Completed  (300-699 again: resend ACK; Timer D)
//!                               |  Timer D
//!                               v
//!                           Terminated
//! ```

use std::time::Instant;

use bytes::Bytes;

use super::output::{Notice, Retransmit, TxOutput, due, earliest};
use super::types::TimerConfig;
use crate::sip::wire::{HeaderName, Message, RequestBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    request: Message,
    reliable: bool,
    cfg: TimerConfig,
    timer_a: Option<Retransmit>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    ack: Option<Bytes>,
}

impl ClientInvite {
    pub(crate) fn start(
        now: Instant,
        request: Message,
        reliable: bool,
        cfg: TimerConfig,
        out: &mut Vec<TxOutput>,
    ) -> Self {
        out.push(TxOutput::Send(request.buffer().clone()));
        ClientInvite {
            state: ClientInviteState::Calling,
            timer_a: (!reliable).then_some(Retransmit {
                at: now + cfg.t1,
                interval: cfg.t1,
            }),
            timer_b: Some(now + cfg.timeout()),
            timer_d: None,
            timer_m: None,
            ack: None,
            request,
            reliable,
            cfg,
        }
    }

    pub(crate) fn on_response(&mut self, now: Instant, resp: Message, out: &mut Vec<TxOutput>) {
        let Some(code) = resp.status() else { return };
        use ClientInviteState::*;
        match (self.state, code) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.timer_a = None;
                out.push(TxOutput::Notify(Notice::Response(resp)));
            }
            (Calling | Proceeding, 200..=299) => {
                self.enter_accepted(now);
                out.push(TxOutput::Notify(Notice::Response(resp)));
            }
            (Accepted, 200..=299) => out.push(TxOutput::Notify(Notice::Response(resp))),
            (Calling | Proceeding, _) => {
                let ack = build_ack(&self.request, &resp);
                out.push(TxOutput::Send(ack.clone()));
                self.ack = Some(ack);
                self.state = Completed;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_d = Some(
                    now + if self.reliable {
                        std::time::Duration::ZERO
                    } else {
                        self.cfg.timer_d
                    },
                );
                out.push(TxOutput::Notify(Notice::Response(resp)));
            }
            (Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    out.push(TxOutput::Send(ack.clone()));
                }
            }
            _ => {}
        }
    }

    fn enter_accepted(&mut self, now: Instant) {
        self.state = ClientInviteState::Accepted;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_m = Some(now + self.cfg.timeout());
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        if let Some(a) = self.timer_a.filter(|a| a.at <= now) {
            out.push(TxOutput::Send(self.request.buffer().clone()));
            let interval = a.interval * 2;
            self.timer_a = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        if due(self.timer_b, now) {
            self.terminate();
            out.push(TxOutput::Notify(Notice::Timeout));
        }
        if due(self.timer_d, now) || due(self.timer_m, now) {
            self.terminate();
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Vec<TxOutput>) {
        if self.state != ClientInviteState::Terminated {
            self.terminate();
            out.push(TxOutput::Notify(Notice::TransportError));
        }
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.timer_m = None;
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[
            self.timer_a.map(|a| a.at),
            self.timer_b,
            self.timer_d,
            self.timer_m,
        ])
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): same Request-URI, Call-ID, From,
/// CSeq number and top Via as the INVITE, the response's To, and the INVITE's Route set.
pub(crate) fn build_ack(invite: &Message, resp: &Message) -> Bytes {
    let method = crate::sip::wire::Method::Ack;
    let mut b = RequestBuilder::new(&method, invite.request_uri().unwrap_or_default());
    if let Some(via) = invite.header(HeaderName::Via) {
        // Only the top Via of the INVITE (a header line may hold several).
        let top = via.split(',').next().unwrap_or(via).trim();
        b = b.header("Via", top);
    }
    for route in invite.header_all(HeaderName::Route) {
        b = b.header("Route", route);
    }
    b = b.header("Max-Forwards", 70);
    if let Some(from) = invite.header(HeaderName::From) {
        b = b.header("From", from);
    }
    if let Some(to) = resp.header(HeaderName::To) {
        b = b.header("To", to);
    }
    if let Some(call_id) = invite.call_id() {
        b = b.header("Call-ID", call_id);
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    b.header("CSeq", format_args!("{seq} ACK")).finish()
}
