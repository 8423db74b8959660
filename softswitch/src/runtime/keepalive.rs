//! NAT keepalives: an OPTIONS every `[sip] keepalive_interval` seconds to each
//! phone that registered from behind a NAT or through the balancer, so the
//! mapping its requests opened stays open for calls toward it (what Kamailio's
//! nathelper pings and Asterisk's `qualify` do).
//!
//! Exactly one node pings each phone: the node that took the binding's last
//! REGISTER, as the location table says. A phone re-registering through another
//! node moves its pings there. The pings of one interval are spread over its
//! seconds by a hash of the binding, not sent in one burst.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::call::messages::{self, Dialog};
use crate::registrar::Binding;
use crate::sip::transaction::Peer;
use crate::sip::wire::{Message, Method, Uri};
use crate::store::Store;

use super::{Node, unix_now};

/// Call-IDs of keepalives start with this; their answers are consumed quietly.
pub const CALL_ID_PREFIX: &str = "softswitch-keepalive-";

/// Whether a response answers one of the keepalives (nothing more is done with it:
/// the answer, whatever its status, shows the path is open).
pub fn is_answer(msg: &Message) -> bool {
    msg.call_id().is_some_and(|c| c.starts_with(CALL_ID_PREFIX))
}

/// Whether the phone is reached through a mapping someone else keeps: its
/// REGISTER came through a proxy (Path) or from another address than its Contact
/// names (a NAT rewrote it).
pub fn needs_keepalive(b: &Binding) -> bool {
    !b.path.is_empty() || contact_addr(&b.contact) != Some(b.source)
}

fn contact_addr(contact: &str) -> Option<SocketAddr> {
    let text = messages::uri_of(contact).unwrap_or_else(|| contact.to_owned());
    let uri = Uri::parse(&text).ok()?;
    let sip = uri.as_sip()?;
    let ip: IpAddr = sip.host.ip()?;
    Some(SocketAddr::new(ip, sip.port.unwrap_or(5060)))
}

/// Which second of the interval a binding is pinged in.
fn slot(b: &Binding, interval: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for byte in b.aor.bytes().chain([0]).chain(b.contact.bytes()) {
        h = (h ^ u64::from(byte)).wrapping_mul(0x100000001b3);
    }
    h % interval
}

pub(super) async fn keepalive_loop(node: Arc<Node>) {
    let interval = node.config.sip.keepalive_interval;
    if interval == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The bindings this node holds, re-read once per interval on a shared
    // database (None: every binding is this node's).
    let mut mine: Option<HashSet<(String, String)>> = None;
    let mut second: u64 = 0;
    loop {
        tick.tick().await;
        if second.is_multiple_of(interval)
            && let Store::Postgres(_) = &node.store
        {
            match node.store.bindings_held_by(&node.config.node.name).await {
                Ok(held) => mine = Some(held.into_iter().collect()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read which phones this node keeps alive")
                }
            }
        }
        let due: Vec<Binding> = node
            .registrar
            .location
            .all()
            .into_iter()
            .filter(|b| b.expires_at > unix_now())
            .filter(|b| slot(b, interval) == second % interval)
            .filter(needs_keepalive)
            .filter(|b| {
                mine.as_ref()
                    .is_none_or(|m| m.contains(&(b.aor.clone(), b.contact.clone())))
            })
            .collect();
        for b in &due {
            node.send_keepalive(b);
        }
        second += 1;
    }
}

impl Node {
    /// One OPTIONS to the phone, along its Path, sent once: the next one is the
    /// retry.
    fn send_keepalive(self: &Arc<Self>, b: &Binding) {
        let call_id = format!("{CALL_ID_PREFIX}{:016x}", rand::random::<u64>());
        let uri = messages::uri_of(&b.contact).unwrap_or_else(|| b.contact.clone());
        let from = format!(
            "<sip:softswitch@{}>;tag={}",
            self.config.sip.domain,
            messages::new_tag()
        );
        let to = format!("<sip:{}>", b.aor);
        let routes: Vec<(&str, String)> = b.path.iter().map(|p| ("Route", p.clone())).collect();
        let bytes = messages::request(
            &Method::Options,
            Dialog {
                uri: &uri,
                from: &from,
                to: &to,
                call_id: &call_id,
                cseq: 1,
            },
            &self.local_for(b.transport),
            &messages::new_branch(),
            &self.config.sip.user_agent,
            &routes,
            None,
        );
        let peer = Peer {
            transport: b.transport,
            addr: b.source,
            conn: None,
        };
        self.send_outside_transactions(&call_id, peer, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::TransportKind;

    fn binding(contact: &str, source: &str, path: &[&str]) -> Binding {
        Binding {
            aor: "1002@pbx.test".into(),
            contact: contact.into(),
            expires_at: 0,
            call_id: "c".into(),
            cseq: 1,
            q: None,
            instance: None,
            reg_id: None,
            path: path.iter().map(|p| p.to_string()).collect(),
            transport: TransportKind::Udp,
            source: source.parse().unwrap(),
            user_agent: String::new(),
            updated_at: 0,
        }
    }

    #[test]
    fn phones_behind_a_nat_or_a_proxy_are_kept_alive_and_others_not() {
        let lan = binding("<sip:1002@10.0.0.5:5070>", "10.0.0.5:5070", &[]);
        assert!(!needs_keepalive(&lan));
        let default_port = binding("<sip:1002@10.0.0.5>", "10.0.0.5:5060", &[]);
        assert!(!needs_keepalive(&default_port));
        let natted = binding("<sip:1002@192.168.1.20:5060>", "203.0.113.7:40123", &[]);
        assert!(needs_keepalive(&natted));
        let named = binding("<sip:1002@phone.example>", "203.0.113.7:5060", &[]);
        assert!(needs_keepalive(&named));
        let balanced = binding(
            "<sip:1002@10.0.0.5:5070>",
            "10.0.0.5:5070",
            &["<sip:127.0.0.10:5060;lr;fl=10.0.0.5~5070>"],
        );
        assert!(needs_keepalive(&balanced));
    }

    #[test]
    fn pings_spread_over_the_interval() {
        let mut per_slot = [0u32; 30];
        for i in 0..3000 {
            let mut b = binding("<sip:x@10.0.0.1>", "10.0.0.1:5060", &[]);
            b.aor = format!("{i}@pbx.test");
            per_slot[slot(&b, 30) as usize] += 1;
        }
        assert!(
            per_slot.iter().all(|&n| (50..=150).contains(&n)),
            "{per_slot:?}"
        );
    }
}
