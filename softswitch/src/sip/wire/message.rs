//! The message index: one `Bytes` per message and byte spans for the start line, each
//! header and the body, in the manner of hyper's `role.rs`. Typed views (Via, name-addr,
//! CSeq, …) are parsed on demand from those spans.
//!
//! Parsing never gives up on a message whose framing is sound: a defect that deserves a
//! 4xx/5xx (bad request line, bad Content-Length, unsupported version) is recorded in
//! [`Message::defect`] and the headers stay readable, so the caller can still build the
//! error response from the request's Via, From, To, Call-ID and CSeq (RFC 3261 §8.2).

use bytes::{Bytes, BytesMut};

use super::error::{Rejection, WireError};
use super::header_name::HeaderName;
use super::method::{Method, is_token_char};
use super::text::{is_ws, trim_ws};

/// Hard cap on header lines; beyond it a message is refused rather than indexed.
pub const MAX_HEADERS: usize = 128;

/// A byte range into the message buffer. `u32` keeps header entries small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// One header line: its classified name and the span of its (trimmed, unfolded) value.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub name: HeaderName,
    name_span: Span,
    value: Span,
}

#[derive(Debug, Clone)]
pub enum StartLine {
    Request { method: Method, uri: Span },
    Response { code: u16, reason: Span },
}

/// How the bytes arrived: datagrams carry an optional Content-Length (RFC 3261 §18.3),
/// stream transports have already cut the message at its Content-Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Datagram,
    Stream,
}

/// A parsed SIP message.
#[derive(Debug, Clone)]
pub struct Message {
    buf: Bytes,
    start: StartLine,
    headers: Vec<Header>,
    body: Span,
    defect: Option<Rejection>,
}

impl Message {
    /// Indexes one message. Fails only when the bytes cannot be a SIP message at all;
    /// smaller faults are kept in [`Message::defect`].
    pub fn parse(input: Bytes, framing: Framing) -> Result<Message, WireError> {
        let lead = input
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(WireError::Empty)?;
        let (head_end, body_start) = find_head_end(&input, lead).ok_or(WireError::NoHeaderEnd)?;
        let head = &input[lead..head_end];
        let (buf, head_len, body_start) = if needs_normalizing(head) {
            let (buf, head_len) = normalize(head, &input[body_start..]);
            (buf, head_len, head_len + 4)
        } else {
            (input.slice(lead..), head_end - lead, body_start - lead)
        };
        index(buf, head_len, body_start, framing)
    }

    pub fn buffer(&self) -> &Bytes {
        &self.buf
    }

    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI text of a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(self.text(*uri)),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason_phrase(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(self.text(*reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// The first fault found while indexing, with the response it deserves.
    pub fn defect(&self) -> Option<&Rejection> {
        self.defect.as_ref()
    }

    pub fn headers(&self) -> impl Iterator<Item = (HeaderName, &str, &str)> {
        self.headers
            .iter()
            .map(|h| (h.name, self.text(h.name_span), self.text(h.value)))
    }

    /// The value of the first header with this name.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| self.text(h.value))
    }

    /// Every header line with this name, in order.
    pub fn header_all(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| self.text(h.value))
    }

    /// A header the core does not classify, looked up by its name (case-insensitive).
    pub fn header_other(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| {
                h.name == HeaderName::Other && self.text(h.name_span).eq_ignore_ascii_case(name)
            })
            .map(|h| self.text(h.value))
    }

    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    pub fn body(&self) -> &[u8] {
        &self.buf[self.body.range()]
    }

    pub fn body_bytes(&self) -> Bytes {
        self.buf.slice(self.body.range())
    }

    fn text(&self, span: Span) -> &str {
        // The header section is valid UTF-8 after normalize(); a failure here would
        // mean a span bug, and an empty string is the safe answer.
        std::str::from_utf8(&self.buf[span.range()]).unwrap_or_default()
    }
}

