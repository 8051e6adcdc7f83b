//! Any summary, however odd (NaN, huge counts, empty names), renders and
//! exports without panicking, and colour never changes the text.

use proptest::prelude::*;

use super::*;
use crate::report::export::{ExportContext, k6_summary_export};

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0f64..1e6,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => -1e3f64..0.0,
        1 => 1e15f64..1e25,
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(Metric::ALL.map(|m| m.name()).to_vec()).prop_map(String::from),
        1 => "[a-z_{}:, ✓]{0,12}",
    ]
}

fn values() -> impl Strategy<Value = MetricValues> {
    prop_oneof![
        (value(), value()).prop_map(|(count, rate)| MetricValues::Counter { count, rate }),
        (value(), value(), value()).prop_map(|(value, min, max)| MetricValues::Gauge {
            value,
            min,
            max
        }),
        (value(), any::<u64>(), any::<u64>()).prop_map(|(rate, passes, fails)| {
            MetricValues::Rate {
                rate,
                passes,
                fails,
            }
        }),
        (
            any::<u64>(),
            proptest::collection::vec(("[a-z()0-9.]{0,6}", value()), 0..8)
        )
            .prop_map(|(count, stats)| MetricValues::Trend { count, stats }),
    ]
}

fn metric() -> impl Strategy<Value = MetricSummary> {
    (
        name(),
        proptest::collection::vec(("[a-z ]{0,5}", "[a-z0-9]{0,5}"), 0..3),
        values(),
    )
        .prop_map(|(name, tags, values)| MetricSummary { name, tags, values })
}

fn outcome() -> impl Strategy<Value = ThresholdOutcome> {
    (
        name(),
        "[a-z()<>=0-9. ]{0,10}",
        "[a-z()0-9]{0,6}",
        proptest::option::of(value()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(key, source, aggregation, observed, ok, aborted)| ThresholdOutcome {
                key,
                source,
                aggregation,
                observed,
                ok,
                aborted,
            },
        )
}

fn summary() -> impl Strategy<Value = Summary> {
    (
        0u64..10_000_000,
        proptest::collection::vec(metric(), 0..12),
        proptest::collection::vec(outcome(), 0..6),
        proptest::collection::vec(
            (
                "[a-z ✓]{0,8}",
                "(::[a-z]{1,4}){0,3}",
                any::<u64>(),
                any::<u64>(),
            ),
            0..5,
        ),
        proptest::collection::vec(("[a-z ]{0,8}", any::<u64>()), 0..4),
        proptest::collection::vec(
            (
                "agent|region",
                "[a-z0-9-]{0,8}",
                any::<u64>(),
                any::<u64>(),
                value(),
                value(),
            ),
            0..4,
        ),
        proptest::collection::vec("[a-z ]{0,20}", 0..3),
    )
        .prop_map(
            |(millis, metrics, thresholds, checks, errors, breakdown, notes)| Summary {
                duration: Duration::from_millis(millis),
                metrics,
                thresholds,
                checks: checks
                    .into_iter()
                    .map(|(name, group, passes, fails)| CheckSummary {
                        name,
                        group,
                        passes,
                        fails,
                    })
                    .collect(),
                errors,
                trend_stats: TrendStat::k6_defaults(),
                breakdown: breakdown
                    .into_iter()
                    .map(|(dimension, value, requests, failed, rps, p)| Breakdown {
                        dimension,
                        value,
                        requests,
                        failed,
                        rps,
                        p50_ms: p,
                        p95_ms: p,
                        p99_ms: p,
                    })
                    .collect(),
                notes,
                matrix: Vec::new(),
                scopes: Vec::new(),
            },
        )
}

proptest! {
    #[test]
    fn any_summary_renders_and_exports_without_panicking(summary in summary()) {
        let plain_text = render(&summary, &TextOptions::default());
        let colored = render(&summary, &TextOptions { color: true, ..TextOptions::default() });
        prop_assert_eq!(strip_ansi(&colored), plain_text.clone());
        prop_assert!(plain_text.ends_with('\n'));
        for line in plain_text.lines() {
            prop_assert!(!line.ends_with(' '), "trailing blank in {:?}", line);
        }
        let export = k6_summary_export(&summary, &ExportContext::default());
        prop_assert!(export["root_group"].is_object() && export["metrics"].is_object());

        // Full mode, with the same results as a scenario and a nested group
        // (and a group with no scenario before it, which is skipped).
        let mut scoped = summary.clone();
        let scope = |kind, depth| crate::metrics::SummaryScope {
            kind,
            name: "s".into(),
            depth,
            metrics: summary.metrics.clone(),
            checks: summary.checks.clone(),
        };
        scoped.scopes = vec![
            scope(crate::metrics::ScopeKind::Group, 1),
            scope(crate::metrics::ScopeKind::Scenario, 0),
            scope(crate::metrics::ScopeKind::Group, 3),
        ];
        let full = render(&scoped, &TextOptions { full: true, ..TextOptions::default() });
        prop_assert!(full.contains("█ SCENARIO: s"));
        for line in full.lines() {
            prop_assert!(!line.ends_with(' '), "trailing blank in {:?}", line);
        }
    }
}
