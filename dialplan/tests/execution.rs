//! Running calls (dialplan.md §6, §7, §12, §13): each case states the steps Asterisk
//! executes and how the call ends.

mod common;

use common::*;
use dialplan::causes::DialStatus;
use dialplan::interp::{Action, DialResult, Outcome};

#[test]
fn goto_labels_relative_and_trace_context() {
    let r = run(
        "[in]\ninclude => lib\n[lib]\nexten => 100,1,NoOp(${CONTEXT})\n same => n,Goto(+2)\n same => n,NoOp(skipped)\n same => n,Goto(end)\n same => n(end),Hangup(17)\n",
        "in",
        "100",
    );
    assert_eq!(
        r.steps,
        [
            "100@in:1 NoOp(in)",
            "100@in:2 Goto(+2)",
            "100@in:4 Goto(end)",
            "100@in:5 Hangup(17)"
        ]
    );
    assert_eq!(r.ending.outcome, Outcome::Hangup);
    assert_eq!(r.ending.cause, 17);
}

#[test]
fn goto_to_unknown_label_fails_numeric_target_is_unchecked() {
    let r = run(
        "[t]\nexten => 1,1,Goto(nolabel)\nexten => h,1,NoOp(h)\n",
        "t",
        "1",
    );
    assert_eq!(r.ending.outcome, Outcome::AppError);
    assert_eq!(r.apps(), ["Goto(nolabel)", "NoOp(h)"]);
    let r = run(
        "[t]\nexten => 1,1,Goto(99,1)\nexten => i,1,NoOp(${INVALID_EXTEN})\n",
        "t",
        "1",
    );
    assert_eq!(r.apps(), ["Goto(99,1)", "NoOp(99)"]);
}

#[test]
fn gotoif_branches_and_truth_rule() {
    let conf = "[t]\nexten => s,1,GotoIf(${C}?yes:no)\n same => n(yes),NoOp(yes)\n same => n,Hangup\n same => n(no),NoOp(no)\n same => n,Hangup\n";
    for (c, want) in [
        ("1", "yes"),
        ("0", "no"),
        ("", "no"),
        ("abc", "yes"),
        ("0abc", "no"),
        ("-1", "yes"),
    ] {
        let r = run_with(
            conf,
            "t",
            "s",
            Script {
                vars: vec![("C".into(), c.into())],
                ..Default::default()
            },
        );
        assert_eq!(r.apps()[1], format!("NoOp({want})"), "C={c}");
    }
    let r = run(
        "[t]\nexten => s,1,GotoIf(0?x)\n same => n,NoOp(next)\n",
        "t",
        "s",
    );
    assert_eq!(r.apps(), ["GotoIf(0?x)", "NoOp(next)"]);
    let r = run(
        "[t]\nexten => s,1,GotoIf(1?o,100,1)\n[o]\nexten => 100,1,NoOp(other)\n",
        "t",
        "s",
    );
    assert_eq!(r.steps[1], "100@o:1 NoOp(other)");
}

#[test]
fn gosub_return_args_and_local() {
    let r = run(
        "[t]\nexten => s,1,Set(X=outer)\n same => n,Gosub(sub,s,1(a,b))\n same => n,NoOp(${GOSUB_RETVAL}|${X}|${ARG1}|${ARGC})\n same => n,Hangup\n[sub]\nexten => s,1,NoOp(${ARG1}|${ARG2}|${ARGC})\n same => n,Set(LOCAL(X)=inner)\n same => n,Gosub(sub2,s,1(only))\n same => n,Return(${X})\n[sub2]\nexten => s,1,NoOp(${ARG1}|${ARG2}|${ARGC}|${X})\n same => n,Return\n",
        "t",
        "s",
    );
    assert_eq!(
        r.apps(),
        [
            "Set(X=outer)",
            "Gosub(sub,s,1(a,b))",
            "NoOp(a|b|2)",
            "Set(LOCAL(X)=inner)",
            "Gosub(sub2,s,1(only))",
            "NoOp(only||1|inner)",
            "Return()",
            "Return(inner)",
            "NoOp(inner|outer||)",
            "Hangup()"
        ]
    );
}

