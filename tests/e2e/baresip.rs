//! A real softphone: baresip registers as a user would set it up (the switch's IP as
//! its domain) and the binding shows up, with baresip's own User-Agent.

use std::net::IpAddr;
use std::time::Duration;

use softswitch_e2e::{Baresip, BaresipOptions, Switch, SwitchOptions, TestNet};

#[test]
fn baresip_registers_and_the_binding_shows_up() {
    let net = TestNet::new();
    let sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    let ip: IpAddr = net.ip(21).into();
    let phone = Baresip::start(BaresipOptions {
        ip,
        sip_port: 5080,
        rtp_ports: (21000, 21100),
        ctrl_port: 4444 + (std::process::id() % 1000) as u16,
        account: format!(
            "<sip:1001@{}:5060>;auth_pass=secret1001;regint=600",
            net.switch_ip()
        ),
        source: None,
    });
    assert!(
        phone.wait_registered(Duration::from_secs(15)),
        "baresip did not register.\nbaresip log:\n{}\nswitch log:\n{}",
        phone.log(),
        sw.log()
    );
    let regs = sw.registrations();
    assert_eq!(regs.len(), 1, "{regs:?}");
    assert_eq!(regs[0]["aor"], "1001@pbx.test");
    assert!(
        regs[0]["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("baresip"),
        "{regs:?}"
    );
    assert!(
        regs[0]["contact"]
            .as_str()
            .unwrap()
            .contains(&format!("@{ip}:5080")),
        "{regs:?}"
    );
}

#[test]
fn baresip_with_a_wrong_password_is_not_registered() {
    let net = TestNet::new();
    let sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    let phone = Baresip::start(BaresipOptions {
        ip: net.ip(22).into(),
        sip_port: 5080,
        rtp_ports: (21200, 21300),
        ctrl_port: 5444 + (std::process::id() % 1000) as u16,
        account: format!(
            "<sip:1002@{}:5060>;auth_pass=wrong;regint=600",
            net.switch_ip()
        ),
        source: None,
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(!phone.log().contains("200 OK"), "{}", phone.log());
    assert!(sw.registrations().is_empty());
}
