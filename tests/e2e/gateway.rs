//! Calls trunked between real switch processes by dial peers: site A sends
//! numbers 2xxx to two site-B switches of equal preference. SIPp plays the
//! carrier handing calls to A (trusted as a dial peer by its address); the B
//! switches answer. The cases check load sharing, failover when a B switch is
//! killed, its return, and draining on 503 with Retry-After.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use softswitch_e2e::process::wait_until;
use softswitch_e2e::{Sipp, Switch, SwitchOptions, TestNet, scenario};

/// Where SIPp, the carrier, calls from.
const CARRIER: u8 = 9;

/// A site-B switch: answers every 2xxx call arriving from site A.
fn site_b(ip: IpAddr, a_ip: IpAddr) -> Switch {
    let mut b = SwitchOptions::new(ip);
    b.dialplan =
        "[from-a]\nexten => _2XXX,1,Answer()\n same => n,Wait(10)\n same => n,Hangup()\n".into();
    b.extra = format!(
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"1...\"\nsession_target = \"ipv4:{a_ip}\"\ncontext = \"from-a\"\n"
    );
    Switch::start(b)
}

/// Site A: 2xxx to the `b` peers (tag 1, 2, … in order, equal preference
/// unless `prefs` says otherwise); the carrier's calls run in `from-carrier`.
fn site_a(net: &TestNet, b: &[(IpAddr, u8, &str)]) -> Switch {
    let mut a = SwitchOptions::new(net.switch_ip());
    a.dialplan =
        "[from-carrier]\nexten => _2XXX,1,Dial(PEER/${EXTEN},10)\n same => n,Hangup()\n".into();
    let mut extra = String::new();
    for (i, (ip, pref, more)) in b.iter().enumerate() {
        extra.push_str(&format!(
            "[[dial_peer]]\ntag = {}\ndestination_pattern = \"2...\"\nsession_target = \"ipv4:{ip}\"\npreference = {pref}\n{more}\n",
            i + 1
        ));
    }
    // The carrier is trusted by its address; it is not probed (SIPp would
    // take an OPTIONS for a call it did not expect).
    extra.push_str(&format!(
        "[[dial_peer]]\ntag = 9\ndestination_pattern = \"0000$\"\nsession_target = \"ipv4:{}:5090\"\n\
         context = \"from-carrier\"\noptions_keepalive = {{ enabled = false }}\n",
        net.ip(CARRIER)
    ));
    a.extra = extra;
    Switch::start(a)
}

/// SIPp as the carrier: `calls` calls to 2001 at `rate` per second, with its
/// statistics in `stat.csv` of the run's directory.
fn carrier(net: &TestNet, a: &Switch, calls: u32, rate: u32, stats: &std::path::Path) -> Sipp {
    Sipp::new(
        scenario("trunk_caller.xml"),
        SocketAddr::new(net.ip(CARRIER).into(), 5090),
        a.sip_addr(),
    )
    .calls(calls)
    .arg("-s")
    .arg("2001")
    .arg("-r")
    .arg(rate.to_string())
    .arg("-trace_stat")
    .arg("-stf")
    .arg(stats.to_string_lossy().into_owned())
    .arg("-fd")
    .arg("1")
}

/// The last value of column `name` in SIPp's statistics file.
fn stat(path: &std::path::Path, name: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = lines.last().unwrap_or("").split(';').collect();
    head.iter()
        .position(|h| *h == name)
        .and_then(|i| last.get(i))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A's CDRs: how many calls each peer tag took (by the answered leg's channel).
