use proptest::prelude::*;

use super::*;

fn scenario(name: &str, length: u64, iterations: u64) -> ScenarioProgress {
    ScenarioProgress {
        name: name.into(),
        start: Duration::ZERO,
        length: Duration::from_secs(length),
        iterations,
        vus: None,
    }
}

fn sample() -> Progress {
    Progress {
        elapsed: Duration::from_secs(12),
        total: Duration::from_secs(30),
        vus: 50,
        vus_max: 50,
        iterations: 40_944,
        rps: 3_412.4,
        p95_ms: Some(4.213),
        errors: 0,
        requests: 40_944,
        phase: None,
        scenarios: vec![scenario("default", 30, 40_944)],
    }
}

fn width(s: &str) -> usize {
    format::display_width(s)
}

/// The bar of a scenario line: `[` to `]`, brackets included.
fn bar_of(line: &str) -> &str {
    let start = line.find('[').expect("a bar");
    let end = line.find(']').expect("a bar's end");
    &line[start..=end]
}

#[test]
fn at_160_columns_everything_shows() {
    let lines = terminal_lines(&sample(), 160, false);
    assert_eq!(
        lines,
        vec![
            "running 12.0s/30.0s  vus 50/50  3,412 req/s  p95 4.21ms  errors 0 (0.00%)  40,944 iters",
            "  default [===============>                        ]   40%  12.0s/30.0s  40,944 iters",
        ]
    );
    assert_eq!(bar_width(160), 40);
}

#[test]
fn at_80_columns_fields_go_by_priority_and_lines_fit() {
    let lines = terminal_lines(&sample(), 80, false);
    for l in &lines {
        assert!(width(l) < 80, "{} columns: {l:?}", width(l));
    }
    // The status line loses its iterations (lowest priority) first.
    assert_eq!(
        lines[0],
        "running 12.0s/30.0s  vus 50/50  3,412 req/s  p95 4.21ms  errors 0 (0.00%)"
    );
    assert_eq!(
        lines[1],
        "  default [=======>            ]   40%  12.0s/30.0s  40,944 iters"
    );
    // Narrower: p95 goes next, then the VUs, then errors; req/s stays.
    let at = |w| line(&sample(), w, false);
    assert_eq!(
        at(70),
        "running 12.0s/30.0s  vus 50/50  3,412 req/s  errors 0 (0.00%)"
    );
    assert_eq!(at(55), "running 12.0s/30.0s  3,412 req/s  errors 0 (0.00%)");
    assert_eq!(at(40), "running 12.0s/30.0s  3,412 req/s");
}

#[test]
fn the_bar_keeps_its_width_across_updates() {
    for columns in [80, 160] {
        let mut widths = std::collections::BTreeSet::new();
        for (secs, iterations, rps) in [
            (0, 0, 0.0),
            (6, 12, 3.0),
            (15, 1_234_567, 123_456.0),
            (29, 98_765_432_100, 9.9),
            (40, u64::MAX, f64::NAN),
        ] {
            let p = Progress {
                elapsed: Duration::from_secs(secs),
                iterations,
                rps,
                scenarios: vec![scenario("default", 30, iterations)],
                ..sample()
            };
            for l in terminal_lines(&p, columns, false) {
                assert!(width(&l) < columns, "{columns}: {l:?}");
            }
            widths.insert(width(bar_of(&terminal_lines(&p, columns, false)[1])));
        }
        assert_eq!(widths.len(), 1, "{columns} columns: bar widths {widths:?}");
    }
}

#[test]
fn scenario_lines_align_and_show_their_own_progress() {
    let p = Progress {
        elapsed: Duration::from_secs(20),
        total: Duration::from_secs(70),
        scenarios: vec![
            scenario("warmup", 20, 100),
            ScenarioProgress {
                name: "main".into(),
                start: Duration::from_secs(30),
                length: Duration::from_secs(40),
                iterations: 0,
                vus: None,
            },
        ],
        ..sample()
    };
    let lines = terminal_lines(&p, 160, false);
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("  warmup ["), "{lines:?}");
    assert!(
        lines[1].contains("100%  20.0s/20.0s  100 iters"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("  main   ["), "{lines:?}");
    assert!(lines[2].contains("  0%  starts at 30.0s"), "{lines:?}");
    assert_eq!(lines[1].find('['), lines[2].find('['));
}

#[test]
fn a_narrow_terminal_cuts_rather_than_wraps() {
    for columns in [0, 1, 5, 12, 20, 30] {
        for l in terminal_lines(&sample(), columns, false) {
            assert!(
                width(&l) <= columns.saturating_sub(1).max(1),
                "{columns}: {l:?}"
            );
        }
    }
}

#[test]
fn unknown_total_shows_elapsed_only() {
    let p = Progress {
        total: Duration::ZERO,
        elapsed: Duration::from_millis(125_400),
        p95_ms: None,
        rps: 12.34,
        scenarios: vec![],
        ..sample()
    };
    assert_eq!(
        line(&p, 160, false),
        "running 2m05s  vus 50/50  12.3 req/s  p95 -  errors 0 (0.00%)  40,944 iters"
    );
}

