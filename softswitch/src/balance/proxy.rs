//! The balancer's forwarding rules: a stateless SIP proxy (RFC 3261 §16.11) that
//! keeps no dialog or transaction table. Every decision comes from the message:
//!
//! - A new dialog or registration from outside goes to the node the Call-ID hashes
//!   to among healthy nodes; retransmissions, its CANCEL and the ACK of a failure
//!   carry the same Call-ID and land there too.
//! - Dialog-creating requests get a Record-Route naming the balancer with the node
//!   (`sn=`) and the outside party's address (`fl=`): later requests from outside
//!   go to that node, requests from the node go back out to where that party sent
//!   from (which is what a phone behind NAT needs).
//! - A REGISTER gets a Path (RFC 3327) with the phone's address, so a call from any
//!   node reaches the phone through the balancer.
//! - Responses follow their Via, after the balancer removes its own.
//!
//! Because all of it is in the messages, a restarted balancer, or a second one
//! advertising the same address, routes every call in progress the same way.
//!
//! Phones may use TCP; nodes are always reached over UDP. A TCP phone's flow is
//! its connection (`fl=ADDR~t`), and a dialog it is in is record-routed twice
//! (RFC 5658): one entry for each side, the phone's with `transport=tcp`, so each
//! side reaches the balancer over its own transport. The balancer removes every
//! entry of its own at the top of a Route.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use gateway::health::Evidence;

use bytes::Bytes;

use super::nodes::{NodeSet, PROBE_PREFIX};
use super::retry::{KEEP_CHOICES, KEEP_INVITES, MAX_TRIES, Sent, Window};
use crate::sip::wire::{
    Framing, HeaderName, Host, MAGIC_COOKIE, Message, Method, NameAddr, Rport, Uri, Via,
    parse_vias, split_list,
};

/// The header a node's answer to OPTIONS reports its calls in progress in, for
/// `least_load`.
pub const CALLS_HEADER: &str = "X-Calls-In-Progress";

/// What one datagram turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    Send(SocketAddr, Bytes),
    /// Over the TCP connection the phone at this address opened.
    Stream(SocketAddr, Bytes),
    /// A refused INVITE: the ACK of the refusal and the INVITE to another node.
    Several(Vec<(SocketAddr, Bytes)>),
    /// Consumed (a probe's answer) or dropped (the log says why).
    Nothing,
}

/// Counters for the status view.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ProxyStats {
    pub requests: u64,
    pub responses: u64,
    pub dropped: u64,
    pub refused: u64,
    /// New INVITEs a node refused with 503 + Retry-After, sent to another node.
    pub retried: u64,
}

pub struct Proxy {
    /// `host:port` as written into Via, Record-Route and Path.
    advertised: String,
    host: String,
    port: u16,
    /// The socket address too: a URI naming it is ours even when the advertised
    /// name differs.
    listen: SocketAddr,
    pub nodes: NodeSet,
    pub stats: ProxyStats,
    share: Share,
    /// New INVITEs, for a retry on another node (see [`super::retry`]).
    retries: Window<Sent>,
    /// With `least_load`, the node each new request went to, by branch.
    choices: Window<usize>,
}

/// How new dialogs are spread over the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// Weighted rendezvous hash of the Call-ID: no state, the same choice on every
    /// balancer.
    Hash,
    /// The node with the fewest calls in progress for its weight (reported with
    /// each probe answer).
    LeastLoad,
}

