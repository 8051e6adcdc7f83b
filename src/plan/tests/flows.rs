//! Flows: requests, checks, captures, groups, ids, templates and env.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use http::header::{CONTENT_TYPE, USER_AGENT};

use super::{MemFiles, opts, yaml_err, yaml_ok};
use crate::plan::{
    CaptureSource, CheckId, CheckKind, DataMode, Format, GroupId, GroupInfo, Part, RenderContext,
    RequestId, Sleep, Step, VarSlot, parse,
};

const LOGIN: &str = r#"
userAgent: test-agent/1
timeout: 5s
flow:
  - request:
      method: post
      url: "http://127.0.0.1:1/login"
      json: {user: "u${vu}", pass: "p"}
      check:
        - status: 200
        - json: {pointer: /token}
      capture:
        - {var: token, json: /token}
  - group:
      name: browse
      flow:
        - get: "http://127.0.0.1:1/items?t=${token}"
        - request:
            url: "http://127.0.0.1:1/items/${id}"
            headers: {Authorization: "Bearer ${token}", Content-Type: text/plain}
            body: "x"
            name: item
            timeout: 2s
            tags: {kind: detail}
            check:
              - {status: [200, 201]}
              - {header: ETag}
              - {header: {name: Content-Type, equals: application/json}}
              - {bodyContains: ok, name: body ok}
              - {json: {pointer: /a/b, equals: 1}}
            capture:
              - {var: id, regex: "id=(\\d+)"}
              - {var: sid, header: Set-Cookie}
        - group:
            name: inner
            flow:
              - delete: "http://127.0.0.1:1/x"
              - sleep: {min: 1s, max: 3s}
"#;

#[test]
fn requests_checks_and_captures() {
    let plan = yaml_ok(LOGIN);
    assert_eq!(plan.requests.len(), 4);
    for (i, r) in plan.requests.iter().enumerate() {
        assert_eq!(r.id, RequestId(i as u32), "ids in document order");
        assert_eq!(r.scenario, 0);
    }
    let login = &plan.requests[0];
    assert_eq!(login.method, Method::POST);
    assert_eq!(login.group, "");
    assert_eq!(login.name, "http://127.0.0.1:1/login");
    assert_eq!(
        login.timeout,
        Duration::from_secs(5),
        "plan default timeout"
    );
    assert!(login.needs_body, "a json check and capture read the body");
    let header = |r: &crate::plan::Request, name: &http::HeaderName| {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_static().map(str::to_string))
    };
    assert_eq!(
        header(login, &CONTENT_TYPE).as_deref(),
        Some("application/json")
    );
    assert_eq!(header(login, &USER_AGENT).as_deref(), Some("test-agent/1"));
    let cx = RenderContext {
        vu: 7,
        iter: 0,
        scenario: "default",
        vars: &[],
        row: None,
    };
    let body = login
        .body
        .as_ref()
        .and_then(|b| b.text())
        .expect("json body")
        .render(&cx);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        serde_json::json!({"user": "u7", "pass": "p"})
    );
    assert_eq!(login.checks[0].name, "status is 200");
    assert_eq!(login.checks[1].name, "json /token exists");
    assert!(matches!(&login.captures[0].source, CaptureSource::JsonPointer(p) if p == "/token"));

    let list = &plan.requests[1];
    assert_eq!(list.method, Method::GET);
    assert_eq!(list.group, "::browse");
    assert!(!list.needs_body);
    assert_eq!(
        list.name, "http://127.0.0.1:1/items?t=${token}",
        "name is the URL as written"
    );

    let item = &plan.requests[2];
    assert_eq!(item.name, "item");
    assert_eq!(item.timeout, Duration::from_secs(2));
    assert_eq!(item.tags, vec![("kind".to_string(), "detail".to_string())]);
    assert_eq!(
        header(item, &CONTENT_TYPE).as_deref(),
        Some("text/plain"),
        "a written Content-Type wins"
    );
    let names: Vec<&str> = item.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "status in [200, 201]",
            "header ETag present",
            "header Content-Type is \"application/json\"",
            "body ok",
            "json /a/b == 1"
        ]
    );
    assert!(
        matches!(&item.checks[4].kind, CheckKind::JsonEquals { pointer, value } if pointer == "/a/b" && *value == serde_json::json!(1))
    );
    assert!(
        matches!(&item.captures[0].source, CaptureSource::Regex(r) if r.as_str() == "id=(\\d+)")
    );
    assert!(matches!(&item.captures[1].source, CaptureSource::Header(h) if h == "set-cookie"));

    let delete = &plan.requests[3];
    assert_eq!(delete.method, Method::DELETE);
    assert_eq!(delete.group, "::browse::inner");

    // Variables: every captured name has a slot; templates use it.
    assert_eq!(plan.vars, ["token", "id", "sid"]);
    assert!(list.url.parts().contains(&Part::Var(VarSlot(0))));
    assert!(
        item.url.parts().contains(&Part::Var(VarSlot(1))),
        "captured later in the flow is still known"
    );

    // Checks and groups are numbered in document order.
    let check_ids: Vec<u32> = plan
        .requests
        .iter()
        .flat_map(|r| r.checks.iter().map(|c| c.id.0))
        .collect();
    assert_eq!(check_ids, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(plan.checks.len(), 7);
    assert_eq!(plan.checks[2].group, "::browse");
    assert_eq!(
        plan.groups,
        vec![
            GroupInfo {
                path: "::browse".into(),
                scenario: 0
            },
            GroupInfo {
                path: "::browse::inner".into(),
                scenario: 0
            }
        ]
    );
    let steps = &plan.scenarios[0].flow.steps;
    let Step::Group(browse) = &steps[1] else {
        panic!("second step is the group")
    };
    assert_eq!(browse.id, GroupId(0));
    let Step::Group(inner) = &browse.steps[2] else {
        panic!("nested group")
    };
    assert!(matches!(
        inner.steps[1],
        Step::Sleep(Sleep::Uniform { min, max }) if min == Duration::from_secs(1) && max == Duration::from_secs(3)
    ));
    assert!(
        std::sync::Arc::ptr_eq(
            match &steps[0] {
                Step::Request(r) => r,
                _ => panic!("first step is a request"),
            },
            &plan.requests[0]
        ),
        "the flow and the index share one Arc"
    );
}

