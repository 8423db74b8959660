//! `softswitch peers`: the dial peers with their health and calls, which of them
//! a number would try and why (`--explain NUMBER`), and the operator's
//! `disable`/`drain`/`enable`.
//!
//! Health lives in the running node, so the listing asks its admin API when the
//! node of this config is running (its PID file names a live process) or when
//! `--node` says where it is; otherwise it shows the configuration alone.

use std::io::Write as _;
use std::path::Path;

use crate::admin::client::{get_json, post_json};

pub struct Request<'a> {
    pub config: &'a Path,
    pub node: Option<String>,
    pub explain: Option<&'a str>,
    pub call_id: &'a str,
    pub json: bool,
}

/// `peers disable|drain|enable TAG`.
pub async fn act(
    config_path: &Path,
    node: Option<String>,
    action: &str,
    tag: u32,
) -> anyhow::Result<()> {
    let target = super::admin_target(config_path, node)?;
    let path = format!("/api/peers/{tag}/{action}");
    let v = post_json(&target.base, &path, target.token.as_deref()).await?;
    println!("dial peer {tag}: {}", v["state"].as_str().unwrap_or("?"));
    Ok(())
}

pub async fn print(req: Request<'_>) -> anyhow::Result<()> {
    let config = super::load_config(req.config)?;
    let live = if req.node.is_some() || super::node_running(&config) {
        let base = super::admin_base(Some(&config), req.node)?;
        let peers = get_json(&base, "/api/peers", config.admin.token.as_deref()).await?;
        Some(peers.as_array().cloned().unwrap_or_default())
    } else {
        None
    };
    let state_of = |tag: u32| -> Option<&serde_json::Value> {
        live.as_ref()?
            .iter()
            .find(|p| p["tag"].as_u64() == Some(u64::from(tag)))
    };
    let mut out = std::io::stdout().lock();
    let Some(number) = req.explain else {
        if config.dial_peers.is_empty() {
            writeln!(
                out,
                "no dial peers configured ([[dial_peer]] in {})",
                config.path.display()
            )?;
            return Ok(());
        }
        if req.json {
            for p in &config.dial_peers {
                let mut v = serde_json::json!({
                    "tag": p.tag.get_ref(),
                    "destination_pattern": p.destination_pattern.get_ref(),
                    "session_target": p.session_target.get_ref(),
                    "preference": p.preference(),
                    "context": p.context,
                    "transport": p.transport,
                    "huntstop": p.huntstop,
                });
                if let Some(s) = state_of(*p.tag.get_ref()) {
                    for key in [
                        "state",
                        "reason",
                        "since_secs",
                        "active_calls",
                        "attempts",
                        "route_failures",
                        "probes_sent",
                        "state_changes",
                        "address",
                    ] {
                        v[key] = s[key].clone();
                    }
                }
                writeln!(out, "{v}")?;
            }
            return Ok(());
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        };
        let rows: Vec<[String; 10]> = config
            .dial_peers
            .iter()
            .map(|p| {
                let s = state_of(*p.tag.get_ref());
                let field = |k: &str| s.map_or("-".to_string(), |s| text(&s[k]));
                let since = s
                    .and_then(|s| s["since_secs"].as_f64())
                    .map_or("-".to_string(), |secs| format!("{secs:.0}s"));
                [
                    p.tag.get_ref().to_string(),
                    p.destination_pattern.get_ref().clone(),
                    p.preference().to_string(),
                    p.session_target.get_ref().clone(),
                    s.map_or("(node not running)".to_string(), |s| text(&s["state"])),
                    since,
                    field("active_calls"),
                    field("attempts"),
                    field("route_failures"),
                    p.context.clone(),
                ]
            })
            .collect();
        super::table::write(
            &mut out,
            [
                "TAG", "PATTERN", "PREF", "TARGET", "STATE", "FOR", "ACTIVE", "CALLS", "FAILED",
                "CONTEXT",
            ],
            &rows,
        )?;
        return Ok(());
    };
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    let mut peers = config.selection_peers();
    for p in &mut peers {
        if let Some(s) = state_of(p.tag) {
            p.active = s["active_calls"].as_u64().unwrap_or(0) as u32;
            let state = s["state"].as_str().unwrap_or("up");
            p.availability = match state {
                "up" => gateway::select::Availability::Usable,
                "suspect" => gateway::select::Availability::Suspect,
                other => gateway::select::Availability::Skipped(static_state(other)),
            };
        }
    }
    let list = gateway::select::hunt_list(&peers, &digits, req.call_id, config.gateway.share(), 0);
    let peer = |tag: u32| config.dial_peers.iter().find(|p| *p.tag.get_ref() == tag);
    let sent = |tag: u32| {
        let p = peer(tag)?;
        let pattern = gateway::pattern::Pattern::parse(p.destination_pattern.get_ref()).ok()?;
        Some(p.digit_rules().apply(&pattern, &digits))
    };
    if req.json {
        for (n, c) in list.order.iter().enumerate() {
            let (number, steps) = sent(c.tag).unwrap_or_else(|| (digits.clone(), Vec::new()));
            let v = serde_json::json!({
                "order": n + 1,
                "tag": c.tag,
                "pattern": c.pattern,
                "preference": c.preference,
                "reason": c.reason,
                "sends": number,
                "digit_steps": steps,
                "state": state_of(c.tag).map(|s| s["state"].clone()),
            });
            writeln!(out, "{v}")?;
        }
        for (tag, why) in &list.skipped {
            let v = serde_json::json!({ "tag": tag, "skipped": why });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    if list.order.is_empty() && list.skipped.is_empty() {
        writeln!(out, "{digits}: no dial peer matches")?;
        return Ok(());
    }
    if list.order.is_empty() {
        writeln!(
            out,
            "{digits}: every matching dial peer is out of service (the call fails at once)"
        )?;
    } else {
        writeln!(out, "{digits} tries, in order:")?;
    }
    for (n, c) in list.order.iter().enumerate() {
        let p = peer(c.tag);
        let target = p.map(|p| p.session_target.get_ref().as_str()).unwrap_or("");
        let state = state_of(c.tag)
            .and_then(|s| s["state"].as_str())
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {}. dial peer {} ({target}{state}): {}",
            n + 1,
            c.tag,
            c.reason
        )?;
        if let Some((number, steps)) = sent(c.tag)
            && !steps.is_empty()
        {
            writeln!(out, "     sends {number}: {}", steps.join(", "))?;
        }
        if p.is_some_and(|p| p.huntstop) && n + 1 < list.order.len() {
            writeln!(out, "     huntstop: a failure here tries no further peer")?;
            break;
        }
    }
    for (tag, why) in &list.skipped {
        writeln!(out, "  skipped: dial peer {tag}: {why}")?;
    }
    if live.is_none() && !config.dial_peers.is_empty() {
        writeln!(
            out,
            "  (the node is not running: every peer is taken as up)"
        )?;
    }
    Ok(())
}

fn static_state(state: &str) -> &'static str {
    gateway::health::State::ALL
        .iter()
        .map(|s| s.as_str())
        .find(|s| *s == state)
        .unwrap_or("out of service")
}
