//! `ApiClient` against a real API server with the fake agent: every call,
//! and every kind of failure surfaced with the status and the agent's
//! message. The token never shows in an error.

use std::time::Duration;

use http::StatusCode;
use volley::api::{ApiClient, ApiConfig, ClientError, SecretToken, SubmitRequest};

use crate::fake::{self, Call, SubmitMode};
use crate::support::{self, TOKEN, start, start_with};

fn client(url: &str) -> ApiClient {
    let token = SecretToken::new(TOKEN).expect("token");
    ApiClient::new(url, Some(token)).expect("client")
}

/// The status and agent message of a refusal.
fn refusal(error: &ClientError) -> (StatusCode, Option<&str>, &str) {
    match error {
        ClientError::Status {
            status,
            code,
            message,
            ..
        } => (*status, code.as_deref(), message.as_str()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn every_call_round_trips() {
    let server = start().await;
    let api = client(&server.url());

    api.healthz().await.expect("healthz");
    assert!(api.readyz().await.expect("readyz"));
    server.agent.set_ready(false);
    assert!(!api.readyz().await.expect("readyz while draining"));

    let request = SubmitRequest {
        min_agents: Some(1),
        ..SubmitRequest::new("scenarios: {}")
    };
    let created = api.submit(&request).await.expect("submit");
    assert_eq!(created.id, "t-3");
    assert_eq!(created.allocation.len(), 2);
    assert_eq!(server.agent.submits(), vec![request]);

    let tests = api.list_tests().await.expect("list");
    assert_eq!(
        tests,
        vec![
            fake::brief("t-1").expect("t-1"),
            fake::brief("t-2").expect("t-2")
        ]
    );
    assert_eq!(
        api.get_test("t-1").await.expect("get"),
        fake::view("t-1").expect("t-1")
    );
    assert_eq!(
        api.get_summary("t-2").await.expect("summary"),
        fake::summary_view()
    );
    assert_eq!(
        api.get_summary_text("t-2").await.expect("summary text"),
        fake::summary_view().text
    );
    let aborted = api.abort("t-1").await.expect("abort");
    assert_eq!(aborted.id, "t-1");
    assert!(!aborted.already_ended);
    assert_eq!(api.members().await.expect("members"), fake::members());
    let metrics = api.metrics().await.expect("metrics");
    support::parse_prometheus(&metrics).expect("valid exposition");

    assert!(server.agent.calls().contains(&Call::Abort("t-1".into())));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn refusals_carry_status_code_and_message() {
    let server = start().await;
    let api = client(&server.url());

    let missing = api.get_test("t-404").await.expect_err("unknown id");
    let (status, code, message) = refusal(&missing);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code, Some("not_found"));
    assert_eq!(
        message,
        "no test \"t-404\" on this fleet (`volley tests` lists its tests)"
    );
    assert_eq!(missing.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(missing.code(), Some("not_found"));
    let shown = missing.to_string();
    assert!(shown.contains(&server.url()), "{shown}");
    assert!(shown.contains("404 Not Found"), "{shown}");
    assert!(shown.contains("GET /v1/tests/t-404"), "{shown}");
    assert!(shown.contains("volley tests"), "{shown}");

    let running = api.get_summary("t-1").await.expect_err("still running");
    assert_eq!(refusal(&running).0, StatusCode::CONFLICT);

    api.abort("t-1").await.expect("first abort");
    let again = api.abort("t-1").await.expect_err("second abort");
    let (status, code, message) = refusal(&again);
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code, Some("already_done"));
    assert!(message.contains("already was aborted at"), "{message}");

    server.agent.set_mode(SubmitMode::Busy);
    let busy = api
        .submit(&SubmitRequest::new("scenarios: {}"))
        .await
        .expect_err("busy fleet");
    assert!(busy.to_string().contains("busy with test t-1"), "{busy}");

    let empty = api
        .submit(&SubmitRequest::new("  "))
        .await
        .expect_err("empty plan");
    assert_eq!(refusal(&empty).0, StatusCode::BAD_REQUEST);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_token_never_shows_in_errors() {
    let server = start().await;
    let wrong_secret = "wrong-secret-0123456789";
    let wrong = ApiClient::new(
        &server.url(),
        Some(SecretToken::new(wrong_secret).expect("token")),
    )
    .expect("client");
    let error = wrong
        .submit(&SubmitRequest::new("scenarios: {}"))
        .await
        .expect_err("wrong token");
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{wrong:?}"),
    ] {
        assert!(!shown.contains(wrong_secret), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    let anonymous = ApiClient::new(&server.url(), None).expect("client");
    let error = anonymous.abort("t-1").await.expect_err("no token");
    let (status, _, message) = refusal(&error);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("missing bearer token"), "{message}");
    // Reads work without one.
    anonymous.list_tests().await.expect("reads are open");
    server.stop().await.expect("clean stop");

    let tokenless = start_with(ApiConfig::default()).await;
    let error = client(&tokenless.url())
        .submit(&SubmitRequest::new("scenarios: {}"))
        .await
        .expect_err("agent without a token file");
    assert!(
        error.to_string().contains("without an API token file"),
        "{error}"
    );
    assert!(!error.to_string().contains(TOKEN));
    tokenless.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_agent_that_is_not_there_is_named_with_the_reason() {
    // Bound, never listening: refused for the whole test, and no other test can take the port.
    let held = tokio::net::TcpSocket::new_v4().expect("socket");
    held.bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let addr = held.local_addr().expect("addr");
    let api = client(&format!("http://{addr}"));
    let error = api.healthz().await.expect_err("nothing listens");
    assert!(
        matches!(error, ClientError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("cannot reach agent at http://{addr}: connection refused")
    );
    assert_eq!(error.status(), None);
}

#[tokio::test]
async fn a_slow_agent_times_out_on_the_client_side() {
    let server = start().await;
    server.agent.set_mode(SubmitMode::Hang);
    let api = client(&server.url()).with_timeout(Duration::from_millis(200));
    let error = api
        .submit(&SubmitRequest::new("scenarios: {}"))
        .await
        .expect_err("hangs");
    assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
    assert!(
        error.to_string().contains("POST /v1/tests within 200ms"),
        "{error}"
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn answers_that_are_not_volley_errors_are_quoted() {
    // A proxy in front of a missing agent, say.
    let other = canned(StatusCode::BAD_GATEWAY, "upstream agent unavailable\n").await;
    let error = client(&other.url)
        .list_tests()
        .await
        .expect_err("not an agent");
    let (status, code, message) = refusal(&error);
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(code, None);
    assert_eq!(message, "upstream agent unavailable");

    let long = canned(StatusCode::INTERNAL_SERVER_ERROR, &"z".repeat(5000)).await;
    let error = client(&long.url).members().await.expect_err("500");
    let (_, _, message) = refusal(&error);
    assert!(message.len() < 300 && message.ends_with('…'), "{message}");
}

#[tokio::test]
async fn a_wrong_json_shape_is_a_decode_error() {
    let other = canned(StatusCode::OK, r#"{"unexpected": true}"#).await;
    let error = client(&other.url)
        .list_tests()
        .await
        .expect_err("no test list");
    assert!(matches!(error, ClientError::Decode { .. }), "{error:?}");
    assert_eq!(error.status(), Some(StatusCode::OK));
    assert!(
        error.to_string().contains("missing field `tests`"),
        "{error}"
    );
}

/// A server answering every request with `status` and `body`, alive for
/// the rest of the test's runtime.
struct Canned {
    url: String,
}

async fn canned(status: StatusCode, body: &str) -> Canned {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let body = Bytes::from(body.to_owned());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let body = body.clone();
            let service = service_fn(move |_request| {
                let mut response = http::Response::new(Full::new(body.clone()));
                *response.status_mut() = status;
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });
    Canned { url }
}
