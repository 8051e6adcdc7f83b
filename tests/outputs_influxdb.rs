//! `--out influxdb` against a real InfluxDB 1.x (Debian's `influxd`,
//! installed by `scripts/test`), started per test on free loopback ports
//! with a temporary data directory: the queries of k6's Grafana dashboards
//! (`count(value)`, `sum(value)`, `mean(value)`) give the summary's totals
//! exactly, with k6's measurements, tags and fields; an unreachable
//! backend costs the test nothing but a note in the summary.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::backends::{Influx, free_port};
use common::{base, start_target, stderr, stdout, volley_async};

/// Longest a `volley run` of these tests may take.
const LIMIT: Duration = Duration::from_secs(90);

fn write_plan(dir: &Path, target: &str) -> String {
    let path = dir.join("plan.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 4
    iterations: 25
flow:
  - get:
      url: "{target}/json"
      check:
        - status: 200
  - get: "{target}/status/404"
"#
        ),
    )
    .expect("plan written");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_dashboard_queries_give_the_summary_totals() {
    let influx = Influx::start();
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(dir.path(), &base(&target));
    let export = dir.path().join("summary.json");
    let out = volley_async(
        vec![
            "run".into(),
            plan,
            "--quiet".into(),
            "--summary-export".into(),
            export.display().to_string(),
            "--out".into(),
            format!("influxdb={}", influx.url("volley_k6")),
        ],
        LIMIT,
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&out).contains("points dropped"), "{}", stdout(&out));
    let summary = common::export(&export);
    let m = &summary["metrics"];
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
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_backend_never_fails_the_test() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(dir.path(), &base(&target));
    let port = free_port();
    let started = Instant::now();
    let out = volley_async(
        vec![
            "run".into(),
            plan,
            "--quiet".into(),
            "--out".into(),
            format!("influxdb=http://127.0.0.1:{port}/nowhere?pushInterval=200ms"),
        ],
        LIMIT,
    )
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("http_reqs"), "the summary: {text}");
    let note = text
        .lines()
        .find(|l| l.contains("--out influxdb (http://127.0.0.1:") && l.contains("points dropped"))
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
    target.shutdown().await;
}

/// A backend that refuses: first a database that cannot be created (auth
/// on, no user yet), then wrong credentials. The test passes on its own
/// results; the summary says why the points were not delivered, and never
/// shows the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_backend_is_a_note_not_a_failure() {
    let influx = Influx::start_with("  auth-enabled = true");
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(dir.path(), &base(&target));
    let run = |url: String| {
        volley_async(
            vec![
                "run".into(),
                plan.clone(),
                "--quiet".into(),
                "--out".into(),
                format!("influxdb={url}"),
            ],
            LIMIT,
        )
    };
    let notes = |out: &std::process::Output| -> Vec<String> {
        let text = stdout(out);
        assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(out));
        text.lines()
            .filter(|l| l.contains("--out influxdb"))
            .map(str::to_owned)
            .collect()
    };

    let out = run(format!("http://127.0.0.1:{}/k6", influx.port)).await;
    let n = notes(&out).join("\n");
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
    let out = run(format!("http://admin:guess@127.0.0.1:{}/k6", influx.port)).await;
    let n = notes(&out).join("\n");
    assert!(n.contains("points dropped") && n.contains("401"), "{n}");
    assert!(n.contains("K6_INFLUXDB_USERNAME"), "{n}");
    assert!(!n.contains("guess"), "the password is never shown: {n}");
    target.shutdown().await;
}

/// Payloads are cut at `payloadSize` points (and a few MiB): an InfluxDB
/// whose `max-body-size` is far below one push's worth of points still
/// gets every point, in many small writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_stay_under_the_backends_body_limit() {
    let influx = Influx::start_with("  max-body-size = 30000");
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(dir.path(), &base(&target));
    let url = format!(
        "{}?payloadSize=20&pushInterval=5s",
        influx.url("small_bodies")
    );
    let out = volley_async(
        vec![
            "run".into(),
            plan,
            "--quiet".into(),
            "--out".into(),
            format!("influxdb={url}"),
        ],
        LIMIT,
    )
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(!text.contains("points dropped"), "{text}");
    assert_eq!(
        influx.scalar("small_bodies", "SELECT count(value) FROM http_reqs", 1),
        200.0
    );
    target.shutdown().await;
}
