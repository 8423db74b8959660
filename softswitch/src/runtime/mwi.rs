//! Message-waiting on the node: SUBSCRIBEs to `message-summary` (RFC 3842,
//! RFC 6665) are authenticated like REGISTERs and answered with the mailbox's
//! state; when a mailbox changes, every subscription watching it gets a NOTIFY in
//! its dialog, and phones that never subscribed get one unsolicited (what most
//! deployed phones expect). NOTIFYs go through the client transactions of the
//! shard their Call-ID hashes to, so their responses find their way back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::call::messages::{self, Dialog, Local};
use crate::registrar::AuthOutcome;
use crate::sip::transaction::{Peer, ServerKey, TransportKind};
use crate::sip::wire::{HeaderName, Message, Method, ResponseBuilder};
use crate::voicemail::mwi::{self, Subscription};
use crate::voicemail::{MailboxId, Spool};

use super::shard::{ShardState, shard_of};
use super::{Node, unix_now};

/// Subscription lifetimes we grant, in seconds.
const MIN_EXPIRES: i64 = 60;
const MAX_EXPIRES: i64 = 3600;

impl Node {
    /// A SUBSCRIBE, new or refreshing/ending one of ours.
    pub(super) fn on_subscribe(
        self: &Arc<Self>,
        st: &mut ShardState,
        key: ServerKey,
        msg: &Message,
        source: Peer,
        now: Instant,
    ) {
        let event = msg.header(HeaderName::Event).unwrap_or("");
        let package = event.split(';').next().unwrap_or("").trim();
        if !package.eq_ignore_ascii_case(mwi::EVENT) {
            let allow = [("Allow-Events", mwi::EVENT.to_string())];
            self.respond(st, &key, msg, source, 489, "Bad Event", &allow, now);
            return;
        }
        let wall = unix_now();
        let user = match self
            .registrar
            .auth
            .check(msg, HeaderName::Authorization, wall)
        {
            AuthOutcome::Authenticated { user } => {
                self.registrar.guard.record_success(source.addr.ip());
                user
            }
            AuthOutcome::Malformed(reason) => {
                self.respond(st, &key, msg, source, 400, reason, &[], now);
                return;
            }
            outcome => {
                if let AuthOutcome::Failed { user } = &outcome {
                    tracing::warn!(%user, source = %source.addr, "subscription authentication failed");
                    if let Some(ev) = self.registrar.guard.record_failure(source.addr.ip(), now) {
                        tracing::warn!(?ev, "authentication guard");
                    }
                }
                let stale = matches!(outcome, AuthOutcome::Challenge { stale: true });
                let headers = self.challenge_headers("WWW-Authenticate", stale, wall, msg);
                self.respond(st, &key, msg, source, 401, "Unauthorized", &headers, now);
                return;
            }
        };
        let expires = msg
            .header(HeaderName::Expires)
            .and_then(|e| e.trim().parse::<i64>().ok())
            .unwrap_or(MAX_EXPIRES);
        let expires = if expires == 0 {
            0
        } else {
            expires.clamp(MIN_EXPIRES, MAX_EXPIRES)
        };
        let call_id = msg.call_id().unwrap_or_default().to_string();
        let to_tag = msg
            .to_header()
            .ok()
            .and_then(|t| t.tag().map(str::to_string));

        let mut subs = super::lock(&self.mwi);
        let sub = match to_tag {
            Some(tag) => match subs.get_mut(&call_id) {
                Some(s) if s.local_tag == tag && s.user == user => {
                    s.expires_at = wall + expires;
                    s.clone()
                }
                _ => {
                    drop(subs);
                    let h = [];
                    self.respond(
                        st,
                        &key,
                        msg,
                        source,
                        481,
                        "Subscription Does Not Exist",
                        &h,
                        now,
                    );
                    return;
                }
            },
            None => {
                let mailboxes = self.config.mailboxes_of(&user);
                if mailboxes.is_empty() {
                    drop(subs);
                    tracing::debug!(%user, "SUBSCRIBE to message-summary without a mailbox");
                    self.respond(st, &key, msg, source, 404, "No Mailbox", &[], now);
                    return;
                }
                let local_uri = msg
                    .to_header()
                    .map(|t| t.uri_text.to_string())
                    .unwrap_or_else(|_| format!("sip:{user}@{}", self.config.sip.domain));
                let s = Subscription {
                    call_id: call_id.clone(),
                    local_tag: messages::new_tag(),
                    remote: msg.header(HeaderName::From).unwrap_or("").to_string(),
                    local_uri,
                    target: msg
                        .header(HeaderName::Contact)
                        .and_then(messages::uri_of)
                        .unwrap_or_default(),
                    route_set: msg
                        .header_all(HeaderName::RecordRoute)
                        .flat_map(|v| v.split(','))
                        .map(|r| r.trim().to_string())
                        .filter(|r| !r.is_empty())
                        .collect(),
                    peer: source,
                    mailboxes,
                    user: user.clone(),
                    expires_at: wall + expires,
                    cseq: 1,
                };
                subs.insert(s.clone());
                tracing::info!(%user, expires, "message-waiting subscription");
                s
            }
        };
        if expires == 0 {
            subs.remove(&call_id);
        }
        drop(subs);

        let local = self.local_for(source.transport);
        let bytes = ResponseBuilder::new(msg, 200, "OK", Some(source.addr), Some(&sub.local_tag))
            .header("Contact", local.contact())
            .header("Expires", expires)
            .header("Server", &self.config.sip.user_agent)
            .finish();
        if let Err(e) = st.layer.send_response(now, &key, 200, bytes) {
            tracing::debug!(error = %e, "SUBSCRIBE response not sent");
        }
        // RFC 6665 §4.2.1.2: a NOTIFY follows every accepted SUBSCRIBE at once.
        let mut sub = sub;
        self.send_notify(st, &mut sub, expires, now);
        if let Some(s) = super::lock(&self.mwi).get_mut(&call_id) {
            s.cseq = sub.cseq;
        }
    }

