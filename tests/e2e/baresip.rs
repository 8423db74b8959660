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
        let mos = cdr["media"][leg]["mos"].as_f64().unwrap_or(0.0);
        assert!(
            (4.0..=4.5).contains(&mos),
            "{leg} MOS of a clean loopback call: {cdr}"
        );
    }
    // The table a person reads shows the post-dial delay and both MOS values.
    let table = String::from_utf8_lossy(&sw.cli(&["cdr"]).stdout).into_owned();
    assert!(
        table.contains("PDD") && table.contains("MOS A/B"),
        "{table}"
    );
    let row = table.lines().last().unwrap();
    assert!(
        row.contains("ms") && row.matches("4.").count() >= 2,
        "{table}"
    );
}

/// A registered baresip phone that sends a `tone_hz` tone from a file and, when
/// `record`, records what it hears. `ctrl` tells apart the ctrl_tcp ports of tests
/// running at once.
struct TonePhone {
    phone: Baresip,
    _tones: tempfile::TempDir,
}

fn tone_phone(
    net: &TestNet,
    sw: &Switch,
    host: u8,
    user: &str,
    (rtp, ctrl): ((u16, u16), u16),
    tone_hz: f64,
    record: bool,
) -> TonePhone {
    let tones = tempfile::tempdir().unwrap();
    let wav = tones.path().join("tone.wav");
    // Longer than any call here: baresip hangs up when its file source ends.
    softswitch_e2e::audio::write_tone_wav(&wav, tone_hz, 40.0);
    let phone = Baresip::start(BaresipOptions {
        ip: net.ip(host).into(),
        sip_port: 5080,
        rtp_ports: rtp,
        ctrl_port: 7444 + (std::process::id() % 1000) as u16 + ctrl,
        account: format!(
            "<sip:{user}@{}:5060>;auth_pass=secret{user};regint=600",
            net.switch_ip()
        ),
        source: Some(wav),
        record,
    });
    assert!(
        phone.wait_registered(Duration::from_secs(15)),
        "not registered:\n{}\nswitch:\n{}",
        phone.log(),
        sw.log()
    );
    TonePhone {
        phone,
        _tones: tones,
    }
}

/// A switch with `plan` and `extra` config whose sounds directory holds the given
/// tones as `name.wav` (`[media] sounds`, language `en`).
fn switch_with_sounds(
    net: &TestNet,
    plan: &str,
    extra: &str,
    sounds: &[(&str, f64, f64)],
) -> Switch {
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan = plan.into();
    opts.extra = extra.into();
    let sw = Switch::start(opts);
    let dir = sw.dir.path().join("sounds").join("en");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, hz, seconds) in sounds {
        softswitch_e2e::audio::write_tone_wav(&dir.join(format!("{name}.wav")), *hz, *seconds);
    }
    sw
}

/// Once the switch has ended the call and the phone has closed its recording: what
/// the phone heard, as (rate, samples).
fn heard_after_the_call(sw: &Switch, phone: &Baresip) -> (u32, Vec<i16>) {
    use softswitch_e2e::process::wait_until;
    assert!(
        wait_until(Duration::from_secs(15), || sw.log().contains("call ended")),
        "the call did not end\nphone:\n{}\nswitch:\n{}",
        phone.log(),
        sw.log()
    );
    wait_until(Duration::from_secs(5), || {
        phone.log().contains("terminated")
    });
    std::thread::sleep(Duration::from_millis(300));
    let files = phone.received_audio();
    assert_eq!(files.len(), 1, "one recording: {files:?}\n{}", phone.log());
    let (rate, heard) = softswitch_e2e::audio::read_wav(&files[0]).expect("a 16-bit WAV recording");
    assert!(
        heard.len() > rate as usize,
        "{} samples\n{}",
        heard.len(),
        phone.log()
    );
    (rate, heard)
}

