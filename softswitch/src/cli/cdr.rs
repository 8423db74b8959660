//! `softswitch cdr [--last N]`: call detail records, from a running node's admin
//! API or, with the node stopped, from its database.

use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

use super::Source;
use crate::store::Store;

pub async fn print(
    config_path: &Path,
    node: Option<String>,
    last: u32,
    json: bool,
) -> anyhow::Result<()> {
    let rows = match super::source(config_path, node)? {
        Source::Api(target) => target.get_list(&format!("/api/cdr?last={last}")).await?,
        Source::Database(config) => {
            let store = Store::connect(&config.database_url(), false)
                .await
                .context("cannot open the database")?;
            let rows = store
                .recent_cdrs(i64::from(last))
                .await
                .context("cannot read call records")?;
            store.close().await;
            crate::admin::views::cdrs(&rows)
        }
    };
    super::table::print_rows(
        &rows,
        json,
        "no calls recorded",
        [
            "START",
            "SRC",
            "DST",
            "CONTEXT",
            "DISPOSITION",
            "CAUSE",
            "DURATION",
            "BILLSEC",
            "PDD",
            "MOS A/B",
            "UNIQUEID",
        ],
        |r| {
            let mos = |leg: &str| match &r["media"][leg]["mos"] {
                Value::Null => "-".to_string(),
                v => v.to_string(),
            };
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                v => v.to_string(),
            };
            let start = jiff::Timestamp::from_millisecond(r["start_at"].as_i64().unwrap_or(0))
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            [
                start,
                text(&r["src"]),
                text(&r["dst"]),
                text(&r["dcontext"]),
                text(&r["disposition"]),
                text(&r["hangup_cause"]),
                format!("{}s", text(&r["duration"])),
                format!("{}s", text(&r["billsec"])),
                r["pdd_ms"]
                    .as_i64()
                    .map_or("-".into(), |ms| format!("{ms}ms")),
                format!("{}/{}", mos("caller"), mos("callee")),
                text(&r["uniqueid"]),
            ]
        },
    )?;
    Ok(())
}
