//! Benchmarks of the metrics hot paths: recording an HTTP sample into
//! series the recorder has seen, merging two agents' interval snapshots,
//! and the snapshot wire form both ways; and the trend layouts Volley could
//! use (whole microseconds, nanoseconds, microseconds with exact
//! nanosecond min, max and sum beside them): the cost of recording one
//! duration and the memory of a histogram over typical ranges.
//!
//! `cargo bench --bench metrics`. Kept short (20 samples, 2 s each).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::Method;
use volley::metrics::{HttpSample, Recorder, RecorderOptions, Sample, Snapshot, Timings};
use volley::plan::{
    Executor, Flow, HttpOptions, Plan, Request, RequestId, Scenario, Template, TrendStat,
};

/// One scenario with four requests.
fn plan() -> Plan {
    let requests = (0..4u32)
        .map(|i| {
            Arc::new(Request {
                id: RequestId(i),
                path: format!("flow[{i}].get"),
                method: Method::GET,
                url: Template::literal(format!("http://127.0.0.1:1/r{i}")),
                headers: Vec::new(),
                body: None,
                name: format!("r{i}"),
                scenario: 0,
                group: String::new(),
                timeout: Duration::from_secs(60),
                redirects: None,
                compression: None,
                tags: Vec::new(),
                checks: Vec::new(),
                captures: Vec::new(),
                needs_body: false,
                metrics: Vec::new(),
            })
        })
        .collect();
    Plan {
        scenarios: vec![Scenario {
            name: "main".into(),
            index: 0,
            executor: Executor::ConstantVus {
                vus: 10,
                duration: Duration::from_secs(60),
            },
            start_time: Duration::ZERO,
            graceful_stop: Duration::from_secs(30),
            tags: vec![("team".into(), "bench".into())],
            env: BTreeMap::new(),
            flow: Arc::new(Flow::default()),
            exec: None,
        }],
        thresholds: Vec::new(),
        http: HttpOptions {
            discard_response_bodies: true,
            user_agent: "volley-bench".into(),
            timeout: Duration::from_secs(60),
            ..HttpOptions::default()
        },
        data: None,
        summary_trend_stats: TrendStat::k6_defaults(),
        vars: Vec::new(),
        system_tags: volley::plan::SystemTags::k6_default(),
        dynamic: Arc::new(volley::plan::dynamic::DynamicCatalog::after(4, 0, 0)),
        metrics: Vec::new(),
        setup: None,
        teardown: None,
        setup_vars: Vec::new(),
        targets: Vec::new(),
        requests,
        checks: Vec::new(),
        groups: Vec::new(),
    }
}

fn sample(request: u32, status: u16, i: u64) -> Sample {
    Sample::Http(HttpSample {
        request: RequestId(request),
        status,
        error: None,
        expected: Some(status < 400),
        timings: Timings {
            blocked: Duration::from_micros(3),
            connecting: Duration::ZERO,
            tls_handshaking: Duration::ZERO,
            sending: Duration::from_micros(20),
            waiting: Duration::from_micros(800 + (i * 7919) % 20_000),
            receiving: Duration::from_micros(50),
        },
        intended: None,
        bytes_sent: 120,
        bytes_received: 2048,
        proto: 11,
        tls: 0,
    })
}

/// One agent's one-second interval: 4 requests x 3 statuses, 20k requests.
fn interval(agent: &str) -> Snapshot {
    let opts = RecorderOptions {
        extra_tags: vec![("agent".into(), agent.into())],
        ..RecorderOptions::default()
    };
    let mut r = Recorder::new(&plan(), opts);
    for i in 0..20_000u64 {
        let status = [200, 200, 200, 404, 503][(i % 5) as usize];
        r.record(&sample((i % 4) as u32, status, i));
    }
    r.record(&Sample::Vus {
        active: 10,
        max: 10,
    });
    r.take_interval(1_790_000_000_000, Duration::from_secs(1))
}

