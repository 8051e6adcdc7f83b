//! The merge against offline truth: exact percentiles, gauges per interval
//! and over time, idempotent delivery, sealing, the live view and the
//! breakdown.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::metrics::Trend;
use crate::metrics::aggregate::trend_percentile_ms;
use crate::metrics::{SeriesKey, TagSet};

const T0: u64 = 1_700_000_000_000;

fn key(metric: Metric, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, TagSet::from_pairs(tags.iter().copied()))
}

fn trend(us: &[u64]) -> Value {
    let mut t = Trend::new();
    for &v in us {
        t.record(Duration::from_micros(v));
    }
    Value::Trend(Box::new(t))
}

/// Records `us` microseconds into `t`.
fn record_us(t: &mut Trend, us: u64) {
    t.record(Duration::from_micros(us));
}

/// Interval `seq` of a test that started at `T0`, 1 s long.
fn snap(seq: u64, series: Vec<(SeriesKey, Value)>) -> Snapshot {
    let mut s = Snapshot {
        start_unix_ms: T0 + seq * 1000,
        duration: Duration::from_secs(1),
        series,
    };
    s.series.sort_by(|a, b| a.0.cmp(&b.0));
    s
}

/// A typical interval: `reqs` requests of which `failed` failed, one
/// iteration per request, latencies `us`, and `vus` active VUs.
fn traffic(seq: u64, us: &[u64], failed: u64, vus: f64) -> Snapshot {
    let n = us.len() as u64;
    snap(
        seq,
        vec![
            (
                key(Metric::HttpReqs, &[("status", "200")]),
                Value::Counter(n as f64),
            ),
            (
                key(Metric::HttpReqFailed, &[]),
                Value::Rate {
                    trues: failed,
                    total: n,
                },
            ),
            (key(Metric::Iterations, &[]), Value::Counter(n as f64)),
            (
                key(Metric::HttpReqDuration, &[("status", "200")]),
                trend(us),
            ),
            (key(Metric::Vus, &[]), Value::gauge_of(vus)),
        ],
    )
}

fn agents(specs: &[(&str, &[(&str, &str)])]) -> Vec<(String, BTreeMap<String, String>)> {
    specs
        .iter()
        .map(|(id, labels)| {
            let labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (id.to_string(), labels)
        })
        .collect()
}

fn durations(agg: &Aggregate) -> Trend {
    match agg.metric_value(Metric::HttpReqDuration, &[]) {
        Some(Value::Trend(h)) => *h,
        other => panic!("no trend: {other:?}"),
    }
}

fn vus(agg: &Aggregate) -> Option<Value> {
    agg.metric_value(Metric::Vus, &[])
}

