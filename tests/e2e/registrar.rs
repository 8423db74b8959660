//! The registrar against the release binary with a SQLite file, driven by SIPp and raw
//! UDP: authentication, expiry, un-registration, restarts, transports, abuse guard.

#[path = "registrar_cases.rs"]
mod cases;

use std::net::SocketAddr;
use std::time::Duration;

use cases::Ctx;
use softswitch_e2e::net::{headers, status_of};
use softswitch_e2e::raw::Registration;
use softswitch_e2e::{Sipp, Switch, SwitchOptions, TestNet, UdpClient, scenario};

const SQLITE: Ctx = Ctx { pg: None };

#[test]
fn register_and_list() {
    cases::register_and_list(&SQLITE);
}

#[test]
fn wrong_password_is_refused() {
    cases::wrong_password_is_refused(&SQLITE);
}

#[test]
fn unknown_user_is_indistinguishable() {
    cases::unknown_user_is_indistinguishable(&SQLITE);
}

#[test]
fn expiry_limits() {
    cases::expiry_limits(&SQLITE);
}

#[test]
fn unregister_all() {
    cases::unregister_all(&SQLITE);
}

#[test]
fn refresh_and_query() {
    cases::refresh_and_query(&SQLITE);
}

#[test]
fn restart_keeps_bindings() {
    cases::restart_keeps_bindings(&SQLITE);
}

#[test]
fn options_and_tcp() {
    let net = TestNet::new();
    let sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    let local = SocketAddr::new(net.ip(2).into(), 5070);
    let run = Sipp::new(scenario("options.xml"), local, sw.sip_addr()).run();
    assert!(run.succeeded(), "{run}");
    let tcp = Sipp::new(
        scenario("register.xml"),
        SocketAddr::new(net.ip(3).into(), 5071),
        sw.sip_addr(),
    )
    .tcp()
    .user("1002", "secret1002")
    .key("expires", "600")
    .run();
    assert!(tcp.succeeded(), "{tcp}");
    let regs = sw.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(
        regs[0]["source"].as_str().unwrap().split(':').next(),
        Some("tcp")
    );
}

#[test]
fn ipv6_listen_and_register() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        panic!("IPv6 loopback is not available on this machine; the IPv6 test needs ::1");
    }
    let net = TestNet::new();
    let port = 15000 + (std::process::id() % 1000) as u16;
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.extra_listen = vec![format!("udp:[::1]:{port}")];
    let sw = Switch::start(opts);
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let run = Sipp::new(
        scenario("register.xml"),
        format!("[::1]:{}", port + 1).parse().unwrap(),
        v6,
    )
    .user("1003", "secret1003")
    .key("expires", "600")
    .run();
    assert!(run.succeeded(), "{run}");
    let regs = sw.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(
        regs[0]["aor"], "1003@pbx.test",
        "the IPv6 address reaches the same AOR"
    );
    assert!(
        regs[0]["source"].as_str().unwrap().contains("[::1]"),
        "{regs:?}"
    );
}

/// Repeated failures from one address throttle it, then ban it: its requests go
/// unanswered. Another address is unaffected, and a phone that answers its challenges
/// correctly is never banned however often it registers.
#[test]
fn failures_ban_a_source_but_never_a_working_phone() {
    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.security =
        "throttle_after = 3\nban_after = 5\nfailure_window = 60\nban_time = 600\n".into();
    let sw = Switch::start(opts);
    let attacker = UdpClient::bind(SocketAddr::new(net.ip(66).into(), 5070));
    let contact = format!("<sip:x@{}>", attacker.local());
    let mut reg = Registration::new(&attacker, sw.sip_addr(), "1001", "pbx.test");
    let wait = Duration::from_secs(2);
    let mut guesses = 0;
    let mut banned_after = None;
    for round in 0..10 {
        let Some(challenge) = attacker.request(
            sw.sip_addr(),
            &reg.request(Some(&contact), Some(600), ""),
            wait,
        ) else {
            banned_after = Some(guesses);
            break;
        };
        let www = headers(&challenge, "WWW-Authenticate")[0].to_owned();
        let guess = reg.request(
            Some(&contact),
            Some(600),
            &reg.answer(&www, &format!("guess{round}"), 1),
        );
        if attacker.request(sw.sip_addr(), &guess, wait).is_some() {
            guesses += 1;
        }
        if round == 3 {
            // Throttled by now: a second guess within the same second goes unanswered.
            let again = reg.request(Some(&contact), Some(600), &reg.answer(&www, "quick", 2));
            assert_eq!(
                attacker.request(sw.sip_addr(), &again, Duration::from_millis(500)),
                None,
                "throttle"
            );
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert_eq!(
        banned_after,
        Some(5),
        "banned after ban_after failed guesses\n{}",
        sw.log()
    );
    let probe = "OPTIONS sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKprobe{N}\r\nMax-Forwards: 70\r\n\
                 From: <sip:p@pbx.test>;tag=1\r\nTo: <sip:pbx.test>\r\nCall-ID: probe{N}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let banned = probe
        .replace("{A}", &attacker.local().to_string())
        .replace("{N}", "1");
    assert_eq!(
        attacker.request(sw.sip_addr(), &banned, wait),
        None,
        "banned source answered"
    );
    assert!(sw.log().contains("banned a source"), "{}", sw.log());

    let phone = UdpClient::bind(SocketAddr::new(net.ip(7).into(), 5070));
    let contact = format!("<sip:1002@{}>", phone.local());
    for _ in 0..15 {
        let mut reg = Registration::new(&phone, sw.sip_addr(), "1002", "pbx.test");
        let (_, ok) = reg.register("secret1002", Some(&contact), Some(600));
        assert_eq!(ok.as_deref().and_then(status_of), Some(200));
    }
    let ok = phone
        .request(
            sw.sip_addr(),
            &probe
                .replace("{A}", &phone.local().to_string())
                .replace("{N}", "2"),
            Duration::from_secs(2),
        )
        .expect("a working phone is never banned");
    assert_eq!(status_of(&ok), Some(200));
    assert_eq!(headers(&ok, "Allow").len(), 1);
}

#[test]
fn bad_configs_fail_with_a_position_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n[registrar]\nmin_expire = 5\n",
    )
    .unwrap();
    let out = std::process::Command::new(softswitch_e2e::binary())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().last().unwrap_or_default();
    assert!(
        line.contains(&format!(
            "{}:5:1: unknown field `min_expire`",
            path.display()
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
