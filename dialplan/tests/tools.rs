//! The three authoring commands as a user runs them: exact output and exit codes.

use std::fs;
use std::path::{Path, PathBuf};

use dialplan::tools::{TraceOptions, check, show, trace};

const PLAN: &str = "\
[globals]
TRUNK=PEER
[internal]
exten => 1001,1,NoOp(call ${EXTEN})
 same => n,Dial(PJSIP/1001&${TRUNK}/2001,20,tT)
 same => n,GotoIf($[\"${DIALSTATUS}\" = \"BUSY\"]?busy)
 same => n,Hangup()
 same => n(busy),Busy(2)
exten => h,1,NoOp(end ${HANGUPCAUSE})
";

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("extensions.conf");
    fs::write(&p, text).unwrap();
    p
}

fn out_of(f: impl FnOnce(&mut Vec<u8>) -> i32) -> (i32, String) {
    let mut buf = Vec::new();
    let code = f(&mut buf);
    (code, String::from_utf8(buf).unwrap())
}

fn opts(file: PathBuf, exten: &str) -> TraceOptions {
    TraceOptions {
        file,
        context: "internal".into(),
        exten: exten.into(),
        now: Some("2026-08-03T10:00:00Z".parse().unwrap()),
        time_zone: Some(jiff::tz::TimeZone::UTC),
        ..Default::default()
    }
}

#[test]
fn trace_stops_at_dial_without_status() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), PLAN);
    let (code, out) = out_of(|o| trace(&opts(f, "1001"), o));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Executing [1001@internal:1] NoOp(\"Trace/trace-00000001\", \"call 1001\")\n\
         Executing [1001@internal:2] Dial(\"Trace/trace-00000001\", \"PJSIP/1001&PEER/2001,20,tT\")\n\
         == Dial SIP/1001 & PEER/2001 (timeout 20, options \"tT\"): the dry run stops here; use --dial-status to go on\n"
    );
}

#[test]
fn trace_with_dial_status_runs_on_and_through_h() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), PLAN);
    let mut o = opts(f, "1001");
    o.dial_status = Some("busy".into());
    let (code, out) = out_of(|w| trace(&o, w));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[2..],
        [
            "Executing [1001@internal:3] GotoIf(\"Trace/trace-00000001\", \"1?busy\")",
            "Executing [1001@internal:5] Busy(\"Trace/trace-00000001\", \"2\")",
            "Executing [h@internal:1] NoOp(\"Trace/trace-00000001\", \"end 17\")",
            "== Call ended: busy, cause 17 (USER_BUSY); an unanswered SIP caller gets 486 Busy Here",
        ]
    );
}

#[test]
fn trace_json_lines() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), PLAN);
    let mut o = opts(f.clone(), "1001");
    o.json = true;
    let (_, out) = out_of(|w| trace(&o, w));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"context":"internal","exten":"1001","priority":1,"app":"NoOp","args":"call 1001"}"#,
            r#"{"context":"internal","exten":"1001","priority":2,"app":"Dial","args":"PJSIP/1001&PEER/2001,20,tT"}"#,
            r#"{"outcome":"dial","dial_targets":["SIP/1001","PEER/2001"],"dial_timeout":"20","dial_options":"tT"}"#,
        ]
    );
    o.dial_status = Some("NOANSWER".into());
    let (_, out) = out_of(|w| trace(&o, w));
    assert_eq!(
        out.lines().last().unwrap(),
        r#"{"outcome":"hangup","cause":19}"#
    );
    let mut o = opts(f, "999");
    o.json = true;
    let (_, out) = out_of(|w| trace(&o, w));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            r#"{"context":"internal","exten":"h","priority":1,"app":"NoOp","args":"end 1"}"#,
            r#"{"outcome":"no_such_extension","cause":1}"#
        ]
    );
}