#[test]
fn same_named_checks_merge_per_group_and_scenario() {
    let plan = yaml_ok(
        r#"
scenarios:
  b: {executor: per-vu-iterations}
  a: {executor: per-vu-iterations}
flow:
  - get: {url: "http://127.0.0.1:1/1", check: [{status: 200}]}
  - get: {url: "http://127.0.0.1:1/2", check: [{status: 200}, {status: 201, name: "status is 200"}]}
  - group: {name: g, flow: [{get: {url: "http://127.0.0.1:1/3", check: [{status: 200}]}}]}
  - group: {name: g, flow: [{get: "http://127.0.0.1:1/4"}]}
"#,
    );
    // Scenario a (index 0) first: its checks get the low ids.
    assert_eq!(plan.scenarios[0].name, "a");
    let ids = |scenario: usize| -> Vec<CheckId> {
        plan.requests
            .iter()
            .filter(|r| r.scenario == scenario)
            .flat_map(|r| r.checks.iter().map(|c| c.id))
            .collect()
    };
    assert_eq!(ids(0), [CheckId(0), CheckId(0), CheckId(0), CheckId(1)]);
    assert_eq!(ids(1), [CheckId(2), CheckId(2), CheckId(2), CheckId(3)]);
    assert_eq!(plan.checks.len(), 4);
    assert_eq!(plan.checks[1].group, "::g");
    assert_eq!(plan.checks[3].scenario, 1);
    // Both `g` group steps of a scenario are one group.
    assert_eq!(plan.groups.len(), 2);
    assert_eq!(plan.requests.len(), 8);
}

#[test]
fn env_precedence_cli_then_scenario_then_plan_then_process() {
    let text = r#"
env: {A: plan, B: plan, C: plan}
scenarios:
  s:
    executor: per-vu-iterations
    env: {A: scenario, B: scenario}
    flow:
      - get: "http://127.0.0.1:1/${env.A}/${env.B}/${env.C}/${env.D}"
"#;
    let mut o = opts();
    o.cli_env.insert("A".into(), "cli".into());
    o.process_env.insert("A".into(), "proc".into());
    o.process_env.insert("C".into(), "proc".into());
    o.process_env.insert("D".into(), "proc".into());
    let plan = parse(text, Format::Yaml, &o, &MemFiles::default()).expect("loads");
    assert_eq!(
        plan.requests[0].url.as_static(),
        Some("http://127.0.0.1:1/cli/scenario/plan/proc")
    );
    assert_eq!(
        plan.requests[0].name,
        "http://127.0.0.1:1/cli/scenario/plan/proc"
    );
    assert_eq!(
        plan.scenarios[0].env,
        BTreeMap::from([
            ("A".to_string(), "scenario".to_string()),
            ("B".to_string(), "scenario".to_string())
        ])
    );
}

