//! `volley run` as users run it: the real binary against an in-process
//! target, with k6's exit codes (0 passed, 99 thresholds failed, 104
//! invalid plan), `--summary-export`, `--out volley-json=FILE`, the bare-URL
//! quick test and `abortOnFail`; plus the abort seen in process.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{base, counter, run_yaml, start_target, volley_async};
use volley::engine::EndReason;
use volley::metrics::Metric;
use volley::target::Route;

/// Longest a `volley run` of these tests may take.
const LIMIT: Duration = Duration::from_secs(20);

/// Writes `yaml` as `plan.yaml` in `dir` and returns its path as text.
fn write_plan(dir: &Path, yaml: &str) -> String {
    let path = dir.join("plan.yaml");
    std::fs::write(&path, yaml).expect("write the plan");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_thresholds_exit_0_and_write_the_summary_export_and_json_lines() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(
        dir.path(),
        &format!(
            r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 5
thresholds:
  http_req_failed: ["rate<0.01"]
  http_req_duration: ["p(95)<5000"]
  checks: ["rate>0.99"]
flow:
  - get:
      url: "{}/json"
      check:
        - status: 200
"#,
            base(&target)
        ),
    );
    let export = dir.path().join("summary.json");
    let lines = dir.path().join("metrics.jsonl");
    let out = volley_async(
        vec![
            "run".into(),
            plan,
            "--quiet".into(),
            "--summary-export".into(),
            export.display().to_string(),
            "--out".into(),
            format!("volley-json={}", lines.display()),
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
    assert!(
        stdout.contains("http_reqs"),
        "the summary is printed:\n{stdout}"
    );
    assert_eq!(target.stats.route(Route::Json), 10);

    // k6's summary export shape.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).expect("the summary export exists"))
            .expect("the summary export is JSON");
    assert_eq!(doc["metrics"]["http_reqs"]["count"], 10, "{doc:#}");
    let p95 = doc["metrics"]["http_req_duration"]["p(95)"]
        .as_f64()
        .unwrap_or_else(|| panic!("http_req_duration p(95) is a number: {doc:#}"));
    assert!(p95 > 0.0 && p95 < 5000.0, "p(95) = {p95}");
    assert_eq!(doc["metrics"]["iterations"]["count"], 10);

    // One JSON object per line, whose http_reqs counts add up to the run's.
    let jsonl = std::fs::read_to_string(&lines).expect("the --out volley-json file exists");
    let mut reqs = 0.0;
    let mut n = 0;
    for line in jsonl.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert_eq!(v["type"], "Interval", "{line}");
        assert!(v["metric"].is_string() && v["values"].is_object(), "{line}");
        if v["metric"] == "http_reqs" {
            reqs += v["values"]["count"].as_f64().expect("a count");
        }
        n += 1;
    }
    assert!(n > 0, "no JSON lines written");
    assert_eq!(reqs, 10.0, "http_reqs over every interval line");
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_thresholds_exit_99() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(
        dir.path(),
        &format!(
            r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 1
    iterations: 4
thresholds:
  http_req_failed: ["rate<0.01"]
flow:
  - get: "{}/status/500"
"#,
            base(&target)
        ),
    );
    let out = volley_async(vec!["run".into(), plan, "--quiet".into()], LIMIT).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(99),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("rate<0.01"),
        "the summary shows the failed threshold:\n{stdout}"
    );
    assert_eq!(
        target.stats.route(Route::Status),
        4,
        "the run went to its end"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_plan_exits_104_naming_the_field() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(
        dir.path(),
        r#"
scenarios:
  main:
    executor: constant-vus
    vus: 2
    duration: "2 parsecs"
flow:
  - get: "http://127.0.0.1:1/"
"#,
    );
    let out = volley_async(vec!["run".into(), plan], LIMIT).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "stderr:\n{stderr}");
    assert!(
        stderr.contains("scenarios.main.duration"),
        "the message names the field path:\n{stderr}"
    );
    assert!(
        stderr.contains("2 parsecs"),
        "the message quotes the value:\n{stderr}"
    );
}

