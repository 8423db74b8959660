//! Writing messages. Responses copy the request's Via, From, To, Call-ID and CSeq as
//! received (RFC 3261 §8.2.6.2), so a response never depends on our parsers agreeing
//! with the peer's spelling; only the top Via gains `received`/`rport` (§18.2.1, RFC 3581).

use std::fmt::{Display, Write as _};
use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use super::header_name::HeaderName;
use super::message::Message;
use super::method::Method;
use super::text::split_list;
use super::via::Via;

/// The standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match code / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Builds a response to `req`.
pub struct ResponseBuilder {
    buf: BytesMut,
}

impl ResponseBuilder {
    /// Starts a response. `source` is where the request came from (for `received` and
    /// `rport`); `to_tag` is added to To when the request's To has none and the status is
    /// above 100 (RFC 3261 §8.2.6.2).
    pub fn new(
        req: &Message,
        code: u16,
        reason: &str,
        source: Option<SocketAddr>,
        to_tag: Option<&str>,
    ) -> Self {
        let mut buf = BytesMut::with_capacity(512 + req.buffer().len() / 2);
        let _ = write!(buf, "SIP/2.0 {code} {reason}\r\n");
        let mut first_via = true;
        for value in req.header_all(HeaderName::Via) {
            if first_via {
                first_via = false;
                let top = top_via_with_source(value, source);
                line(&mut buf, "Via", &top);
            } else {
                line(&mut buf, "Via", value);
            }
        }
        if let Some(from) = req.header(HeaderName::From) {
            line(&mut buf, "From", from);
        }
        if let Some(to) = req.header(HeaderName::To) {
            let needs_tag =
                code > 100 && req.to_header().map(|t| t.tag().is_none()).unwrap_or(false);
            match to_tag {
                Some(tag) if needs_tag => {
                    let _ = write!(buf, "To: {to};tag={tag}\r\n");
                }
                _ => line(&mut buf, "To", to),
            }
        }
        if let Some(call_id) = req.call_id() {
            line(&mut buf, "Call-ID", call_id);
        }
        if let Some(cseq) = req.header(HeaderName::CSeq) {
            line(&mut buf, "CSeq", cseq);
        }
        ResponseBuilder { buf }
    }

    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    pub fn finish(self) -> Bytes {
        self.body(None, b"")
    }

    pub fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        if let Some(ct) = content_type {
            let _ = write!(self.buf, "Content-Type: {ct}\r\n");
        }
        let _ = write!(self.buf, "Content-Length: {}\r\n\r\n", body.len());
        self.buf.put_slice(body);
        self.buf.freeze()
    }
}

fn line(buf: &mut BytesMut, name: &str, value: &str) {
    buf.put_slice(name.as_bytes());
    buf.put_slice(b": ");
    buf.put_slice(value.as_bytes());
    buf.put_slice(b"\r\n");
}

/// Adds `received` when the sent-by host is not the packet's source address, and fills
/// in a requested `rport` (RFC 3581 §4). Only the first value of the line changes.
fn top_via_with_source(value: &str, source: Option<SocketAddr>) -> String {
    let Some(src) = source else {
        return value.to_owned();
    };
    let Ok(items) = split_list(value) else {
        return value.to_owned();
    };
    let first = items[0];
    let Ok(via) = Via::parse(first) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(value.len() + 40);
    let requested_rport = matches!(via.rport(), super::via::Rport::Requested);
    // Rebuild the first Via: the sent-protocol and sent-by as written, then the params
    // with `rport` filled and `received` added.
    let params_at = first.len() - via.params.raw().len();
    out.push_str(first[..params_at].trim_end());
    let mut has_received = false;
    for (name, val) in via.params.iter() {
        if name.eq_ignore_ascii_case("rport") && requested_rport {
            let _ = write!(out, ";rport={}", src.port());
            continue;
        }
        if name.eq_ignore_ascii_case("received") {
            has_received = true;
            let _ = write!(out, ";received={}", ip_param(src.ip()));
            continue;
        }
        match val {
            Some(v) => {
                let _ = write!(out, ";{name}={v}");
            }
            None => {
                let _ = write!(out, ";{name}");
            }
        }
    }
    if !has_received && (via.host.ip() != Some(src.ip()) || requested_rport) {
        let _ = write!(out, ";received={}", ip_param(src.ip()));
    }
    for rest in &items[1..] {
        out.push_str(", ");
        out.push_str(rest);
    }
    out
}

fn ip_param(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// Builds a request from scratch (client transactions: OPTIONS probes, outgoing legs).
pub struct RequestBuilder {
    buf: BytesMut,
}

impl RequestBuilder {
    pub fn new(method: &Method, uri: impl Display) -> Self {
        let mut buf = BytesMut::with_capacity(512);
        let _ = write!(buf, "{method} {uri} SIP/2.0\r\n");
        RequestBuilder { buf }
    }

    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    pub fn finish(self) -> Bytes {
        self.body(None, b"")
    }

    pub fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        if let Some(ct) = content_type {
            let _ = write!(self.buf, "Content-Type: {ct}\r\n");
        }
        let _ = write!(self.buf, "Content-Length: {}\r\n\r\n", body.len());
        self.buf.put_slice(body);
        self.buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::{Framing, Message};

    fn req(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()), Framing::Datagram).unwrap()
    }

    #[test]
    fn response_copies_heads_and_fills_rport() {
        let r = req("REGISTER sip:pbx.local SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK77;rport, SIP/2.0/UDP proxy;branch=z9hG4bK1\r\n\
             From: <sip:1001@pbx.local>;tag=a\r\nTo: <sip:1001@pbx.local>\r\nCall-ID: c1\r\nCSeq: 3 REGISTER\r\n\
             Content-Length: 0\r\n\r\n");
        let src: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        let out = ResponseBuilder::new(&r, 200, "OK", Some(src), Some("xyz"))
            .header("Expires", 60)
            .finish();
        let resp = Message::parse(out, Framing::Datagram).unwrap();
        assert_eq!(resp.status(), Some(200));
        let vias = resp.vias().unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].rport(), super::super::via::Rport::Value(40000));
        assert_eq!(vias[0].received(), Some(src.ip()));
        assert_eq!(vias[0].branch(), Some("z9hG4bK77"));
        assert_eq!(resp.to_header().unwrap().tag(), Some("xyz"));
        assert_eq!(resp.header(HeaderName::CSeq), Some("3 REGISTER"));
        assert_eq!(resp.header_other("Expires"), None);
        assert_eq!(resp.header(HeaderName::Expires), Some("60"));
    }

    #[test]
    fn no_received_when_sent_by_matches_source() {
        let r = req(
            "OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK9\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:pbx>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
        );
        let out = ResponseBuilder::new(
            &r,
            200,
            "OK",
            Some("127.0.0.1:5070".parse().unwrap()),
            Some("new"),
        )
        .finish();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK9\r\n"),
            "{text}"
        );
        // The request already had a To tag; it must not gain a second one.
        assert!(text.contains("To: <sip:pbx>;tag=2\r\n"), "{text}");
    }
}