#[test]
fn gosub_to_missing_target_and_return_without_gosub_fail() {
    let r = run(
        "[t]\nexten => s,1,Gosub(sub,s,5)\n[sub]\nexten => s,1,Return\n",
        "t",
        "s",
    );
    assert_eq!(r.ending.outcome, Outcome::AppError);
    let r = run("[t]\nexten => s,1,Return\n", "t", "s");
    assert_eq!(r.ending.outcome, Outcome::AppError);
    let r = run(
        "[t]\nexten => s,1,GosubIf(1?sub,s,1(x):sub,s,2)\n same => n,Hangup\n[sub]\nexten => s,1,NoOp(${ARG1})\n same => n,Return\n",
        "t",
        "s",
    );
    assert_eq!(r.apps()[1], "NoOp(x)");
}

#[test]
fn while_loop_trace() {
    let r = run(
        "[t]\nexten => s,1,Set(I=0)\n same => n,While($[${I} < 2])\n same => n,Set(I=$[${I} + 1])\n same => n,EndWhile\n same => n,NoOp(after ${I})\n",
        "t",
        "s",
    );
    assert_eq!(
        r.apps(),
        [
            "Set(I=0)",
            "While(1)",
            "Set(I=1)",
            "EndWhile()",
            "While(1)",
            "Set(I=2)",
            "EndWhile()",
            "While(0)",
            "NoOp(after 2)"
        ]
    );
    assert_eq!(r.ending.outcome, Outcome::EndOfDialplan);
}

#[test]
fn exit_and_continue_while() {
    let r = run(
        "[t]\nexten => s,1,Set(I=0)\n same => n,While(1)\n same => n,Set(I=$[${I} + 1])\n same => n,ExecIf($[${I} < 2]?ContinueWhile)\n same => n,ExitWhile\n same => n,NoOp(never)\n same => n,EndWhile\n same => n,NoOp(done ${I})\n",
        "t",
        "s",
    );
    assert_eq!(r.apps().last().unwrap(), "NoOp(done 2)");
    assert!(!r.apps().iter().any(|a| a.contains("never")));
}

#[test]
fn execif_runs_inside_and_propagates() {
    let r = run(
        "[t]\nexten => s,1,ExecIf(1?Hangup(21))\n same => n,NoOp(never)\n",
        "t",
        "s",
    );
    assert_eq!(r.apps(), ["ExecIf(1?Hangup(21))"]);
    assert_eq!(r.ending.cause, 21);
    let r = run(
        "[t]\nexten => s,1,ExecIf(0?Set(A=1):Set(A=2))\n same => n,ExecIf(0?Set(B=1))\n same => n,ExecIf(1,Set,C=3)\n same => n,NoOp(${A}${B}${C})\n",
        "t",
        "s",
    );
    assert_eq!(r.apps()[3], "NoOp(23)");
    let r = run("[t]\nexten => s,1,ExecIf(1?Nope(x))\n", "t", "s");
    assert_eq!(r.ending.outcome, Outcome::AppError);
}

#[test]
fn special_extensions_i_e_and_h() {
    // No such extension: i with INVALID_EXTEN, then h in the same context.
    let r = run(
        "[t]\nexten => i,1,NoOp(${INVALID_EXTEN})\nexten => h,1,NoOp(h ${EXTEN})\n",
        "t",
        "999",
    );
    assert_eq!(r.steps, ["i@t:1 NoOp(999)", "h@t:1 NoOp(h h)"]);
    assert_eq!(r.ending.outcome, Outcome::EndOfDialplan);
    // No i: e with EXCEPTION(reason).
    let r = run(
        "[t]\nexten => e,1,NoOp(${EXCEPTION(reason)} ${EXCEPTION(exten)})\n",
        "t",
        "999",
    );
    assert_eq!(r.apps(), ["NoOp(INVALID 999)"]);
    // Neither: the call ends, h still runs.
    let r = run("[t]\nexten => h,1,NoOp(${HANGUPCAUSE})\n", "t", "999");
    assert_eq!(r.ending.outcome, Outcome::NoSuchExtension);
    assert_eq!(r.apps(), ["NoOp(1)"]);
    // A catch-all _. provides h too.
    let r = run(
        "[t]\nexten => 1,1,Hangup\nexten => _.,1,NoOp(${EXTEN})\n",
        "t",
        "1",
    );
    assert_eq!(r.apps(), ["Hangup()", "NoOp(h)"]);
}

