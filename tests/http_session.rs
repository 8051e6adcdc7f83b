//! Cookies and redirects in YAML plans against a real nginx (Debian
//! `nginx-light`, config in `tests/fixtures/nginx/session.conf`): a login
//! that sets a session cookie and redirects to a private page, the jar
//! emptied between iterations (and kept with `noCookiesReset`), each
//! redirect hop counted as a request, a redirect loop stopped at
//! `maxRedirects`, 303 turning POST into GET and 307 keeping it, and a
//! cookie captured into a variable; and URL credentials against nginx's
//! `auth_basic`.
//!
//! nginx is started by `common::servers` (`scripts/test` installs
//! `nginx-light`).

mod common;

use common::{check_counts, counter, counter_where, rate, run_yaml};
use volley::metrics::Metric;

async fn start_nginx() -> common::servers::Server {
    common::servers::nginx(
        include_str!("fixtures/nginx/session.conf"),
        &[
            ("htpasswd", b"volley:{PLAIN}s3cret\n"),
            ("private.txt", b"authorized\n"),
        ],
    )
    .await
}

fn reqs(r: &volley::engine::RunResult, name: &str, status: &str) -> f64 {
    counter_where(r, Metric::HttpReqs, &[("name", name), ("status", status)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_cookie_lives_for_one_iteration_and_each_hop_is_a_request() {
    let nginx = start_nginx().await;
    let yaml = format!(
        r#"
iterations: 3
flow:
  - get:
      url: "http://127.0.0.1:{port}/private"
      name: before-login
      check: [{{status: 401}}]
  - get:
      url: "http://127.0.0.1:{port}/login"
      name: login
      check: [{{status: 200}}, {{bodyContains: welcome}}]
      capture: [{{var: sid, cookie: sid}}]
  - get:
      url: "http://127.0.0.1:{port}/private?captured=${{sid}}"
      name: after-login
      check: [{{status: 200}}]
  - get:
      url: "http://127.0.0.1:{port}/logout"
      name: logout
  - get:
      url: "http://127.0.0.1:{port}/private"
      name: after-logout
      check: [{{status: 401}}]
"#,
        port = nginx.port
    );
    let r = run_yaml(&yaml).await;
    // Every iteration starts with an empty jar: the first request has no
    // session even after an earlier iteration logged in.
    assert_eq!(check_counts(&r, "status is 401"), (6, 0));
    assert_eq!(check_counts(&r, "status is 200"), (6, 0));
    assert_eq!(check_counts(&r, "body contains \"welcome\""), (3, 0));
    // The login is two requests (302 + the private page), both named login.
    assert_eq!(reqs(&r, "login", "302"), 3.0);
    assert_eq!(reqs(&r, "login", "200"), 3.0);
    assert_eq!(counter(&r, Metric::HttpReqs), 18.0);
    let log = std::fs::read_to_string(nginx.dir.path().join("access.log")).unwrap_or_default();
    // Four visits to the private page per iteration, one of them a hop.
    assert_eq!(
        log.lines().filter(|l| l.contains("GET /private")).count(),
        12,
        "{log}"
    );
    // The cookie capture read the jar.
    assert_eq!(
        log.matches("GET /private?captured=s3cret ").count(),
        3,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cookies_reset_keeps_the_session_and_expected_statuses_decide_failures() {
    let nginx = start_nginx().await;
    let yaml = format!(
        r#"
iterations: 3
noCookiesReset: true
expectedStatuses: [{{min: 200, max: 299}}, 401]
flow:
  - get:
      url: "http://127.0.0.1:{port}/private"
      name: private
  - get:
      url: "http://127.0.0.1:{port}/login"
      name: login
"#,
        port = nginx.port
    );
    let r = run_yaml(&yaml).await;
    // Only the very first visit lacks the session.
    assert_eq!(reqs(&r, "private", "401"), 1.0);
    assert_eq!(reqs(&r, "private", "200"), 2.0);
    // 401 is expected here, and the login's 302 hop is not.
    assert_eq!(rate(&r, Metric::HttpReqFailed), (3, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_loops_and_method_changes_follow_go_and_k6() {
    let nginx = start_nginx().await;
    let yaml = format!(
        r#"
iterations: 2
maxRedirects: 4
flow:
  - get:
      url: "http://127.0.0.1:{port}/a"
      name: chain
      check: [{{status: 200}}, {{bodyContains: end of chain}}]
  - get:
      url: "http://127.0.0.1:{port}/loop"
      name: loop
  - get:
      url: "http://127.0.0.1:{port}/loop"
      name: loop-once
      redirects: 1
  - get:
      url: "http://127.0.0.1:{port}/a"
      name: no-follow
      redirects: 0
  - post:
      url: "http://127.0.0.1:{port}/see-other"
      name: see-other
      body: "x=1"
      check: [{{bodyContains: GET, name: 303 makes a GET}}]
  - post:
      url: "http://127.0.0.1:{port}/temporary"
      name: temporary
      body: "x=1"
      check: [{{bodyContains: POST, name: 307 keeps the POST}}]
"#,
        port = nginx.port
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(check_counts(&r, "status is 200"), (2, 0));
    assert_eq!(check_counts(&r, "303 makes a GET"), (2, 0));
    assert_eq!(check_counts(&r, "307 keeps the POST"), (2, 0));
    // /a → /b → /c: three requests per chain.
    assert_eq!(reqs(&r, "chain", "301") + reqs(&r, "chain", "302"), 4.0);
    // A loop stops after maxRedirects (4) hops: 5 requests, the last a 302
    // returned as the answer, as k6 does.
    assert_eq!(reqs(&r, "loop", "302"), 10.0);
    assert_eq!(reqs(&r, "loop-once", "302"), 4.0);
    assert_eq!(reqs(&r, "no-follow", "301"), 2.0);
    assert_eq!(
        counter(&r, Metric::HttpReqs),
        2.0 * (3.0 + 5.0 + 2.0 + 1.0 + 2.0 + 2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_response_is_checked_decoded() {
    let nginx = start_nginx().await;
    let yaml = format!(
        r#"
iterations: 2
flow:
  - get:
      url: "http://127.0.0.1:{port}/compressed"
      name: gzip
      headers: {{Accept-Encoding: gzip}}
      check:
        - {{bodyContains: "compressed text compressed text", name: decoded}}
        - {{header: {{name: Content-Encoding, equals: gzip}}}}
"#,
        port = nginx.port
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(check_counts(&r, "decoded"), (2, 0));
    assert_eq!(
        check_counts(&r, "header Content-Encoding is \"gzip\""),
        (2, 0)
    );
    assert_eq!(rate(&r, Metric::HttpReqFailed), (0, 2));
}

/// Credentials in the URL become Basic auth, checked by nginx's
/// `auth_basic`: the right ones pass, wrong or none get 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_credentials_pass_nginx_basic_auth() {
    let nginx = start_nginx().await;
    let port = nginx.port;
    let yaml = format!(
        r#"
iterations: 2
flow:
  - get:
      url: "http://volley:s3cret@127.0.0.1:{port}/basic"
      name: right
      check: [{{status: 200, name: right 200}}, {{bodyContains: authorized, name: right body}}]
  - get:
      url: "http://volley:wrong@127.0.0.1:{port}/basic"
      name: wrong
      check: [{{status: 401, name: wrong 401}}]
  - get:
      url: "http://127.0.0.1:{port}/basic"
      name: none
      check: [{{status: 401, name: none 401}}]
"#
    );
    let r = run_yaml(&yaml).await;
    for name in ["right 200", "right body", "wrong 401", "none 401"] {
        assert_eq!(check_counts(&r, name), (2, 0), "{name}");
    }
}
