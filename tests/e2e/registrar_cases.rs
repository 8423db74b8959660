//! The registrar suite, run once on SQLite and once on PostgreSQL: the same cases, the
//! same binary, only the database URL differs.

use std::net::SocketAddr;
use std::time::Duration;

use softswitch_e2e::net::{headers, status_of};
use softswitch_e2e::process::wait_until;
use softswitch_e2e::raw::Registration;
use softswitch_e2e::{
    Database, Postgres, Sipp, Switch, SwitchOptions, TestNet, UdpClient, scenario,
};

/// Where a case's switch keeps its state.
pub struct Ctx<'a> {
    pub pg: Option<&'a Postgres>,
}

impl Ctx<'_> {
    pub fn switch(
        &self,
        case: &str,
        net: &TestNet,
        tweak: impl FnOnce(&mut SwitchOptions),
    ) -> Switch {
        let mut opts = SwitchOptions::new(net.switch_ip());
        if let Some(pg) = self.pg {
            opts.database = Database::Postgres(pg.create_database(case));
        }
        tweak(&mut opts);
        Switch::start(opts)
    }
}

fn client(net: &TestNet, host: u8, port: u16) -> SocketAddr {
    SocketAddr::new(net.ip(host).into(), port)
}

fn register(
    sw: &Switch,
    net: &TestNet,
    host: u8,
    user: &str,
    password: &str,
    expires: u32,
) -> softswitch_e2e::SippRun {
    Sipp::new(
        scenario("register.xml"),
        client(net, host, 5070),
        sw.sip_addr(),
    )
    .user(user, password)
    .key("expires", &expires.to_string())
    .run()
}

pub fn register_and_list(ctx: &Ctx) {
    let net = TestNet::new();
    let sw = ctx.switch("register_and_list", &net, |_| {});
    let run = register(&sw, &net, 2, "1001", "secret1001", 600);
    assert!(run.succeeded(), "{run}");
    let regs = sw.registrations();
    assert_eq!(regs.len(), 1, "{regs:?}");
    assert_eq!(regs[0]["aor"], "1001@pbx.test");
    assert_eq!(
        regs[0]["contact"],
        format!("sip:1001@{}:5070;transport=UDP", net.ip(2))
    );
    let left = regs[0]["expires_in"].as_i64().unwrap();
    assert!((590..=600).contains(&left), "expires_in {left}");
    assert_eq!(regs[0]["source"], format!("udp:{}:5070", net.ip(2)));
    // The 200 lists the binding with its expiry (RFC 3261 §10.3 step 8).
    let ok = run
        .received()
        .into_iter()
        .find(|m| status_of(m) == Some(200))
        .expect("a 200");
    assert!(
        headers(&ok, "Contact")
            .iter()
            .any(|c| c.contains(";expires=")),
        "{ok}"
    );
    assert!(!headers(&ok, "Date").is_empty(), "{ok}");
}

pub fn wrong_password_is_refused(ctx: &Ctx) {
    let net = TestNet::new();
    let sw = ctx.switch("wrong_password_is_refused", &net, |_| {});
    let run = Sipp::new(
        scenario("register_rejected.xml"),
        client(&net, 2, 5070),
        sw.sip_addr(),
    )
    .user("1001", "not-the-password")
    .key("expires", "600")
    .run();
    assert!(run.succeeded(), "{run}");
    assert!(sw.registrations().is_empty());
}

/// An unknown user gets exactly what a known user with a wrong password gets: the same
/// status, the same headers in the same order, the same challenges but for the nonce.
pub fn unknown_user_is_indistinguishable(ctx: &Ctx) {
    let net = TestNet::new();
    let sw = ctx.switch("unknown_user_is_indistinguishable", &net, |_| {});
    let c = UdpClient::bind(client(&net, 2, 5070));
    let contact = format!("<sip:x@{}>", c.local());
    let mut known = Registration::new(&c, sw.sip_addr(), "1001", "pbx.test");
    let (first_known, after_known) = known.register("wrong", Some(&contact), Some(600));
    let mut unknown = Registration::new(&c, sw.sip_addr(), "7777", "pbx.test");
    let (first_unknown, after_unknown) = unknown.register("wrong", Some(&contact), Some(600));
    let shape = |m: &str| -> Vec<String> {
        m.split("\r\n")
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let name = l.split(':').next().unwrap_or_default();
                match name {
                    // Values that differ per request by nature.
                    "Via" | "From" | "To" | "Call-ID" | "CSeq" => name.to_owned(),
                    "WWW-Authenticate" => {
                        let nonce =
                            softswitch_e2e::raw::challenge_param(l, "nonce").unwrap_or_default();
                        l.replace(&nonce, "NONCE")
                    }
                    _ => l.to_owned(),
                }
            })
            .collect()
    };
    assert_eq!(shape(&first_known), shape(&first_unknown));
    let (after_known, after_unknown) =
        (after_known.expect("answer"), after_unknown.expect("answer"));
    assert_eq!(status_of(&after_known), Some(401), "{after_known}");
    assert_eq!(shape(&after_known), shape(&after_unknown));
    assert!(sw.registrations().is_empty());
}

