//! Plans the fleet tests submit, all against the in-process built-in target on loopback. Every
//! plan asks for `med`, `p(95)` and `p(99)` in its summary and is bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use volley::api::SubmitRequest;

/// Lead time of every submission: enough for five agents on a busy machine to prepare.
pub const LEAD: &str = "1500ms";

/// `vus` VUs for `duration`, each requesting `/` and sleeping `sleep` per iteration.
pub fn constant_vus(target: SocketAddr, vus: u64, duration: Duration, sleep: Duration) -> String {
    format!(
        r#"summaryTrendStats: [med, "p(95)", "p(99)"]
scenarios:
  closed:
    executor: constant-vus
    vus: {vus}
    duration: {duration}ms
    gracefulStop: 2s
    flow:
      - get: http://{target}/
      - sleep: {sleep}ms
"#,
        duration = duration.as_millis(),
        sleep = sleep.as_millis(),
    )
}

/// `rate` iterations a second for `duration`, each one request to `path` (e.g. `/` or
/// `/delay/2`), with VUs to spare so that no arrival is dropped.
pub fn arrival_rate(target: SocketAddr, rate: u64, duration: Duration, path: &str) -> String {
    format!(
        r#"summaryTrendStats: [med, "p(95)", "p(99)"]
scenarios:
  open:
    executor: constant-arrival-rate
    rate: {rate}
    timeUnit: 1s
    duration: {duration}ms
    preAllocatedVUs: 100
    maxVUs: 400
    gracefulStop: 2s
    flow:
      - get: http://{target}{path}
"#,
        duration = duration.as_millis(),
    )
}

/// A submission of `plan` with the harness's lead time.
pub fn submit(plan: String) -> SubmitRequest {
    SubmitRequest {
        plan,
        lead_time: Some(LEAD.into()),
        name: Some("fleet-test".into()),
        ..SubmitRequest::default()
    }
}

/// `shared-iterations`: `vus` VUs work through `iterations` requests to `path` together, within
/// 30 s.
pub fn shared_iterations(target: SocketAddr, vus: u64, iterations: u64, path: &str) -> String {
    format!(
        r#"summaryTrendStats: [med, "p(95)", "p(99)"]
scenarios:
  shared:
    executor: shared-iterations
    vus: {vus}
    iterations: {iterations}
    maxDuration: 30s
    gracefulStop: 2s
    flow:
      - get: http://{target}{path}
"#
    )
}

/// `per-vu-iterations` against one target per region (`targets: {REGION: URL}`): each of `vus`
/// VUs runs `iterations` iterations, each one request to `path` on every region's target, so
/// each (agent region, target region) cell gets `iterations` requests per VU of that region.
/// Within 30 s.
pub fn per_region_targets(
    targets: &[(&str, SocketAddr)],
    vus: u64,
    iterations: u64,
    path: &str,
) -> String {
    let targets: String = targets
        .iter()
        .map(|(region, addr)| format!("  {region}: http://{addr}\n"))
        .collect();
    format!(
        r#"summaryTrendStats: [med, "p(95)", "p(99)"]
targets:
{targets}scenarios:
  each:
    executor: per-vu-iterations
    vus: {vus}
    iterations: {iterations}
    maxDuration: 30s
    gracefulStop: 2s
flow:
  - get: {path}
"#
    )
}
