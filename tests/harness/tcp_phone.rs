//! A phone on TCP written by hand: SIPp cannot take a new call on the connection
//! its own REGISTER opened (it maps messages to calls by Call-ID), and that is
//! exactly what a phone behind NAT needs from the switch or the balancer.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::net::headers;

/// The To tag the phone answers with.
pub const TAG: &str = "tcpphone";

pub struct TcpPhone {
    stream: TcpStream,
    pending: Vec<u8>,
    user: String,
}

impl TcpPhone {
    /// Opens the connection the phone keeps for everything.
    pub fn connect(to: SocketAddr, user: &str) -> TcpPhone {
        let stream = TcpStream::connect(to).unwrap_or_else(|e| panic!("connect to {to}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        TcpPhone {
            stream,
            pending: Vec::new(),
            user: user.to_owned(),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    pub fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    /// The next whole message on the connection (headers and Content-Length body).
    pub fn next_message(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                let len = headers(&head, "Content-Length")
                    .first()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if self.pending.len() >= end + 4 + len {
                    let msg: Vec<u8> = self.pending.drain(..end + 4 + len).collect();
                    let text = String::from_utf8_lossy(&msg).into_owned();
                    if text.trim().is_empty() {
                        continue;
                    }
                    return text;
                }
            }
            let mut buf = [0u8; 4096];
            let n = self
                .stream
                .read(&mut buf)
                .expect("the connection stays open");
            assert!(n > 0, "the other side closed the connection");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// The next request of `method`, answering nothing on the way.
    pub fn next_request(&mut self, method: &str) -> String {
        loop {
            let m = self.next_message();
            if m.starts_with(&format!("{method} ")) {
                return m;
            }
        }
    }

    /// Registers for 600 s at `domain` with digest authentication; returns the
    /// final response.
    pub fn register(&mut self, domain: &str, password: &str) -> String {
        let local = self.local();
        let user = self.user.clone();
        let register = |cseq: u32, auth: &str| {
            format!(
                "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcpreg{cseq}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=tcpreg\r\nTo: <sip:{user}@{domain}>\r\n\
                 Call-ID: tcpreg-{user}@test\r\nCSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:{user}@{local};transport=tcp>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
            )
        };
        self.send(&register(1, ""));
        let challenge = self.next_message();
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        let md5 = headers(&challenge, "WWW-Authenticate")
            .into_iter()
            .find(|c| c.contains("MD5"))
            .expect("an MD5 challenge")
            .to_owned();
        let auth = crate::raw::authorization(
            &user,
            &format!("sip:{domain}"),
            "REGISTER",
            &md5,
            password,
            1,
        );
        self.send(&register(2, &auth));
        self.next_message()
    }

    /// The phone's response to `req`, with its To tag; `body` is SDP.
    pub fn reply(&self, req: &str, status: &str, body: Option<&str>) -> String {
        let mut out = format!("SIP/2.0 {status}\r\n");
        for v in headers(req, "Via") {
            out.push_str(&format!("Via: {v}\r\n"));
        }
        for v in headers(req, "Record-Route") {
            out.push_str(&format!("Record-Route: {v}\r\n"));
        }
        let to = headers(req, "To")[0].to_owned();
        let to = if to.contains("tag=") {
            to
        } else {
            format!("{to};tag={TAG}")
        };
        out.push_str(&format!(
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
            headers(req, "From")[0],
            headers(req, "Call-ID")[0],
            headers(req, "CSeq")[0]
        ));
        match body {
            Some(b) => out.push_str(&format!(
                "Contact: <sip:{}@{};transport=tcp>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
                self.user,
                self.local(),
                b.len()
            )),
            None => out.push_str("Content-Length: 0\r\n\r\n"),
        }
        out
    }

    /// A BYE for the call `invite` set up, sent by this phone as its callee: to
    /// the caller's Contact along the recorded route (RFC 3261 §12.1.1).
    pub fn bye(&mut self, invite: &str) {
        let target = headers(invite, "Contact")[0]
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        let mut out = format!(
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bKtcpbye{}\r\nMax-Forwards: 70\r\n",
            self.local(),
            std::process::id()
        );
        for v in headers(invite, "Record-Route") {
            out.push_str(&format!("Route: {v}\r\n"));
        }
        out.push_str(&format!(
            "From: {};tag={TAG}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            headers(invite, "To")[0],
            headers(invite, "From")[0],
            headers(invite, "Call-ID")[0]
        ));
        self.send(&out);
    }
}

/// SDP for an audio stream the phone receives at `media` (PCMU).
pub fn sdp(media: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 2 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = media.ip(),
        port = media.port()
    )
}
