//! `etc/balancer.toml`: where the balancer listens, the address it writes into
//! Via, Record-Route and Path, how it probes, and the nodes behind it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{AdminConfig, ConfigError, line_col};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerConfig {
    pub balance: BalanceSection,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeEntry>,
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceSection {
    /// A name for logs and the status view.
    #[serde(default = "default_name")]
    pub name: String,
    /// `ip:port` phones and peers send to, over UDP and TCP.
    pub listen: Spanned<String>,
    /// The `host:port` written into Via, Record-Route and Path when it differs from
    /// `listen`: the virtual IP two balancers share, or a DNS name.
    #[serde(default)]
    pub advertise: Option<Spanned<String>>,
    #[serde(default)]
    pub probe: ProbeSection,
    /// `hash` (the Call-ID, the default) or `least_load`.
    #[serde(default = "default_share")]
    pub share: super::proxy::Share,
    /// Seconds a phone's TCP connection may stay silent before the balancer closes
    /// it. Phones keep it open with CRLF keepalives or re-registrations, so the
    /// default outlasts the usual registration interval.
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_timeout: u64,
}

fn default_tcp_idle() -> u64 {
    3600
}

fn default_share() -> super::proxy::Share {
    super::proxy::Share::Hash
}

fn default_name() -> String {
    "balancer".into()
}

/// OPTIONS probes to each node. The defaults take a silent node out in well under
/// a second: a probe every 200 ms, 200 ms to answer, two misses in a row.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSection {
    #[serde(default = "default_probe_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_probe_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_two")]
    pub fall: u32,
    #[serde(default = "default_two")]
    pub rise: u32,
}

fn default_probe_ms() -> u64 {
    200
}
fn default_two() -> u32 {
    2
}

impl Default for ProbeSection {
    fn default() -> Self {
        ProbeSection {
            interval_ms: default_probe_ms(),
            timeout_ms: default_probe_ms(),
            fall: 2,
            rise: 2,
        }
    }
}

