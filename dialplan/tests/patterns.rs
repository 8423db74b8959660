//! Pattern matching and Asterisk's selection order (dialplan.md §4, §5.1), the
//! include search (§5.2, §5.4), and the index against a naive reference.

mod common;

use common::*;
use dialplan::lookup::{Want, When};
use dialplan::pattern::{NameMatcher, cid_matches, cmp_extension};
use jiff::tz::TimeZone;
use proptest::prelude::*;

/// Which extension (by name) provides priority 1 for `dialed` in `[t]`.
fn winner(exts: &[&str], dialed: &str, caller: Option<&str>) -> Option<String> {
    let mut text = String::from("[t]\n");
    for e in exts {
        text.push_str(&format!("exten => {e},1,NoOp({e})\n"));
    }
    let p = plan(&text);
    p.find("t", dialed, Want::Priority(1), caller, None)
        .map(|f| f.extension.display_name())
}

#[test]
fn worked_examples_of_section_5_1() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("1234", &["_X.", "1234"], "1234"),
        ("1234", &["_1XXX", "_12."], "_12."),
        ("234", &["_XXX", "_ZXX", "_NXX", "_[2-5]XX"], "_[2-5]XX"),
        ("934", &["_XXX", "_ZXX", "_NXX", "_[2-5]XX"], "_NXX"),
        ("15", &["_[13]X", "_[12]X"], "_[12]X"),
        ("1234", &["_1.", "_1XXX"], "_1XXX"),
        ("12345", &["_1.", "_1XXX"], "_1."),
        ("12", &["_1.", "_1!"], "_1."),
        ("1", &["_1.", "_1!"], "_1!"),
        ("5", &["_X", "_X!"], "_X!"),
        ("5551234", &["555-1234", "_NXX-XXXX"], "555-1234"),
        ("134", &["_XXX", "_ZXX"], "_ZXX"),
        ("034", &["_XXX", "_ZXX", "_NXX"], "_XXX"),
    ];
    for (dialed, exts, want) in cases {
        assert_eq!(
            winner(exts, dialed, None).as_deref(),
            Some(*want),
            "dialing {dialed} with {exts:?}"
        );
    }
}

#[test]
fn caller_id_variant_wins_and_empty_cid_rules() {
    assert_eq!(
        winner(&["100/1001", "100"], "100", Some("1001")).as_deref(),
        Some("100/1001")
    );
    assert_eq!(
        winner(&["100/1001", "100"], "100", Some("1002")).as_deref(),
        Some("100")
    );
    assert_eq!(
        winner(&["100/_10XX", "100"], "100", Some("1099")).as_deref(),
        Some("100/_10XX")
    );
    assert_eq!(
        winner(&["100/", "100"], "100", None).as_deref(),
        Some("100/")
    );
    assert_eq!(
        winner(&["100/", "100"], "100", Some("5")).as_deref(),
        Some("100")
    );
    assert_eq!(winner(&["100/1001"], "100", None), None);
}

#[test]
fn non_matches() {
    assert_eq!(winner(&["_1."], "1", None), None);
    assert_eq!(winner(&["_1XXX"], "123", None), None);
    assert_eq!(winner(&["_X."], "s", None), None);
    assert_eq!(winner(&["_[12"], "1", None), None);
    assert_eq!(winner(&["abc"], "ABC", None), None);
    assert_eq!(winner(&["_."], "h", None).as_deref(), Some("_."));
    assert_eq!(winner(&["_!"], "i", None).as_deref(), Some("_!"));
}

#[test]
fn equal_patterns_are_one_extension() {
    let p = plan(
        "[t]\nexten => _1X,1,NoOp(a)\nexten => _1[0-9],2,NoOp(b)\nexten => _1[0-9],1,NoOp(dup)\n",
    );
    let ctx = p.context("t").unwrap();
    assert_eq!(ctx.extensions.len(), 1);
    assert_eq!(ctx.extensions[0].priorities.len(), 2);
    assert_eq!(ctx.extensions[0].priorities[&1].data, "a");
}

