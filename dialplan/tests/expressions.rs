//! Substitution, expressions and functions (dialplan.md §8, §10, §11), observed the way
//! a trace shows them: as the arguments an application receives.

mod common;

use common::*;

/// What `NoOp(text)` receives on a call with `vars` set.
fn eval_with(text: &str, vars: &[(&str, &str)], globals: &str) -> String {
    let conf = format!("[globals]\n{globals}\n[t]\nexten => s,1,NoOp({text})\n");
    let r = run_with(
        &conf,
        "t",
        "s",
        Script {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        },
    );
    let step = &r.steps[0];
    let open = step.find("NoOp(").unwrap() + 5;
    step[open..step.len() - 1].to_string()
}

fn eval(text: &str) -> String {
    eval_with(text, &[], "")
}

#[test]
fn expression_examples_of_section_10_6() {
    let cases = [
        ("$[1 + 2 * 3]", "7"),
        ("$[(1 + 2) * 3]", "9"),
        ("$[10 % 4]", "2"),
        ("$[-5 + 2]", "-3"),
        ("$[7 / 2]", "3.5"),
        ("$[10 / 5]", "2"),
        ("$[1.5 + 1]", "2.5"),
        ("$[10 / 0]", "2147483647"),
        ("$[10 < 9]", "0"),
        ("$[010 = 10]", "1"),
        ("$[abc < abd]", "1"),
        ("$[abc = ABC]", "0"),
        ("$[\"010\" = \"10\"]", "0"),
        ("$[\"a b\" = \"a b\"]", "1"),
        ("$[\"abc\" = abc]", "0"),
        ("$[12345 : 123]", "3"),
        ("$[12345 : \"1(..)\"]", "23"),
        ("$[xyz : abc]", "0"),
        ("$[abc123 =~ \"[0-9]+\"]", "3"),
        ("$[abc ~~ def]", "abcdef"),
        ("$[abc + 1]", "1"),
        ("$[1 - abc]", "1"),
        ("$[a-b]", "0"),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
}

#[test]
fn expression_rules_of_sections_10_2_to_10_5() {
    let cases = [
        ("$[1 ? 2 :: 3 ? 4 :: 5]", "4"),
        ("$[2 * 3 : 6]", "0"),
        ("$[- 3 : 3]", "-1"),
        ("$[10 / 3]", "3.33333333333333333"),
        ("$[007]", "007"),
        ("$[\"x\"]", "\"x\""),
        ("$[]", ""),
        ("$[ = 1]", ""),
        ("$[ < 5]", ""),
        ("$[1 +]", "0"),
        ("$[0 | 5]", "5"),
        ("$[abc | def]", "abc"),
        ("$[3 & 4]", "3"),
        ("$[0 & 4]", "0"),
        ("$[!abc]", "1"),
        ("$[!5]", "0"),
        ("$[!0]", "1"),
        ("$[1 < 2 < 3]", "1"),
        ("$[LEN(abcd) * 2]", "8"),
        ("$[SQRT(16)]", "4"),
        ("$[POW(2,10)]", "1024"),
        ("$[1+2]", "3"),
        ("$[\"\" ? a :: b]", "b"),
        ("$[0 ? a :: b]", "b"),
        ("$[x ? a :: b]", "a"),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
    // The classic trap of §10.5.
    assert_eq!(eval("$[${X} = 1]"), "");
    assert_eq!(eval("$[\"${X}\" = \"1\"]"), "0");
}

#[test]
fn substring_arithmetic_of_section_8_3() {
    let vars = [("N", "95551234"), ("S", "abc")];
    let cases = [
        ("${N:1}", "5551234"),
        ("${N:0:4}", "9555"),
        ("${N:-4}", "1234"),
        ("${N:-4:2}", "12"),
        ("${N:1:-4}", "555"),
        ("${S:5}", ""),
        ("${S:-10}", "abc"),
        ("${S:-10:2}", "ab"),
        ("${S:1:0}", ""),
        ("${S::2}", "abc"),
        ("${S:0:-5}", ""),
        ("${S:-2:-1}", "b"),
    ];
    for (e, want) in cases {
        assert_eq!(eval_with(e, &vars, ""), want, "{e}");
    }
    assert_eq!(eval("${EXTEN:0:1}"), "s");
}

#[test]
fn variables_scanner_and_scope() {
    let vars = [("X", "S"), ("S", "abc"), ("V", "${S}"), ("G", "")];
    let g = "G=global\nONLYG=g2";
    let cases = [
        ("${${X}}", "abc"),
        ("$5 $ {x} $$", "$5 $ {x} $$"),
        ("${V}", "${S}"),
        ("${s}", ""),
        ("${G}|${GLOBAL(G)}|${ONLYG}", "|global|g2"),
        ("${len(x)}", ""),
        ("${CONTEXT}/${EXTEN}/${PRIORITY}", "t/s/1"),
        (
            "${CALLERID(num)}|${CALLERID(name)}|${CALLERID(all)}",
            "1000|Test|\"Test\" <1000>",
        ),
        ("${STRFTIME(0,UTC,%Y-%m-%d %H:%M)}", "1970-01-01 00:00"),
        ("${EPOCH}", "1785751200"),
        ("${LEN(a,b c)}", "5"),
        ("${ISNULL()}${EXISTS(x)}${ISNULL(x)}", "110"),
        ("${IF($[1=1]?yes:no)}${IF(0?yes:no)}", "yesno"),
        ("${SET(V=9)}${V}", "99"),
        ("${TOUPPER(abc)}", "ABC"),
        (
            "${REGEX(\"^5[0-9]+\" 5551234)}${REGEX(\"^6\" 5551234)}",
            "10",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(eval_with(e, &vars, g), want, "{e}");
    }
}

#[test]
fn cut_function() {
    let vars = [("L", "alpha-beta-gamma-delta"), ("C", "a,b,c")];
    let cases = [
        ("${CUT(L,-,2-3)}", "beta-gamma"),
        ("${CUT(L,,1)}", "alpha"),
        ("${CUT(L,-,3-)}", "gamma-delta"),
        ("${CUT(L,-,-2)}", "alpha-beta"),
        ("${CUT(L,-,1&4)}", "alpha-delta"),
        ("${CUT(C,\\,,2)}", "b"),
    ];
    for (e, want) in cases {
        assert_eq!(eval_with(e, &vars, ""), want, "{e}");
    }
}

#[test]
fn rand_is_in_range() {
    for _ in 0..5 {
        let v: i64 = eval("${RAND(5,7)}").parse().unwrap();
        assert!((5..=7).contains(&v));
    }
}

#[test]
fn astdb_functions() {
    let r = run(
        "[t]\nexten => s,1,Set(DB(cf/1001)=5551234)\n same => n,NoOp(${DB(cf/1001)}|${DB_RESULT}|${DB_EXISTS(cf/1001)}|${DB_EXISTS(cf/none)})\n same => n,NoOp(${DB_DELETE(cf/1001)}|${DB_EXISTS(cf/1001)})\n",
        "t",
        "s",
    );
    assert_eq!(r.apps()[1], "NoOp(5551234|5551234|1|0)");
    assert_eq!(r.apps()[2], "NoOp(5551234|0)");
}

#[test]
fn set_and_mset_rules() {
    let r = run(
        "[t]\nexten => s,1,Set(A=x,y=\"z\")\n same => n,Set(B =1)\n same => n,MSet(C=\"1,2\",D=3)\n same => n,NoOp(${A}|${B}|${B }|${C}|${D})\n same => n,Set(E=)\n same => n,Set(GLOBAL(GG)=g)\n same => n,Set(CALLERID(all)=\"Bob\" <2000>)\n same => n,NoOp(${E}|${GG}|${CALLERID(num)}|${CALLERID(name)})\n",
        "t",
        "s",
    );
    assert_eq!(r.apps()[3], "NoOp(x,y=\"z\"||1|1,2|3)");
    assert_eq!(r.apps()[7], "NoOp(|g|2000|Bob)");
}

#[test]
fn inheritance_prefixes() {
    let r = run(
        "[t]\nexten => s,1,Set(_ONE=1)\n same => n,Set(__TWO=2)\n same => n,Set(THREE=3)\n same => n,NoOp(${ONE}|${_ONE}|${TWO})\n same => n,Set(FOUR=4)\n same => n,Set(_FOUR=4)\n same => n,Hangup\n",
        "t",
        "s",
    );
    assert_eq!(r.apps()[3], "NoOp(1||2)");
    assert_eq!(
        r.interp.inherited_variables(),
        [
            ("ONE".to_string(), "1".to_string()),
            ("__TWO".to_string(), "2".to_string()),
            ("FOUR".to_string(), "4".to_string())
        ]
    );
}

#[test]
fn timeout_function() {
    assert_eq!(
        eval("${TIMEOUT(digit)}|${TIMEOUT(response)}"),
        "5.000|10.000"
    );
}