fn calls_by_peer(a: &Switch) -> std::collections::BTreeMap<String, usize> {
    let out = a.cli(&["cdr", "--json", "--last", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cdr: serde_json::Value = serde_json::from_str(line).unwrap();
        let channel = cdr["dstchannel"].as_str().unwrap_or("").to_string();
        let tag = channel.split('-').next().unwrap_or("").to_string();
        *by.entry(tag).or_insert(0) += 1;
    }
    by
}

/// `softswitch peers --json` of a running switch: tag → state.
fn peer_states(a: &Switch) -> std::collections::BTreeMap<u64, String> {
    let out = a.cli(&["peers", "--json"]);
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
                v["tag"].as_u64().unwrap(),
                v["state"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Two equal B switches share A's calls; one is killed mid-run, calls keep
/// succeeding through the other, no call is sent to the dead one once it is
/// found down, and after a restart it takes calls again.
#[test]
fn equal_peers_share_calls_and_a_killed_peer_fails_over_and_rejoins() {
    let net = TestNet::new();
    let a_ip: IpAddr = net.switch_ip().into();
    let (b1_ip, b2_ip): (IpAddr, IpAddr) = (net.ip(2).into(), net.ip(3).into());
    let mut b1 = site_b(b1_ip, a_ip);
    let _b2 = site_b(b2_ip, a_ip);
    let a = site_a(&net, &[(b1_ip, 0, ""), (b2_ip, 0, "")]);
    let stats = tempfile::tempdir().unwrap();

    // 1. Sharing: 100 calls, hashed on the Call-ID over the two peers.
    let shared = stats.path().join("shared.csv");
    let run = carrier(&net, &a, 100, 25, &shared).run();
    assert!(run.succeeded(), "{run}\nA:\n{}", a.log());
    let by = calls_by_peer(&a);
    let (p1, p2) = (
        by.get("PEER/1").copied().unwrap_or(0),
        by.get("PEER/2").copied().unwrap_or(0),
    );
    eprintln!("shared 100 calls: peer 1 took {p1}, peer 2 took {p2}");
    assert_eq!(p1 + p2, 100, "{by:?}");
    assert!((30..=70).contains(&p1), "uneven share: {by:?}");

    // 2. Failover: B1 is killed 3 s into a 12 s run.
    let failover = stats.path().join("failover.csv");
    let load = carrier(&net, &a, 240, 20, &failover).spawn();
    std::thread::sleep(Duration::from_secs(3));
    b1.kill();
    let killed = Instant::now();
    let down = wait_until(Duration::from_secs(10), || {
        peer_states(&a).get(&1).is_some_and(|s| s == "down")
    });
    let detected = killed.elapsed();
    assert!(
        down,
        "peer 1 never went down: {:?}\n{}",
        peer_states(&a),
        a.log()
    );
    let after_detection = a.log().matches("trying dial peer").count();
    let run = load.wait();
    let failed = stat(&failover, "FailedCall(C)");
    let ok = stat(&failover, "SuccessfulCall(C)");
    let slow = a.log().matches("dial peer did not answer in time").count();
    eprintln!(
        "failover: peer 1 down {:.0} ms after the kill; {ok} calls succeeded, {failed} failed; \
         {slow} call(s) paid the invite timeout",
        detected.as_secs_f64() * 1000.0
    );
    assert_eq!(failed, 0, "{run}\nA:\n{}", a.log());
    assert_eq!(ok, 240);
    assert!(
        detected < Duration::from_millis(1000 + 1500 + 500),
        "detection took {detected:?}: one call timeout plus a probe should do"
    );
    // Nothing was tried on peer 1 after it was found down.
    let log = a.log();
    let later: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("trying dial peer"))
        .skip(after_detection)
        .collect();
    assert!(
        !later.iter().any(|l| l.contains("tag=1 ")),
        "a down peer was tried: {later:?}"
    );

    // The operator was told: the peer went down, and calls failed over from it.
    let events = softswitch_e2e::http::get(a.admin_addr(), "/api/events").json();
    let told = |kind: &str, key: &str| {
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == kind && e["detail"][key] == 1)
    };
    assert!(told("peer_down", "tag"), "{events}");
    assert!(told("failover", "from_peer"), "{events}");

    // 3. B1 comes back: probes find it, and it takes calls again.
    let before = calls_by_peer(&a).get("PEER/1").copied().unwrap_or(0);
    b1.restart();
    let back = Instant::now();
    let up = wait_until(Duration::from_secs(10), || {
        peer_states(&a).get(&1).is_some_and(|s| s == "up")
    });
    assert!(up, "peer 1 did not come back: {:?}", peer_states(&a));
    eprintln!(
        "rejoin: peer 1 up {:.0} ms after its restart",
        back.elapsed().as_secs_f64() * 1000.0
    );
    let rejoined = stats.path().join("rejoined.csv");
    let run = carrier(&net, &a, 40, 20, &rejoined).run();
    assert!(run.succeeded(), "{run}");
    let after = calls_by_peer(&a).get("PEER/1").copied().unwrap_or(0);
    assert!(
        after > before,
        "peer 1 took no call after rejoining ({before} → {after})"
    );
}

/// A peer that answers 503 with Retry-After is draining: the call moves on to
/// the next peer at once, so no call fails, and later calls skip it without
/// asking.
#[test]
fn a_peer_refusing_with_503_retry_after_is_drained_and_no_call_fails() {
    let net = TestNet::new();
    let a_ip: IpAddr = net.switch_ip().into();
    let refuser: IpAddr = net.ip(4).into();
    let b2_ip: IpAddr = net.ip(3).into();
    let _b2 = site_b(b2_ip, a_ip);
    let a = site_a(
        &net,
        &[
            (refuser, 0, "options_keepalive = { enabled = false }"),
            (b2_ip, 1, ""),
        ],
    );
    let uas = Sipp::new(
        scenario("trunk_refuser.xml"),
        SocketAddr::new(refuser, 5060),
        SocketAddr::new(a_ip, 5060),
    )
    .calls(1)
    .spawn();
    std::thread::sleep(Duration::from_millis(300));
    let stats = tempfile::tempdir().unwrap();
    let csv = stats.path().join("refused.csv");
    let started = Instant::now();
    let run = carrier(&net, &a, 20, 10, &csv).run();
    assert!(run.succeeded(), "{run}\nA:\n{}", a.log());
    let refused = uas.wait();
    assert!(refused.succeeded(), "{refused}");
    let log = a.log();
    let tried_refuser = log
        .lines()
        .filter(|l| l.contains("trying dial peer") && l.contains("tag=1 "))
        .count();
    assert_eq!(
        tried_refuser, 1,
        "only the first call asks the draining peer\n{log}"
    );
    assert_eq!(
        peer_states(&a).get(&1).map(String::as_str),
        Some("draining")
    );
    assert_eq!(calls_by_peer(&a).get("PEER/2").copied(), Some(20));
    eprintln!(
        "503 refusal: 20 calls, 0 failed, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Keepalive finds a dead peer with no call to show it; the operator's
/// disable holds through a reload; `softswitch peers` shows both, and calls
/// go to the live peer without waiting on the dead one.
#[test]
fn keepalive_finds_a_dead_peer_and_an_operator_disable_outlives_a_reload() {
    let net = TestNet::new();
    let a_ip: IpAddr = net.switch_ip().into();
    let dead: IpAddr = net.ip(6).into();
    let b2_ip: IpAddr = net.ip(3).into();
    let _b2 = site_b(b2_ip, a_ip);
    let a = site_a(&net, &[(dead, 0, ""), (b2_ip, 1, "")]);
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || peer_states(&a)
            .get(&1)
            .is_some_and(|s| s == "down")),
        "{:?}",
        peer_states(&a)
    );
    eprintln!(
        "keepalive: silent peer down {:.0} ms after start",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let out = a.cli(&["peers", "disable", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "dial peer 2: disabled"
    );
    let out = a.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wait_until(Duration::from_secs(5), || a
        .log()
        .contains("dial peers reloaded")));
    assert_eq!(
        peer_states(&a).get(&2).map(String::as_str),
        Some("disabled")
    );
    let table = String::from_utf8_lossy(&a.cli(&["peers"]).stdout).into_owned();
    assert!(
        table.contains("disabled") && table.contains("down"),
        "{table}"
    );

    let out = a.cli(&["peers", "disable", "7"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no dial peer 7"), "{err}");

    let out = a.cli(&["peers", "enable", "2"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "dial peer 2: up"
    );
    let stats = tempfile::tempdir().unwrap();
    let csv = stats.path().join("enabled.csv");
    let run = carrier(&net, &a, 5, 5, &csv).run();
    assert!(run.succeeded(), "{run}\nA:\n{}", a.log());
    assert!(
        !a.log().contains("dial peer did not answer in time"),
        "a down peer held up a call\n{}",
        a.log()
    );
}

/// A `dns:` session target is looked up by the node; calls and probes go to
/// the address it names, and calls from that address are the peer's.
#[test]
fn a_dns_session_target_is_resolved_and_called() {
    let net = TestNet::new();
    let a_ip: IpAddr = net.switch_ip().into();
    // `localhost` names 127.0.0.1; a port of this run's own keeps parallel runs apart.
    let port = 21000 + (std::process::id() % 4000) as u16;
    let mut b = SwitchOptions::new(IpAddr::from([127, 0, 0, 1]));
    b.port = port;
    b.tcp = false;
    b.dialplan =
        "[from-a]\nexten => _2XXX,1,Answer()\n same => n,Wait(10)\n same => n,Hangup()\n".into();
    b.extra = format!(
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"1...\"\nsession_target = \"ipv4:{a_ip}\"\ncontext = \"from-a\"\n"
    );
    let _b = Switch::start(b);
    let a = site_a(&net, &[(a_ip, 0, "")]);
    // Point peer 1 at the name instead of an address.
    let config = std::fs::read_to_string(&a.config).unwrap().replace(
        &format!("session_target = \"ipv4:{a_ip}\""),
        &format!("session_target = \"dns:localhost:{port}\""),
    );
    std::fs::write(&a.config, config).unwrap();
    let out = a.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(5), || {
            let out = a.cli(&["peers", "--json"]);
            String::from_utf8_lossy(&out.stdout)
                .contains(&format!("\"address\":\"127.0.0.1:{port}\""))
        }),
        "{}",
        a.log()
    );
    let stats = tempfile::tempdir().unwrap();
    let csv = stats.path().join("dns.csv");
    let run = carrier(&net, &a, 3, 3, &csv).run();
    assert!(run.succeeded(), "{run}\nA:\n{}", a.log());
    assert_eq!(peer_states(&a).get(&1).map(String::as_str), Some("up"));
}

/// Digest both ways between two real switches: B asks A's calls for digest
/// (`inbound_auth`), A answers B's challenge with the peer's credentials.
#[test]
fn a_trunk_with_digest_both_ways_carries_calls() {
    let net = TestNet::new();
    let a_ip: IpAddr = net.switch_ip().into();
    let b_ip: IpAddr = net.ip(3).into();
    let mut b = SwitchOptions::new(b_ip);
    b.endpoints = vec![("site-a".into(), "trunk-secret".into())];
    b.dialplan =
        "[from-a]\nexten => _2XXX,1,Answer()\n same => n,Wait(10)\n same => n,Hangup()\n".into();
    b.extra = format!(
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"1...\"\nsession_target = \"ipv4:{a_ip}\"\n\
         context = \"from-a\"\nusername = \"site-a\"\ninbound_auth = true\n"
    );
    let b = Switch::start(b);
    let a = site_a(
        &net,
        &[(
            b_ip,
            0,
            "username = \"site-a\"\npassword = \"trunk-secret\"",
        )],
    );
    let stats = tempfile::tempdir().unwrap();
    let run = carrier(&net, &a, 3, 3, &stats.path().join("digest.csv")).run();
    assert!(run.succeeded(), "{run}\nA:\n{}\nB:\n{}", a.log(), b.log());
    assert!(
        a.log().contains("answering the dial peer's challenge"),
        "{}",
        a.log()
    );

    // With the wrong password B refuses, and A's dialplan hears it.
    let wrong = std::fs::read_to_string(&a.config)
        .unwrap()
        .replace("password = \"trunk-secret\"", "password = \"guess\"");
    std::fs::write(&a.config, wrong).unwrap();
    let out = a.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wait_until(Duration::from_secs(5), || a
        .log()
        .matches("dial peers reloaded")
        .count()
        == 1));
    let run = carrier(&net, &a, 1, 1, &stats.path().join("wrong.csv")).run();
    assert!(!run.succeeded(), "a wrong password got through");
    assert!(b.log().contains("authentication failed"), "{}", b.log());
}

/// `softswitch drain` on a B switch: its OPTIONS and new INVITEs get 503 with
/// Retry-After, so A drains that peer and sends every call to the other one,
/// with none failing; `drain --undo` takes calls again.
#[test]
fn a_drained_switch_gets_no_new_calls_and_none_fail() {
    let net = TestNet::new();
    let a_ip: IpAddr = net.switch_ip().into();
    let (b1_ip, b2_ip): (IpAddr, IpAddr) = (net.ip(2).into(), net.ip(3).into());
    let b1 = site_b(b1_ip, a_ip);
    let _b2 = site_b(b2_ip, a_ip);
    let a = site_a(&net, &[(b1_ip, 0, ""), (b2_ip, 0, "")]);
    let out = b1.cli(&["drain"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("draining"), "{said}");
    let stats = tempfile::tempdir().unwrap();
    let run = carrier(&net, &a, 30, 15, &stats.path().join("drained.csv")).run();
    assert!(run.succeeded(), "{run}\nA:\n{}", a.log());
    let by = calls_by_peer(&a);
    assert_eq!(by.get("PEER/2").copied(), Some(30), "{by:?}");
    assert_eq!(
        peer_states(&a).get(&1).map(String::as_str),
        Some("draining")
    );
    let out = b1.cli(&["drain", "--undo"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("taking new calls"));
}
