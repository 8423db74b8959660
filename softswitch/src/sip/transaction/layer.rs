//! The transaction layer: owns every transaction of one shard, matches incoming messages
//! to them, and keeps one ordered set of deadlines so the driver arms a single timer.
//!
//! Contract (the same for every sans-IO core here): push input with `handle_*` or
//! `send_*`, then drain `poll_transmit` and `poll_event` until they return `None`, and
//! arm a timer for `poll_timeout`; call `handle_timeout(now)` when it fires.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use thiserror::Error;

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::key::{ClientKey, KeyMethod, ServerKey};
use super::output::{Notice, TxOutput};
use super::server_invite::{ServerInvite, ServerInviteState};
use super::server_non_invite::ServerNonInvite;
use super::types::{Peer, TimerConfig, Transmit};
use crate::sip::wire::{Framing, Message, Method, ResponseBuilder, WireError};

/// Either kind of key, for events that can concern both sides.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxKey {
    Server(ServerKey),
    Client(ClientKey),
}

/// What the layer tells its transaction user.
#[derive(Debug)]
pub enum TuEvent {
    /// A new request. `key` is `None` for an ACK that matches no transaction (the ACK of
    /// a 2xx, which belongs to the dialog, RFC 3261 §17.2.3).
    Request {
        key: Option<ServerKey>,
        msg: Message,
        source: Peer,
    },
    /// A response for one of our client transactions.
    Response {
        key: ClientKey,
        msg: Message,
    },
    /// A client transaction got no final response (Timer B/F), or a server INVITE got no
    /// ACK for its final response (Timer H).
    Timeout {
        key: TxKey,
    },
    TransportError {
        key: TxKey,
    },
    /// A response that matches no client transaction, such as a 2xx retransmitted after
    /// its INVITE transaction ended; the dialog layer re-sends its ACK.
    StrayResponse {
        msg: Message,
        source: Peer,
    },
    /// A request (not an ACK) whose Via is too broken to key a transaction. It can
    /// still be answered statelessly at the address it came from.
    Unmatchable {
        msg: Message,
        source: Peer,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TransactionError {
    #[error("no such transaction")]
    NoSuchTransaction,
    #[error("the transaction has already sent its final response")]
    AlreadyFinal,
    #[error("a transaction with this branch already exists")]
    DuplicateBranch,
    #[error("outgoing request does not parse")]
    Unparsable(#[from] WireError),
    #[error("outgoing request lacks a Via branch or a CSeq")]
    MissingKey,
}

/// The four machines of RFC 3261 §17, named as the RFC names them.
#[derive(Debug)]
#[allow(clippy::enum_variant_names)]
enum Tx {
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
}

impl Tx {
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Tx::ServerInvite(t) => t.next_deadline(),
            Tx::ServerNonInvite(t) => t.next_deadline(),
            Tx::ClientInvite(t) => t.next_deadline(),
            Tx::ClientNonInvite(t) => t.next_deadline(),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            Tx::ServerInvite(t) => t.is_terminated(),
            Tx::ServerNonInvite(t) => t.is_terminated(),
            Tx::ClientInvite(t) => t.is_terminated(),
            Tx::ClientNonInvite(t) => t.is_terminated(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    tx: Tx,
    key: TxKey,
    peer: Peer,
    armed: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct TransactionLayer {
    cfg: TimerConfig,
    next_id: u64,
    server_ids: HashMap<ServerKey, u64>,
    client_ids: HashMap<ClientKey, u64>,
    entries: HashMap<u64, Entry>,
    timers: BTreeSet<(Instant, u64)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TuEvent>,
    scratch: Vec<TxOutput>,
}

impl TransactionLayer {
    pub fn new(cfg: TimerConfig) -> Self {
        TransactionLayer {
            cfg,
            ..Default::default()
        }
    }

    pub fn timer_config(&self) -> TimerConfig {
        self.cfg
    }

    /// Live transactions (server and client).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A request from the network.
    pub fn handle_request(&mut self, now: Instant, msg: Message, source: Peer) {
        let Some(key) = ServerKey::of_request(&msg) else {
            // An ACK is never answered; anything else gets a stateless reply from the TU.
            if msg.method() != Some(&Method::Ack) {
                self.events.push_back(TuEvent::Unmatchable { msg, source });
            }
            return;
        };
        let is_ack = msg.method() == Some(&Method::Ack);
        if let Some(&id) = self.server_ids.get(&key) {
            let entry = self.entries.get_mut(&id).expect("index and entries agree");
            // An ACK absorbed here acknowledged our non-2xx final; any other ACK on this
            // key belongs to the dialog.
            let ack_for_tu = match &mut entry.tx {
                Tx::ServerInvite(t) if is_ack => !t.on_ack(now),
                Tx::ServerInvite(t) => {
                    t.on_request_retransmit(&mut self.scratch);
                    false
                }
                Tx::ServerNonInvite(t) => {
                    t.on_request_retransmit(&mut self.scratch);
                    false
                }
                _ => false,
            };
            if ack_for_tu {
                self.events.push_back(TuEvent::Request {
                    key: None,
                    msg,
                    source,
                });
            }
            self.settle(id);
            return;
        }
        if is_ack {
            self.events.push_back(TuEvent::Request {
                key: None,
                msg,
                source,
            });
            return;
        }
        let reliable = source.transport.is_reliable();
        let tx = if msg.method() == Some(&Method::Invite) {
            let trying =
                ResponseBuilder::new(&msg, 100, "Trying", Some(source.addr), None).finish();
            Tx::ServerInvite(ServerInvite::start(
                trying,
                reliable,
                self.cfg,
                &mut self.scratch,
            ))
        } else {
            Tx::ServerNonInvite(ServerNonInvite::start(reliable, self.cfg))
        };
        let id = self.insert(TxKey::Server(key.clone()), tx, source);
        self.server_ids.insert(key.clone(), id);
        self.events.push_back(TuEvent::Request {
            key: Some(key),
            msg,
            source,
        });
        self.settle(id);
    }

    /// A response from the network.
    pub fn handle_response(&mut self, now: Instant, msg: Message, source: Peer) {
        let Some(key) = ClientKey::of_response(&msg) else {
            return;
        };
        let Some(&id) = self.client_ids.get(&key) else {
            self.events
                .push_back(TuEvent::StrayResponse { msg, source });
            return;
        };
        let entry = self.entries.get_mut(&id).expect("index and entries agree");
        match &mut entry.tx {
            Tx::ClientInvite(t) => t.on_response(now, msg, &mut self.scratch),
            Tx::ClientNonInvite(t) => t.on_response(now, msg, &mut self.scratch),
            _ => {}
        }
        self.settle(id);
    }

    /// The TU answers a server transaction. `status` must be the code in `bytes`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &ServerKey,
        status: u16,
        bytes: Bytes,
    ) -> Result<(), TransactionError> {
        let id = *self
            .server_ids
            .get(key)
            .ok_or(TransactionError::NoSuchTransaction)?;
        let entry = self.entries.get_mut(&id).expect("index and entries agree");
        let accepted = match &mut entry.tx {
            Tx::ServerInvite(t) => t.on_tu_response(now, status, bytes, &mut self.scratch),
            Tx::ServerNonInvite(t) => t.on_tu_response(now, status, bytes, &mut self.scratch),
            _ => false,
        };
        self.settle(id);
        if accepted {
            Ok(())
        } else {
            Err(TransactionError::AlreadyFinal)
        }
    }

    /// The TU sends a request as a new client transaction. ACKs are not transactions; use
    /// [`TransactionLayer::send_stateless`] for them.
    pub fn send_request(
        &mut self,
        now: Instant,
        bytes: Bytes,
        peer: Peer,
    ) -> Result<ClientKey, TransactionError> {
        let msg = Message::parse(bytes, Framing::Stream)?;
        let via = msg.top_via().map_err(|_| TransactionError::MissingKey)?;
        let branch = via.branch().ok_or(TransactionError::MissingKey)?;
        let method = msg.method().ok_or(TransactionError::MissingKey)?.clone();
        let key = ClientKey {
            branch: branch.into(),
            method: KeyMethod::of(&method),
        };
        if self.client_ids.contains_key(&key) {
            return Err(TransactionError::DuplicateBranch);
        }
        let reliable = peer.transport.is_reliable();
        let tx = if method == Method::Invite {
            Tx::ClientInvite(ClientInvite::start(
                now,
                msg,
                reliable,
                self.cfg,
                &mut self.scratch,
            ))
        } else {
            Tx::ClientNonInvite(ClientNonInvite::start(
                now,
                msg,
                reliable,
                self.cfg,
                &mut self.scratch,
            ))
        };
        let id = self.insert(TxKey::Client(key.clone()), tx, peer);
        self.client_ids.insert(key.clone(), id);
        self.settle(id);
        Ok(key)
    }

    /// Sends bytes outside any transaction (ACK for a 2xx, 2xx retransmissions by the TU,
    /// stateless replies to requests that cannot form a transaction).
    pub fn send_stateless(&mut self, peer: Peer, bytes: Bytes) {
        self.transmits.push_back(Transmit { peer, bytes });
    }

    /// Drops a client transaction without a word to the TU: the hunt gave up on
    /// a silent dial peer, and retransmitting to it until Timer B only loads a
    /// dead link. A late answer then arrives as a stray response.
    pub fn abandon(&mut self, key: &ClientKey) {
        let Some(id) = self.client_ids.remove(key) else {
            return;
        };
        if let Some(entry) = self.entries.remove(&id)
            && let Some(at) = entry.armed
        {
            self.timers.remove(&(at, id));
        }
    }

    /// The transport could not deliver for this transaction.
    pub fn handle_transport_error(&mut self, key: &TxKey) {
        let id = match key {
            TxKey::Server(k) => self.server_ids.get(k),
            TxKey::Client(k) => self.client_ids.get(k),
        };
        let Some(&id) = id else { return };
        let entry = self.entries.get_mut(&id).expect("index and entries agree");
        match &mut entry.tx {
            Tx::ServerInvite(t) => t.on_transport_error(&mut self.scratch),
            Tx::ServerNonInvite(t) => t.on_transport_error(),
            Tx::ClientInvite(t) => t.on_transport_error(&mut self.scratch),
            Tx::ClientNonInvite(t) => t.on_transport_error(&mut self.scratch),
        }
        self.settle(id);
    }

    /// Fires every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            entry.armed = None;
            match &mut entry.tx {
                Tx::ServerInvite(t) => t.on_timeout(now, &mut self.scratch),
                Tx::ServerNonInvite(t) => t.on_timeout(now),
                Tx::ClientInvite(t) => t.on_timeout(now, &mut self.scratch),
                Tx::ClientNonInvite(t) => t.on_timeout(now, &mut self.scratch),
            }
            self.settle(id);
        }
    }

    /// State of a server INVITE transaction (for CANCEL handling: a CANCEL is answered
    /// 200 and its INVITE 487 only while the INVITE is still Proceeding).
    pub fn server_invite_state(&self, key: &ServerKey) -> Option<ServerInviteState> {
        let id = self.server_ids.get(key)?;
        match &self.entries.get(id)?.tx {
            Tx::ServerInvite(t) => Some(t.state()),
            _ => None,
        }
    }

    /// The peer a server transaction answers to.
    pub fn server_peer(&self, key: &ServerKey) -> Option<Peer> {
        let id = self.server_ids.get(key)?;
        Some(self.entries.get(id)?.peer)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TuEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    fn insert(&mut self, key: TxKey, tx: Tx, peer: Peer) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                tx,
                key,
                peer,
                armed: None,
            },
        );
        id
    }