fn ms(h: &Trend, p: f64) -> f64 {
    trend_percentile_ms(h, p)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Samples spread over agents, intervals and tagged series, shipped
    /// through the wire form in a shuffled order with repeats, give the
    /// percentiles of one histogram fed every sample.
    #[test]
    fn fleet_percentiles_equal_one_histogram_of_every_sample(
        samples in proptest::collection::vec((0usize..4, 0u64..5, any::<bool>(), 1u64..2_000_000), 1..400),
        order_seed in any::<u64>(),
    ) {
        let ids = ["a", "b", "c", "d"];
        let mut per: BTreeMap<(usize, u64), (Vec<u64>, Vec<u64>)> = BTreeMap::new();
        let mut all = Trend::new();
        let mut by_agent = vec![Trend::new(); ids.len()];
        for (agent, seq, ok, us) in samples {
            let slot = per.entry((agent, seq)).or_default();
            if ok { slot.0.push(us) } else { slot.1.push(us) }
            record_us(&mut all, us);
            record_us(&mut by_agent[agent], us);
        }
        let mut deliveries: Vec<(usize, u64, Vec<u8>)> = per
            .iter()
            .map(|(&(agent, seq), (ok, bad))| {
                let s = snap(seq, vec![
                    (key(Metric::HttpReqDuration, &[("status", "200")]), trend(ok)),
                    (key(Metric::HttpReqDuration, &[("status", "500")]), trend(bad)),
                    (key(Metric::HttpReqs, &[]), Value::Counter((ok.len() + bad.len()) as f64)),
                ]);
                (agent, seq, s.encode())
            })
            .collect();
        let repeats: Vec<_> = deliveries.iter().step_by(3).cloned().collect();
        deliveries.extend(repeats);
        fastrand::Rng::with_seed(order_seed).shuffle(&mut deliveries);

        let mut fleet = FleetResults::new(&agents(&[("a", &[("region", "eu")]), ("b", &[("region", "eu")]), ("c", &[]), ("d", &[])]));
        for (agent, seq, bytes) in deliveries {
            let s = Snapshot::decode(&bytes).expect("own encoding decodes");
            let outcome = fleet.ingest(ids[agent], seq, s);
            prop_assert!(!matches!(outcome, Ingest::Invalid(_) | Ingest::UnknownAgent), "{outcome:?}");
        }
        fleet.finish();

        let merged = durations(fleet.fleet());
        prop_assert_eq!(&merged, &all);
        for p in [50.0, 95.0, 99.0] {
            prop_assert_eq!(ms(&merged, p), ms(&all, p));
        }
        let rows = fleet.breakdown(&["region"]);
        for (i, id) in ids.iter().enumerate() {
            let row = rows.iter().find(|r| r.dimension == "agent" && r.value == *id).expect("a row per agent");
            prop_assert_eq!(row.requests, by_agent[i].count());
            prop_assert_eq!(row.p95_ms, ms(&by_agent[i], 95.0));
        }
        let mut eu = by_agent[0].clone();
        eu.add(&by_agent[1]).expect("grows");
        let row = rows.iter().find(|r| r.dimension == "region").expect("eu row");
        prop_assert_eq!((row.value.as_str(), row.requests), ("eu", eu.count()));
        for (got, p) in [(row.p50_ms, 50.0), (row.p95_ms, 95.0), (row.p99_ms, 99.0)] {
            prop_assert_eq!(got, ms(&eu, p));
        }
    }
}

#[test]
fn repeated_deliveries_count_once_and_late_ones_still_count() {
    let mut fleet = FleetResults::new(&agents(&[("a", &[]), ("b", &[])]));
    assert_eq!(
        fleet.ingest("a", 0, traffic(0, &[1000; 10], 1, 5.0)),
        Ingest::Applied
    );
    assert_eq!(
        fleet.ingest("a", 0, traffic(0, &[1000; 10], 1, 5.0)),
        Ingest::Duplicate
    );
    assert_eq!(
        fleet.ingest("a", 2, traffic(2, &[1000; 4], 0, 5.0)),
        Ingest::Applied
    );
    assert_eq!(
        fleet.ingest("a", 1, traffic(1, &[1000; 3], 0, 5.0)),
        Ingest::OutOfOrder
    );
    assert_eq!(
        fleet.ingest("a", 1, traffic(1, &[1000; 3], 0, 5.0)),
        Ingest::Duplicate
    );
    assert_eq!(
        fleet.ingest("zed", 0, traffic(0, &[1000], 0, 1.0)),
        Ingest::UnknownAgent
    );

    let unsorted = Snapshot {
        start_unix_ms: T0,
        duration: Duration::from_secs(1),
        series: vec![
            (key(Metric::Vus, &[]), Value::gauge_of(1.0)),
            (key(Metric::HttpReqs, &[]), Value::Counter(1.0)),
        ],
    };
    assert!(matches!(fleet.ingest("b", 0, unsorted), Ingest::Invalid(_)));
    // An invalid delivery leaves the seq unseen: the corrected one applies.
    assert_eq!(
        fleet.ingest("b", 0, traffic(0, &[2000; 6], 2, 3.0)),
        Ingest::Applied
    );

    let reqs = |agg: &Aggregate| agg.metric_value(Metric::HttpReqs, &[]);
    assert_eq!(
        reqs(fleet.agent("a").expect("agent")),
        Some(Value::Counter(17.0))
    );
    assert_eq!(reqs(fleet.fleet()), Some(Value::Counter(23.0)));
    assert_eq!(
        fleet.fleet().metric_value(Metric::HttpReqFailed, &[]),
        Some(Value::Rate {
            trues: 3,
            total: 23
        })
    );
    assert_eq!(durations(fleet.fleet()).count(), 23);
    assert!(fleet.agent("zed").is_none());
}

