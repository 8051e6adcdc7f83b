//! The encoding read back with a small protobuf reader (field numbers from
//! the OTLP `.proto` files); the integration test `tests/outputs_otel.rs`
//! decodes it with the OpenTelemetry project's own generated classes.

use std::time::Duration;

use super::*;
use crate::metrics::catalog::Metric;
use crate::metrics::tags::TagSet;

/// A decoded field: a varint / fixed64 number or length-delimited bytes.
#[derive(Debug, Clone)]
enum F {
    N(u64),
    B(Vec<u8>),
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn fields(b: &[u8]) -> Vec<(u32, F)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i);
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, F::N(varint(b, &mut i)))),
            1 => {
                let mut x = [0u8; 8];
                x.copy_from_slice(&b[i..i + 8]);
                i += 8;
                out.push((field, F::N(u64::from_le_bytes(x))));
            }
            2 => {
                let n = varint(b, &mut i) as usize;
                out.push((field, F::B(b[i..i + n].to_vec())));
                i += n;
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

fn all(b: &[u8], field: u32) -> Vec<F> {
    fields(b)
        .into_iter()
        .filter(|(f, _)| *f == field)
        .map(|(_, v)| v)
        .collect()
}

fn msg(b: &[u8], field: u32) -> Vec<u8> {
    match all(b, field).pop() {
        Some(F::B(v)) => v,
        other => panic!("field {field}: {other:?}"),
    }
}

fn msgs(b: &[u8], field: u32) -> Vec<Vec<u8>> {
    all(b, field)
        .into_iter()
        .map(|f| match f {
            F::B(v) => v,
            F::N(n) => panic!("field {field}: number {n}"),
        })
        .collect()
}

fn num(b: &[u8], field: u32) -> u64 {
    match all(b, field).pop() {
        Some(F::N(v)) => v,
        other => panic!("field {field}: {other:?}"),
    }
}

fn text(b: &[u8], field: u32) -> String {
    String::from_utf8(msg(b, field)).expect("UTF-8")
}

/// `KeyValue`s with string values.
fn attrs(b: &[u8], field: u32) -> Vec<(String, String)> {
    msgs(b, field)
        .iter()
        .map(|kv| (text(kv, 1), text(&msg(kv, 2), 1)))
        .collect()
}

fn key(metric: Metric, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, TagSet::from_pairs(tags.iter().copied()))
}

fn trend_of_ms(ms: &[f64]) -> Value {
    let mut t = crate::metrics::Trend::new();
    for m in ms {
        t.record(Duration::from_secs_f64(m / 1000.0));
    }
    Value::Trend(Box::new(t))
}

fn snapshot(start_ms: u64, series: Vec<(SeriesKey, Value)>) -> Snapshot {
    let mut series = series;
    series.sort_by(|a, b| a.0.cmp(&b.0));
    Snapshot {
        start_unix_ms: start_ms,
        duration: Duration::from_secs(1),
        series,
    }
}

fn naming() -> Naming {
    Naming {
        service_name: "checkout".into(),
        service_version: "1.2.3".into(),
        metric_prefix: "k6_".into(),
    }
}

/// Metric name → the metric message.
fn metrics(req: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let rm = msg(req, 1);
    let sm = msg(&rm, 2);
    assert_eq!(text(&msg(&sm, 1), 1), SCOPE);
    msgs(&sm, 2).into_iter().map(|m| (text(&m, 1), m)).collect()
}

