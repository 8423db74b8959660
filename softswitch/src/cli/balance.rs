//! `softswitch balance --status`: a running balancer's view of its nodes, from its
//! admin API.

use std::io::Write as _;
use std::path::Path;

use crate::admin::client;
use crate::balance::config::BalancerConfig;

/// The running balancer's admin API and its token.
fn target(config_path: &Path, node: Option<String>) -> anyhow::Result<(String, Option<String>)> {
    let config = match &node {
        Some(_) => BalancerConfig::load(config_path).ok(),
        None => Some(BalancerConfig::load(config_path)?),
    };
    let base = match node {
        Some(url) => url,
        None => {
            let config = config.as_ref().expect("loaded above");
            let addr = config.admin.addr().ok_or_else(|| {
                anyhow::anyhow!("[admin] listen is off in the balancer's config: pass --node URL")
            })?;
            format!("http://{addr}")
        }
    };
    Ok((base, config.and_then(|c| c.admin.token)))
}

/// `softswitch balance --explain CALL-ID`.
pub async fn explain(
    config_path: &Path,
    node: Option<String>,
    call_id: &str,
    json: bool,
) -> anyhow::Result<()> {
    let (base, token) = target(config_path, node)?;
    let encoded: String = call_id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let v = client::get_json(
        &base,
        &format!("/api/balancer/route?call_id={encoded}"),
        token.as_deref(),
    )
    .await?;
    if json {
        println!("{v}");
    } else {
        match v["node"].as_str() {
            Some(n) => println!(
                "{call_id} -> {n} ({})",
                v["address"].as_str().unwrap_or("?")
            ),
            None => println!("{call_id} -> no node takes calls now (503)"),
        }
    }
    Ok(())
}

pub async fn status(config_path: &Path, node: Option<String>, json: bool) -> anyhow::Result<()> {
    let (base, token) = target(config_path, node)?;
    let v = client::get_json(&base, "/api/balancer", token.as_deref()).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "balancer {} on {} (advertised {}): {} of {} nodes take calls",
        v["balancer"].as_str().unwrap_or("?"),
        v["listen"].as_str().unwrap_or("?"),
        v["advertised"].as_str().unwrap_or("?"),
        v["nodes_taking_calls"],
        v["nodes"].as_array().map_or(0, Vec::len),
    )?;
    let rows: Vec<[String; 7]> = v["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    let text = |k: &str| n[k].as_str().unwrap_or("").to_owned();
                    [
                        text("name"),
                        text("state"),
                        text("address"),
                        n["weight"].to_string(),
                        n["picked"].to_string(),
                        n["calls"].as_u64().map_or("-".into(), |c| c.to_string()),
                        format!(
                            "{:.1}s {}",
                            n["since_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
                            text("reason")
                        ),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    super::table::write(
        &mut out,
        [
            "NODE", "STATE", "ADDRESS", "WEIGHT", "PICKED", "CALLS", "SINCE",
        ],
        &rows,
    )?;
    Ok(())
}
