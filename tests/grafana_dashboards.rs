//! The Grafana dashboards Volley ships (`deploy/grafana/`, and the same
//! files in `chart/volley/dashboards/` for the chart's ConfigMaps), checked
//! against real backends: one `volley run` writes to a real InfluxDB 1.x
//! (`--out influxdb`) and a real Prometheus (`--out
//! experimental-prometheus-rw`), both started by the test; and a fleet of
//! two real agents is scraped by a real Prometheus (`/metrics`, the agents'
//! dashboard). Then every panel's query runs against its backend and must
//! return data, and the "Requests (total)" and "Failed requests (total)"
//! panels give the summary's counts exactly.
//!
//! Grafana's template variables are substituted as a user who picked one
//! test would see them (documented in `deploy/grafana/README.md`):
//!
//! | variable | value |
//! |---|---|
//! | `$testid`, `$test` | the run's `--tag testid=…`, the fleet test's id |
//! | `$scenario` | `.*` (All) |
//! | `$__rate_interval` | `5s` (pushes every 1 s) |
//! | `$__interval` | `1s` |
//! | `$__range` | `1h` |
//! | `$timeFilter` | `time > now() - 1h` |

mod common;
mod fleet;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::backends::{Influx, Prometheus};
use common::{base, start_target, stderr, stdout, volley_async_env};