#[test]
fn totals_add_up_across_intervals() {
    let ok = key(Metric::HttpReqs, &[("status", "200")]);
    let nf = key(Metric::HttpReqs, &[("status", "404")]);
    let dur = key(Metric::HttpReqDuration, &[("status", "200")]);
    let failed = key(Metric::HttpReqFailed, &[]);
    let vus = key(Metric::Vus, &[]);
    let mut c = Cumulative::new(naming());
    c.add(
        &snapshot(
            1_000,
            vec![
                (ok.clone(), Value::Counter(3.0)),
                (dur.clone(), trend_of_ms(&[1.0, 7.0, 30.0])),
                (failed.clone(), Value::Rate { trues: 1, total: 3 }),
                (vus.clone(), Value::gauge_of(4.0)),
            ],
        ),
        &[("testid", "t1")],
    );
    c.add(
        &snapshot(
            2_000,
            vec![
                (ok.clone(), Value::Counter(2.0)),
                (nf.clone(), Value::Counter(1.0)),
                (dur.clone(), trend_of_ms(&[0.5, 20_000.0])),
                (failed.clone(), Value::Rate { trues: 0, total: 3 }),
                (vus.clone(), Value::gauge_of(2.0)),
            ],
        ),
        &[("testid", "t1")],
    );
    assert!(c.is_fresh());
    let mut reqs = c.encode(1000);
    assert_eq!(reqs.len(), 1);
    let (req, points) = reqs.remove(0);
    assert_eq!(points, 6);
    assert!(!c.is_fresh());

    let rm = msg(&req, 1);
    let resource = attrs(&msg(&rm, 1), 1);
    assert_eq!(
        resource,
        [
            ("service.name".to_owned(), "checkout".to_owned()),
            ("service.version".to_owned(), "1.2.3".to_owned())
        ]
    );
    let m = metrics(&req);
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "k6_http_req_duration",
            "k6_http_req_failed.occurred",
            "k6_http_req_failed.total",
            "k6_http_reqs",
            "k6_vus"
        ]
    );

    // Counter: a cumulative monotonic double Sum, a point per series.
    let sum = msg(&m["k6_http_reqs"], 7);
    assert_eq!(num(&sum, 2), CUMULATIVE);
    assert_eq!(num(&sum, 3), 1);
    let points = msgs(&sum, 1);
    assert_eq!(points.len(), 2);
    let value = |p: &[u8]| f64::from_bits(num(p, 4));
    assert_eq!(value(&points[0]), 5.0);
    assert_eq!(value(&points[1]), 1.0);
    assert_eq!(
        attrs(&points[1], 7),
        [
            ("status".to_owned(), "404".to_owned()),
            ("testid".to_owned(), "t1".to_owned())
        ]
    );
    assert_eq!(num(&points[0], 2), 1_000_000_000);
    assert_eq!(num(&points[0], 3), 3_000_000_000);

    // Rate: two integer Sums.
    let int = |name: &str| num(&msgs(&msg(&m[name], 7), 1)[0], 6);
    assert_eq!(int("k6_http_req_failed.occurred"), 1);
    assert_eq!(int("k6_http_req_failed.total"), 6);

    // Gauge: the last value.
    let g = msgs(&msg(&m["k6_vus"], 5), 1);
    assert_eq!(f64::from_bits(num(&g[0], 4)), 2.0);

    // Trend: a histogram in ms with exact count, sum, min and max.
    assert_eq!(text(&m["k6_http_req_duration"], 3), "ms");
    let h = msg(&m["k6_http_req_duration"], 9);
    assert_eq!(num(&h, 2), CUMULATIVE);
    let p = &msgs(&h, 1)[0];
    assert_eq!(num(p, 4), 5);
    let sum = f64::from_bits(num(p, 5));
    assert!((sum - 20_038.5).abs() < 1e-6, "{sum}");
    assert_eq!(f64::from_bits(num(p, 11)), 0.5);
    assert_eq!(f64::from_bits(num(p, 12)), 20_000.0);
    let buckets: Vec<u64> = msg(p, 6)
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    // (0,5]: 0.5, 1; (5,10]: 7; (25,50]: 30; (10000,+inf): 20000.
    let mut expected = [0u64; 16];
    expected[1] = 2;
    expected[2] = 1;
    expected[4] = 1;
    expected[15] = 1;
    assert_eq!(buckets, expected);
    assert_eq!(msg(p, 7).len(), BOUNDS.len() * 8);
}

