//! `name-addr / addr-spec` with header parameters: From, To, Contact, Route,
//! Record-Route, Path, P-Asserted-Identity (RFC 3261 §20.10, §25.1).

use std::borrow::Cow;

use super::error::SyntaxError;
use super::method::is_token_char;
use super::params::Params;
use super::text::{quoted_string, split_list};
use super::uri::Uri;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub display: Option<Cow<'a, str>>,
    /// The URI text exactly as written (without the angle brackets).
    pub uri_text: &'a str,
    pub uri: Uri<'a>,
    /// Header parameters (`;tag=`, `;expires=`, `;q=`, …), after the URI.
    pub params: Params<'a>,
    /// Whether the URI was in angle brackets; needed to write it back faithfully.
    pub bracketed: bool,
}

impl<'a> NameAddr<'a> {
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, SyntaxError> {
        let s = s.trim_matches([' ', '\t']);
        let (display, rest) = if s.starts_with('"') {
            let (d, rest) = quoted_string(s)?;
            let rest = rest.trim_start_matches([' ', '\t']);
            if !rest.starts_with('<') {
                return Err(SyntaxError::new("name-addr (quoted name without <URI>)"));
            }
            (Some(d), rest)
        } else if let Some(lt) = s.find('<') {
            let name = s[..lt].trim_matches([' ', '\t']);
            // An unquoted display name is a run of tokens separated by white space.
            if !name
                .bytes()
                .all(|b| is_token_char(b) || b == b' ' || b == b'\t')
            {
                return Err(SyntaxError::new("display name"));
            }
            let display = (!name.is_empty()).then_some(Cow::Borrowed(name));
            (display, &s[lt..])
        } else {
            (None, s)
        };

        if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner
                .find('>')
                .ok_or(SyntaxError::new("name-addr (no closing '>')"))?;
            let uri_text = &inner[..gt];
            // LAQUOT/RAQUOT allow white space outside the brackets only (RFC 4475 §3.1.2.14).
            let uri = Uri::parse(uri_text)?;
            let params = Params(&inner[gt + 1..]);
            params.validate()?;
            return Ok(NameAddr {
                display,
                uri_text,
                uri,
                params,
                bracketed: true,
            });
        }

        // addr-spec form: the URI ends at the first ';', and what follows are header
        // parameters. Such a URI cannot contain '?', ',' or ';' (§20.10).
        let end = rest.find(';').unwrap_or(rest.len());
        let uri_text = rest[..end].trim_end_matches([' ', '\t']);
        if uri_text.contains('?') || uri_text.contains(',') {
            return Err(SyntaxError::new("addr-spec (URI with headers needs <...>)"));
        }
        let uri = Uri::parse(uri_text)?;
        let params = Params(&rest[end..]);
        params.validate()?;
        Ok(NameAddr {
            display,
            uri_text,
            uri,
            params,
            bracketed: false,
        })
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
}

/// A Contact header value: either `*` or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactList<'a> {
    Star,
    Addresses(Vec<NameAddr<'a>>),
}

/// Parses every Contact header line of a message into one list.
pub fn parse_contacts<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<ContactList<'a>, SyntaxError> {
    let mut out = Vec::new();
    let mut star = false;
    for line in lines {
        for item in split_list(line)? {
            if item == "*" {
                star = true;
            } else if item.is_empty() {
                return Err(SyntaxError::new("Contact (empty element)"));
            } else {
                out.push(NameAddr::parse(item)?);
            }
        }
    }
    match (star, out.is_empty()) {
        (true, true) => Ok(ContactList::Star),
        // '*' must stand alone (RFC 3261 §10.3 step 6).
        (true, false) => Err(SyntaxError::new("Contact ('*' mixed with addresses)")),
        (false, _) => Ok(ContactList::Addresses(out)),
    }
}

/// Parses a list header of name-addrs (Route, Record-Route, Path).
pub fn parse_name_addr_list<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<NameAddr<'a>>, SyntaxError> {
    let mut out = Vec::new();
    for line in lines {
        for item in split_list(line)? {
            if item.is_empty() {
                return Err(SyntaxError::new("address list (empty element)"));
            }
            out.push(NameAddr::parse(item)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_name_addr() {
        let a = NameAddr::parse("\"Alice A.\" <sip:alice@pbx.local>;tag=88sja8x").unwrap();
        assert_eq!(a.display.as_deref(), Some("Alice A."));
        assert_eq!(a.uri_text, "sip:alice@pbx.local");
        assert_eq!(a.tag(), Some("88sja8x"));

        let b = NameAddr::parse("Bob <sip:bob@pbx.local>").unwrap();
        assert_eq!(b.display.as_deref(), Some("Bob"));

        let c = NameAddr::parse("sip:carol@pbx.local;tag=1").unwrap();
        assert_eq!(c.uri_text, "sip:carol@pbx.local");
        assert_eq!(c.tag(), Some("1"));
        assert!(!c.bracketed);

        let d = NameAddr::parse("\"caller\"<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(d.display.as_deref(), Some("caller"));
    }

    #[test]
    fn malformed_name_addrs() {
        for bad in [
            "\"Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Watson\" < sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b;tag=1",
            "<sip:a@b>;;tag=1",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn contact_lists() {
        let l = parse_contacts(
            [
                "<sip:a@1.2.3.4>;expires=60, \"x, y\" <sip:b@1.2.3.4>",
                "sip:c@5.6.7.8;q=0.5",
            ]
            .into_iter(),
        )
        .unwrap();
        let ContactList::Addresses(v) = l else {
            panic!()
        };
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].params.value("expires"), Some("60"));
        assert_eq!(v[2].params.value("q"), Some("0.5"));
        assert_eq!(
            parse_contacts(["*"].into_iter()).unwrap(),
            ContactList::Star
        );
        assert!(parse_contacts(["*, <sip:a@b>"].into_iter()).is_err());
    }
}
