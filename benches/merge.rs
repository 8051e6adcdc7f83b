//! The origin's merge cost per agent-interval: decoding one agent's encoded
//! 1-second snapshot and ingesting it into a fleet at steady state, then the
//! projected CPU cost of 1000 agents reporting every second; and with tree
//! merging, the origin's whole cost of one second of a 1000-agent fleet:
//! the combined intervals of the 32 relays at the top of a fan-out-32 tree
//! (each covering its subtree, with every covered agent's digest), decoded
//! and ingested.
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
use volley::fleet::merge::combine::{Combined, through_tree};
use volley::fleet::merge::tree::{DEFAULT_FANOUT, Layout};
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

/// The eight intervals the agents of a benchmark fleet take turns
/// reporting (they differ, as real seconds do), the same in every run.
fn pool(requests: usize) -> Vec<Snapshot> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..8)
        .map(|seq| interval(seq, requests, &mut rng))
        .collect()
}

/// Each agent's id and labels, as a fleet's results take them.
type Labels = Vec<(String, BTreeMap<String, String>)>;

/// The ids of `n` agents and their labels: regions `eu`, `us` and `ap` in
/// turn.
fn agents(n: usize) -> (Vec<String>, Labels) {
    let ids: Vec<String> = (0..n).map(|i| format!("agent-{i:04}")).collect();
    let labels = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let region = ["eu", "us", "ap"][i % 3].to_string();
            (id.clone(), BTreeMap::from([("region".to_string(), region)]))
        })
        .collect();
    (ids, labels)
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
        let encoded: Vec<Vec<u8>> = pool(requests).iter().map(Snapshot::encode).collect();
        let (ids, labels) = agents(FLEET);
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

/// One encoded combined interval as it reaches the origin: covered agents,
/// digest lengths, payload.
type Wire = (Vec<String>, Vec<u32>, Vec<u8>);

/// A fleet of [`PROJECTED_AGENTS`] agents merged through a tree of fan-out
/// [`DEFAULT_FANOUT`]: the origin ingests one second at a time.
struct TreeState {
    fleet: FleetResults,
    /// Per second (cycled through), what reaches the origin.
    seconds: Vec<Vec<Wire>>,
    next_seq: u64,
}

impl TreeState {
    fn new(requests: usize) -> TreeState {
        let pool = pool(requests);
        let (ids, labels) = agents(PROJECTED_AGENTS as usize);
        let layout = Layout::new(ids.iter().cloned(), DEFAULT_FANOUT);
        let seconds = (0..2u64)
            .map(|seq| {
                let intervals = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (id.clone(), pool[(i + seq as usize) % pool.len()].clone()))
                    .collect();
                through_tree(&layout, seq, intervals)
                    .expect("the bench's intervals merge")
                    .into_iter()
                    .map(|c| {
                        let (payload, lengths) = c.encode();
                        (c.agents(), lengths, payload)
                    })
                    .collect()
            })
            .collect();
        let mut state = TreeState {
            fleet: FleetResults::new(&labels),
            seconds,
            next_seq: 0,
        };
        for _ in 0..3 {
            state.second();
        }
        state
    }

    /// Decodes and ingests every combined interval of the next second.
    fn second(&mut self) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let start = T0 + seq * 1000;
        for (agents, lengths, payload) in &self.seconds[seq as usize % self.seconds.len()] {
            let mut c = Combined::decode(seq, agents, lengths, payload).expect("decodes");
            c.snapshot.start_unix_ms = start;
            for cover in &mut c.covers {
                cover.digest.start_unix_ms = start;
            }
            let outcome = self.fleet.ingest_merged(c);
            debug_assert_eq!(outcome, Ingest::Applied);
            black_box(outcome);
        }
    }

    /// Bytes reaching the origin per second.
    fn bytes_per_second(&self) -> usize {
        self.seconds[0].iter().map(|(_, _, p)| p.len()).sum()
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
    let mut group = c.benchmark_group("origin merge per second, 1000 agents, tree fan-out 32");
    for requests in LOADS {
        let mut state = TreeState::new(requests);
        group.bench_function(
            format!("decode+ingest combined, {requests} requests per agent"),
            |b| b.iter(|| state.second()),
        );
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

/// Times one second of the tree-merged fleet outside criterion and prints
/// it next to the flat projection.
fn project_tree() {
    println!();
    println!(
        "Tree merging (fan-out {DEFAULT_FANOUT}): origin CPU per second of {PROJECTED_AGENTS} agents"
    );
    for requests in LOADS {
        let mut flat = SteadyState::new(requests);
        let rounds = 3 * FLEET;
        let start = Instant::now();
        for _ in 0..rounds {
            flat.step();
        }
        let flat_ms = start.elapsed().as_secs_f64() * 1e3 / rounds as f64 * PROJECTED_AGENTS;
        let mut tree = TreeState::new(requests);
        let seconds = 10;
        let start = Instant::now();
        for _ in 0..seconds {
            tree.second();
        }
        let tree_ms = start.elapsed().as_secs_f64() * 1e3 / seconds as f64;
        println!(
            "| {requests} req/s per agent | flat {flat_ms:.0} ms CPU per second ({:.0} % of a core) | \
             tree {tree_ms:.1} ms ({:.1} %), {} combined intervals, {:.0} kB per second | flat/tree {:.1}x |",
            flat_ms / 10.0,
            tree_ms / 10.0,
            tree.seconds[0].len(),
            tree.bytes_per_second() as f64 / 1e3,
            flat_ms / tree_ms,
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
    project_tree();
}