    /// NOTIFYs for a mailbox whose messages changed: to its subscribers, and
    /// (`unsolicited`, on the node that made the change) to the phones of its
    /// endpoints that did not subscribe.
    pub(super) fn mailbox_changed(self: &Arc<Self>, mailbox: &MailboxId, unsolicited: bool) {
        let wall = unix_now();
        let watching = super::lock(&self.mwi).watching(mailbox);
        for call_id in watching {
            let idx = shard_of(&call_id, self.shards.len());
            let now = Instant::now();
            let mut out = Vec::new();
            let mut st = self.shards[idx].lock();
            let sub = super::lock(&self.mwi).get_mut(&call_id).cloned();
            if let Some(mut sub) = sub {
                let left = (sub.expires_at - wall).max(0);
                self.send_notify(&mut st, &mut sub, left, now);
                if let Some(s) = super::lock(&self.mwi).get_mut(&call_id) {
                    s.cseq = sub.cseq;
                }
            }
            self.pump(idx, &mut st, now, &mut out);
            self.flush(out);
        }
        if !unsolicited || !self.config.voicemail.unsolicited_mwi {
            return;
        }
        let (new, old) = self.spool().counts(mailbox);
        for user in self.config.endpoints_of_mailbox(mailbox) {
            if super::lock(&self.mwi).has_user(&user, wall) {
                continue;
            }
            let aor = self.registrar.aor(&user);
            for binding in self.registrar.location.lookup(&aor, wall) {
                self.unsolicited_notify(&user, mailbox, &binding, new, old);
            }
        }
    }

    pub(super) fn spool(&self) -> Spool {
        Spool::indexed(
            self.config.resolve(&self.config.voicemail.spool),
            self.voicemail.clone(),
        )
    }

