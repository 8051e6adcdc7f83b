use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::metrics::catalog::Metric;
use crate::metrics::tags::TagSet;
use crate::metrics::trend::Trend;

fn key(metric: Metric, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, TagSet::from_pairs(tags.iter().copied()))
}

fn snap(start_ms: u64, series: Vec<(SeriesKey, Value)>) -> Snapshot {
    let mut s = Snapshot {
        start_unix_ms: start_ms,
        duration: Duration::from_secs(1),
        series,
    };
    s.series.sort_by(|a, b| a.0.cmp(&b.0));
    s
}

fn trend_ms(ms: &[u64]) -> Value {
    let mut t = Trend::new();
    for &v in ms {
        t.record(Duration::from_millis(v));
    }
    Value::Trend(Box::new(t))
}

/// The pushed samples by `name{label=value,...}`.
fn decode(p: &Push) -> BTreeMap<String, (f64, i64)> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&p.body)
        .expect("snappy block");
    let series = proto::decode_write_request(&raw).expect("protobuf");
    assert_eq!(series.len() as u64, p.samples);
    series
        .into_iter()
        .map(|s| {
            let mut names: Vec<&str> = s.labels.iter().map(|(n, _)| n.as_str()).collect();
            let sorted = {
                let mut c = names.clone();
                c.sort();
                c
            };
            assert_eq!(names, sorted, "labels sorted");
            names.dedup();
            assert_eq!(names.len(), s.labels.len(), "no duplicate labels");
            let name = s
                .labels
                .iter()
                .find(|(n, _)| n == "__name__")
                .map(|(_, v)| v.clone())
                .expect("__name__");
            let rest: Vec<String> = s
                .labels
                .iter()
                .filter(|(n, _)| n != "__name__")
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            assert_eq!(s.samples.len(), 1);
            (format!("{name}{{{}}}", rest.join(",")), s.samples[0])
        })
        .collect()
}

#[test]
fn k6_names_cumulative_values_and_seconds() {
    let stats = TrendStat::parse_list("min,max,avg,p(90),p(99.9),med,count,sum").expect("valid");
    let mut rw = RemoteWrite::new(stats);
    let ok = [("status", "200"), ("scenario", "main")];
    rw.add_interval(&snap(
        1_000_000,
        vec![
            (key(Metric::HttpReqs, &ok), Value::Counter(3.0)),
            (
                key(Metric::HttpReqDuration, &ok),
                trend_ms(&[100, 200, 300]),
            ),
            (
                key(Metric::HttpReqFailed, &ok),
                Value::Rate { trues: 1, total: 3 },
            ),
            (key(Metric::Vus, &[]), Value::gauge_of(5.0)),
        ],
    ));
    rw.add_interval(&snap(
        1_001_000,
        vec![
            (key(Metric::HttpReqs, &ok), Value::Counter(1.0)),
            (key(Metric::HttpReqDuration, &ok), trend_ms(&[400])),
            (
                key(Metric::HttpReqFailed, &ok),
                Value::Rate { trues: 0, total: 1 },
            ),
            (key(Metric::Vus, &[]), Value::gauge_of(2.0)),
        ],
    ));
    assert!(rw.has_news());
    let got = decode(&rw.take_push().expect("news"));
    let l = "{scenario=main,status=200}";
    let v = |name: &str| {
        got.get(name)
            .unwrap_or_else(|| panic!("{name} in {got:?}"))
            .0
    };
    assert_eq!(v(&format!("k6_http_reqs_total{l}")), 4.0);
    assert_eq!(v(&format!("k6_http_req_failed_rate{l}")), 0.25);
    assert_eq!(v("k6_vus{}"), 2.0);
    assert_eq!(v(&format!("k6_http_req_duration_min{l}")), 0.1);
    assert_eq!(v(&format!("k6_http_req_duration_max{l}")), 0.4);
    assert!((v(&format!("k6_http_req_duration_avg{l}")) - 0.25).abs() < 1e-12);
    assert!((v(&format!("k6_http_req_duration_sum{l}")) - 1.0).abs() < 1e-12);
    assert_eq!(v(&format!("k6_http_req_duration_count{l}")), 4.0);
    let p90 = v(&format!("k6_http_req_duration_p90{l}"));
    assert!((0.4..=0.4004).contains(&p90), "{p90}");
    assert!(got.contains_key(&format!("k6_http_req_duration_p999{l}")));
    let med = v(&format!("k6_http_req_duration_med{l}"));
    assert!((0.2..=0.2003).contains(&med), "{med}");
    // Every sample at the end of the last interval.
    assert!(got.values().all(|(_, ts)| *ts == 1_002_000));
    assert_eq!(got.len(), 11);

    // Nothing new: nothing sent. Then only what changed, later in time.
    assert!(rw.take_push().is_none());
    rw.add_interval(&snap(
        1_002_000,
        vec![(key(Metric::HttpReqs, &ok), Value::Counter(2.0))],
    ));
    let got = decode(&rw.take_push().expect("news"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[&format!("k6_http_reqs_total{l}")], (6.0, 1_003_000));

    // Stale markers for every series ever sent, after the last push.
    let stale = decode(&rw.stale_markers().expect("series were sent"));
    assert_eq!(stale.len(), 11);
    assert!(
        stale
            .values()
            .all(|(v, ts)| v.to_bits() == STALE_NAN && *ts == 1_003_001)
    );
}

#[test]
fn labels_are_valid_prometheus_names_and_skip_empty_values() {
    let k = key(
        Metric::Iterations,
        &[
            ("group", ""),
            ("my-tag.x", "a"),
            ("9lives", "b"),
            ("__name__", "evil"),
        ],
    );
    assert_eq!(
        labels("k6_iterations_total", &k),
        vec![
            ("_9lives".to_owned(), "b".to_owned()),
            ("__name__".to_owned(), "k6_iterations_total".to_owned()),
            ("my_tag_x".to_owned(), "a".to_owned()),
        ]
    );
    assert_eq!(metric_name("a-b.c:d"), "a_b_c:d");
}

#[test]
fn trend_stats_as_k6_spells_them() {
    let s = TrendStat::parse_list("p(99)").expect("default");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].suffix(), "p99");
    let s = TrendStat::parse_list(" p(0.95), med ,med").expect("valid");
    assert_eq!(
        s.iter().map(TrendStat::suffix).collect::<Vec<_>>(),
        ["p095", "med"]
    );
    let e = TrendStat::parse_list("p95").expect_err("no parentheses");
    assert!(e.contains("\"p95\" is not a statistic"), "{e}");
    let e = TrendStat::parse_list("p(101)").expect_err("out of range");
    assert!(e.contains("from 0 to 100"), "{e}");
    assert!(TrendStat::parse_list(" , ").is_err());
}

