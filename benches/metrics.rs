//! Benchmarks of the metrics hot paths: recording an HTTP sample into
//! series the recorder has seen, merging two agents' interval snapshots,
//! and the snapshot wire form both ways.
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
        expected: status < 400,
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = record, merge, wire
}
criterion_main!(benches);