#[test]
fn raise_exception_and_h_after_goto_uses_new_context() {
    let r = run(
        "[in]\nexten => 100,1,RaiseException(CUSTOM)\nexten => e,1,NoOp(${EXCEPTION(reason)} ${EXCEPTION(context)},${EXCEPTION(exten)},${EXCEPTION(priority)})\n",
        "in",
        "100",
    );
    assert_eq!(r.apps()[1], "NoOp(CUSTOM in,100,1)");
    let r = run(
        "[a]\nexten => 1,1,Goto(b,2,1)\nexten => h,1,NoOp(a-h)\n[b]\nexten => 2,1,Hangup\nexten => h,1,NoOp(b-h)\n",
        "a",
        "1",
    );
    assert_eq!(r.apps().last().unwrap(), "NoOp(b-h)");
}

#[test]
fn h_runs_only_data_applications() {
    let r = run(
        "[t]\nexten => 1,1,Hangup(16)\nexten => h,1,Set(A=1)\n same => n,Playback(x)\n same => n,NoOp(never)\n",
        "t",
        "1",
    );
    assert_eq!(r.apps(), ["Hangup(16)", "Set(A=1)", "Playback(x)"]);
    assert!(
        !r.actions
            .iter()
            .any(|a| matches!(a, Action::Playback { .. }))
    );
}

#[test]
fn autofallthrough_and_gaps() {
    let r = run(
        "[t]\nexten => 1,1,NoOp\n same => 3,NoOp(unreachable)\n",
        "t",
        "1",
    );
    assert_eq!(r.apps(), ["NoOp()"]);
    assert_eq!(r.ending.outcome, Outcome::EndOfDialplan);
    assert_eq!(r.ending.cause, 16);
    for (status, outcome, cause) in [
        ("BUSY", Outcome::Busy, 17),
        ("CONGESTION", Outcome::Congestion, 34),
        ("CHANUNAVAIL", Outcome::Congestion, 34),
    ] {
        let r = run_with(
            "[t]\nexten => 1,1,NoOp\n",
            "t",
            "1",
            Script {
                vars: vec![("DIALSTATUS".into(), status.into())],
                ..Default::default()
            },
        );
        assert_eq!(
            (r.ending.outcome, r.ending.cause),
            (outcome, cause),
            "{status}"
        );
    }
}

#[test]
fn autofallthrough_no_waits_then_t() {
    let r = run(
        "[general]\nautofallthrough=no\n[t]\nexten => 1,1,NoOp\nexten => t,1,NoOp(timeout)\n same => n,Hangup\n",
        "t",
        "1",
    );
    assert_eq!(r.apps(), ["NoOp()", "NoOp(timeout)", "Hangup()"]);
    assert!(
        r.actions
            .iter()
            .any(|a| matches!(a, Action::CollectDigit { timeout } if *timeout == 10.0))
    );
}

#[test]
fn priority_fallback_through_cid_and_include() {
    let r = run(
        "[t]\ninclude => u\nexten => 100/1000,1,NoOp(cid)\nexten => 100,2,NoOp(plain)\n[u]\nexten => 100,3,NoOp(included)\n",
        "t",
        "100",
    );
    assert_eq!(r.apps(), ["NoOp(cid)", "NoOp(plain)", "NoOp(included)"]);
}

#[test]
fn changing_callerid_changes_matching() {
    let r = run(
        "[t]\nexten => 100,1,Set(CALLERID(num)=555)\nexten => 100/555,2,NoOp(now 555)\nexten => 100,2,NoOp(plain)\n",
        "t",
        "100",
    );
    assert_eq!(r.apps()[1], "NoOp(now 555)");
}