/// Returns (end of the last header line, start of the body).
fn find_head_end(input: &[u8], from: usize) -> Option<(usize, usize)> {
    let hay = &input[from..];
    if let Some(i) = memchr::memmem::find(hay, b"\r\n\r\n") {
        // A bare-LF blank line earlier would also end the head.
        if let Some(j) = memchr::memmem::find(&hay[..i], b"\n\n") {
            return Some((from + j, from + j + 2));
        }
        return Some((from + i, from + i + 4));
    }
    if let Some(j) = memchr::memmem::find(hay, b"\n\n") {
        return Some((from + j, from + j + 2));
    }
    // Some senders end a body-less datagram right after the last header's CRLF.
    if hay.ends_with(b"\n") {
        let end = input.len() - if hay.ends_with(b"\r\n") { 2 } else { 1 };
        return Some((end, input.len()));
    }
    None
}

/// Folded lines, bare LF line ends and non-UTF-8 bytes are rare; only they pay for a copy.
fn needs_normalizing(head: &[u8]) -> bool {
    if std::str::from_utf8(head).is_err() {
        return true;
    }
    let mut prev = 0u8;
    for &b in head {
        if prev == b'\n' && is_ws(b) {
            return true;
        }
        if b == b'\n' && prev != b'\r' {
            return true;
        }
        prev = b;
    }
    false
}

/// Copies the head with CRLF line ends, continuation lines joined by one space
/// (RFC 3261 §7.3.1) and non-UTF-8 bytes read as Latin-1 — some phones send Latin-1
/// display names, and rejecting their calls would help nobody.
/// Returns the new buffer (head + CRLFCRLF + body) and the length of its head.
fn normalize(head: &[u8], body: &[u8]) -> (Bytes, usize) {
    let text: String = match std::str::from_utf8(head) {
        Ok(s) => s.to_owned(),
        Err(_) => head.iter().map(|&b| b as char).collect(),
    };
    let mut out = BytesMut::with_capacity(text.len() + 4 + body.len());
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if let Some(first) = lines.next() {
        out.extend_from_slice(first.as_bytes());
    }
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Continuation: the line break and leading white space become one SP.
            out.extend_from_slice(b" ");
            out.extend_from_slice(line.trim_start_matches([' ', '\t']).as_bytes());
        } else {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(line.as_bytes());
        }
    }
    let head_len = out.len();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    (out.freeze(), head_len)
}

fn index(
    buf: Bytes,
    head_len: usize,
    body_start: usize,
    framing: Framing,
) -> Result<Message, WireError> {
    let head = &buf[..head_len];
    let first_end = memchr::memmem::find(head, b"\r\n").unwrap_or(head.len());
    let mut defect = None;
    let start = parse_start_line(&head[..first_end], &mut defect)?;

    let mut headers = Vec::with_capacity(24);
    let mut pos = first_end + 2;
    while pos < head_len {
        let end = memchr::memmem::find(&head[pos..], b"\r\n").map_or(head_len, |i| pos + i);
        let line = &head[pos..end];
        if !line.is_empty() {
            if headers.len() == MAX_HEADERS {
                return Err(WireError::TooManyHeaders);
            }
            match split_header(line) {
                Some((name, value)) => headers.push(Header {
                    name: HeaderName::from_wire(&line[name.clone()]),
                    name_span: Span::new(pos + name.start, pos + name.end),
                    value: Span::new(pos + value.start, pos + value.end),
                }),
                None => {
                    defect.get_or_insert(Rejection::bad_request("Malformed header line"));
                }
            }
        }
        pos = end + 2;
    }

    let available = buf.len() - body_start;
    let body_len = content_length(&buf, &headers, available, framing, &mut defect);
    Ok(Message {
        body: Span::new(body_start, body_start + body_len),
        buf,
        start,
        headers,
        defect,
    })
}

