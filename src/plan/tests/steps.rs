//! The richer steps of issue 9: timing, regex, negated and JSON-comparing
//! checks; bad ones refused with their field path.

use super::bad_inputs::assert_rejected;
use super::yaml_ok;
use crate::plan::{CheckKind, Op, Step, TimingPhase};

fn first_request(plan: &crate::plan::Plan) -> &crate::plan::Request {
    match &plan.scenarios[0].flow.steps[0] {
        Step::Request(r) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn new_checks_compile_with_derived_names() {
    let plan = yaml_ok(
        r#"
flow:
  - get:
      url: "http://127.0.0.1:1/"
      check:
        - duration: "<200ms"
        - waiting: ">= 1s"
        - duration: "<=50"
        - bodyMatches: "id=\\d+"
        - header: {name: Content-Type, matches: "^application/json"}
        - not: {status: 500}
        - json: {pointer: /n, gt: 1, le: 10}
        - json: {pointer: /tags, contains: api}
        - {name: no error field, not: {json: {pointer: /error}}}
"#,
    );
    let r = first_request(&plan);
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "duration < 200ms",
            "waiting >= 1s",
            "duration <= 50ms",
            "body matches /id=\\d+/",
            "header Content-Type matches /^application/json/",
            "not (status is 500)",
            "json /n > 1 and <= 10",
            "json /tags contains \"api\"",
            "no error field",
        ]
    );
    assert!(matches!(
        r.checks[0].kind,
        CheckKind::Timing { phase: TimingPhase::Duration, op: Op::Lt, limit } if limit.as_millis() == 200
    ));
    assert!(matches!(
        r.checks[1].kind,
        CheckKind::Timing { phase: TimingPhase::Waiting, op: Op::Ge, limit } if limit.as_secs() == 1
    ));
    assert!(
        matches!(&r.checks[6].kind, CheckKind::JsonCompare { bounds, .. } if bounds == &[(Op::Gt, 1.0), (Op::Le, 10.0)])
    );
    assert!(r.needs_body, "body regex and json checks read the body");
    assert!(
        r.checks[8].kind.parses_json(),
        "a negated json check parses JSON"
    );
    assert!(r.checks[4].kind.reads_headers());
    assert!(!r.checks[0].kind.reads_body());
}

#[test]
fn a_timing_only_request_does_not_keep_its_body() {
    let plan = yaml_ok(
        "discardResponseBodies: true\nflow: [{get: {url: \"http://127.0.0.1:1/\", check: [{duration: \"<1s\"}, {not: {status: 500}}]}}]\n",
    );
    assert!(!first_request(&plan).needs_body);
}

#[test]
fn malformed_checks_are_refused_with_their_path() {
    let get = |check: &str| {
        format!("flow:\n  - get: {{url: \"http://127.0.0.1:1/\", check: [{check}]}}\n")
    };
    let cases = vec![
        (
            get("{bodyMatches: \"(unclosed\"}"),
            "flow[0].get.check[0].bodyMatches",
            "expected a valid regular expression (unclosed group)",
        ),
        (
            get("{header: {name: X-A, matches: \"[z-a]\"}}"),
            "flow[0].get.check[0].header.matches",
            "expected a valid regular expression",
        ),
        (
            get("{header: {name: X-A, equals: b, matches: c}}"),
            "flow[0].get.check[0].header",
            "has both `equals` and `matches`",
        ),
        (
            get("{header: {name: X-A}}"),
            "flow[0].get.check[0].header",
            "no `equals` or `matches`",
        ),
        (
            get("{duration: \"200ms\"}"),
            "flow[0].get.check[0].duration",
            "got \"200ms\", expected a comparison and a duration like \"<200ms\"",
        ),
        (
            get("{waiting: \"<soon\"}"),
            "flow[0].get.check[0].waiting",
            "expected a comparison and a duration",
        ),
        (
            get("{duration: \"<1s\", status: 200}"),
            "flow[0].get.check[0]",
            "has both `status` and `duration`",
        ),
        (
            get("{not: {}}"),
            "flow[0].get.check[0].not",
            "has no condition; expected one of status, header",
        ),
        (
            get("{not: {name: inner, status: 200}}"),
            "flow[0].get.check[0].not.name",
            "expected no name inside `not`",
        ),
        (
            get("{not: {not: {bodyMatches: \"(\"}}}"),
            "flow[0].get.check[0].not.not.bodyMatches",
            "a valid regular expression",
        ),
        (
            get("{json: {pointer: /n, lt: 1, equals: 2}}"),
            "flow[0].get.check[0].json",
            "mixes `equals`, `contains` and number bounds",
        ),
        (
            get("{json: {pointer: /n, lt: \"ten\"}}"),
            "flow[0].get.check[0].json.lt",
            "expected f64",
        ),
        (
            get("{json: {pointer: n, contains: x}}"),
            "flow[0].get.check[0].json.pointer",
            "a JSON pointer",
        ),
        (
            get("{bodyNotContains: x}"),
            "flow[0].get.check[0].bodyNotContains",
            "unknown field \"bodyNotContains\"",
        ),
    ];
    assert_rejected(&cases);
}

