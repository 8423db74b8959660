//! The loader (dialplan.md §2, §3): syntax, priorities, labels, templates, includes,
//! and diagnostics with exact positions.

use std::fs;
use std::path::Path;

use dialplan::{Dialplan, Severity, lint};

fn load(text: &str) -> dialplan::Loaded {
    Dialplan::load_str("t.conf", text, Path::new(".")).expect("loads")
}

/// (priority number, label, app, data) of an extension in a context.
fn prios(p: &Dialplan, ctx: &str, ext: &str) -> Vec<(i32, Option<String>, String, String)> {
    p.context(ctx)
        .unwrap()
        .extensions
        .iter()
        .find(|e| e.display_name() == ext)
        .unwrap_or_else(|| panic!("no extension {ext}"))
        .priorities
        .values()
        .map(|p| (p.number, p.label.clone(), p.app.clone(), p.data.clone()))
        .collect()
}

fn p(n: i32, l: Option<&str>, a: &str, d: &str) -> (i32, Option<String>, String, String) {
    (n, l.map(str::to_string), a.to_string(), d.to_string())
}

#[test]
fn n_counts_per_section_not_per_extension() {
    let l = load("[c]\nexten => 100,1,NoOp(a)\nexten => 200,n,NoOp(b)\n");
    assert_eq!(prios(&l.plan, "c", "200"), [p(2, None, "NoOp", "b")]);
}

#[test]
fn same_labels_and_offsets() {
    let l = load(
        "[c]\nexten => 100,1,NoOp(a)\n same => n(start),NoOp(b)\n same => start+2,NoOp(d)\n same => n,NoOp(e)\n same => 3,NoOp(c)\n",
    );
    assert_eq!(
        prios(&l.plan, "c", "100"),
        [
            p(1, None, "NoOp", "a"),
            p(2, Some("start"), "NoOp", "b"),
            p(3, None, "NoOp", "c"),
            p(4, None, "NoOp", "d"),
            p(5, None, "NoOp", "e"),
        ]
    );
}

#[test]
fn same_keeps_the_caller_id_part() {
    let l = load("[c]\nexten => 100/1001,1,NoOp(a)\n same => n,NoOp(b)\n");
    assert_eq!(prios(&l.plan, "c", "100/1001").len(), 2);
}

#[test]
fn priority_s_reuses_the_number() {
    let l = load("[c]\nexten => 100,1,NoOp(a)\nexten => 101,s,NoOp(b)\nexten => 101,s,NoOp(dup)\n");
    assert_eq!(prios(&l.plan, "c", "101"), [p(1, None, "NoOp", "b")]);
    assert!(
        l.diagnostics
            .iter()
            .any(|d| d.message.contains("duplicate priority 1"))
    );
}

#[test]
fn hint_then_n_is_dropped() {
    let l = load("[c]\nexten => 100,hint,SIP/100\n same => n,NoOp(x)\nexten => 100,1,NoOp(a)\n");
    let e = &l.plan.context("c").unwrap().extensions[0];
    assert_eq!(e.hint.as_ref().unwrap().device, "SIP/100");
    assert_eq!(prios(&l.plan, "c", "100"), [p(1, None, "NoOp", "a")]);
}

#[test]
fn application_data_rules() {
    let l = load(
        "[c]\nexten => 1,1,NoOp(f(x) and (y)) trailing\nexten => 2,1,Answer\nexten => 3,1,NoOp( x )\nexten => 4,1,NoOp(unclosed\nexten => 5,1,   Wait(1)\n",
    );
    assert_eq!(prios(&l.plan, "c", "1")[0].3, "f(x) and (y)");
    assert_eq!(prios(&l.plan, "c", "2")[0], p(1, None, "Answer", ""));
    assert_eq!(prios(&l.plan, "c", "3")[0].3, " x ");
    assert_eq!(prios(&l.plan, "c", "4")[0].3, "unclosed");
    assert_eq!(prios(&l.plan, "c", "5")[0].2, "Wait");
    assert!(
        l.diagnostics
            .iter()
            .any(|d| d.line == 5 && d.message.contains("missing ')'"))
    );
}

#[test]
fn extension_names_lose_whitespace_and_cids_normalise() {
    let l = load("[c]\nexten => 1 0 0 ,2,NoOp(a)\nexten => 100/(555) 123-4567,1,NoOp(b)\n");
    assert!(prios(&l.plan, "c", "100").iter().any(|x| x.0 == 2));
    assert_eq!(prios(&l.plan, "c", "100/5551234567").len(), 1);
}

