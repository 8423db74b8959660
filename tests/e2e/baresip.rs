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
        record: false,
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
        record: false,
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(!phone.log().contains("200 OK"), "{}", phone.log());
    assert!(sw.registrations().is_empty());
}

/// Two baresip phones call each other through the dialplan; each sends its own tone
/// and records what it hears. Each must hear the other's tone and not its own, and the
/// switch's counters must show the audio crossed its relay.
#[test]
fn baresip_call_carries_audio_both_ways_through_the_relay() {
    use softswitch_e2e::audio::{read_wav, tone_fraction, write_tone_wav};
    use softswitch_e2e::process::wait_until;

    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan =
        "[internal]\nexten => _100X,1,Dial(SIP/${EXTEN},20)\n same => n,Hangup()\n".into();
    let sw = Switch::start(opts);
    let tones = tempfile::tempdir().unwrap();
    let (a_wav, b_wav) = (tones.path().join("a.wav"), tones.path().join("b.wav"));
    // Longer than the call: baresip hangs up when its file source ends.
    write_tone_wav(&a_wav, 440.0, 30.0);
    write_tone_wav(&b_wav, 1000.0, 30.0);
    let ctrl = 7444 + (std::process::id() % 1000) as u16;
    let phone = |host: u8, user: &str, rtp: (u16, u16), wav, extra: &str| {
        Baresip::start(BaresipOptions {
            ip: net.ip(host).into(),
            sip_port: 5080,
            rtp_ports: rtp,
            ctrl_port: ctrl,
            account: format!(
                "<sip:{user}@{}:5060>;auth_pass=secret{user};regint=600{extra}",
                net.switch_ip()
            ),
            source: Some(wav),
            record: true,
        })
    };
    let alice = phone(31, "1001", (22000, 22099), a_wav, "");
    let bob = phone(32, "1002", (22200, 22299), b_wav, ";answermode=auto");
    for p in [&alice, &bob] {
        assert!(
            p.wait_registered(Duration::from_secs(15)),
            "not registered:\n{}\nswitch:\n{}",
            p.log(),
            sw.log()
        );
    }
    let reply = alice.command("dial", &format!("sip:1002@{}:5060", net.switch_ip()));
    assert!(reply.is_some(), "baresip ctrl_tcp did not answer");
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("answered")),
        "call not answered\nalice:\n{}\nbob:\n{}\nswitch:\n{}",
        alice.log(),
        bob.log(),
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup", "");
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("call ended")),
        "{}",
        sw.log()
    );

    // Each phone closes its recording when it has seen the call end.
    wait_until(Duration::from_secs(5), || {
        bob.log().contains("session closed") && alice.log().contains("terminated")
    });
    std::thread::sleep(Duration::from_millis(300));
    let heard = |phone: &Baresip| {
        let files = phone.received_audio();
        assert_eq!(files.len(), 1, "one recording: {files:?}\n{}", phone.log());
        read_wav(&files[0]).expect("a 16-bit WAV recording")
    };
    let (rate, at_bob) = heard(&bob);
    assert!(
        at_bob.len() > rate as usize * 2,
        "{} samples\nbob:\n{}\nalice:\n{}\nswitch:\n{}",
        at_bob.len(),
        bob.log(),
        alice.log(),
        sw.log()
    );
    let own = tone_fraction(&at_bob, rate, 1000.0);
    let other = tone_fraction(&at_bob, rate, 440.0);
    assert!(
        other >= 0.6,
        "bob hears alice's 440 Hz in {other:.2} of frames"
    );
    assert!(own < 0.05, "bob hears his own tone in {own:.2} of frames");
    let (rate, at_alice) = heard(&alice);
    let other = tone_fraction(&at_alice, rate, 1000.0);
    let own = tone_fraction(&at_alice, rate, 440.0);
    assert!(
        other >= 0.6,
        "alice hears bob's 1000 Hz in {other:.2} of frames"
    );
    assert!(own < 0.05, "alice hears her own tone in {own:.2} of frames");

    // The relay carried it: both legs' packet counters in the CDR.
    let out = sw.cli(&["cdr", "--json"]);
    let cdr: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(cdr["disposition"], "ANSWERED", "{cdr}");
    for leg in ["caller", "callee"] {
        let pkts = cdr["media"][leg]["packets"].as_u64().unwrap_or(0);
        assert!(pkts >= 100, "{leg} RTP through the relay: {cdr}");
    }
}

