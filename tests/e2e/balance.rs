//! Two switch nodes on one PostgreSQL server (started by the test) behind
//! `softswitch balance`: phones register and call through the balancer only; calls
//! spread over both nodes and reach a phone whichever node took its registration;
//! a node killed under load is taken out and its share moves to the survivor with
//! no registration lost; it rejoins when restarted; a balancer killed and restarted
//! picks up where it was; a node drained under load fails no call.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use softswitch_e2e::net::status_of;
use softswitch_e2e::process::wait_until;
use softswitch_e2e::switch::Database;
use softswitch_e2e::{
    Balancer, Postgres, Sipp, SippRun, Switch, SwitchOptions, TestNet, UdpClient, scenario,
    scenario_with_audio,
};

/// A node that answers for the balancers' addresses (hosts 10 and 11) too.
fn node(net: &TestNet, host: u8, name: &str, url: &str) -> Switch {
    node_with(net, host, name, url, "")
}

/// The same with more `[sip]` settings.
fn node_with(net: &TestNet, host: u8, name: &str, url: &str, sip: &str) -> Switch {
    let mut o = SwitchOptions::new(net.ip(host));
    o.database = Database::Postgres(url.to_string());
    o.extra = format!("[node]\nname = \"{name}\"\n");
    o.sip_extra = format!("aliases = [\"{}\", \"{}\"]\n{sip}", net.ip(10), net.ip(11));
    Switch::start(o)
}

fn phone(net: &TestNet, host: u8) -> SocketAddr {
    SocketAddr::new(net.ip(host).into(), 5070)
}

/// A PostgreSQL server (on `port_base` plus a per-process offset) with database
/// `db`, node-1 and node-2 on it with `sip` settings, and a balancer over both
/// that sees them up.
fn balanced_pair(
    port_base: u16,
    db: &str,
    sip: &str,
) -> (Postgres, TestNet, Switch, Switch, Balancer) {
    let pg = Postgres::start(port_base + (std::process::id() % 1000) as u16);
    let url = pg.create_database(db);
    let net = TestNet::new();
    let n1 = node_with(&net, 1, "node-1", &url, sip);
    let n2 = node_with(&net, 2, "node-2", &url, sip);
    let lb = Balancer::start(
        net.ip(10).into(),
        &[("node-1", n1.sip_addr()), ("node-2", n2.sip_addr())],
    );
    assert!(
        wait_until(Duration::from_secs(5), || lb.node_state("node-1") == "up"
            && lb.node_state("node-2") == "up"),
        "{}\n{}",
        lb.status(),
        lb.log()
    );
    (pg, net, n1, n2, lb)
}

/// `n` short calls from 1001 (host 6) to 1002 through the balancer, `rate` per second.
fn calls(lb: &Balancer, net: &TestNet, n: u32, rate: u32) -> Sipp {
    Sipp::new(
        scenario("call_caller_short.xml"),
        phone(net, 6),
        lb.sip_addr(),
    )
    .calls(n)
    .arg("-r")
    .arg(rate.to_string())
    .arg("-l")
    .arg("100")
    .dialing("1002", "1001")
    .media_at(7000)
}

/// 1002's phone on host 5, answering `n` calls.
fn callee(lb: &Balancer, net: &TestNet, n: u32) -> softswitch_e2e::RunningSipp {
    Sipp::new(scenario("call_callee.xml"), phone(net, 5), lb.sip_addr())
        .calls(n)
        .media_at(6000)
        .spawn()
}

fn successful(run: &SippRun) -> u64 {
    stat(run, "Successful call")
}

fn failed(run: &SippRun) -> u64 {
    stat(run, "Failed call")
}

/// A cumulative counter from SIPp's final statistics screen.
fn stat(run: &SippRun, name: &str) -> u64 {
    run.stdout
        .lines()
        .rfind(|l| l.contains(name))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0)
}

