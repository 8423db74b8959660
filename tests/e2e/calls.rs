//! Calls through the dialplan with SIPp phones on both ends: the caller authenticates,
//! the dialplan Dials the callee's registered contact, and the media is anchored on
//! the switch's relay. Each case checks the signalling both phones saw and the CDR.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use softswitch_e2e::net::status_of;
use softswitch_e2e::process::wait_until;
use softswitch_e2e::{RunningSipp, Sipp, Switch, SwitchOptions, TestNet, UdpClient, scenario};

const PLAN: &str = "\
[internal]
exten => _100X,1,Dial(SIP/${EXTEN},10)
 same => n,Hangup()
exten => 2000,1,Dial(SIP/1002&SIP/1003,10)
 same => n,Hangup()
exten => 4000,1,Dial(SIP/1002,1)
 same => n,Hangup()
exten => 3000,1,Busy()
exten => 6000,1,Set(CALLERID(name)=Reception)
 same => n,Set(CALLERID(num)=100)
 same => n,Dial(SIP/1002,10)
 same => n,Hangup()
";

fn switch(net: &TestNet) -> Switch {
    switch_with(net, "")
}

fn switch_with(net: &TestNet, extra: &str) -> Switch {
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan = PLAN.into();
    opts.extra = extra.into();
    Switch::start(opts)
}

fn phone(net: &TestNet, host: u8) -> SocketAddr {
    SocketAddr::new(net.ip(host).into(), 5070)
}

/// Registers `user` from `addr`, where its SIPp callee will then listen.
fn register(sw: &Switch, addr: SocketAddr, user: &str) {
    let run = Sipp::new(scenario("register.xml"), addr, sw.sip_addr())
        .user(user, &format!("secret{user}"))
        .key("expires", "600")
        .run();
    assert!(run.succeeded(), "{user} did not register: {run}");
}

fn callee(sw: &Switch, addr: SocketAddr, file: &str) -> RunningSipp {
    Sipp::new(scenario(file), addr, sw.sip_addr())
        .arg("-rtp_echo")
        .arg("-mi")
        .arg(addr.ip().to_string())
        .arg("-mp")
        .arg("6000")
        .spawn()
}