impl ProbeSection {
    pub fn keepalive(&self) -> gateway::health::Keepalive {
        gateway::health::Keepalive {
            enabled: true,
            interval: Duration::from_millis(self.interval_ms),
            down_interval: Duration::from_millis(self.interval_ms),
            timeout: Duration::from_millis(self.timeout_ms),
            fall: self.fall,
            rise: self.rise,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub name: Spanned<String>,
    /// The node's SIP UDP `ip:port`.
    pub address: Spanned<String>,
    /// Share of new calls relative to the other nodes.
    #[serde(default = "default_weight")]
    pub weight: Spanned<u32>,
}

fn default_weight() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

/// A node as the balancer uses it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub addr: SocketAddr,
    pub weight: u32,
}

impl BalancerConfig {
    pub fn load(path: &Path) -> Result<BalancerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        BalancerConfig::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<BalancerConfig, ConfigError> {
        let located = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, col) = span.map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Invalid {
                path: path.display().to_string(),
                line,
                col,
                message,
            }
        };
        let mut config: BalancerConfig =
            toml::from_str(text).map_err(|e| located(e.span(), e.message().to_string()))?;
        config.path = path.to_path_buf();
        let listen = &config.balance.listen;
        if listen.get_ref().parse::<SocketAddr>().is_err() {
            return Err(located(
                Some(listen.span()),
                format!("listen `{}` must be IP:PORT", listen.get_ref()),
            ));
        }
        if let Some(adv) = &config.balance.advertise
            && !valid_hostport(adv.get_ref())
        {
            return Err(located(
                Some(adv.span()),
                format!("advertise `{}` must be HOST:PORT", adv.get_ref()),
            ));
        }
        let p = config.balance.probe;
        if p.interval_ms == 0 || p.timeout_ms == 0 || p.fall == 0 || p.rise == 0 {
            return Err(located(
                None,
                "[balance.probe] interval_ms, timeout_ms, fall and rise must be above 0".into(),
            ));
        }
        if config.nodes.is_empty() {
            return Err(located(None, "no [[node]] to balance over".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for n in &config.nodes {
            if !seen.insert(n.name.get_ref().clone()) {
                return Err(located(
                    Some(n.name.span()),
                    format!("node `{}` is listed twice", n.name.get_ref()),
                ));
            }
            if n.name.get_ref().is_empty()
                || !n
                    .name
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(located(
                    Some(n.name.span()),
                    format!(
                        "node name `{}` must be letters, digits or -_.",
                        n.name.get_ref()
                    ),
                ));
            }
            if n.address.get_ref().parse::<SocketAddr>().is_err() {
                return Err(located(
                    Some(n.address.span()),
                    format!("node address `{}` must be IP:PORT", n.address.get_ref()),
                ));
            }
            if *n.weight.get_ref() == 0 {
                return Err(located(
                    Some(n.weight.span()),
                    "weight must be 1 or more (remove the node to give it nothing)".into(),
                ));
            }
        }
        if let Some(addr) = config.admin.addr()
            && !addr.ip().is_loopback()
            && config.admin.token.is_none()
        {
            return Err(located(
                Some(config.admin.listen.span()),
                "the admin API off loopback needs [admin] token".into(),
            ));
        }
        Ok(config)
    }

    pub fn listen(&self) -> SocketAddr {
        self.balance.listen.get_ref().parse().expect("checked")
    }

    /// What goes into Via, Record-Route and Path.
    pub fn advertised(&self) -> String {
        match &self.balance.advertise {
            Some(a) => a.get_ref().clone(),
            None => self.listen().to_string(),
        }
    }

    pub fn node_specs(&self) -> Vec<NodeSpec> {
        self.nodes
            .iter()
            .map(|n| NodeSpec {
                name: n.name.get_ref().clone(),
                addr: n.address.get_ref().parse().expect("checked"),
                weight: *n.weight.get_ref(),
            })
            .collect()
    }
}

fn valid_hostport(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && port.parse::<u16>().is_ok()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':')
                })
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BalancerConfig, String> {
        BalancerConfig::parse(text, Path::new("b.toml")).map_err(|e| e.to_string())
    }

    const GOOD: &str = "[balance]\nlisten = \"127.0.0.1:5060\"\n\n[[node]]\nname = \"a\"\naddress = \"127.0.0.2:5060\"\n\n[[node]]\nname = \"b\"\naddress = \"127.0.0.3:5060\"\nweight = 2\n";

    #[test]
    fn a_good_file_loads_with_its_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.advertised(), "127.0.0.1:5060");
        let nodes = c.node_specs();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].weight, 2);
        assert_eq!(
            c.balance.probe.keepalive().timeout,
            Duration::from_millis(200)
        );
    }

    #[test]
    fn mistakes_are_reported_where_they_are() {
        let e = parse(&GOOD.replace("127.0.0.3:5060", "nowhere")).unwrap_err();
        assert!(e.starts_with("b.toml:10:11:"), "{e}");
        assert!(e.contains("must be IP:PORT"), "{e}");
        let e = parse(&GOOD.replace("name = \"b\"", "name = \"a\"")).unwrap_err();
        assert!(e.starts_with("b.toml:9:8:") && e.contains("twice"), "{e}");
        let e = parse(&GOOD.replace("weight = 2", "weight = 0")).unwrap_err();
        assert!(e.starts_with("b.toml:11:10:"), "{e}");
        let e = parse("[balance]\nlisten = \"127.0.0.1:5060\"\n").unwrap_err();
        assert!(e.contains("no [[node]]"), "{e}");
        let e = parse(&GOOD.replace("[balance]\n", "[balance]\nspeed = 1\n")).unwrap_err();
        assert!(e.starts_with("b.toml:2:1:") && e.contains("speed"), "{e}");
    }
}
