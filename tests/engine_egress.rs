//! The egress policy at connect time and in `volley run`: a refused
//! destination fails its request at once, without a connection, classified
//! as k6's blocked IP or hostname and counted in `http_req_failed`; the run
//! goes on. Addresses from DNS and from the `hosts` option are checked, and
//! scripts are covered through the same client. Locally, a plan naming a
//! refused host exits 104 before anything runs.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{base, counter, plan, rate, run, start_target, summary_errors};
use volley::engine::EndReason;
use volley::metrics::Metric;
use volley::plan::egress::{EgressPolicy, Rule};

fn policy(allow: &str, deny: &str) -> Arc<EgressPolicy> {
    let rules = |text| Rule::parse_list(text).expect("test rules parse");
    Arc::new(EgressPolicy::new(rules(allow), rules(deny), true))
}

fn three_gets(url: &str) -> String {
    format!("vus: 1\niterations: 3\nflow:\n  - get: \"{url}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_loopback_target_is_reached() {
    let target = start_target().await;
    let mut p = plan(&three_gets(&format!("{}/", base(&target))));
    p.http.net.egress = policy("127.0.0.1/32", "");
    let r = run(p).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::HttpReqs), 3.0);
    assert_eq!(rate(&r, Metric::HttpReqFailed), (0, 3));
    assert!(r.summary.errors.is_empty(), "{:?}", r.summary.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_address_fails_every_request_without_a_connection() {
    let target = start_target().await;
    let mut p = plan(&three_gets(&format!("{}/", base(&target))));
    p.http.net.egress = policy("", "127.0.0.0/8");
    let r = run(p).await;
    assert_eq!(r.end, EndReason::Completed, "the VU loop went on");
    assert_eq!(counter(&r, Metric::Iterations), 3.0);
    assert_eq!(counter(&r, Metric::HttpReqs), 3.0);
    assert_eq!(rate(&r, Metric::HttpReqFailed), (3, 3));
    assert_eq!(
        summary_errors(&r, "blocked_ip"),
        3,
        "{:?}",
        r.summary.errors
    );
    assert_eq!(target.stats.connections(), 0, "nothing reached the target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_hosts_option_maps_to_a_denied_address_is_refused() {
    let target = start_target().await;
    let port = target.addr.port();
    let yaml = format!(
        "vus: 1\niterations: 2\nhosts:\n  api.test: 127.0.0.1\nflow:\n  - get: \"http://api.test:{port}/\"\n"
    );
    // Allowed by name would not help: deny wins.
    let mut p = plan(&yaml);
    p.http.net.egress = policy("api.test", "127.0.0.0/8");
    let r = run(p).await;
    assert_eq!(
        summary_errors(&r, "blocked_ip"),
        2,
        "{:?}",
        r.summary.errors
    );
    assert_eq!(target.stats.connections(), 0);

    // A host rule refuses the name before any lookup.
    let mut p = plan(&yaml);
    p.http.net.egress = policy("", "*.test");
    let r = run(p).await;
    assert_eq!(
        summary_errors(&r, "blocked_hostname"),
        2,
        "{:?}",
        r.summary.errors
    );
    assert_eq!(rate(&r, Metric::HttpReqFailed), (2, 2));

    // Allowed, the same plan reaches the target.
    let mut p = plan(&yaml);
    p.http.net.egress = policy("127.0.0.0/8", "");
    let r = run(p).await;
    assert_eq!(
        rate(&r, Metric::HttpReqFailed),
        (0, 2),
        "{:?}",
        r.summary.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_dns_resolves_to_a_denied_address_is_refused() {
    let target = start_target().await;
    let port = target.addr.port();
    // The system resolver answers `localhost` (its hosts file): the
    // address it gives is checked, the name itself is not denied.
    let mut p = plan(&three_gets(&format!("http://localhost:{port}/")));
    p.http.net.egress = policy("", "127.0.0.0/8,::1/128");
    let r = run(p).await;
    assert_eq!(
        summary_errors(&r, "blocked_ip"),
        3,
        "{:?}",
        r.summary.errors
    );
    assert_eq!(target.stats.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_refuses_the_metadata_address_at_once() {
    // The compiled plan's default policy: no assignment needed. A
    // templated URL is only known when sent.
    let p = plan(
        "vus: 1\niterations: 2\nflow:\n  - get:\n      url: \"http://169.254.169.254/latest/${vu}\"\n      timeout: 30s\n",
    );
    let started = Instant::now();
    let r = run(p).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused, not timed out: {:?}",
        started.elapsed()
    );
    assert_eq!(
        summary_errors(&r, "blocked_ip"),
        2,
        "{:?}",
        r.summary.errors
    );
    assert_eq!(summary_errors(&r, "timeout"), 0);
}

// ----- the binary -----

const LIMIT: Duration = Duration::from_secs(60);

fn volley(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_volley"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("VOLLEY_EGRESS_ALLOW")
        .env_remove("VOLLEY_EGRESS_DENY")
        .env_remove("VOLLEY_EGRESS_DEFAULT_DENY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the volley binary starts");
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().expect("wait for volley").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("volley {args:?} ran past {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect volley's output")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the test file");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_local_plan_aimed_at_metadata_exits_104_naming_the_request() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let plan = write(
        dir.path(),
        "plan.yaml",
        "vus: 1\niterations: 1\nflow:\n  - get: http://127.0.0.1:9/\n  - get: http://169.254.169.254/latest/meta-data/\n",
    );
    let started = Instant::now();
    let out = volley(&["run", "--quiet", &plan], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.contains("flow[1].get: host \"169.254.169.254\": 169.254.169.254 is denied by egress policy (default deny rule 169.254.0.0/16"),
        "{err}"
    );

    let named = write(
        dir.path(),
        "named.yaml",
        "vus: 1\niterations: 1\nflow:\n  - get: http://metadata.google.internal/computeMetadata/v1/\n",
    );
    let out = volley(&["run", "--quiet", &named], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "{err}");
    assert!(
        err.contains("metadata.google.internal is denied by egress policy"),
        "{err}"
    );

    // The variables an agent reads apply locally too.
    let loopback = write(
        dir.path(),
        "loopback.yaml",
        "vus: 1\niterations: 1\nflow:\n  - get: http://127.0.0.1:9/\n",
    );
    let out = volley(
        &["run", "--quiet", &loopback],
        &[("VOLLEY_EGRESS_DENY", "127.0.0.0/8")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "{err}");
    assert!(err.contains("(deny rule 127.0.0.0/8)"), "{err}");
    let out = volley(
        &["run", "--quiet", &loopback],
        &[("VOLLEY_EGRESS_DENY", "not a rule")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "{err}");
    assert!(err.contains("VOLLEY_EGRESS_DENY: \"not a rule\""), "{err}");
}

#[test]
fn a_script_aimed_at_metadata_gets_a_blocked_response() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = write(
        dir.path(),
        "metadata.js",
        r#"
import http from 'k6/http';
import { check } from 'k6';
export const options = {
  iterations: 2,
  thresholds: { checks: ['rate==1'], http_req_failed: ['rate==1'] },
};
export default function () {
  const r = http.get('http://169.254.169.254/latest/meta-data/', { timeout: '30s' });
  check(r, {
    'blocked ip': (r) => r.error_code === 1110 && r.status === 0,
    'says why': (r) => r.error.includes('denied by egress policy'),
  });
}
"#,
    );
    let started = Instant::now();
    let out = volley(&["run", &script], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "thresholds hold: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}
