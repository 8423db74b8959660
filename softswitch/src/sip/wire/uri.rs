//! SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), read as views over the
//! message text. Other schemes are kept whole so a request can be answered 416.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::SyntaxError;
use super::params::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    Name(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host<'_> {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// `sip:` or `sips:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    pub secure: bool,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub host: Host<'a>,
    pub port: Option<u16>,
    pub params: Params<'a>,
    pub headers: Option<&'a str>,
}

/// `tel:` URI: the number as written (visual separators included) and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    pub number: &'a str,
    pub params: Params<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    Sip(SipUri<'a>),
    Tel(TelUri<'a>),
    /// A syntactically valid absolute URI of a scheme this switch does not route.
    Other {
        scheme: &'a str,
        rest: &'a str,
    },
}

impl<'a> Uri<'a> {
    pub fn parse(s: &'a str) -> Result<Uri<'a>, SyntaxError> {
        let colon = s.find(':').ok_or(SyntaxError::new("URI (no scheme)"))?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        let scheme_ok = scheme
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(SyntaxError::new("URI scheme"));
        }
        if rest.is_empty()
            || rest
                .bytes()
                .any(|b| b <= b' ' || matches!(b, b'<' | b'>' | b'"' | 0x7f))
        {
            return Err(SyntaxError::new("URI"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_rest(rest, false).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(rest, true).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(rest).map(Uri::Tel)
        } else {
            Ok(Uri::Other { scheme, rest })
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The user part (SIP) or the number (tel), which is what the dialplan dials.
    pub fn user(&self) -> Option<&'a str> {
        match self {
            Uri::Sip(u) => u.user,
            Uri::Tel(t) => Some(t.number),
            Uri::Other { .. } => None,
        }
    }
}

impl<'a> SipUri<'a> {
    fn parse_rest(rest: &'a str, secure: bool) -> Result<SipUri<'a>, SyntaxError> {
        let (userinfo, hostpart) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || !u.bytes().all(is_user_char) {
                    return Err(SyntaxError::new("URI user part"));
                }
                if let Some(p) = p
                    && !p.bytes().all(|b| {
                        is_unreserved(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',')
                    })
                {
                    return Err(SyntaxError::new("URI password"));
                }
                (Some(u), p)
            }
        };
        let (host, after_host) = parse_host(hostpart)?;
        let mut tail = after_host;
        let mut port = None;
        if let Some(p) = tail.strip_prefix(':') {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return Err(SyntaxError::new("URI port"));
            }
            port = Some(
                p[..digits]
                    .parse::<u16>()
                    .map_err(|_| SyntaxError::new("URI port"))?,
            );
            tail = &p[digits..];
        }
        let (params, headers) = match tail.find('?') {
            Some(q) => (&tail[..q], Some(&tail[q + 1..])),
            None => (tail, None),
        };
        if !params.is_empty() && !params.starts_with(';') {
            return Err(SyntaxError::new("URI host"));
        }
        if !params
            .bytes()
            .all(|b| is_param_char(b) || b == b';' || b == b'=')
        {
            return Err(SyntaxError::new("URI parameter"));
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params: Params(params),
            headers,
        })
    }

    pub fn transport_param(&self) -> Option<&'a str> {
        self.params.value("transport")
    }
}

fn parse_host(s: &str) -> Result<(Host<'_>, &str), SyntaxError> {
    if let Some(v6) = s.strip_prefix('[') {
        let close = v6.find(']').ok_or(SyntaxError::new("IPv6 reference"))?;
        let addr: Ipv6Addr = v6[..close]
            .parse()
            .map_err(|_| SyntaxError::new("IPv6 reference"))?;
        return Ok((Host::V6(addr), &v6[close + 1..]));
    }
    let end = s.find([':', ';', '?']).unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty() {
        return Err(SyntaxError::new("URI host"));
    }
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        return Ok((Host::V4(v4), &s[end..]));
    }
    // hostname = *( domainlabel "." ) toplabel [ "." ]; underscores are tolerated
    // because some devices put them in their own names.
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(SyntaxError::new("URI host"));
    }
    Ok((Host::Name(name), &s[end..]))
}

impl<'a> TelUri<'a> {
    fn parse_rest(rest: &'a str) -> Result<TelUri<'a>, SyntaxError> {
        let end = rest.find(';').unwrap_or(rest.len());
        let number = &rest[..end];
        let digits = number.strip_prefix('+').unwrap_or(number);
        let ok = !digits.is_empty()
            && digits.bytes().all(|b| {
                b.is_ascii_hexdigit()
                    || matches!(b, b'*' | b'#' | b'-' | b'.' | b'(' | b')' | b'p' | b'w')
            });
        if !ok {
            return Err(SyntaxError::new("tel URI number"));
        }
        Ok(TelUri {
            number,
            params: Params(&rest[end..]),
        })
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// user = 1*( unreserved / escaped / user-unreserved )
fn is_user_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/'
        )
}

/// paramchar = param-unreserved / unreserved / escaped
fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = self.user {
            f.write_str(u)?;
            if let Some(p) = self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(self.params.raw())?;
        if let Some(h) = self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("not a SIP URI: {other:?}"),
        }
    }

    #[test]
    fn sip_uri_parts() {
        let u = sip("sip:1001:pw@PBX.local:5070;transport=tcp;lr?Subject=hi");
        assert_eq!(u.user, Some("1001"));
        assert_eq!(u.password, Some("pw"));
        assert_eq!(u.host, Host::Name("PBX.local"));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport_param(), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers, Some("Subject=hi"));
        assert_eq!(
            u.to_string(),
            "sip:1001:pw@PBX.local:5070;transport=tcp;lr?Subject=hi"
        );
    }

    #[test]
    fn ipv6_hosts() {
        let u = sip("sip:[2001:db8::10]:5060");
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5060));
        assert_eq!(u.to_string(), "sip:[2001:db8::10]:5060");
        assert!(Uri::parse("sip:[2001:db8::10").is_err());
    }

    #[test]
    fn semicolons_and_escapes_in_the_user_part() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, Host::Name("example.com"));
        let n = sip("sip:%61lice@atlanta.com;transport=TCP");
        assert_eq!(n.user, Some("%61lice"));
    }

    #[test]
    fn tel_and_other_schemes() {
        assert_eq!(
            Uri::parse("tel:+1-201-555-0123").unwrap().user(),
            Some("+1-201-555-0123")
        );
        assert!(matches!(
            Uri::parse("mailto:a@b").unwrap(),
            Uri::Other {
                scheme: "mailto",
                ..
            }
        ));
        assert!(matches!(
            Uri::parse("kingdom:animal").unwrap(),
            Uri::Other { .. }
        ));
    }

    #[test]
    fn malformed_uris() {
        for bad in [
            "sip:user@example.com ;x",
            "<sip:a@b>",
            "sip:",
            "sip:a@",
            "sip:a b@c",
            "sip:a@b:99999",
            "sip:a@b:x",
            "nocolon",
            "1sip:a@b",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
