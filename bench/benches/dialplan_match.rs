//! Number resolution in a large context (issue 3: "a context of 10,000 extensions and
//! patterns resolves a number in microseconds"). The context holds 10,000 literal
//! extensions, 3,000 patterns of mixed shapes and a catch-all, plus an include.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use dialplan::Dialplan;
use dialplan::lookup::Want;

fn big_plan() -> Dialplan {
    plan_of(10_000, 1_000)
}

/// `literals` literal extensions and 3 × `pattern_groups` patterns in context `big`.
fn plan_of(literals: u32, pattern_groups: u32) -> Dialplan {
    let mut text = String::from("[big]\ninclude => extra\n");
    for i in 0..literals {
        text.push_str(&format!("exten => {},1,Dial(SIP/{i})\n", 200_000 + i));
    }
    for i in 0..pattern_groups {
        text.push_str(&format!("exten => _{}XX.,1,NoOp(p{i})\n", 30_000 + i));
        text.push_str(&format!("exten => _{}[1-5]XXX,1,NoOp(s{i})\n", 4_000 + i));
        text.push_str(&format!("exten => _N{}NXX,1,NoOp(n{i})\n", 100 + i));
    }
    text.push_str("exten => _X.,1,NoOp(any)\n[extra]\nexten => *77,1,NoOp(extra)\n");
    Dialplan::load_str("bench.conf", &text, Path::new("."))
        .expect("generated plan loads")
        .plan
}

fn bench(c: &mut Criterion) {
    let plan = big_plan();
    let mut g = c.benchmark_group("dialplan_match");
    for (name, number) in [
        ("literal", "205000"),
        ("pattern_dot", "30500123"),
        ("pattern_set", "45003456"),
        ("catch_all", "99"),
        ("via_include", "*77"),
        ("no_match", "*"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(plan.find(
                    "big",
                    black_box(number),
                    Want::Priority(1),
                    Some("1000"),
                    None,
                ))
                .is_some()
            })
        });
    }
    g.finish();

    // The same lookups in contexts 100 times apart in size: the cost must stay flat.
    let mut g = c.benchmark_group("dialplan_match_by_size");
    for (literals, groups) in [(100, 10), (1_000, 100), (10_000, 1_000)] {
        let plan = plan_of(literals, groups);
        let total = literals + 3 * groups;
        for (name, number) in [("literal", "200050"), ("pattern_set", "40053456")] {
            g.bench_function(format!("{name}/{total}"), |b| {
                b.iter(|| {
                    black_box(plan.find(
                        "big",
                        black_box(number),
                        Want::Priority(1),
                        Some("1000"),
                        None,
                    ))
                    .is_some()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
