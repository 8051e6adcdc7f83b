//! `--out json` and `--out csv` side by side with real k6 1.1.0: the same
//! script against the same in-process target, both writing k6's JSON
//! lines and CSV. The files are read as a consumer of k6's formats reads
//! them (every JSON line parsed, `Metric` declarations before `Point`s,
//! CSV rows by header name): the declarations, the point layout, the tag
//! keys and the CSV header must be k6's, and the points must add up to the
//! summary's totals. Also: several outputs at once, `.gz` files, `K6_OUT`,
//! the errors for bad `--out` values, and a file that cannot be written
//! (the test runs on; the summary says what was lost).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::k6::k6_binary;
use common::{base, start_target};

/// Longest one `k6 run` or `volley run` of these tests may take.
const LIMIT: Duration = Duration::from_secs(60);

/// Two VUs, six iterations, a check, a group, a custom counter and
/// thresholds (one with `abortOnFail`, one on a submetric).
const SCRIPT: &str = r#"
import http from 'k6/http';
import { check, group } from 'k6';
import { Counter } from 'k6/metrics';

const orders = new Counter('orders_placed');

export const options = {
  vus: 2,
  iterations: 6,
  thresholds: {
    http_req_duration: ['p(95)<5000'],
    'http_req_duration{status:200}': ['max<9000'],
    checks: [{ threshold: 'rate>0.5', abortOnFail: true }],
  },
};

export default function () {
  group('shop', function () {
    const res = http.get(`${__ENV.TARGET_URL}/json`);
    check(res, { 'status is 200': (r) => r.status === 200 });
  });
  orders.add(2);
}
"#;

enum Tool<'a> {
    K6(&'a Path),
    Volley,
}

/// Runs `script` under `tool` with `args` and `env`, killed past [`LIMIT`].
async fn run(tool: Tool<'_>, args: &[String], env: &[(&str, String)]) -> Output {
    let mut cmd = match tool {
        Tool::K6(k6) => {
            let mut c = tokio::process::Command::new(k6);
            c.args(["run", "--no-usage-report"]);
            c
        }
        Tool::Volley => {
            let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"));
            c.arg("run");
            c
        }
    };
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("K6_OUT")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(LIMIT, cmd.output())
        .await
        .expect("the run ends within its limit")
        .expect("the tool starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_script(dir: &Path) -> String {
    let path = dir.join("shop.js");
    std::fs::write(&path, SCRIPT).expect("script written");
    path.display().to_string()
}

/// A k6 JSON output as a consumer reads it: every line parsed, metrics
/// declared before their points.
struct K6Json {
    /// Declaration lines, verbatim, by metric.
    declarations: BTreeMap<String, String>,
    /// Point lines, parsed, in order.
    points: Vec<Value>,
    /// Point lines, verbatim.
    point_lines: Vec<String>,
}

fn read_k6_json(text: &str) -> K6Json {
    let mut out = K6Json {
        declarations: BTreeMap::new(),
        points: Vec::new(),
        point_lines: Vec::new(),
    };
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let metric = v["metric"].as_str().expect("every line names its metric");
        match v["type"].as_str() {
            Some("Metric") => {
                assert_eq!(v["data"]["name"], metric, "{line}");
                let fresh = out
                    .declarations
                    .insert(metric.to_owned(), line.to_owned())
                    .is_none();
                assert!(fresh, "{metric} declared twice");
            }
            Some("Point") => {
                assert!(
                    out.declarations.contains_key(metric),
                    "a point before its declaration: {line}"
                );
                assert!(v["data"]["value"].is_number(), "{line}");
                assert!(v["data"]["tags"].is_object(), "{line}");
                let time = v["data"]["time"].as_str().expect("a time");
                assert!(
                    time.len() >= 20 && time.as_bytes()[10] == b'T',
                    "RFC 3339: {time}"
                );
                out.points.push(v);
                out.point_lines.push(line.to_owned());
            }
            other => panic!("unknown type {other:?}: {line}"),
        }
    }
    out
}

/// Sum of the points of `metric`.
fn point_sum(j: &K6Json, metric: &str) -> f64 {
    j.points
        .iter()
        .filter(|p| p["metric"] == metric)
        .map(|p| p["data"]["value"].as_f64().expect("a number"))
        .sum()
}

