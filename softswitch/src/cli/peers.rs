//! `softswitch peers [--explain NUMBER]`: the configured dial peers, and which of
//! them a number would try, in which order and why.
//!
//! It reads the configuration, so it works without a running node; every peer is
//! taken as up (peer health lives in the running node).

use std::io::Write as _;

use crate::config::Config;

pub fn print(
    config: &Config,
    explain: Option<&str>,
    call_id: &str,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let Some(number) = explain else {
        if config.dial_peers.is_empty() {
            writeln!(
                out,
                "no dial peers configured ([[dial_peer]] in {})",
                config.path.display()
            )?;
            return Ok(());
        }
        if json {
            for p in &config.dial_peers {
                let v = serde_json::json!({
                    "tag": p.tag.get_ref(),
                    "destination_pattern": p.destination_pattern.get_ref(),
                    "session_target": p.session_target.get_ref(),
                    "preference": p.preference(),
                    "context": p.context,
                    "transport": p.transport,
                    "huntstop": p.huntstop,
                });
                writeln!(out, "{v}")?;
            }
            return Ok(());
        }
        let rows: Vec<[String; 6]> = config
            .dial_peers
            .iter()
            .map(|p| {
                [
                    p.tag.get_ref().to_string(),
                    p.destination_pattern.get_ref().clone(),
                    p.preference().to_string(),
                    p.session_target.get_ref().clone(),
                    p.transport.clone(),
                    p.context.clone(),
                ]
            })
            .collect();
        super::table::write(
            &mut out,
            ["TAG", "PATTERN", "PREF", "TARGET", "TRANSPORT", "CONTEXT"],
            &rows,
        )?;
        return Ok(());
    };
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    let peers = config.selection_peers();
    let list = gateway::select::hunt_list(&peers, &digits, call_id, config.gateway.share(), 0);
    if json {
        for (n, c) in list.order.iter().enumerate() {
            let v = serde_json::json!({
                "order": n + 1,
                "tag": c.tag,
                "pattern": c.pattern,
                "preference": c.preference,
                "reason": c.reason,
            });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    if list.order.is_empty() {
        writeln!(out, "{digits}: no dial peer matches")?;
        return Ok(());
    }
    writeln!(out, "{digits} tries, in order:")?;
    for (n, c) in list.order.iter().enumerate() {
        let target = config
            .dial_peers
            .iter()
            .find(|p| *p.tag.get_ref() == c.tag)
            .map(|p| p.session_target.get_ref().as_str())
            .unwrap_or("");
        writeln!(
            out,
            "  {}. dial peer {} ({target}): {}",
            n + 1,
            c.tag,
            c.reason
        )?;
        let stops = config
            .dial_peers
            .iter()
            .any(|p| *p.tag.get_ref() == c.tag && p.huntstop);
        if stops && n + 1 < list.order.len() {
            writeln!(out, "     huntstop: a failure here tries no further peer")?;
            break;
        }
    }
    Ok(())
}
