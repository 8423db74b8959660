//! Every message of the parser corpus (one per RFC 4475 case, plus interop oddities)
//! sent to the running switch over UDP: invalid requests get the status their file is
//! named after, readable valid requests get an answer that is not a 400, unreadable
//! bytes get nothing, and the switch keeps serving throughout.

use std::net::SocketAddr;
use std::time::Duration;

use softswitch_e2e::net::{headers, status_of};
use softswitch_e2e::{Switch, SwitchOptions, TestNet, UdpClient, workspace};

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = workspace().join("softswitch/tests/data/sip").join(dir);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p: std::path::PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn alive(c: &UdpClient, sw: &Switch, n: usize) -> bool {
    let probe = format!(
        "OPTIONS sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKalive{n}\r\nMax-Forwards: 70\r\n\
         From: <sip:p@pbx.test>;tag=1\r\nTo: <sip:pbx.test>\r\nCall-ID: alive{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        c.local()
    );
    c.request(sw.sip_addr(), &probe, Duration::from_secs(2))
        .and_then(|r| status_of(&r))
        == Some(200)
}

#[test]
fn torture_messages_over_the_wire() {
    let net = TestNet::new();
    let mut sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    let c = UdpClient::bind(SocketAddr::new(net.ip(2).into(), 5070));
    let mut n = 0;

    for (name, bytes) in corpus("invalid") {
        let expected: u16 = name[..3].parse().unwrap();
        let reply = c
            .request(
                sw.sip_addr(),
                &String::from_utf8_lossy(&bytes),
                Duration::from_secs(2),
            )
            .unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(status_of(&reply), Some(expected), "{name}:\n{reply}");
        let reason = reply.lines().next().unwrap_or_default();
        assert!(
            reason.len() > 12,
            "{name}: a reason phrase is expected: {reason}"
        );
        n += 1;
        assert!(alive(&c, &sw, n), "switch stopped answering after {name}");
    }

    for (name, bytes) in corpus("valid") {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let call_id = headers(&text, "Call-ID")[0].to_owned();
        if text.starts_with("SIP/2.0") {
            // A stray response is absorbed silently.
            c.send(sw.sip_addr(), &bytes);
            assert_eq!(
                c.hears_about(&call_id, Duration::from_millis(300)),
                None,
                "{name} was answered"
            );
        } else {
            let reply = c
                .request(sw.sip_addr(), &text, Duration::from_secs(2))
                .unwrap_or_else(|| panic!("{name}: no answer"));
            let status = status_of(&reply).unwrap();
            assert_ne!(status, 400, "{name} is valid but was refused:\n{reply}");
        }
        n += 1;
        assert!(alive(&c, &sw, n), "switch stopped answering after {name}");
    }

    // Earlier INVITEs are never ACKed here, so their failures keep being retransmitted;
    // only a message about a new Call-ID would be an answer to these bytes.
    // A message is identified by its Call-ID, or by its Via branch when it has none.
    let identity = |m: &str| -> String {
        match headers(m, "Call-ID").first() {
            Some(id) => id.to_string(),
            None => headers(m, "Via")
                .first()
                .and_then(|v| v.split("branch=").nth(1))
                .map(|b| b.split([';', ',']).next().unwrap_or_default().to_owned())
                .unwrap_or_default(),
        }
    };
    let earlier: std::collections::HashSet<String> = corpus("invalid")
        .iter()
        .chain(corpus("valid").iter())
        .map(|(_, b)| identity(&String::from_utf8_lossy(b)))
        .collect();
    for (name, bytes) in corpus("drop") {
        c.send(sw.sip_addr(), &bytes);
        let deadline = std::time::Instant::now() + Duration::from_millis(300);
        while let Some(msg) = c.recv(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            assert!(
                earlier.contains(&identity(&msg)),
                "{name} was answered:\n{msg}"
            );
        }
    }
    n += 1;
    assert!(alive(&c, &sw, n));
    assert!(sw.is_running());
    assert!(!sw.log().contains("panicked"), "{}", sw.log());
}

/// Random bytes and random mutations of valid messages never crash the switch.
#[test]
fn garbage_never_crashes_the_switch() {
    let net = TestNet::new();
    let mut sw = Switch::start(SwitchOptions::new(net.switch_ip()));
    let c = UdpClient::bind(SocketAddr::new(net.ip(2).into(), 5070));
    let valid = corpus("valid");
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..3000 {
        let (_, base) = &valid[i % valid.len()];
        let mut m = base.clone();
        for _ in 0..(next() % 8 + 1) {
            let at = (next() as usize) % m.len();
            m[at] = (next() % 256) as u8;
        }
        if i % 5 == 0 {
            m.truncate((next() as usize) % m.len());
        }
        c.send(sw.sip_addr(), &m);
        // Drain whatever came back so the socket buffer never fills.
        while c.recv(Duration::from_millis(1)).is_some() {}
    }
    assert!(alive(&c, &sw, 1), "switch stopped answering");
    assert!(sw.is_running());
    assert!(!sw.log().contains("panicked"), "{}", sw.log());
}
