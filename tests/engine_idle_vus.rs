//! What an idle plan VU costs in resident memory, on the real binary:
//! peak RSS (`VmHWM`) of a run of 1 VU and of a run of `VUS` VUs that each
//! send one request and then sleep for the rest of the run, as the
//! benchmark harness's memory scenario does (BENCHMARKS.md, "Small VUs").
//! The difference per added VU must stay within `MAX_KIB_PER_VU`: a debug
//! build measures 4.7–5.5 KiB here (a release build 4.1 KiB in the
//! harness), a VU that kept a request's state and buffers through its sleep
//! cost 10–12 KiB. The peak is when every VU is at work at once (they all
//! start together and wake together), so this is the cost of a VU waiting
//! for its connection or its response, the most an idle VU ever holds.
//!
//! Alone in its own test binary: the runs are child processes, read from
//! `/proc` until they exit (polled, no fixed wait).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{base, start_target};
use tokio::time::Instant;

/// VUs of the measured run: below a default open-file limit of 1024 on the
/// target's side (it runs in this process, one socket per VU).
const VUS: u64 = 800;
/// Largest accepted marginal cost of one idle VU, in KiB.
const MAX_KIB_PER_VU: f64 = 7.0;

/// Peak resident memory of `volley run` of `vus` idle VUs against `url`,
/// in KiB, and how many requests the target saw meanwhile.
async fn peak_rss_kib(vus: u64, url: &str) -> u64 {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("idle.yaml");
    let yaml = format!(
        "discardResponseBodies: true\n\
         scenarios: {{idle: {{executor: constant-vus, vus: {vus}, duration: 3s, gracefulStop: 0s}}}}\n\
         flow:\n  - request: {{url: '{url}/'}}\n  - sleep: 60s\n"
    );
    std::fs::write(&plan, yaml).expect("the plan is written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["run", "--quiet"])
        .arg(&plan)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("volley starts");
    let status_file = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak = 0;
    loop {
        // The high-water mark only grows: the last reading before the
        // process ends is its peak (up to the last 20 ms of shutdown).
        if let Some(hwm) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| field_kib(&s, "VmHWM:"))
        {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            assert!(status.success(), "volley run failed ({status}): {err}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("volley run of {vus} VUs did not end within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(peak > 0, "no VmHWM read from {status_file}");
    peak
}

/// The value of a `Name:   123 kB` line of `/proc/PID/status`.
fn field_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_vu_costs_a_few_kib_of_resident_memory() {
    let target = start_target().await;
    let url = base(&target);
    let one = peak_rss_kib(1, &url).await;
    let before = target.stats.requests();
    let many = peak_rss_kib(VUS, &url).await;
    let sent = target.stats.requests() - before;
    assert!(
        sent >= VUS,
        "every VU sends its request before it sleeps: {sent} of {VUS}"
    );
    let per_vu = (many.saturating_sub(one)) as f64 / (VUS - 1) as f64;
    eprintln!("peak RSS: 1 VU {one} KiB, {VUS} VUs {many} KiB: {per_vu:.2} KiB per VU");
    assert!(
        per_vu <= MAX_KIB_PER_VU,
        "an idle VU costs {per_vu:.2} KiB (1 VU: {one} KiB, {VUS} VUs: {many} KiB), \
         over {MAX_KIB_PER_VU} KiB: does a sleeping VU keep a request's state or buffers again?"
    );
}