    /// The summary of every mailbox `sub` watches, added up, in its dialog.
    fn send_notify(&self, st: &mut ShardState, sub: &mut Subscription, expires: i64, now: Instant) {
        let spool = self.spool();
        let (new, old) = sub
            .mailboxes
            .iter()
            .map(|m| spool.counts(m))
            .fold((0, 0), |(n, o), (a, b)| (n + a, o + b));
        let state = if expires > 0 {
            format!("active;expires={expires}")
        } else {
            "terminated;reason=timeout".to_string()
        };
        let body = mwi::summary(&sub.local_uri, new, old);
        let local = self.local_for(sub.peer.transport);
        let from = format!("<{}>;tag={}", sub.local_uri, sub.local_tag);
        let mut extra = vec![
            ("Event", mwi::EVENT.to_string()),
            ("Subscription-State", state),
        ];
        extra.extend(sub.route_set.iter().map(|r| ("Route", r.clone())));
        let bytes = messages::request(
            &Method::Notify,
            Dialog {
                uri: &sub.target,
                from: &from,
                to: &sub.remote,
                call_id: &sub.call_id,
                cseq: sub.cseq,
            },
            &local,
            &messages::new_branch(),
            &self.config.sip.user_agent,
            &extra,
            Some((mwi::CONTENT_TYPE, body.as_bytes())),
        );
        sub.cseq += 1;
        if let Err(e) = st.layer.send_request(now, bytes, sub.peer) {
            tracing::debug!(error = %e, "NOTIFY not sent");
        }
    }

    fn unsolicited_notify(
        self: &Arc<Self>,
        user: &str,
        mailbox: &MailboxId,
        binding: &crate::registrar::Binding,
        new: usize,
        old: usize,
    ) {
        let domain = &self.config.sip.domain;
        let account = format!("sip:{}@{domain}", mailbox.number);
        let body = mwi::summary(&account, new, old);
        let call_id = format!("mwi-{:016x}", rand::random::<u64>());
        let idx = shard_of(&call_id, self.shards.len());
        let local = self.local_for(binding.transport);
        let uri = messages::uri_of(&binding.contact).unwrap_or_else(|| binding.contact.clone());
        let from = format!("<{account}>;tag={}", messages::new_tag());
        let to = format!("<sip:{user}@{domain}>");
        let mut extra = vec![
            ("Event", mwi::EVENT.to_string()),
            ("Subscription-State", "active".to_string()),
        ];
        extra.extend(binding.path.iter().map(|p| ("Route", p.clone())));
        let bytes = messages::request(
            &Method::Notify,
            Dialog {
                uri: &uri,
                from: &from,
                to: &to,
                call_id: &call_id,
                cseq: 1,
            },
            &local,
            &messages::new_branch(),
            &self.config.sip.user_agent,
            &extra,
            Some((mwi::CONTENT_TYPE, body.as_bytes())),
        );
        let peer = Peer {
            transport: binding.transport,
            addr: binding.source,
            conn: None,
        };
        let now = Instant::now();
        let mut out = Vec::new();
        let mut st = self.shards[idx].lock();
        if let Err(e) = st.layer.send_request(now, bytes, peer) {
            tracing::debug!(error = %e, "unsolicited NOTIFY not sent");
        }
        self.pump(idx, &mut st, now, &mut out);
        self.flush(out);
    }

    /// Ends the subscriptions that were not refreshed (RFC 6665 §4.1.2.4 asks for a
    /// final NOTIFY, which the lapsed phone may or may not take).
    pub(super) fn sweep_subscriptions(self: &Arc<Self>, wall: i64) {
        let gone = super::lock(&self.mwi).sweep(wall);
        for mut sub in gone {
            let idx = shard_of(&sub.call_id, self.shards.len());
            let now = Instant::now();
            let mut out = Vec::new();
            let mut st = self.shards[idx].lock();
            self.send_notify(&mut st, &mut sub, 0, now);
            self.pump(idx, &mut st, now, &mut out);
            self.flush(out);
        }
    }

    /// Our address on `transport`, for Via and Contact.
    pub(super) fn local_for(&self, transport: TransportKind) -> Local {
        let listen = &self.config.sip.listen;
        let spec = listen
            .iter()
            .find(|l| l.transport == transport)
            .unwrap_or(&listen[0]);
        let hostport = match spec.addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        Local {
            hostport,
            transport: spec.transport,
        }
    }
}