/// Splits `name HCOLON value`. White space is allowed before the colon (§7.3.1).
fn split_header(line: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let colon = memchr::memchr(b':', line)?;
    let name_end = colon
        - line[..colon]
            .iter()
            .rev()
            .take_while(|&&b| is_ws(b))
            .count();
    if name_end == 0 || !line[..name_end].iter().all(|&b| is_token_char(b)) {
        return None;
    }
    let raw = &line[colon + 1..];
    let value = trim_ws(raw);
    let lead = raw.len() - raw.iter().skip_while(|&&b| is_ws(b)).count();
    let vstart = colon + 1 + lead;
    Some((0..name_end, vstart..vstart + value.len()))
}

fn parse_start_line(line: &[u8], defect: &mut Option<Rejection>) -> Result<StartLine, WireError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return parse_status_line(line);
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP each
    // (RFC 4475 §3.1.2.9 and §3.1.2.10 are refused with 400).
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let words: Vec<(usize, &[u8])> = {
        let mut offset = 0;
        let mut out = Vec::with_capacity(3);
        for p in &parts {
            if !p.is_empty() {
                out.push((offset, *p));
            }
            offset += p.len() + 1;
        }
        out
    };
    if words.len() < 3 {
        return Err(WireError::BadStartLine);
    }
    let method = Method::from_token(words[0].1).ok_or(WireError::BadStartLine)?;
    let version = words[words.len() - 1].1;
    if version.len() < 4 || !version[..4].eq_ignore_ascii_case(b"SIP/") {
        // Not SIP at all (an HTTP request, noise): nothing to answer.
        return Err(WireError::BadStartLine);
    }
    // With stray spaces the URI is everything between the method and the version.
    let uri_start = words[1].0;
    let uri_end = words[words.len() - 2].0 + words[words.len() - 2].1.len();
    let uri = Span::new(uri_start, uri_end);
    if parts.len() != 3 {
        let reason = if words.len() > 3 {
            "Malformed Request-URI"
        } else {
            "Malformed Request-Line"
        };
        defect.get_or_insert(Rejection::bad_request(reason));
    }
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        defect.get_or_insert(Rejection::new(505, "Version Not Supported"));
    }
    Ok(StartLine::Request { method, uri })
}

fn parse_status_line(line: &[u8]) -> Result<StartLine, WireError> {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; the phrase may be empty.
    let sp1 = memchr::memchr(b' ', line).ok_or(WireError::BadStartLine)?;
    if !line[..sp1].eq_ignore_ascii_case(b"SIP/2.0") {
        return Err(WireError::BadStartLine);
    }
    let rest = &line[sp1 + 1..];
    let code_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if code_len != 3 || (rest.len() > 3 && rest[3] != b' ') {
        return Err(WireError::BadStatusCode);
    }
    let code =
        (rest[0] - b'0') as u16 * 100 + (rest[1] - b'0') as u16 * 10 + (rest[2] - b'0') as u16;
    if !(100..700).contains(&code) {
        return Err(WireError::BadStatusCode);
    }
    let reason_start = (sp1 + 1 + 4).min(line.len());
    Ok(StartLine::Response {
        code,
        reason: Span::new(reason_start, line.len()),
    })
}

