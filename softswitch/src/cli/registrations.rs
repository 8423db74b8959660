//! `softswitch registrations`: the bindings as committed to the database, which a node
//! writes before it answers 200, so this is what the running node holds.

use std::io::Write as _;

use anyhow::Context as _;

use crate::config::Config;
use crate::runtime::unix_now;
use crate::store::Store;

pub async fn print(config: &Config, json: bool) -> anyhow::Result<()> {
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
    let mut out = std::io::stdout().lock();
    if json {
        for b in &bindings {
            let line = serde_json::json!({
                "aor": b.aor,
                "contact": b.contact,
                "expires_in": b.expires_at - now,
                "source": format!("{}:{}", transport(b.transport), b.source),
                "user_agent": b.user_agent,
                "path": b.path,
                "node": via.get(&(b.aor.clone(), b.contact.clone())),
                "instance": b.instance,
                "reg_id": b.reg_id,
                "call_id": b.call_id,
                "cseq": b.cseq,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    if bindings.is_empty() {
        writeln!(out, "no registrations")?;
        return Ok(());
    }
    let rows: Vec<[String; 5]> = bindings
        .iter()
        .map(|b| {
            [
                b.aor.clone(),
                b.contact.clone(),
                format!("{}s", b.expires_at - now),
                format!("{}:{}", transport(b.transport), b.source),
                b.user_agent.clone(),
            ]
        })
        .collect();
    super::table::write(
        &mut out,
        ["AOR", "CONTACT", "EXPIRES", "SOURCE", "USER-AGENT"],
        &rows,
    )?;
    writeln!(
        out,
        "{} registration{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )?;
    Ok(())
}

fn transport(t: crate::sip::transaction::TransportKind) -> &'static str {
    use crate::sip::transaction::TransportKind;
    match t {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
        TransportKind::Tls => "tls",
    }
}