fn established(sw: &Switch, phone: &Baresip) {
    assert!(
        softswitch_e2e::process::wait_until(Duration::from_secs(10), || phone
            .log()
            .contains("established")),
        "the call was not answered\nphone:\n{}\nswitch:\n{}",
        phone.log(),
        sw.log()
    );
}

#[test]
fn echo_returns_the_callers_own_audio() {
    use softswitch_e2e::audio::tone_fraction;
    let net = TestNet::new();
    let plan = "[internal]\nexten => 600,1,Answer()\n same => n,Echo()\n same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "", &[]);
    let alice = tone_phone(&net, &sw, 41, "1001", ((22400, 22499), 1), 440.0, true);
    alice
        .phone
        .command("dial", &format!("sip:600@{}:5060", net.switch_ip()));
    established(&sw, &alice.phone);
    std::thread::sleep(Duration::from_secs(3));
    alice.phone.command("hangup", "");
    let (rate, heard) = heard_after_the_call(&sw, &alice.phone);
    assert!(heard.len() > rate as usize * 2, "{} samples", heard.len());
    let own = tone_fraction(&heard, rate, 440.0);
    assert!(
        own >= 0.6,
        "alice hears her own 440 Hz in {own:.2} of frames"
    );
}

#[test]
fn a_caller_hears_the_playback_prompt() {
    use softswitch_e2e::audio::tone_fraction;
    let net = TestNet::new();
    // The prompt: 3 s of 1 kHz; the dialplan hangs up once it has played.
    let plan = "[internal]\nexten => 602,1,Playback(test-tone)\n same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "", &[("test-tone", 1000.0, 3.0)]);
    let alice = tone_phone(&net, &sw, 42, "1001", ((22500, 22599), 2), 440.0, true);
    alice
        .phone
        .command("dial", &format!("sip:602@{}:5060", net.switch_ip()));
    let (rate, heard) = heard_after_the_call(&sw, &alice.phone);
    assert!(heard.len() > rate as usize * 2, "{} samples", heard.len());
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
    use softswitch_e2e::audio::tone_fraction;
    use softswitch_e2e::process::wait_until;
    let net = TestNet::new();
    // The menu is 1 kHz for 10 s; the branch the digit 2 leads to plays 1.5 kHz.
    let plan = "[internal]\n\
        exten => 803,1,Background(menu)\n same => n,WaitExten(10)\n\
        exten => 2,1,Playback(branch-two)\n same => n,Hangup()\n\
        exten => t,1,Hangup()\n";
    let sounds = [("menu", 1000.0, 10.0), ("branch-two", 1500.0, 3.0)];
    let sw = switch_with_sounds(&net, plan, "", &sounds);
    let alice = tone_phone(&net, &sw, 43, "1001", ((22600, 22699), 3), 440.0, true);
    alice
        .phone
        .command("dial", &format!("sip:803@{}:5060", net.switch_ip()));
    established(&sw, &alice.phone);
    std::thread::sleep(Duration::from_millis(1500));
    alice.phone.command("sndcode", "2");
    // Branch two plays its 3 s and hangs up, well before the 10 s menu would end.
    assert!(
        wait_until(Duration::from_secs(8), || sw.log().contains("call ended")),
        "the digit did not end the menu\nalice:\n{}\nswitch:\n{}",
        alice.phone.log(),
        sw.log()
    );
    let (rate, heard) = heard_after_the_call(&sw, &alice.phone);
    let menu = tone_fraction(&heard, rate, 1000.0);
    let branch = tone_fraction(&heard, rate, 1500.0);
    assert!(menu > 0.1, "the menu was heard in {menu:.2} of frames");
    assert!(
        branch > 0.4,
        "branch two was heard in {branch:.2} of frames (menu {menu:.2})\n{}",
        alice.phone.log()
    );
}