const LIMIT: Duration = Duration::from_secs(90);
const TESTID: &str = "dash-1";
const DB: &str = "dashboards";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The dashboards, by file name.
fn dashboards(dir: &Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (
                p.file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned(),
                v,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel (rows' panels included): (title, datasource type, targets).
fn panels(d: &Value) -> Vec<(String, String, Vec<Value>)> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().expect("panels").iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p["panels"].as_array() {
            stack.extend(inner);
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("").to_owned();
        let kind = p["datasource"]["type"].as_str().unwrap_or("").to_owned();
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "panel {title:?} has a query");
        out.push((title, kind, targets));
    }
    out
}

/// A query with Grafana's variables replaced (see the module's table).
fn substitute(q: &str, test: &str) -> String {
    let q = q
        .replace("$__rate_interval", "5s")
        .replace("$__interval", "1s")
        .replace("$__range", "1h")
        .replace("$timeFilter", "time > now() - 1h")
        .replace("$testid", test)
        .replace("$test", test)
        .replace("$scenario", ".*");
    let left = q.match_indices('$').any(|(i, _)| {
        q[i + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '{')
    });
    assert!(!left, "a variable is left in {q}");
    q
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[test]
fn deploy_and_chart_ship_the_same_dashboards() {
    let deploy = dashboards(&root().join("deploy/grafana"));
    let chart = dashboards(&root().join("chart/volley/dashboards"));
    assert!(deploy.len() >= 2, "{deploy:?}");
    let names = |v: &[(String, Value)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&deploy), names(&chart));
    for (name, _) in &deploy {
        let a = std::fs::read(root().join("deploy/grafana").join(name)).expect("read");
        let b = std::fs::read(root().join("chart/volley/dashboards").join(name)).expect("read");
        assert!(
            a == b,
            "deploy/grafana/{name} differs from chart/volley/dashboards/{name}; \
             the chart's copy is canonical: cp chart/volley/dashboards/*.json deploy/grafana/"
        );
    }
    for (name, d) in &deploy {
        assert!(
            d["uid"].as_str().is_some_and(|u| u.starts_with("volley-")),
            "{name}"
        );
        let titles: Vec<String> = panels(d).into_iter().map(|(t, _, _)| t).collect();
        let mut wanted = vec![
            "Requests (total)",
            "Requests per second",
            "Virtual users",
            "Latency percentiles",
            "Failed requests",
            "Data sent and received",
            "by scenario",
        ];
        if name == "volley-agents.json" {
            // /metrics has no checks; it has the generators' load.
            wanted.extend(["Generator CPU share", "Scheduling lag"]);
        } else {
            wanted.push("Checks");
        }
        for want in wanted {
            assert!(
                titles
                    .iter()
                    .any(|t| t.starts_with(want) || t.contains(want)),
                "{name} has a {want:?} panel: {titles:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_and_the_totals_match() {
    let influx = Influx::start();
    let prom = Prometheus::start();
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let t = base(&target);
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"
scenarios:
  browse:
    executor: constant-vus
    vus: 2
    duration: 3s
    flow:
      - get:
          url: "{t}/json"
          check:
            - status: 200
  buy:
    executor: constant-arrival-rate
    rate: 20
    timeUnit: 1s
    duration: 3s
    preAllocatedVUs: 4
    flow:
      - get: "{t}/status/404"
"#
        ),
    )
    .expect("plan written");
    let export = dir.path().join("summary.json");
    let started = now_s();
    let out = volley_async_env(
        vec![
            "run".into(),
            plan.display().to_string(),
            "--quiet".into(),
            "--tag".into(),
            format!("testid={TESTID}"),
            "--summary-export".into(),
            export.display().to_string(),
            "--out".into(),
            format!("influxdb={}", influx.url(DB)),
            "--out".into(),
            "experimental-prometheus-rw".into(),
        ],
        vec![
            ("K6_PROMETHEUS_RW_SERVER_URL".into(), prom.write_url()),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL".into(), "1s".into()),
            (
                "K6_PROMETHEUS_RW_TREND_STATS".into(),
                "med,p(95),p(99),max,count,sum".into(),
            ),
        ],
        LIMIT,
    )
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        !text.contains("dropped") && !text.contains("not delivered"),
        "{text}"
    );
    let summary = common::export(&export);
    let reqs = summary["metrics"]["http_reqs"]["count"]
        .as_f64()
        .expect("http_reqs");
    let failed = summary["metrics"]["http_req_failed"]["passes"]
        .as_f64()
        .expect("http_req_failed passes");
    assert!(reqs > 0.0 && failed > 0.0, "{reqs} {failed}");
    let end = now_s() + 1.0;

    let mut checked = 0;
    for (name, d) in dashboards(&root().join("deploy/grafana")) {
        if name == "volley-agents.json" {
            continue;
        }
        checked += check_panels(
            &name,
            &d,
            Backends {
                prom: &prom,
                influx: Some(&influx),
                test: TESTID,
                range: (started - 5.0, end),
            },
            reqs,
            failed,
        );
    }
    assert!(checked >= 25, "{checked} queries checked");
    target.shutdown().await;
}

/// Where a dashboard's queries run.
struct Backends<'a> {
    prom: &'a Prometheus,
    influx: Option<&'a Influx>,
    /// `$testid` / `$test`.
    test: &'a str,
    /// Range queries' start and end, Unix seconds.
    range: (f64, f64),
}

