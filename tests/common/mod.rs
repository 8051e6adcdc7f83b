//! Shared helpers of the engine's integration tests (`tests/engine_*.rs`):
//! a built-in target on `127.0.0.1:0`, plans parsed from YAML text, runs in
//! process, metric lookups on a [`RunResult`], an observer that records the
//! `vus` gauge per interval, a poll-with-deadline helper, and the real
//! `volley` binary run with a deadline.
//!
//! Every test binary compiles this module; each uses a different subset.
#![allow(dead_code)]

pub mod backends;
pub mod k6;
pub mod outputs;
pub mod servers;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use volley::engine::{self, IntervalReport, NoObserver, Observer, RunOptions, RunResult};
use volley::metrics::aggregate::{trend_max_ms, trend_percentile_ms};
use volley::metrics::{Aggregate, Metric, MetricValues, Value};
use volley::plan::{self, Format, FsFiles, LoadOptions, Plan};
use volley::target::{self, TargetConfig, TargetHandle};

/// Longest any single in-process run may take before a test gives up on it.
pub const RUN_LIMIT: Duration = Duration::from_secs(20);

/// A cleartext target (HTTP/1.1 and h2c) on a free loopback port.
pub async fn start_target() -> TargetHandle {
    start_target_with(TargetConfig::default()).await
}

/// A target with `config` on a free loopback port.
pub async fn start_target_with(config: TargetConfig) -> TargetHandle {
    let addr = "127.0.0.1:0".parse().expect("invariant: literal address");
    target::spawn(addr, config)
        .await
        .expect("the built-in target starts on loopback")
}

/// `http://127.0.0.1:PORT` of a cleartext target.
pub fn base(target: &TargetHandle) -> String {
    format!("http://{}", target.addr)
}

/// `https://127.0.0.1:PORT` of a TLS target.
pub fn base_tls(target: &TargetHandle) -> String {
    format!("https://{}", target.addr)
}

/// A plan from YAML text, with data files resolved against the current
/// directory.
pub fn plan(yaml: &str) -> Plan {
    plan_in(Path::new("."), yaml)
}

/// A plan from YAML text, with data files resolved against `dir`.
pub fn plan_in(dir: &Path, yaml: &str) -> Plan {
    let opts = LoadOptions {
        base_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    };
    match plan::parse(yaml, Format::Yaml, &opts, &FsFiles) {
        Ok(p) => p,
        Err(e) => panic!("test plan does not parse: {e}\n---\n{yaml}"),
    }
}

/// Runs `plan` to its end in process, with nobody watching.
pub async fn run(plan: Plan) -> RunResult {
    run_observed(plan, &mut NoObserver).await
}

/// Runs a YAML plan to its end in process.
pub async fn run_yaml(yaml: &str) -> RunResult {
    run(plan(yaml)).await
}

/// Runs `plan` to its end in process, reporting every interval to `observer`.
pub async fn run_observed(plan: Plan, observer: &mut dyn Observer) -> RunResult {
    run_with(plan, RunOptions::default(), observer).await
}

/// Runs `plan` with `opts` (e.g. a shorter interval) to its end in process.
pub async fn run_with(plan: Plan, opts: RunOptions, observer: &mut dyn Observer) -> RunResult {
    let running = engine::run(Arc::new(plan), opts, CancellationToken::new(), observer);
    match tokio::time::timeout(RUN_LIMIT, running).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => panic!("the engine refused the plan: {e}"),
        Err(_) => panic!("the run did not end within {RUN_LIMIT:?}"),
    }
}

/// Sum of a counter over the whole run (0 when it never counted).
pub fn counter(r: &RunResult, metric: Metric) -> f64 {
    counter_where(r, metric, &[])
}

/// Sum of a counter over the series whose tags include `filter`.
pub fn counter_where(r: &RunResult, metric: Metric, filter: &[(&str, &str)]) -> f64 {
    match r.total.metric_value(metric, &owned(filter)) {
        Some(Value::Counter(c)) => c,
        Some(other) => panic!("{} is not a counter: {other:?}", metric.name()),
        None => 0.0,
    }
}

/// `(trues, total)` of a rate metric (for `http_req_failed`, trues are failures).
pub fn rate(r: &RunResult, metric: Metric) -> (u64, u64) {
    match r.total.metric_value(metric, &[]) {
        Some(Value::Rate { trues, total }) => (trues, total),
        Some(other) => panic!("{} is not a rate: {other:?}", metric.name()),
        None => (0, 0),
    }
}

/// Samples in a trend (0 when it has none).
pub fn trend_count(r: &RunResult, metric: Metric) -> u64 {
    match r.total.metric_value(metric, &[]) {
        Some(Value::Trend(t)) => t.count(),
        Some(other) => panic!("{} is not a trend: {other:?}", metric.name()),
        None => 0,
    }
}

/// `p(N)` of a trend in milliseconds; panics when it has no samples.
pub fn percentile_ms(r: &RunResult, metric: Metric, p: f64) -> f64 {
    match r.total.metric_value(metric, &[]) {
        Some(Value::Trend(h)) if !h.is_empty() => trend_percentile_ms(&h, p),
        other => panic!("{} has no samples: {other:?}", metric.name()),
    }
}

