//! `transport:address:port` listen specifications, such as `udp:127.0.0.1:5060` or
//! `tcp:[::1]:5060`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::sip::transaction::TransportKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenSpec {
    pub transport: TransportKind,
    pub addr: SocketAddr,
}

impl FromStr for ListenSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (proto, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not `udp:ADDRESS:PORT` or `tcp:ADDRESS:PORT`"))?;
        let transport = match proto.to_ascii_lowercase().as_str() {
            "udp" => TransportKind::Udp,
            "tcp" => TransportKind::Tcp,
            other => return Err(format!("unknown transport `{other}` (expected udp or tcp)")),
        };
        let addr = rest.parse::<SocketAddr>().map_err(|_| {
            format!("`{rest}` is not an address and port (write 127.0.0.1:5060 or [::1]:5060)")
        })?;
        Ok(ListenSpec { transport, addr })
    }
}

impl<'de> Deserialize<'de> for ListenSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.transport {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
        };
        write!(f, "{proto}:{}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6() {
        let a: ListenSpec = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!(a.transport, TransportKind::Udp);
        let b: ListenSpec = "TCP:[::1]:5070".parse().unwrap();
        assert_eq!(b.addr, "[::1]:5070".parse().unwrap());
        assert_eq!(b.to_string(), "tcp:[::1]:5070");
        assert!("sctp:127.0.0.1:5060".parse::<ListenSpec>().is_err());
        assert!("udp:localhost".parse::<ListenSpec>().is_err());
    }
}
