//! `softswitch balance --status`: a running balancer's view of its nodes, from its
//! admin API.

use std::io::Write as _;
use std::path::Path;

use crate::admin::client;
use crate::balance::config::BalancerConfig;

pub async fn status(config_path: &Path, node: Option<String>, json: bool) -> anyhow::Result<()> {
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
    let token = config.and_then(|c| c.admin.token);
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
    let rows: Vec<[String; 6]> = v["nodes"]
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
                        n["new_dialogs"].to_string(),
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
        ["NODE", "STATE", "ADDRESS", "WEIGHT", "NEW DIALOGS", "SINCE"],
        &rows,
    )?;
    Ok(())
}
