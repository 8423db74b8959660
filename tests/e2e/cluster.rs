//! Nodes sharing one PostgreSQL database (started by the test) see each other
//! through the nodes table: `softswitch cluster` shows them up, draining,
//! lost when killed and stopped when shut down; a phone registered on one node is
//! reachable through another, and the dialplan's AstDB is one for all nodes;
//! `drain --stop` lets a call finish and then stops the node; a voicemail left on
//! one node reaches the message-waiting subscribers of another (shared spool).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use softswitch_e2e::net::UdpClient;
use softswitch_e2e::process::wait_until;
use softswitch_e2e::raw::subscribe_mwi;
use softswitch_e2e::switch::Database;
use softswitch_e2e::{
    Postgres, Sipp, SippRun, Switch, SwitchOptions, TestNet, scenario, scenario_with_audio,
};

fn node(net: &TestNet, host: u8, name: &str, url: &str) -> Switch {
    let mut o = SwitchOptions::new(net.ip(host));
    o.database = Database::Postgres(url.to_string());
    o.extra = format!("[node]\nname = \"{name}\"\n");
    Switch::start(o)
}

/// `softswitch cluster --json` as seen through `sw`'s config: node → state.
fn members(sw: &Switch) -> BTreeMap<String, String> {
    let out = sw.cli(&["cluster", "--json"]);
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
                v["name"].as_str().unwrap().to_string(),
                v["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn shows(sw: &Switch, name: &str, state: &str) -> bool {
    members(sw).get(name).is_some_and(|s| s == state)
}

#[test]
fn nodes_on_one_database_see_each_other_drain_get_lost_and_stop() {
    let pg = Postgres::start(26432 + (std::process::id() % 1000) as u16);
    let url = pg.create_database("cluster");
    let net = TestNet::new();
    let mut n1 = node(&net, 1, "node-1", &url);
    let mut n2 = node(&net, 2, "node-2", &url);
    assert!(
        wait_until(Duration::from_secs(5), || shows(&n1, "node-1", "up")
            && shows(&n1, "node-2", "up")),
        "{:?}",
        members(&n1)
    );

    let out = n2.cli(&["drain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(5), || shows(&n1, "node-2", "draining")),
        "{:?}",
        members(&n1)
    );

    n2.kill();
    let killed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || shows(&n1, "node-2", "lost")),
        "{:?}",
        members(&n1)
    );
    eprintln!(
        "node-2 seen lost {:.1} s after it was killed",
        killed.elapsed().as_secs_f64()
    );
    // node-1's operator hears of it as an event.
    let mut events = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(3), || {
            events = softswitch_e2e::http::get(n1.admin_addr(), "/api/events").json();
            events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "node_lost" && e["detail"]["name"] == "node-2")
        }),
        "{events}"
    );

    n1.stop();
    assert_eq!(
        members(&n1).get("node-1").map(String::as_str),
        Some("stopped")
    );
    let table = String::from_utf8_lossy(&n1.cli(&["cluster"]).stdout).into_owned();
    assert!(
        table.contains("node-1") && table.contains("lost"),
        "{table}"
    );
}

const SHARED_PLAN: &str = "[internal]
exten => _1XXX,1,Dial(SIP/${EXTEN},10)
 same => n,Hangup()
exten => 7000,1,Set(DB(shared/key)=from-node-1)
 same => n,Busy()
