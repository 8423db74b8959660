//! Transaction keys (RFC 3261 §17.1.3 and §17.2.3).
//!
//! Requests carrying an RFC 3261 branch (magic cookie) are matched on branch, sent-by
//! and method, with ACK folded into INVITE so it finds the INVITE it acknowledges.
//! Requests from RFC 2543 peers (no cookie) fall back to the dialog-ish tuple the RFC
//! gives: Request-URI, From tag, Call-ID, CSeq number and the top Via.

use crate::sip::wire::{MAGIC_COOKIE, Message, Method};

/// The method part of a key: ACK matches its INVITE, everything else itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyMethod {
    Invite,
    Cancel,
    Other(Method),
}

impl KeyMethod {
    pub fn of(method: &Method) -> KeyMethod {
        match method {
            Method::Invite | Method::Ack => KeyMethod::Invite,
            Method::Cancel => KeyMethod::Cancel,
            m => KeyMethod::Other(m.clone()),
        }
    }
}

/// Identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKey {
    Rfc3261 {
        branch: Box<str>,
        sent_by: Box<str>,
        method: KeyMethod,
    },
    Rfc2543 {
        uri: Box<str>,
        from_tag: Box<str>,
        call_id: Box<str>,
        cseq: u32,
        via: Box<str>,
        method: KeyMethod,
    },
}

impl ServerKey {
    /// The key of a received request, or `None` if the heads needed are unreadable.
    pub fn of_request(msg: &Message) -> Option<ServerKey> {
        let method = msg.method()?;
        let via = msg.top_via().ok()?;
        if let Some(branch) = via.branch().filter(|b| b.starts_with(MAGIC_COOKIE)) {
            let (host, port) = via.sent_by();
            return Some(ServerKey::Rfc3261 {
                branch: branch.into(),
                sent_by: format!("{}:{port}", host.to_string().to_ascii_lowercase()).into(),
                method: KeyMethod::of(method),
            });
        }
        let from = msg.from_header().ok()?;
        Some(ServerKey::Rfc2543 {
            uri: msg.request_uri()?.into(),
            from_tag: from.tag().unwrap_or_default().into(),
            call_id: msg.call_id()?.into(),
            cseq: msg.cseq().ok()?.seq,
            via: msg.header(crate::sip::wire::HeaderName::Via)?.into(),
            method: KeyMethod::of(method),
        })
    }

    /// The key of the INVITE a CANCEL with this key would cancel (same branch and
    /// sent-by, §9.2).
    pub fn invite_of_cancel(&self) -> ServerKey {
        let mut k = self.clone();
        match &mut k {
            ServerKey::Rfc3261 { method, .. } | ServerKey::Rfc2543 { method, .. } => {
                *method = KeyMethod::Invite
            }
        }
        k
    }
}

/// Identifies a client transaction: our own branch plus the CSeq method (§17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub branch: Box<str>,
    pub method: KeyMethod,
}

impl ClientKey {
    /// The client transaction a response belongs to.
    pub fn of_response(msg: &Message) -> Option<ClientKey> {
        let via = msg.top_via().ok()?;
        let cseq = msg.cseq().ok()?;
        Some(ClientKey {
            branch: via.branch()?.into(),
            method: KeyMethod::of(&cseq.method),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::Framing;
    use bytes::Bytes;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()), Framing::Datagram).unwrap()
    }

    const HEADS: &str = "From: <sip:a@b>;tag=f\r\nTo: <sip:b@b>\r\nCall-ID: c\r\n";

    #[test]
    fn ack_and_cancel_find_their_invite() {
        let inv = msg(&format!(
            "INVITE sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP Host.Example:5070;branch=z9hG4bK1\r\n{HEADS}CSeq: 1 INVITE\r\n\r\n"
        ));
        let ack = msg(&format!(
            "ACK sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example:5070;branch=z9hG4bK1\r\n{HEADS}CSeq: 1 ACK\r\n\r\n"
        ));
        let cancel = msg(&format!(
            "CANCEL sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example:5070;branch=z9hG4bK1\r\n{HEADS}CSeq: 1 CANCEL\r\n\r\n"
        ));
        let k_inv = ServerKey::of_request(&inv).unwrap();
        assert_eq!(ServerKey::of_request(&ack).unwrap(), k_inv);
        let k_cancel = ServerKey::of_request(&cancel).unwrap();
        assert_ne!(k_cancel, k_inv);
        assert_eq!(k_cancel.invite_of_cancel(), k_inv);
    }

    #[test]
    fn rfc2543_requests_use_the_fallback_key() {
        let inv = msg(&format!(
            "INVITE sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example\r\n{HEADS}CSeq: 7 INVITE\r\n\r\n"
        ));
        let ack = msg(
            "ACK sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:b@b>;tag=new\r\nCall-ID: c\r\nCSeq: 7 ACK\r\n\r\n",
        );
        let k = ServerKey::of_request(&inv).unwrap();
        assert!(matches!(k, ServerKey::Rfc2543 { .. }));
        assert_eq!(ServerKey::of_request(&ack).unwrap(), k);
    }
}
