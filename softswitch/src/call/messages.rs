//! Requests the call agent originates on a leg: the INVITE of a Dial, ACK, CANCEL,
//! BYE and relayed in-dialog requests. Pure functions of the leg's dialog state.

use bytes::Bytes;

use crate::sip::transaction::TransportKind;
use crate::sip::wire::{Method, NameAddr, RequestBuilder};

/// Our own address on the transport a request leaves on.
#[derive(Debug, Clone)]
pub struct Local {
    /// `host:port`, IPv6 in brackets.
    pub hostport: String,
    pub transport: TransportKind,
}

impl Local {
    fn proto(&self) -> &'static str {
        match self.transport {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }

    pub fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.proto(),
            self.hostport
        )
    }

    pub fn contact(&self) -> String {
        match self.transport {
            TransportKind::Udp => format!("<sip:softswitch@{}>", self.hostport),
            _ => format!(
                "<sip:softswitch@{};transport={}>",
                self.hostport,
                self.proto().to_ascii_lowercase()
            ),
        }
    }
}

pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn new_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

/// The dialog fields of a request.
#[derive(Debug, Clone, Copy)]
pub struct Dialog<'a> {
    pub uri: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
}

/// A request on a leg. `extra` headers come after the dialog headers; `body` is
/// `(content type, bytes)`.
pub fn request(
    method: &Method,
    d: Dialog<'_>,
    local: &Local,
    branch: &str,
    user_agent: &str,
    extra: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) -> Bytes {
    let mut b = RequestBuilder::new(method, d.uri)
        .header("Via", local.via(branch))
        .header("Max-Forwards", 70)
        .header("From", d.from)
        .header("To", d.to)
        .header("Call-ID", d.call_id)
        .header("CSeq", format!("{} {method}", d.cseq));
    if !matches!(method, Method::Ack | Method::Cancel | Method::Bye) {
        b = b.header("Contact", local.contact());
    }
    for (name, value) in extra {
        b = b.header(name, value);
    }
    b = b.header("User-Agent", user_agent);
    match body {
        Some((content_type, bytes)) => b.body(Some(content_type), bytes),
        None => b.finish(),
    }
}

/// The URI inside a name-addr header value (Contact, From, To).
pub fn uri_of(value: &str) -> Option<String> {
    NameAddr::parse(value).ok().map(|n| n.uri_text.to_owned())
}

/// A From header value for the callee: the caller ID the dialplan settled on.
pub fn caller_from(name: Option<&str>, number: &str, domain: &str, tag: &str) -> String {
    let user: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(*c))
        .collect();
    let user = if user.is_empty() {
        "anonymous".to_owned()
    } else {
        user
    };
    match name.filter(|n| !n.is_empty()) {
        Some(n) => {
            let quoted = n.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{quoted}\" <sip:{user}@{domain}>;tag={tag}")
        }
        None => format!("<sip:{user}@{domain}>;tag={tag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::{Framing, Message};

    fn local() -> Local {
        Local {
            hostport: "127.0.0.1:5060".into(),
            transport: TransportKind::Udp,
        }
    }

    #[test]
    fn invite_parses_and_carries_the_dialog() {
        let d = Dialog {
            uri: "sip:1002@127.0.0.9:5070",
            from: &caller_from(Some("Alice \"A\""), "1001", "pbx.test", "abc"),
            to: "<sip:1002@pbx.test>",
            call_id: "cid-1",
            cseq: 1,
        };
        let bytes = request(
            &Method::Invite,
            d,
            &local(),
            "z9hG4bKx",
            "softswitch/test",
            &[],
            Some(("application/sdp", b"v=0\r\n")),
        );
        let msg = Message::parse(bytes, Framing::Stream).expect("our INVITE parses");
        assert_eq!(msg.request_uri(), Some("sip:1002@127.0.0.9:5070"));
        assert_eq!(msg.from_header().unwrap().tag(), Some("abc"));
        assert_eq!(
            msg.from_header().unwrap().display.as_deref(),
            Some("Alice \"A\"")
        );
        assert_eq!(msg.call_id(), Some("cid-1"));
        assert_eq!(msg.body(), b"v=0\r\n");
        assert_eq!(
            msg.header(crate::sip::wire::HeaderName::Contact),
            Some("<sip:softswitch@127.0.0.1:5060>")
        );
    }

    #[test]
    fn bye_and_ack_carry_no_contact() {
        let d = Dialog {
            uri: "sip:a@h",
            from: "<sip:x@y>;tag=1",
            to: "<sip:a@h>;tag=2",
            call_id: "c",
            cseq: 2,
        };
        for m in [Method::Bye, Method::Ack, Method::Cancel] {
            let bytes = request(&m, d, &local(), "z9hG4bKy", "ua", &[], None);
            let msg = Message::parse(bytes, Framing::Stream).unwrap();
            assert!(msg.header(crate::sip::wire::HeaderName::Contact).is_none());
        }
    }

    #[test]
    fn caller_from_sanitises_the_number() {
        assert_eq!(caller_from(None, "", "d", "t"), "<sip:anonymous@d>;tag=t");
        assert_eq!(
            caller_from(Some(""), "10 01", "d", "t"),
            "<sip:1001@d>;tag=t"
        );
    }
}
