//! The origin's merge cost per agent-interval: decoding one agent's encoded
//! 1-second snapshot and ingesting it into a fleet at steady state, then the
//! projected CPU cost of 1000 agents reporting every second.
//!
//! `cargo bench --bench merge` (about a minute, most of it building).
//! Snapshots are built like an agent's: one scenario, two requests, a few
//! 503s, every HTTP timing trend per (name, status), counters, rates,
//! checks and the VU gauges; latencies log-uniform over 0.5-50 ms.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hdrhistogram::Histogram;
use volley::fleet::merge::{FleetResults, Ingest};
use volley::metrics::{Metric, SeriesKey, Snapshot, TagSet, Value};

/// Agents in the benchmark fleet: enough that per-interval sealing (every
/// agent reported) happens at its real rate, one seal per that many
/// ingests.
const FLEET: usize = 100;

/// Agents the projection is for.
const PROJECTED_AGENTS: f64 = 1000.0;

const T0: u64 = 1_790_000_000_000;

/// Requests per interval of the two realistic loads measured.
const LOADS: [usize; 2] = [1_000, 5_000];

fn key(metric: Metric, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, TagSet::from_pairs(tags.iter().copied()))
}

/// Adds `n` to a counter series, `us` to a trend series, a sample to a
/// rate series.
struct Builder {
    series: BTreeMap<SeriesKey, Value>,
}

impl Builder {
    fn counter(&mut self, k: SeriesKey, n: f64) {
        match self.series.entry(k).or_insert(Value::Counter(0.0)) {
            Value::Counter(c) => *c += n,
            _ => unreachable!("bench series keep their kind"),
        }
    }

    fn trend(&mut self, k: SeriesKey, us: u64) {
        let v = self
            .series
            .entry(k)
            .or_insert_with(|| Value::Trend(Box::default()));
        if let Value::Trend(t) = v {
            t.record(Duration::from_micros(us));
        }
    }

    fn rate(&mut self, k: SeriesKey, yes: bool) {
        let v = self
            .series
            .entry(k)
            .or_insert(Value::Rate { trues: 0, total: 0 });
        if let Value::Rate { trues, total } = v {
            *trues += u64::from(yes);
            *total += 1;
        }
    }
}

/// One agent's interval `seq` with `requests` requests.
fn interval(seq: u64, requests: usize, rng: &mut fastrand::Rng) -> Snapshot {
    let mut b = Builder {
        series: BTreeMap::new(),
    };
    let (lo, hi) = (500f64.ln(), 50_000f64.ln());
    for i in 0..requests {
        let name = ["/api/items", "/api/cart"][i % 2];
        let status = if rng.u32(0..100) == 0 { "503" } else { "200" };
        let expected = if status == "200" { "true" } else { "false" };
        let tags = [
            ("expected_response", expected),
            ("method", "GET"),
            ("name", name),
            ("scenario", "main"),
            ("status", status),
        ];
        let duration = (lo + rng.f64() * (hi - lo)).exp() as u64;
        let new_conn = rng.u32(0..200) == 0;
        b.counter(key(Metric::HttpReqs, &tags), 1.0);
        b.rate(key(Metric::HttpReqFailed, &tags), status != "200");
        b.trend(key(Metric::HttpReqDuration, &tags), duration);
        b.trend(
            key(Metric::HttpReqBlocked, &tags),
            if new_conn { 900 } else { 2 },
        );
        b.trend(
            key(Metric::HttpReqConnecting, &tags),
            if new_conn { 400 } else { 0 },
        );
        b.trend(key(Metric::HttpReqTlsHandshaking, &tags), 0);
        b.trend(key(Metric::HttpReqSending, &tags), rng.u64(10..60));
        b.trend(key(Metric::HttpReqWaiting, &tags), duration * 9 / 10);
        b.trend(key(Metric::HttpReqReceiving, &tags), duration / 10);
        let scenario = [("scenario", "main")];
        b.counter(key(Metric::Iterations, &scenario), 1.0);
        b.trend(key(Metric::IterationDuration, &scenario), duration + 30);
        b.counter(key(Metric::DataSent, &scenario), 180.0);
        b.counter(key(Metric::DataReceived, &scenario), 2048.0);
        b.rate(
            key(
                Metric::Checks,
                &[("check", "status is 200"), ("scenario", "main")],
            ),
            status == "200",
        );
    }
    b.series
        .insert(key(Metric::Vus, &[]), Value::gauge_of(50.0));
    b.series
        .insert(key(Metric::VusMax, &[]), Value::gauge_of(50.0));
    Snapshot {
        start_unix_ms: T0 + seq * 1000,
        duration: Duration::from_secs(1),
        series: b.series.into_iter().collect(),
    }
}

