//! What `volley run` prints while it runs when nobody watches a terminal
//! (a CI log): the header, then a plain progress line every few seconds,
//! as the run goes (not all at the end), without escape codes; and nothing
//! of either with `--quiet`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{base, start_target};

/// Longest the run may take before the test gives up on it.
const LIMIT: Duration = Duration::from_secs(60);

fn plan(base: &str) -> String {
    format!(
        "scenarios:\n  steady:\n    executor: constant-vus\n    vus: 2\n    duration: 7s\n    flow:\n      \
         - request:\n          url: {base}/\n      - sleep: 100ms\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_output_shows_periodic_plain_lines() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, plan(&base(&target))).expect("the plan is written");
    let path = path.display().to_string();
    let seen = tokio::task::spawn_blocking(move || watch(&path))
        .await
        .expect("the watching thread");
    let Seen {
        lines,
        early,
        stdout,
        success,
    } = seen;
    assert!(success, "volley failed:\n{}", lines.join("\n"));
    let all = lines.join("\n");
    assert!(!all.contains('\x1b'), "escape codes on a pipe:\n{all}");
    assert!(
        !stdout.contains('\x1b'),
        "escape codes on a pipe:\n{stdout}"
    );
    assert!(
        all.contains("scenarios: (100.00%) 1 scenario, 2 max VUs"),
        "{all}"
    );
    assert!(all.contains("* steady: 2 looping VUs for 7s"), "{all}");
    let progress: Vec<&String> = lines.iter().filter(|l| l.starts_with("running ")).collect();
    assert!(progress.len() >= 2, "periodic lines:\n{all}");
    for l in &progress {
        assert!(
            l.contains("vus ") && l.contains(" iterations") && l.contains(" req/s"),
            "{l}"
        );
    }
    // Lines came while the run went on, not all at its end.
    assert!(
        early >= 2,
        "only {early} progress lines before the run ended:\n{all}"
    );
    // The summary stays on stdout, the progress off it.
    assert!(stdout.contains("http_reqs"), "{stdout}");
    assert!(!stdout.contains("running "), "{stdout}");
}

#[test]
fn quiet_prints_no_header_and_no_progress() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let target = rt.block_on(start_target());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("plan.yaml");
    let yaml = plan(&base(&target)).replace("duration: 7s", "duration: 3s");
    std::fs::write(&path, yaml).expect("the plan is written");
    let out = common::volley(&["run", "--quiet", &path.display().to_string()], LIMIT);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("running "), "{stderr}");
    assert!(!stderr.contains("scenarios:"), "{stderr}");
}

struct Seen {
    /// Every stderr line.
    lines: Vec<String>,
    /// Progress lines read while the process was still running.
    early: usize,
    stdout: String,
    success: bool,
}

/// Runs `volley run PLAN` with both streams piped, reading stderr line by
/// line as it comes.
fn watch(plan: &str) -> Seen {
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["run", plan])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the volley binary starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut stdout_pipe = child.stdout.take().expect("piped stdout");
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let deadline = std::time::Instant::now() + LIMIT;
    let mut lines = Vec::new();
    let mut early = 0;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                let running = matches!(child.try_wait(), Ok(None));
                if running && line.starts_with("running ") {
                    early += 1;
                }
                lines.push(line);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break child.wait().expect("volley's exit status");
            }
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("volley did not end within {LIMIT:?}:\n{}", lines.join("\n"));
        }
    };
    Seen {
        lines,
        early,
        stdout: stdout.join().unwrap_or_default(),
        success: status.success(),
    }
}