exten => 7001,1,GotoIf($[\"${DB(shared/key)}\" = \"from-node-1\"]?seen)
 same => n,Congestion()
 same => n(seen),Busy()
";

fn planned_node(net: &TestNet, host: u8, name: &str, url: &str) -> Switch {
    let mut o = SwitchOptions::new(net.ip(host));
    o.database = Database::Postgres(url.to_string());
    o.extra = format!("[node]\nname = \"{name}\"\n");
    o.dialplan = SHARED_PLAN.into();
    Switch::start(o)
}

fn phone(net: &TestNet, host: u8) -> SocketAddr {
    SocketAddr::new(net.ip(host).into(), 5070)
}

/// A caller (1001, from host 6) through `sw`: the template's `[final]` is the
/// status it must get.
fn refused_call(sw: &Switch, net: &TestNet, dialed: &str, status: u16) -> SippRun {
    let path = softswitch_e2e::refused_scenario(status, sw.dir.path());
    Sipp::new(&path, phone(net, 6), sw.sip_addr())
        .dialing(dialed, "1001")
        .run()
}

#[test]
fn a_phone_registered_on_one_node_is_called_through_another_and_astdb_is_shared() {
    let pg = Postgres::start(27432 + (std::process::id() % 1000) as u16);
    let url = pg.create_database("shared");
    let net = TestNet::new();
    let n1 = planned_node(&net, 1, "node-1", &url);
    let mut n2 = planned_node(&net, 2, "node-2", &url);

    // 1002 registers with node-1 only.
    let bob_addr = phone(&net, 5);
    let reg = Sipp::new(scenario("register.xml"), bob_addr, n1.sip_addr())
        .user("1002", "secret1002")
        .key("expires", "600")
        .run();
    assert!(reg.succeeded(), "1002 did not register: {reg}");
    let bob = Sipp::new(scenario("call_callee.xml"), bob_addr, n1.sip_addr())
        .arg("-rtp_echo")
        .media_at(6000)
        .spawn();
    std::thread::sleep(Duration::from_millis(500));

    // 1001 calls 1002 through node-2, which learnt the binding from the database.
    let caller = scenario_with_audio("call_caller.xml", n2.dir.path());
    let alice = Sipp::new(&caller, phone(&net, 6), n2.sip_addr())
        .dialing("1002", "1001")
        .media_at(7000)
        .run();
    let bob = bob.wait();
    assert!(alice.succeeded(), "caller: {alice}\n{}", n2.log());
    assert!(bob.succeeded(), "callee: {bob}\n{}", n2.log());

    // A DB() value stored by a call on node-1 is read by a call on node-2.
    let stored = refused_call(&n1, &net, "7000", 486);
    assert!(stored.succeeded(), "{stored}\n{}", n1.log());
    let mut seen = false;
    for _ in 0..10 {
        if refused_call(&n2, &net, "7001", 486).succeeded() {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seen, "node-2 never saw node-1's DB() value\n{}", n2.log());

    // `drain --stop` with a call in progress on node-2: the call finishes, then
    // node-2 exits and says it stopped.
    let bob = Sipp::new(scenario("call_callee.xml"), bob_addr, n1.sip_addr())
        .arg("-rtp_echo")
        .media_at(6000)
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    let alice = Sipp::new(&caller, phone(&net, 6), n2.sip_addr())
        .dialing("1002", "1001")
        .media_at(7000)
        .spawn();
    std::thread::sleep(Duration::from_millis(800));
    let out = n2.cli(&["drain", "--stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stops after its 1 call"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(n2.is_running(), "node-2 stopped with a call in progress");
    let alice = alice.wait();
    let bob = bob.wait();
    assert!(
        alice.succeeded(),
        "the call in progress: {alice}\n{}",
        n2.log()
    );
    assert!(bob.succeeded(), "{bob}");
    assert!(
        wait_until(Duration::from_secs(5), || !n2.is_running()),
        "node-2 did not stop after its last call\n{}",
        n2.log()
    );
    assert!(n2.log().contains("the last call has ended"), "{}", n2.log());
    assert!(
        wait_until(Duration::from_secs(5), || shows(&n1, "node-2", "stopped")),
        "{:?}",
        members(&n1)
    );
}

#[test]
fn a_voicemail_left_on_one_node_lights_a_phone_subscribed_on_another() {
    let pg = Postgres::start(29432 + (std::process::id() % 1000) as u16);
    let url = pg.create_database("voicemail");
    let net = TestNet::new();
    let spool = tempfile::tempdir().unwrap();
    let sounds = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../etc/sounds")
        .canonicalize()
        .unwrap();
    let start = |host: u8, name: &str| {
        let mut o = SwitchOptions::new(net.ip(host));
        o.database = Database::Postgres(url.clone());
        o.extra = format!(
            "[node]\nname = \"{name}\"\n\n[media]\nsounds = \"{}\"\n\n\
             [voicemail]\nspool = \"{}\"\nmin_message = 0.5\n\n\
             [[mailbox]]\nmailbox = \"1002\"\npin = \"4242\"\n",
            sounds.display(),
            spool.path().display()
        );
        o.dialplan =
            "[internal]\nexten => 7100,1,VoiceMail(1002@default,s)\n same => n,Hangup()\n".into();
        Switch::start(o)
    };
    let n1 = start(1, "node-1");
    let n2 = start(2, "node-2");

    // 1002's desk phone subscribes to its mailbox on node-2.
    let desk = UdpClient::bind(SocketAddr::new(net.ip(51).into(), 0));
    subscribe_mwi(&desk, n2.sip_addr(), "1002");
    let first = desk
        .next_notify(Duration::from_secs(5))
        .expect("a NOTIFY after SUBSCRIBE");
    assert!(first.contains("Messages-Waiting: no"), "{first}");

    // 1001 leaves a message through node-1.
    let caller = scenario_with_audio("call_caller.xml", n1.dir.path());
    let alice = Sipp::new(&caller, phone(&net, 6), n1.sip_addr())
        .dialing("7100", "1001")
        .media_at(7000)
        .run();
    assert!(alice.succeeded(), "{alice}\n{}", n1.log());

    // node-2 tells the phone subscribed there.
    let told = desk
        .next_notify(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NOTIFY from node-2\n{}\n{}", n1.log(), n2.log()));
    assert!(told.contains("Messages-Waiting: yes"), "{told}");
    assert!(told.contains("Voice-Message: 1/0"), "{told}");

    // That count is node-2's copy of the voicemail table, re-read on node-1's
    // announcement: the message is a row there, filed by node-1.
    let rows = pg.query(
        "voicemail",
        "SELECT mailbox, mailbox_context, folder, msgnum, recording, callerid, node, \
         duration >= 1, msg_id <> '' FROM voicemail",
    );
    let fields: Vec<&str> = rows.split('|').collect();
    assert_eq!(
        fields.iter().map(|f| f.trim()).collect::<Vec<_>>()[..5],
        [
            "1002",
            "default",
            "INBOX",
            "0",
            "default/1002/INBOX/msg0000.wav"
        ],
        "{rows}"
    );
    assert!(fields[5].contains("1001"), "{rows}");
    assert_eq!(fields[6..], ["node-1", "t", "t"], "{rows}");
    assert!(
        spool
            .path()
            .join("default/1002/INBOX/msg0000.wav")
            .is_file()
    );
}