#[test]
fn unknown_application_is_not_reported_as_executed() {
    let r = run(
        "[t]\nexten => 1,1,NoOp(a)\n same => n,Frobnicate(x)\n same => n,NoOp(never)\nexten => h,1,NoOp(h)\n",
        "t",
        "1",
    );
    assert_eq!(r.apps(), ["NoOp(a)", "NoOp(h)"]);
    assert_eq!(r.ending.outcome, Outcome::AppError);
    assert!(r.warnings[0].contains("Frobnicate"));
}

#[test]
fn start_with_empty_exten_uses_s() {
    let r = run("[t]\nexten => s,1,NoOp(start)\n", "t", "");
    assert_eq!(r.steps, ["s@t:1 NoOp(start)"]);
}

#[test]
fn dial_results_set_variables_and_continue() {
    let conf = "[t]\nexten => 1,1,Dial(PJSIP/1001&SIP/1002,20,rtTg)\n same => n,NoOp(${DIALSTATUS}|${HANGUPCAUSE}|${DIALEDPEERNUMBER})\n same => n,Hangup()\n";
    let r = run(conf, "t", "1");
    let Action::Dial(req) = &r.actions[0] else {
        panic!()
    };
    assert_eq!(
        req.targets
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>(),
        ["SIP/1001", "SIP/1002"]
    );
    assert_eq!(req.timeout, Some(20.0));
    assert!(req.options.ringback() && req.options.continue_on_callee_hangup());
    assert_eq!(r.apps()[1], "NoOp(NOANSWER|19|)");
    // Hangup() keeps the cause copied from the failed leg.
    assert_eq!(r.ending.cause, 19);

    let busy = Script {
        dial: Some(DialResult::failed(DialStatus::Busy, Some(17))),
        ..Default::default()
    };
    let r = run_with("[t]\nexten => 1,1,Dial(SIP/1)\n", "t", "1", busy);
    assert_eq!((r.ending.outcome, r.ending.cause), (Outcome::Busy, 17));

    let answered = Script {
        dial: Some(DialResult::answered("1001", false)),
        ..Default::default()
    };
    let r = run_with(conf, "t", "1", answered);
    assert_eq!(r.apps()[1], "NoOp(ANSWER|16|1001)");
    let answered = Script {
        dial: Some(DialResult::answered("1001", false)),
        ..Default::default()
    };
    let r = run_with(
        "[t]\nexten => 1,1,Dial(SIP/1,20)\n same => n,NoOp(never)\n",
        "t",
        "1",
        answered,
    );
    assert_eq!(r.apps().len(), 1);
    assert_eq!(r.ending.outcome, Outcome::Hangup);
}

#[test]
fn dial_errors_end_the_call() {
    let r = run(
        "[t]\nexten => 1,1,Dial(1001)\n same => n,NoOp(never)\n",
        "t",
        "1",
    );
    assert_eq!(r.ending.outcome, Outcome::AppError);
    let r = run(
        "[t]\nexten => 1,1,Dial(SIP/1,,S(0))\nexten => h,1,NoOp(${DIALSTATUS})\n",
        "t",
        "1",
    );
    assert_eq!(r.apps()[1], "NoOp(INVALIDARGS)");
    let r = run_with(
        "[t]\nexten => 1,1,Dial(SIP/1)\n same => n,NoOp(never)\nexten => h,1,NoOp(${DIALSTATUS})\n",
        "t",
        "1",
        Script {
            dial: None,
            ..Default::default()
        },
    );
    assert_eq!(r.apps()[1], "NoOp(CANCEL)");
}

