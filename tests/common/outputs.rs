//! `volley run` with outputs, as the output tests drive it: the plan they
//! share (each iteration a checked `200` and a `404`) against an embedded
//! target of its own, `--out` and `K6_*` variables, and the summary export
//! read back, so a backend's totals can be held against the summary's.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::{base, export, start_target, stderr, stdout, volley_async_env};

/// Longest a `volley run` of these tests may take.
pub const LIMIT: Duration = Duration::from_secs(90);

/// Four VUs, 25 iterations each: 200 requests, 100 of them `404`.
pub const ITERATIONS: &str = "executor: per-vu-iterations\n    vus: 4\n    iterations: 25";

/// Two VUs for 3 s: several push intervals.
pub const THREE_SECONDS: &str = "executor: constant-vus\n    vus: 2\n    duration: 3s";

/// A finished run: the process and its summary export's metrics (`Null`
/// when it wrote none).
pub struct OutputRun {
    pub out: Output,
    pub metrics: Value,
}

impl OutputRun {
    pub fn stdout(&self) -> String {
        stdout(&self.out)
    }

    pub fn stderr(&self) -> String {
        stderr(&self.out)
    }

    /// Panics with both streams unless the run exited 0; its stdout.
    pub fn passed(&self) -> String {
        let text = self.stdout();
        assert_eq!(self.out.status.code(), Some(0), "{text}\n{}", self.stderr());
        text
    }

    /// The summary lines that speak of `--out NAME`.
    pub fn notes(&self, name: &str) -> Vec<String> {
        let needle = format!("--out {name}");
        self.stdout()
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_owned)
            .collect()
    }
}

/// Runs the shared plan with `load` (a scenario's executor lines, such as
/// [`ITERATIONS`]), each of `outs` as an `--out`, and the variables.
pub async fn run_with_outputs(load: &str, outs: &[String], vars: &[(&str, &str)]) -> OutputRun {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"
scenarios:
  main:
    {load}
flow:
  - get:
      url: "{target}/json"
      check:
        - status: 200
  - get: "{target}/status/404"
"#,
            target = base(&target)
        ),
    )
    .expect("plan written");
    let export_path = dir.path().join("summary.json");
    let mut args = vec![
        "run".to_owned(),
        plan.display().to_string(),
        "--quiet".into(),
        "--summary-export".into(),
        export_path.display().to_string(),
    ];
    for out in outs {
        args.extend(["--out".to_owned(), out.clone()]);
    }
    let vars = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let out = volley_async_env(args, vars, LIMIT).await;
    target.shutdown().await;
    let metrics = if export_path.exists() {
        export(&export_path)["metrics"].clone()
    } else {
        Value::Null
    };
    OutputRun { out, metrics }
}