#[test]
fn fleet_gauges_sum_per_interval_and_follow_time() {
    // Untagged `vus` from both agents: the same series, so only the
    // per-interval sum keeps them apart. Agent `a` runs ahead: a partial
    // sum (its value alone) must never become the fleet's minimum.
    let mut fleet = FleetResults::new(&agents(&[("a", &[]), ("b", &[])]));
    let a = [10.0, 12.0, 8.0];
    let b = [20.0, 30.0, 25.0];
    for seq in 0..3 {
        fleet.ingest("a", seq, traffic(seq, &[1000], 0, a[seq as usize]));
    }
    assert_eq!(vus(fleet.fleet()), None, "no interval is complete yet");
    for seq in 0..3 {
        fleet.ingest("b", seq, traffic(seq, &[1000], 0, b[seq as usize]));
    }
    assert_eq!(
        vus(fleet.fleet()),
        Some(Value::Gauge {
            value: 33.0,
            min: 30.0,
            max: 42.0
        })
    );
    // Each agent's own gauge follows its own time.
    assert_eq!(
        vus(fleet.agent("b").expect("agent")),
        Some(Value::Gauge {
            value: 25.0,
            min: 20.0,
            max: 30.0
        })
    );
    // A retried older interval does not move an agent's current value.
    let mut late_first = FleetResults::new(&agents(&[("a", &[])]));
    late_first.ingest("a", 1, traffic(1, &[1000], 0, 7.0));
    late_first.ingest("a", 0, traffic(0, &[1000], 0, 3.0));
    assert_eq!(
        vus(late_first.agent("a").expect("agent")).map(|v| match v {
            Value::Gauge { value, .. } => value,
            _ => f64::NAN,
        }),
        Some(7.0)
    );
}

#[test]
fn an_interval_seals_without_a_lost_agent_after_the_lag() {
    let mut fleet = FleetResults::new(&agents(&[("a", &[]), ("b", &[])])).with_seal_lag(2);
    fleet.ingest("a", 0, traffic(0, &[1000; 4], 0, 4.0));
    fleet.ingest("a", 1, traffic(1, &[1000; 4], 0, 4.0));
    assert_eq!(fleet.live(10).seqs, None, "waiting for b");
    fleet.ingest("a", 2, traffic(2, &[1000; 4], 0, 4.0));
    assert_eq!(fleet.live(10).seqs, Some((0, 0)));
    assert_eq!(vus(fleet.fleet()), Some(Value::gauge_of(4.0)));

    // b's report of the sealed interval arrives late: its counters and
    // latencies count, its gauge is left out of the fleet's history.
    assert_eq!(
        fleet.ingest("b", 0, traffic(0, &[3000; 2], 0, 9.0)),
        Ingest::Applied
    );
    assert_eq!(fleet.late_intervals(), 1);
    assert_eq!(vus(fleet.fleet()), Some(Value::gauge_of(4.0)));
    assert_eq!(
        fleet.fleet().metric_value(Metric::HttpReqs, &[]),
        Some(Value::Counter(14.0))
    );
    // Interval 1 completes with b's report and seals at once.
    fleet.ingest("b", 1, traffic(1, &[3000; 2], 0, 9.0));
    assert_eq!(fleet.live(10).seqs, Some((0, 1)));
    fleet.finish();
    assert_eq!(fleet.live(10).seqs, Some((0, 2)));
    let notes = fleet.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("agent b: 1 of 3 intervals missing")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("1 interval(s) arrived after")),
        "{notes:?}"
    );
}