/// Runs every panel's queries; each must return data, and the two total
/// panels must give `reqs` and `failed`. Returns how many queries ran.
fn check_panels(name: &str, d: &Value, b: Backends<'_>, reqs: f64, failed: f64) -> usize {
    let mut checked = 0;
    for (title, kind, targets) in panels(d) {
        for target in targets {
            let what = format!("{name}: {title:?} ({})", target["refId"]);
            let want_total = match title.as_str() {
                "Requests (total)" => Some(reqs),
                "Failed requests (total)" => Some(failed),
                _ => None,
            };
            match kind.as_str() {
                "prometheus" => {
                    let q = substitute(target["expr"].as_str().expect("expr"), b.test);
                    let result = if target["instant"] == true {
                        b.prom.query(&q, None)
                    } else {
                        b.prom.query_range(&q, b.range.0, b.range.1, 1.0)
                    };
                    assert!(
                        !result.is_empty(),
                        "{what}: no data for {q}; scrapes: {:?}",
                        b.prom.query_range("up", b.range.0, b.range.1, 1.0)
                    );
                    let finite = |v: &Value| {
                        v.get(1)
                            .and_then(Value::as_str)
                            .and_then(|s| s.parse::<f64>().ok())
                            .is_some_and(f64::is_finite)
                    };
                    let any_finite = result.iter().any(|r| {
                        finite(&r["value"])
                            || r["values"]
                                .as_array()
                                .is_some_and(|vs| vs.iter().any(finite))
                    });
                    assert!(any_finite, "{what}: only NaN for {q}: {result:?}");
                    if let Some(want) = want_total {
                        let total: f64 = result
                            .iter()
                            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                            .sum();
                        assert_eq!(total, want, "{what}");
                    }
                }
                "influxdb" => {
                    let influx = b.influx.expect("an InfluxDB for this dashboard");
                    let q = substitute(target["query"].as_str().expect("query"), b.test);
                    let series = influx.query(DB, &q);
                    let rows = series["values"].as_array().map_or(0, Vec::len);
                    assert!(rows > 0, "{what}: no data for {q}: {series}");
                    if let Some(want) = want_total {
                        assert_eq!(series["values"][0][1].as_f64(), Some(want), "{what}");
                    }
                }
                other => panic!("{what}: unexpected data source type {other:?}"),
            }
            checked += 1;
        }
    }
    checked
}

/// The agents' dashboard: a real Prometheus scrapes two real agents'
/// `/metrics` every second (with the API token, as the chart's
/// ServiceMonitor can) while they run a fleet test with failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_dashboard_reads_a_scraped_fleet() {
    let target = fleet::target().await;
    let fleet = fleet::Fleet::start(2, fleet::FleetOptions::default())
        .await
        .expect("fleet forms");
    let targets: Vec<String> = fleet
        .agents
        .iter()
        .map(|a| format!("'{}'", a.api))
        .collect();
    let prom = Prometheus::start_with(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: volley\n    authorization:\n      credentials: {}\n\
         \x20   static_configs:\n      - targets: [{}]\n",
        fleet::TOKEN,
        targets.join(", ")
    ));
    let plan = format!(
        r#"scenarios:
  open:
    executor: constant-arrival-rate
    rate: 50
    timeUnit: 1s
    duration: 4s
    preAllocatedVUs: 20
    flow:
      - get: http://{addr}/
      - get: http://{addr}/status/500
"#,
        addr = target.addr
    );
    // Prometheus applies new scrape targets every 5 s: the test starts
    // once both agents are being scraped, so it is seen throughout.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while prom
        .query("count(up == 1)", None)
        .first()
        .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
        != Some(2.0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus never scraped both agents: {:?}",
            prom.query("up", None)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let started = now_s();
    let view = fleet.run_to_seal(0, &fleet::plans::submit(plan)).await;
    let reqs = match view.summary.metric("http_reqs").map(|m| &m.values) {
        Some(volley::metrics::MetricValues::Counter { count, .. }) => *count,
        other => panic!("http_reqs in the summary: {other:?}"),
    };
    // Every iteration: a 200, then a 500.
    let failed = reqs / 2.0;
    // A scrape after the seal: the totals are final.
    let total = format!(
        "sum(volley_test_http_requests_total{{test=\"{}\"}})",
        view.id
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while prom
        .query(&total, None)
        .first()
        .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
        != Some(reqs)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus never scraped {reqs} requests: {:?}",
            prom.query(&total, None)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let d = dashboards(&root().join("deploy/grafana"))
        .into_iter()
        .find(|(n, _)| n == "volley-agents.json")
        .expect("the agents' dashboard")
        .1;
    let checked = check_panels(
        "volley-agents.json",
        &d,
        Backends {
            prom: &prom,
            influx: None,
            test: &view.id,
            range: (started - 5.0, now_s() + 1.0),
        },
        reqs,
        failed,
    );
    assert!(checked >= 12, "{checked} queries checked");
    target.shutdown().await;
}
