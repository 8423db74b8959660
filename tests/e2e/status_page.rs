//! The status page (`GET /` on the admin listener) in a real headless Chromium
//! with a phone-sized window, against a running switch with a phone registered
//! and a call in progress: it shows them, with the call's quality, refreshes by
//! itself, and fits the screen.

use std::net::SocketAddr;
use std::time::Duration;

use softswitch_e2e::browser::Browser;
use softswitch_e2e::http;
use softswitch_e2e::process::wait_until;
use softswitch_e2e::{Sipp, Switch, SwitchOptions, TestNet, scenario, scenario_with_audio};

fn phone(net: &TestNet, host: u8) -> SocketAddr {
    SocketAddr::new(net.ip(host).into(), 5070)
}

#[test]
fn the_status_page_shows_phones_calls_and_their_quality_live() {
    let net = TestNet::new();
    let sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    let page = format!("http://{}/", sw.admin_addr());
    let browser = Browser::start(390, 844);
    browser.goto(&page);
    // Wait for a section's text to satisfy `want` (the page refreshes every 2 s).
    let shows = |selector: &str, want: &dyn Fn(&str) -> bool| {
        let mut seen = String::new();
        let ok = wait_until(Duration::from_secs(10), || {
            seen = browser.text(selector);
            want(&seen)
        });
        assert!(ok, "{selector} shows:\n{seen}");
    };
    shows("#calls", &|t| t.contains("no calls"));
    shows("#nodes", &|t| t.contains("node1") && t.contains("up"));

    let reg = Sipp::new(scenario("register.xml"), phone(&net, 3), sw.sip_addr())
        .user("1002", "secret1002")
        .key("expires", "600")
        .run();
    assert!(reg.succeeded(), "{reg}");
    shows("#registrations", &|t| {
        t.contains("1002@pbx.test") && t.contains("(1)")
    });

    // A call that talks until it is hung up: Bob echoes Alice's audio.
    let bob = Sipp::new(scenario("call_callee.xml"), phone(&net, 3), sw.sip_addr())
        .arg("-rtp_echo")
        .media_at(6000)
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    let talking = scenario_with_audio("call_caller_talking.xml", sw.dir.path());
    let alice = Sipp::new(&talking, phone(&net, 2), sw.sip_addr())
        .dialing("1002", "1001")
        .media_at(7000)
        .spawn();
    shows("#calls", &|t| {
        t.contains("1001") && t.contains("1002") && t.contains("answered")
    });
    // Its quality once audio has flowed: a MOS for both sides and packet counts.
    let mos_cells = "return [...document.querySelectorAll('#calls td span.good, #calls td span.fair, #calls td span.poor')].map(e => e.textContent);";
    let ok = wait_until(Duration::from_secs(10), || {
        browser
            .eval(mos_cells)
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    assert!(
        ok,
        "MOS cells: {}\n{}",
        browser.eval(mos_cells),
        browser.text("#calls")
    );
    for mos in browser.eval(mos_cells).as_array().unwrap() {
        let mos: f64 = mos.as_str().unwrap().parse().unwrap();
        assert!(mos > 4.0, "a clean loopback call: MOS {mos}");
    }
    shows("#calls", &|t| {
        t.contains("PCMU, ") && t.contains("pkts") && t.contains("0.0% lost")
    });

    // Usable on a phone: nothing wider than the screen but the tables' own
    // scroll boxes.
    let overflow = browser.eval(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    );
    assert_eq!(overflow.as_i64(), Some(0), "the page scrolls sideways");

    // The operator hangs it up; the page notices by itself.
    let calls = http::get(sw.admin_addr(), "/api/calls").json();
    let uniqueid = calls[0]["uniqueid"].as_str().unwrap().to_owned();
    let out = sw.cli(&["hangup", &uniqueid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (alice, bob) = (alice.wait(), bob.wait());
    assert!(alice.succeeded(), "{alice}");
    assert!(bob.succeeded(), "{bob}");
    shows("#calls", &|t| t.contains("no calls"));
    // No error banner at any point now.
    assert_eq!(browser.text("#error"), "");
}