#[test]
fn extension_order_in_a_context() {
    let p = plan(
        "[t]\nexten => _X.,1,NoOp\nexten => _1!,1,NoOp\nexten => 1234,1,NoOp\nexten => _NXX,1,NoOp\nexten => _[2-5]XX,1,NoOp\nexten => 100/1001,1,NoOp\nexten => 100,1,NoOp\n",
    );
    let names: Vec<String> = p
        .context("t")
        .unwrap()
        .extensions
        .iter()
        .map(|e| e.display_name())
        .collect();
    assert_eq!(
        names,
        ["100/1001", "100", "1234", "_1!", "_[2-5]XX", "_NXX", "_X."]
    );
}

#[test]
fn priority_fallback_and_includes() {
    // §5.2: 1234 has only priority 1; _X. supplies 2 and 3.
    let r = run(
        "[t]\nexten => 1234,1,NoOp(lit)\nexten => _X.,1,NoOp(p1)\nexten => _X.,2,NoOp(p2)\nexten => _X.,3,Hangup()\n",
        "t",
        "1234",
    );
    assert_eq!(r.apps(), ["NoOp(lit)", "NoOp(p2)", "Hangup()"]);
}

#[test]
fn local_pattern_beats_included_literal_and_first_include_wins() {
    let text = "[in]\ninclude => a\ninclude => b\nexten => _X.,1,NoOp(local)\n[a]\ninclude => a2\n[a2]\nexten => _2XX,1,NoOp(a2)\n[b]\nexten => 200,1,NoOp(b)\nexten => 1234,1,NoOp(b-lit)\n";
    let p = plan(text);
    let f = |x: &str| {
        p.find("in", x, Want::Priority(1), None, None)
            .map(|f| f.priority.data.clone())
    };
    assert_eq!(f("1234").as_deref(), Some("local"));
    let q = plan(
        "[in]\ninclude => a\ninclude => b\n[a]\ninclude => a2\n[a2]\nexten => _2XX,1,NoOp(a2)\n[b]\nexten => 200,1,NoOp(b)\n",
    );
    // Depth-first: a's include a2 is searched before b, so the pattern wins.
    assert_eq!(
        q.find("in", "200", Want::Priority(1), None, None)
            .map(|f| f.priority.data.clone())
            .as_deref(),
        Some("a2")
    );
}

#[test]
fn include_cycles_are_harmless() {
    let p = plan("[in]\ninclude => a\n[a]\ninclude => in\nexten => 5,1,NoOp(a)\n");
    assert!(p.find("in", "5", Want::Priority(1), None, None).is_some());
    assert!(p.find("in", "6", Want::Priority(1), None, None).is_none());
}

#[test]
fn timed_includes() {
    let p = plan(
        "[in]\ninclude => day,08:00-18:00,mon-fri,*,*\ninclude => night\ninclude => never,*,*,31,feb\n[day]\nexten => 0,1,NoOp(day)\n[night]\nexten => 0,1,NoOp(night)\n[never]\nexten => 9,1,NoOp(never)\n",
    );
    let tz = TimeZone::UTC;
    let at = |s: &str| When {
        now: s.parse().unwrap(),
        tz: &tz,
    };
    let who = |w| {
        p.find("in", "0", Want::Priority(1), None, Some(w))
            .map(|f| f.priority.data.clone())
    };
    assert_eq!(who(at("2026-08-03T10:00:00Z")).as_deref(), Some("day"));
    assert_eq!(who(at("2026-08-03T20:00:00Z")).as_deref(), Some("night"));
    assert_eq!(who(at("2026-08-08T10:00:00Z")).as_deref(), Some("night"));
    assert!(
        p.find(
            "in",
            "9",
            Want::Priority(1),
            None,
            Some(at("2026-02-28T10:00:00Z"))
        )
        .is_none()
    );
}

#[test]
fn labels_found_through_pattern_and_include() {
    let p = plan("[in]\ninclude => sub\n[sub]\nexten => _5XX,1,NoOp\n same => n(here),NoOp(x)\n");
    let f = p
        .find("in", "512", Want::Label("here"), None, None)
        .unwrap();
    assert_eq!(f.priority.number, 2);
    assert_eq!(f.context.name, "sub");
}

