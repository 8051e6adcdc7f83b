//! `--out influxdb` against a real InfluxDB 1.x (Debian's `influxd`,
//! installed by `scripts/test`), started per test on free loopback ports
//! with a temporary data directory. Volley's per-interval layout (the
//! default) gives the summary's totals exactly with one point per series
//! and interval; with `layout=samples` the queries of k6's Grafana
//! dashboards (`count(value)`, `sum(value)`, `mean(value)`) give them, with
//! k6's measurements, tags and fields; an unreachable backend costs the
//! test nothing but a note in the summary.

mod common;
mod fleet;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::backends::{Influx, tls_proxy};
use common::outputs::{ITERATIONS, run_with_outputs};

/// Runs the shared plan with `--out influxdb=URL`; the summary export's
/// metrics.
async fn run_with_influx(url: String) -> Value {
    let run = run_with_outputs(ITERATIONS, &[format!("influxdb={url}")], &[]).await;
    let text = run.passed();
    assert!(!text.contains("points dropped"), "{text}");
    run.metrics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_points_give_the_summary_totals() {
    let influx = Influx::start();
    let db = "volley_intervals";
    let m = &run_with_influx(influx.url(db)).await;
    let reqs = m["http_reqs"]["count"].as_f64().expect("http_reqs");
    assert_eq!(reqs, 200.0);
    let total = |q: &str| influx.scalar(db, q, 1);
    assert_eq!(total("SELECT sum(value) FROM http_reqs"), reqs);
    // One point per series and interval, not one per request.
    let points = total("SELECT count(value) FROM http_reqs");
    assert!(points < reqs / 4.0, "{points} points for {reqs} requests");
    assert_eq!(total("SELECT sum(\"count\") FROM http_req_duration"), reqs);
    assert_eq!(
        total("SELECT sum(value) FROM iterations"),
        m["iterations"]["count"].as_f64().expect("iterations")
    );
    assert_eq!(
        total("SELECT sum(value) FROM data_received"),
        m["data_received"]["count"].as_f64().expect("data_received")
    );
    assert_eq!(total("SELECT sum(passes) FROM http_req_failed"), 100.0);
    assert_eq!(
        total("SELECT sum(passes) FROM checks"),
        m["checks"]["passes"].as_f64().expect("check passes")
    );
    assert_eq!(
        total("SELECT sum(value) FROM http_reqs WHERE status = '404'"),
        100.0
    );
    // The extremes are exact; the sum gives the exact mean.
    let max = total("SELECT max(\"max\") FROM http_req_duration");
    let summary_max = m["http_req_duration"]["max"].as_f64().expect("max");
    assert!((max - summary_max).abs() <= 1e-9, "{max} vs {summary_max}");
    let mean = total("SELECT sum(\"sum\") FROM http_req_duration") / reqs;
    let avg = m["http_req_duration"]["avg"].as_f64().expect("avg");
    assert!(
        (mean - avg).abs() <= avg * 1e-6 + 1e-6,
        "mean {mean} vs avg {avg}"
    );
    let fields = influx.query(db, "SHOW FIELD KEYS FROM http_req_duration");
    let fields: Vec<&str> = fields["values"]
        .as_array()
        .expect("field keys")
        .iter()
        .filter_map(|v| v[0].as_str())
        .collect();
    for f in [
        "count", "sum", "mean", "min", "med", "max", "p90", "p95", "p99",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_dashboard_queries_give_the_summary_totals_with_samples() {
    let influx = Influx::start();
    let m = &run_with_influx(format!("{}?layout=samples", influx.url("volley_k6"))).await;
    let reqs = m["http_reqs"]["count"].as_f64().expect("http_reqs");
    assert_eq!(reqs, 200.0);

    let db = "volley_k6";
    // The database was created by the output, as k6 does.
    assert_eq!(
        influx.scalar(db, "SELECT count(value) FROM http_reqs", 1),
        reqs
    );
    assert_eq!(
        influx.scalar(db, "SELECT sum(value) FROM http_reqs", 1),
        reqs
    );
    assert_eq!(
        influx.scalar(db, "SELECT sum(value) FROM iterations", 1),
        m["iterations"]["count"].as_f64().expect("iterations")
    );
    assert_eq!(
        influx.scalar(db, "SELECT sum(value) FROM data_received", 1),
        m["data_received"]["count"].as_f64().expect("data_received")
    );
    assert_eq!(
        influx.scalar(db, "SELECT count(value) FROM http_req_duration", 1),
        reqs
    );
    let mean = influx.scalar(db, "SELECT mean(value) FROM http_req_duration", 1);
    let avg = m["http_req_duration"]["avg"].as_f64().expect("avg");
    assert!(
        (mean - avg).abs() <= avg * 1e-6 + 1e-6,
        "mean {mean} vs avg {avg}"
    );
    let failed = influx.scalar(db, "SELECT mean(value) FROM http_req_failed", 1);
    assert_eq!(
        failed,
        m["http_req_failed"]["value"].as_f64().expect("rate")
    );
    assert_eq!(failed, 0.5);
    assert_eq!(
        influx.scalar(
            db,
            "SELECT sum(value) FROM http_reqs WHERE status = '404'",
            1
        ),
        100.0
    );

    // k6's tags and fields: url is a field by default, empty tags dropped.
    let tags = influx.query(db, "SHOW TAG KEYS FROM http_reqs");
    let tags: Vec<&str> = tags["values"]
        .as_array()
        .expect("tag keys")
        .iter()
        .filter_map(|v| v[0].as_str())
        .collect();
    for key in ["expected_response", "method", "name", "scenario", "status"] {
        assert!(tags.contains(&key), "{key} in {tags:?}");
    }
    assert!(
        !tags.contains(&"url") && !tags.contains(&"group"),
        "{tags:?}"
    );
    let fields = influx.query(db, "SHOW FIELD KEYS FROM http_reqs");
    let fields: Vec<&str> = fields["values"]
        .as_array()
        .expect("field keys")
        .iter()
        .filter_map(|v| v[0].as_str())
        .collect();
    assert_eq!(fields, ["url", "value"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_backend_never_fails_the_test() {
    let (_held, port) = common::refusing_port();
    let started = Instant::now();
    let run = run_with_outputs(
        ITERATIONS,
        &[format!(
            "influxdb=http://127.0.0.1:{port}/nowhere?pushInterval=200ms"
        )],
        &[],
    )
    .await;
    let text = run.passed();
    assert!(text.contains("http_reqs"), "the summary: {text}");
    let note = run
        .notes("influxdb (http://127.0.0.1:")
        .into_iter()
        .find(|l| l.contains("points dropped"))
        .unwrap_or_else(|| panic!("a note on the lost points: {text}"));
    assert!(
        note.contains("points dropped: cannot reach") && note.contains("refused"),
        "{note}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the final flush has a time limit: {:?}",
        started.elapsed()
    );
}

/// A backend that refuses: first a database that cannot be created (auth
/// on, no user yet), then wrong credentials. The test passes on its own
/// results; the summary says why the points were not delivered, and never
/// shows the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_backend_is_a_note_not_a_failure() {
    let influx = Influx::start_with("  auth-enabled = true");
    let notes = |url: String| async move {
        let run = run_with_outputs(ITERATIONS, &[format!("influxdb={url}")], &[]).await;
        run.passed();
        run.notes("influxdb").join("\n")
    };

    let n = notes(format!("http://127.0.0.1:{}/k6", influx.port)).await;
    assert!(
        n.contains("points dropped") && n.contains("database not found"),
        "{n}"
    );
    assert!(n.contains("CREATE DATABASE at the start failed too"), "{n}");

    let (status, body) = influx
        .post(
            "/query?q=CREATE%20USER%20admin%20WITH%20PASSWORD%20%27pw%27%20WITH%20ALL%20PRIVILEGES",
        )
        .expect("influxd answers");
    assert_eq!(status, 200, "{body}");
    let n = notes(format!("http://admin:guess@127.0.0.1:{}/k6", influx.port)).await;
    assert!(n.contains("points dropped") && n.contains("401"), "{n}");
    assert!(n.contains("K6_INFLUXDB_USERNAME"), "{n}");
    assert!(!n.contains("guess"), "the password is never shown: {n}");
}

/// Payloads are cut at `payloadSize` points (and a few MiB): an InfluxDB
/// whose `max-body-size` is far below one push's worth of points still
/// gets every point, in many small writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_stay_under_the_backends_body_limit() {
    let influx = Influx::start_with("  max-body-size = 30000");
    let url = format!(
        "{}?layout=samples&payloadSize=20&pushInterval=5s",
        influx.url("small_bodies")
    );
    let run = run_with_outputs(ITERATIONS, &[format!("influxdb={url}")], &[]).await;
    let text = run.passed();
    assert!(!text.contains("points dropped"), "{text}");
    assert_eq!(
        influx.scalar("small_bodies", "SELECT sum(value) FROM http_reqs", 1),
        200.0
    );
}

/// Tag values of `key` in measurement `m`, sorted.
fn tag_values(influx: &Influx, db: &str, m: &str, key: &str) -> Vec<String> {
    let s = influx.query(
        db,
        &format!("SHOW TAG VALUES FROM {m} WITH KEY = \"{key}\""),
    );
    let mut values: Vec<String> = s["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[1].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    values.sort();
    values
}

/// A 3-agent fleet test with `outputs`: the origin writes the fleet's
/// merged intervals once, tagged with the test id, and the backend's total
/// is the fleet summary's exactly; with `outputsBy: agent` the same total
/// comes as one series set per agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_test_writes_one_merged_stream() {
    use fleet::plans;
    let influx = Influx::start();
    let target = fleet::target().await;
    let fleet = fleet::outputs::start().await;
    let db = "fleet_outputs";
    let mut totals = Vec::new();
    for by in [None, Some("agent")] {
        let output = format!("influxdb={}?pushInterval=200ms", influx.url(db));
        let (id, _) = fleet
            .run_with_outputs(target.addr, vec![output], by, "points dropped")
            .await;
        let written = influx.scalar(
            db,
            &format!("SELECT sum(value) FROM http_reqs WHERE testid = '{id}'"),
            1,
        );
        assert_eq!(written, 300.0, "the fleet's total, exactly");
        let agents = tag_values(&influx, db, "http_reqs", "agent");
        match by {
            None => assert!(
                agents.is_empty(),
                "one stream, not one per agent: {agents:?}"
            ),
            Some(_) => {
                assert_eq!(agents, ["agent-0", "agent-1", "agent-2"]);
                assert_eq!(tag_values(&influx, db, "http_reqs", "region"), ["eu", "us"]);
            }
        }
        totals.push(id);
    }
    // Refused before anything runs: an output on an agent's disk, and a
    // backend the agents' egress policy denies (cloud metadata).
    for (output, expected) in [
        (
            "json=/tmp/samples.json",
            "a fleet test writes its merged intervals",
        ),
        ("influxdb=http://169.254.169.254/db", "outputs[0]"),
    ] {
        let mut req = plans::submit(plans::shared_iterations(target.addr, 1, 1, "/"));
        req.outputs = vec![output.to_owned()];
        let e = fleet
            .client(0)
            .submit(&req)
            .await
            .expect_err("refused")
            .to_string();
        assert!(e.contains(expected), "{output}: {e}");
    }
    assert_eq!(tag_values(&influx, db, "http_reqs", "testid"), {
        let mut ids = totals.clone();
        ids.sort();
        ids
    });
    target.shutdown().await;
}

/// `https://` through a TLS proxy whose certificate is self-signed: with
/// k6's `insecure=true` every point arrives; without it, the certificate
/// is refused and the summary says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_backend_is_written_with_insecure_and_refused_without() {
    let influx = Influx::start();
    let (proxy, _ca) = tls_proxy(influx.port).await;
    let url = |db: &str| format!("https://127.0.0.1:{}/{db}", proxy.port);

    let m = run_with_influx(format!("{}?insecure=true", url("over_tls"))).await;
    assert_eq!(
        influx.scalar("over_tls", "SELECT sum(value) FROM http_reqs", 1),
        m["http_reqs"]["count"].as_f64().expect("http_reqs")
    );

    let run = run_with_outputs(ITERATIONS, &[format!("influxdb={}", url("refused"))], &[]).await;
    run.passed();
    let notes = run.notes("influxdb (https://127.0.0.1:").join("\n");
    assert!(
        notes.contains("points dropped") && notes.contains("certificate"),
        "{notes}"
    );
}