#[test]
fn an_agent_that_ended_an_interval_early_is_not_missing_one() {
    let mut fleet = FleetResults::new(&agents(&[("a", &[]), ("b", &[])]));
    for seq in 0..3 {
        fleet.ingest("a", seq, traffic(seq, &[1000], 0, 1.0));
    }
    // b's engine stopped before a third (partial) interval.
    for seq in 0..2 {
        fleet.ingest("b", seq, traffic(seq, &[1000], 0, 1.0));
    }
    fleet.agent_finished("a", 3);
    fleet.agent_finished("b", 2);
    fleet.finish();
    assert_eq!(fleet.notes(), Vec::<String>::new());

    // What an agent said it sent is what is expected of it.
    fleet.agent_finished("b", 4);
    assert_eq!(
        fleet.notes(),
        vec!["agent b: 2 of 4 intervals missing; its results lack them".to_owned()]
    );
}

#[test]
fn live_view_merges_the_latest_sealed_intervals() {
    let mut fleet = FleetResults::new(&agents(&[("a", &[]), ("b", &[])]));
    for seq in 0..4 {
        // Latencies grow each second: the window decides the percentiles.
        let us: Vec<u64> = (1..=100).map(|i| i * 100 * (seq + 1)).collect();
        fleet.ingest("a", seq, traffic(seq, &us, seq, 10.0 + seq as f64));
        fleet.ingest("b", seq, traffic(seq, &us[..50], 0, 20.0));
    }
    let view = fleet.live(2);
    assert_eq!(view.seqs, Some((2, 3)));
    assert_eq!(view.intervals, 2);
    assert_eq!(view.covered, Duration::from_secs(2));
    assert_eq!(view.requests, 300);
    assert_eq!(view.iterations, 300);
    assert_eq!(view.failed, 5);
    assert!((view.rps - 150.0).abs() < 1e-9, "{}", view.rps);
    assert_eq!(view.vus, 33.0);

    let mut truth = Trend::new();
    for seq in 2..4u64 {
        for i in 1..=100u64 {
            record_us(&mut truth, i * 100 * (seq + 1));
            if i <= 50 {
                record_us(&mut truth, i * 100 * (seq + 1));
            }
        }
    }
    assert_eq!(view.p50_ms, ms(&truth, 50.0));
    assert_eq!(view.p95_ms, ms(&truth, 95.0));
    assert_eq!(view.p99_ms, ms(&truth, 99.0));
    assert!(view.p99_ms > fleet.live(1).p50_ms);
    assert_eq!(fleet.live(0), fleet.live(1), "a window of 0 means 1");
    assert_eq!(fleet.live(1000).intervals, 4);

    let empty = FleetResults::new(&[]).live(5);
    assert_eq!(
        (empty.requests, empty.rps, empty.p99_ms, empty.seqs),
        (0, 0.0, 0.0, None)
    );

    // The same intervals one by one, for charts: each its own merged
    // numbers, the fleet's vus kept past sealing.
    let recent = fleet.recent();
    assert_eq!(recent.len(), 4);
    let last = &recent[3];
    assert_eq!((last.requests, last.failed, last.iterations), (150, 3, 150));
    assert_eq!(last.span, Duration::from_secs(1));
    assert_eq!(last.vus, Some(33.0));
    let mut truth = Trend::new();
    for i in 1..=100u64 {
        record_us(&mut truth, i * 400);
        if i <= 50 {
            record_us(&mut truth, i * 400);
        }
    }
    assert_eq!(last.p99_ms, Some(ms(&truth, 99.0)));
    assert!(
        recent
            .windows(2)
            .all(|w| w[0].end_unix_ms < w[1].end_unix_ms)
    );
    assert!(FleetResults::new(&[]).recent().is_empty());
}

