//! The transaction user: what the node does with each request and response once the
//! transaction layer has matched it. Runs under the shard lock, so everything here is
//! in-memory and quick; database writes are handed to the group-commit writer and
//! answered from its completion.

use std::sync::Arc;
use std::time::Instant;

use crate::registrar::{GuardEvent, RegisterDecision, Registrar};
use crate::sip::transaction::{Peer, ServerKey, TuEvent};
use crate::sip::wire::{
    HeaderName, Message, Method, RequestHeads, ResponseBuilder, sip_date, unsupported_requirements,
    validate_request,
};

use super::Node;
use super::shard::ShardState;

pub use crate::sip::{ALLOW, SUPPORTED};

impl Node {
    pub(super) fn on_event(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        ev: TuEvent,
        now: Instant,
    ) {
        match ev {
            TuEvent::Request {
                key: Some(key),
                msg,
                source,
            } => self.on_request(idx, st, key, msg, source, now),
            // An ACK outside any transaction belongs to a dialog.
            TuEvent::Request { key: None, msg, .. } => {
                self.with_agent(idx, st, |a| a.handle_ack(&msg))
            }
            TuEvent::Unmatchable { msg, source } => {
                let rejection = validate_request(&msg)
                    .err()
                    .unwrap_or_else(|| crate::sip::wire::Rejection::bad_request("Malformed Via"));
                let tag = format!("{:016x}", rand::random::<u64>());
                let bytes = ResponseBuilder::new(
                    &msg,
                    rejection.status,
                    &rejection.reason,
                    Some(source.addr),
                    Some(&tag),
                )
                .header("Server", &self.config.sip.user_agent)
                .finish();
                st.layer.send_stateless(source, bytes);
            }
            TuEvent::Response { msg, .. } | TuEvent::StrayResponse { msg, .. }
                if self.probe_response(&msg, now) || super::keepalive::is_answer(&msg) => {}
            TuEvent::Response { key, msg } => {
                self.with_agent(idx, st, |a| a.handle_response(key, msg, now));
            }
            TuEvent::StrayResponse { msg, .. } => {
                self.with_agent(idx, st, |a| a.handle_stray_response(&msg, now))
            }
            TuEvent::Timeout { key } | TuEvent::TransportError { key } => {
                tracing::debug!(?key, "transaction timed out or could not be sent");
                if let crate::sip::transaction::TxKey::Client(k) = &key {
                    self.with_agent(idx, st, |a| a.handle_client_failure(k, now));
                }
            }
        }
    }

