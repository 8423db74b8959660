//! The dialplan commands as an author runs them: `check`, `show`, `trace` on files, and
//! `reload` against a running switch that must keep its plan when the new one is broken.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use softswitch_e2e::process::{wait_bounded, wait_until};
use softswitch_e2e::{Switch, SwitchOptions, binary, workspace};

fn softswitch(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(workspace())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run softswitch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn shipped_dialplan_is_clean() {
    let out = softswitch(&["dialplan", "check"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report = text(&out.stdout);
    assert!(report.contains("0 errors"), "{report}");
    assert!(report.starts_with("etc/extensions.conf:"), "{report}");
}

#[test]
fn check_points_at_every_error_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("extensions.conf");
    std::fs::write(
        &plan,
        "[internal]\n\
         exten => 100,1,Answer()\n\
         \x20same => n,Frob(1)\n\
         exten => 200,1,Goto(nowhere,s,1)\n\
         exten => 300,1,Set(X=$[1 +])\n",
    )
    .unwrap();
    let path = plan.to_str().unwrap();
    let out = softswitch(&["dialplan", "check", path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(
        report.contains(&format!("{path}:3:12: error: unknown application 'Frob'")),
        "{report}"
    );
    // Each diagnostic quotes its line with a caret under the column.
    assert!(report.contains("   3 |  same => n,Frob(1)"), "{report}");
    let errors: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with(path) && l.contains(": error: "))
        .collect();
    assert!(
        errors.len() >= 2,
        "expected every error, got {errors:?}\n{report}"
    );
    assert!(
        report.contains(":4:"),
        "Goto to a missing context is reported: {report}"
    );
}

#[test]
fn check_of_a_missing_file_fails_with_one_line() {
    let out = softswitch(&["dialplan", "check", "/nonexistent/extensions.conf"]);
    assert_ne!(out.status.code(), Some(0));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("/nonexistent/extensions.conf"), "{all}");
}

#[test]
fn show_lists_patterns_in_the_order_they_are_tried() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("extensions.conf");
    std::fs::write(
        &plan,
        "[c]\nexten => _X.,1,NoOp(any)\nexten => _1XXX,1,NoOp(four)\nexten => 1234,1,NoOp(exact)\n",
    )
    .unwrap();
    let out = softswitch(&["dialplan", "show", "c", "--file", plan.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let pos = |needle: &str| {
        shown
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{shown}"))
    };
    assert!(pos("'1234'") < pos("'_1XXX'"), "{shown}");
    assert!(pos("'_1XXX'") < pos("'_X.'"), "{shown}");
}

#[test]
fn trace_follows_dial_status_into_voicemail() {
    let out = softswitch(&[
        "dialplan",
        "trace",
        "--context",
        "internal",
        "--exten",
        "1002",
        "--callerid",
        "Alice <1001>",
        "--dial-status",
        "BUSY",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let steps: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("trace --json prints JSON lines"))
        .collect();
    let apps: Vec<&str> = steps.iter().filter_map(|s| s["app"].as_str()).collect();
    // The shipped plan checks the user's features (DND, forwarding, call
    // waiting) before it dials; none is set in a trace's empty AstDB.
    assert_eq!(apps[0], "NoOp", "{steps:?}");
    let dial = apps.iter().position(|a| *a == "Dial").expect("it dials");
    let voicemail = apps
        .iter()
        .position(|a| *a == "VoiceMail")
        .expect("and then voicemail");
    assert!(dial < voicemail, "{steps:?}");
    assert!(
        apps[..dial]
            .iter()
            .all(|a| ["NoOp", "Set", "GotoIf"].contains(a)),
        "{steps:?}"
    );
    let vm = steps
        .iter()
        .find(|s| s["app"] == "VoiceMail")
        .expect("BUSY leads to VoiceMail");
    assert_eq!(vm["args"], "1002@default,b");
    assert!(
        steps[0]["args"].as_str().unwrap().contains("Alice"),
        "{steps:?}"
    );
}

#[test]
fn trace_of_an_unknown_number_runs_the_invalid_extension() {
    let out = softswitch(&[
        "dialplan",
        "trace",
        "--context",
        "internal",
        "--exten",
        "999",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("Executing [i@internal:1] Playback"),
        "{shown}"
    );
    assert!(shown.contains("Hangup"), "{shown}");
}

#[test]
fn reload_refuses_a_broken_plan_and_keeps_the_running_one() {
    let mut opts = SwitchOptions::new([127, 0, 0, 41]);
    opts.dialplan = "[internal]\nexten => 100,1,Answer()\n".into();
    let sw = Switch::start(opts);

    // A plan that cannot be loaded (an include loop, as Asterisk refuses it too): the
    // command names the fault and fails; the node is not signalled.
    std::fs::write(
        sw.dialplan_path(),
        "[internal]\nexten => 100,1,Answer()\n#include extensions.conf\n",
    )
    .unwrap();
    let out = sw.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("extensions.conf:3:"), "{err}");
    assert!(err.contains("include loop"), "{err}");
    assert!(err.contains("the running plan stays"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!sw.log().contains("dialplan reloaded"), "{}", sw.log());

    // Someone sends SIGHUP anyway: the node refuses the plan itself and keeps running.
    let pid: i32 = std::fs::read_to_string(sw.dir.path().join("var/softswitch.pid"))
        .expect("the node writes its PID file")
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the switch this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(
        wait_until(Duration::from_secs(5), || sw
            .log()
            .contains("dialplan reload refused")),
        "{}",
        sw.log()
    );

    // A plan that loads, with a typo Asterisk would also load and fail at run time:
    // it is swapped in, and the author is shown the typo with its position.
    std::fs::write(
        sw.dialplan_path(),
        "[internal]\nexten => 100,1,Answer()\n[other]\nexten => 200,1,Hangp()\n",
    )
    .unwrap();
    let out = sw.cli(&["reload"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "extensions.conf:4:16: error: unknown application 'Hangp'; did you mean 'Hangup'?"
        ),
        "{err}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || sw
            .log()
            .contains("dialplan reloaded")),
        "{}",
        sw.log()
    );
    assert!(sw.log().contains("contexts=2"), "{}", sw.log());
}

#[test]
fn a_broken_plan_stops_the_switch_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("softswitch.toml");
    std::fs::write(
        &config,
        "[sip]\nlisten = [\"udp:127.0.0.42:5060\"]\n[database]\nurl = \"sqlite://var/s.db\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("extensions.conf"),
        "[a]\nexten => 1,1,Answer()\n#include missing.conf\n",
    )
    .unwrap();
    let mut child = Command::new(binary())
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run softswitch");
    let status = wait_bounded(&mut child, Duration::from_secs(20))
        .expect("a switch with a broken dialplan must exit, not serve");
    assert_ne!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("extensions.conf:3:") && err.contains("missing.conf"),
        "{err}"
    );
}

/// `softswitch peers --explain NUMBER` as a network engineer runs it: the hunt
/// list of the founding two-site pattern, and a bad pattern pointed at exactly.
#[test]
fn peers_explain_shows_the_hunt_list_and_bad_patterns_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("softswitch.toml");
    let base = "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n\
        [[dial_peer]]\ntag = 1\ndestination_pattern = \"22.\"\nsession_target = \"ipv4:192.168.100.2\"\n\n\
        [[dial_peer]]\ntag = 2\ndestination_pattern = \"2...\"\nsession_target = \"ipv4:192.168.100.3:5070\"\npreference = 1\n";
    std::fs::write(&config, base).unwrap();
    let c = config.to_str().unwrap();
    let out = softswitch(&["peers", "--config", c, "--explain", "2217"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let first = shown.find("1. dial peer 1").expect(&shown);
    let second = shown.find("2. dial peer 2").expect(&shown);
    assert!(first < second, "{shown}");
    assert!(shown.contains("2 literal digits"), "{shown}");
    let out = softswitch(&["peers", "--config", c, "--explain", "331"]);
    assert!(text(&out.stdout).contains("no dial peer matches"));

    std::fs::write(&config, base.replace("\"2...\"", "\"2[1-\"")).unwrap();
    let out = softswitch(&["peers", "--config", c]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("softswitch.toml:11:25: destination-pattern `2[1-`, character 2"),
        "{err}"
    );
}

/// The shipped two-site example loads as it is: both configs, both dialplans
/// without a warning, and site A's hunt list for a site-B number.
#[test]
fn the_two_site_example_checks_clean() {
    for site in ["site-a", "site-b"] {
        let config = format!("etc/examples/two-site/{site}/softswitch.toml");
        let out = softswitch(&["check-config", "--config", &config]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let plan = format!("etc/examples/two-site/{site}/extensions.conf");
        let out = softswitch(&["dialplan", "check", &plan]);
        assert!(
            out.status.success() && text(&out.stdout).contains(" 0 errors, 0 warnings"),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let out = softswitch(&[
        "peers",
        "--config",
        "etc/examples/two-site/site-a/softswitch.toml",
        "--explain",
        "201",
    ]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("1. dial peer 1 (ipv4:127.0.0.2:5060"),
        "{shown}"
    );
}

/// `gateway import-ios` on a router's running config: the seed lab's peer
/// becomes a working `[[dial_peer]]`, IOS-only lines are listed as ignored,
/// and a broken pattern is an error at its line and column (exit 1).
#[test]
fn import_ios_turns_router_dial_peers_into_config() {
    let dir = tempfile::tempdir().unwrap();
    let ios = dir.path().join("r1.txt");
    let router = [
        "hostname R1",
        "!",
        "telephony-service",
        " max-ephones 5",
        "!",
        "ephone-dn 1",
        " number 111",
        "!",
        "dial-peer voice 1 voip",
        " destination-pattern 22.",
        " session target ipv4:192.168.100.2",
        "!",
        "dial-peer voice 2 voip",
        " destination-pattern 9T",
        " session protocol sipv2",
        " session target ipv4:192.168.100.3:5070",
        " preference 1",
        " digit-strip",
        " prefix 0",
        " translation-profile outgoing INTL",
        "!",
        "voice translation-rule 10",
        " rule 1 /^0\\(.*\\)/ /00\\1/",
        "!",
        "voice translation-profile INTL",
        " translate called 10",
        "!",
        "end",
    ]
    .join("\n");
    std::fs::write(&ios, &router).unwrap();
    let file = ios.to_str().unwrap();
    let out = softswitch(&["gateway", "import-ios", file]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{file}:9:1: warning: dial peer 1: H.323 peer converted to SIP"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:3: ignored: telephony-service")),
        "{err}"
    );
    // The TOML works as a config: the imported peers route numbers.
    let config = dir.path().join("softswitch.toml");
    let toml = format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n{}",
        text(&out.stdout)
    );
    std::fs::write(&config, toml).unwrap();
    let c = config.to_str().unwrap();
    let out = softswitch(&["peers", "--config", c, "--explain", "912125551234"]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        shown.contains("1. dial peer 2 (ipv4:192.168.100.3:5070"),
        "{shown}"
    );
    assert!(shown.contains("sends 0012125551234"), "{shown}");

    std::fs::write(
        &ios,
        router.replace("destination-pattern 22.", "destination-pattern 2[2-"),
    )
    .unwrap();
    let out = softswitch(&["gateway", "import-ios", file]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{file}:10:23: error: dial peer 1:")),
        "{err}"
    );
}
