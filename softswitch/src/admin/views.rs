//! The JSON the admin API answers with and the CLI prints with `--json`: one
//! shape whether a command asked a running node or read a stopped node's
//! database.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::registrar::Binding;
use crate::sip::transaction::TransportKind;
use crate::store::cdr::Cdr;
use crate::store::nodes::NodeRow;

fn transport(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
        TransportKind::Tls => "tls",
    }
}

/// Unexpired bindings as of `now` (Unix seconds), with the node that took each
/// one's last REGISTER where known.
pub fn registrations(
    bindings: &[Binding],
    nodes: &HashMap<(String, String), String>,
    now: i64,
) -> Vec<Value> {
    bindings
        .iter()
        .filter(|b| b.expires_at > now)
        .map(|b| {
            json!({
                "aor": b.aor,
                "contact": b.contact,
                "expires_in": b.expires_at - now,
                "source": format!("{}:{}", transport(b.transport), b.source),
                "user_agent": b.user_agent,
                "path": b.path,
                "node": nodes.get(&(b.aor.clone(), b.contact.clone())),
                "instance": b.instance,
                "reg_id": b.reg_id,
                "call_id": b.call_id,
                "cseq": b.cseq,
            })
        })
        .collect()
}

/// Call records, with their media column as an object.
pub fn cdrs(rows: &[Cdr]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Ok(media) = serde_json::from_str::<Value>(&r.media) {
                v["media"] = media;
            }
            v
        })
        .collect()
}

/// The nodes table as of `now_ms`: each node's state (`lost` when its heartbeat
/// stopped without a goodbye) next to what it said last.
pub fn nodes(rows: &[NodeRow], now_ms: i64) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["state"] = r.state_at(now_ms).into();
            v["said"] = r.state.clone().into();
            v["up_for_ms"] = (r.heartbeat_at - r.started_at).max(0).into();
            v["last_seen_ms"] = (now_ms - r.heartbeat_at).max(0).into();
            v
        })
        .collect()
}