#[test]
fn timestamps_always_move_forward() {
    let mut rw = RemoteWrite::new(vec![TrendStat::Count]);
    let s = snap(
        5_000,
        vec![(key(Metric::Iterations, &[]), Value::Counter(1.0))],
    );
    rw.add_interval(&s);
    let a = decode(&rw.take_push().expect("news"));
    // The same interval end again (a clock that did not move).
    rw.add_interval(&s);
    let b = decode(&rw.take_push().expect("news"));
    assert_eq!(a["k6_iterations_total{}"].1, 6_000);
    assert_eq!(b["k6_iterations_total{}"], (2.0, 6_001));
}

#[test]
fn trends_as_native_histograms() {
    let mut t = Trend::new();
    for ms in [100, 100, 101, 250, 1000] {
        t.record(Duration::from_millis(ms));
    }
    t.record(Duration::ZERO);
    let h = native_histogram(&t, Unit::Time, 42);
    assert_eq!(
        (h.count, h.zero_count, h.schema, h.timestamp),
        (6, 1, 3, 42)
    );
    assert!((h.sum - 1.551).abs() < 1e-12, "{}", h.sum);
    // Rebuild every bucket's absolute count and upper bound.
    let mut counts = Vec::new();
    let (mut index, mut count) = (0i32, 0i64);
    let mut deltas = h.positive_deltas.iter();
    for (offset, length) in &h.positive_spans {
        index += offset;
        for _ in 0..*length {
            count += deltas.next().expect("a delta per bucket");
            counts.push((2f64.powf(f64::from(index) / 8.0), count));
            index += 1;
        }
    }
    assert!(deltas.next().is_none());
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 5);
    // Each sample in the bucket that holds it, or its HDR bucket's highest
    // value (at most 0.1 % above it) when it sits on a native bucket's
    // upper bound (250 ms, 1 s); 100 and 101 ms share one (buckets are
    // about 9 % wide).
    for (ms, n) in [(100.0, 3), (250.0, 1), (1000.0, 1)] {
        let s = ms / 1000.0;
        let (_, got) = counts
            .iter()
            .find(|(upper, _)| *upper >= s && upper / 2f64.powf(1.0 / 8.0) < s * 1.001)
            .unwrap_or_else(|| panic!("a bucket for {ms} ms in {counts:?}"));
        assert_eq!(*got, n, "{ms} ms in {counts:?}");
    }
}

#[test]
fn native_mode_sends_one_histogram_series_per_trend() {
    let mut rw = RemoteWrite::new(vec![TrendStat::Count]).with_native_histograms();
    rw.add_interval(&snap(
        1_000_000,
        vec![
            (key(Metric::HttpReqDuration, &[]), trend_ms(&[5, 7])),
            (key(Metric::HttpReqs, &[]), Value::Counter(2.0)),
        ],
    ));
    let p = rw.take_push().expect("news");
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&p.body)
        .expect("snappy block");
    let series = proto::decode_write_request(&raw).expect("protobuf");
    let names: Vec<&str> = series
        .iter()
        .flat_map(|s| s.labels.iter())
        .filter(|(n, _)| n == "__name__")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        names,
        ["k6_http_reqs_total", "k6_http_req_duration_seconds"]
    );
}
