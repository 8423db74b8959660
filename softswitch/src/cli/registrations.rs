//! `softswitch registrations`: the bindings a running node routes with, from its
//! admin API; with the node stopped, as committed to its database (a node writes
//! a binding before it answers 200).

use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

use super::Source;
use crate::runtime::unix_now;
use crate::store::Store;

pub async fn print(config_path: &Path, node: Option<String>, json: bool) -> anyhow::Result<()> {
    let rows = match super::source(config_path, node)? {
        Source::Api(target) => target.get_list("/api/registrations").await?,
        Source::Database(config) => {
            let store = Store::connect(&config.database_url(), false)
                .await
                .context("cannot open the database")?;
            let now = unix_now();
            let bindings = store
                .load_bindings(now)
                .await
                .context("cannot read registrations")?;
            let via = store
                .binding_nodes()
                .await
                .context("cannot read registrations")?;
            store.close().await;
            crate::admin::views::registrations(&bindings, &via, now)
        }
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    super::table::print_rows(
        &rows,
        json,
        "no registrations",
        ["AOR", "CONTACT", "EXPIRES", "SOURCE", "USER-AGENT"],
        |b| {
            [
                text(&b["aor"]),
                text(&b["contact"]),
                format!("{}s", b["expires_in"].as_i64().unwrap_or(0)),
                text(&b["source"]),
                text(&b["user_agent"]),
            ]
        },
    )?;
    if !json && !rows.is_empty() {
        let n = rows.len();
        println!("{n} registration{}", if n == 1 { "" } else { "s" });
    }
    Ok(())
}