#[test]
fn background_digits_collect_an_extension() {
    let conf = "[menu]\nexten => s,1,Background(welcome)\n same => n,WaitExten(5)\nexten => 1,1,NoOp(one)\nexten => 12,1,NoOp(twelve)\nexten => 123,1,NoOp(onetwothree)\nexten => i,1,NoOp(invalid ${INVALID_EXTEN})\nexten => t,1,NoOp(timeout)\n";
    let r = run_with(
        conf,
        "menu",
        "s",
        Script {
            digits: "12".chars().collect(),
            ..Default::default()
        },
    );
    assert_eq!(r.apps().last().unwrap(), "NoOp(twelve)");
    let r = run_with(
        conf,
        "menu",
        "s",
        Script {
            digits: "9".chars().collect(),
            ..Default::default()
        },
    );
    assert_eq!(r.apps().last().unwrap(), "NoOp(invalid 9)");
    let r = run(conf, "menu", "s");
    assert_eq!(
        r.apps(),
        ["BackGround(welcome)", "WaitExten(5)", "NoOp(timeout)"]
    );
    let r = run_with(
        conf,
        "menu",
        "s",
        Script {
            digits: "123".chars().collect(),
            ..Default::default()
        },
    );
    assert_eq!(r.apps().last().unwrap(), "NoOp(onetwothree)");
}

#[test]
fn waitexten_timeout_continues_when_next_priority_exists() {
    let r = run(
        "[t]\nexten => s,1,WaitExten(3)\n same => n,NoOp(next)\n",
        "t",
        "s",
    );
    assert_eq!(r.apps(), ["WaitExten(3)", "NoOp(next)"]);
    let r = run(
        "[t]\nexten => s,1,WaitExten(3)\nexten => e,1,NoOp(${EXCEPTION(reason)})\n",
        "t",
        "s",
    );
    assert_eq!(r.apps()[1], "NoOp(RESPONSETIMEOUT)");
}

#[test]
fn absolute_timeout_goes_to_t_upper() {
    let r = run(
        "[t]\nexten => s,1,Set(TIMEOUT(absolute)=5)\n same => n,Wait(10)\n same => n,NoOp(never)\nexten => T,1,NoOp(absolute)\n",
        "t",
        "s",
    );
    assert_eq!(
        r.apps(),
        ["Set(TIMEOUT(absolute)=5)", "Wait(10)", "NoOp(absolute)"]
    );
}

#[test]
fn busy_congestion_and_hangup_causes() {
    let r = run("[t]\nexten => 1,1,Busy(5)\n", "t", "1");
    assert_eq!((r.ending.outcome, r.ending.cause), (Outcome::Busy, 17));
    let r = run("[t]\nexten => 1,1,Congestion\n", "t", "1");
    assert_eq!(
        (r.ending.outcome, r.ending.cause),
        (Outcome::Congestion, 34)
    );
    let r = run("[t]\nexten => 1,1,Hangup(call_rejected)\n", "t", "1");
    assert_eq!(r.ending.cause, 21);
    let r = run("[t]\nexten => 1,1,Hangup(bogus)\n", "t", "1");
    assert_eq!(r.ending.cause, 16);
    let r = run("[t]\nexten => 1,1,Answer\n same => n,Busy\n", "t", "1");
    assert_eq!(r.ending.cause, 16, "an answered channel keeps its cause");
}

#[test]
fn media_actions_and_status_variables() {
    let r = run(
        "[t]\nexten => 1,1,Playback(a&b,noanswer)\n same => n,Read(PIN,enter-pin,4)\n same => n,NoOp(${PLAYBACKSTATUS}|${PIN}|${READSTATUS})\n same => n,VoiceMail(1001@default,u)\n same => n,NoOp(${VMSTATUS})\n same => n,ConfBridge(9)\n same => n,NoOp(never)\n",
        "t",
        "1",
    );
    let Action::Playback { files, answer, .. } = &r.actions[0] else {
        panic!()
    };
    assert_eq!(files, &["a", "b"]);
    assert!(!answer);
    assert_eq!(r.apps()[2], "NoOp(SUCCESS||OK)");
    assert_eq!(r.apps()[4], "NoOp(SUCCESS)");
    assert_eq!(r.ending.outcome, Outcome::Hangup);
}

#[test]
fn endless_internal_loop_is_cut() {
    let r = run("[t]\nexten => 1,1,Goto(1)\n", "t", "1");
    assert_eq!(r.ending.outcome, Outcome::AppError);
    assert!(r.warnings.iter().any(|w| w.contains("loop")));
}