#[test]
fn tags_merge_plan_then_scenario() {
    let plan = yaml_ok(
        r#"
tags: {team: core, env: ci}
scenarios:
  s: {executor: per-vu-iterations, tags: {env: staging, tier: 2}}
flow: [{get: "http://127.0.0.1:1/"}]
"#,
    );
    assert_eq!(
        plan.scenarios[0].tags,
        vec![
            ("team".to_string(), "core".to_string()),
            ("env".to_string(), "staging".to_string()),
            ("tier".to_string(), "2".to_string())
        ]
    );
}

#[test]
fn data_columns_and_unique_rows() {
    let files = MemFiles::with("/plans/users.csv", "user,pass\nann,1\nbob,2\n");
    let text = r#"
vus: 2
duration: 1s
data: {file: users.csv, mode: unique-per-vu}
flow: [{post: {url: "http://127.0.0.1:1/", body: "${data.user}:${data.pass}"}}]
"#;
    let plan = parse(text, Format::Yaml, &opts(), &files).expect("loads");
    let data = plan.data.as_ref().expect("data");
    assert_eq!(data.columns, ["user", "pass"]);
    assert_eq!(data.mode, DataMode::UniquePerVu);
    let row = vec!["bob".to_string(), "2".to_string()];
    let cx = RenderContext {
        vu: 2,
        iter: 0,
        scenario: "default",
        vars: &[],
        row: Some(&row),
    };
    assert_eq!(
        plan.requests[0]
            .body
            .as_ref()
            .and_then(|b| b.text())
            .expect("body")
            .render(&cx),
        "bob:2"
    );

    let e = parse(
        &text.replace("vus: 2", "vus: 3"),
        Format::Yaml,
        &opts(),
        &files,
    )
    .expect_err("3 VUs, 2 rows")
    .to_string();
    assert_eq!(
        e,
        "data.mode: unique-per-vu needs a row for every VU: the plan can run 3 VUs but the data file has 2 rows"
    );
}