#[test]
fn dial_option_r_plays_the_ringback_tone_while_the_callee_rings() {
    use softswitch_e2e::audio::tone_fraction;
    use softswitch_e2e::process::wait_until;
    let net = TestNet::new();
    // The ITU plan's ringback is one 425 Hz tone: 1 s on, 4 s off.
    let plan = "[internal]\nexten => 1002,1,Dial(SIP/1002,20,r)\n same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "[media]\ntones = \"itu\"\n", &[]);
    let alice = tone_phone(&net, &sw, 44, "1001", ((22700, 22799), 4), 1000.0, true);
    // Bob's phone rings and nobody picks up.
    let _bob = tone_phone(&net, &sw, 45, "1002", ((22800, 22899), 4), 1000.0, false);
    alice
        .phone
        .command("dial", &format!("sip:1002@{}:5060", net.switch_ip()));
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("ringing")),
        "bob's phone did not ring\n{}",
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.phone.command("hangup", "");
    let (rate, heard) = heard_after_the_call(&sw, &alice.phone);
    let ringback = tone_fraction(&heard, rate, 425.0);
    assert!(
        ringback > 0.15,
        "alice hears the 425 Hz ringback in {ringback:.2} of frames\n{}",
        alice.phone.log()
    );
    assert!(tone_fraction(&heard, rate, 1000.0) < 0.05, "no other audio");
}

/// Record() takes what the caller says into a WAV file in `[media] recordings`,
/// and Playback(${RECORDED_FILE}) plays it straight back.
#[test]
fn record_captures_the_caller_and_playback_plays_it_back() {
    use softswitch_e2e::audio::{read_wav, tone_fraction};
    let net = TestNet::new();
    let plan = "[internal]\n\
        exten => 650,1,Record(greeting.wav,0,3,q)\n\
         same => n,Playback(${RECORDED_FILE})\n\
         same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "", &[]);
    let alice = tone_phone(&net, &sw, 46, "1001", ((22900, 22999), 5), 440.0, true);
    alice
        .phone
        .command("dial", &format!("sip:650@{}:5060", net.switch_ip()));
    let (rate, heard) = heard_after_the_call(&sw, &alice.phone);
    let file = sw.dir.path().join("recordings/greeting.wav");
    let (file_rate, recorded) = read_wav(&file).expect("the recording is a WAV file");
    assert_eq!(file_rate, 8000);
    let seconds = recorded.len() as f64 / 8000.0;
    assert!(
        (2.5..=3.2).contains(&seconds),
        "{seconds:.2} s recorded\n{}",
        sw.log()
    );
    let own = tone_fraction(&recorded, 8000, 440.0);
    assert!(
        own >= 0.8,
        "the file holds alice's 440 Hz in {own:.2} of frames"
    );
    // 3 s of silence while recording, then the 3 s recording played back.
    let back = tone_fraction(&heard, rate, 440.0);
    assert!(
        back >= 0.3,
        "alice hears her recording in {back:.2} of frames\n{}",
        sw.log()
    );
}

/// MixMonitor() records both phones of a bridged call into one file.
#[test]
fn mixmonitor_records_both_phones_of_a_call() {
    use softswitch_e2e::audio::{both_tones_fraction, read_wav};
    use softswitch_e2e::process::wait_until;
    let net = TestNet::new();
    let plan = "[internal]\n\
        exten => 1002,1,MixMonitor(calls/${UNIQUEID}.wav)\n\
         same => n,Dial(SIP/1002,20)\n\
         same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "", &[]);
    let alice = tone_phone(&net, &sw, 47, "1001", ((23000, 23099), 6), 440.0, false);
    let bob = {
        let tones = tempfile::tempdir().unwrap();
        let wav = tones.path().join("tone.wav");
        softswitch_e2e::audio::write_tone_wav(&wav, 1000.0, 40.0);
        let phone = Baresip::start(BaresipOptions {
            ip: net.ip(48).into(),
            sip_port: 5080,
            rtp_ports: (23100, 23199),
            ctrl_port: 7444 + (std::process::id() % 1000) as u16 + 7,
            account: format!(
                "<sip:1002@{}:5060>;auth_pass=secret1002;regint=600;answermode=auto",
                net.switch_ip()
            ),
            source: Some(wav),
            record: false,
        });
        assert!(
            phone.wait_registered(Duration::from_secs(15)),
            "{}",
            phone.log()
        );
        (phone, tones)
    };
    alice
        .phone
        .command("dial", &format!("sip:1002@{}:5060", net.switch_ip()));
    established(&sw, &alice.phone);
    std::thread::sleep(Duration::from_secs(3));
    alice.phone.command("hangup", "");
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("call ended")),
        "{}",
        sw.log()
    );
    let dir = sw.dir.path().join("recordings/calls");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", dir.display(), sw.log()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let (_, mixed) = read_wav(&files[0]).expect("a WAV file");
    assert!(mixed.len() > 8000 * 2, "{} samples", mixed.len());
    let both = both_tones_fraction(&mixed, 8000, 440.0, 1000.0);
    assert!(
        both >= 0.5,
        "both phones are heard in {both:.2} of frames\n{}",
        bob.0.log()
    );
}