#[test]
fn breakdown_rows_per_agent_and_per_label_value() {
    let mut fleet = FleetResults::new(&agents(&[
        ("a", &[("region", "eu"), ("zone", "eu-1")]),
        ("b", &[("region", "eu")]),
        ("c", &[("region", "us")]),
    ]));
    for seq in 0..10 {
        fleet.ingest("a", seq, traffic(seq, &[1_000; 10], 1, 1.0));
        fleet.ingest("b", seq, traffic(seq, &[2_000; 10], 0, 1.0));
        fleet.ingest("c", seq, traffic(seq, &[50_000; 20], 2, 1.0));
    }
    assert_eq!(fleet.elapsed(), Duration::from_secs(10));
    let rows = fleet.breakdown(&["region", "zone", "missing"]);
    let summary: Vec<(&str, &str, u64, u64)> = rows
        .iter()
        .map(|r| (r.dimension.as_str(), r.value.as_str(), r.requests, r.failed))
        .collect();
    assert_eq!(
        summary,
        [
            ("agent", "a", 100, 10),
            ("agent", "b", 100, 0),
            ("agent", "c", 200, 20),
            ("region", "eu", 200, 10),
            ("region", "us", 200, 20),
            ("zone", "eu-1", 100, 10),
        ]
    );
    let eu = &rows[3];
    assert!((eu.rps - 20.0).abs() < 1e-9, "{}", eu.rps);
    // Half the eu samples at 1 ms, half at 2 ms: merged, never averaged.
    assert!((eu.p50_ms - 1.0).abs() < 0.001, "{}", eu.p50_ms);
    assert!((eu.p95_ms - 2.0).abs() < 0.002, "{}", eu.p95_ms);
    assert!((rows[2].p99_ms - 50.0).abs() < 0.05, "{}", rows[2].p99_ms);
}

#[test]
fn agents_joining_later_and_agents_that_never_report() {
    let mut fleet = FleetResults::new(&agents(&[("a", &[]), ("quiet", &[])]));
    fleet.ingest("a", 0, traffic(0, &[1000], 0, 1.0));
    assert!(fleet.add_agent("late", BTreeMap::new()));
    assert!(!fleet.add_agent("a", BTreeMap::from([("region".into(), "eu".into())])));
    assert_eq!(
        fleet.ingest("late", 5, traffic(5, &[1000; 2], 0, 1.0)),
        Ingest::Applied
    );
    assert_eq!(
        fleet
            .agent("a")
            .and_then(|a| a.metric_value(Metric::HttpReqs, &[])),
        Some(Value::Counter(1.0)),
        "re-adding keeps the results"
    );
    assert_eq!(
        fleet
            .breakdown(&["region"])
            .last()
            .map(|r| r.value.as_str()),
        Some("eu")
    );
    assert_eq!(
        fleet.agent_ids().collect::<Vec<_>>(),
        ["a", "late", "quiet"]
    );
    assert_eq!(fleet.elapsed(), Duration::from_secs(6));
    let notes = fleet.notes();
    assert!(
        notes.contains(&"agent quiet sent no results".to_string()),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("agent a: 5 of 6")),
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.starts_with("agent late")),
        "{notes:?}"
    );
}

#[test]
fn a_lost_agent_is_no_longer_awaited() {
    let mut fleet = FleetResults::new(&agents(&[("a", &[]), ("b", &[]), ("c", &[])]));
    for seq in 0..2 {
        for id in ["a", "b", "c"] {
            fleet.ingest(id, seq, traffic(seq, &[1000], 0, 1.0));
        }
    }
    fleet.ingest("a", 2, traffic(2, &[1000], 0, 1.0));
    fleet.ingest("b", 2, traffic(2, &[1000], 0, 1.0));
    assert_eq!(fleet.live(10).seqs, Some((0, 1)), "interval 2 waits for c");

    assert!(fleet.agent_lost("c"));
    assert!(!fleet.agent_lost("c"), "already lost");
    assert!(!fleet.agent_lost("nobody"));
    assert_eq!(fleet.live(10).seqs, Some((0, 2)), "sealed at once");
    fleet.ingest("a", 3, traffic(3, &[1000], 0, 1.0));
    fleet.ingest("b", 3, traffic(3, &[1000], 0, 1.0));
    assert_eq!(
        fleet.live(10).seqs,
        Some((0, 3)),
        "two reports complete it now"
    );
    assert_eq!(
        fleet.fleet().metric_value(Metric::Vus, &[]),
        Some(Value::Gauge {
            value: 2.0,
            min: 2.0,
            max: 3.0
        })
    );

    // A lost agent that is added back is awaited again; its late report
    // of an open interval counts in full.
    fleet.ingest("a", 4, traffic(4, &[1000], 0, 1.0));
    assert!(!fleet.add_agent("c", BTreeMap::new()));
    fleet.ingest("b", 4, traffic(4, &[1000], 0, 1.0));
    assert_eq!(
        fleet.live(10).seqs,
        Some((0, 3)),
        "interval 4 waits for c again"
    );
    assert_eq!(
        fleet.ingest("c", 4, traffic(4, &[1000], 0, 1.0)),
        Ingest::Applied
    );
    assert_eq!(fleet.live(10).seqs, Some((0, 4)));
    assert_eq!(fleet.live(1).requests, 3);
}