#[test]
fn echo_returns_the_callers_own_audio() {
    use softswitch_e2e::audio::{read_wav, tone_fraction, write_tone_wav};
    use softswitch_e2e::process::wait_until;

    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan =
        "[internal]\nexten => 600,1,Answer()\n same => n,Echo()\n same => n,Hangup()\n".into();
    let sw = Switch::start(opts);
    let tones = tempfile::tempdir().unwrap();
    let wav = tones.path().join("a.wav");
    write_tone_wav(&wav, 440.0, 30.0);
    let alice = Baresip::start(BaresipOptions {
        ip: net.ip(41).into(),
        sip_port: 5080,
        rtp_ports: (22400, 22499),
        ctrl_port: 7444 + (std::process::id() % 1000) as u16 + 1,
        account: format!(
            "<sip:1001@{}:5060>;auth_pass=secret1001;regint=600",
            net.switch_ip()
        ),
        source: Some(wav),
        record: true,
    });
    assert!(
        alice.wait_registered(Duration::from_secs(15)),
        "not registered:\n{}\nswitch:\n{}",
        alice.log(),
        sw.log()
    );
    alice.command("dial", &format!("sip:600@{}:5060", net.switch_ip()));
    assert!(
        wait_until(Duration::from_secs(10), || alice
            .log()
            .contains("established")),
        "the echo did not answer\nalice:\n{}\nswitch:\n{}",
        alice.log(),
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup", "");
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("call ended")),
        "{}",
        sw.log()
    );
    wait_until(Duration::from_secs(5), || {
        alice.log().contains("terminated")
    });
    std::thread::sleep(Duration::from_millis(300));
    let files = alice.received_audio();
    assert_eq!(files.len(), 1, "one recording: {files:?}\n{}", alice.log());
    let (rate, heard) = read_wav(&files[0]).expect("a 16-bit WAV recording");
    assert!(heard.len() > rate as usize * 2, "{} samples", heard.len());
    let own = tone_fraction(&heard, rate, 440.0);
    assert!(
        own >= 0.6,
        "alice hears her own 440 Hz in {own:.2} of frames\n{}",
        alice.log()
    );
}

#[test]
fn a_caller_hears_the_playback_prompt() {
    use softswitch_e2e::audio::{read_wav, tone_fraction, write_tone_wav};
    use softswitch_e2e::process::wait_until;

    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan = "[internal]\nexten => 602,1,Playback(test-tone)\n same => n,Hangup()\n".into();
    let sw = Switch::start(opts);
    // The prompt: 3 s of 1 kHz in the switch's sounds directory (`[media] sounds`).
    let sounds = sw.dir.path().join("sounds").join("en");
    std::fs::create_dir_all(&sounds).unwrap();
    write_tone_wav(&sounds.join("test-tone.wav"), 1000.0, 3.0);
    let tones = tempfile::tempdir().unwrap();
    let wav = tones.path().join("a.wav");
    write_tone_wav(&wav, 440.0, 30.0);
    let alice = Baresip::start(BaresipOptions {
        ip: net.ip(42).into(),
        sip_port: 5080,
        rtp_ports: (22500, 22599),
        ctrl_port: 7444 + (std::process::id() % 1000) as u16 + 2,
        account: format!(
            "<sip:1001@{}:5060>;auth_pass=secret1001;regint=600",
            net.switch_ip()
        ),
        source: Some(wav),
        record: true,
    });
    assert!(
        alice.wait_registered(Duration::from_secs(15)),
        "not registered:\n{}\nswitch:\n{}",
        alice.log(),
        sw.log()
    );
    alice.command("dial", &format!("sip:602@{}:5060", net.switch_ip()));
    // The dialplan hangs up once the prompt has played.
    assert!(
        wait_until(Duration::from_secs(15), || sw.log().contains("call ended")),
        "the call did not end\nalice:\n{}\nswitch:\n{}",
        alice.log(),
        sw.log()
    );
    wait_until(Duration::from_secs(5), || {
        alice.log().contains("terminated")
    });
    std::thread::sleep(Duration::from_millis(300));
    let files = alice.received_audio();
    assert_eq!(files.len(), 1, "one recording: {files:?}\n{}", alice.log());
    let (rate, heard) = read_wav(&files[0]).expect("a 16-bit WAV recording");
    assert!(
        heard.len() > rate as usize * 2,
        "{} samples\n{}",
        heard.len(),
        alice.log()
    );
    let prompt = tone_fraction(&heard, rate, 1000.0);
    let own = tone_fraction(&heard, rate, 440.0);
    assert!(
        prompt >= 0.6,
        "alice hears the 1 kHz prompt in {prompt:.2} of frames\n{}",
        sw.log()
    );
    assert!(own < 0.05, "alice hears her own tone in {own:.2} of frames");
}

