//! A dial peer as a hunting call sees it: how to match it, whether it takes
//! calls now, where it is and what it does to the digits.

use std::net::{IpAddr, SocketAddr};

use gateway::digits::DigitRules;
use gateway::pattern::Pattern;
use gateway::select::{Availability, Peer};

use crate::config::{DialPeerConfig, parse_session_target};
use crate::sip::transaction::TransportKind;

#[derive(Debug, Clone)]
pub struct PeerRoute {
    pub tag: u32,
    pub pattern: Pattern,
    pub preference: u8,
    pub availability: Availability,
    /// Calls in progress through the peer on this node.
    pub active: u32,
    /// None for a `dns:` target that has not resolved.
    pub addr: Option<SocketAddr>,
    pub transport: TransportKind,
    pub huntstop: bool,
    pub digits: DigitRules,
    /// Where calls arriving from the peer run.
    pub context: String,
    /// Username and password for the peer's challenges.
    pub credentials: Option<(String, String)>,
    /// Rewrites the calling number sent to the peer.
    pub calling: gateway::digits::Translation,
    /// Its own no-response timeout, when it has one.
    pub invite_timeout: Option<std::time::Duration>,
    /// The endpoint the peer's own calls must authenticate as.
    pub inbound_auth: Option<String>,
}

/// A request's source matched to a dial peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOrigin {
    pub tag: u32,
    pub context: String,
    /// Digest is required too, as this endpoint.
    pub auth_as: Option<String>,
}

impl PeerRoute {
    /// The peer as configured, taken as up; None if its pattern does not parse
    /// (the config check refuses such a file, so only hand-built configs get here).
    pub fn from_config(p: &DialPeerConfig) -> Option<PeerRoute> {
        Some(PeerRoute {
            tag: *p.tag.get_ref(),
            pattern: Pattern::parse(p.destination_pattern.get_ref()).ok()?,
            preference: p.preference(),
            availability: Availability::Usable,
            active: 0,
            addr: literal_target(p.session_target.get_ref()),
            transport: if p.transport == "tcp" {
                TransportKind::Tcp
            } else {
                TransportKind::Udp
            },
            huntstop: p.huntstop,
            digits: p.digit_rules(),
            calling: p.calling_translation(),
            invite_timeout: p
                .invite_timeout
                .map(|s| std::time::Duration::from_secs_f64(s.clamp(0.2, 32.0))),
            context: p.context.clone(),
            credentials: p
                .username
                .as_ref()
                .map(|u| (u.get_ref().clone(), p.password.clone().unwrap_or_default())),
            inbound_auth: p
                .inbound_auth
                .then(|| p.username.as_ref().map(|u| u.get_ref().clone()))
                .flatten(),
        })
    }

    pub fn origin(&self) -> PeerOrigin {
        PeerOrigin {
            tag: self.tag,
            context: self.context.clone(),
            auth_as: self.inbound_auth.clone(),
        }
    }

    /// What selection needs of it.
    pub fn selection(&self) -> Peer {
        Peer {
            tag: self.tag,
            pattern: self.pattern.clone(),
            preference: self.preference,
            availability: self.availability,
            active: self.active,
        }
    }
}

/// The address of an `ipv4:`/`ipv6:` session target; None for `dns:` names,
/// which the running node resolves.
pub fn literal_target(target: &str) -> Option<SocketAddr> {
    let (host, port) = parse_session_target(target).ok()?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The peer a request from `ip` comes from: the first whose target is there.
pub fn peer_at(routes: &[PeerRoute], ip: IpAddr) -> Option<&PeerRoute> {
    routes.iter().find(|r| r.addr.is_some_and(|a| a.ip() == ip))
}