fn record(c: &mut Criterion) {
    let mut r = Recorder::new(&plan(), RecorderOptions::default());
    let s = sample(1, 200, 42);
    r.record(&s);
    c.bench_function("record http sample (known series)", |b| {
        b.iter(|| r.record(black_box(&s)))
    });
}

fn merge(c: &mut Criterion) {
    let (a, other) = (interval("a"), interval("b"));
    c.bench_function("merge two interval snapshots", |b| {
        b.iter_batched(
            || a.clone(),
            |mut m| m.merge_sources(black_box(&other)).map(|()| m),
            BatchSize::SmallInput,
        )
    });
}

fn wire(c: &mut Criterion) {
    let s = interval("a");
    let bytes = s.encode();
    eprintln!(
        "interval snapshot: {} series, {} bytes encoded",
        s.series.len(),
        bytes.len()
    );
    c.bench_function("encode interval snapshot", |b| {
        b.iter(|| black_box(&s).encode())
    });
    c.bench_function("decode interval snapshot", |b| {
        b.iter(|| Snapshot::decode(black_box(&bytes)))
    });
}

/// A 3-significant-digit histogram that grows on demand, lowest
/// discernible value 1 (the layout of every Volley trend).
fn layout_histogram() -> hdrhistogram::Histogram<u64> {
    let mut h =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 2, 3).expect("invariant: valid bounds");
    h.auto(true);
    h
}

/// Durations like a request's phases: a few µs to about 20 ms, with
/// sub-microsecond parts.
fn durations() -> Vec<Duration> {
    (0..1024u64)
        .map(|i| Duration::from_nanos(1_700 + (i * 7_919_113) % 20_000_000))
        .collect()
}

/// The trend layouts side by side: what one recorded duration costs.
fn trend_layouts(c: &mut Criterion) {
    let ds = durations();
    let mut group = c.benchmark_group("trend layout: record one duration");
    group.bench_function("µs histogram", |b| {
        let mut h = layout_histogram();
        let mut i = 0;
        b.iter(|| {
            let d = ds[i & 1023];
            i += 1;
            let us = (d.as_nanos() as u64 + 500) / 1000;
            let _ = h.record(black_box(us));
        })
    });
    group.bench_function("ns histogram", |b| {
        let mut h = layout_histogram();
        let mut i = 0;
        b.iter(|| {
            let d = ds[i & 1023];
            i += 1;
            let _ = h.record(black_box(d.as_nanos() as u64));
        })
    });
    group.bench_function("µs histogram + exact ns min, max, sum", |b| {
        let mut h = layout_histogram();
        let (mut min, mut max, mut sum) = (u64::MAX, 0u64, 0u128);
        let mut i = 0;
        b.iter(|| {
            let d = ds[i & 1023];
            i += 1;
            let ns = d.as_nanos() as u64;
            let _ = h.record(black_box((ns + 500) / 1000));
            min = min.min(ns);
            max = max.max(ns);
            sum += u128::from(ns);
        });
        black_box((min, max, sum));
    });
    group.bench_function("Volley's Trend::record", |b| {
        let mut t = volley::metrics::Trend::new();
        let mut i = 0;
        b.iter(|| {
            let d = ds[i & 1023];
            i += 1;
            t.record(black_box(d));
        });
        black_box(t.count());
    });
    group.finish();

    // Memory: the counts array a histogram grows to for a range of values.
    for (what, top) in [
        ("1 µs .. 100 ms", Duration::from_millis(100)),
        ("1 µs .. 1 s", Duration::from_secs(1)),
        ("1 µs .. 60 s", Duration::from_secs(60)),
    ] {
        let bytes = |unit_ns: u128| {
            let mut h = layout_histogram();
            let _ = h.record(1);
            let _ = h.record((top.as_nanos() / unit_ns) as u64);
            h.distinct_values() * std::mem::size_of::<u64>()
        };
        eprintln!(
            "trend layout memory, {what}: µs histogram {} KiB, ns histogram {} KiB",
            bytes(1000) / 1024,
            bytes(1) / 1024
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = record, trend_layouts, merge, wire
}
criterion_main!(benches);