#[test]
fn batch_steps_compile_in_both_forms_with_their_own_ids_and_captures() {
    let plan = yaml_ok(
        r#"
batch: 4
batchPerHost: 0
flow:
  - batch:
      - {url: "http://127.0.0.1:1/a", capture: [{var: a, json: /a}]}
      - {method: POST, url: "http://127.0.0.1:1/b", body: "x", name: b, check: [{status: 201}]}
  - batch:
      requests:
        - {url: "http://127.0.0.1:1/c/${a}"}
"#,
    );
    assert_eq!((plan.http.batch, plan.http.batch_per_host), (4, 0));
    let steps = &plan.scenarios[0].flow.steps;
    let Step::Batch(first) = &steps[0] else {
        panic!("expected a batch, got {:?}", steps[0]);
    };
    let ids: Vec<u32> = first.iter().map(|r| r.id.0).collect();
    assert_eq!(ids, [0, 1]);
    assert_eq!(first[1].method, http::Method::POST);
    assert_eq!(first[1].name, "b");
    assert_eq!(first[1].checks[0].name, "status is 201");
    assert!(matches!(&steps[1], Step::Batch(rs) if rs.len() == 1 && rs[0].id.0 == 2));
    assert_eq!(plan.requests.len(), 3);
    let defaults = yaml_ok("flow: [{get: \"http://127.0.0.1:1/\"}]\n");
    assert_eq!(
        (defaults.http.batch, defaults.http.batch_per_host),
        (20, 6),
        "k6's defaults"
    );
}

#[test]
fn malformed_batches_are_refused_with_their_path() {
    let get = "flow: [{get: \"http://127.0.0.1:1/\"}]\n";
    let cases = vec![
        (
            "flow: [{batch: []}]\n".to_string(),
            "flow[0].batch",
            "is empty; a batch needs at least one request",
        ),
        (
            "flow: [{batch: [{url: \"http://127.0.0.1:1/\"}, {url: \"ftp://x/\"}]}]\n".to_string(),
            "flow[0].batch[1].url",
            "expected an absolute http:// or https:// URL",
        ),
        (
            "flow: [{batch: {requests: [{url: \"http://x/\", check: [{duration: \"fast\"}]}]}}]\n"
                .to_string(),
            "flow[0].batch.requests[0].check[0].duration",
            "expected a comparison and a duration",
        ),
        (
            "flow: [{batch: {requests: [], parallel: 2}}]\n".to_string(),
            "flow[0].batch.parallel",
            "unknown field \"parallel\"",
        ),
        (
            "flow: [{batch: \"http://x/\"}]\n".to_string(),
            "flow[0].batch",
            "expected a list of requests, or {requests: [...]}",
        ),
        (
            "flow: [{batch: [{url: \"http://x/\"}], sleep: 1s}]\n".to_string(),
            "flow[0]",
            "has both `sleep` and `batch`",
        ),
        (
            format!("batch: 0\n{get}"),
            "batch",
            "got \"0\", expected a number of requests from 1 to 10000",
        ),
        (
            format!("batchPerHost: 20000\n{get}"),
            "batchPerHost",
            "expected a number of requests from 0 to 10000",
        ),
    ];
    assert_rejected(&cases);
}