    fn on_request(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        key: ServerKey,
        msg: Message,
        source: Peer,
        now: Instant,
    ) {
        let heads = match validate_request(&msg) {
            Ok(h) => h,
            Err(rejection) => {
                tracing::debug!(source = %source.addr, %rejection, "refused a malformed request");
                self.respond(
                    st,
                    &key,
                    &msg,
                    source,
                    rejection.status,
                    &rejection.reason,
                    &[],
                    now,
                );
                return;
            }
        };
        let unsupported = unsupported_requirements(&msg, SUPPORTED);
        if !unsupported.is_empty() {
            let list = unsupported.join(", ");
            self.respond(
                st,
                &key,
                &msg,
                source,
                420,
                "Bad Extension",
                &[("Unsupported", list)],
                now,
            );
            return;
        }
        let method = heads.cseq.method.clone();
        let in_dialog = (has_to_tag(&msg) || method == Method::Cancel)
            && st
                .calls
                .by_call_id(msg.call_id().unwrap_or_default())
                .is_some();
        match method {
            Method::Register => self.on_register(idx, st, key, &msg, &heads, source, now),
            Method::Subscribe => self.on_subscribe(st, key, &msg, source, now),
            Method::Options | Method::Invite if self.is_draining() && !has_to_tag(&msg) => {
                let headers = [("Retry-After", Node::DRAIN_RETRY_AFTER.to_string())];
                self.respond(
                    st,
                    &key,
                    &msg,
                    source,
                    503,
                    "Service Unavailable (draining)",
                    &headers,
                    now,
                );
            }
            Method::Options => {
                let calls = self
                    .calls_in_progress
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .max(0);
                let headers = [
                    ("Allow", ALLOW.to_owned()),
                    ("Accept", "application/sdp".to_owned()),
                    ("Supported", SUPPORTED.join(", ")),
                    // For a balancer sharing calls by load.
                    (crate::balance::proxy::CALLS_HEADER, calls.to_string()),
                ];
                self.respond(st, &key, &msg, source, 200, "OK", &headers, now);
            }
            Method::Invite if !has_to_tag(&msg) => {
                self.with_agent(idx, st, |a| a.handle_invite(key, msg, source, now))
            }
            _ if in_dialog => {
                self.with_agent(idx, st, |a| a.handle_in_dialog(key, msg, source, now));
            }
            Method::Invite
            | Method::Bye
            | Method::Cancel
            | Method::Info
            | Method::Update
            | Method::Prack => {
                self.respond(
                    st,
                    &key,
                    &msg,
                    source,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                    now,
                );
            }
            Method::Other(_) => {
                self.respond(
                    st,
                    &key,
                    &msg,
                    source,
                    501,
                    "Not Implemented",
                    &[("Allow", ALLOW.to_owned())],
                    now,
                );
            }
            _ => {
                self.respond(
                    st,
                    &key,
                    &msg,
                    source,
                    405,
                    "Method Not Allowed",
                    &[("Allow", ALLOW.to_owned())],
                    now,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_register(
        self: &Arc<Self>,
        idx: usize,
        st: &mut ShardState,
        key: ServerKey,
        msg: &Message,
        heads: &RequestHeads<'_>,
        source: Peer,
        now: Instant,
    ) {
        let wall = super::unix_now();
        let mut events = Vec::new();
        let decision = self
            .registrar
            .handle_register(msg, heads, source, wall, now, &mut events);
        for ev in events {
            match ev {
                GuardEvent::Throttled { ip, failures } => {
                    tracing::warn!(%ip, failures, "throttling a source after repeated authentication failures")
                }
                GuardEvent::Banned {
                    ip,
                    failures,
                    for_secs,
                } => {
                    tracing::warn!(%ip, failures, for_secs, "banned a source after repeated authentication failures")
                }
            }
        }
        match decision {
            RegisterDecision::Reply {
                status,
                reason,
                headers,
            } => {
                let headers: Vec<(&str, String)> = headers.into_iter().collect();
                self.respond(st, &key, msg, source, status, &reason, &headers, now);
            }
            RegisterDecision::Challenge { stale } => {
                let headers = self.challenge_headers("WWW-Authenticate", stale, wall, msg);
                self.respond(st, &key, msg, source, 401, "Unauthorized", &headers, now);
            }
            RegisterDecision::Bindings(bindings) => {
                let headers = ok_headers(&bindings, wall, msg);
                self.respond(st, &key, msg, source, 200, "OK", &headers, now);
            }
            RegisterDecision::Commit {
                aor,
                changes,
                bindings,
            } => {
                let node = self.clone();
                let req = msg.clone();
                let key2 = key.clone();
                let submitted = self.writer.submit(
                    changes,
                    Box::new(move |result| {
                        node.finish_register(idx, key2, req, source, aor, bindings, result)
                    }),
                );
                if submitted.is_err() {
                    tracing::warn!("database write queue full: answering 503");
                    self.respond(
                        st,
                        &key,
                        msg,
                        source,
                        503,
                        "Service Unavailable",
                        &[("Retry-After", "5".into())],
                        now,
                    );
                }
            }
        }
    }

    /// Runs after the commit: only now may the 200 OK promise the binding is stored.
    #[allow(clippy::too_many_arguments)]
    fn finish_register(
        self: Arc<Self>,
        idx: usize,
        key: ServerKey,
        req: Message,
        source: Peer,
        aor: String,
        bindings: Vec<crate::registrar::Binding>,
        result: Result<(), Arc<crate::store::StoreError>>,
    ) {
        let now = Instant::now();
        let wall = super::unix_now();
        let mut out = Vec::new();
        {
            let mut st = self.shards[idx].lock();
            match result {
                Ok(()) => {
                    tracing::debug!(%aor, contacts = bindings.len(), from = %source.addr, "registration stored");
                    let headers = ok_headers(&bindings, wall, &req);
                    self.respond(&mut st, &key, &req, source, 200, "OK", &headers, now);
                }
                Err(e) => {
                    tracing::error!(%aor, error = %e, "could not store a registration");
                    self.respond(
                        &mut st,
                        &key,
                        &req,
                        source,
                        500,
                        "Server Internal Error (database)",
                        &[],
                        now,
                    );
                }
            }
            self.pump(idx, &mut st, now, &mut out);
            self.flush(out);
        }
    }

    /// One `header` (WWW- or Proxy-Authenticate) per offered digest algorithm.
    pub(super) fn challenge_headers(
        &self,
        header: &'static str,
        stale: bool,
        wall: i64,
        msg: &Message,
    ) -> Vec<(&'static str, String)> {
        self.registrar
            .auth
            .challenges(
                stale,
                wall,
                rand::random(),
                msg.header(HeaderName::UserAgent),
            )
            .into_iter()
            .map(|c| (header, c.to_string()))
            .collect()
    }

    /// Builds a response with a fresh To tag and hands it to the transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn respond(
        &self,
        st: &mut ShardState,
        key: &ServerKey,
        req: &Message,
        source: Peer,
        status: u16,
        reason: &str,
        headers: &[(&str, String)],
        now: Instant,
    ) {
        let bytes = crate::call::agent::response(
            req,
            source,
            status,
            reason,
            headers,
            &self.config.sip.user_agent,
        );
        if let Err(e) = st.layer.send_response(now, key, status, bytes) {
            tracing::debug!(error = %e, status, "response not sent");
        }
    }
}

fn has_to_tag(msg: &Message) -> bool {
    msg.to_header().is_ok_and(|t| t.tag().is_some())
}

/// Headers of a 200 to REGISTER: every current binding (RFC 3261 §10.3 step 8), the
/// registrar's time so phones can set their clocks, and the request's Path echoed back
/// when the client supports it (RFC 3327 §5.3).
fn ok_headers(
    bindings: &[crate::registrar::Binding],
    wall: i64,
    req: &Message,
) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(&'static str, String)> = Registrar::contact_values(bindings, wall)
        .into_iter()
        .map(|c| ("Contact", c))
        .collect();
    headers.push(("Date", sip_date(wall)));
    if req
        .option_tags(HeaderName::Supported)
        .any(|t| t.eq_ignore_ascii_case("path"))
    {
        headers.extend(
            req.header_all(HeaderName::Path)
                .map(|p| ("Path", p.to_owned())),
        );
    }
    headers
}
