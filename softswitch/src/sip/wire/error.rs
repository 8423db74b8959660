//! Wire errors. A [`WireError`] means the bytes are not a SIP message we can answer;
//! a [`Rejection`] is the response a readable but faulty request deserves.

use std::borrow::Cow;

use thiserror::Error;

/// Why bytes could not be indexed as a SIP message. These are dropped (RFC 3261 §18.1.2:
/// a datagram that is not a parseable message is discarded), never answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("empty message")]
    Empty,
    #[error("no blank line ends the header section")]
    NoHeaderEnd,
    #[error("start line is neither a Request-Line nor a Status-Line")]
    BadStartLine,
    #[error("status code is not three digits from 100 to 699")]
    BadStatusCode,
    #[error("more than {} header lines", super::message::MAX_HEADERS)]
    TooManyHeaders,
    #[error("message exceeds {limit} bytes")]
    TooLarge { limit: usize },
}

/// The final response a faulty request deserves, with a reason phrase that names the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: Cow<'static, str>,
}

impl Rejection {
    pub fn new(status: u16, reason: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection {
            status,
            reason: reason.into(),
        }
    }

    pub fn bad_request(reason: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection::new(400, reason)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// A header value that does not follow its grammar.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed {what}")]
pub struct SyntaxError {
    pub what: &'static str,
}

impl SyntaxError {
    pub fn new(what: &'static str) -> SyntaxError {
        SyntaxError { what }
    }
}
