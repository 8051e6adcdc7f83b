//! Checks, captures and templates end to end against the built-in target.
//!
//! Captured values are proven exact, not just present: a value travels
//! through the target and comes back as a status code (`/status/2NN`), and
//! the `status` tag of `http_reqs` then says which value each iteration used.

mod common;

use common::{
    base, check_counts, counter, counter_where, rate, run_yaml, start_target, summary_errors,
};
use volley::engine::EndReason;
use volley::metrics::Metric;
use volley::target::Route;

/// Requests named `name` that answered `status`.
fn answered(r: &volley::engine::RunResult, name: &str, status: &str) -> f64 {
    counter_where(r, Metric::HttpReqs, &[("name", name), ("status", status)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_capture_is_reused_in_the_next_body_and_checked() {
    let target = start_target().await;
    // One VU, three iterations: the target's /json hands out tok-1, tok-2,
    // tok-3 in order. Each token is captured, echoed back through /echo,
    // captured again from the echo with a regex and turned into /status/20N.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 1
    iterations: 3
flow:
  - get:
      url: "{base}/json"
      name: json
      check:
        - status: 200
        - json: {{pointer: /token}}
        - json: {{pointer: /id, equals: 42}}
      capture:
        - {{var: token, json: /token}}
  - post:
      url: "{base}/echo"
      name: echo
      body: "echo:${{token}};"
      check:
        - {{bodyContains: "echo:tok-", name: token echoed}}
        - {{bodyContains: "echo:;", name: token missing}}
      capture:
        - {{var: n, regex: "echo:tok-(\\d+);"}}
  - get:
      url: "{base}/status/20${{n}}"
      name: status
      check:
        - status: [201, 202, 203]
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::Iterations), 3.0);
    assert_eq!(check_counts(&r, "status is 200"), (3, 0));
    assert_eq!(check_counts(&r, "json /token exists"), (3, 0));
    assert_eq!(check_counts(&r, "json /id == 42"), (3, 0));
    assert_eq!(check_counts(&r, "token echoed"), (3, 0));
    assert_eq!(
        check_counts(&r, "token missing"),
        (0, 3),
        "the capture was rendered"
    );
    assert_eq!(check_counts(&r, "status in [201, 202, 203]"), (3, 0));
    // Iteration k used exactly tok-k.
    for status in ["201", "202", "203"] {
        assert_eq!(answered(&r, "status", status), 1.0, "status {status}");
    }
    assert_eq!(target.stats.route(Route::Json), 3);
    assert_eq!(target.stats.route(Route::Echo), 3);
    assert_eq!(target.stats.route(Route::Status), 3);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_checks_and_captures() {
    let target = start_target().await;
    // /echo names the method in `x-echo-method`; it is captured and sent
    // back as a request header, which /headers returns as JSON.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: shared-iterations
    vus: 2
    iterations: 4
flow:
  - request:
      method: PUT
      url: "{base}/echo"
      body: "x"
      check:
        - header: Server
        - header: {{name: x-echo-method, equals: PUT}}
        - header: {{name: x-echo-method, equals: GET}}
        - header: x-absent
      capture:
        - {{var: method, header: X-Echo-Method}}
  - get:
      url: "{base}/headers"
      headers: {{X-Seen-Method: "${{method}}"}}
      check:
        - json: {{pointer: /x-seen-method, equals: PUT}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(check_counts(&r, "header Server present"), (4, 0));
    assert_eq!(check_counts(&r, "header x-echo-method is \"PUT\""), (4, 0));
    assert_eq!(check_counts(&r, "header x-echo-method is \"GET\""), (0, 4));
    assert_eq!(check_counts(&r, "header x-absent present"), (0, 4));
    assert_eq!(
        check_counts(&r, "json /x-seen-method == \"PUT\""),
        (4, 0),
        "the captured header value was sent on"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_checks_are_counted_as_fails() {
    let target = start_target().await;
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 3
flow:
  - get:
      url: "{base}/status/503"
      check:
        - status: 200
        - status: 503
        - {{bodyContains: "Service Unavailable"}}
        - {{bodyContains: "all good", name: cheerful body}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(
        r.end,
        EndReason::Completed,
        "failed checks never stop a run"
    );
    assert_eq!(counter(&r, Metric::Iterations), 6.0);
    assert_eq!(check_counts(&r, "status is 200"), (0, 6));
    assert_eq!(check_counts(&r, "status is 503"), (6, 0));
    assert_eq!(
        check_counts(&r, "body contains \"Service Unavailable\""),
        (6, 0)
    );
    assert_eq!(check_counts(&r, "cheerful body"), (0, 6));
    assert_eq!(
        rate(&r, Metric::Checks),
        (12, 24),
        "the checks rate: 12 of 24 passed"
    );
    assert_eq!(
        summary_errors(&r, "status 503"),
        6,
        "unexpected statuses are listed"
    );
    assert_eq!(
        rate(&r, Metric::HttpReqFailed),
        (6, 6),
        "503 is not an expected response"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_rows_feed_templates_in_sequence() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("users.csv"),
        "user,code\nalice,201\nbob,202\ncarol,203\n",
    )
    .expect("write the data file");
    // Sequential rows are shared by every VU and wrap around: 6 iterations
    // over 3 rows use each row exactly twice, however the VUs interleave.
    let yaml = format!(
        r#"
data: {{file: users.csv, mode: sequential}}
scenarios:
  main:
    executor: shared-iterations
    vus: 2
    iterations: 6
flow:
  - post:
      url: "{base}/echo"
      body: "user=${{data.user}} code=${{data.code}}"
      check:
        - {{bodyContains: "user=alice code=201", name: alice row}}
        - {{bodyContains: "user=bob code=202", name: bob row}}
        - {{bodyContains: "user=carol code=203", name: carol row}}
      capture:
        - {{var: code, regex: "code=(\\d+)"}}
  - get:
      url: "{base}/status/${{code}}"
      name: by-row
"#,
        base = base(&target)
    );
    let plan = common::plan_in(dir.path(), &yaml);
    let r = common::run(plan).await;
    assert_eq!(counter(&r, Metric::Iterations), 6.0);
    for name in ["alice row", "bob row", "carol row"] {
        assert_eq!(check_counts(&r, name), (2, 4), "{name}");
    }
    for status in ["201", "202", "203"] {
        assert_eq!(answered(&r, "by-row", status), 2.0, "status {status}");
    }
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vu_and_iter_render_per_iteration() {
    let target = start_target().await;
    // VUs are numbered from 1, iterations from 0: two VUs × two iterations
    // ask for /status/210, 211, 220 and 221 once each.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 2
flow:
  - post:
      url: "{base}/echo"
      body: "vu=${{vu}} iter=${{iter}} scenario=${{scenario}}"
      check:
        - {{bodyContains: "scenario=main", name: scenario rendered}}
      capture:
        - {{var: v, regex: "vu=(\\d+)"}}
        - {{var: i, regex: "iter=(\\d+)"}}
  - get:
      url: "{base}/status/2${{v}}${{i}}"
      name: vu-iter
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(check_counts(&r, "scenario rendered"), (4, 0));
    for status in ["210", "211", "220", "221"] {
        assert_eq!(answered(&r, "vu-iter", status), 1.0, "status {status}");
    }
    assert_eq!(counter(&r, Metric::HttpReqs), 8.0);
    target.shutdown().await;
}

/// `compression` on a request: the body goes out compressed (a static
/// body once, a templated one per request) with `Content-Encoding`; the
/// target echoes it back with the same coding, and the check reads it
/// decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_go_out_compressed_and_come_back_readable() {
    let target = start_target().await;
    let yaml = format!(
        r#"
iterations: 2
flow:
  - post:
      url: "{base}/echo"
      name: static
      body: "a static body a static body a static body"
      compression: gzip
      check:
        - {{bodyContains: "a static body a static", name: static decoded}}
        - {{header: {{name: Content-Encoding, equals: gzip}}, name: static coding}}
  - post:
      url: "{base}/echo"
      name: templated
      body: "iteration ${{iter}} of a templated body"
      compression: "deflate, gzip"
      check:
        - {{bodyContains: "of a templated body", name: templated decoded}}
        - {{header: {{name: Content-Encoding, equals: "deflate, gzip"}}, name: templated coding}}
  - post:
      url: "{base}/echo"
      name: modern
      body: "iteration ${{iter}} in brotli and zstd"
      compression: "br, zstd"
      check:
        - {{bodyContains: "in brotli and zstd", name: modern decoded}}
        - {{header: {{name: Content-Encoding, equals: "br, zstd"}}, name: modern coding}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    for name in [
        "static decoded",
        "static coding",
        "templated decoded",
        "templated coding",
        "modern decoded",
        "modern coding",
    ] {
        assert_eq!(check_counts(&r, name), (2, 0), "{name}");
    }
    // Decoding the echo would fail the request had the body not been
    // valid data of its codings: no request failed.
    assert_eq!(rate(&r, Metric::HttpReqFailed), (0, 6));
}

/// `form:` sends the fields form-encoded as k6 does (sorted by name, Go's
/// escaping, placeholders escaped when rendered) with its content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_bodies_are_encoded_as_k6_encodes_them() {
    let target = start_target().await;
    let yaml = format!(
        r#"
iterations: 2
flow:
  - post:
      url: "{base}/echo"
      form: {{user: "ann smith", id: "vu ${{vu}}", "q&x": "a=b"}}
      check:
        - {{bodyContains: "id=vu+1&q%26x=a%3Db&user=ann+smith", name: encoded}}
        - {{header: {{name: Content-Type, equals: application/x-www-form-urlencoded}}, name: typed}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(check_counts(&r, "encoded"), (2, 0));
    assert_eq!(check_counts(&r, "typed"), (2, 0));
    target.shutdown().await;
}
