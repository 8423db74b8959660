//! Operations (issue 8): what the people running a switch read from it — the
//! Prometheus metrics, the admin API — against a running switch with real
//! phones registered and calling.

use std::net::SocketAddr;
use std::time::Duration;

use softswitch_e2e::http;
use softswitch_e2e::process::wait_until;
use softswitch_e2e::{Sipp, Switch, SwitchOptions, TestNet, scenario, scenario_with_audio};

fn phone(net: &TestNet, host: u8) -> SocketAddr {
    SocketAddr::new(net.ip(host).into(), 5070)
}

/// The value of the sample `name` (with its labels, as written) in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// 1002 registers from host 3.
fn register_bob(sw: &Switch, net: &TestNet) {
    let reg = Sipp::new(scenario("register.xml"), phone(net, 3), sw.sip_addr())
        .user("1002", "secret1002")
        .key("expires", "600")
        .run();
    assert!(reg.succeeded(), "{reg}");
}

/// 1002's phone answers one call, echoing the audio it gets, until a BYE.
fn bob_answers(sw: &Switch, net: &TestNet) -> softswitch_e2e::RunningSipp {
    let bob = Sipp::new(scenario("call_callee.xml"), phone(net, 3), sw.sip_addr())
        .arg("-rtp_echo")
        .media_at(6000)
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    bob
}

