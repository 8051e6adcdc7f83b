//! One script of the corpus run under k6 (unless its row skips k6) and
//! under Volley, and everything its row says the two must agree on
//! compared: exit codes, counts, checks, custom metrics, thresholds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::cases::{Case, Compare, K6Side};
use super::export::{check_ratio, checks, count, custom_counts, map_diff, thresholds};
use super::run::{Run, Tool, run_tool};
use crate::SCRIPTS;

/// Runs one script under k6 (unless skipped) and Volley and returns what
/// disagrees, one message per problem.
pub async fn run_case(case: &Case, k6: &Path, base: &str) -> Vec<String> {
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
