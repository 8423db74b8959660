//! Nodes sharing one PostgreSQL database (started by the test) see each other
//! through the nodes table: `softswitch cluster` shows them up, draining,
//! lost when killed and stopped when shut down.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use softswitch_e2e::process::wait_until;
use softswitch_e2e::switch::Database;
use softswitch_e2e::{Postgres, Switch, SwitchOptions, TestNet};

fn node(net: &TestNet, host: u8, name: &str, url: &str) -> Switch {
    let mut o = SwitchOptions::new(net.ip(host));
    o.database = Database::Postgres(url.to_string());
    o.extra = format!("[node]\nname = \"{name}\"\n");
    Switch::start(o)
}

/// `softswitch cluster --json` as seen through `sw`'s config: node → state.
fn members(sw: &Switch) -> BTreeMap<String, String> {
    let out = sw.cli(&["cluster", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                v["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn shows(sw: &Switch, name: &str, state: &str) -> bool {
    members(sw).get(name).is_some_and(|s| s == state)
}

#[test]
fn nodes_on_one_database_see_each_other_drain_get_lost_and_stop() {
    let pg = Postgres::start(26432 + (std::process::id() % 1000) as u16);
    let url = pg.create_database("cluster");
    let net = TestNet::new();
    let mut n1 = node(&net, 1, "node-1", &url);
    let mut n2 = node(&net, 2, "node-2", &url);
    assert!(
        wait_until(Duration::from_secs(5), || shows(&n1, "node-1", "up")
            && shows(&n1, "node-2", "up")),
        "{:?}",
        members(&n1)
    );

    let out = n2.cli(&["drain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(5), || shows(&n1, "node-2", "draining")),
        "{:?}",
        members(&n1)
    );

    n2.kill();
    let killed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || shows(&n1, "node-2", "lost")),
        "{:?}",
        members(&n1)
    );
    eprintln!(
        "node-2 seen lost {:.1} s after it was killed",
        killed.elapsed().as_secs_f64()
    );

    n1.stop();
    assert_eq!(
        members(&n1).get("node-1").map(String::as_str),
        Some("stopped")
    );
    let table = String::from_utf8_lossy(&n1.cli(&["cluster"]).stdout).into_owned();
    assert!(
        table.contains("node-1") && table.contains("lost"),
        "{table}"
    );
}
