//! The SIP parser against the checked-in corpus (one message per RFC 4475 torture case
//! plus interop oddities). The file's directory says what must happen to it:
//! `valid/` parses and validates, `invalid/NNN-*` is refused with status NNN, `drop/`
//! cannot be indexed and is discarded.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use softswitch::sip::wire::{Framing, Message, fuzz, unsupported_requirements, validate_request};

fn corpus(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", root.display());
    files
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn valid_messages_parse_and_validate() {
    for (path, data) in corpus("valid") {
        let msg = Message::parse(Bytes::from(data), Framing::Datagram)
            .unwrap_or_else(|e| panic!("{}: {e}", name(&path)));
        if msg.is_request() {
            if let Err(r) = validate_request(&msg) {
                panic!("{}: refused with {r}", name(&path));
            }
        } else {
            msg.vias()
                .unwrap_or_else(|e| panic!("{}: {e}", name(&path)));
            msg.cseq()
                .unwrap_or_else(|e| panic!("{}: {e}", name(&path)));
        }
    }
}

#[test]
fn invalid_requests_get_the_named_status() {
    for (path, data) in corpus("invalid") {
        let file = name(&path);
        let expected: u16 = file[..3].parse().expect("file name starts with the status");
        let msg = Message::parse(Bytes::from(data), Framing::Datagram).unwrap_or_else(|e| {
            panic!("{file}: could not be indexed ({e}), so it cannot be answered")
        });
        let status = match validate_request(&msg) {
            Err(r) => {
                assert!(!r.reason.is_empty(), "{file}: empty reason phrase");
                r.status
            }
            Ok(_) if !unsupported_requirements(&msg, &[]).is_empty() => 420,
            Ok(_) => panic!("{file}: accepted, expected {expected}"),
        };
        assert_eq!(status, expected, "{file}");
    }
}

#[test]
fn unreadable_messages_are_dropped() {
    for (path, data) in corpus("drop") {
        assert!(
            Message::parse(Bytes::from(data), Framing::Datagram).is_err(),
            "{} was indexed",
            name(&path)
        );
    }
}

#[test]
fn specific_readings_of_tortuous_messages() {
    let read = |f: &str| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/sip/valid")
            .join(f);
        Message::parse(Bytes::from(std::fs::read(p).unwrap()), Framing::Datagram).unwrap()
    };
    let m = read("tortuous-invite.sip");
    let heads = validate_request(&m).unwrap();
    assert_eq!(heads.cseq.seq, 9);
    assert_eq!(heads.to.tag(), Some("1918181833n"));
    assert_eq!(heads.from.display.as_deref(), Some("Bob \"the tester\" B"));
    assert_eq!(m.vias().unwrap().len(), 3);
    assert_eq!(m.max_forwards().unwrap().unwrap(), 68);
    assert!(m.body().starts_with(b"v=0"));
    assert!(m.contacts().is_ok());

    let dbl = read("extra-octets-after-body.sip");
    assert!(
        dbl.body().is_empty(),
        "octets past Content-Length belong to nobody"
    );

    let lf = read("bare-lf-line-ends.sip");
    assert_eq!(lf.call_id(), Some("lf.1"));
}

#[test]
fn the_fuzz_entry_point_survives_the_corpus_and_its_mutations() {
    let mut all = Vec::new();
    for dir in ["valid", "invalid", "drop"] {
        all.extend(corpus(dir));
    }
    for (_, data) in &all {
        fuzz::exercise(data);
        // Every truncation, and each byte flipped to a few hostile values.
        // Long messages get proportionally fewer cuts so the test stays quick.
        let step = (data.len() / 96).max(1);
        for cut in (0..data.len()).step_by(step) {
            fuzz::exercise(&data[..cut]);
        }
        for i in (0..data.len()).step_by(step * 2) {
            for b in [b'\r', b'\n', b' ', b',', b';', b'"', b'<', 0x00, 0xff] {
                let mut m = data.clone();
                m[i] = b;
                fuzz::exercise(&m);
            }
        }
    }
}