#[test]
fn defaults_of_http_options_and_summary() {
    let plan = yaml_ok("flow: [{get: \"https://example.test/\"}]\n");
    assert_eq!(
        plan.http.user_agent,
        format!("volley/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(plan.http.timeout, Duration::from_secs(60));
    assert!(!plan.http.discard_response_bodies && !plan.http.insecure_skip_tls_verify);
    assert!(!plan.http.no_connection_reuse && !plan.http.http2_prior_knowledge);
    assert_eq!(
        plan.summary_trend_stats,
        crate::plan::TrendStat::k6_defaults()
    );
    assert!(plan.thresholds.is_empty() && plan.data.is_none());

    let plan = yaml_ok(
        r#"
userAgent: ""
insecureSkipTLSVerify: true
noConnectionReuse: true
http2PriorKnowledge: true
summaryTrendStats: ["avg", "p(99.9)", "count"]
flow: [{get: "https://example.test/"}]
"#,
    );
    assert!(
        plan.http.insecure_skip_tls_verify
            && plan.http.no_connection_reuse
            && plan.http.http2_prior_knowledge
    );
    assert!(
        plan.requests[0]
            .headers
            .iter()
            .all(|(n, _)| n != USER_AGENT),
        "an empty userAgent sends none"
    );
    assert_eq!(
        plan.summary_trend_stats,
        [
            crate::plan::TrendStat::Avg,
            crate::plan::TrendStat::Percentile(99.9),
            crate::plan::TrendStat::Count
        ]
    );
}

#[test]
fn thresholds_keep_their_order_and_options() {
    let plan = yaml_ok(
        r#"
thresholds:
  http_req_failed: ["rate<0.01"]
  http_req_duration{scenario:default}:
    - p(95) < 200
    - {threshold: "p(99)<500", abortOnFail: true, delayAbortEval: 10s}
  checks: "rate>0.99"
flow: [{get: "http://127.0.0.1:1/"}]
"#,
    );
    let keys: Vec<(&str, &str)> = plan
        .thresholds
        .iter()
        .map(|t| (t.key.as_str(), t.source.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("http_req_failed", "rate<0.01"),
            ("http_req_duration{scenario:default}", "p(95) < 200"),
            ("http_req_duration{scenario:default}", "p(99)<500"),
            ("checks", "rate>0.99")
        ]
    );
    assert!(!plan.thresholds[1].abort_on_fail);
    assert!(plan.thresholds[2].abort_on_fail);
    assert_eq!(plan.thresholds[2].delay_abort_eval, Duration::from_secs(10));
    assert_eq!(
        plan.thresholds[1].tags,
        vec![("scenario".to_string(), "default".to_string())]
    );
}

#[test]
fn templates_in_headers_and_literal_escapes() {
    let plan = yaml_ok(
        r#"
flow:
  - request:
      url: "http://127.0.0.1:1/${random(1,9)}/${uuid}/${iter}/${scenario}"
      headers: {X-Price: "$${cost}"}
"#,
    );
    let r = &plan.requests[0];
    assert!(matches!(r.url.parts()[1], Part::Random { min: 1, max: 9 }));
    assert!(r.url.parts().contains(&Part::Uuid));
    assert_eq!(r.headers[0].1.as_static(), Some("${cost}"));
}

#[test]
fn a_shared_flow_is_compiled_per_scenario() {
    let plan = yaml_ok(
        r#"
scenarios:
  one: {executor: per-vu-iterations, env: {P: "1"}}
  two: {executor: per-vu-iterations, env: {P: "2"}}
flow:
  - get: {url: "http://127.0.0.1:1/${env.P}", capture: [{var: v, header: X}]}
"#,
    );
    let urls: Vec<_> = plan
        .requests
        .iter()
        .map(|r| r.url.as_static().map(str::to_string))
        .collect();
    assert_eq!(
        urls,
        [
            Some("http://127.0.0.1:1/1".to_string()),
            Some("http://127.0.0.1:1/2".to_string())
        ]
    );
    assert_eq!(plan.requests[1].scenario, 1);
    assert_eq!(
        plan.vars,
        ["v"],
        "one slot per variable name across the plan"
    );
}

#[test]
fn a_variable_captured_in_another_scenario_is_unknown() {
    let e = yaml_err(
        r#"
scenarios:
  a:
    executor: per-vu-iterations
    flow: [{get: {url: "http://127.0.0.1:1/", capture: [{var: tok, header: X}]}}]
  b:
    executor: per-vu-iterations
    flow: [{get: "http://127.0.0.1:1/${tok}"}]
"#,
    );
    assert_eq!(
        e,
        "scenarios.b.flow[0].get.url: unknown variable \"${tok}\" (no `capture` in this flow defines a variable)"
    );
}

#[test]
fn method_shortcuts_and_sleep_only_flows() {
    let plan = yaml_ok(
        r#"
flow:
  - put: {url: "http://127.0.0.1:1/p", json: [1, "two"], headers: {content-type: application/merge-patch+json}}
  - patch: "http://127.0.0.1:1/p"
  - head: "http://127.0.0.1:1/h"
  - options: "http://127.0.0.1:1/o"
  - request: {method: purge, url: "http://127.0.0.1:1/c"}
"#,
    );
    let methods: Vec<&str> = plan.requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["PUT", "PATCH", "HEAD", "OPTIONS", "PURGE"]);
    let put = &plan.requests[0];
    assert_eq!(
        put.body.as_ref().and_then(|b| b.as_static()),
        Some(b"[1,\"two\"]".to_vec())
    );
    let content_types: Vec<_> = put
        .headers
        .iter()
        .filter(|(n, _)| *n == CONTENT_TYPE)
        .collect();
    assert_eq!(
        content_types.len(),
        1,
        "a written content-type is not doubled"
    );
    assert_eq!(
        content_types[0].1.as_static(),
        Some("application/merge-patch+json")
    );

    let plan =
        yaml_ok("vus: 2\nduration: 1s\nflow: [{sleep: 100ms}, {sleep: {min: 0s, max: 0s}}]\n");
    assert!(
        plan.requests.is_empty(),
        "a flow without requests is allowed"
    );
    assert_eq!(plan.scenarios[0].flow.steps.len(), 2);
}
