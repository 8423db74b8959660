//! Typed accessors on [`Message`] for the headers every layer reads.

use super::error::SyntaxError;
use super::header_name::HeaderName;
use super::message::Message;
use super::method::Method;
use super::name_addr::{ContactList, NameAddr, parse_contacts, parse_name_addr_list};
use super::via::{Via, parse_vias};

/// RFC 3261 §8.1.1.5: the sequence number MUST be below 2^31.
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, SyntaxError> {
        let s = s.trim_matches([' ', '\t']);
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 10 {
            return Err(SyntaxError::new("CSeq number"));
        }
        let seq: u64 = s[..digits]
            .parse()
            .map_err(|_| SyntaxError::new("CSeq number"))?;
        if seq > MAX_CSEQ as u64 {
            return Err(SyntaxError::new("CSeq number (above 2^31-1)"));
        }
        let rest = &s[digits..];
        if !rest.starts_with([' ', '\t']) {
            return Err(SyntaxError::new("CSeq"));
        }
        let method = Method::from_token(rest.trim_start_matches([' ', '\t']).as_bytes())
            .ok_or(SyntaxError::new("CSeq method"))?;
        Ok(CSeq {
            seq: seq as u32,
            method,
        })
    }
}

/// delta-seconds, capped at 2^32-1 as RFC 3261 §25.1 allows; a longer digit run is an
/// overlarge scalar (RFC 4475 §3.1.2.4) and refused.
pub fn delta_seconds(s: &str) -> Result<u32, SyntaxError> {
    let s = s.trim_matches([' ', '\t']);
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError::new("delta-seconds"));
    }
    s.parse::<u64>()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(SyntaxError::new("delta-seconds (too large)"))
}

impl Message {
    pub fn call_id(&self) -> Option<&str> {
        self.header(HeaderName::CallId)
    }

    pub fn cseq(&self) -> Result<CSeq, SyntaxError> {
        CSeq::parse(
            self.header(HeaderName::CSeq)
                .ok_or(SyntaxError::new("CSeq (missing)"))?,
        )
    }

    pub fn from_header(&self) -> Result<NameAddr<'_>, SyntaxError> {
        NameAddr::parse(
            self.header(HeaderName::From)
                .ok_or(SyntaxError::new("From (missing)"))?,
        )
    }

    pub fn to_header(&self) -> Result<NameAddr<'_>, SyntaxError> {
        NameAddr::parse(
            self.header(HeaderName::To)
                .ok_or(SyntaxError::new("To (missing)"))?,
        )
    }

    pub fn vias(&self) -> Result<Vec<Via<'_>>, SyntaxError> {
        parse_vias(self.header_all(HeaderName::Via))
    }

    pub fn top_via(&self) -> Result<Via<'_>, SyntaxError> {
        let first = self
            .header(HeaderName::Via)
            .ok_or(SyntaxError::new("Via (missing)"))?;
        let mut vias = parse_vias(std::iter::once(first))?;
        Ok(vias.swap_remove(0))
    }

    pub fn contacts(&self) -> Result<ContactList<'_>, SyntaxError> {
        parse_contacts(self.header_all(HeaderName::Contact))
    }

    pub fn name_addr_list(&self, name: HeaderName) -> Result<Vec<NameAddr<'_>>, SyntaxError> {
        parse_name_addr_list(self.header_all(name))
    }

    /// The Expires header, if present.
    pub fn expires(&self) -> Option<Result<u32, SyntaxError>> {
        self.header(HeaderName::Expires).map(delta_seconds)
    }

    pub fn max_forwards(&self) -> Option<Result<u32, SyntaxError>> {
        self.header(HeaderName::MaxForwards).map(|v| {
            let n = delta_seconds(v)?;
            if n > 255 {
                return Err(SyntaxError::new("Max-Forwards (above 255)"));
            }
            Ok(n)
        })
    }

    /// Option tags of a list header such as Require or Supported.
    pub fn option_tags(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.header_all(name)
            .flat_map(|line| line.split(','))
            .map(|t| t.trim_matches([' ', '\t']))
            .filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse("1 INVITE").unwrap().method, Method::Invite);
        assert_eq!(CSeq::parse(" 2147483647 ACK ").unwrap().seq, MAX_CSEQ);
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert!(CSeq::parse("INVITE").is_err());
    }

    #[test]
    fn delta_seconds_bounds() {
        assert_eq!(delta_seconds("3600").unwrap(), 3600);
        assert_eq!(delta_seconds("4294967295").unwrap(), u32::MAX);
        assert!(delta_seconds("4294967296").is_err());
        assert!(delta_seconds("10000000000000000000").is_err());
        assert!(delta_seconds("-1").is_err());
        assert!(delta_seconds("").is_err());
    }
}