/// A plan beyond this machine's memory or CPUs is refused at load, before
/// anything is allocated: exit 104 with the field, the value and the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_beyond_this_machine_exit_104_before_running() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cases = [
        (
            "scenarios:\n  main:\n    executor: constant-arrival-rate\n    rate: 1000000000000\n    \
             duration: 5s\n    preAllocatedVUs: 10\n    maxVUs: 20\nflow:\n  - get: \"http://127.0.0.1:1/\"\n",
            "scenarios.main.rate asks for 1000000000000 iterations/s",
            "VOLLEY_MAX_RATE",
        ),
        (
            "vus: 1000000000\nduration: 5s\nflow:\n  - get: \"http://127.0.0.1:1/\"\n",
            "vus asks for 1000000000 VUs",
            "VOLLEY_MAX_VUS",
        ),
    ];
    for (yaml, message, knob) in cases {
        let plan = write_plan(dir.path(), yaml);
        let out = volley_async(vec!["run".into(), plan, "--quiet".into()], LIMIT).await;
        let stderr = text(&out.stderr);
        eprintln!("{stderr}");
        assert_eq!(out.status.code(), Some(104), "stderr:\n{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert!(stderr.contains("the limit for this machine"), "{stderr}");
        assert!(stderr.contains(knob), "{stderr}");
    }

    // The agent's variables set the limits of local runs too.
    let plan = write_plan(
        dir.path(),
        "vus: 3\nduration: 1s\nflow:\n  - get: \"http://127.0.0.1:1/\"\n",
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
            .args(["run", &plan, "--quiet"])
            .env("VOLLEY_MAX_VUS", "2")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("volley runs")
    })
    .await
    .expect("the blocking task");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "stderr:\n{stderr}");
    assert!(
        stderr.contains("about 2 VUs (set with VOLLEY_MAX_VUS"),
        "{stderr}"
    );
}

/// Flags that change the plan on this machine only are refused on a
/// fleet, each named, before anything is sent (no agent listens here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_flags_are_refused_with_agent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(dir.path(), "flow: [{get: \"http://127.0.0.1:1/\"}]\n");
    let args = [
        "run",
        &plan,
        "--agent",
        "http://127.0.0.1:1",
        "--rps",
        "5",
        "--user-agent",
        "x",
        "--no-cookies-reset",
    ];
    let out = volley_async(args.iter().map(|a| a.to_string()).collect(), LIMIT).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "stderr:\n{stderr}");
    assert!(
        stderr.contains("--rps, --user-agent, --no-cookies-reset apply to local runs only"),
        "{stderr}"
    );
}