#[test]
fn trace_variables_globals_db_and_callerid() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "[c]\nexten => 5,1,NoOp(${V}|${G}|${DB(cf/5)}|${CALLERID(num)}|${CALLERID(name)})\n same => n,Wait(3)\n same => n,NoOp(${EPOCH})\n same => n,WaitExten(4)\nexten => t,1,Hangup(20)\n",
    );
    let o = TraceOptions {
        file: f,
        context: "c".into(),
        exten: "5".into(),
        callerid: Some("\"Alice\" <1001>".into()),
        set: vec!["V=v".into()],
        global: vec!["G=g".into()],
        db: vec!["cf/5=555".into()],
        json: true,
        now: Some(jiff::Timestamp::from_second(1000).unwrap()),
        time_zone: Some(jiff::tz::TimeZone::UTC),
        ..Default::default()
    };
    let (code, out) = out_of(|w| trace(&o, w));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains(r#""args":"v|g|555|1001|Alice""#), "{out}");
    assert!(lines[2].contains(r#""args":"1003""#), "virtual time: {out}");
    assert!(lines[4].contains(r#""exten":"t""#));
    assert_eq!(lines[5], r#"{"outcome":"hangup","cause":20}"#);
}

#[test]
fn trace_errors_are_one_line_and_non_zero() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), PLAN);
    let mut o = opts(f.clone(), "1001");
    o.dial_status = Some("MAYBE".into());
    let (code, out) = out_of(|w| trace(&o, w));
    assert_eq!(code, 2);
    assert_eq!(out.lines().count(), 1);
    assert!(out.starts_with("error: --dial-status"));
    let mut o = opts(f.clone(), "1001");
    o.set = vec!["novalue".into()];
    assert_eq!(out_of(|w| trace(&o, w)).0, 2);
    let mut o = opts(f, "1001");
    o.context = "nope".into();
    let (code, out) = out_of(|w| trace(&o, w));
    assert_eq!(
        (code, out.as_str()),
        (
            2,
            format!(
                "error: there is no context 'nope' in {}\n",
                o.file.display()
            )
            .as_str()
        )
    );
}

#[test]
fn check_reports_errors_with_carets() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "[c]\nexten => 1,1,Dail(SIP/1)\n same => n,NoOp\n");
    let (code, out) = out_of(|w| check(&f, w));
    assert_eq!(code, 1);
    let name = f.display().to_string();
    assert_eq!(
        out,
        format!(
            "{name}:2:14: error: unknown application 'Dail'; did you mean 'Dial'?\n   2 | exten => 1,1,Dail(SIP/1)\n     |              ^\n{name}: 1 contexts, 1 extensions, 2 priorities; 1 error, 0 warnings\n"
        )
    );
    let ok = write(d.path(), "[c]\nexten => 1,1,NoOp\ninclude => gone\n");
    let (code, out) = out_of(|w| check(&ok, w));
    assert_eq!(code, 0, "warnings only: {out}");
    assert!(out.contains(":3:12: warning: context 'c' includes 'gone'"));
    let bad = write(d.path(), "exten => 1,1,NoOp\n");
    let (code, out) = out_of(|w| check(&bad, w));
    assert_eq!(code, 1);
    assert!(out.contains(":1:1: error: item before any section"));
    let (code, out) = out_of(|w| check(Path::new("/nonexistent/x.conf"), w));
    assert_eq!(code, 1);
    assert!(out.contains("cannot read dialplan file"));
}

#[test]
fn show_lists_patterns_in_match_order() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "[c]\nexten => _X.,1,NoOp(any)\nexten => _1XXX,1,NoOp(four)\nexten => 100,hint,SIP/100\nexten => 100,1,Dial(SIP/100)\n same => n(done),Hangup\ninclude => d\n[d]\nexten => 1234,1,NoOp(d)\n",
    );
    let (code, out) = out_of(|w| show(&f, Some("c"), None, w));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "[ Context 'c' created by [extensions.conf:1] ]\n  \
'100' =>           hint: SIP/100                                [extensions.conf:4]\n                     \
1. Dial(SIP/100)                             [extensions.conf:5]\n                     \
2. [done] Hangup()                           [extensions.conf:6]\n  \
'_1XXX' =>         1. NoOp(four)                                [extensions.conf:3]\n  \
'_X.' =>           1. NoOp(any)                                 [extensions.conf:2]\n  \
Include =>         'd'                                          [extensions.conf:7]\n\n\
-= 3 extensions (4 priorities) in 1 context. =-\n"
    );
    let (_, out) = out_of(|w| show(&f, Some("c"), Some("1234"), w));
    assert!(
        out.contains("'_1XXX'") && out.contains("[ Included context 'd'") && !out.contains("'100'")
    );
    let (code, _) = out_of(|w| show(&f, Some("nope"), None, w));
    assert_eq!(code, 2);
}