#[test]
fn a_very_long_phase_is_shortened_before_the_main_fields_go() {
    let p = Progress {
        phase: Some("x".repeat(300)),
        ..sample()
    };
    let out = line(&p, 101, false);
    assert!(out.starts_with("xxxxxxx") && out.contains('…'), "{out}");
    assert_eq!(width(&out), 100);
    assert!(out.contains("req/s") && out.contains("errors 0"), "{out}");
}

#[test]
fn colour_wraps_parts_without_changing_the_text() {
    let p = Progress {
        errors: 3,
        ..sample()
    };
    let colored = terminal_lines(&p, 160, true);
    assert!(
        colored[0].contains("\x1b[31merrors 3") && colored[1].contains("\x1b[32m["),
        "{colored:?}"
    );
    let plain = terminal_lines(&p, 160, false);
    for (c, p) in colored.iter().zip(&plain) {
        assert_eq!(width(c), width(p));
    }
}

#[test]
fn several_scenarios_show_their_own_vus() {
    let mut p = sample();
    p.scenarios[0].vus = Some(30);
    let mut spike = scenario("spike", 30, 7);
    spike.vus = Some(20);
    p.scenarios.push(spike);
    let lines = terminal_lines(&p, 160, false);
    assert!(
        lines[1].ends_with("12.0s/30.0s  30 VUs  40,944 iters"),
        "{lines:?}"
    );
    assert!(
        lines[2].ends_with("12.0s/30.0s  20 VUs  7 iters"),
        "{lines:?}"
    );
    // As the terminal narrows, the VUs go before the iterations.
    let mut dropped = false;
    for columns in (30..160).rev() {
        let line = &terminal_lines(&p, columns, false)[1];
        dropped |= !line.contains("VUs");
        assert!(
            !line.contains("VUs") || line.contains("iters"),
            "{columns}: {line}"
        );
    }
    assert!(dropped, "some width leaves the VUs out");
    assert!(
        plain_line(&p).ends_with("[default 40,944 (30 VUs), spike 7 (20 VUs)]"),
        "{}",
        plain_line(&p)
    );
    // One scenario: the status line's VUs are its own.
    p.scenarios.truncate(1);
    assert!(!terminal_lines(&p, 160, false)[1].contains("VUs"));
}

#[test]
fn plain_line_has_every_figure_and_no_escape_codes() {
    let mut p = sample();
    p.errors = 2;
    p.scenarios.push(scenario("spike", 10, 7));
    let out = plain_line(&p);
    assert_eq!(
        out,
        "running 12.0s/30.0s, vus 50/50, 40,944 iterations, 3,412 req/s, p95 4.21ms, \
         errors 2 (0.00%) [default 40,944, spike 7]"
    );
    assert!(!out.contains('\x1b'));
}

#[test]
fn bar_fills_from_empty_to_full() {
    assert_eq!(progress_bar(0.0, 10), "[          ]");
    assert_eq!(progress_bar(0.5, 10), "[====>     ]");
    assert_eq!(progress_bar(1.0, 10), "[==========]");
    assert_eq!(progress_bar(9.0, 10), "[==========]");
}

#[test]
fn clock_formats() {
    assert_eq!(clock(Duration::from_millis(12_049)), "12.0s");
    assert_eq!(clock(Duration::from_millis(59_999)), "59.9s");
    assert_eq!(clock(Duration::from_secs(123)), "2m03s");
    assert_eq!(clock(Duration::from_secs(3_723)), "1h02m03s");
}

proptest! {
    #[test]
    fn never_wider_than_the_terminal(
        columns in 0usize..300,
        elapsed in 0u64..u64::MAX / 2,
        total in prop_oneof![Just(0u64), 0u64..u64::MAX / 2],
        vus in any::<u64>(),
        iterations in any::<u64>(),
        rps in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -1e3f64..1e30],
        p95 in proptest::option::of(0f64..1e12),
        errors in any::<u64>(),
        phase in proptest::option::of("[a-z ✓µ\n]{0,150}"),
        names in proptest::collection::vec("[a-z✓\n]{0,40}", 0..4),
        color in any::<bool>(),
    ) {
        let p = Progress {
            elapsed: Duration::from_millis(elapsed),
            total: Duration::from_millis(total),
            vus, vus_max: vus, iterations, rps, p95_ms: p95, errors, requests: errors, phase,
            scenarios: names.iter().map(|n| ScenarioProgress {
                name: n.clone(),
                start: Duration::from_millis(elapsed / 2),
                length: Duration::from_millis(total),
                iterations,
                vus: Some(vus),
            }).collect(),
        };
        let budget = columns.saturating_sub(1).max(1);
        for l in terminal_lines(&p, columns, color) {
            prop_assert!(format::display_width(&l) <= budget, "{} > {budget}: {l:?}", format::display_width(&l));
            prop_assert!(!l.contains('\n'));
        }
        prop_assert!(!plain_line(&p).contains('\x1b'));
    }
}