impl Proxy {
    pub fn new(advertised: String, listen: SocketAddr, nodes: NodeSet, share: Share) -> Proxy {
        let (host, port) = match advertised.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                p.parse().unwrap_or(5060),
            ),
            None => (advertised.clone(), 5060),
        };
        Proxy {
            advertised,
            host,
            port,
            listen,
            nodes,
            stats: ProxyStats::default(),
            share,
            retries: Window::new(KEEP_INVITES),
            choices: Window::new(KEEP_CHOICES),
        }
    }

    fn is_me(&self, host: &Host<'_>, port: Option<u16>) -> bool {
        let port = port.unwrap_or(5060);
        let by_name = port == self.port && host.to_string().trim_matches(['[', ']']) == self.host;
        let by_addr = host.ip() == Some(self.listen.ip()) && port == self.listen.port();
        by_name || by_addr
    }

    pub fn on_datagram(&mut self, data: Bytes, from: SocketAddr, now: Instant) -> Forward {
        self.on_message(data, Flow::udp(from), now)
    }

    /// A message from `from`: a datagram, or one framed out of a TCP connection.
    pub fn on_message(&mut self, data: Bytes, from: Flow, now: Instant) -> Forward {
        let framing = if from.tcp {
            Framing::Stream
        } else {
            Framing::Datagram
        };
        let msg = match Message::parse(data, framing) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(from = %from.addr, error = %e, "not SIP; dropped");
                self.stats.dropped += 1;
                return Forward::Nothing;
            }
        };
        let out = if msg.is_request() {
            self.stats.requests += 1;
            self.request(&msg, from, now, 1)
        } else {
            self.stats.responses += 1;
            self.response(&msg, from.addr, now)
        };
        match out {
            Ok(f) => f,
            Err(why) => {
                tracing::debug!(from = %from.addr, why, "dropped");
                self.stats.dropped += 1;
                Forward::Nothing
            }
        }
    }

    /// `tries`: the nodes this INVITE has been sent to, counting this one.
    fn request(
        &mut self,
        msg: &Message,
        flow_in: Flow,
        now: Instant,
        tries: u8,
    ) -> Result<Forward, &'static str> {
        let from = flow_in.addr;
        let method = msg.method().ok_or("no method")?.clone();
        let vias = parse_vias(msg.header_all(HeaderName::Via)).map_err(|_| "bad Via")?;
        let top = *vias.first().ok_or("no Via")?;
        if self.is_me(&top.host, top.port) {
            return Err("loop: our own Via on a request");
        }
        if let Some(rejection) = msg.defect() {
            return Ok(self.reply(
                msg,
                &vias,
                flow_in,
                rejection.status,
                &rejection.reason,
                None,
            ));
        }
        let max_forwards = match msg.header(HeaderName::MaxForwards) {
            Some(v) => v.trim().parse::<u32>().map_err(|_| "bad Max-Forwards")?,
            None => 70,
        };
        if max_forwards == 0 {
            return Ok(self.reply(msg, &vias, flow_in, 483, "Too Many Hops", None));
        }
        let call_id = msg.header(HeaderName::CallId).ok_or("no Call-ID")?.trim();
        let routes = route_values(msg)?;
        // Every entry of ours at the top: one, or two when a TCP phone is in the
        // dialog.
        let (mut sn, mut flow, mut popped) = (None, None, 0);
        for r in &routes {
            let Ok(na) = NameAddr::parse(r) else { break };
            let Some(sip) = na.uri.as_sip() else { break };
            if !self.is_me(&sip.host, sip.port) {
                break;
            }
            popped += 1;
            sn = sn.or_else(|| sip.params.value("sn").map(str::to_owned));
            flow = flow.or_else(|| sip.params.value("fl").and_then(decode_flow));
        }
        let rest_routes: &[String] = &routes[popped..];
        let initial = !has_to_tag(msg);
        let branch = branch_for(&top, msg);
        let creates_dialog = initial
            && matches!(
                method,
                Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
            );

        let mut edit = Edit {
            max_forwards: max_forwards - 1,
            drop_routes: popped,
            ..Edit::default()
        };
        let dest;
        if let Some(node) = self.node_at(flow_in) {
            // From a node, outward: to the flow the balancer recorded, else the next
            // hop the request names.
            dest = match flow {
                Some(f) => f,
                None => Flow::udp(next_hop(rest_routes.first().map(String::as_str), msg)?),
            };
            if creates_dialog {
                let name = self.nodes.spec(node).name.clone();
                // The entry nearest the phone on top: the phone reaches it first.
                edit.record_route = Some(self.record_route(&name, dest, true));
            }
        } else {
            // From outside, inward: the node that owns the dialog, else the one its
            // transaction went to, else a healthy one.
            let owner = sn.as_deref().and_then(|n| self.nodes.named(n)).or_else(|| {
                (self.share == Share::LeastLoad)
                    .then(|| self.choices.get(&branch).copied())
                    .flatten()
            });
            let node = match owner {
                // A dialog of a node that is gone goes to a survivor, which answers
                // 481 at once instead of leaving the phone to time out.
                Some(i) if self.nodes.reachable(i) => i,
                _ => match self.choose(call_id, &branch, now) {
                    Some(i) => i,
                    None => {
                        self.stats.refused += 1;
                        return Ok(self.reply(
                            msg,
                            &vias,
                            flow_in,
                            503,
                            "Service Unavailable",
                            Some(5),
                        ));
                    }
                },
            };
            dest = Flow::udp(self.nodes.spec(node).addr);
            let name = self.nodes.spec(node).name.clone();
            if creates_dialog {
                edit.record_route = Some(self.record_route(&name, flow_in, false));
            }
            if method == Method::Register {
                edit.path = Some(self.route_uri(None, Some(flow_in), false));
            }
            edit.stamp_top_via = Some(from);
        }
        edit.new_via = Some(format!(
            "SIP/2.0/{} {};branch={branch};rport",
            if dest.tcp { "TCP" } else { "UDP" },
            self.advertised
        ));
        if creates_dialog && method == Method::Invite && self.node_at(flow_in).is_none() {
            self.retries.insert(
                branch,
                Sent {
                    original: msg.buffer().clone(),
                    from: flow_in,
                    uri: msg.request_uri().unwrap_or_default().to_owned(),
                    routes: rest_routes.to_vec(),
                    tries,
                    ack: None,
                },
                now,
            );
        }
        Ok(dest.forward(rebuild(msg, &vias, &routes, &edit)))
    }

    /// The node a request came from: by address over UDP; over TCP (a node's
    /// request too large for UDP) by IP, the connection's port being its own.
    fn node_at(&self, flow: Flow) -> Option<usize> {
        if flow.tcp {
            self.nodes.at_ip(flow.addr.ip())
        } else {
            self.nodes.at(flow.addr)
        }
    }

    /// The Record-Route value for a dialog between node `node` and the outside
    /// party at `outside`: one entry, or for a TCP party one per side, the side
    /// the request goes to on top.
    fn record_route(&self, node: &str, outside: Flow, toward_outside: bool) -> String {
        let inner = self.route_uri(Some(node), Some(outside), false);
        if !outside.tcp {
            return inner;
        }
        let outer = self.route_uri(Some(node), Some(outside), true);
        if toward_outside {
            format!("{outer}, {inner}")
        } else {
            format!("{inner}, {outer}")
        }
    }

    /// A node for a new request from outside.
    fn choose(&mut self, call_id: &str, branch: &str, now: Instant) -> Option<usize> {
        match self.share {
            Share::Hash => self.nodes.pick(call_id),
            Share::LeastLoad => {
                let node = self.nodes.pick_least_loaded()?;
                self.choices.insert(branch.to_owned(), node, now);
                Some(node)
            }
        }
    }

    /// A node refused a new INVITE with 503 + Retry-After: ACK the refusal and send
    /// the INVITE to the node the Call-ID now hashes to (the refusing one is
    /// draining). None when the INVITE is not known or has been tried enough.
    fn retry_refused(&mut self, msg: &Message, from: SocketAddr, now: Instant) -> Option<Forward> {
        let cseq = msg.header(HeaderName::CSeq)?;
        let (number, method) = cseq.trim().split_once(char::is_whitespace)?;
        if !method.trim().eq_ignore_ascii_case("INVITE") {
            return None;
        }
        let vias = parse_vias(msg.header_all(HeaderName::Via)).ok()?;
        let branch = vias.first()?.branch()?.to_owned();
        let sent = self.retries.get_mut(&branch)?;
        if let Some(ack) = &sent.ack {
            // The node sent its refusal again: the ACK was lost.
            return Some(Forward::Send(ack.0, ack.1.clone()));
        }
        if sent.tries >= MAX_TRIES {
            return None;
        }
        let mut ack = format!(
            "ACK {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\n",
            sent.uri,
            via_text(&vias[0])
        );
        for r in &sent.routes {
            ack.push_str(&format!("Route: {r}\r\n"));
        }
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            ack.push_str(&format!("{}: {}\r\n", name.as_str(), msg.header(name)?));
        }
        ack.push_str(&format!("CSeq: {number} ACK\r\nContent-Length: 0\r\n\r\n"));
        let ack = (from, Bytes::from(ack));
        sent.ack = Some(ack.clone());
        let (original, phone, tries) = (sent.original.clone(), sent.from, sent.tries);
        let framing = if phone.tcp {
            Framing::Stream
        } else {
            Framing::Datagram
        };
        let invite = Message::parse(original, framing).ok()?;
        // Not back to the node that refused it (it is draining now, but with
        // least_load its choice is remembered by branch).
        if let Some(choice) = self.choices.get_mut(&branch)
            && let Some(other) = self.nodes.pick_least_loaded()
        {
            *choice = other;
        }
        match self.request(&invite, phone, now, tries + 1) {
            Ok(Forward::Send(to, bytes)) if to != from => {
                self.stats.retried += 1;
                // The new node's entry replaced the old one: keep the ACK for the
                // refusing node's retransmissions.
                if let Some(s) = self.retries.get_mut(&branch) {
                    s.ack = Some(ack.clone());
                }
                Some(Forward::Several(vec![ack, (to, bytes)]))
            }
            // No other node takes calls: the phone gets the refusal.
            _ => None,
        }
    }

    fn response(
        &mut self,
        msg: &Message,
        from: SocketAddr,
        now: Instant,
    ) -> Result<Forward, &'static str> {
        let vias = parse_vias(msg.header_all(HeaderName::Via)).map_err(|_| "bad Via")?;
        let top = vias.first().ok_or("no Via")?;
        if !self.is_me(&top.host, top.port) {
            return Err("response whose top Via is not ours");
        }
        let status = msg.status().unwrap_or(0);
        let call_id = msg.header(HeaderName::CallId).unwrap_or_default().trim();
        if call_id.starts_with(PROBE_PREFIX) {
            let retry = msg.header(HeaderName::RetryAfter);
            let calls = msg
                .header_other(CALLS_HEADER)
                .and_then(|v| v.trim().parse().ok());
            if let Some((name, t)) = self
                .nodes
                .on_probe_response(call_id, status, retry, calls, now)
            {
                log_transition(&name, &t);
            }
            return Ok(Forward::Nothing);
        }
        // A node's own refusal of new work: 503 with Retry-After (RFC 3261 §21.5.4).
        if let Some(node) = self.nodes.at(from)
            && let Evidence::Refused { retry_after } =
                Evidence::from_response(status, msg.header(HeaderName::RetryAfter))
        {
            if let Some((name, t)) = self.nodes.refused(node, retry_after, now) {
                log_transition(&name, &t);
            }
            if let Some(retry) = self.retry_refused(msg, from, now) {
                return Ok(retry);
            }
        }
        let next = vias.get(1).ok_or("a response with only our Via")?;
        let dest = Flow {
            addr: via_address(next).ok_or("the next Via names no address")?,
            tcp: next.transport.eq_ignore_ascii_case("TCP"),
        };
        let edit = Edit {
            drop_top_via: true,
            ..Edit::default()
        };
        Ok(dest.forward(rebuild(msg, &vias, &route_values(msg)?, &edit)))
    }

    /// New INVITEs kept for a retry should their node refuse them.
    pub fn pending_invites(&self) -> usize {
        self.retries.len()
    }

    /// OPTIONS probes due now.
    pub fn probes(&mut self, now: Instant) -> Vec<(SocketAddr, Bytes)> {
        let (probes, changes) = self.nodes.poll(now);
        for (name, t) in &changes {
            log_transition(name, t);
        }
        probes
            .into_iter()
            .map(|p| {
                let text = format!(
                    "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b:016x};rport\r\n\
                     Max-Forwards: 70\r\nFrom: <sip:balancer@{me}>;tag={t:016x}\r\nTo: <sip:{addr}>\r\n\
                     Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n",
                    addr = p.addr,
                    me = self.advertised,
                    b = rand::random::<u64>(),
                    t = rand::random::<u64>(),
                    cid = p.call_id,
                );
                (p.addr, Bytes::from(text))
            })
            .collect()
    }

    /// `<sip:ME;lr;sn=NODE;fl=FLOW>`, with `transport=tcp` for the entry a TCP
    /// phone uses.
    fn route_uri(&self, node: Option<&str>, flow: Option<Flow>, tcp: bool) -> String {
        let mut s = format!("<sip:{}", self.advertised);
        if tcp {
            s.push_str(";transport=tcp");
        }
        s.push_str(";lr");
        if let Some(n) = node {
            s.push_str(";sn=");
            s.push_str(n);
        }
        if let Some(f) = flow {
            s.push_str(";fl=");
            s.push_str(&encode_flow(f));
        }
        s.push('>');
        s
    }

    /// A stateless answer to the sender of a request.
    fn reply(
        &self,
        msg: &Message,
        vias: &[Via<'_>],
        to: Flow,
        status: u16,
        reason: &str,
        retry_after: Option<u32>,
    ) -> Forward {
        let from = to.addr;
        if msg.method() == Some(&Method::Ack) {
            return Forward::Nothing;
        }
        let mut text = format!("SIP/2.0 {status} {reason}\r\n");
        for (i, line) in msg.header_all(HeaderName::Via).enumerate() {
            if i == 0 {
                text.push_str(&format!("Via: {}\r\n", stamp_via(&vias[0], from)));
                for v in split_list(line).unwrap_or_default().iter().skip(1) {
                    text.push_str(&format!("Via: {v}\r\n"));
                }
            } else {
                text.push_str(&format!("Via: {line}\r\n"));
            }
        }
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if let Some(v) = msg.header(name) {
                let v = if name == HeaderName::To && !v.contains(";tag=") {
                    format!("{v};tag=lb{:08x}", rand::random::<u32>())
                } else {
                    v.to_owned()
                };
                text.push_str(&format!("{}: {v}\r\n", name.as_str()));
            }
        }
        if let Some(s) = retry_after {
            text.push_str(&format!("Retry-After: {s}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        to.forward(Bytes::from(text))
    }
}

fn log_transition(name: &str, t: &gateway::health::Transition) {
    tracing::warn!(node = name, from = %t.from, to = %t.to, reason = %t.reason, "node health changed");
}

/// The changes one forwarded message needs.
#[derive(Debug, Default)]
struct Edit {
    new_via: Option<String>,
    drop_top_via: bool,
    /// Write `received`/`rport` of the sender into the top Via.
    stamp_top_via: Option<SocketAddr>,
    /// Route entries of the balancer's own at the top.
    drop_routes: usize,
    record_route: Option<String>,
    path: Option<String>,
    max_forwards: u32,
}

/// Writes the message out again with the edits: the balancer's Via, Record-Route
/// and Path on top of their lists, Via and Route lists one value per line.
fn rebuild(msg: &Message, vias: &[Via<'_>], routes: &[String], edit: &Edit) -> Bytes {
    let mut out = String::with_capacity(msg.buffer().len() + 200);
    match (msg.method(), msg.request_uri(), msg.status()) {
        (Some(m), Some(uri), _) => out.push_str(&format!("{} {uri} SIP/2.0\r\n", m.as_str())),
        (_, _, Some(code)) => out.push_str(&format!(
            "SIP/2.0 {code} {}\r\n",
            msg.reason_phrase().unwrap_or_default()
        )),
        _ => {}
    }
    if let Some(v) = &edit.new_via {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    let skip_via = usize::from(edit.drop_top_via);
    let mut vias_done = false;
    let mut routes_done = false;
    let mut rr_done = false;
    let mut path_done = false;
    let mut mf_done = false;
    let body = msg.body();
    let add_rr = |out: &mut String, done: &mut bool| {
        if !*done {
            if let Some(rr) = &edit.record_route {
                out.push_str(&format!("Record-Route: {rr}\r\n"));
            }
            *done = true;
        }
    };
    let add_path = |out: &mut String, done: &mut bool| {
        if !*done {
            if let Some(p) = &edit.path {
                out.push_str(&format!("Path: {p}\r\n"));
            }
            *done = true;
        }
    };
    for (name, raw_name, value) in msg.headers() {
        match name {
            HeaderName::Via => {
                if !vias_done {
                    for (i, v) in vias.iter().enumerate().skip(skip_via) {
                        let text = match (i, edit.stamp_top_via) {
                            (0, Some(from)) => stamp_via(v, from),
                            _ => via_text(v),
                        };
                        out.push_str(&format!("Via: {text}\r\n"));
                    }
                    vias_done = true;
                }
            }
            HeaderName::Route => {
                if !routes_done {
                    for r in routes.iter().skip(edit.drop_routes) {
                        out.push_str(&format!("Route: {r}\r\n"));
                    }
                    routes_done = true;
                }
            }
            HeaderName::RecordRoute => {
                add_rr(&mut out, &mut rr_done);
                out.push_str(&format!("Record-Route: {value}\r\n"));
            }
            HeaderName::Path => {
                add_path(&mut out, &mut path_done);
                out.push_str(&format!("Path: {value}\r\n"));
            }
            HeaderName::MaxForwards if msg.is_request() => {
                out.push_str(&format!("Max-Forwards: {}\r\n", edit.max_forwards));
                mf_done = true;
            }
            HeaderName::ContentLength => {}
            _ => out.push_str(&format!("{raw_name}: {value}\r\n")),
        }
    }
    add_rr(&mut out, &mut rr_done);
    add_path(&mut out, &mut path_done);
    if msg.is_request() && !mf_done {
        out.push_str(&format!("Max-Forwards: {}\r\n", edit.max_forwards));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// Every Route value, top first, across header lines.
fn route_values(msg: &Message) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    for line in msg.header_all(HeaderName::Route) {
        for v in split_list(line).map_err(|_| "bad Route")? {
            out.push(v.trim().to_owned());
        }
    }
    Ok(out)
}

fn has_to_tag(msg: &Message) -> bool {
    msg.header(HeaderName::To)
        .and_then(|t| NameAddr::parse(t).ok().map(|na| na.tag().is_some()))
        .unwrap_or(false)
}

/// Where a request goes when nothing recorded says: its next Route, else its
/// Request-URI (`maddr` first). Only IP literals: the balancer does no DNS on its
/// forwarding path.
fn next_hop(route: Option<&str>, msg: &Message) -> Result<SocketAddr, &'static str> {
    let target = match route {
        Some(r) => NameAddr::parse(r)
            .map_err(|_| "bad Route")?
            .uri_text
            .to_owned(),
        None => msg.request_uri().ok_or("no Request-URI")?.to_owned(),
    };
    let uri = Uri::parse(&target).map_err(|_| "bad URI")?;
    let sip = uri.as_sip().ok_or("not a SIP URI")?;
    let ip = match sip
        .params
        .value("maddr")
        .and_then(|m| m.parse::<IpAddr>().ok())
    {
        Some(ip) => ip,
        None => sip
            .host
            .ip()
            .ok_or("the next hop is a name, not an address")?,
    };
    Ok(SocketAddr::new(ip, sip.port.unwrap_or(5060)))
}

/// Where a response goes back to (RFC 3261 §18.2.2, RFC 3581).
fn via_address(v: &Via<'_>) -> Option<SocketAddr> {
    let ip = v.received().or_else(|| v.host.ip())?;
    let port = match v.rport() {
        Rport::Value(p) => p,
        _ => v.port.unwrap_or(5060),
    };
    Some(SocketAddr::new(ip, port))
}

fn via_text(v: &Via<'_>) -> String {
    let mut s = format!("SIP/2.0/{} {}", v.transport, v.host);
    if let Some(p) = v.port {
        s.push_str(&format!(":{p}"));
    }
    s.push_str(v.params.raw());
    s
}

/// The top Via with the sender's real address in `received` and `rport`, so the
/// answer goes back to where the request came from, through any NAT.
fn stamp_via(v: &Via<'_>, from: SocketAddr) -> String {
    let mut s = format!("SIP/2.0/{} {}", v.transport, v.host);
    if let Some(p) = v.port {
        s.push_str(&format!(":{p}"));
    }
    for (name, value) in v.params.iter() {
        if name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("rport") {
            continue;
        }
        s.push(';');
        s.push_str(name);
        if let Some(val) = value {
            s.push('=');
            s.push_str(val);
        }
    }
    s.push_str(&format!(";received={};rport={}", from.ip(), from.port()));
    s
}

/// The branch the balancer's Via carries, computed from the request so that a
/// retransmission and the CANCEL of an INVITE get the same one (§16.11): the node
/// matches them to its transaction without the balancer remembering anything.
fn branch_for(top: &Via<'_>, msg: &Message) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
    };
    match top.branch() {
        Some(b) if b.starts_with(MAGIC_COOKIE) => feed(b),
        // RFC 2543 peers: what identifies their transaction instead.
        _ => {
            feed(msg.header(HeaderName::CallId).unwrap_or_default());
            feed(
                msg.header(HeaderName::CSeq)
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .unwrap_or(""),
            );
        }
    }
    feed(&top.host.to_string());
    feed(&top.port.unwrap_or(5060).to_string());
    format!("z9hG4bKlb{h:016x}")
}

/// Where an outside party is reached: an address, over UDP or over the TCP
/// connection it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub addr: SocketAddr,
    pub tcp: bool,
}

impl Flow {
    pub fn udp(addr: SocketAddr) -> Flow {
        Flow { addr, tcp: false }
    }

    pub fn tcp(addr: SocketAddr) -> Flow {
        Flow { addr, tcp: true }
    }

    fn forward(self, bytes: Bytes) -> Forward {
        if self.tcp {
            Forward::Stream(self.addr, bytes)
        } else {
            Forward::Send(self.addr, bytes)
        }
    }
}

/// `fl=` carries an address in characters a URI parameter allows: `IP~PORT`, and
/// `~t` for a TCP connection.
fn encode_flow(f: Flow) -> String {
    let ip = match f.addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => v6.ip().to_string().replace(':', "-"),
    };
    let tcp = if f.tcp { "~t" } else { "" };
    format!("{ip}~{}{tcp}", f.addr.port())
}

fn decode_flow(s: &str) -> Option<Flow> {
    let mut parts = s.split('~');
    let ip: IpAddr = parts.next()?.replace('-', ":").parse().ok()?;
    let port = parts.next()?.parse().ok()?;
    let tcp = match parts.next() {
        None => false,
        Some("t") => true,
        Some(_) => return None,
    };
    Some(Flow {
        addr: SocketAddr::new(ip, port),
        tcp,
    })
}

#[cfg(test)]
mod tests;
