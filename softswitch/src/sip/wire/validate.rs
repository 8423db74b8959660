//! The checks a request must pass before any layer acts on it (RFC 3261 §8.2, §16.3 and
//! the invalid messages of RFC 4475 §3.1.2 and §3.3). A failure carries the response to
//! send; the checks run in the order RFC 3261 §8.2 gives so the most basic fault wins.

use super::error::Rejection;
use super::header_name::HeaderName;
use super::message::Message;
use super::name_addr::NameAddr;
use super::typed::CSeq;
use super::uri::Uri;
use super::via::Via;

/// The parsed heads every request has, borrowed from the message.
#[derive(Debug, Clone)]
pub struct RequestHeads<'a> {
    pub top_via: Via<'a>,
    pub call_id: &'a str,
    pub cseq: CSeq,
    pub from: NameAddr<'a>,
    pub to: NameAddr<'a>,
    pub uri: Uri<'a>,
}

/// Validates a request. `Err` is the final response it deserves.
pub fn validate_request(msg: &Message) -> Result<RequestHeads<'_>, Rejection> {
    if let Some(defect) = msg.defect() {
        return Err(defect.clone());
    }
    let method = msg
        .method()
        .ok_or_else(|| Rejection::bad_request("Not a request"))?;

    let vias = msg
        .vias()
        .map_err(|e| Rejection::bad_request(format!("Malformed Via ({})", e.what)))?;
    let top_via = *vias
        .first()
        .ok_or_else(|| Rejection::bad_request("Missing Via header"))?;

    for (name, label) in [
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
    ] {
        match msg.count(name) {
            0 => return Err(Rejection::bad_request(format!("Missing {label} header"))),
            1 => {}
            _ => return Err(Rejection::bad_request(format!("Multiple {label} headers"))),
        }
    }
    for name in [
        HeaderName::MaxForwards,
        HeaderName::Expires,
        HeaderName::ContentType,
    ] {
        if msg.count(name) > 1 {
            return Err(Rejection::bad_request(format!("Multiple {name} headers")));
        }
    }

    let from = msg
        .from_header()
        .map_err(|e| Rejection::bad_request(format!("Malformed From ({})", e.what)))?;
    let to = msg
        .to_header()
        .map_err(|e| Rejection::bad_request(format!("Malformed To ({})", e.what)))?;
    let call_id = msg.call_id().unwrap_or_default();
    if call_id.is_empty() || call_id.contains([' ', '\t']) {
        return Err(Rejection::bad_request("Malformed Call-ID"));
    }
    let cseq = msg
        .cseq()
        .map_err(|e| Rejection::bad_request(format!("Malformed CSeq ({})", e.what)))?;
    if &cseq.method != method {
        return Err(Rejection::bad_request(
            "CSeq method does not match the request method",
        ));
    }
    if let Some(Err(e)) = msg.max_forwards() {
        return Err(Rejection::bad_request(format!("Malformed {}", e.what)));
    }
    if let Some(Err(e)) = msg.expires() {
        return Err(Rejection::bad_request(format!(
            "Malformed Expires ({})",
            e.what
        )));
    }

    if let Some(date) = msg.header(HeaderName::Date)
        && !date.trim_end().ends_with("GMT")
    {
        // SIP-date is an RFC 1123 date in GMT only (RFC 3261 §20.17, RFC 4475 §3.1.2.12).
        return Err(Rejection::bad_request("Malformed Date (must be in GMT)"));
    }

    let uri_text = msg.request_uri().unwrap_or_default();
    let uri = match Uri::parse(uri_text) {
        Ok(Uri::Other { .. }) => return Err(Rejection::new(416, "Unsupported URI Scheme")),
        Ok(uri) => uri,
        Err(e) => {
            return Err(Rejection::bad_request(format!(
                "Malformed Request-URI ({})",
                e.what
            )));
        }
    };
    if let Uri::Sip(sip) = &uri
        && sip.headers.is_some()
    {
        // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        return Err(Rejection::bad_request("Request-URI must not carry headers"));
    }
    if matches!(
        method,
        super::method::Method::Register | super::method::Method::Invite
    ) {
        msg.contacts()
            .map_err(|e| Rejection::bad_request(format!("Malformed Contact ({})", e.what)))?;
    }

    Ok(RequestHeads {
        top_via,
        call_id,
        cseq,
        from,
        to,
        uri,
    })
}

/// The option tags in Require that this element does not support (answer 420 with
/// them in Unsupported, RFC 3261 §8.2.2.3). CANCEL and ACK are never refused this way.
pub fn unsupported_requirements<'a>(msg: &'a Message, supported: &[&str]) -> Vec<&'a str> {
    if matches!(
        msg.method(),
        Some(super::method::Method::Ack | super::method::Method::Cancel)
    ) {
        return Vec::new();
    }
    msg.option_tags(HeaderName::Require)
        .filter(|tag| !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect()
}
