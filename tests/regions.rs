//! In-region vs cross-region in one command: a plan with `targets` run by
//! the real binary against two built-in targets, one answering 40 ms late;
//! the summary's region matrix (text and `--summary-export`), a threshold
//! on one cell, the `target_region` tag in an output, and
//! `volley demo --cross-region`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{base, start_target, start_target_with, volley_async};
use volley::target::TargetConfig;

/// Longest a `volley run` of these tests may take.
const LIMIT: Duration = Duration::from_secs(30);
/// The far target's added latency.
const FAR: Duration = Duration::from_millis(40);
/// Room above the emulated delay for a busy test machine.
const SLACK_MS: f64 = 60.0;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> serde_json::Value {
    let body = std::fs::read_to_string(path).expect("the summary export was written");
    serde_json::from_str(&body).expect("the summary export is JSON")
}

/// The matrix cell `region` -> `target` of a summary export.
fn cell<'a>(export: &'a serde_json::Value, region: &str, target: &str) -> &'a serde_json::Value {
    export["matrix"]
        .as_array()
        .expect("the export has a matrix")
        .iter()
        .find(|c| c["region"] == region && c["target_region"] == target)
        .unwrap_or_else(|| panic!("no cell {region} -> {target} in {}", export["matrix"]))
}

fn ms(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {v}"))
}

/// How far below the emulated delay a percentile's difference may fall:
/// every cross-region request takes the delay more than its own service
/// time, but the two cells' service times are different samples, and on a
/// busy machine the in-region cell's p95 can catch a slow one the other
/// cell did not.
const BELOW_MS: [(&str, f64); 2] = [("p50", 1.0), ("p95", 5.0)];

/// The cross-region cell's p50 and p95 exceed the in-region cell's by the
/// emulated delay, and not by much more.
fn assert_delay_shows(export: &serde_json::Value, region: &str, near: &str, far: &str) {
    let near = cell(export, region, near);
    let far = cell(export, region, far);
    let delay = FAR.as_secs_f64() * 1000.0;
    for (p, below) in BELOW_MS {
        let diff = ms(far, &format!("{p}_ms")) - ms(near, &format!("{p}_ms"));
        assert!(
            diff >= delay - below && diff < delay + SLACK_MS,
            "{p}: cross-region minus in-region = {diff} ms, expected about {delay} ms\n{}",
            export["matrix"]
        );
        let delta = ms(far, &format!("{p}_delta_ms"));
        assert!(
            (delta - diff).abs() < 0.01,
            "{p}_delta_ms {delta} vs {diff}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_targets_give_a_matrix_and_a_failing_cell_threshold_exits_99() {
    let near = start_target().await;
    let far = start_target_with(TargetConfig {
        added_latency: FAR,
        ..TargetConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"
targets:
  us-east: "{}"
  eu-west: "{}"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 50
thresholds:
  "http_req_duration{{region:us-east,target_region:us-east}}": ["p(95)<1000"]
  "http_req_duration{{region:us-east,target_region:eu-west}}": ["p(95)<20"]
flow:
  - get:
      url: /json
      check:
        - status: 200
"#,
            base(&near),
            base(&far)
        ),
    )
    .expect("write the plan");
    let export = dir.path().join("summary.json");
    let points = dir.path().join("points.json");
    let out = volley_async(
        vec![
            "run".into(),
            plan.display().to_string(),
            "--quiet".into(),
            "--region".into(),
            "us-east".into(),
            "--summary-export".into(),
            export.display().to_string(),
            "--out".into(),
            format!("json={}", points.display()),
        ],
        LIMIT,
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(99),
        "the cross-region cell's p(95)<20 fails\nstdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("REGION MATRIX"), "{stdout}");
    assert!(
        stdout.contains("✗ 'p(95)<20'"),
        "the cell's threshold is shown failed:\n{stdout}"
    );

    let export = read_json(&export);
    let cells = export["matrix"].as_array().expect("a matrix");
    assert_eq!(cells.len(), 2, "{cells:?}");
    // 2 VUs x 50 iterations, one request per target each.
    for target in ["us-east", "eu-west"] {
        let c = cell(&export, "us-east", target);
        assert_eq!(c["requests"], 100, "{c}");
        assert_eq!(c["failed"], 0, "{c}");
    }
    assert_eq!(ms(cell(&export, "us-east", "us-east"), "p95_delta_ms"), 0.0);
    assert_delay_shows(&export, "us-east", "us-east", "eu-west");
    // The cell's sub-metric carries the thresholds' verdicts.
    let sub = &export["metrics"]["http_req_duration{region:us-east,target_region:eu-west}"];
    assert_eq!(sub["thresholds"]["p(95)<20"], true, "{sub}");
    assert_eq!(near.stats.requests(), 100);
    assert_eq!(far.stats.requests(), 100);

    // Outputs carry both tags on every request's samples.
    let lines = std::fs::read_to_string(&points).expect("the JSON output was written");
    let tagged = lines
        .lines()
        .filter(|l| l.contains("\"metric\":\"http_reqs\"") && l.contains("\"type\":\"Point\""))
        .filter(|l| {
            l.contains("\"region\":\"us-east\"") && l.contains("\"target_region\":\"eu-west\"")
        })
        .count();
    assert_eq!(tagged, 100, "http_reqs points to eu-west, tagged:\n{lines}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_region_flag_the_agent_region_is_local() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "targets:\n  eu: \"{}\"\niterations: 3\nflow:\n  - get: /\n",
            base(&target)
        ),
    )
    .expect("write the plan");
    let export = dir.path().join("summary.json");
    let out = volley_async(
        vec![
            "run".into(),
            plan.display().to_string(),
            "--quiet".into(),
            "--summary-export".into(),
            export.display().to_string(),
        ],
        LIMIT,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let export = read_json(&export);
    let c = cell(&export, "local", "eu");
    assert_eq!(c["requests"], 3, "{c}");
    assert!(
        c.get("p50_delta_ms").is_none(),
        "no in-region cell for local: {c}"
    );

    let bad = volley_async(
        vec![
            "run".into(),
            plan.display().to_string(),
            "--region".into(),
            "us east".into(),
        ],
        LIMIT,
    )
    .await;
    assert_eq!(bad.status.code(), Some(104));
    assert!(
        text(&bad.stderr).contains("--region \"us east\": expected a region name"),
        "{}",
        text(&bad.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_cross_region_exits_0_and_shows_the_emulated_delay() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let export = dir.path().join("summary.json");
    let out = volley_async(
        vec![
            "demo".into(),
            "--cross-region".into(),
            "--duration".into(),
            "2s".into(),
            "--rate".into(),
            "100".into(),
            "--no-color".into(),
            "--summary-export".into(),
            export.display().to_string(),
        ],
        LIMIT,
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("REGION MATRIX"), "{stdout}");
    let matrix_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("us-east  eu-west"))
        .unwrap_or_else(|| panic!("a us-east -> eu-west row:\n{stdout}"));
    assert!(
        matrix_line.contains('+'),
        "a positive difference: {matrix_line}"
    );
    let export = read_json(&export);
    let cross = cell(&export, "us-east", "eu-west");
    let inside = cell(&export, "us-east", "us-east");
    assert_eq!(
        cross["requests"], inside["requests"],
        "one of each per iteration"
    );
    assert!(cross["requests"].as_u64().unwrap_or(0) >= 100, "{cross}");
    assert_delay_shows(&export, "us-east", "us-east", "eu-west");
}
