//! Loopback tests of the agent API (`volley::api`) against a fake agent:
//! every route's status and JSON shape, auth, body limits, both submit
//! forms, error mapping, the Prometheus text, shutdown. Reads and routing
//! are here; `api/submit.rs` has submits and limits, `api/auth.rs` the
//! bearer token and aborts, `api/client.rs` the client against the server.

#[path = "api/auth.rs"]
mod auth;
#[path = "api/client.rs"]
mod client;
#[path = "api/fake.rs"]
mod fake;
#[path = "api/submit.rs"]
mod submit;
#[path = "api/support.rs"]
mod support;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use volley::api::ROUTES;

use fake::Call;
use support::{get, parse_prometheus, send, start};

const YAML_PLAN: &str =
    "scenarios:\n  main:\n    executor: constant-vus\n    vus: 2\n    duration: 5s\n";

#[tokio::test]
async fn health_and_readiness() {
    let server = start().await;
    let health = get(server.addr, "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.text(), "ok\n");
    assert!(health.header("content-type").starts_with("text/plain"));

    let ready = get(server.addr, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json(), json!({"ready": true}));

    server.agent.set_ready(false);
    let draining = get(server.addr, "/readyz").await;
    assert_eq!(draining.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(draining.json(), json!({"ready": false}));
    // Liveness does not depend on readiness.
    assert_eq!(get(server.addr, "/healthz").await.status, StatusCode::OK);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text() {
    let server = start().await;
    let reply = get(server.addr, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let samples =
        parse_prometheus(&reply.text()).unwrap_or_else(|e| panic!("{e}\n{}", reply.text()));
    let value = |name: &str, label: Option<(&str, &str)>| {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && label.is_none_or(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
    };
    assert_eq!(value("volley_members", Some(("liveness", "live"))), 2.0);
    assert_eq!(value("volley_members", Some(("liveness", "dead"))), 1.0);
    assert_eq!(value("volley_tests", Some(("phase", "running"))), 1.0);
    assert_eq!(value("volley_test_vus", Some(("test", "t-1"))), 20.0);
    assert_eq!(
        value(
            "volley_test_http_requests_total",
            Some(("scenario", "default"))
        ),
        45_000.0
    );
    assert!(samples.iter().all(|s| !s.name.contains("p95")));
    assert_eq!(value("volley_uptime_seconds", None), 3600.0);
    assert_eq!(value("volley_build_info", Some(("version", "0.1.0"))), 1.0);
    assert!(server.agent.calls().contains(&Call::Prometheus));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn members_and_test_reads_have_their_json_shape() {
    let server = start().await;

    let members = get(server.addr, "/v1/members").await;
    assert_eq!(members.status, StatusCode::OK);
    assert_eq!(members.header("content-type"), "application/json");
    assert_eq!(members.header("cache-control"), "no-store");
    let json = members.json();
    let list = json["members"].as_array().expect("members array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["nodeId"], "node-a");
    assert_eq!(list[0]["gossipAddr"], "10.0.0.1:7280");
    assert_eq!(list[0]["isSelf"], true);
    assert_eq!(list[0]["labels"], json!({"region": "eu"}));
    assert_eq!(
        list[1]["problem"],
        "protocol version 0 is older than this fleet's 1"
    );
    assert_eq!(list[1]["clockOffsetMs"], -3.5);
    assert!(
        list[1].get("apiAddr").is_none(),
        "absent, not null: {}",
        list[1]
    );

    let tests = get(server.addr, "/v1/tests").await;
    assert_eq!(tests.status, StatusCode::OK);
    let json = tests.json();
    let list = json["tests"].as_array().expect("tests array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], "t-1");
    assert_eq!(list[0]["startUnixMs"], fake::T1_START);
    assert!(list[0].get("endUnixMs").is_none());
    assert_eq!(list[1]["passed"], true);

    let view = get(server.addr, "/v1/tests/t-1").await;
    assert_eq!(view.status, StatusCode::OK);
    let json = view.json();
    assert_eq!(json["id"], "t-1");
    assert_eq!(json["phase"], "running");
    assert_eq!(json["agents"], 2);
    assert_eq!(json["revision"], 4);
    assert_eq!(json["agentStates"][0]["region"], "eu");
    assert_eq!(json["agentStates"][0]["lastSeenMs"], 400);
    assert_eq!(json["live"]["p95Ms"], 212.5);
    assert_eq!(json["live"]["thresholds"][0]["source"], "p(95)<300");
    assert_eq!(json["startSpreadMs"], 1.25);
    assert_eq!(
        serde_json::from_value::<volley::api::TestView>(json).expect("typed"),
        fake::view("t-1").expect("canned")
    );

    assert_eq!(
        server.agent.calls(),
        vec![Call::Members, Call::ListTests, Call::GetTest("t-1".into())]
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unknown_ids_get_404_json_naming_no_other_id() {
    let server = start().await;
    for path in ["/v1/tests/t-123", "/v1/tests/t-123/summary"] {
        let reply = get(server.addr, path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        let (code, message) = reply.error();
        assert_eq!(code, "not_found");
        assert_eq!(
            message,
            "no test \"t-123\" on this fleet (`volley tests` lists its tests)"
        );
    }
    // Ids are percent-decoded before they reach the agent.
    let reply = get(server.addr, "/v1/tests/a%20b").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(server.agent.calls().contains(&Call::GetTest("a b".into())));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn summaries_as_json_as_text_and_409_while_running() {
    let server = start().await;
    let reply = get(server.addr, "/v1/tests/t-2/summary").await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["id"], "t-2");
    assert_eq!(json["passed"], true);
    assert_eq!(json["k6Export"]["metrics"]["http_reqs"]["count"], 1000);
    assert_eq!(json["summary"]["thresholds"][0]["ok"], true);
    let typed: volley::api::SummaryView = serde_json::from_value(json).expect("typed");
    assert_eq!(typed, fake::summary_view());

    let text = get(server.addr, "/v1/tests/t-2/summary?format=text").await;
    assert_eq!(text.status, StatusCode::OK);
    assert_eq!(text.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(text.text(), fake::summary_view().text);

    let running = get(server.addr, "/v1/tests/t-1/summary").await;
    assert_eq!(running.status, StatusCode::CONFLICT);
    let (code, message) = running.error();
    assert_eq!(code, "conflict");
    assert!(message.contains("still running"), "{message}");

    let bad = get(server.addr, "/v1/tests/t-2/summary?format=html").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().1.contains("format=json or format=text"));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unknown_routes_list_the_routes_and_wrong_methods_get_405() {
    let server = start().await;
    for path in [
        "/",
        "/v2/tests",
        "/v1/tests/t-1/results",
        "/v1/tests//summary",
    ] {
        let reply = get(server.addr, path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        let json = reply.json();
        assert_eq!(json["error"]["code"], "not_found");
        let routes: Vec<&str> = json["error"]["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .map(|r| r.as_str().expect("string"))
            .collect();
        assert_eq!(routes, ROUTES);
    }
    let cases = [
        (Method::PUT, "/v1/tests", "GET, HEAD, POST"),
        (Method::POST, "/v1/tests/t-1", "GET, HEAD, DELETE"),
        (Method::DELETE, "/v1/members", "GET, HEAD"),
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::PATCH, "/v1/tests/t-1/summary", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let reply = send(server.addr, method.clone(), path, &[], Bytes::new()).await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(reply.header("allow"), allow);
        let (code, message) = reply.error();
        assert_eq!(code, "method_not_allowed");
        assert!(message.contains(&format!("use {allow}")), "{message}");
    }
    server.stop().await.expect("clean stop");
}

/// HEAD on every GET route answers as GET does (status, type, length) with
/// no body; it used to be 405.
#[tokio::test]
async fn head_is_answered_like_get_without_a_body() {
    let server = start().await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/members",
        "/v1/tests",
        "/v1/tests/t-1",
        "/v1/tests/t-404",
    ] {
        let got = get(server.addr, path).await;
        let head = send(server.addr, Method::HEAD, path, &[], Bytes::new()).await;
        assert_eq!(head.status, got.status, "{path}");
        assert_eq!(
            head.header("content-type"),
            got.header("content-type"),
            "{path}"
        );
        assert_eq!(
            head.header("content-length"),
            got.body.len().to_string(),
            "{path}"
        );
        assert!(head.body.is_empty(), "{path}: {:?}", head.body);
    }
    server.stop().await.expect("clean stop");
}

/// `GET /v1/tests` is the fleet's list; `?scope=local` the agent's own (what
/// agents ask each other); another scope is a 400 naming the choices.
#[tokio::test]
async fn the_test_list_scope_is_checked() {
    let server = start().await;
    for path in [
        "/v1/tests",
        "/v1/tests?scope=fleet",
        "/v1/tests?scope=local",
    ] {
        let reply = get(server.addr, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(reply.json()["tests"].is_array(), "{path}");
    }
    let reply = get(server.addr, "/v1/tests?scope=galaxy").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let (_, message) = reply.error();
    assert!(message.contains("scope=fleet or scope=local"), "{message}");
    server.stop().await.expect("clean stop");
}

/// Connections beyond `max_connections` get an immediate 503 and are
/// closed; once a connection ends, the next one is served.
#[tokio::test]
async fn connections_beyond_the_limit_get_503() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = support::start_with(volley::api::ApiConfig {
        max_connections: 2,
        ..support::config()
    })
    .await;
    // Two idle connections take both places (accepted in order).
    let first = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let second = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut third = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .ok();
    let mut reply = Vec::new();
    tokio::time::timeout(support::PATIENCE, third.read_to_end(&mut reply))
        .await
        .expect("the refusal comes at once")
        .ok();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
    assert!(
        reply.contains("maximum number of API connections"),
        "{reply}"
    );

    drop(first);
    drop(second);
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        let health = get(server.addr, "/healthz").await;
        if health.status == StatusCode::OK {
            break;
        }
        assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn h2c_clients_are_served_too() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let server = start().await;
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let request = http::Request::get(format!("http://{}/v1/tests/t-2", server.addr))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = tokio::time::timeout(support::PATIENCE, sender.send_request(request))
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["phase"], "passed");
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_stops_serving_and_frees_the_port() {
    let server = start().await;
    let addr = server.addr;
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
    server.stop().await.expect("clean stop");
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "still accepting after shutdown");
}

proptest::proptest! {
    /// Whatever ids, phases and states the agent reports, the exposition
    /// stays valid and its label values read back unchanged.
    #[test]
    fn prometheus_labels_survive_any_text(
        id in "\\PC{0,12}",
        phase in "[a-z\"\\\\\n{}=,]{1,10}",
        state in "\\PC{0,8}",
    ) {
        let mut snapshot = fake::prom_snapshot();
        snapshot.tests_by_phase = [(phase.clone(), 3)].into();
        snapshot.agent_state = state.clone();
        if let Some(test) = snapshot.share.as_mut() {
            test.test_id = id.clone();
        }
        let text = snapshot.render();
        let samples = parse_prometheus(&text).map_err(proptest::test_runner::TestCaseError::fail)?;
        let label = |name: &str, key: &str| {
            samples
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.labels.iter().find(|(k, _)| k == key))
                .map(|(_, v)| v.clone())
        };
        proptest::prop_assert_eq!(label("volley_tests", "phase"), Some(phase));
        proptest::prop_assert_eq!(label("volley_agent_state", "state"), Some(state));
        proptest::prop_assert_eq!(label("volley_test_vus", "test"), Some(id));
    }
}