pub fn expiry_limits(ctx: &Ctx) {
    let net = TestNet::new();
    let sw = ctx.switch("expiry_limits", &net, |o| {
        o.registrar = "min_expires = 2\nmax_expires = 120\ndefault_expires = 60\n".into();
    });
    let brief = Sipp::new(
        scenario("register_too_brief.xml"),
        client(&net, 2, 5070),
        sw.sip_addr(),
    )
    .user("1001", "secret1001")
    .key("expires", "1")
    .run();
    assert!(brief.succeeded(), "{brief}");
    let too_brief = brief
        .received()
        .into_iter()
        .find(|m| status_of(m) == Some(423))
        .expect("423");
    assert_eq!(headers(&too_brief, "Min-Expires"), vec!["2"]);

    // Longer than max is cut to max.
    assert!(register(&sw, &net, 3, "1002", "secret1002", 7200).succeeded());
    let left = sw.registrations()[0]["expires_in"].as_i64().unwrap();
    assert!((110..=120).contains(&left), "{left}");

    // A short registration disappears once it expires.
    assert!(register(&sw, &net, 4, "1003", "secret1003", 2).succeeded());
    assert_eq!(sw.contacts_of("1003").len(), 1);
    assert!(
        wait_until(Duration::from_secs(10), || sw
            .contacts_of("1003")
            .is_empty()),
        "binding did not expire"
    );
}

pub fn unregister_all(ctx: &Ctx) {
    let net = TestNet::new();
    let sw = ctx.switch("unregister_all", &net, |_| {});
    assert!(register(&sw, &net, 2, "1001", "secret1001", 600).succeeded());
    assert!(register(&sw, &net, 3, "1001", "secret1001", 600).succeeded());
    assert!(register(&sw, &net, 4, "1002", "secret1002", 600).succeeded());
    assert_eq!(sw.contacts_of("1001").len(), 2, "two phones for one AOR");
    let run = Sipp::new(
        scenario("unregister_all.xml"),
        client(&net, 2, 5070),
        sw.sip_addr(),
    )
    .user("1001", "secret1001")
    .run();
    assert!(run.succeeded(), "{run}");
    assert!(sw.contacts_of("1001").is_empty());
    assert_eq!(sw.contacts_of("1002").len(), 1, "other AORs untouched");
}

pub fn refresh_and_query(ctx: &Ctx) {
    let net = TestNet::new();
    let sw = ctx.switch("refresh_and_query", &net, |_| {});
    let c = UdpClient::bind(client(&net, 2, 5070));
    let contact = format!("<sip:1001@{}>", c.local());
    let mut reg = Registration::new(&c, sw.sip_addr(), "1001", "pbx.test");
    let (_, ok) = reg.register("secret1001", Some(&contact), Some(300));
    assert_eq!(ok.as_deref().and_then(status_of), Some(200));
    let (_, again) = reg.register("secret1001", Some(&contact), Some(900));
    let again = again.expect("refresh answered");
    assert_eq!(status_of(&again), Some(200), "{again}");
    assert_eq!(
        sw.contacts_of("1001").len(),
        1,
        "a refresh updates, it does not add"
    );
    // A REGISTER without Contact is a query (§10.2.3): 200 listing the binding.
    let (_, query) = reg.register("secret1001", None, None);
    let query = query.expect("query answered");
    assert_eq!(status_of(&query), Some(200));
    let listed = headers(&query, "Contact");
    assert_eq!(listed.len(), 1, "{query}");
    assert!(listed[0].starts_with(&contact), "{query}");
    // The same Call-ID with an old CSeq is out of order (§10.3 step 7).
    reg.cseq = 1;
    let (_, stale) = reg.register("secret1001", Some(&contact), Some(300));
    assert_eq!(stale.as_deref().and_then(status_of), Some(400));
}

/// Bindings live in the database: a graceful restart and a crash right after the 200
/// both keep them.
pub fn restart_keeps_bindings(ctx: &Ctx) {
    let net = TestNet::new();
    let mut sw = ctx.switch("restart_keeps_bindings", &net, |_| {});
    assert!(register(&sw, &net, 2, "1001", "secret1001", 600).succeeded());
    sw.restart();
    assert_eq!(
        sw.contacts_of("1001").len(),
        1,
        "after restart:\n{}",
        sw.log()
    );
    assert!(register(&sw, &net, 3, "1002", "secret1002", 600).succeeded());
    sw.kill();
    let mut sw2 = sw;
    sw2.restart();
    assert_eq!(
        sw2.contacts_of("1002").len(),
        1,
        "a 200 OK means committed, even across a crash"
    );
    // The restarted node serves the restored bindings itself (a query lists them).
    let c = UdpClient::bind(client(&net, 4, 5070));
    let mut reg = Registration::new(&c, sw2.sip_addr(), "1001", "pbx.test");
    let (_, query) = reg.register("secret1001", None, None);
    let query = query.expect("query answered");
    assert_eq!(headers(&query, "Contact").len(), 1, "{query}");
}