    /// Routes what the machine produced, re-arms its deadline, and forgets it once
    /// terminated.
    fn settle(&mut self, id: u64) {
        let Some(entry) = self.entries.get_mut(&id) else {
            self.scratch.clear();
            return;
        };
        for out in self.scratch.drain(..) {
            match out {
                TxOutput::Send(bytes) => self.transmits.push_back(Transmit {
                    peer: entry.peer,
                    bytes,
                }),
                TxOutput::Notify(notice) => self.events.push_back(match notice {
                    Notice::Response(msg) => match &entry.key {
                        TxKey::Client(k) => TuEvent::Response {
                            key: k.clone(),
                            msg,
                        },
                        TxKey::Server(_) => continue,
                    },
                    Notice::Timeout => TuEvent::Timeout {
                        key: entry.key.clone(),
                    },
                    Notice::TransportError => TuEvent::TransportError {
                        key: entry.key.clone(),
                    },
                }),
            }
        }
        if let Some(at) = entry.armed.take() {
            self.timers.remove(&(at, id));
        }
        if entry.tx.is_terminated() {
            let entry = self.entries.remove(&id).expect("present above");
            match entry.key {
                TxKey::Server(k) => self.server_ids.remove(&k),
                TxKey::Client(k) => self.client_ids.remove(&k),
            };
            return;
        }
        if let Some(at) = entry.tx.next_deadline() {
            entry.armed = Some(at);
            self.timers.insert((at, id));
        }
    }
}
