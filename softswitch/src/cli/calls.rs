//! `softswitch calls`: the calls in progress on a running node, asked of its admin API.

use std::path::Path;

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
    let calls = target.get_list("/api/calls").await?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    super::table::print_rows(
        &calls,
        json,
        "no calls",
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
        |c| {
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
        },
    )?;
    Ok(())
}

/// `softswitch hangup UNIQUEID`.
pub async fn hangup(
    config_path: &Path,
    node: Option<String>,
    uniqueid: &str,
) -> anyhow::Result<()> {
    let target = super::admin_target(config_path, node)?;
    let path = format!("/api/calls/{}/hangup", path_segment(uniqueid));
    crate::admin::client::post_json(&target.base, &path, target.token.as_deref()).await?;
    println!("{uniqueid}: hung up");
    Ok(())
}

/// `softswitch bans [--lift ADDRESS] [--json]`.
pub async fn bans(
    config_path: &Path,
    node: Option<String>,
    lift: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let target = super::admin_target(config_path, node)?;
    if let Some(address) = lift {
        let path = format!("/api/bans/{}", path_segment(&address));
        crate::admin::client::delete_json(&target.base, &path, target.token.as_deref()).await?;
        println!("{address}: ban lifted");
        return Ok(());
    }
    let rows = target.get_list("/api/bans").await?;
    super::table::print_rows(&rows, json, "no bans", ["ADDRESS", "EXPIRES"], |r| {
        [
            r["address"].as_str().unwrap_or_default().to_owned(),
            format!("{}s", r["expires_in"].as_u64().unwrap_or(0)),
        ]
    })?;
    Ok(())
}

/// A value as one URL path segment: what an identifier may hold beyond letters,
/// digits and `-._~` is percent-encoded.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