#[test]
fn custom_metrics_are_declared_fed_and_thresholded() {
    use crate::metrics::{MetricKind, Unit};
    use crate::plan::{MetricValue, ResponseValue};
    let plan = yaml_ok(
        r#"
metrics:
  steps_test_orders: counter
  steps_test_login: {type: trend, isTime: true}
  steps_test_ok: {type: rate}
thresholds:
  steps_test_orders: ["count>10"]
  steps_test_login: ["p(95)<300"]
flow:
  - get:
      url: "http://127.0.0.1:1/"
      capture: [{var: n, json: /n}]
      metrics:
        - {name: steps_test_login, value: duration}
        - {name: steps_test_ok, value: checks}
  - group:
      name: g
      flow:
        - metric: {name: steps_test_orders, add: 2, tags: {kind: web}}
        - metric: {name: steps_test_ok, add: "${n}"}
        - metric: {name: steps_test_ok, add: false}
"#,
    );
    let kinds: Vec<(&str, MetricKind, Unit)> = plan
        .metrics
        .iter()
        .map(|m| (m.name(), m.kind(), m.unit()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("steps_test_orders", MetricKind::Counter, Unit::Default),
            ("steps_test_login", MetricKind::Trend, Unit::Time),
            ("steps_test_ok", MetricKind::Rate, Unit::Default),
        ]
    );
    assert_eq!(plan.thresholds.len(), 2);
    let r = first_request(&plan);
    let fed: Vec<(&str, ResponseValue)> = r
        .metrics
        .iter()
        .map(|m| (m.metric.name(), m.value))
        .collect();
    assert_eq!(
        fed,
        [
            ("steps_test_login", ResponseValue::Duration),
            ("steps_test_ok", ResponseValue::Checks)
        ]
    );
    let Step::Group(g) = &plan.scenarios[0].flow.steps[1] else {
        panic!("expected a group");
    };
    let Step::Metric(orders) = &g.steps[0] else {
        panic!("expected a metric step");
    };
    assert_eq!(orders.group, "::g");
    assert_eq!(orders.tags, [("kind".to_string(), "web".to_string())]);
    assert!(matches!(orders.value, MetricValue::Fixed(v) if v == 2.0));
    assert!(matches!(&g.steps[1], Step::Metric(m) if matches!(m.value, MetricValue::Template(_))));
    assert!(
        matches!(&g.steps[2], Step::Metric(m) if matches!(m.value, MetricValue::Fixed(v) if v == 0.0))
    );
}

#[test]
fn bad_custom_metrics_are_refused_with_their_path() {
    let get = "flow: [{get: \"http://127.0.0.1:1/\"}]\n";
    let with = |head: &str| format!("{head}{get}");
    let long = "m".repeat(129);
    let long_path = format!("metrics.{long}");
    let cases = vec![
        (
            with("metrics: {9lives: counter}\n"),
            "metrics.9lives",
            "expected a metric name of letters, digits and _, not starting with a digit",
        ),
        (
            with("metrics: {\"a-b\": counter}\n"),
            "metrics.a-b",
            "expected a metric name",
        ),
        (
            with(&format!("metrics: {{{long}: counter}}\n")),
            long_path.as_str(),
            "at most 128 characters",
        ),
        (
            with("metrics: {http_reqs: counter}\n"),
            "metrics.http_reqs",
            "expected a name that is not a built-in metric's",
        ),
        (
            with("metrics: {steps_test_bad: histogram}\n"),
            "metrics.steps_test_bad",
            "unknown variant \"histogram\", expected one of \"counter\", \"gauge\", \"rate\", \"trend\"",
        ),
        (
            with("metrics: {steps_test_bad: {type: counter, isTime: true}}\n"),
            "metrics.steps_test_bad.isTime",
            "applies to trends only",
        ),
        (
            with("thresholds: {steps_test_undeclared: [\"count>1\"]}\n"),
            "thresholds.steps_test_undeclared[0]",
            "unknown metric \"steps_test_undeclared\"",
        ),
        (
            "metrics: {steps_test_c: counter}\nflow: [{metric: {name: steps_test_d, add: 1}}]\n"
                .to_string(),
            "flow[0].metric.name",
            "got \"steps_test_d\", expected a metric declared under `metrics:` (steps_test_c)",
        ),
        (
            "metrics: {steps_test_c: counter}\nflow: [{metric: {name: steps_test_c, add: lots}}]\n"
                .to_string(),
            "flow[0].metric.add",
            "expected a number, true or false, or a template like \"${price}\"",
        ),
        (
            "metrics: {steps_test_c: counter}\nflow: [{get: {url: \"http://x/\", metrics: [{name: steps_test_c, value: size}]}}]\n"
                .to_string(),
            "flow[0].get.metrics[0].value",
            "unknown variant \"size\"",
        ),
        (
            "flow: [{get: {url: \"http://x/\", metrics: [{name: nope, value: duration}]}}]\n"
                .to_string(),
            "flow[0].get.metrics[0].name",
            "expected a metric declared under `metrics:` (it declares none)",
        ),
    ];
    assert_rejected(&cases);
}

