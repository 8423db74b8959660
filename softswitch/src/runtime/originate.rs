//! `softswitch originate`: a test call into the dialplan, placed by the node
//! itself. A small built-in phone on its own UDP ports sends the node an INVITE
//! for `exten@context` (let in by the node's per-process secret instead of a
//! digest), plays a 1 kHz tone once answered, and hangs up after the given time,
//! or when the far end does. The call is an ordinary call to the node: it runs
//! the dialplan, rings phones or peers, is relayed and gets a CDR (`src` is the
//! test call's caller ID number, `originate` unless given).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;

use crate::sip::transaction::TransportKind;
use crate::sip::wire::{Framing, HeaderName, Message, ResponseBuilder};

use super::Node;

/// The header carrying the node's secret, and the one naming the context.
pub const SECRET_HEADER: &str = "X-Softswitch-Originate";
pub const CONTEXT_HEADER: &str = "X-Softswitch-Context";

/// How long a test call may ring before the built-in phone gives up.
const RING_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Request {
    pub exten: String,
    pub context: String,
    /// Seconds to stay on the call once answered.
    #[serde(default = "ten")]
    pub seconds: u64,
    /// `"Name" <number>` or a number; the test call's caller ID.
    #[serde(default)]
    pub callerid: Option<String>,
}

fn ten() -> u64 {
    10
}

/// What was started: the test call's Call-ID.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Started {
    pub call_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OriginateError {
    #[error("`{0}` cannot be dialed (digits, letters, * # + - . _ only)")]
    BadExten(String),
    #[error("no context `{0}` in the running dialplan")]
    NoContext(String),
    #[error("seconds must be 1 to 3600")]
    BadDuration,
    #[error("the node has no UDP listen address to call")]
    NoUdp,
    #[error("cannot open the test call's sockets: {0}")]
    Io(#[from] std::io::Error),
}

impl Node {
    /// Starts a test call; it runs in the background.
    pub async fn originate(self: &Arc<Self>, req: Request) -> Result<Started, OriginateError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"*#+-._".contains(&b))
        };
        if !ok(&req.exten) {
            return Err(OriginateError::BadExten(req.exten));
        }
        if self.dialplan().contexts().all(|c| c.name != req.context) {
            return Err(OriginateError::NoContext(req.context));
        }
        if !(1..=3600).contains(&req.seconds) {
            return Err(OriginateError::BadDuration);
        }
        let node_addr = self
            .config
            .sip
            .listen
            .iter()
            .find(|l| l.transport == TransportKind::Udp)
            .map(|l| l.addr)
            .ok_or(OriginateError::NoUdp)?;
        // The node's own address: a wildcard listen is reached on loopback.
        let node_addr = if node_addr.ip().is_unspecified() {
            SocketAddr::new([127, 0, 0, 1].into(), node_addr.port())
        } else {
            node_addr
        };
        let sip = UdpSocket::bind(SocketAddr::new(node_addr.ip(), 0)).await?;
        let rtp = UdpSocket::bind(SocketAddr::new(node_addr.ip(), 0)).await?;
        let call_id = format!(
            "originate-{:016x}@{}",
            rand::random::<u64>(),
            node_addr.ip()
        );
        let phone = TestPhone {
            sip,
            rtp,
            node: node_addr,
            call_id: call_id.clone(),
            tag: format!("{:08x}", rand::random::<u32>()),
            domain: self.config.sip.domain.clone(),
            secret: self.originate_secret.clone(),
            req,
        };
        tokio::spawn(async move {
            let exten = phone.req.exten.clone();
            match phone.run().await {
                Ok(outcome) => tracing::info!(%exten, %outcome, "test call ended"),
                Err(e) => tracing::warn!(%exten, error = %e, "test call failed"),
            }
        });
        Ok(Started { call_id })
    }
}

struct TestPhone {
    sip: UdpSocket,
    rtp: UdpSocket,
    node: SocketAddr,
    call_id: String,
    tag: String,
    domain: String,
    secret: String,
    req: Request,
}

impl TestPhone {
    fn local(&self) -> String {
        self.sip
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    fn branch() -> String {
        format!("z9hG4bKorig{:016x}", rand::random::<u64>())
    }

    fn from(&self) -> String {
        let (name, number) = match &self.req.callerid {
            Some(text) => dialplan::interp::parse_callerid_text(text),
            None => (
                Some("softswitch test call".into()),
                Some("originate".into()),
            ),
        };
        let number = number.unwrap_or_else(|| "originate".into());
        match name {
            Some(n) => format!("\"{n}\" <sip:{number}@{}>;tag={}", self.domain, self.tag),
            None => format!("<sip:{number}@{}>;tag={}", self.domain, self.tag),
        }
    }

    fn invite(&self, branch: &str) -> String {
        let rtp = self.rtp.local_addr().map(|a| a.port()).unwrap_or(0);
        let ip = self.node.ip();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=softswitch test call\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        );
        format!(
            "INVITE sip:{exten}@{node} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: <sip:{exten}@{domain}>\r\nCall-ID: {cid}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:originate@{local}>\r\n{SECRET_HEADER}: {secret}\r\n\
             {CONTEXT_HEADER}: {context}\r\nUser-Agent: softswitch originate\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            exten = self.req.exten,
            node = self.node,
            local = self.local(),
            from = self.from(),
            domain = self.domain,
            cid = self.call_id,
            secret = self.secret,
            context = self.req.context,
            len = sdp.len(),
        )
    }