#[test]
fn a_digit_pressed_in_the_menu_takes_the_callers_branch() {
    use softswitch_e2e::audio::{read_wav, tone_fraction, write_tone_wav};
    use softswitch_e2e::process::wait_until;

    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan = "[internal]\n\
        exten => 803,1,Background(menu)\n same => n,WaitExten(10)\n\
        exten => 2,1,Playback(branch-two)\n same => n,Hangup()\n\
        exten => t,1,Hangup()\n"
        .into();
    let sw = Switch::start(opts);
    // The menu is 1 kHz; the branch the digit 2 leads to plays 1.5 kHz.
    let sounds = sw.dir.path().join("sounds").join("en");
    std::fs::create_dir_all(&sounds).unwrap();
    write_tone_wav(&sounds.join("menu.wav"), 1000.0, 10.0);
    write_tone_wav(&sounds.join("branch-two.wav"), 1500.0, 3.0);
    let tones = tempfile::tempdir().unwrap();
    let wav = tones.path().join("a.wav");
    write_tone_wav(&wav, 440.0, 40.0);
    let alice = Baresip::start(BaresipOptions {
        ip: net.ip(43).into(),
        sip_port: 5080,
        rtp_ports: (22600, 22699),
        ctrl_port: 7444 + (std::process::id() % 1000) as u16 + 3,
        account: format!(
            "<sip:1001@{}:5060>;auth_pass=secret1001;regint=600",
            net.switch_ip()
        ),
        source: Some(wav),
        record: true,
    });
    assert!(
        alice.wait_registered(Duration::from_secs(15)),
        "not registered:\n{}\nswitch:\n{}",
        alice.log(),
        sw.log()
    );
    alice.command("dial", &format!("sip:803@{}:5060", net.switch_ip()));
    assert!(
        wait_until(Duration::from_secs(10), || alice
            .log()
            .contains("established")),
        "the menu did not answer\nalice:\n{}\nswitch:\n{}",
        alice.log(),
        sw.log()
    );
    std::thread::sleep(Duration::from_millis(1500));
    alice.command("sndcode", "2");
    // Branch two plays its 3 s and hangs up, well before the 10 s menu would end.
    assert!(
        wait_until(Duration::from_secs(8), || sw.log().contains("call ended")),
        "the digit did not end the menu\nalice:\n{}\nswitch:\n{}",
        alice.log(),
        sw.log()
    );
    wait_until(Duration::from_secs(5), || {
        alice.log().contains("terminated")
    });
    std::thread::sleep(Duration::from_millis(300));
    let files = alice.received_audio();
    assert_eq!(files.len(), 1, "one recording: {files:?}\n{}", alice.log());
    let (rate, heard) = read_wav(&files[0]).expect("a 16-bit WAV recording");
    let menu = tone_fraction(&heard, rate, 1000.0);
    let branch = tone_fraction(&heard, rate, 1500.0);
    assert!(menu > 0.1, "the menu was heard in {menu:.2} of frames");
    assert!(
        branch > 0.4,
        "branch two was heard in {branch:.2} of frames (menu {menu:.2})\n{}",
        alice.log()
    );
}

#[test]
fn dial_option_r_plays_the_ringback_tone_while_the_callee_rings() {
    use softswitch_e2e::audio::{read_wav, tone_fraction, write_tone_wav};
    use softswitch_e2e::process::wait_until;

    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan = "[internal]\nexten => 1002,1,Dial(SIP/1002,20,r)\n same => n,Hangup()\n".into();
    // The ITU plan's ringback is one 425 Hz tone: 1 s on, 4 s off.
    opts.extra = "[media]\ntones = \"itu\"\n".into();
    let sw = Switch::start(opts);
    let tones = tempfile::tempdir().unwrap();
    let (a_wav, b_wav) = (tones.path().join("a.wav"), tones.path().join("b.wav"));
    write_tone_wav(&a_wav, 1000.0, 30.0);
    write_tone_wav(&b_wav, 1000.0, 30.0);
    let ctrl = 7444 + (std::process::id() % 1000) as u16 + 4;
    let phone = |host: u8, user: &str, rtp: (u16, u16), wav, record: bool| {
        Baresip::start(BaresipOptions {
            ip: net.ip(host).into(),
            sip_port: 5080,
            rtp_ports: rtp,
            ctrl_port: ctrl,
            account: format!(
                "<sip:{user}@{}:5060>;auth_pass=secret{user};regint=600",
                net.switch_ip()
            ),
            source: Some(wav),
            record,
        })
    };
    let alice = phone(44, "1001", (22700, 22799), a_wav, true);
    // Bob's phone rings and nobody picks up.
    let bob = phone(45, "1002", (22800, 22899), b_wav, false);
    for p in [&alice, &bob] {
        assert!(
            p.wait_registered(Duration::from_secs(15)),
            "not registered:\n{}\nswitch:\n{}",
            p.log(),
            sw.log()
        );
    }
    alice.command("dial", &format!("sip:1002@{}:5060", net.switch_ip()));
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("ringing")),
        "bob's phone did not ring\n{}",
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup", "");
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("call ended")),
        "{}",
        sw.log()
    );
    wait_until(Duration::from_secs(5), || {
        alice.log().contains("terminated")
    });
    std::thread::sleep(Duration::from_millis(300));
    let files = alice.received_audio();
    assert_eq!(files.len(), 1, "one recording: {files:?}\n{}", alice.log());
    let (rate, heard) = read_wav(&files[0]).expect("a 16-bit WAV recording");
    let ringback = tone_fraction(&heard, rate, 425.0);
    assert!(
        ringback > 0.15,
        "alice hears the 425 Hz ringback in {ringback:.2} of frames\n{}",
        alice.log()
    );
    assert!(tone_fraction(&heard, rate, 1000.0) < 0.05, "no other audio");
}
