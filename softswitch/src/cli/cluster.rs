//! `softswitch cluster`: the nodes that share this config's database, as their
//! heartbeats keep the nodes table fresh; asked of a running node's admin API,
//! else read from the database.

use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

use super::Source;
use crate::store::Store;

pub async fn print(config_path: &Path, node: Option<String>, json: bool) -> anyhow::Result<()> {
    let rows = match super::source(config_path, node)? {
        Source::Api(target) => target.get_list("/api/cluster").await?,
        Source::Database(config) => {
            let store = Store::connect(&config.database_url(), false)
                .await
                .context("cannot open the database")?;
            let rows = store.nodes().await.context("cannot read the nodes table")?;
            store.close().await;
            crate::admin::views::nodes(&rows, crate::runtime::unix_now_ms())
        }
    };
    let secs = |v: &Value| format!("{:.0}s", (v.as_i64().unwrap_or(0).max(0) as f64) / 1000.0);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    super::table::print_rows(
        &rows,
        json,
        "no node has run on this database yet",
        ["NODE", "STATE", "SIP", "ADMIN", "UP FOR", "LAST SEEN"],
        |r| {
            let admin = text(&r["admin"]);
            [
                text(&r["name"]),
                text(&r["state"]),
                text(&r["sip"]),
                if admin.is_empty() { "-".into() } else { admin },
                secs(&r["up_for_ms"]),
                secs(&r["last_seen_ms"]),
            ]
        },
    )?;
    Ok(())
}