/// A fleet of [`FLEET`] agents that already merged a few intervals, and a
/// feeder handing out each agent's next interval in turn.
struct SteadyState {
    fleet: FleetResults,
    ids: Vec<String>,
    /// Encoded intervals the agents cycle through (they differ, as real
    /// seconds do).
    encoded: Vec<Vec<u8>>,
    next: usize,
}

impl SteadyState {
    fn new(requests: usize) -> SteadyState {
        let mut rng = fastrand::Rng::with_seed(7);
        let encoded: Vec<Vec<u8>> = (0..8)
            .map(|seq| interval(seq, requests, &mut rng).encode())
            .collect();
        let ids: Vec<String> = (0..FLEET).map(|i| format!("agent-{i:04}")).collect();
        let labels: Vec<(String, BTreeMap<String, String>)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let region = ["eu", "us", "ap"][i % 3].to_string();
                (id.clone(), BTreeMap::from([("region".to_string(), region)]))
            })
            .collect();
        let mut state = SteadyState {
            fleet: FleetResults::new(&labels),
            ids,
            encoded,
            next: 0,
        };
        for _ in 0..3 * FLEET {
            state.step();
        }
        state
    }

    /// Decodes and ingests the next agent-interval.
    fn step(&mut self) {
        let n = self.next;
        self.next += 1;
        let agent = &self.ids[n % FLEET];
        let seq = (n / FLEET) as u64;
        let bytes = &self.encoded[n % self.encoded.len()];
        let mut snapshot = Snapshot::decode(bytes).expect("the bench's own encoding decodes");
        snapshot.start_unix_ms = T0 + seq * 1000;
        let outcome = self.fleet.ingest(agent, seq, snapshot);
        debug_assert_eq!(outcome, Ingest::Applied);
        black_box(outcome);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("origin merge per agent-interval");
    for requests in LOADS {
        let mut state = SteadyState::new(requests);
        group.bench_function(format!("decode+ingest, {requests} requests"), |b| {
            b.iter(|| state.step())
        });
        let bytes = state.encoded[0].clone();
        group.bench_function(format!("decode only, {requests} requests"), |b| {
            b.iter(|| Snapshot::decode(black_box(&bytes)))
        });
    }
    group.finish();
}

/// Bytes the counts arrays of an aggregate's trends take.
fn histogram_bytes(series: impl Iterator<Item = Value>) -> usize {
    series
        .filter_map(|v| match v {
            Value::Trend(t) => Some(counts_bytes(t.histogram())),
            _ => None,
        })
        .sum()
}

fn counts_bytes(h: &Histogram<u64>) -> usize {
    h.distinct_values() * std::mem::size_of::<u64>()
}

/// Times decode + ingest outside criterion and prints the projection.
fn project() {
    println!();
    println!("Projection: origin CPU for {PROJECTED_AGENTS} agents at 1 s intervals");
    for requests in LOADS {
        let mut state = SteadyState::new(requests);
        let sample = Snapshot::decode(&state.encoded[0]).expect("decodes");
        let rounds = 3 * FLEET;
        let start = Instant::now();
        for _ in 0..rounds {
            state.step();
        }
        let per_interval = start.elapsed() / rounds as u32;
        let cpu_ms_per_s = per_interval.as_secs_f64() * 1e3 * PROJECTED_AGENTS;
        let agent = state.fleet.agent("agent-0000").expect("in the fleet");
        let per_agent_mb = histogram_bytes(agent.series().map(|(_, v)| v.clone())) as f64 / 1e6;
        println!(
            "| origin merge (decode + ingest), {requests} req/s per agent, {} series, {:.1} kB encoded | \
             {:.0} µs per agent-interval | {:.0} ms CPU per second for {PROJECTED_AGENTS} agents \
             ({:.0} % of one core) | per-agent totals ≈ {per_agent_mb:.1} MB of histograms |",
            sample.series.len(),
            state.encoded[0].len() as f64 / 1e3,
            per_interval.as_secs_f64() * 1e6,
            cpu_ms_per_s,
            cpu_ms_per_s / 10.0,
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    project();
}