/// The tag keys of `metric`'s points.
fn tag_keys(j: &K6Json, metric: &str) -> BTreeSet<String> {
    j.points
        .iter()
        .filter(|p| p["metric"] == metric)
        .flat_map(|p| {
            p["data"]["tags"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect()
}

/// The key layout of a line: its keys, and `data`'s, in written order.
fn layout(line: &str) -> String {
    let keys = |s: &str| -> Vec<String> {
        // Keys at the first nesting level of the object `s` starts with.
        let mut depth = 0;
        let mut keys = Vec::new();
        let mut in_str = false;
        let mut escaped = false;
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if in_str {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                    if depth == 1 && s[i + 1..].starts_with(':') {
                        keys.push(s[start..i].to_owned());
                    }
                }
                continue;
            }
            match c {
                '"' => {
                    in_str = true;
                    start = i + 1;
                }
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ => {}
            }
        }
        keys
    };
    let data = line.find("\"data\":").map(|i| &line[i + 7..]).unwrap_or("");
    format!("{:?} data {:?}", keys(line), keys(data))
}

/// CSV as a consumer reads it: the header, and rows as maps by column.
fn read_csv(text: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.expect("a well-formed row");
            assert_eq!(rec.len(), header.len(), "{rec:?}");
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

fn csv_sum(rows: &[BTreeMap<String, String>], metric: &str) -> f64 {
    rows.iter()
        .filter(|r| r["metric_name"] == metric)
        .map(|r| r["metric_value"].parse::<f64>().expect("a number"))
        .sum()
}

fn gunzip(path: &Path) -> String {
    let file = std::fs::File::open(path).expect("the .gz file exists");
    let mut s = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut s)
        .expect("a complete gzip stream");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_csv_are_k6s_and_add_up_to_the_summary() {
    let k6 = k6_binary();
    let target = start_target().await;
    let env = [("TARGET_URL", base(&target))];
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write_script(dir.path());
    let p = |name: &str| -> PathBuf { dir.path().join(name) };
    let out =
        |spec: &str, file: &str| vec!["--out".to_owned(), format!("{spec}={}", p(file).display())];

    let mut k6_args = vec!["--quiet".to_owned()];
    k6_args.extend(out("json", "k6.json"));
    k6_args.extend(out("csv", "k6.csv"));
    k6_args.push(script.clone());
    let k6_run = run(Tool::K6(&k6), &k6_args, &env).await;
    assert_eq!(
        k6_run.status.code(),
        Some(0),
        "k6: {}",
        text(&k6_run.stderr)
    );

    let mut args = vec!["--quiet".to_owned(), "--summary-export".to_owned()];
    args.push(p("summary.json").display().to_string());
    args.extend(out("json", "volley.json"));
    args.extend(out("json", "volley.json.gz"));
    args.extend(out("csv", "volley.csv"));
    args.extend(out("volley-json", "intervals.jsonl"));
    args.push(script);
    let v_run = run(Tool::Volley, &args, &env).await;
    assert_eq!(
        v_run.status.code(),
        Some(0),
        "volley:\n{}\n{}",
        text(&v_run.stdout),
        text(&v_run.stderr)
    );

    let read = |f: &str| std::fs::read_to_string(p(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let k6_json = read_k6_json(&read("k6.json"));
    let json_text = read("volley.json");
    let json = read_k6_json(&json_text);
    assert_eq!(
        gunzip(&p("volley.json.gz")),
        json_text,
        "the .gz output holds the same lines"
    );

    // k6's metrics, declared as k6 declares them (thresholds, submetrics).
    let mut problems = Vec::new();
    for (metric, k6_line) in &k6_json.declarations {
        match json.declarations.get(metric) {
            Some(line) if line == k6_line => {}
            Some(line) => {
                problems.push(format!("{metric}:\n  k6:     {k6_line}\n  volley: {line}"))
            }
            None => problems.push(format!("{metric}: not declared by Volley")),
        }
    }
    // The same layout of point lines, and the same tag keys per metric.
    assert_eq!(
        layout(&k6_json.point_lines[0]),
        layout(&json.point_lines[0])
    );
    for metric in [
        "http_reqs",
        "http_req_duration",
        "checks",
        "iterations",
        "iteration_duration",
        "orders_placed",
    ] {
        let (k, v) = (tag_keys(&k6_json, metric), tag_keys(&json, metric));
        if k != v {
            problems.push(format!("{metric} tag keys: k6 {k:?}, volley {v:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "differences from k6:\n{}",
        problems.join("\n")
    );

    // Points add up to the summary's totals (and to k6's counts).
    let summary = common::export(&p("summary.json"));
    for (metric, expected) in [
        ("http_reqs", 6.0),
        ("iterations", 6.0),
        ("orders_placed", 12.0),
    ] {
        assert_eq!(point_sum(&json, metric), expected, "{metric}");
        assert_eq!(point_sum(&k6_json, metric), expected, "k6 {metric}");
        assert_eq!(summary["metrics"][metric]["count"], expected, "{metric}");
    }
    let sent: f64 = summary["metrics"]["data_sent"]["count"]
        .as_f64()
        .expect("data_sent");
    assert_eq!(point_sum(&json, "data_sent"), sent);
    let duration_points = json
        .points
        .iter()
        .filter(|p| p["metric"] == "http_req_duration")
        .count();
    assert_eq!(duration_points, 6);

    // CSV: k6's header, and rows that add up.
    let (k6_header, _) = read_csv(&read("k6.csv"));
    let (header, rows) = read_csv(&read("volley.csv"));
    assert_eq!(header, k6_header);
    assert_eq!(csv_sum(&rows, "http_reqs"), 6.0);
    assert_eq!(csv_sum(&rows, "orders_placed"), 12.0);
    assert_eq!(rows.len(), json.points.len(), "a row per JSON point");
    let req = rows
        .iter()
        .find(|r| r["metric_name"] == "http_reqs")
        .expect("an http_reqs row");
    assert_eq!(req["status"], "200");
    assert_eq!(req["group"], "::shop");
    assert_eq!(req["method"], "GET");

    // Volley's own interval lines still come out, under their new name.
    let intervals: f64 = read("intervals.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|v| v["type"] == "Interval" && v["metric"] == "http_reqs")
        .map(|v| v["values"]["count"].as_f64().expect("a count"))
        .sum();
    assert_eq!(intervals, 6.0);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_out_is_read_when_no_out_flag_is_given() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("from-env.csv.gz");
    let args = vec![
        "--quiet".to_owned(),
        "--iterations".to_owned(),
        "3".to_owned(),
        format!("{}/", base(&target)),
    ];
    let env = [("K6_OUT", format!("csv={}", file.display()))];
    let o = run(Tool::Volley, &args, &env).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (header, rows) = read_csv(&gunzip(&file));
    assert_eq!(header[0], "metric_name");
    assert_eq!(csv_sum(&rows, "http_reqs"), 3.0);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_out_values_are_refused_before_the_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("no/such/dir/out.json");
    for (value, expected) in [
        (
            "jsn=x.json",
            "unknown output \"jsn\"; known outputs: json, csv, influxdb, experimental-prometheus-rw, opentelemetry, volley-json",
        ),
        (
            "csv=fileName=a.csv,timeFormat=iso",
            "expected unix, unix_milli",
        ),
        ("volley-json", "expected volley-json=FILE"),
        (&format!("json={}", missing.display()), "cannot create"),
    ] {
        let args = vec![
            "--quiet".to_owned(),
            "--out".to_owned(),
            value.to_owned(),
            "http://127.0.0.1:1/".to_owned(),
        ];
        let o = run(Tool::Volley, &args, &[]).await;
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(104), "{value}: {err}");
        assert!(err.contains(expected), "{value}: {err}");
    }
}

/// `/dev/full` takes the file but fails every write: the test runs to
/// its end and the summary says how many points were not written and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_cannot_be_written_never_fails_the_test() {
    if !Path::new("/dev/full").exists() {
        panic!("this test needs /dev/full (Linux)");
    }
    let target = start_target().await;
    let args = vec![
        "--out".to_owned(),
        "json=/dev/full".to_owned(),
        "--iterations".to_owned(),
        "400".to_owned(),
        format!("{}/", base(&target)),
    ];
    let o = run(Tool::Volley, &args, &[]).await;
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    assert!(stdout.contains("http_reqs"), "the summary: {stdout}");
    assert!(
        stdout.contains("--out json (/dev/full): cannot write:")
            && stdout.contains("points dropped"),
        "{stdout}"
    );
    target.shutdown().await;
}
