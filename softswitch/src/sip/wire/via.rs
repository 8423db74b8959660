//! The Via header (RFC 3261 §20.42, §18.2.1; rport from RFC 3581).

use std::net::IpAddr;

use super::error::SyntaxError;
use super::params::Params;
use super::text::split_list;
use super::uri::Host;

/// RFC 3261 branch IDs begin with this cookie; others come from RFC 2543 peers.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The transport token as written (`UDP`, `TCP`, `TLS`, `WS`, or an extension).
    pub transport: &'a str,
    pub host: Host<'a>,
    pub port: Option<u16>,
    pub params: Params<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    Absent,
    /// `;rport` without a value: the client asks us to fill it in.
    Requested,
    Value(u16),
}

impl<'a> Via<'a> {
    pub fn parse(s: &'a str) -> Result<Via<'a>, SyntaxError> {
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, with LWS
        // allowed around the slashes.
        let mut rest = s.trim_start_matches([' ', '\t']);
        let mut fields = [""; 3];
        for (i, field) in fields.iter_mut().enumerate() {
            let end = rest.find(['/', ' ', '\t']).unwrap_or(rest.len());
            *field = &rest[..end];
            rest = rest[end..].trim_start_matches([' ', '\t']);
            if i < 2 {
                rest = rest
                    .strip_prefix('/')
                    .ok_or(SyntaxError::new("Via sent-protocol"))?
                    .trim_start_matches([' ', '\t']);
            }
        }
        if !fields[0].eq_ignore_ascii_case("SIP") || fields[1] != "2.0" || fields[2].is_empty() {
            return Err(SyntaxError::new("Via sent-protocol"));
        }
        let transport = fields[2];
        let (host, after) = parse_sent_by_host(rest)?;
        let mut tail = after.trim_start_matches([' ', '\t']);
        let mut port = None;
        if let Some(p) = tail.strip_prefix(':') {
            let p = p.trim_start_matches([' ', '\t']);
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            port = Some(
                p[..digits]
                    .parse::<u16>()
                    .map_err(|_| SyntaxError::new("Via port"))?,
            );
            tail = p[digits..].trim_start_matches([' ', '\t']);
        }
        let params = Params(tail);
        if !tail.is_empty() && !tail.starts_with(';') {
            return Err(SyntaxError::new("Via sent-by"));
        }
        params.validate()?;
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }

    pub fn received(&self) -> Option<IpAddr> {
        self.params
            .value("received")
            .and_then(|v| v.trim_start_matches('[').trim_end_matches(']').parse().ok())
    }

    pub fn rport(&self) -> Rport {
        match self.params.get("rport") {
            None => Rport::Absent,
            Some(None) => Rport::Requested,
            Some(Some(v)) => v.parse().map_or(Rport::Requested, Rport::Value),
        }
    }

    /// The `sent-by` as `host[:port]`, used in transaction keys.
    pub fn sent_by(&self) -> (Host<'a>, u16) {
        (self.host, self.port.unwrap_or(5060))
    }
}

fn parse_sent_by_host(s: &str) -> Result<(Host<'_>, &str), SyntaxError> {
    if let Some(v6) = s.strip_prefix('[') {
        let close = v6.find(']').ok_or(SyntaxError::new("Via host"))?;
        let addr = v6[..close]
            .parse()
            .map_err(|_| SyntaxError::new("Via host"))?;
        return Ok((Host::V6(addr), &v6[close + 1..]));
    }
    let end = s.find([':', ';', ' ', '\t']).unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(SyntaxError::new("Via host"));
    }
    Ok((
        name.parse().map(Host::V4).unwrap_or(Host::Name(name)),
        &s[end..],
    ))
}

/// All Via values of a message, top first, across header lines.
pub fn parse_vias<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Via<'a>>, SyntaxError> {
    let mut out = Vec::with_capacity(2);
    for line in lines {
        for item in split_list(line)? {
            if item.is_empty() {
                return Err(SyntaxError::new("Via (empty element)"));
            }
            out.push(Via::parse(item)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_and_parameters() {
        let v =
            Via::parse("SIP / 2.0 / UDP 192.0.2.2:5060 ; branch=z9hG4bK1;rport;received=10.1.1.1")
                .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Rport::Requested);
        assert_eq!(v.received(), Some("10.1.1.1".parse().unwrap()));
    }

    #[test]
    fn ipv6_sent_by_and_unknown_transport() {
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3;received=[2001:db8::9:255]")
                .unwrap();
        assert_eq!(v.host, Host::V6("2001:db8::9:1".parse().unwrap()));
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        let t = Via::parse("SIP/2.0/FOOBAR 192.0.2.1;branch=z9hG4bKx").unwrap();
        assert_eq!(t.transport, "FOOBAR");
        assert_eq!(t.sent_by().1, 5060);
    }

    #[test]
    fn several_vias_in_one_line() {
        let vias = parse_vias(
            ["SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b.example:5061"].into_iter(),
        )
        .unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[1].port, Some(5061));
        assert!(parse_vias(["SIP/2.0/UDP a.example;;branch=1,;"].into_iter()).is_err());
        assert!(Via::parse("SIP/3.0/UDP a").is_err());
    }
}
