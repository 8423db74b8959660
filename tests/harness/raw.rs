//! Hand-written REGISTER exchanges over a raw UDP socket, with the digest computed here,
//! for checks that need exact control: comparing two challenges header by header,
//! querying bindings, hammering with wrong passwords.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::net::{UdpClient, headers, status_of};

static SEQ: AtomicU32 = AtomicU32::new(1);

/// One REGISTER dialogue (fixed Call-ID, rising CSeq).
pub struct Registration<'a> {
    pub client: &'a UdpClient,
    pub to: SocketAddr,
    pub user: String,
    pub domain: String,
    pub call_id: String,
    pub cseq: u32,
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// Reads `name="value"` or `name=value` out of a challenge.
pub fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let at = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[at..];
    Some(if let Some(q) = rest.strip_prefix('"') {
        q[..q.find('"')?].to_owned()
    } else {
        rest.split([',', ' ']).next()?.to_owned()
    })
}

/// An `Authorization:` line (with CRLF) answering an MD5 `challenge` for `method` on `uri`.
pub fn authorization(
    user: &str,
    uri: &str,
    method: &str,
    challenge: &str,
    password: &str,
    nc: u32,
) -> String {
    let realm = challenge_param(challenge, "realm").expect("realm");
    let nonce = challenge_param(challenge, "nonce").expect("nonce");
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:e2ecnonce:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, cnonce=\"e2ecnonce\", qop=auth, nc={nc}\r\n"
    )
}

impl<'a> Registration<'a> {
    pub fn new(
        client: &'a UdpClient,
        to: SocketAddr,
        user: &str,
        domain: &str,
    ) -> Registration<'a> {
        Registration {
            client,
            to,
            user: user.into(),
            domain: domain.into(),
            call_id: format!(
                "raw-{}-{}@test",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ),
            cseq: 1,
        }
    }

    /// The registrations that follow use this Call-ID (a phone that rebooted,
    /// or one steered to a given node through the balancer).
    pub fn with_call_id(mut self, call_id: &str) -> Registration<'a> {
        self.call_id = call_id.to_owned();
        self
    }

    /// Builds a REGISTER. `contact` of `None` makes a query; `extra` holds further
    /// header lines (each ending in CRLF).
    pub fn request(&mut self, contact: Option<&str>, expires: Option<u32>, extra: &str) -> String {
        let local = self.client.local();
        let branch = format!("z9hG4bK{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let mut s = format!(
            "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=rawtag\r\nTo: <sip:{user}@{domain}>\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nUser-Agent: softswitch-e2e\r\n",
            domain = self.domain,
            user = self.user,
            cid = self.call_id,
            cseq = self.cseq
        );
        self.cseq += 1;
        if let Some(c) = contact {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        s.push_str(extra);
        s.push_str("Content-Length: 0\r\n\r\n");
        s
    }

    /// The Authorization line answering `challenge` (a WWW-Authenticate value) with MD5.
    pub fn answer(&self, challenge: &str, password: &str, nc: u32) -> String {
        let uri = format!("sip:{}", self.domain);
        authorization(&self.user, &uri, "REGISTER", challenge, password, nc)
    }

    /// Sends a REGISTER, answers the 401 with `password`, and returns both final
    /// responses (the challenge and the answer to the authenticated request).
    pub fn register(
        &mut self,
        password: &str,
        contact: Option<&str>,
        expires: Option<u32>,
    ) -> (String, Option<String>) {
        let wait = Duration::from_secs(5);
        let first = self.request(contact, expires, "");
        let challenge_msg = self
            .client
            .request(self.to, &first, wait)
            .expect("no answer to REGISTER");
        if status_of(&challenge_msg) != Some(401) {
            return (challenge_msg, None);
        }
        let challenge = headers(&challenge_msg, "WWW-Authenticate")
            .into_iter()
            .find(|c| c.contains("algorithm=MD5"))
            .expect("an MD5 challenge")
            .to_owned();
        let auth = self.answer(&challenge, password, 1);
        let second = self.request(contact, expires, &auth);
        let answer = self.client.request(self.to, &second, wait);
        (challenge_msg, answer)
    }
}

/// `user`'s phone on `desk` subscribes to its mailbox's message-waiting state
/// (RFC 3842) at `switch`: the first SUBSCRIBE must be challenged with 401, the
/// second carries the digest (password `secret<user>`). The NOTIFYs that follow
/// are the caller's to read.
pub fn subscribe_mwi(desk: &UdpClient, switch: SocketAddr, user: &str) {
    let subscribe = |auth: &str, cseq: u32| {
        format!(
            "SUBSCRIBE sip:{user}@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKmwi{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@pbx.test>;tag=desk\r\nTo: <sip:{user}@pbx.test>\r\n\
             Call-ID: mwi-{user}@{local}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:{user}@{local}>\r\n\
             Event: message-summary\r\nAccept: application/simple-message-summary\r\nExpires: 600\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            local = desk.local()
        )
    };
    let challenge = desk
        .request(switch, &subscribe("", 1), Duration::from_secs(5))
        .expect("an answer to SUBSCRIBE");
    assert_eq!(status_of(&challenge), Some(401), "{challenge}");
    let www = headers(&challenge, "WWW-Authenticate")
        .into_iter()
        .find(|c| c.contains("MD5"))
        .expect("an MD5 challenge")
        .to_string();
    let auth = authorization(
        user,
        &format!("sip:{user}@pbx.test"),
        "SUBSCRIBE",
        &www,
        &format!("secret{user}"),
        1,
    );
    desk.send(switch, subscribe(&auth, 2).as_bytes());
}