    /// An in-dialog request to the node (ACK, BYE) with the far end's To.
    fn in_dialog(&self, method: &str, cseq: u32, to: &str, branch: &str) -> String {
        format!(
            "{method} sip:{node} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            node = self.node,
            local = self.local(),
            from = self.from(),
            cid = self.call_id,
        )
    }

    async fn send(&self, text: &str) {
        if let Err(e) = self.sip.send_to(text.as_bytes(), self.node).await {
            tracing::debug!(error = %e, "test call: send failed");
        }
    }

    /// The next SIP message from the node within `wait`.
    async fn next(&self, wait: Duration) -> Option<Message> {
        let mut buf = vec![0u8; 65_535];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.sip.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            let bytes = Bytes::copy_from_slice(&buf[..n]);
            if let Ok(m) = Message::parse(bytes, Framing::Datagram) {
                return Some(m);
            }
        }
    }

    /// A 200 OK to a request from the node (its BYE, an in-dialog OPTIONS).
    async fn ok(&self, req: &Message) {
        let bytes = ResponseBuilder::new(req, 200, "OK", None, None).finish();
        if let Err(e) = self.sip.send_to(&bytes, self.node).await {
            tracing::debug!(error = %e, "test call: send failed");
        }
    }

    /// The whole call; a line saying how it ended.
    async fn run(self) -> Result<String, String> {
        let branch = Self::branch();
        let invite = self.invite(&branch);
        self.send(&invite).await;
        // INVITE retransmissions (RFC 3261 Timer A) until any answer; then wait
        // for the final one while it rings.
        let started = Instant::now();
        let mut pause = Duration::from_millis(500);
        let mut heard = false;
        let ok = loop {
            if started.elapsed() > RING_LIMIT {
                return Err("no answer in time".into());
            }
            let Some(m) = self.next(if heard { RING_LIMIT } else { pause }).await else {
                if heard {
                    return Err("no final answer".into());
                }
                if started.elapsed() > Duration::from_secs(32) {
                    return Err("the node did not answer the INVITE".into());
                }
                self.send(&invite).await;
                pause = (pause * 2).min(Duration::from_secs(4));
                continue;
            };
            let Some(status) = m.status() else {
                continue;
            };
            heard = true;
            match status {
                100..=199 => continue,
                200..=299 => break m,
                _ => {
                    let to = m.header(HeaderName::To).unwrap_or_default().to_owned();
                    let ack = format!(
                        "ACK sip:{}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\n\
                         Max-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\n\
                         Content-Length: 0\r\n\r\n",
                        self.req.exten,
                        self.node,
                        self.local(),
                        self.from(),
                        self.call_id
                    );
                    self.send(&ack).await;
                    return Ok(format!(
                        "refused: {status} {}",
                        m.reason_phrase().unwrap_or_default()
                    ));
                }
            }
        };
        let to = ok.header(HeaderName::To).unwrap_or_default().to_owned();
        let ack = self.in_dialog("ACK", 1, &to, &Self::branch());
        self.send(&ack).await;
        let relay = relay_of(&ok).ok_or("the answer has no audio address")?;

        // Talk: a 1 kHz tone, 20 ms a packet, until the time is up or a BYE.
        let end = tokio::time::Instant::now() + Duration::from_secs(self.req.seconds);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut seq, mut ts) = (rand::random::<u16>(), rand::random::<u32>());
        let ssrc = rand::random::<u32>();
        let tone = tone_packet();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => break,
                _ = tick.tick() => {
                    let mut rtp = Vec::with_capacity(172);
                    rtp.extend_from_slice(&[0x80, 0x00]);
                    rtp.extend_from_slice(&seq.to_be_bytes());
                    rtp.extend_from_slice(&ts.to_be_bytes());
                    rtp.extend_from_slice(&ssrc.to_be_bytes());
                    rtp.extend_from_slice(&tone);
                    let _ = self.rtp.send_to(&rtp, relay).await;
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(160);
                }
                m = self.next(Duration::from_secs(3600)) => {
                    let Some(m) = m else { continue };
                    match m.method().map(|m| m.as_str()) {
                        Some("BYE") => {
                            self.ok(&m).await;
                            return Ok("answered; the far end hung up".into());
                        }
                        // Our 200's ACK was lost: the node sends its 200 again.
                        None if m.status().is_some_and(|s| (200..300).contains(&s)) => {
                            self.send(&ack).await;
                        }
                        Some(_) => self.ok(&m).await,
                        None => {}
                    }
                }
            }
        }
        let bye = self.in_dialog("BYE", 2, &to, &Self::branch());
        for _ in 0..6 {
            self.send(&bye).await;
            if let Some(m) = self.next(Duration::from_millis(500)).await
                && m.status().is_some()
                && m.header(HeaderName::CSeq)
                    .is_some_and(|c| c.contains("BYE"))
            {
                break;
            }
        }
        Ok(format!("answered; hung up after {} s", self.req.seconds))
    }
}

/// The relay's RTP address from a 2xx's SDP.
fn relay_of(m: &Message) -> Option<SocketAddr> {
    let body = std::str::from_utf8(m.body()).ok()?;
    let ip = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let port = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// 20 ms of a 1 kHz tone in µ-law: one period is 8 samples at 8 kHz.
fn tone_packet() -> Vec<u8> {
    (0..160)
        .map(|i| {
            let x = (2.0 * std::f64::consts::PI * f64::from(i) / 8.0).sin();
            media::g711::ulaw_encode((x * 8000.0) as i16)
        })
        .collect()
}