#[test]
fn setup_captures_are_read_only_variables_of_every_flow() {
    let plan = yaml_ok(
        r#"
setup:
  - post: {url: "http://127.0.0.1:1/login", capture: [{var: token, json: /token}], check: [{status: 200}]}
  - get: "http://127.0.0.1:1/me?t=${token}"
teardown:
  - post: {url: "http://127.0.0.1:1/logout", body: "${token}", capture: [{var: bye, header: X-Bye}]}
scenarios:
  a: {executor: shared-iterations, flow: [{get: "http://127.0.0.1:1/a?t=${token}"}]}
  b: {executor: shared-iterations, flow: [{group: {name: g, flow: [{get: "http://127.0.0.1:1/b/${token}"}]}}]}
"#,
    );
    let setup = plan.setup.as_ref().expect("a setup flow");
    let Step::Request(login) = &setup.steps[0] else {
        panic!("expected a request");
    };
    assert_eq!((login.scenario, login.group.as_str()), (0, "::setup"));
    assert_eq!(plan.checks[0].group, "::setup");
    let teardown = plan.teardown.as_ref().expect("a teardown flow");
    let Step::Request(logout) = &teardown.steps[0] else {
        panic!("expected a request");
    };
    assert_eq!(logout.group, "::teardown");
    let names: Vec<&str> = plan
        .setup_vars
        .iter()
        .map(|s| plan.vars[usize::from(s.0)].as_str())
        .collect();
    assert_eq!(names, ["token"], "teardown's own captures are not setup's");
}

#[test]
fn bad_lifecycle_flows_are_refused_with_their_path() {
    let cases = vec![
        (
            "setup: []\nflow: [{get: \"http://x/\"}]\n".to_string(),
            "setup",
            "is empty; a flow needs at least one step",
        ),
        (
            "setup: [{get: {url: \"http://x/\", capture: [{var: t, json: /t}]}}]\nflow: [{get: {url: \"http://x/\", capture: [{var: t, header: X}]}}]\n"
                .to_string(),
            "flow[0].get.capture[0].var",
            "expected a name `setup` does not capture",
        ),
        (
            "setup: [{get: \"http://x/${later}\"}]\nflow: [{get: {url: \"http://x/\", capture: [{var: later, header: X}]}}]\n"
                .to_string(),
            "setup[0].get.url",
            "unknown variable \"${later}\"",
        ),
        (
            "setup: [{get: \"http://x/${data.user}\"}]\nflow: [{get: \"http://x/\"}]\n".to_string(),
            "setup[0].get.url",
            "\"${data.user}\" is not available in setup or teardown",
        ),
        (
            "teardown: [{sleep: fast}]\nflow: [{get: \"http://x/\"}]\n".to_string(),
            "teardown[0].sleep",
            "expected a duration",
        ),
    ];
    assert_rejected(&cases);
}