/// Applies RFC 3261 §18.3: Content-Length bounds the body; on a datagram the octets
/// past it are discarded, and a length beyond the datagram is a 400.
fn content_length(
    buf: &[u8],
    headers: &[Header],
    available: usize,
    framing: Framing,
    defect: &mut Option<Rejection>,
) -> usize {
    let mut values = headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength);
    let Some(first) = values.next() else {
        return match framing {
            Framing::Datagram => available,
            Framing::Stream => 0,
        };
    };
    if values.next().is_some() {
        defect.get_or_insert(Rejection::bad_request("Multiple Content-Length headers"));
    }
    let text = &buf[first.value.range()];
    let parsed = if !text.is_empty() && text.len() <= 9 && text.iter().all(u8::is_ascii_digit) {
        std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
    } else {
        None
    };
    match parsed {
        None => {
            defect.get_or_insert(Rejection::bad_request("Malformed Content-Length"));
            available
        }
        Some(n) if n > available => {
            defect.get_or_insert(Rejection::bad_request(
                "Content-Length larger than message body",
            ));
            available
        }
        Some(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()), Framing::Datagram).unwrap()
    }

    #[test]
    fn indexes_a_plain_request() {
        let m = parse(
            "OPTIONS sip:pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Call-ID: abc\r\nl: 0\r\n\r\n",
        );
        assert_eq!(m.method(), Some(&Method::Options));
        assert_eq!(m.request_uri(), Some("sip:pbx.local"));
        assert_eq!(m.header(HeaderName::CallId), Some("abc"));
        assert_eq!(m.header(HeaderName::ContentLength), Some("0"));
        assert!(m.defect().is_none());
        assert!(m.body().is_empty());
    }

    #[test]
    fn unfolds_continuation_lines_and_allows_space_before_colon() {
        let m = parse(
            "OPTIONS sip:a@b SIP/2.0\r\nSubject  : one\r\n   two\r\n\ttwo-b\r\nCall-ID: x\r\n\r\n",
        );
        assert_eq!(m.header(HeaderName::Subject), Some("one two two-b"));
        assert_eq!(m.header(HeaderName::CallId), Some("x"));
    }

    #[test]
    fn latin1_display_names_are_read_not_refused() {
        let mut raw = b"OPTIONS sip:a@b SIP/2.0\r\nFrom: \"J".to_vec();
        raw.push(0xfc); // ü in Latin-1
        raw.extend_from_slice(b"rgen\" <sip:j@b>;tag=1\r\nContent-Length: 0\r\n\r\n");
        let m = Message::parse(Bytes::from(raw), Framing::Datagram).unwrap();
        assert_eq!(
            m.header(HeaderName::From),
            Some("\"Jürgen\" <sip:j@b>;tag=1")
        );
        assert!(m.defect().is_none());
    }

    #[test]
    fn datagram_body_is_cut_at_content_length() {
        let m = parse("MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nbodyEXTRA");
        assert_eq!(m.body(), b"body");
        let short = parse("MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 40\r\n\r\nbody");
        assert_eq!(short.defect().unwrap().status, 400);
        let neg = parse("MESSAGE sip:a@b SIP/2.0\r\nContent-Length: -4\r\n\r\nbody");
        assert_eq!(neg.defect().unwrap().status, 400);
    }

    #[test]
    fn request_line_faults_are_defects_not_failures() {
        let m = parse("OPTIONS  sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n");
        assert_eq!(m.defect().unwrap().status, 400);
        assert_eq!(m.header(HeaderName::CallId), Some("x"));
        let v = parse("OPTIONS sip:a@b SIP/7.0\r\nCall-ID: x\r\n\r\n");
        assert_eq!(v.defect().unwrap().status, 505);
        let t = parse("OPTIONS sip:a@b SIP/2.0 \r\nCall-ID: x\r\n\r\n");
        assert_eq!(t.defect().unwrap().status, 400);
    }

    #[test]
    fn status_lines() {
        let m = parse("SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n");
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.reason_phrase(), Some("OK"));
        let empty = parse("SIP/2.0 100 \r\nCall-ID: x\r\n\r\n");
        assert_eq!(empty.reason_phrase(), Some(""));
        let bare = parse("SIP/2.0 100\r\nCall-ID: x\r\n\r\n");
        assert_eq!(bare.reason_phrase(), Some(""));
        assert!(
            Message::parse(
                Bytes::from_static(b"SIP/2.0 4294967301 Big\r\n\r\n"),
                Framing::Datagram
            )
            .is_err()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b"hello",
            b"A B\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(Message::parse(Bytes::copy_from_slice(raw), Framing::Datagram).is_err());
        }
    }
}
