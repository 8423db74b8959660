//! `softswitch cluster`: the nodes that share this config's database, read from
//! the nodes table their heartbeats keep fresh.

use std::io::Write as _;

use anyhow::Context as _;

use crate::config::Config;
use crate::store::Store;

pub async fn print(config: &Config, json: bool) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url(), false)
        .await
        .context("cannot open the database")?;
    let rows = store.nodes().await.context("cannot read the nodes table")?;
    store.close().await;
    let now = crate::runtime::unix_now_ms();
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            let mut v = serde_json::to_value(r)?;
            v["state"] = r.state_at(now).into();
            v["said"] = r.state.clone().into();
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no node has run on this database yet")?;
        return Ok(());
    }
    let secs = |ms: i64| format!("{:.0}s", (ms.max(0) as f64) / 1000.0);
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.state_at(now).to_string(),
                r.sip.clone(),
                if r.admin.is_empty() {
                    "-".into()
                } else {
                    r.admin.clone()
                },
                secs(r.heartbeat_at - r.started_at),
                secs(now - r.heartbeat_at),
            ]
        })
        .collect();
    super::table::write(
        &mut out,
        ["NODE", "STATE", "SIP", "ADMIN", "UP FOR", "LAST SEEN"],
        &table,
    )?;
    Ok(())
}
