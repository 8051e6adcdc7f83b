//! `--out opentelemetry` against an independent OTLP receiver:
//! `tests/otel/receiver.py`, built on the OpenTelemetry project's generated
//! classes (PyPI `opentelemetry-proto`) and `grpcio`, in the virtualenv
//! `scripts/test` installs (`VOLLEY_OTEL_PYTHON` points at its Python).
//! Over OTLP/HTTP and OTLP/gRPC the last export's totals equal the
//! summary's exactly; a 3-agent fleet test's origin writes the fleet's
//! merged totals once, tagged with the test id; an unreachable collector
//! costs a note, and a bad option is a clear error before anything runs.

mod common;
mod fleet;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::outputs::{ITERATIONS, OutputRun, run_with_outputs};

/// The virtualenv's Python that has opentelemetry-proto and grpcio.
fn python() -> PathBuf {
    let path = std::env::var_os("VOLLEY_OTEL_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/volley-otel-venv/bin/python"))
        })
        .expect("VOLLEY_OTEL_PYTHON or HOME is set");
    assert!(
        path.exists(),
        "{} does not exist: run scripts/test (it installs opentelemetry-proto and grpcio in a \
         virtualenv) or point VOLLEY_OTEL_PYTHON at a Python that has them",
        path.display()
    );
    path
}

/// The receiver, killed when dropped.
struct Receiver {
    child: Child,
    http: u16,
    grpc: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start() -> Receiver {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path().join("received.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel/receiver.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the receiver starts");
        // It prints its ports once both listen (or exits, closing stdout).
        let mut line = String::new();
        if let Some(s) = child.stdout.take() {
            let _ = BufReader::new(s).read_line(&mut line);
        }
        let port = |name: &str| -> u16 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("the receiver's ports, not {line:?}"))
        };
        let (http, grpc) = (port("http="), port("grpc="));
        Receiver {
            child,
            http,
            grpc,
            out,
            _dir: dir,
        }
    }

    /// Every request received over `transport`, in order, as
    /// `{"headers": {...}, "request": {...}}`.
    fn received(&self, transport: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .inspect(|e| {
                assert!(
                    e.get("error").is_none(),
                    "the receiver could not decode: {e}"
                )
            })
            .filter(|e| e["transport"] == transport)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the shared plan with `--out NAME` and the variables.
async fn run(out_name: &str, vars: Vec<(&str, String)>) -> OutputRun {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_with_outputs(ITERATIONS, &[out_name.to_owned()], &vars).await
}

/// Panics unless the run passed and every export was delivered.
fn all_delivered(run: &OutputRun) {
    let text = run.passed();
    assert!(!text.contains("not delivered"), "{text}");
}

/// k6's variables for OTLP/HTTP exports to `endpoint` (`host:port`):
/// over plain HTTP when `insecure`, over TLS otherwise.
fn http_exporter(endpoint: String, insecure: bool) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("K6_OTEL_EXPORTER_TYPE", "http".into()),
        ("K6_OTEL_HTTP_EXPORTER_ENDPOINT", endpoint),
    ];
    if insecure {
        vars.push(("K6_OTEL_HTTP_EXPORTER_INSECURE", "true".into()));
    }
    vars
}

