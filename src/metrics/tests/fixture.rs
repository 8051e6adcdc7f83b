//! A small hand-built plan shared by the metrics tests: two scenarios (one
//! closed, one open), three requests, three checks, one group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::metrics::sample::{ErrorKind, HttpSample, Sample, Timings};
use crate::plan::{
    Aggregation, CheckId, CheckInfo, Executor, Flow, GroupId, GroupInfo, HttpOptions, Op, Plan,
    Request, RequestId, Scenario, Template, Threshold, TrendStat,
};

/// Scenario 0 (`main`, tags `team:a`), closed model.
pub const MAIN: u16 = 0;
/// Scenario 1 (`open`), open model.
pub const OPEN: u16 = 1;
/// `GET home` in `main` at the root, tags `kind:page`.
pub const HOME: RequestId = RequestId(0);
/// `POST login` in `main`, group `::auth`.
pub const LOGIN: RequestId = RequestId(1);
/// `GET api` in `open` at the root.
pub const API: RequestId = RequestId(2);
/// `status is 200` in `main` at the root.
pub const CHECK_MAIN_OK: CheckId = CheckId(0);
/// `status is 200` in `open` at the root (same name, other scenario).
pub const CHECK_OPEN_OK: CheckId = CheckId(1);
/// `has token` in `main`, group `::auth`.
pub const CHECK_TOKEN: CheckId = CheckId(2);
/// `::auth` in `main`.
pub const AUTH: GroupId = GroupId(0);

fn scenario(name: &str, index: usize, executor: Executor, tags: &[(&str, &str)]) -> Scenario {
    Scenario {
        name: name.into(),
        index,
        executor,
        start_time: Duration::ZERO,
        graceful_stop: Duration::from_secs(30),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        env: BTreeMap::new(),
        flow: Arc::new(Flow::default()),
        exec: None,
    }
}

fn request(id: u32, method: Method, name: &str, scenario: usize, group: &str) -> Arc<Request> {
    Arc::new(Request {
        id: RequestId(id),
        path: format!("flow[{id}].request"),
        method,
        url: Template::literal(format!("http://127.0.0.1:1/{name}")),
        headers: Vec::new(),
        body: None,
        name: name.into(),
        scenario,
        group: group.into(),
        timeout: Duration::from_secs(60),
        redirects: None,
        compression: None,
        tags: if name == "home" {
            vec![("kind".into(), "page".into())]
        } else {
            Vec::new()
        },
        checks: Vec::new(),
        captures: Vec::new(),
        needs_body: false,
        metrics: Vec::new(),
    })
}

/// The fixture plan with the given thresholds and trend stats.
pub fn plan_with(thresholds: Vec<Threshold>, stats: Vec<TrendStat>) -> Plan {
    Plan {
        scenarios: vec![
            scenario(
                "main",
                0,
                Executor::ConstantVus {
                    vus: 2,
                    duration: Duration::from_secs(10),
                },
                &[("team", "a")],
            ),
            scenario(
                "open",
                1,
                Executor::ConstantArrivalRate {
                    rate: 10,
                    time_unit: Duration::from_secs(1),
                    duration: Duration::from_secs(10),
                    pre_allocated_vus: 2,
                    max_vus: 4,
                },
                &[],
            ),
        ],
        thresholds,
        http: HttpOptions {
            timeout: Duration::from_secs(60),
            ..HttpOptions::for_tests()
        },
        data: None,
        summary_trend_stats: stats,
        vars: Vec::new(),
        requests: vec![
            request(0, Method::GET, "home", 0, ""),
            request(1, Method::POST, "login", 0, "::auth"),
            request(2, Method::GET, "api", 1, ""),
        ],
        checks: vec![
            CheckInfo {
                name: "status is 200".into(),
                scenario: 0,
                group: String::new(),
            },
            CheckInfo {
                name: "status is 200".into(),
                scenario: 1,
                group: String::new(),
            },
            CheckInfo {
                name: "has token".into(),
                scenario: 0,
                group: "::auth".into(),
            },
        ],
        groups: vec![GroupInfo {
            path: "::auth".into(),
            scenario: 0,
        }],
        // The tags these tests spell out; `url`, `proto` and
        // `error_code` have tests of their own.
        system_tags: crate::plan::SystemTags::parse([
            "scenario",
            "name",
            "method",
            "status",
            "group",
            "check",
            "expected_response",
            "error",
        ])
        .expect("k6 system tag names"),
        dynamic: Arc::new(crate::plan::dynamic::DynamicCatalog::after(3, 3, 1)),
        metrics: Vec::new(),
        setup: None,
        teardown: None,
        setup_vars: Vec::new(),
        targets: Vec::new(),
    }
}

/// The fixture plan without thresholds, with k6's default trend stats.
pub fn plan() -> Plan {
    plan_with(Vec::new(), TrendStat::k6_defaults())
}

/// A threshold as the plan parser would produce it.
pub fn threshold(
    metric: &str,
    tags: &[(&str, &str)],
    agg: Aggregation,
    op: Op,
    value: f64,
) -> Threshold {
    let tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let key = if tags.is_empty() {
        metric.to_string()
    } else {
        let inner: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{metric}{{{}}}", inner.join(","))
    };
    let lhs = match agg {
        Aggregation::Avg => "avg".to_string(),
        Aggregation::Min => "min".to_string(),
        Aggregation::Max => "max".to_string(),
        Aggregation::Med => "med".to_string(),
        Aggregation::Percentile(p) => format!("p({p})"),
        Aggregation::Rate => "rate".to_string(),
        Aggregation::Count => "count".to_string(),
        Aggregation::Value => "value".to_string(),
    };
    Threshold {
        metric: metric.into(),
        tags,
        key,
        source: format!("{lhs}{}{value}", op.symbol()),
        aggregation: agg,
        op,
        value,
        abort_on_fail: false,
        delay_abort_eval: Duration::ZERO,
    }
}

/// A successful request whose phases add up to `ms` milliseconds.
pub fn ok(request: RequestId, ms: u64) -> Sample {
    http(request, 200, None, ms)
}

/// A request with the given outcome; `expected` follows k6's rule.
pub fn http(request: RequestId, status: u16, error: Option<ErrorKind>, ms: u64) -> Sample {
    Sample::Http(HttpSample {
        request,
        status,
        error,
        expected: Some(error.is_none() && (200..=399).contains(&status)),
        timings: Timings {
            blocked: Duration::from_micros(5),
            connecting: Duration::ZERO,
            tls_handshaking: Duration::ZERO,
            sending: Duration::from_micros(100),
            waiting: Duration::from_millis(ms) - Duration::from_micros(300),
            receiving: Duration::from_micros(200),
        },
        intended: None,
        bytes_sent: 100,
        bytes_received: 1000,
        proto: 11,
        tls: 0,
    })
}