/// A per-sample `--out` with `--agent` is refused with the reason, before
/// anything is sent: the samples stay on the agents (a fleet test writes
/// its merged intervals to a backend, `influxdb`, instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_sample_out_is_refused_with_agent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(dir.path(), "flow: [{get: \"http://127.0.0.1:1/\"}]\n");
    let file = dir.path().join("samples.json");
    let args = [
        "run".to_owned(),
        plan,
        "--agent".to_owned(),
        "http://127.0.0.1:1".to_owned(),
        "--out".to_owned(),
        format!("json={}", file.display()),
    ];
    let out = volley_async(args.to_vec(), LIMIT).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "stderr:\n{stderr}");
    assert!(
        stderr.contains("a fleet test writes its merged intervals"),
        "{stderr}"
    );
    assert!(stderr.contains("influxdb=http://"), "{stderr}");
    assert!(stderr.contains("--summary-export"), "{stderr}");
    assert!(!file.exists(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_url_run_exits_0() {
    let target = start_target().await;
    let url = format!("{}/", base(&target));
    let started = Instant::now();
    let out = volley_async(
        vec![
            "run".into(),
            url,
            "--vus".into(),
            "2".into(),
            "--duration".into(),
            "1s".into(),
            "--quiet".into(),
        ],
        LIMIT,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let hits = target.stats.route(Route::Root);
    println!("bare URL run: {hits} requests in {took:?}");
    assert!(hits >= 2, "both VUs sent requests: {hits}");
    assert!(
        took >= Duration::from_secs(1),
        "ran for its duration: {took:?}"
    );
    target.shutdown().await;
}

/// A plan whose only threshold fails from the first request and aborts.
fn aborting_plan(base: &str) -> String {
    format!(
        r#"
scenarios:
  main:
    executor: constant-vus
    vus: 1
    duration: 10s
thresholds:
  http_req_failed:
    - {{threshold: "rate<0.5", abortOnFail: true}}
flow:
  - get: "{base}/status/500"
  - sleep: 20ms
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_the_binary_early_with_99() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(dir.path(), &aborting_plan(&base(&target)));
    let started = Instant::now();
    let out = volley_async(vec!["run".into(), plan, "--quiet".into()], LIMIT).await;
    let took = started.elapsed();
    println!(
        "abortOnFail (binary): exit {:?} after {took:?}",
        out.status.code()
    );
    assert_eq!(
        out.status.code(),
        Some(99),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(6),
        "a 10 s test aborted at its first threshold check (2 s) took {took:?}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("abortOnFail: stopped the test"),
        "the summary says which threshold stopped the test:\n{stdout}"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_ends_the_run_and_marks_the_threshold() {
    let target = start_target().await;
    let r = run_yaml(&aborting_plan(&base(&target))).await;
    println!("abortOnFail (in process): ended after {:?}", r.elapsed);
    assert_eq!(r.end, EndReason::ThresholdAbort);
    assert!(
        r.elapsed >= Duration::from_millis(1_900) && r.elapsed < Duration::from_secs(4),
        "thresholds are judged every 2 s; the run ended after {:?}",
        r.elapsed
    );
    assert!(counter(&r, Metric::HttpReqs) > 0.0);
    assert!(!r.summary.passed());
    let outcome = &r.summary.thresholds[0];
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.aborted,
        "the threshold that stopped the run is marked: {outcome:?}"
    );
    assert_eq!(r.outcomes, r.summary.thresholds);
    target.shutdown().await;
}

/// Every plan under `examples/plans/` loads as written: the README and BENCHMARKS.md run them.
#[test]
fn every_example_plan_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plans");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/plans exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let opts = volley::plan::LoadOptions {
            base_dir: dir.clone(),
            ..volley::plan::LoadOptions::default()
        };
        if let Err(e) = volley::plan::load_file(&path, &opts) {
            panic!("{} does not load: {e}", path.display());
        }
        loaded += 1;
    }
    assert!(loaded >= 4, "found {loaded} example plans");
}

/// k6's habitual flags: `--no-thresholds` passes a failing plan, `--tag`
/// reaches every sample (seen in `--out json`), `--no-summary` and
/// `--summary-mode disabled` leave the text out, and the flags' mistakes
/// exit 104 with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_flags_tag_no_thresholds_and_no_summary() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(
        dir.path(),
        &format!(
            "iterations: 2\nthresholds:\n  http_req_failed: [\"rate<0.01\"]\nflow:\n  - get: \"{}/status/500\"\n",
            base(&target)
        ),
    );
    let lines = dir.path().join("out.jsonl");
    let out = volley_async(
        vec![
            "run".into(),
            plan.clone(),
            "--quiet".into(),
            "--no-thresholds".into(),
            "--no-summary".into(),
            "--tag".into(),
            "team=checkout".into(),
            "--out".into(),
            format!("json={}", lines.display()),
        ],
        LIMIT,
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("http_reqs"), "no summary:\n{stdout}");
    let json = std::fs::read_to_string(&lines).expect("json lines written");
    assert!(json.contains("\"team\":\"checkout\""), "{json}");

    let disabled = volley_async(
        vec![
            "run".into(),
            plan.clone(),
            "--quiet".into(),
            "--summary-mode".into(),
            "disabled".into(),
        ],
        LIMIT,
    )
    .await;
    assert_eq!(
        disabled.status.code(),
        Some(99),
        "thresholds judged without the flag"
    );
    assert!(!text(&disabled.stdout).contains("http_reqs"));

    for (args, reason) in [
        (vec!["--tag", "status=x"], "system tag"),
        (vec!["--tag", "novalue"], "expected NAME=VALUE"),
        (
            vec!["--summary-mode", "loud"],
            "expected compact, full or disabled",
        ),
    ] {
        let mut argv = vec!["run".to_string(), plan.clone(), "--quiet".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let bad = volley_async(argv, LIMIT).await;
        let stderr = text(&bad.stderr);
        assert_eq!(bad.status.code(), Some(104), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    target.shutdown().await;
}

/// `--http-debug=full` writes each exchange to stderr, secrets redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_debug_dumps_exchanges_without_secrets() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = write_plan(
        dir.path(),
        &format!(
            "iterations: 1\nflow:\n  - post:\n      url: \"{}/echo\"\n      headers: {{Authorization: \"Bearer t0p-secret\", Content-Type: text/plain}}\n      body: \"ping-body\"\n",
            base(&target)
        ),
    );
    let out = volley_async(
        vec![
            "run".into(),
            plan,
            "--quiet".into(),
            "--http-debug=full".into(),
        ],
        LIMIT,
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("POST http://") && stderr.contains("/echo HTTP/1.1"),
        "{stderr}"
    );
    assert!(stderr.contains("authorization: [redacted]"), "{stderr}");
    assert!(!stderr.contains("t0p-secret"), "{stderr}");
    assert!(stderr.contains("HTTP/1.1 200 OK"), "{stderr}");
    assert_eq!(
        stderr.matches("ping-body").count(),
        2,
        "request and echoed body: {stderr}"
    );
    target.shutdown().await;
}

/// The soft open-file limit a process was given (often 1024) is raised to
/// the hard one at start, as k6 does: each connection is a file.
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("this process's limits");
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .expect("the open-file line");
    if hard == "unlimited" || hard.parse::<u64>().is_ok_and(|h| h <= 64) {
        eprintln!("skipped: the hard open-file limit ({hard}) leaves nothing to raise");
        return;
    }
    // `volley target` serves until killed: its limits can be read while it runs.
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -Sn 64 && exec {} target --listen 127.0.0.1:0",
                env!("CARGO_BIN_EXE_volley")
            ),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sh starts");
    let path = format!("/proc/{}/limits", child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let soft = loop {
        let soft = std::fs::read_to_string(&path).ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3).map(str::to_owned)
        });
        if soft.as_deref() == Some(hard.as_str()) || Instant::now() > deadline {
            break soft;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        soft.as_deref(),
        Some(hard.as_str()),
        "soft limit raised from 64"
    );
}