#[test]
fn ten_thousand_extensions_resolve() {
    let mut text = String::from("[big]\n");
    for i in 0..10_000 {
        text.push_str(&format!("exten => {},1,NoOp({i})\n", 100_000 + i));
    }
    for i in 0..2_000 {
        text.push_str(&format!("exten => _{}XX.,1,NoOp(p{i})\n", 10_000 + i));
    }
    text.push_str("exten => _X.,1,NoOp(any)\n");
    let p = plan(&text);
    let got = |x: &str| {
        p.find("big", x, Want::Priority(1), None, None)
            .unwrap()
            .priority
            .data
            .clone()
    };
    assert_eq!(got("105000"), "5000");
    assert_eq!(got("10500123"), "p500");
    assert_eq!(got("95"), "any");
}

/// An extension as written: name and optional caller-id text.
type Ext = (String, Option<String>);

/// Naive reference: sort all extensions with the comparator, scan linearly.
fn naive<'a>(exts: &'a [Ext], dialed: &str, caller: Option<&str>) -> Option<&'a Ext> {
    let mut v: Vec<(NameMatcher, Option<NameMatcher>, &Ext)> = exts
        .iter()
        .map(|e| {
            (
                NameMatcher::new(&e.0).0,
                e.1.as_deref().map(|c| NameMatcher::new(c).0),
                e,
            )
        })
        .collect();
    v.sort_by(|a, b| cmp_extension((&a.0, a.1.as_ref()), (&b.0, b.1.as_ref())));
    v.into_iter()
        .find(|(m, c, _)| m.matches(dialed) && c.as_ref().is_none_or(|c| cid_matches(c, caller)))
        .map(|(_, _, e)| e)
}

fn element() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]".prop_map(|s| s),
        Just("X".to_string()),
        Just("Z".to_string()),
        Just("N".to_string()),
        Just("[1-3]".to_string()),
        Just("[24]".to_string()),
        Just("[0-9]".to_string()),
        Just("-".to_string()),
    ]
}

fn ext_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,4}".prop_map(|s| s),
        (
            prop::collection::vec(element(), 0..4),
            prop_oneof![Just(""), Just("."), Just("!")]
        )
            .prop_map(|(els, tail)| format!("_{}{}", els.concat(), tail)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn index_agrees_with_naive_reference(
        names in prop::collection::vec((ext_name(), prop::option::of(prop_oneof![Just("1000".to_string()), Just("_1XXX".to_string()), Just("".to_string())])), 1..25),
        dialed in "[0-9]{0,5}",
        caller in prop::option::of(prop_oneof![Just("1000"), Just("2000")]),
    ) {
        // Deduplicate equal extensions: the first definition wins, as at load.
        let mut text = String::from("[t]\n");
        let mut kept: Vec<(String, Option<String>)> = Vec::new();
        for (n, c) in &names {
            let nm = NameMatcher::new(n).0;
            let cm = c.as_deref().map(|c| NameMatcher::new(c).0);
            let dup = kept.iter().any(|(kn, kc)| {
                let kcm = kc.as_deref().map(|c| NameMatcher::new(c).0);
                cmp_extension((&nm, cm.as_ref()), (&NameMatcher::new(kn).0, kcm.as_ref())).is_eq()
            });
            if dup { continue; }
            kept.push((n.clone(), c.clone()));
            let full = match c { Some(c) => format!("{n}/{c}"), None => n.clone() };
            text.push_str(&format!("exten => {full},1,NoOp({})\n", kept.len() - 1));
        }
        let p = plan(&text);
        let got = p.find("t", &dialed, Want::Priority(1), caller, None).map(|f| f.priority.data.clone());
        let want = naive(&kept, &dialed, caller).map(|e| kept.iter().position(|k| k == e).unwrap().to_string());
        prop_assert_eq!(got, want);
    }
}