#[test]
fn comma_in_brackets_does_not_split_the_extension() {
    let l = load("[c]\nexten => _[1,2]X,1,NoOp(a)\n");
    assert_eq!(l.plan.context("c").unwrap().extensions[0].name, "_[1,2]X");
}

#[test]
fn globals_are_substituted_at_load_in_order() {
    let l = load(
        "[globals]\nPREFIX=9\nFULL=${PREFIX}1\nOPERATOR=0\n[c]\nexten => ${OPERATOR},1,NoOp(${FULL})\ninclude => ${PREFIX}x\n[9x]\n",
    );
    assert_eq!(l.plan.globals()[1], ("FULL".to_string(), "91".to_string()));
    assert_eq!(prios(&l.plan, "c", "0")[0].3, "${FULL}");
    assert_eq!(l.plan.context("c").unwrap().includes[0].context, "9x");
}

#[test]
fn general_options() {
    let l = load("[general]\nautofallthrough=no\nautofallthrough=yes\nclearglobalvars=yes\n[c]\n");
    assert!(!l.plan.options().autofallthrough);
    assert!(l.plan.options().clearglobalvars);
    assert!(l.plan.context("general").is_none());
}

#[test]
fn templates_and_append() {
    let l = load(
        "[tpl](!)\nexten => s,1,NoOp(t)\n[c](tpl)\nexten => s,2,NoOp(c)\n[c](+)\n same => n,NoOp(more)\n",
    );
    assert!(l.plan.context("tpl").is_none());
    assert_eq!(
        prios(&l.plan, "c", "s"),
        [
            p(1, None, "NoOp", "t"),
            p(2, None, "NoOp", "c"),
            p(3, None, "NoOp", "more")
        ]
    );
}

#[test]
fn repeated_sections_merge() {
    let l = load("[c]\nexten => 1,1,NoOp(a)\n[d]\n[c]\nexten => 1,2,NoOp(b)\n");
    assert_eq!(prios(&l.plan, "c", "1").len(), 2);
}

#[test]
fn duplicate_include_and_ignored_directives_warn() {
    let l = load(
        "[c]\ninclude => d\ninclude => d\nswitch => IAX2/x\nignorepat => 9\nautohints => yes\nfoo => bar\n[d]\n",
    );
    assert_eq!(l.plan.context("c").unwrap().includes.len(), 1);
    let lines: Vec<u32> = l.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7]);
    assert!(
        l.diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning)
    );
}

#[test]
fn duplicate_label_is_dropped() {
    let l = load("[c]\nexten => 1,1(a),NoOp\n same => 2(a),NoOp\n");
    assert_eq!(prios(&l.plan, "c", "1")[1].1, None);
    assert!(l.diagnostics[0].message.contains("label 'a'"));
}

#[test]
fn catch_all_patterns_warn_at_load() {
    let l = load("[c]\nexten => _.,1,NoOp\nexten => _!,1,NoOp\n");
    assert_eq!(l.diagnostics.len(), 2);
    assert_eq!((l.diagnostics[0].line, l.diagnostics[0].col), (2, 10));
}

#[test]
fn missing_include_context_warns_with_position() {
    let l = load("[c]\ninclude => nothere\n");
    let d = &l.diagnostics[0];
    assert_eq!((d.line, d.col), (2, 12));
    assert!(d.message.contains("'nothere'"));
}

fn fatal(text: &str) -> (u32, u32, String) {
    let e = Dialplan::load_str("t.conf", text, Path::new(".")).unwrap_err();
    let d = e.diagnostics.iter().find(|d| d.is_error()).unwrap();
    (d.line, d.col, d.message.clone())
}

#[test]
fn load_fatal_problems_with_positions() {
    let (l, c, m) = fatal("; comment\n  exten => 1,1,NoOp\n");
    assert_eq!((l, c), (2, 3));
    assert!(m.contains("before any section"));
    let (l, c, _) = fatal("[a]\n[b](nosuch)\n");
    assert_eq!((l, c), (2, 5));
    let (l, _, m) = fatal("[a]\n[b](+)\n");
    assert_eq!(l, 2);
    assert!(m.contains("does not exist"));
    let (l, c, m) = fatal("[a]\n[broken\n");
    assert_eq!((l, c), (2, 1));
    assert!(m.contains("']'"));
    let (l, _, m) = fatal("[a]\n#include \"nothere.conf\"\n");
    assert_eq!(l, 2);
    assert!(m.contains("not found"));
}