#[test]
fn samples_on_a_bound_count_below_it() {
    let dur = key(Metric::HttpReqDuration, &[]);
    let mut c = Cumulative::new(naming());
    c.add(
        &snapshot(0, vec![(dur, trend_of_ms(&[5.0, 10.0, 100.0, 0.0]))]),
        &[],
    );
    let req = one(c.encode(1000));
    let m = metrics(&req);
    let p = &msgs(&msg(&m["k6_http_req_duration"], 9), 1)[0];
    let buckets: Vec<u64> = msg(p, 6)
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    assert_eq!(&buckets[..7], &[1, 1, 1, 0, 0, 0, 1]);
}

#[test]
fn empty_tag_values_are_left_out_and_nothing_is_fresh_at_first() {
    let mut c = Cumulative::new(naming());
    assert!(!c.is_fresh());
    c.add(
        &snapshot(
            0,
            vec![(
                key(Metric::Iterations, &[("group", ""), ("scenario", "main")]),
                Value::Counter(1.0),
            )],
        ),
        &[],
    );
    let req = one(c.encode(1000));
    let m = metrics(&req);
    let p = &msgs(&msg(&m["k6_iterations"], 7), 1)[0];
    assert_eq!(attrs(p, 7), [("scenario".to_owned(), "main".to_owned())]);
}

#[test]
fn extra_tags_name_series_apart() {
    let reqs = key(Metric::HttpReqs, &[("status", "200")]);
    let mut c = Cumulative::new(naming());
    for (agent, n) in [("agent-0", 2.0), ("agent-1", 3.0), ("agent-0", 4.0)] {
        c.add(
            &snapshot(0, vec![(reqs.clone(), Value::Counter(n))]),
            &[("testid", "t1"), ("agent", agent)],
        );
    }
    let req = one(c.encode(1000));
    let m = metrics(&req);
    let points = msgs(&msg(&m["k6_http_reqs"], 7), 1);
    let by_agent: Vec<(String, f64)> = points
        .iter()
        .map(|p| {
            let a = attrs(p, 7);
            let agent = a.iter().find(|(k, _)| k == "agent").map(|(_, v)| v.clone());
            (agent.unwrap_or_default(), f64::from_bits(num(p, 4)))
        })
        .collect();
    assert_eq!(
        by_agent,
        [("agent-0".to_owned(), 6.0), ("agent-1".to_owned(), 3.0)]
    );
}

/// The only request of an export.
fn one(mut reqs: Vec<(Vec<u8>, u64)>) -> Vec<u8> {
    assert_eq!(reqs.len(), 1);
    reqs.remove(0).0
}

#[test]
fn large_exports_are_split_into_requests() {
    let mut c = Cumulative::new(naming());
    let series: Vec<(SeriesKey, Value)> = (0..5)
        .map(|i| {
            (
                key(Metric::HttpReqs, &[("status", &format!("{}", 200 + i))]),
                Value::Counter(1.0),
            )
        })
        .chain([(key(Metric::Checks, &[]), Value::Rate { trues: 1, total: 1 })])
        .collect();
    c.add(&snapshot(0, series), &[]);
    let reqs = c.encode(2);
    assert_eq!(reqs.len(), 3);
    let points: Vec<u64> = reqs.iter().map(|(_, n)| *n).collect();
    // Sorted by metric (catalogue order): the five http_reqs series, then
    // checks, a rate, with two points.
    assert_eq!(points, [2, 2, 3]);
    let total: f64 = reqs
        .iter()
        .flat_map(|(r, _)| {
            metrics(r)
                .get("k6_http_reqs")
                .map(|m| msgs(&msg(m, 7), 1))
                .unwrap_or_default()
        })
        .map(|p| f64::from_bits(num(&p, 4)))
        .sum();
    assert_eq!(total, 5.0);
}
