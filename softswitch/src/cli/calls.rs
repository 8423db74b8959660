//! `softswitch calls`: the calls in progress on a running node, asked of its admin API.

use std::io::Write as _;
use std::path::Path;

use crate::admin::client::get_json;

/// `softswitch drain [--undo]`: asks the node to refuse (or take again) new
/// calls and says how many are still in progress.
pub async fn drain(
    config_path: &Path,
    node: Option<String>,
    undo: bool,
    stop: bool,
) -> anyhow::Result<()> {
    let target = super::admin_target(config_path, node)?;
    let path = match (undo, stop) {
        (true, _) => "/api/undrain",
        (false, true) => "/api/drain?stop=true",
        (false, false) => "/api/drain",
    };
    let v = crate::admin::client::post_json(&target.base, path, target.token.as_deref()).await?;
    let name = v["node"].as_str().unwrap_or("node");
    let calls = v["calls"].as_u64().unwrap_or(0);
    if undo {
        println!("{name}: taking new calls ({calls} in progress)");
    } else if stop {
        println!(
            "{name}: draining, new calls get 503; it stops after its {calls} call(s) in progress"
        );
    } else {
        println!("{name}: draining, new calls get 503; {calls} call(s) in progress");
    }
    Ok(())
}

pub async fn print(config_path: &Path, node: Option<String>, json: bool) -> anyhow::Result<()> {
    let target = super::admin_target(config_path, node)?;
    let calls = get_json(&target.base, "/api/calls", target.token.as_deref()).await?;
    let calls = calls.as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        for c in &calls {
            writeln!(out, "{c}")?;
        }
        return Ok(());
    }
    if calls.is_empty() {
        writeln!(out, "no calls")?;
        return Ok(());
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let rows: Vec<[String; 10]> = calls
        .iter()
        .map(|c| {
            let legs: Vec<String> = c["legs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| format!("{} {}", text(&l["channel"]), text(&l["state"])))
                .collect();
            let packets = |side: &str| text(&c["media"][side]["packets"]);
            [
                text(&c["uniqueid"]),
                text(&c["clid"]),
                text(&c["dst"]),
                text(&c["state"]),
                text(&c["app"]),
                format!("{}s", text(&c["age"])),
                if legs.is_empty() {
                    "-".into()
                } else {
                    legs.join(", ")
                },
                format!("{}/{}", packets("caller"), packets("callee")),
                format!(
                    "{}/{}",
                    text(&c["media"]["caller"]["mos"]),
                    text(&c["media"]["callee"]["mos"])
                ),
                format!(
                    "{}/{}",
                    text(&c["media"]["caller"]["rtt_ms"]),
                    text(&c["media"]["callee"]["rtt_ms"])
                ),
            ]
        })
        .collect();
    super::table::write(
        &mut out,
        [
            "UNIQUEID",
            "CALLER",
            "DIALED",
            "STATE",
            "APP",
            "AGE",
            "LEGS",
            "RTP IN A/B",
            "MOS A/B",
            "RTT MS A/B",
        ],
        &rows,
    )?;
    Ok(())
}