/// The shipped prompts (etc/sounds), for tests that run the real voicemail menus.
fn shipped_sounds() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/sounds");
    dir.canonicalize().unwrap().display().to_string()
}

/// A message left with VoiceMail() reaches the mailbox: the owner's subscribed
/// phone is told (NOTIFY message-summary, RFC 3842), and VoiceMailMain plays the
/// caller's words back to the owner after the PIN; then the phone is told again.
#[test]
fn a_voicemail_is_left_signalled_and_listened_to() {
    use softswitch_e2e::audio::tone_fraction;
    use softswitch_e2e::net::UdpClient;
    use softswitch_e2e::raw::subscribe_mwi;
    let net = TestNet::new();
    let plan = "[internal]\n\
        exten => 1002,1,VoiceMail(1002@default,us)\n same => n,Hangup()\n\
        exten => *97,1,VoiceMailMain(1002@default)\n same => n,Hangup()\n";
    let extra = format!(
        "[media]\nsounds = \"{}\"\n\n[[mailbox]]\nmailbox = \"1002\"\npin = \"4242\"\n",
        shipped_sounds()
    );
    let sw = switch_with_sounds(&net, plan, &extra, &[]);
    let switch: std::net::SocketAddr = (net.switch_ip(), 5060).into();

    // Bob's desk phone subscribes to his mailbox's message-waiting state.
    let desk = UdpClient::bind((net.ip(51), 0).into());
    subscribe_mwi(&desk, switch, "1002");
    let first = desk
        .next_notify(Duration::from_secs(20))
        .expect("a NOTIFY right after the SUBSCRIBE");
    assert!(first.contains("Messages-Waiting: no"), "{first}");

    // Alice leaves about three seconds of her 440 Hz tone after the beep.
    let alice = tone_phone(&net, &sw, 52, "1001", ((23200, 23299), 8), 440.0, false);
    alice
        .phone
        .command("dial", &format!("sip:1002@{}:5060", net.switch_ip()));
    established(&sw, &alice.phone);
    assert!(
        softswitch_e2e::process::wait_until(Duration::from_secs(15), || sw
            .log()
            .contains("voicemail: recording a message")),
        "no recording started\n{}",
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    alice.phone.command("hangup", "");
    let told = desk
        .next_notify(Duration::from_secs(20))
        .expect("a NOTIFY when the message arrives");
    assert!(told.contains("Messages-Waiting: yes"), "{told}");
    assert!(told.contains("Voice-Message: 1/0"), "{told}");
    let txt = std::fs::read_to_string(
        sw.dir
            .path()
            .join("voicemail/default/1002/INBOX/msg0000.txt"),
    )
    .expect("the message's metadata");
    assert!(txt.contains("callerid=") && txt.contains("1001"), "{txt}");

    // Bob calls his mailbox, enters his PIN, and listens (1).
    let bob = tone_phone(&net, &sw, 53, "1002", ((23300, 23399), 9), 1000.0, true);
    bob.phone
        .command("dial", &format!("sip:*97@{}:5060", net.switch_ip()));
    established(&sw, &bob.phone);
    std::thread::sleep(Duration::from_millis(1500));
    for d in ["4", "2", "4", "2", "#"] {
        bob.phone.command("sndcode", d);
        std::thread::sleep(Duration::from_millis(400));
    }
    // "You have one new messages", then the main menu: 1 listens.
    std::thread::sleep(Duration::from_secs(4));
    bob.phone.command("sndcode", "1");
    std::thread::sleep(Duration::from_secs(7));
    bob.phone.command("hangup", "");
    let (rate, heard) = heard_after_the_call(&sw, &bob.phone);
    let message = tone_fraction(&heard, rate, 440.0) * heard.len() as f64 / f64::from(rate);
    assert!(
        message >= 2.0,
        "bob heard alice's message for {message:.1} s\n{}",
        sw.log()
    );
    let heard_now = desk
        .next_notify(Duration::from_secs(20))
        .expect("a NOTIFY once the message was heard");
    assert!(heard_now.contains("Messages-Waiting: no"), "{heard_now}");
    assert!(heard_now.contains("Voice-Message: 0/1"), "{heard_now}");
}

/// Three phones in one ConfBridge: each hears the other two mixed, and not itself.
#[test]
fn conference_members_hear_each_other_and_not_themselves() {
    use softswitch_e2e::audio::{both_tones_fraction, tone_fraction};
    let net = TestNet::new();
    let plan = "[internal]\nexten => 700,1,ConfBridge(test)\n same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "", &[]);
    let people = [("1001", 440.0), ("1002", 700.0), ("1003", 1100.0)];
    let phones: Vec<TonePhone> = people
        .iter()
        .enumerate()
        .map(|(k, (user, hz))| {
            let rtp = 23400 + 100 * k as u16;
            tone_phone(
                &net,
                &sw,
                61 + k as u8,
                user,
                ((rtp, rtp + 99), 10 + k as u16),
                *hz,
                true,
            )
        })
        .collect();
    for p in &phones {
        p.phone
            .command("dial", &format!("sip:700@{}:5060", net.switch_ip()));
    }
    for p in &phones {
        established(&sw, &p.phone);
    }
    std::thread::sleep(Duration::from_secs(5));
    for p in &phones {
        p.phone.command("hangup", "");
    }
    for (k, p) in phones.iter().enumerate() {
        let (rate, heard) = heard_after_the_call(&sw, &p.phone);
        let own = people[k].1;
        let others: Vec<f64> = people
            .iter()
            .map(|(_, hz)| *hz)
            .filter(|hz| *hz != own)
            .collect();
        let both = both_tones_fraction(&heard, rate, others[0], others[1]);
        assert!(
            both >= 0.4,
            "{} hears {} Hz and {} Hz together in {both:.2} of frames\n{}",
            people[k].0,
            others[0],
            others[1],
            sw.log()
        );
        let self_heard = tone_fraction(&heard, rate, own);
        assert!(
            self_heard < 0.05,
            "{} hears itself in {self_heard:.2} of frames",
            people[k].0
        );
    }
}

/// SendDTMF reaches a real phone as RFC 4733 telephone-events: baresip reports
/// each key it receives.
#[test]
fn senddtmf_keys_reach_the_phone() {
    use softswitch_e2e::process::wait_until;
    let net = TestNet::new();
    let plan = "[internal]\nexten => 604,1,Answer()\n same => n,Wait(1)\n same => n,SendDTMF(159#)\n same => n,Wait(1)\n same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "", &[]);
    let alice = tone_phone(&net, &sw, 71, "1001", ((23700, 23799), 13), 440.0, false);
    alice
        .phone
        .command("dial", &format!("sip:604@{}:5060", net.switch_ip()));
    assert!(
        wait_until(Duration::from_secs(15), || sw.log().contains("call ended")),
        "{}",
        sw.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = alice.phone.log();
    // baresip logs `received event: '1' (end=0)` as each key starts.
    let keys: String = log
        .split("received event: '")
        .skip(1)
        .filter(|rest| rest.get(1..9) == Some("' (end=0"))
        .filter_map(|rest| rest.chars().next())
        .collect();
    assert_eq!(keys, "159#", "keys baresip reported\n{log}");
}

/// A registered baresip phone that answers every call by itself.
fn answering_phone(
    net: &TestNet,
    sw: &Switch,
    host: u8,
    user: &str,
    rtp: u16,
    ctrl: u16,
) -> TonePhone {
    let tones = tempfile::tempdir().unwrap();
    let wav = tones.path().join("tone.wav");
    softswitch_e2e::audio::write_tone_wav(&wav, 1000.0, 40.0);
    let phone = Baresip::start(BaresipOptions {
        ip: net.ip(host).into(),
        sip_port: 5080,
        rtp_ports: (rtp, rtp + 99),
        ctrl_port: 7444 + (std::process::id() % 1000) as u16 + ctrl,
        account: format!(
            "<sip:{user}@{}:5060>;auth_pass=secret{user};regint=600;answermode=auto",
            net.switch_ip()
        ),
        source: Some(wav),
        record: false,
    });
    assert!(
        phone.wait_registered(Duration::from_secs(15)),
        "{}\nswitch:\n{}",
        phone.log(),
        sw.log()
    );
    TonePhone {
        phone,
        _tones: tones,
    }
}

/// The shipped etc/extensions.conf's feature codes, dialled from real phones:
/// *72 forwards a phone's calls elsewhere, *73 brings them back.
#[test]
fn forwarding_star_codes_change_where_a_call_goes() {
    use softswitch_e2e::process::wait_until;
    let net = TestNet::new();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/extensions.conf");
    let plan = std::fs::read_to_string(shipped).unwrap();
    let extra = format!("[media]\nsounds = \"{}\"\n", shipped_sounds());
    let sw = switch_with_sounds(&net, &plan, &extra, &[]);
    let alice = tone_phone(&net, &sw, 81, "1001", ((24000, 24099), 20), 440.0, false);
    let bob = answering_phone(&net, &sw, 82, "1002", 24100, 21);
    let _carol = answering_phone(&net, &sw, 83, "1003", 24200, 22);
    let ended = |n: usize| {
        assert!(
            wait_until(Duration::from_secs(15), || sw
                .log()
                .matches("call ended")
                .count()
                >= n),
            "call {n} did not end\n{}",
            sw.log()
        );
    };
    let last_callee = || {
        let out = sw.cli(&["cdr", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let cdr: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        (
            cdr["dst"].as_str().unwrap().to_string(),
            cdr["dstchannel"].as_str().unwrap().to_string(),
        )
    };
    let dial = |phone: &Baresip, what: &str| {
        phone.command("dial", &format!("sip:{what}@{}:5060", net.switch_ip()));
    };

    // Bob forwards all his calls to Carol; "Activated." and the switch hangs up.
    dial(&bob.phone, "*721003");
    ended(1);
    // Alice calls Bob: Carol's phone answers.
    dial(&alice.phone, "1002");
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("answered")),
        "{}",
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    alice.phone.command("hangup", "");
    ended(2);
    let (dst, channel) = last_callee();
    assert_eq!(dst, "1002");
    assert!(channel.contains("/1003-"), "forwarded to carol: {channel}");

    // Bob cancels the forward; the next call rings him.
    dial(&bob.phone, "*73");
    ended(3);
    dial(&alice.phone, "1002");
    assert!(
        wait_until(Duration::from_secs(10), || sw
            .log()
            .matches("answered")
            .count()
            >= 2),
        "{}",
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    alice.phone.command("hangup", "");
    ended(4);
    let (_, channel) = last_callee();
    assert!(channel.contains("/1002-"), "back to bob: {channel}");
}

/// Directed pickup (*8 in the shipped plan): Carol answers, from her own phone, a
/// call that is ringing Bob's; she and Alice then hear each other.
#[test]
fn a_call_ringing_elsewhere_is_picked_up_and_both_hear_each_other() {
    use softswitch_e2e::audio::tone_fraction;
    use softswitch_e2e::process::wait_until;
    let net = TestNet::new();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/extensions.conf");
    let plan = std::fs::read_to_string(shipped).unwrap();
    let extra = format!("[media]\nsounds = \"{}\"\n", shipped_sounds());
    let sw = switch_with_sounds(&net, &plan, &extra, &[]);
    let alice = tone_phone(&net, &sw, 91, "1001", ((24300, 24399), 23), 440.0, true);
    let _bob = tone_phone(&net, &sw, 92, "1002", ((24400, 24499), 24), 1000.0, false);
    let carol = tone_phone(&net, &sw, 93, "1003", ((24500, 24599), 25), 700.0, true);
    alice
        .phone
        .command("dial", &format!("sip:1002@{}:5060", net.switch_ip()));
    assert!(
        wait_until(Duration::from_secs(10), || sw.log().contains("ringing")),
        "bob's phone did not ring\n{}",
        sw.log()
    );
    carol
        .phone
        .command("dial", &format!("sip:*81002@{}:5060", net.switch_ip()));
    assert!(
        wait_until(Duration::from_secs(10), || sw
            .log()
            .contains("call picked up")),
        "no pickup\n{}",
        sw.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    alice.phone.command("hangup", "");
    let (rate, at_carol) = heard_after_the_call(&sw, &carol.phone);
    let (_, at_alice) = heard_after_the_call(&sw, &alice.phone);
    let alice_heard = tone_fraction(&at_alice, rate, 700.0);
    let carol_heard = tone_fraction(&at_carol, rate, 440.0);
    assert!(
        alice_heard > 0.4,
        "alice hears carol in {alice_heard:.2} of frames\n{}",
        sw.log()
    );
    assert!(
        carol_heard > 0.4,
        "carol hears alice in {carol_heard:.2} of frames"
    );
    // Carol's side ended with Alice's: both calls are over.
    assert!(
        wait_until(Duration::from_secs(5), || sw
            .log()
            .matches("call ended")
            .count()
            >= 2),
        "{}",
        sw.log()
    );
}

/// A phone that offers only G.722 hears prompts encoded in G.722.
#[test]
fn a_wideband_only_phone_hears_the_prompt_in_g722() {
    use softswitch_e2e::audio::tone_fraction;
    let net = TestNet::new();
    let plan = "[internal]\nexten => 602,1,Playback(test-tone)\n same => n,Hangup()\n";
    let sw = switch_with_sounds(&net, plan, "", &[("test-tone", 1000.0, 3.0)]);
    let tones = tempfile::tempdir().unwrap();
    let wav = tones.path().join("tone.wav");
    softswitch_e2e::audio::write_tone_wav(&wav, 440.0, 40.0);
    let phone = Baresip::start(BaresipOptions {
        ip: net.ip(95).into(),
        sip_port: 5080,
        rtp_ports: (24600, 24699),
        ctrl_port: 7444 + (std::process::id() % 1000) as u16 + 26,
        account: format!(
            "<sip:1001@{}:5060>;auth_pass=secret1001;regint=600;audio_codecs=G722",
            net.switch_ip()
        ),
        source: Some(wav),
        record: true,
    });
    assert!(
        phone.wait_registered(Duration::from_secs(15)),
        "{}",
        phone.log()
    );
    phone.command("dial", &format!("sip:602@{}:5060", net.switch_ip()));
    let (rate, heard) = heard_after_the_call(&sw, &phone);
    assert!(
        phone.log().contains("G722"),
        "negotiated G.722\n{}",
        phone.log()
    );
    let prompt = tone_fraction(&heard, rate, 1000.0);
    assert!(
        prompt >= 0.6,
        "the prompt is heard in {prompt:.2} of frames (rate {rate})\n{}",
        phone.log()
    );
}

/// Two sites trunked by dial peers, as in the founding two-router lab: a phone
/// on site A dials 2001, site A's preferred peer is dead, so after the
/// 1.5 s invite timeout the call hunts to site B, which trusts A by its
/// address, runs the call in A's peer context and rings its own phone; the two
/// phones then hear each other.
#[test]
fn a_call_to_the_other_site_fails_over_to_the_live_peer_and_carries_audio() {
    use softswitch_e2e::audio::tone_fraction;
    use softswitch_e2e::process::wait_until;
    let net = TestNet::new();
    let (a_ip, b_ip, dead_ip) = (net.switch_ip(), net.ip(2), net.ip(3));
    let mut a = SwitchOptions::new(a_ip);
    a.dialplan =
        "[internal]\nexten => _2XXX,1,Dial(PEER/${EXTEN},20)\n same => n,Hangup()\n".into();
    a.extra = format!(
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"2...\"\nsession_target = \"ipv4:{dead_ip}\"\n\n\
         [[dial_peer]]\ntag = 2\ndestination_pattern = \"2...\"\nsession_target = \"ipv4:{b_ip}\"\npreference = 1\ncontext = \"from-b\"\n"
    );
    let site_a = Switch::start(a);
    let mut b = SwitchOptions::new(b_ip);
    b.endpoints = vec![("2001".into(), "secret2001".into())];
    b.dialplan = "[from-a]\nexten => _2XXX,1,Dial(SIP/${EXTEN},20)\n same => n,Hangup()\n".into();
    b.extra = format!(
        "[[dial_peer]]\ntag = 1\ndestination_pattern = \"1...\"\nsession_target = \"ipv4:{a_ip}\"\ncontext = \"from-a\"\n"
    );
    let site_b = Switch::start(b);

    let alice = tone_phone(&net, &site_a, 11, "1001", ((24700, 24799), 27), 440.0, true);
    let tones = tempfile::tempdir().unwrap();
    let wav = tones.path().join("tone.wav");
    softswitch_e2e::audio::write_tone_wav(&wav, 1000.0, 40.0);
    let bob = Baresip::start(BaresipOptions {
        ip: net.ip(12).into(),
        sip_port: 5080,
        rtp_ports: (24800, 24899),
        ctrl_port: 7444 + (std::process::id() % 1000) as u16 + 28,
        account: format!("<sip:2001@{b_ip}:5060>;auth_pass=secret2001;regint=600;answermode=auto"),
        source: Some(wav),
        record: true,
    });
    assert!(
        bob.wait_registered(Duration::from_secs(15)),
        "{}",
        bob.log()
    );

    let started = std::time::Instant::now();
    alice
        .phone
        .command("dial", &format!("sip:2001@{a_ip}:5060"));
    assert!(
        wait_until(Duration::from_secs(10), || site_a
            .log()
            .contains("answered")),
        "not answered\nsite A:\n{}\nsite B:\n{}",
        site_a.log(),
        site_b.log()
    );
    let setup = started.elapsed();
    assert!(
        setup >= Duration::from_millis(1400) && setup < Duration::from_secs(5),
        "hunting took {setup:?}"
    );
    assert!(
        site_a.log().contains("dial peer did not answer in time"),
        "{}",
        site_a.log()
    );
    assert!(
        site_b.log().contains("call from a dial peer"),
        "{}",
        site_b.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.phone.command("hangup", "");
    let (rate, at_alice) = heard_after_the_call(&site_a, &alice.phone);
    let heard_bob = tone_fraction(&at_alice, rate, 1000.0);
    assert!(
        heard_bob > 0.4,
        "alice hears bob in {heard_bob:.2} of frames"
    );
    let (rate, at_bob) = heard_after_the_call(&site_b, &bob);
    let heard_alice = tone_fraction(&at_bob, rate, 440.0);
    assert!(
        heard_alice > 0.4,
        "bob hears alice in {heard_alice:.2} of frames"
    );
    let out = site_a.cli(&["cdr", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let cdr: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(
        cdr["dstchannel"].as_str().unwrap().starts_with("PEER/2-"),
        "{cdr}"
    );
}