/// The shared CDR table, as `softswitch cdr --json` through `sw` prints it.
fn cdr_rows(sw: &Switch) -> Vec<serde_json::Value> {
    let out = sw.cli(&["cdr", "--last", "1000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Answered calls per node.
fn answered_by_node(sw: &Switch) -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    for v in cdr_rows(sw) {
        if v["disposition"] == "ANSWERED" {
            *by.entry(v["node"].as_str().unwrap_or("?").to_owned())
                .or_insert(0) += 1;
        }
    }
    by
}

#[test]
fn a_balanced_pair_spreads_calls_survives_a_node_loss_and_a_balancer_restart() {
    let pg = Postgres::start(28432 + (std::process::id() % 1000) as u16);
    let url = pg.create_database("balanced");
    let net = TestNet::new();
    let mut n1 = node(&net, 1, "node-1", &url);
    let n2 = node(&net, 2, "node-2", &url);
    let mut lb = Balancer::start(
        net.ip(10).into(),
        &[("node-1", n1.sip_addr()), ("node-2", n2.sip_addr())],
    );
    assert!(
        wait_until(Duration::from_secs(5), || lb.node_state("node-1") == "up"
            && lb.node_state("node-2") == "up"),
        "{}\n{}",
        lb.status(),
        lb.log()
    );

    // 1002 registers through the balancer: the binding is shared, with the
    // balancer's Path naming the phone's address.
    let reg = Sipp::new(scenario("register.xml"), phone(&net, 5), lb.sip_addr())
        .user("1002", "secret1002")
        .key("expires", "600")
        .run();
    assert!(
        reg.succeeded(),
        "1002 did not register: {reg}\n{}",
        lb.log()
    );
    let bindings = n2.registrations();
    let bob = bindings
        .iter()
        .find(|b| b["aor"] == "1002@pbx.test")
        .expect("1002 in the shared location");
    let path = bob["path"].to_string();
    assert!(
        path.contains(&format!("{}:5060;lr", net.ip(10))) && path.contains("fl="),
        "{bob}"
    );

    // A call with audio between phones on different nodes: the balancer sends
    // this Call-ID to the node that did not take 1002's registration.
    let registered_on = bob["node"].as_str().expect("the binding's node").to_owned();
    let call_id = (0..64)
        .map(|i| format!("audio-{i}@balance.test"))
        .find(|c| lb.route_of(c) != registered_on)
        .expect("a Call-ID for the other node");
    let audio_caller = scenario_with_audio("call_caller.xml", n1.dir.path());
    let echo = Sipp::new(scenario("call_callee.xml"), phone(&net, 5), lb.sip_addr())
        .arg("-rtp_echo")
        .media_at(6000)
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    let alice = Sipp::new(&audio_caller, phone(&net, 6), lb.sip_addr())
        .arg("-cid_str")
        .arg(&call_id)
        .dialing("1002", "1001")
        .media_at(7000)
        .run();
    let echo = echo.wait();
    assert!(alice.succeeded(), "audio call: {alice}\n{}", lb.log());
    assert!(echo.succeeded(), "audio callee: {echo}");
    let mut cdr = serde_json::Value::Null;
    wait_until(Duration::from_secs(5), || {
        cdr = cdr_rows(&n1)
            .into_iter()
            .find(|c| c["src"] == "1001")
            .unwrap_or_default();
        !cdr.is_null()
    });
    assert_ne!(cdr["node"], registered_on.as_str(), "{cdr}");
    for side in ["caller", "callee"] {
        let packets = cdr["media"][side]["packets"].as_u64().unwrap_or(0);
        assert!(packets >= 40, "{side} RTP through the relay: {cdr}");
    }

    // 200 calls through the balancer: all connect, both nodes take a share, and
    // each reaches 1002 whichever node took its registration.
    let answering = callee(&lb, &net, 200);
    std::thread::sleep(Duration::from_millis(300));
    let run = calls(&lb, &net, 200, 50).run();
    let answered = answering.wait();
    assert!(run.succeeded(), "{run}\n{}", lb.log());
    assert!(answered.succeeded(), "{answered}");
    // CDRs are written in batches after the calls end.
    let mut spread = BTreeMap::new();
    wait_until(Duration::from_secs(5), || {
        spread = answered_by_node(&n1);
        spread.values().sum::<u64>() >= 201
    });
    eprintln!("answered per node: {spread:?}");
    assert_eq!(
        spread.values().sum::<u64>(),
        201,
        "the audio call and 200 more: {spread:?}"
    );
    for name in ["node-1", "node-2"] {
        assert!(spread.get(name).copied().unwrap_or(0) >= 50, "{spread:?}");
    }

    // node-1 dies under load. The balancer takes it out; the calls it had are
    // lost with it, every call after that goes to node-2.
    let answering = callee(&lb, &net, 150);
    std::thread::sleep(Duration::from_millis(300));
    let load = calls(&lb, &net, 150, 50).spawn();
    std::thread::sleep(Duration::from_secs(1));
    n1.kill();
    let killed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || lb.node_state("node-1") == "down"),
        "{}",
        lb.status()
    );
    let detection = killed.elapsed();
    eprintln!(
        "node-1 taken out {:.0} ms after it was killed",
        detection.as_secs_f64() * 1000.0
    );
    assert!(detection < Duration::from_millis(1500), "{detection:?}");
    let during = load.wait();
    drop(answering);
    eprintln!(
        "calls while node-1 died: {} ok, {} failed",
        successful(&during),
        failed(&during)
    );

    // A late request of a call node-1 had gets a 481 from the survivor at once.
    let late = UdpClient::bind(SocketAddr::new(net.ip(8).into(), 5070));
    let bye = format!(
        "BYE sip:1002@{n1} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKlate1;rport\r\n\
         Route: <sip:{lb};lr;sn=node-1;fl={late_ip}~5070>\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@pbx.test>;tag=gone1\r\nTo: <sip:1002@pbx.test>;tag=gone2\r\n\
         Call-ID: of-a-lost-call\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
        n1 = n1.sip_addr(),
        me = late.local(),
        lb = lb.sip_addr(),
        late_ip = net.ip(8),
    );
    let asked = Instant::now();
    let answer = late
        .request(lb.sip_addr(), &bye, Duration::from_secs(2))
        .expect("an answer to a lost call's BYE");
    assert_eq!(status_of(&answer), Some(481), "{answer}");
    eprintln!(
        "a lost call's BYE answered 481 in {:.0} ms",
        asked.elapsed().as_secs_f64() * 1000.0
    );

    // The calls node-1 had in progress are closed by the survivor as node_lost.
    let mut lost = 0;
    wait_until(Duration::from_secs(10), || {
        lost = cdr_rows(&n2)
            .iter()
            .filter(|c| c["end_reason"] == "node_lost" && c["node"] == "node-1")
            .count();
        lost > 0
    });
    eprintln!("node_lost CDRs written by the survivor: {lost}");
    assert!(lost > 0, "no node_lost CDR for node-1's calls");

    let answering = callee(&lb, &net, 100);
    std::thread::sleep(Duration::from_millis(300));
    let after = calls(&lb, &net, 100, 50).run();
    let answered = answering.wait();
    assert!(
        after.succeeded(),
        "calls after the loss: {after}\n{}",
        lb.log()
    );
    assert!(answered.succeeded(), "{answered}");
    // The phone re-registers (through whichever node now takes it): still one
    // binding, not one per node.
    let rereg = Sipp::new(scenario("register.xml"), phone(&net, 5), lb.sip_addr())
        .user("1002", "secret1002")
        .key("expires", "600")
        .run();
    assert!(rereg.succeeded(), "{rereg}");
    assert!(
        n2.contacts_of("1002").len() == 1,
        "the registration survived, once: {:?}",
        n2.registrations()
    );

    // node-1 comes back and gets calls again.
    n1.restart();
    let back = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || lb.node_state("node-1") == "up"),
        "{}",
        lb.status()
    );
    eprintln!(
        "node-1 back in {:.0} ms after its restart",
        back.elapsed().as_secs_f64() * 1000.0
    );

    // The balancer itself dies and restarts: registrations are in the database and
    // its routing is in the messages, so calls go on.
    lb.relaunch();
    assert!(
        wait_until(Duration::from_secs(5), || lb.node_state("node-1") == "up"
            && lb.node_state("node-2") == "up"),
        "{}",
        lb.status()
    );
    let answering = callee(&lb, &net, 40);
    std::thread::sleep(Duration::from_millis(300));
    let again = calls(&lb, &net, 40, 40).run();
    let answered = answering.wait();
    assert!(
        again.succeeded(),
        "after the balancer restart: {again}\n{}",
        lb.log()
    );
    assert!(answered.succeeded(), "{answered}");
    let table = String::from_utf8_lossy(
        &std::process::Command::new(softswitch_e2e::binary())
            .args(["balance", "--status", "--config"])
            .arg(&lb.config)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(table.contains("node-1") && table.contains("up"), "{table}");

    // A second balancer side by side (as behind DNS SRV), sharing by load: calls
    // through it reach 1002, whose Path still names the first one.
    let lb2 = Balancer::start_with(
        net.ip(11).into(),
        &[("node-1", n1.sip_addr()), ("node-2", n2.sip_addr())],
        "share = \"least_load\"",
    );
    assert!(
        wait_until(Duration::from_secs(5), || lb2.node_state("node-1") == "up"
            && lb2.node_state("node-2") == "up"),
        "{}",
        lb2.status()
    );
    let answering = callee(&lb, &net, 20);
    std::thread::sleep(Duration::from_millis(300));
    let via_second = calls(&lb2, &net, 20, 20).run();
    let answered = answering.wait();
    let second = lb2.status();
    eprintln!("second balancer (least_load): {}", second["nodes"]);
    assert_eq!(second["share"], "least_load", "{second}");
    for node in second["nodes"].as_array().unwrap() {
        assert!(node["calls"].is_u64(), "{node}");
    }
    assert!(
        via_second.succeeded(),
        "through the second balancer: {via_second}\n{}",
        lb2.log()
    );
    assert!(answered.succeeded(), "{answered}");

    // node-1 drains under load, as for an upgrade: its calls finish, new ones go
    // to node-2, and not one call fails.
    let answering = callee(&lb, &net, 100);
    std::thread::sleep(Duration::from_millis(300));
    let load = calls(&lb, &net, 100, 50).spawn();
    std::thread::sleep(Duration::from_millis(700));
    let out = n1.cli(&["drain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let during = load.wait();
    let answered = answering.wait();
    let status = lb.status();
    eprintln!(
        "drain under load: {} ok, {} failed, {} INVITEs refused by the draining node and sent to the other",
        successful(&during),
        failed(&during),
        status["stats"]["retried"]
    );
    assert!(
        during.succeeded(),
        "calls while node-1 drained: {during}\n{}",
        lb.log()
    );
    assert!(answered.succeeded(), "{answered}");
    assert_eq!(lb.node_state("node-1"), "draining", "{status}");
}

/// A phone on TCP behind the balancer: it registers on its connection, a call
/// through the other node reaches it on that same connection with the audio
/// relayed to it, and its own hang-up goes back along the route recorded for
/// each side (the phone's entry with `transport=tcp`).
#[test]
fn a_phone_on_tcp_registers_is_called_and_hangs_up_through_the_balancer() {
    use softswitch_e2e::TcpPhone;
    use softswitch_e2e::net::headers;
    let (_pg, net, n1, _n2, lb) = balanced_pair(27432, "balanced_tcp", "");

    let mut bob = TcpPhone::connect(lb.sip_addr(), "1002");
    let ok = bob.register("pbx.test", "secret1002");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}\n{}", lb.log());
    let binding = n1
        .registrations()
        .into_iter()
        .find(|b| b["aor"] == "1002@pbx.test")
        .expect("1002 in the shared location");
    let path = binding["path"].to_string();
    assert!(
        path.contains(&format!("~{}~t", bob.local().port())),
        "{binding}"
    );
    let registered_on = binding["node"].as_str().unwrap().to_owned();

    // Alice (UDP) calls through the node that did not take the registration.
    let call_id = (0..64)
        .map(|i| format!("tcp-{i}@balance.test"))
        .find(|c| lb.route_of(c) != registered_on)
        .expect("a Call-ID for the other node");
    // Alice echoes what she hears, so Bob's audio comes back to him through the
    // relay twice (the silent scenario waits for the callee's BYE).
    let alice = Sipp::new(
        scenario("call_caller_silent.xml"),
        phone(&net, 6),
        lb.sip_addr(),
    )
    .arg("-rtp_echo")
    .arg("-cid_str")
    .arg(&call_id)
    .dialing("1002", "1001")
    .media_at(7000)
    .spawn();
    let invite = bob.next_request("INVITE");
    let via = headers(&invite, "Via");
    assert!(
        via[0].starts_with(&format!("SIP/2.0/TCP {}:5060", net.ip(10))),
        "{invite}"
    );
    let rr = headers(&invite, "Record-Route").join(", ");
    assert!(
        rr.starts_with(&format!(
            "<sip:{}:5060;transport=tcp;lr;sn=node-",
            net.ip(10)
        )),
        "the phone's entry on top: {invite}"
    );

    // Bob answers with his media address; the relay sends him Alice's side.
    let media = std::net::UdpSocket::bind((net.ip(7), 0)).unwrap();
    media
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ringing = bob.reply(&invite, "180 Ringing", None);
    bob.send(&ringing);
    let sdp = softswitch_e2e::tcp_phone::sdp(media.local_addr().unwrap());
    let answer = bob.reply(&invite, "200 OK", Some(&sdp));
    bob.send(&answer);
    let ack = bob.next_request("ACK");
    assert!(headers(&ack, "Route").is_empty(), "{ack}");
    // Bob talks (the relay latches on his address) and hears himself back.
    let relay = answer_media(&invite);
    let mut heard = 0;
    let mut buf = [0u8; 2048];
    for seq in 0..50u16 {
        let mut rtp = vec![0x80, 0x00];
        rtp.extend_from_slice(&seq.to_be_bytes());
        rtp.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        rtp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        rtp.extend_from_slice(&[0xff; 160]);
        media.send_to(&rtp, relay).unwrap();
        media
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        while let Ok((n, from)) = media.recv_from(&mut buf) {
            if from == relay && n == 172 && buf[12..n].iter().all(|&b| b == 0xff) {
                heard += 1;
            }
        }
    }
    bob.bye(&invite);
    let done = bob.next_message();
    assert!(done.starts_with("SIP/2.0 200"), "the BYE answered: {done}");
    let alice = alice.wait();
    assert!(
        alice.succeeded(),
        "Alice got Bob's BYE: {alice}\n{}",
        lb.log()
    );

    assert!(heard >= 30, "Bob heard {heard} of his 50 packets back");
    let mut cdr = serde_json::Value::Null;
    wait_until(Duration::from_secs(5), || {
        cdr = cdr_rows(&n1)
            .into_iter()
            .find(|c| c["uniqueid"].as_str().is_some() && c["src"] == "1001")
            .unwrap_or_default();
        !cdr.is_null()
    });
    assert_eq!(cdr["disposition"], "ANSWERED", "{cdr}");
    assert_ne!(cdr["node"], registered_on.as_str(), "{cdr}");
    for side in ["caller", "callee"] {
        let packets = cdr["media"][side]["packets"].as_u64().unwrap_or(0);
        assert!(packets >= 30, "{side} RTP through the relay: {cdr}");
    }
}

/// The relay address in the SDP of the INVITE the node sent the phone.
fn answer_media(invite: &str) -> SocketAddr {
    let body = &invite[invite.find("\r\n\r\n").unwrap() + 4..];
    let ip = body
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line")
        .trim();
    let port = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .expect("m= line");
    format!("{ip}:{port}").parse().unwrap()
}

/// NAT keepalives behind the balancer: the node that took a phone's REGISTER
/// sends it an OPTIONS every interval through the balancer and the other node
/// sends none; when the phone re-registers through the other node, the
/// keepalives move there.
#[test]
fn exactly_one_node_keeps_a_phone_behind_the_balancer_alive() {
    use softswitch_e2e::net::headers;
    use softswitch_e2e::raw::Registration;
    let (_pg, net, n1, _n2, lb) = balanced_pair(26432, "keepalive", "keepalive_interval = 1\n");
    let node_ip = |name: &str| {
        if name == "node-1" {
            net.ip(1)
        } else {
            net.ip(2)
        }
    };
    let desk = UdpClient::bind(SocketAddr::new(net.ip(8).into(), 0));
    let contact = format!("<sip:1002@{}>", desk.local());

    // What reaches the phone in `window`: the keepalives, by the node they came from.
    let keepalives = |window: Duration| -> Vec<String> {
        let end = Instant::now() + window;
        let mut from_nodes = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Some(msg) = desk.recv(left) else { break };
            if !msg.starts_with("OPTIONS ") {
                continue;
            }
            assert!(
                headers(&msg, "Call-ID")[0].starts_with("softswitch-keepalive-"),
                "{msg}"
            );
            let via = headers(&msg, "Via");
            assert!(
                via[0].starts_with(&format!("SIP/2.0/UDP {}:5060", net.ip(10))),
                "through the balancer: {msg}"
            );
            from_nodes.push(via[1].to_owned());
        }
        from_nodes
    };

    for (round, target) in ["first", "second"].into_iter().enumerate() {
        // Steer the REGISTER: the first to whichever node, the second to the other.
        let held = n1
            .registrations()
            .into_iter()
            .find(|b| b["aor"] == "1002@pbx.test")
            .and_then(|b| b["node"].as_str().map(str::to_owned));
        let call_id = (0..64)
            .map(|i| format!("keepalive-{round}-{i}@balance.test"))
            .find(|c| held.as_deref().is_none_or(|h| lb.route_of(c) != h))
            .unwrap();
        let (_, ok) = Registration::new(&desk, lb.sip_addr(), "1002", "pbx.test")
            .with_call_id(&call_id)
            .register("secret1002", Some(&contact), Some(600));
        let ok = ok.unwrap_or_default();
        assert_eq!(status_of(&ok), Some(200), "{target} REGISTER: {ok}");
        let holder = n1
            .registrations()
            .into_iter()
            .find(|b| b["aor"] == "1002@pbx.test")
            .and_then(|b| b["node"].as_str().map(str::to_owned))
            .expect("the binding's node");
        assert_ne!(Some(&holder), held.as_ref(), "the {target} REGISTER moved");
        // A second for the nodes to see who holds it now.
        keepalives(Duration::from_millis(1500));
        let seen = keepalives(Duration::from_millis(4500));
        assert!(
            (3..=6).contains(&seen.len()),
            "one node's keepalives, every second ({target}): {seen:?}"
        );
        let ip = node_ip(&holder).to_string();
        assert!(
            seen.iter().all(|v| v.contains(&ip)),
            "all from {holder} ({target}): {seen:?}"
        );
    }
}