#[test]
fn tryinclude_of_missing_file_is_fine() {
    assert!(
        Dialplan::load_str("t.conf", "[a]\n#tryinclude nothere.conf\n", Path::new(".")).is_ok()
    );
}

#[test]
fn includes_relative_globs_and_section_continuation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("ext.d")).unwrap();
    fs::write(d.join("ext.d/a.conf"), "exten => 1,1,NoOp(a)\n").unwrap();
    fs::write(d.join("ext.d/b.conf"), "[other]\nexten => 2,1,NoOp(b)\n").unwrap();
    fs::write(d.join("sub.conf"), "exten => 3,1,NoOp(sub)\n").unwrap();
    fs::write(
        d.join("extensions.conf"),
        "[main]\n#include \"ext.d/*.conf\"\nexten => 4,1,NoOp(main)\n#include <sub.conf>\n",
    )
    .unwrap();
    let l = Dialplan::load(d.join("extensions.conf")).unwrap();
    let main: Vec<String> = l
        .plan
        .context("main")
        .unwrap()
        .extensions
        .iter()
        .map(|e| e.name.clone())
        .collect();
    // a.conf continues [main]; b.conf opens [other] but main.conf returns to [main].
    assert_eq!(main, ["1", "3", "4"]);
    assert!(l.plan.context("other").is_some());
}

#[test]
fn include_loops_and_depth_are_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("a.conf"), "[x]\n#include b.conf\n").unwrap();
    fs::write(d.join("b.conf"), "#include a.conf\n").unwrap();
    let e = Dialplan::load(d.join("a.conf")).unwrap_err();
    assert!(
        e.diagnostics
            .iter()
            .any(|x| x.message.contains("include loop"))
    );
    assert!(e.to_string().contains("include loop"));

    for i in 0..12 {
        fs::write(
            d.join(format!("n{i}.conf")),
            format!("#include n{}.conf\n", i + 1),
        )
        .unwrap();
    }
    fs::write(d.join("n12.conf"), "[deep]\n").unwrap();
    let e = Dialplan::load(d.join("n0.conf")).unwrap_err();
    assert!(
        e.diagnostics
            .iter()
            .any(|x| x.message.contains("nested more than 10"))
    );
    // Ten levels are fine.
    fs::write(d.join("n10.conf"), "[deep]\n").unwrap();
    assert!(Dialplan::load(d.join("n0.conf")).is_ok());
}

#[test]
fn lint_findings_with_exact_positions() {
    let text = "[c]\nexten => 100,2,NoOp\nexten => 200,1,Dail(SIP/1)\n same => n,NoOp(${len(x)})\n same => n,Goto(nolabel)\n same => 9,NoOp\nexten => _[9-1]X,1,NoOp\nexten => 300,1,Gosub(nosuch,s,1(a))\n same => n,Set(FOO(x)=1)\n same => n,GotoIf(1?c,200,1:c,201,1)\n";
    let l = load(text);
    let got: Vec<(u32, u32, Severity, String)> = lint(&l.plan)
        .into_iter()
        .map(|d| (d.line, d.col, d.severity, d.message))
        .collect();
    let find = |line: u32| got.iter().filter(move |g| g.0 == line);
    let has = |line: u32, col: u32, sev: Severity, text: &str| {
        assert!(
            find(line).any(|g| g.1 == col && g.2 == sev && g.3.contains(text)),
            "expected {line}:{col} {sev} '{text}' in {got:#?}"
        );
    };
    has(2, 1, Severity::Warning, "no priority 1");
    has(
        3,
        16,
        Severity::Error,
        "unknown application 'Dail'; did you mean 'Dial'?",
    );
    has(
        4,
        19,
        Severity::Error,
        "unknown function 'len'; function names are case-sensitive: 'LEN'",
    );
    has(5, 17, Severity::Error, "label 'nolabel'");
    has(6, 2, Severity::Warning, "priority 9");
    has(7, 10, Severity::Error, "backwards");
    has(8, 22, Severity::Error, "context 'nosuch' does not exist");
    has(9, 16, Severity::Error, "unknown function 'FOO'");
    has(10, 19, Severity::Error, "201@c:1");
    assert_eq!(find(10).count(), 1, "c,200,1 exists: {got:#?}");
}
