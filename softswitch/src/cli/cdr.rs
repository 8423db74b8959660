//! `softswitch cdr [--last N]`: call detail records from the database.

use std::io::Write as _;

use anyhow::Context as _;

use crate::config::Config;
use crate::store::Store;

pub async fn print(config: &Config, last: u32, json: bool) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url(), false)
        .await
        .context("cannot open the database")?;
    let rows = store
        .recent_cdrs(i64::from(last))
        .await
        .context("cannot read call records")?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            let mut v = serde_json::to_value(r)?;
            // The media column holds JSON text; print it as an object.
            if let Ok(media) = serde_json::from_str::<serde_json::Value>(&r.media) {
                v["media"] = media;
            }
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no calls recorded")?;
        return Ok(());
    }
    let table: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            let media: serde_json::Value = serde_json::from_str(&r.media).unwrap_or_default();
            let mos = |leg: &str| match &media[leg]["mos"] {
                serde_json::Value::Null => "-".to_string(),
                v => v.to_string(),
            };
            let start = jiff::Timestamp::from_millisecond(r.start_at)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            [
                start,
                r.src.clone(),
                r.dst.clone(),
                r.dcontext.clone(),
                r.disposition.clone(),
                r.hangup_cause.to_string(),
                format!("{}s", r.duration),
                format!("{}s", r.billsec),
                r.pdd_ms.map_or("-".into(), |ms| format!("{ms}ms")),
                format!("{}/{}", mos("caller"), mos("callee")),
                r.uniqueid.clone(),
            ]
        })
        .collect();
    super::table::write(
        &mut out,
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
        &table,
    )?;
    Ok(())
}