/// Largest sample of a trend in milliseconds; panics when it has none.
pub fn max_ms(r: &RunResult, metric: Metric) -> f64 {
    match r.total.metric_value(metric, &[]) {
        Some(Value::Trend(h)) if !h.is_empty() => trend_max_ms(&h),
        other => panic!("{} has no samples: {other:?}", metric.name()),
    }
}

/// The whole-run gauge `(value, min, max)`.
pub fn gauge(r: &RunResult, metric: Metric) -> (f64, f64, f64) {
    match r.total.metric_value(metric, &[]) {
        Some(Value::Gauge { value, min, max }) => (value, min, max),
        other => panic!("{} is not a recorded gauge: {other:?}", metric.name()),
    }
}

/// The summary's count of one error class or status label (0 when absent).
pub fn summary_errors(r: &RunResult, label: &str) -> u64 {
    r.summary
        .errors
        .iter()
        .find(|(l, _)| l == label)
        .map_or(0, |(_, n)| *n)
}

/// The summary's `(passes, fails)` of the check named `name`.
pub fn check_counts(r: &RunResult, name: &str) -> (u64, u64) {
    let Some(c) = r.summary.checks.iter().find(|c| c.name == name) else {
        let names: Vec<&str> = r.summary.checks.iter().map(|c| c.name.as_str()).collect();
        panic!("no check named {name:?} in the summary; it has {names:?}");
    };
    (c.passes, c.fails)
}

/// The summary's `count` of a counter metric (0 when not shown).
pub fn summary_count(r: &RunResult, key: &str) -> f64 {
    match r.summary.metric(key).map(|m| &m.values) {
        Some(MetricValues::Counter { count, .. }) => *count,
        Some(other) => panic!("{key} is not a counter in the summary: {other:?}"),
        None => 0.0,
    }
}

fn owned(filter: &[(&str, &str)]) -> Vec<(String, String)> {
    filter
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What one interval report said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalPoint {
    /// Time since the start when the interval closed.
    pub elapsed: Duration,
    /// The `vus` gauge (active VUs) at the close.
    pub vus: u64,
    /// The `vus_max` gauge (allocated VUs) at the close.
    pub vus_max: u64,
    /// Iterations completed within this interval.
    pub iterations: f64,
    /// Requests completed within this interval.
    pub http_reqs: f64,
}

/// An observer that keeps every interval report's VU gauges and counts.
#[derive(Debug, Default)]
pub struct IntervalTrace {
    pub points: Vec<IntervalPoint>,
}

impl Observer for IntervalTrace {
    fn on_interval(&mut self, report: &IntervalReport<'_>) {
        let mut interval = Aggregate::default();
        interval
            .add_interval(report.snapshot)
            .expect("the recorder produces well-formed snapshots");
        let count = |m: Metric| match interval.metric_value(m, &[]) {
            Some(Value::Counter(c)) => c,
            _ => 0.0,
        };
        self.points.push(IntervalPoint {
            elapsed: report.elapsed,
            vus: report.vus,
            vus_max: report.vus_max,
            iterations: count(Metric::Iterations),
            http_reqs: count(Metric::HttpReqs),
        });
    }
}

/// A loopback port that refuses connections while the returned socket lives: bound but never
/// listening, so no test running alongside can be given the port (a port merely closed again
/// may be the next `127.0.0.1:0` another test binds, which would then answer).
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind("127.0.0.1:0".parse().expect("invariant: literal address"))
        .expect("a loopback port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}

/// Polls `check` every few milliseconds until it holds or `within` passes;
/// returns whether it held.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `volley` binary with `args`, run to its end (killed past `limit`).
/// Blocking: call it through [`volley_async`] when a target runs on the
/// test's runtime. Output is drained while it runs, so a chatty child never
/// blocks on a full pipe.
pub fn volley(args: &[&str], limit: Duration) -> Output {
    volley_env(args, &[], limit)
}

/// [`volley`] with extra environment variables (k6's `K6_*` options).
pub fn volley_env(args: &[&str], env: &[(String, String)], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the volley binary starts");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "volley {args:?} did not end within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default())
                );
            }
            Err(e) => panic!("waiting for volley {args:?}: {e}"),
        }
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs the binary off the async runtime (so an in-process target keeps
/// serving) and returns its output.
pub async fn volley_async(args: Vec<String>, limit: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        volley(&args, limit)
    })
    .await
    .expect("the blocking task running volley")
}

/// [`volley_async`] with extra environment variables.
pub async fn volley_async_env(
    args: Vec<String>,
    env: Vec<(String, String)>,
    limit: Duration,
) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        volley_env(&args, &env, limit)
    })
    .await
    .expect("the blocking task running volley")
}

/// A finished process's stdout, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A finished process's stderr, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A `--summary-export` file, parsed.
pub fn export(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the summary export exists");
    serde_json::from_str(&text).expect("the summary export is JSON")
}