/// `attributes` as a map of string values.
fn attributes(v: &Value) -> serde_json::Map<String, Value> {
    v["attributes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap_or_default().to_owned(),
                        kv["value"]["stringValue"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the last export (the run's totals) against the summary.
fn check_totals(req: &Value, m: &Value, prefix: &str, service: &str) {
    let rm = &req["resourceMetrics"][0];
    let resource = attributes(&rm["resource"]);
    assert_eq!(resource["service.name"], service, "{resource:?}");
    assert!(resource["service.version"].is_string(), "{resource:?}");
    let sm = &rm["scopeMetrics"][0];
    assert_eq!(sm["scope"]["name"], "k6");
    let metric = |name: &str| -> &Value {
        sm["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|x| x["name"] == format!("{prefix}{name}"))
            .unwrap_or_else(|| panic!("{prefix}{name} in {sm}"))
    };
    let reqs = m["http_reqs"]["count"].as_f64().expect("http_reqs");
    assert_eq!(reqs, 200.0);

    // Counter: a cumulative monotonic Sum, a point per series with its tags.
    let sum = &metric("http_reqs")["sum"];
    assert_eq!(
        sum["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    assert_eq!(sum["isMonotonic"], true);
    let points = sum["dataPoints"].as_array().expect("points");
    let total: f64 = points
        .iter()
        .map(|p| p["asDouble"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(total, reqs);
    let not_found: f64 = points
        .iter()
        .filter(|p| attributes(p).get("status") == Some(&Value::from("404")))
        .map(|p| p["asDouble"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(not_found, 100.0);
    for p in points {
        let a = attributes(p);
        for tag in ["method", "scenario", "status", "name"] {
            assert!(a.contains_key(tag), "{tag} in {a:?}");
        }
    }

    // Trend: histograms whose counts add up to the requests, in ms.
    let h = &metric("http_req_duration");
    assert_eq!(h["unit"], "ms");
    let points = h["histogram"]["dataPoints"].as_array().expect("points");
    let count: u64 = points
        .iter()
        .map(|p| {
            p["count"]
                .as_str()
                .and_then(|c| c.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(count as f64, reqs);
    for p in points {
        let buckets: u64 = p["bucketCounts"]
            .as_array()
            .expect("buckets")
            .iter()
            .filter_map(|b| b.as_str().and_then(|c| c.parse::<u64>().ok()))
            .sum();
        assert_eq!(
            Some(buckets),
            p["count"].as_str().and_then(|c| c.parse().ok())
        );
    }
    let max = points
        .iter()
        .filter_map(|p| p["max"].as_f64())
        .fold(0.0, f64::max);
    let summary_max = m["http_req_duration"]["max"].as_f64().expect("max");
    assert!((max - summary_max).abs() <= 1e-9, "{max} vs {summary_max}");

    // Rate: two integer Sums.
    let int_total = |name: &str| -> u64 {
        metric(name)["sum"]["dataPoints"]
            .as_array()
            .expect("points")
            .iter()
            .filter_map(|p| p["asInt"].as_str().and_then(|c| c.parse::<u64>().ok()))
            .sum()
    };
    assert_eq!(int_total("http_req_failed.total") as f64, reqs);
    assert_eq!(int_total("http_req_failed.occurred"), 100);
    assert_eq!(
        int_total("checks.occurred") as f64,
        m["checks"]["passes"].as_f64().expect("check passes")
    );
    assert_eq!(
        metric("data_received")["unit"],
        "By",
        "data in bytes, as k6 says"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_the_totals_equal_the_summary() {
    let receiver = Receiver::start();
    let mut vars = http_exporter(format!("127.0.0.1:{}", receiver.http), true);
    vars.extend([
        ("K6_OTEL_METRIC_PREFIX", "k6_".into()),
        ("K6_OTEL_SERVICE_NAME", "checkout-load".into()),
        ("K6_OTEL_HEADERS", "x-team=perf".into()),
    ]);
    let done = run("opentelemetry", vars).await;
    all_delivered(&done);
    let received = receiver.received("http");
    let last = received.last().expect("at least one export over OTLP/HTTP");
    assert_eq!(last["headers"]["x-team"], "perf", "K6_OTEL_HEADERS sent");
    check_totals(&last["request"], &done.metrics, "k6_", "checkout-load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_the_totals_equal_the_summary() {
    let receiver = Receiver::start();
    let done = run(
        "experimental-opentelemetry",
        vec![
            (
                "K6_OTEL_GRPC_EXPORTER_ENDPOINT",
                format!("127.0.0.1:{}", receiver.grpc),
            ),
            ("K6_OTEL_GRPC_EXPORTER_INSECURE", "true".into()),
            ("K6_OTEL_HEADERS", "x-team=perf%2Cload".into()),
            // This short run exports at its end whatever the interval: the
            // last export carries the totals.
            ("K6_OTEL_EXPORT_INTERVAL", "1s".into()),
        ],
    )
    .await;
    all_delivered(&done);
    let received = receiver.received("grpc");
    let last = received.last().expect("at least one export over OTLP/gRPC");
    assert_eq!(
        last["headers"]["x-team"], "perf,load",
        "K6_OTEL_HEADERS sent"
    );
    check_totals(&last["request"], &done.metrics, "", "k6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_a_note_not_a_failure() {
    let (_held, port) = common::refusing_port();
    let done = run(
        "opentelemetry",
        http_exporter(format!("127.0.0.1:{port}"), true),
    )
    .await;
    let text = done.passed();
    assert!(text.contains("http_reqs"), "the summary: {text}");
    let note = text
        .lines()
        .find(|l| l.contains("--out opentelemetry (http, http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("a note about the collector: {text}"));
    assert!(
        note.contains("not delivered") && note.contains("cannot reach"),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_exporter_type_is_a_clear_error() {
    let done = run(
        "opentelemetry",
        vec![("K6_OTEL_EXPORTER_TYPE", "udp".into())],
    )
    .await;
    let err = done.stderr();
    assert_ne!(done.out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("K6_OTEL_EXPORTER_TYPE \"udp\"") && err.contains("expected grpc or http"),
        "{err}"
    );
    assert!(done.metrics.is_null(), "nothing ran");
}

/// A 3-agent fleet test with an OpenTelemetry output (its options in the
/// argument, as a fleet test's output travels): one stream tagged with the
/// test id, whose total is the fleet summary's exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_test_exports_one_merged_stream() {
    let receiver = Receiver::start();
    let target = fleet::target().await;
    let fleet = fleet::outputs::start().await;
    let output = format!(
        "opentelemetry=exporterType=http&httpExporterEndpoint=127.0.0.1:{}\
         &httpExporterInsecure=true&exportInterval=1s",
        receiver.http
    );
    let (id, _) = fleet
        .run_with_outputs(target.addr, vec![output], None, "not delivered")
        .await;
    let exports = receiver.received("http");
    let last = &exports.last().expect("at least one export")["request"];
    let metrics = last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .expect("metrics");
    let reqs = metrics
        .iter()
        .find(|m| m["name"] == "http_reqs")
        .expect("http_reqs");
    let points = reqs["sum"]["dataPoints"].as_array().expect("points");
    let total: f64 = points
        .iter()
        .map(|p| {
            let a = attributes(p);
            assert_eq!(a.get("testid"), Some(&Value::from(id.as_str())), "{a:?}");
            assert!(
                !a.contains_key("agent"),
                "one stream, not one per agent: {a:?}"
            );
            p["asDouble"].as_f64().unwrap_or(0.0)
        })
        .sum();
    assert_eq!(total, 300.0, "the fleet's total, exactly");
    target.shutdown().await;
}

/// A collector that takes the connection but never answers: the end of
/// the run waits for it 15 s at most, then says what was not delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_collector_gets_a_time_limit_at_the_end() {
    // Connections wait in the backlog, never accepted, never answered.
    let silent = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
    let port = silent.local_addr().expect("its address").port();
    let started = std::time::Instant::now();
    let done = run(
        "opentelemetry",
        http_exporter(format!("127.0.0.1:{port}"), true),
    )
    .await;
    let took = started.elapsed();
    let text = done.passed();
    assert!(
        text.contains("1 export request (")
            && text.contains("had not taken them 15 s after the end"),
        "{text}"
    );
    assert!(took < Duration::from_secs(40), "the run took {took:?}");
    drop(silent);
}

/// OTLP/HTTP over TLS, as k6 exports by default (no `…_INSECURE`): the
/// collector behind a TLS proxy whose certificate the export trusts from
/// `K6_OTEL_TLS_CERTIFICATE`; the totals equal the summary's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_with_a_ca_file_the_totals_equal_the_summary() {
    let receiver = Receiver::start();
    let (proxy, ca) = common::backends::tls_proxy(receiver.http).await;
    let ca_file = proxy.dir.path().join("collector-ca.pem");
    std::fs::write(&ca_file, ca).expect("the CA file is written");
    let mut vars = http_exporter(format!("localhost:{}", proxy.port), false);
    vars.push(("K6_OTEL_TLS_CERTIFICATE", ca_file.display().to_string()));
    let done = run("opentelemetry", vars).await;
    all_delivered(&done);
    let received = receiver.received("http");
    let last = received.last().expect("at least one export over TLS");
    check_totals(&last["request"], &done.metrics, "", "k6");
}