/// One second of a 440 Hz tone as raw G.711 µ-law, what SIPp streams as PCMU.
fn tone_file(dir: &std::path::Path) -> PathBuf {
    fn ulaw(sample: i16) -> u8 {
        const BIAS: i32 = 0x84;
        let mut s = sample as i32;
        let sign = if s < 0 {
            s = -s;
            0x80
        } else {
            0
        };
        let s = (s + BIAS).min(32635);
        let exponent = (7
            - ((s << 1) as u32 | 1)
                .leading_zeros()
                .saturating_sub(16)
                .min(7)) as i32;
        let exponent = exponent.clamp(0, 7);
        let mantissa = (s >> (exponent + 3)) & 0x0f;
        !(sign | (exponent << 4) as u8 | mantissa as u8)
    }
    let bytes: Vec<u8> = (0..8000)
        .map(|i| {
            let t = i as f64 / 8000.0;
            ulaw((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect();
    let path = dir.join("tone.ulaw");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn caller(sw: &Switch, net: &TestNet, file: &str, dialed: &str) -> Sipp {
    let dir = sw.dir.path();
    // SIPp expands no keywords inside <exec>: the audio file is written in.
    let text = std::fs::read_to_string(scenario(file))
        .unwrap()
        .replace("[audio]", tone_file(dir).to_str().unwrap());
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    Sipp::new(&path, phone(net, 2), sw.sip_addr())
        .dialing(dialed, "1001")
        .media_at(7000)
}

/// A refused call: the template's `[final]` is the status the caller must get.
fn refused(sw: &Switch, net: &TestNet, dialed: &str, status: u16) -> softswitch_e2e::SippRun {
    let path = softswitch_e2e::refused_scenario(status, sw.dir.path());
    Sipp::new(&path, phone(net, 2), sw.sip_addr())
        .dialing(dialed, "1001")
        .run()
}

/// A call from 1001 to `dialed` that the callee (1002, registered from host 3) must
/// see through to the end: both SIPp runs must succeed. Returns (caller, callee).
fn completed_call(
    sw: &Switch,
    net: &TestNet,
    caller_file: &str,
    callee_file: &str,
    dialed: &str,
) -> (softswitch_e2e::SippRun, softswitch_e2e::SippRun) {
    register(sw, phone(net, 3), "1002");
    let bob = callee(sw, phone(net, 3), callee_file);
    std::thread::sleep(Duration::from_millis(300));
    let alice = caller(sw, net, caller_file, dialed).run();
    let bob = bob.wait();
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
    assert!(
        bob.succeeded(),
        "callee: {bob}\ncaller: {alice}\n{}",
        sw.log()
    );
    (alice, bob)
}

/// The newest CDRs, waiting (bounded) until `n` exist.
fn cdrs(sw: &Switch, n: usize) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    wait_until(Duration::from_secs(5), || {
        let out = sw.cli(&["cdr", "--json", "--last", "50"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rows = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("cdr --json prints JSON lines"))
            .collect();
        rows.len() >= n
    });
    rows
}

#[test]
fn answered_call_is_relayed_and_recorded() {
    let net = TestNet::new();
    let sw = switch(&net);
    let (alice, bob) = completed_call(&sw, &net, "call_caller.xml", "call_callee.xml", "1002");

    // The callee was offered the relay, not the caller's address.
    let invite = bob
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE"))
        .expect("callee got an INVITE");
    let switch_ip = net.switch_ip().to_string();
    assert!(
        invite.contains(&format!("c=IN IP4 {switch_ip}")),
        "{invite}"
    );
    assert!(
        !invite.contains(&net.ip(2).to_string()),
        "caller address leaked: {invite}"
    );
    assert!(
        invite.contains("From: <sip:1001@pbx.test>;tag="),
        "caller ID: {invite}"
    );
    assert!(
        invite.contains("P-Asserted-Identity: <sip:1001@pbx.test>"),
        "{invite}"
    );
    // And the caller got the relay in the answer.
    let ok = alice
        .received()
        .into_iter()
        .rfind(|m| m.starts_with("SIP/2.0 200") && m.contains("m=audio"))
        .expect("caller got a 200 with SDP");
    assert!(ok.contains(&format!("c=IN IP4 {switch_ip}")), "{ok}");

    let rows = cdrs(&sw, 1);
    let cdr = rows.last().expect("a CDR row");
    assert_eq!(cdr["src"], "1001");
    assert_eq!(cdr["dst"], "1002");
    assert_eq!(cdr["dcontext"], "internal");
    assert_eq!(cdr["disposition"], "ANSWERED");
    assert_eq!(cdr["hangup_cause"], 16);
    assert_eq!(cdr["end_reason"], "caller_hangup");
    assert!(cdr["answer_at"].is_i64(), "{cdr}");
    // Post-dial delay: the callee's 180 came within the call's setup.
    let pdd = cdr["pdd_ms"].as_i64().expect("a post-dial delay");
    assert!((0..5000).contains(&pdd), "{cdr}");
    // Audio went through the relay both ways (SIPp's callee echoes what it gets).
    let caller_pkts = cdr["media"]["caller"]["packets"].as_u64().unwrap_or(0);
    let callee_pkts = cdr["media"]["callee"]["packets"].as_u64().unwrap_or(0);
    assert!(caller_pkts >= 40, "caller RTP through the relay: {cdr}");
    assert!(callee_pkts >= 40, "echoed RTP through the relay: {cdr}");
    assert!(
        cdr["media"]["caller"]["forwarded"].as_u64().unwrap_or(0) >= 40,
        "{cdr}"
    );
    // A clean loopback stream rates near the G.711 ceiling of the E-model.
    let mos = cdr["media"]["caller"]["mos"].as_f64().unwrap_or(0.0);
    assert!((4.0..=4.5).contains(&mos), "caller MOS {mos}: {cdr}");
}

#[test]
fn busy_callee_gives_486_and_a_busy_cdr() {
    let net = TestNet::new();
    let sw = switch(&net);
    register(&sw, phone(&net, 3), "1002");
    let bob = callee(&sw, phone(&net, 3), "call_callee_busy.xml");
    std::thread::sleep(Duration::from_millis(300));
    let alice = refused(&sw, &net, "1002", 486);
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
    assert!(bob.wait().succeeded());
    let rows = cdrs(&sw, 1);
    let cdr = rows.last().unwrap();
    assert_eq!(cdr["disposition"], "BUSY", "{cdr}");
    assert_eq!(cdr["hangup_cause"], 17, "{cdr}");
}

#[test]
fn unregistered_callee_is_unavailable() {
    let net = TestNet::new();
    let sw = switch(&net);
    let alice = refused(&sw, &net, "1004", 480);
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
    let rows = cdrs(&sw, 1);
    let cdr = rows.last().unwrap();
    assert_eq!(cdr["disposition"], "FAILED", "{cdr}");
    assert_eq!(cdr["dst"], "1004");
}

#[test]
fn busy_application_answers_486() {
    let net = TestNet::new();
    let sw = switch(&net);
    let alice = refused(&sw, &net, "3000", 486);
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
}

#[test]
fn unknown_number_is_404() {
    let net = TestNet::new();
    let sw = switch(&net);
    let alice = refused(&sw, &net, "5555", 404);
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
}

#[test]
fn caller_cancel_cancels_the_ringing_callee() {
    let net = TestNet::new();
    let sw = switch(&net);
    register(&sw, phone(&net, 3), "1002");
    let bob = callee(&sw, phone(&net, 3), "call_callee_ring.xml");
    std::thread::sleep(Duration::from_millis(300));
    let alice = caller(&sw, &net, "call_caller_cancel.xml", "1002").run();
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
    let bob = bob.wait();
    assert!(bob.succeeded(), "callee was cancelled: {bob}\n{}", sw.log());
    let rows = cdrs(&sw, 1);
    assert_eq!(rows.last().unwrap()["disposition"], "NO ANSWER");
    assert_eq!(rows.last().unwrap()["end_reason"], "caller_cancel");
}

#[test]
fn ring_timeout_cancels_and_answers_480() {
    let net = TestNet::new();
    let sw = switch(&net);
    register(&sw, phone(&net, 3), "1002");
    let bob = callee(&sw, phone(&net, 3), "call_callee_ring.xml");
    std::thread::sleep(Duration::from_millis(300));
    let alice = refused(&sw, &net, "4000", 480);
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
    assert!(bob.wait().succeeded(), "callee saw the CANCEL");
    let rows = cdrs(&sw, 1);
    let cdr = rows.last().unwrap();
    assert_eq!(cdr["disposition"], "NO ANSWER", "{cdr}");
    assert_eq!(cdr["hangup_cause"], 19, "{cdr}");
}

#[test]
fn dial_to_two_phones_first_answer_wins() {
    let net = TestNet::new();
    let sw = switch(&net);
    register(&sw, phone(&net, 3), "1002");
    register(&sw, phone(&net, 4), "1003");
    let bob = callee(&sw, phone(&net, 3), "call_callee.xml");
    let carol = callee(&sw, phone(&net, 4), "call_callee_ring.xml");
    std::thread::sleep(Duration::from_millis(300));
    let alice = caller(&sw, &net, "call_caller.xml", "2000").run();
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
    assert!(bob.wait().succeeded(), "1002 answered");
    let carol = carol.wait();
    assert!(carol.succeeded(), "1003 was cancelled: {carol}");
    let rows = cdrs(&sw, 1);
    assert_eq!(rows.last().unwrap()["disposition"], "ANSWERED");
}

#[test]
fn unauthenticated_invite_never_reaches_the_dialplan() {
    let net = TestNet::new();
    let sw = switch(&net);
    let client = UdpClient::bind(phone(&net, 2));
    let invite = format!(
        "INVITE sip:1002@{sw} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKnoauth1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1001@pbx.test>;tag=a1\r\n\
         To: <sip:1002@pbx.test>\r\n\
         Call-ID: noauth-1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:1001@{me}>\r\n\
         Content-Length: 0\r\n\r\n",
        sw = sw.sip_addr(),
        me = phone(&net, 2)
    );
    let reply = client
        .request(sw.sip_addr(), &invite, Duration::from_secs(3))
        .expect("a final response");
    assert_eq!(status_of(&reply), Some(407), "{reply}");
    assert!(reply.contains("Proxy-Authenticate: Digest"), "{reply}");
    // No call, no CDR.
    std::thread::sleep(Duration::from_millis(300));
    let out = sw.cli(&["cdr", "--json"]);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn hold_and_resume_pass_through_and_the_callee_hangs_up() {
    let net = TestNet::new();
    let sw = switch(&net);
    let (alice, _) = completed_call(
        &sw,
        &net,
        "call_caller_hold.xml",
        "call_callee_hold.xml",
        "1002",
    );
    // The hold answer reached the caller re-anchored, its direction intact.
    let answers: Vec<String> = alice
        .received()
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0 200") && m.contains("CSeq: 3 INVITE"))
        .collect();
    let hold = answers.first().expect("a 200 for the hold re-INVITE");
    assert!(hold.contains("a=recvonly"), "{hold}");
    assert!(
        hold.contains(&format!("c=IN IP4 {}", net.switch_ip())),
        "{hold}"
    );
    let rows = cdrs(&sw, 1);
    let cdr = rows.last().unwrap();
    assert_eq!(cdr["disposition"], "ANSWERED", "{cdr}");
    assert_eq!(cdr["hangup_cause"], 16, "{cdr}");
    assert_eq!(cdr["end_reason"], "callee_hangup", "{cdr}");
}

#[test]
fn a_call_without_media_is_hung_up_after_the_media_timeout() {
    let net = TestNet::new();
    let sw = switch_with(&net, "[rtp]\nmedia_timeout = 1\n");
    let started = std::time::Instant::now();
    // Both phones must get the switch's BYE for their runs to succeed.
    completed_call(
        &sw,
        &net,
        "call_caller_silent.xml",
        "call_callee.xml",
        "1002",
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let rows = cdrs(&sw, 1);
    let cdr = rows.last().unwrap();
    assert_eq!(cdr["end_reason"], "media_timeout", "{cdr}");
    assert_eq!(cdr["disposition"], "ANSWERED", "{cdr}");
}

/// The INVITE the callee got for a call from 1001 (configured as `Alice <1001>`)
/// to `dialed`.
fn callee_invite(dialed: &str) -> String {
    let net = TestNet::new();
    let mut opts = SwitchOptions::new(net.switch_ip());
    opts.dialplan = PLAN.into();
    opts.callerids = vec![("1001".into(), "Alice <1001>".into())];
    let sw = Switch::start(opts);
    let (_, bob) = completed_call(&sw, &net, "call_caller.xml", "call_callee.xml", dialed);
    bob.received()
        .into_iter()
        .find(|m| m.starts_with("INVITE"))
        .expect("callee got an INVITE")
}

#[test]
fn the_endpoints_caller_id_reaches_the_callee() {
    let invite = callee_invite("1002");
    assert!(
        invite.contains("From: \"Alice\" <sip:1001@pbx.test>;tag="),
        "{invite}"
    );
    assert!(
        invite.contains("P-Asserted-Identity: \"Alice\" <sip:1001@pbx.test>"),
        "{invite}"
    );
}

#[test]
fn the_dialplan_can_rewrite_the_caller_id() {
    let invite = callee_invite("6000");
    assert!(
        invite.contains("From: \"Reception\" <sip:100@pbx.test>;tag="),
        "{invite}"
    );
}

#[test]
fn reliable_provisionals_session_timer_and_a_late_offer_work_end_to_end() {
    let net = TestNet::new();
    let sw = switch(&net);
    let (alice, bob) = completed_call(
        &sw,
        &net,
        "call_caller_100rel_late.xml",
        "call_callee_100rel.xml",
        "1002",
    );
    let got = alice.received();
    let ringing = got
        .iter()
        .find(|m| m.starts_with("SIP/2.0 180"))
        .expect("a 180");
    assert!(ringing.contains("RSeq: 1"), "{ringing}");
    let ok = got
        .iter()
        .find(|m| m.starts_with("SIP/2.0 200") && m.contains("INVITE"))
        .expect("a 200 to the INVITE");
    assert!(ok.contains("Require: timer"), "{ok}");
    assert!(
        ok.contains(&format!("c=IN IP4 {}", net.switch_ip())),
        "the callee's offer reaches the caller anchored: {ok}"
    );
    let ack = bob
        .received()
        .into_iter()
        .find(|m| m.starts_with("ACK"))
        .expect("an ACK");
    assert!(
        ack.contains(&format!("c=IN IP4 {}", net.switch_ip())),
        "the caller's answer reaches the callee anchored: {ack}"
    );
    let rows = cdrs(&sw, 1);
    let cdr = rows.last().unwrap();
    assert_eq!(cdr["disposition"], "ANSWERED", "{cdr}");
    assert_eq!(cdr["end_reason"], "caller_hangup", "{cdr}");
}

#[test]
fn softswitch_calls_lists_a_call_in_progress_with_its_media() {
    let net = TestNet::new();
    let sw = switch(&net);
    register(&sw, phone(&net, 3), "1002");
    let bob = callee(&sw, phone(&net, 3), "call_callee.xml");
    std::thread::sleep(Duration::from_millis(300));
    let alice = caller(&sw, &net, "call_caller.xml", "1002").spawn();
    // The caller streams for 1.5 s after the answer (200 ms after ringing).
    std::thread::sleep(Duration::from_millis(1000));
    let out = sw.cli(&["calls", "--json"]);
    let table = sw.cli(&["calls"]);
    let alice = alice.wait();
    let bob = bob.wait();
    assert!(alice.succeeded() && bob.succeeded(), "{alice}\n{bob}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let calls: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(calls.len(), 1, "{text}");
    let call = &calls[0];
    assert_eq!(call["state"], "answered", "{call}");
    assert_eq!(call["src"], "1001", "{call}");
    assert_eq!(call["dst"], "1002", "{call}");
    assert_eq!(call["app"], "Dial", "{call}");
    assert_eq!(call["legs"][0]["state"], "answered", "{call}");
    assert!(
        call["media"]["caller"]["packets"].as_u64().unwrap() > 0
            && call["media"]["caller"]["mos"].as_f64().unwrap_or(0.0) > 4.0,
        "the caller's RTP is counted and rated live: {call}"
    );
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("UNIQUEID"), "{table}");
    assert!(table.contains("answered"), "{table}");

    // After the hangup the list is empty.
    let out = sw.cli(&["calls"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no calls");
}

#[test]
fn softswitch_calls_without_a_running_node_fails_with_one_line() {
    let net = TestNet::new();
    let mut sw = switch(&net);
    sw.stop();
    let out = sw.cli(&["calls"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach http://"), "{err}");
    assert_eq!(
        err.matches("Connection refused").count(),
        1,
        "the cause once: {err}"
    );
}

#[test]
fn a_phone_registered_over_tcp_is_called_on_its_own_connection() {
    use softswitch_e2e::TcpPhone;
    let net = TestNet::new();
    let sw = switch(&net);
    let mut bob = TcpPhone::connect(sw.sip_addr(), "1002");
    let ok = bob.register("pbx.test", "secret1002");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");

    let alice = caller(&sw, &net, "call_caller.xml", "1002").spawn();
    let invite = bob.next_request("INVITE");
    assert!(invite.contains("Via: SIP/2.0/TCP"), "{invite}");
    let ringing = bob.reply(&invite, "180 Ringing", None);
    bob.send(&ringing);
    let sdp = softswitch_e2e::tcp_phone::sdp(SocketAddr::new(bob.local().ip(), 6000));
    let answer = bob.reply(&invite, "200 OK", Some(&sdp));
    bob.send(&answer);
    bob.next_request("ACK");
    let bye = bob.next_request("BYE");
    let ok = bob.reply(&bye, "200 OK", None);
    bob.send(&ok);
    let alice = alice.wait();
    assert!(alice.succeeded(), "caller: {alice}\n{}", sw.log());
    let rows = cdrs(&sw, 1);
    assert_eq!(rows.last().unwrap()["disposition"], "ANSWERED");
}
