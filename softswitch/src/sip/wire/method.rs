//! SIP request methods. Methods are case-sensitive tokens (RFC 3261 §7.1), so `invite`
//! is an unknown extension method, not INVITE.

use std::fmt;

/// A request method. Unknown extension methods keep their token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(Box<str>),
}

impl Method {
    /// Parses a method token; returns `None` for bytes that are not a valid token.
    pub fn from_token(token: &[u8]) -> Option<Method> {
        if token.is_empty() || !token.iter().all(|&b| is_token_char(b)) {
            return None;
        }
        Some(match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"INFO" => Method::Info,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            // A token is ASCII by construction, so this never fails.
            other => Method::Other(String::from_utf8_lossy(other).into()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_tokens() {
        assert_eq!(Method::from_token(b"INVITE"), Some(Method::Invite));
        assert_eq!(
            Method::from_token(b"invite"),
            Some(Method::Other("invite".into()))
        );
        assert_eq!(
            Method::from_token(b"!interesting-Method0123456789_*+`.%indeed'~"),
            Some(Method::Other(
                "!interesting-Method0123456789_*+`.%indeed'~".into()
            ))
        );
        assert_eq!(Method::from_token(b"IN VITE"), None);
        assert_eq!(Method::from_token(b""), None);
    }
}