#[test]
fn outputs_get_each_sealed_interval_merged_once_per_group() {
    let labels = agents(&[
        ("a", &[("region", "us")]),
        ("b", &[("region", "us")]),
        ("c", &[("region", "eu")]),
    ]);
    let requests =
        |s: &SealedInterval| match s.snapshot.get(&key(Metric::HttpReqs, &[("status", "200")])) {
            Some(Value::Counter(n)) => *n,
            other => panic!("http_reqs in {s:?}: {other:?}"),
        };
    let vus = |s: &SealedInterval| match s.snapshot.get(&key(Metric::Vus, &[])) {
        Some(Value::Gauge { value, .. }) => *value,
        other => panic!("vus in {s:?}: {other:?}"),
    };

    // The whole fleet: one snapshot per interval, every agent summed.
    let mut r = FleetResults::new(&labels).with_outputs(OutputGrouping::Fleet);
    r.ingest("a", 0, traffic(0, &[100, 200], 0, 2.0));
    r.ingest("b", 0, traffic(0, &[300], 1, 1.0));
    assert!(r.take_sealed().is_empty(), "c has not reported seq 0 yet");
    r.ingest("c", 0, traffic(0, &[400, 500, 600], 0, 3.0));
    let sealed = r.take_sealed();
    assert_eq!(sealed.len(), 1);
    assert!(sealed[0].tags.is_empty());
    assert_eq!(requests(&sealed[0]), 6.0);
    assert_eq!(vus(&sealed[0]), 6.0);
    assert_eq!(sealed[0].snapshot.start_unix_ms, T0);
    assert!(r.take_sealed().is_empty(), "handed out once");
    // A late report still counts in the totals, not in the outputs.
    r.ingest("a", 1, traffic(1, &[100], 0, 2.0));
    r.finish();
    assert_eq!(r.take_sealed().len(), 1);
    r.ingest("b", 1, traffic(1, &[100], 0, 1.0));
    assert!(r.take_sealed().is_empty());
    assert!(
        r.notes().iter().any(|n| n.contains("and the outputs")),
        "{:?}",
        r.notes()
    );

    // Per region and per agent.
    for (by, expected) in [
        (
            OutputGrouping::Region,
            vec![(vec![("region", "eu")], 3.0), (vec![("region", "us")], 3.0)],
        ),
        (
            OutputGrouping::Agent,
            vec![
                (vec![("agent", "a"), ("region", "us")], 2.0),
                (vec![("agent", "b"), ("region", "us")], 1.0),
                (vec![("agent", "c"), ("region", "eu")], 3.0),
            ],
        ),
    ] {
        let mut r = FleetResults::new(&labels).with_outputs(by);
        r.ingest("a", 0, traffic(0, &[100, 200], 0, 2.0));
        r.ingest("b", 0, traffic(0, &[300], 1, 1.0));
        r.ingest("c", 0, traffic(0, &[400, 500, 600], 0, 3.0));
        let got: Vec<(Vec<(String, String)>, f64)> = r
            .take_sealed()
            .iter()
            .map(|s| (s.tags.clone(), requests(s)))
            .collect();
        let expected: Vec<(Vec<(String, String)>, f64)> = expected
            .into_iter()
            .map(|(tags, n)| {
                let tags = tags
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                (tags, n)
            })
            .collect();
        assert_eq!(got, expected, "{by:?}");
    }
    assert_eq!(OutputGrouping::parse("region"), Ok(OutputGrouping::Region));
    assert!(OutputGrouping::parse("zone").is_err());
}