/// A generator with no CPU to spare says so under the summary: pinned to
/// one CPU (`taskset`), VUs that compute without pause use all of it, and
/// whatever else runs on that CPU only delays its scheduler more.
#[test]
fn a_generator_out_of_cpu_says_it_was_saturated() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("busy.js");
    std::fs::write(
        &script,
        "export const options = { vus: 4, duration: '3s' };\n\
         export default function () { const t = Date.now(); let x = 0; while (Date.now() - t < 50) { x += 1; } }\n",
    )
    .expect("write the script");
    let out = std::process::Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_volley"), "run", "--quiet"])
        .arg(&script)
        .output();
    let out = out.expect("taskset (util-linux, on every Debian) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("the load generator was saturated") && text.contains("of its 1 CPU(s)"),
        "{text}"
    );
}

/// Log lines for collectors: `--log-format json` (or `VOLLEY_LOG_FORMAT`)
/// writes one JSON object a line; text logs written into a pipe carry no
/// colour codes.
#[test]
fn logs_are_json_on_request_and_never_coloured_into_a_pipe() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("noop.js");
    std::fs::write(&script, "export default function () {}\n").expect("write the script");
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_volley"));
        cmd.env("RUST_LOG", "debug").env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .args(args)
            .args(["run", "--quiet"])
            .arg(&script)
            .output()
            .expect("volley runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for json in [
        run(&[], &["--log-format", "json"]),
        run(&[("VOLLEY_LOG_FORMAT", "json")], &[]),
    ] {
        let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "debug logs were asked for");
        for line in lines {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
        }
    }
    let text = run(&[], &[]);
    assert!(
        text.contains("DEBUG") && !text.contains('\u{1b}'),
        "{text:?}"
    );
}