fn scrape(sw: &Switch) -> String {
    let r = http::get(sw.admin_addr(), "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        r.headers
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    r.body
}

/// A registration, a refused login, an answered call with audio and a dialplan
/// reload each move the counters a Prometheus user would graph.
#[test]
fn metrics_count_what_phones_and_calls_do() {
    let net = TestNet::new();
    let sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    let before = scrape(&sw);
    assert_eq!(
        sample(&before, "softswitch_registrations"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(sample(&before, "softswitch_calls_active"), Some(0.0));

    register_bob(&sw, &net);
    let refused = Sipp::new(
        scenario("register_rejected.xml"),
        phone(&net, 4),
        sw.sip_addr(),
    )
    .user("1003", "not-the-password")
    .key("expires", "600")
    .run();
    assert!(refused.succeeded(), "{refused}");

    let bob = bob_answers(&sw, &net);
    let audio = scenario_with_audio("call_caller.xml", sw.dir.path());
    let alice = Sipp::new(&audio, phone(&net, 2), sw.sip_addr())
        .dialing("1002", "1001")
        .media_at(7000)
        .run();
    let bob = bob.wait();
    assert!(alice.succeeded(), "{alice}\n{}", sw.log());
    assert!(bob.succeeded(), "{bob}");

    let out = sw.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut text = String::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            text = scrape(&sw);
            sample(&text, r#"softswitch_calls_total{disposition="ANSWERED"}"#) == Some(1.0)
                && sample(&text, r#"softswitch_dialplan_reloads_total{result="ok"}"#) == Some(1.0)
        }),
        "{text}"
    );
    let at_least = |name: &str, min: f64| {
        let v = sample(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
        assert!(v >= min, "{name} = {v}, want at least {min}\n{text}");
    };
    assert_eq!(
        sample(&text, "softswitch_registrations"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "softswitch_calls_active"),
        Some(0.0),
        "{text}"
    );
    // The caller's INVITE twice (407, then with credentials), its ACKs and BYE;
    // the INVITE to Bob and his answers.
    at_least(
        r#"softswitch_sip_requests_total{direction="received",method="INVITE"}"#,
        2.0,
    );
    at_least(
        r#"softswitch_sip_requests_total{direction="received",method="BYE"}"#,
        1.0,
    );
    at_least(
        r#"softswitch_sip_requests_total{direction="received",method="REGISTER"}"#,
        4.0,
    );
    at_least(
        r#"softswitch_sip_requests_total{direction="sent",method="INVITE"}"#,
        1.0,
    );
    at_least(
        r#"softswitch_sip_responses_total{direction="sent",code="407"}"#,
        1.0,
    );
    at_least(
        r#"softswitch_sip_responses_total{direction="sent",code="200"}"#,
        3.0,
    );
    at_least(
        r#"softswitch_sip_responses_total{direction="received",code="200"}"#,
        1.0,
    );
    at_least("softswitch_auth_failures_total", 1.0);
    at_least("softswitch_call_setup_seconds_count", 1.0);
    at_least("softswitch_post_dial_delay_seconds_count", 1.0);
    // About 1.5 s of audio each way, relayed.
    at_least(r#"softswitch_rtp_packets_total{leg="caller"}"#, 40.0);
    at_least(r#"softswitch_rtp_packets_total{leg="callee"}"#, 40.0);
    at_least(r#"softswitch_rtp_bytes_total{leg="caller"}"#, 40.0 * 172.0);
    at_least("softswitch_call_mos_count", 2.0);
    assert_eq!(
        sample(&text, r#"softswitch_rtp_lost_packets_total{leg="caller"}"#),
        Some(0.0),
        "{text}"
    );
    // Every sample has its HELP and TYPE: a scraper takes the text as it is.
    for family in [
        "softswitch_sip_requests",
        "softswitch_calls",
        "softswitch_call_setup_seconds",
        "softswitch_registrations",
        "softswitch_cluster_nodes",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family}\n{text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}\n{text}"
        );
    }
}

/// The Grafana dashboard in `etc/examples/` graphs only metrics a running switch
/// exposes (with Prometheus's suffixes for counters and histograms).
#[test]
fn the_grafana_dashboard_uses_only_exposed_metrics() {
    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    // A dial peer, so peer health is there to graph.
    opts.extra = "[[dial_peer]]\ntag = 1\ndestination_pattern = \"9T\"\n\
                  session_target = \"ipv4:127.0.0.2\"\n"
        .into();
    let sw = Switch::start(opts);
    let text = scrape(&sw);
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../etc/examples/grafana-softswitch.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut used = 0;
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("softswitch_"))
            {
                let family = ["_bucket", "_count", "_sum", "_total"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                assert!(
                    families.contains(&family),
                    "{} uses {name}, which the switch does not expose",
                    panel["title"]
                );
                used += 1;
            }
        }
    }
    assert!(used >= 16, "{used}");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The admin API and the commands on it, against a switch with a phone
/// registered and a call up: read registrations, calls, records, nodes and the
/// dialplan; hang up a call; lift a ban; reload, refused with its position when
/// the plan is broken.
#[test]
fn the_admin_api_reads_and_acts_on_a_running_switch() {
    use softswitch_e2e::UdpClient;
    use softswitch_e2e::raw::Registration;
    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.security =
        "throttle_after = 10\nban_after = 2\nfailure_window = 60\nban_time = 600\n".into();
    let sw = Switch::start(opts);
    let api = sw.admin_addr();

    register_bob(&sw, &net);
    let regs = http::get(api, "/api/registrations").json();
    let bob = &regs.as_array().expect("a list")[0];
    assert_eq!(bob["aor"], "1002@pbx.test", "{regs}");
    assert!(bob["expires_in"].as_i64().unwrap() > 500, "{regs}");
    // The command reads the same through the API.
    let out = sw.cli(&["registrations", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"aor\":\"1002@pbx.test\""));

    // A call that stays up until someone hangs it up.
    let callee = bob_answers(&sw, &net);
    let caller = Sipp::new(
        scenario("call_caller_silent.xml"),
        phone(&net, 2),
        sw.sip_addr(),
    )
    .dialing("1002", "1001")
    .media_at(7000)
    .spawn();
    let mut calls = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(5), || {
            calls = http::get(api, "/api/calls").json();
            calls[0]["state"] == "answered"
        }),
        "{calls}"
    );
    let uniqueid = calls[0]["uniqueid"].as_str().unwrap().to_owned();
    assert_eq!(calls[0]["legs"][0]["state"], "answered", "{calls}");
    let out = sw.cli(&["hangup", &uniqueid]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("{uniqueid}: hung up"));
    let (caller, callee) = (caller.wait(), callee.wait());
    assert!(caller.succeeded(), "the caller got a BYE: {caller}");
    assert!(callee.succeeded(), "the callee got a BYE: {callee}");
    let mut cdr = serde_json::Value::Null;
    assert!(wait_until(Duration::from_secs(5), || {
        cdr = http::get(api, "/api/cdr?last=1").json();
        cdr[0]["uniqueid"] == uniqueid.as_str()
    }));
    assert_eq!(cdr[0]["end_reason"], "operator", "{cdr}");
    assert_eq!(cdr[0]["disposition"], "ANSWERED", "{cdr}");
    assert!(cdr[0]["media"].is_object(), "{cdr}");
    // An unknown call: 404, and the command says so on one line and fails.
    let gone = http::post(api, "/api/calls/no-such-call/hangup");
    assert_eq!(gone.status, 404, "{}", gone.body);
    let out = sw.cli(&["hangup", "no-such-call"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim().lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("no call in progress has UNIQUEID no-such-call"));

    let nodes = http::get(api, "/api/cluster").json();
    assert_eq!(nodes[0]["state"], "up", "{nodes}");
    let plan = http::get(api, "/api/dialplan").json();
    assert_eq!(plan[0]["name"], "internal", "{plan}");
    assert_eq!(plan[0]["extensions"][0], "_1XXX", "{plan}");

    // Two wrong passwords ban the source; the operator lifts the ban and the
    // phone there registers with the right one.
    let desk = UdpClient::bind(SocketAddr::new(net.ip(66).into(), 5070));
    let contact = format!("<sip:1003@{}>", desk.local());
    for _ in 0..2 {
        let (_, answer) = Registration::new(&desk, sw.sip_addr(), "1003", "pbx.test").register(
            "wrong",
            Some(&contact),
            Some(600),
        );
        assert!(answer.is_some_and(|a| a.starts_with("SIP/2.0 401")));
    }
    let bans = http::get(api, "/api/bans").json();
    assert_eq!(bans[0]["address"], net.ip(66).to_string(), "{bans}");
    let out = sw.cli(&["bans"]);
    assert!(
        text(&out.stdout).contains(&net.ip(66).to_string()),
        "{}",
        text(&out.stdout)
    );
    let out = sw.cli(&["bans", "--lift", &net.ip(66).to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(http::get(api, "/api/bans").json(), serde_json::json!([]));
    let (_, answer) = Registration::new(&desk, sw.sip_addr(), "1003", "pbx.test").register(
        "secret1003",
        Some(&contact),
        Some(600),
    );
    assert!(answer.is_some_and(|a| a.starts_with("SIP/2.0 200")));

    // Reload: a broken plan is refused with its position, the running one stays.
    std::fs::write(
        sw.dialplan_path(),
        "[internal]\nexten => _1XXX,1,Dial(SIP/${EXTEN},20)\n#include extensions.conf\n",
    )
    .unwrap();
    let refused = http::post(api, "/api/reload");
    assert_eq!(refused.status, 422, "{}", refused.body);
    let why = refused.json()["error"].as_str().unwrap().to_owned();
    assert!(why.contains("extensions.conf:3:"), "{why}");
    std::fs::write(
        sw.dialplan_path(),
        "[internal]\nexten => _1XXX,1,Dial(SIP/${EXTEN},20)\n[other]\nexten => 7,1,Hangup()\n",
    )
    .unwrap();
    let ok = http::post(api, "/api/reload").json();
    assert_eq!(ok["contexts"], 2, "{ok}");
    let plan = http::get(api, "/api/dialplan").json();
    assert_eq!(plan[1]["name"], "other", "{plan}");
}

/// A tiny HTTP receiver: each POST body arrives on the channel. The first
/// `refuse` requests are answered 503, the rest 200.
fn receiver(
    ip: std::net::Ipv4Addr,
    refuse: usize,
) -> (
    SocketAddr,
    std::sync::mpsc::Receiver<(u16, serde_json::Value)>,
) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let status = if n < refuse { 503 } else { 200 };
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let json = serde_json::from_slice(&body).unwrap_or_default();
            if tx.send((status, json)).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// A dial peer killed: the operator's webhook is told `peer_down` (after one
/// refused delivery, retried), and the event is among the recent ones in the API.
#[test]
fn a_webhook_hears_a_peer_go_down_and_deliveries_are_retried() {
    let net = TestNet::new();
    let (hook, deliveries) = receiver(net.ip(9), 1);
    let mut far = Switch::start(SwitchOptions::new(net.ip(3)));
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.extra = format!(
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"2...\"\nsession_target = \"ipv4:{}\"\n\n\
         [[webhook]]\nurl = \"http://{hook}/alerts\"\nevents = [\"peer_down\"]\n",
        net.ip(3)
    );
    let sw = Switch::start(opts);
    let api = sw.admin_addr();
    let peer_state = || http::get(api, "/api/peers").json()[0]["state"].clone();
    assert!(
        wait_until(Duration::from_secs(5), || peer_state() == "up"),
        "{}",
        peer_state()
    );
    far.kill();
    let killed = std::time::Instant::now();
    let (first, event) = deliveries
        .recv_timeout(Duration::from_secs(10))
        .expect("a delivery");
    assert_eq!(first, 503, "the first is refused");
    assert_eq!(event["kind"], "peer_down", "{event}");
    let (second, again) = deliveries
        .recv_timeout(Duration::from_secs(5))
        .expect("a retry");
    eprintln!(
        "webhook: peer_down delivered {:.0} ms after the kill",
        killed.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(second, 200);
    assert_eq!(again, event, "the same event again");
    assert_eq!(event["detail"]["tag"], 1, "{event}");
    assert_eq!(event["node"], "node1", "{event}");
    assert!(event["at"].as_i64().unwrap() > 1_700_000_000_000, "{event}");
    // Only the events it asked for: nothing else arrives.
    assert!(deliveries.recv_timeout(Duration::from_millis(500)).is_err());
    let recent = http::get(api, "/api/events").json();
    assert!(
        recent
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "peer_down" && e["detail"]["tag"] == 1),
        "{recent}"
    );
}

/// Whether `value` fits `schema` (the parts of JSON Schema the description
/// uses: `$ref`, `type`, `enum`, `required`, `properties`, `items`).
fn fits(
    value: &serde_json::Value,
    schema: &serde_json::Value,
    doc: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return fits(value, &doc["components"]["schemas"][name], doc, at);
    }
    let type_name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let type_ok = allowed.is_empty()
        || allowed.contains(&type_name)
        || (type_name == "integer" && allowed.contains(&"number"));
    if !type_ok {
        return Err(format!(
            "{at}: {type_name}, documented {allowed:?}: {value}"
        ));
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {options:?}"));
    }
    if let Value::Object(map) = value {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !map.contains_key(name) {
                return Err(format!("{at}: `{name}` is missing: {value}"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (name, sub) in props {
                if let Some(v) = map.get(name) {
                    fits(v, sub, doc, &format!("{at}.{name}"))?;
                }
            }
        }
    }
    if let Value::Array(items) = value {
        for (i, item) in items.iter().enumerate() {
            fits(item, &schema["items"], doc, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// `docs/openapi.json` describes the server: every documented operation, called
/// on a switch with a phone registered, a call recorded and a dial peer, answers
/// with a documented status and a body that fits the documented schema.
#[test]
fn the_openapi_description_matches_the_server() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.extra = "[[dial_peer]]\ntag = 1\ndestination_pattern = \"9T\"\n\
                  session_target = \"ipv4:127.0.0.2\"\n"
        .into();
    let sw = Switch::start(opts);
    register_bob(&sw, &net);
    let bob = bob_answers(&sw, &net);
    let audio = scenario_with_audio("call_caller.xml", sw.dir.path());
    let alice = Sipp::new(&audio, phone(&net, 2), sw.sip_addr())
        .dialing("1002", "1001")
        .media_at(7000)
        .run();
    assert!(alice.succeeded() && bob.wait().succeeded(), "{alice}");
    assert!(wait_until(Duration::from_secs(5), || {
        http::get(sw.admin_addr(), "/api/cdr").json()[0]["uniqueid"].is_string()
    }));

    // The values operations with parameters get: the peer that exists, and a call
    // and a ban that do not.
    let fill = |path: &str| {
        path.replace("{uniqueid}", "no-such-call")
            .replace("{tag}", "1")
            .replace("{action}", "enable")
            .replace("{address}", "192.0.2.1")
    };
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let url = fill(path);
            let r = http::request(sw.admin_addr(), &method.to_uppercase(), &url, None);
            let documented = &op["responses"][r.status.to_string()];
            assert!(
                documented.is_object(),
                "{method} {url}: {} is not documented\n{}",
                r.status,
                r.body
            );
            if let Some(schema) = documented["content"].get("application/json") {
                fits(
                    &r.json(),
                    &schema["schema"],
                    &doc,
                    &format!("{method} {url}"),
                )
                .unwrap_or_else(|e| panic!("{e}"));
            }
            operations += 1;
        }
    }
    assert!(operations >= 16, "{operations}");
    // The switch takes calls again after the drain the walk made, then undid.
    assert_eq!(
        http::get(sw.admin_addr(), "/api/health").json()["draining"],
        false
    );
}

/// `softswitch originate`: the node's own test call runs the dialplan, rings the
/// registered phone, which answers and echoes the tone back through the relay;
/// the call hangs up after the time asked and leaves a CDR. A context that does
/// not exist is refused at once.
#[test]
fn a_test_call_originated_by_the_node_reaches_a_phone_with_audio() {
    let net = TestNet::new();
    let sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    register_bob(&sw, &net);
    let bob = bob_answers(&sw, &net);
    let out = sw.cli(&[
        "originate",
        "1002",
        "--context",
        "internal",
        "--seconds",
        "2",
        "--callerid",
        "\"Ops\" <900>",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("test call to 1002@internal placed"));
    let bob = bob.wait();
    assert!(
        bob.succeeded(),
        "the phone answered and got the BYE: {bob}\n{}",
        sw.log()
    );
    let mut cdr = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(5), || {
            cdr = http::get(sw.admin_addr(), "/api/cdr?last=1").json();
            cdr[0]["src"] == "900"
        }),
        "{cdr}\n{}",
        sw.log()
    );
    let cdr = &cdr[0];
    assert_eq!(cdr["disposition"], "ANSWERED", "{cdr}");
    assert_eq!(cdr["dst"], "1002", "{cdr}");
    assert!(cdr["billsec"].as_i64().unwrap() >= 1, "{cdr}");
    // The tone went out to the phone and came back from it, relayed both ways.
    for side in ["caller", "callee"] {
        let packets = cdr["media"][side]["packets"].as_u64().unwrap_or(0);
        assert!(packets >= 50, "{side}: {packets} packets\n{cdr}");
    }
    assert!(sw.log().contains("test call ended"), "{}", sw.log());

    let refused = http::request_json(
        sw.admin_addr(),
        "POST",
        "/api/originate",
        &serde_json::json!({ "exten": "1002", "context": "nowhere" }),
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("no context `nowhere`"),
        "{}",
        refused.body
    );
    let out = sw.cli(&["originate", "1002", "--context", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim().lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}
