//! Bearer-token auth of the mutating endpoints, and aborts.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use volley::api::ApiConfig;

use crate::YAML_PLAN;
use crate::fake::{self, Call};
use crate::support::{TOKEN, bearer, get, send, start, start_with};

#[tokio::test]
async fn mutating_endpoints_need_the_token() {
    let server = start().await;
    let wrong = "Bearer not-the-token-at-all";
    let attempts: [(&[(&str, &str)], &str); 3] = [
        (&[], "missing bearer token"),
        (&[("authorization", wrong)], "wrong bearer token"),
        (
            &[("authorization", "Basic dXNlcjpwYXNz")],
            "not of the form `Bearer <token>`",
        ),
    ];
    for (headers, expected) in attempts {
        for (method, path) in [
            (Method::POST, "/v1/tests"),
            (Method::DELETE, "/v1/tests/t-1"),
        ] {
            let reply = send(server.addr, method.clone(), path, headers, YAML_PLAN).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {headers:?}"
            );
            assert_eq!(reply.header("www-authenticate"), "Bearer");
            let (code, message) = reply.error();
            assert_eq!(code, "unauthorized");
            assert!(message.contains(expected), "{message}");
            assert!(!reply.text().contains("not-the-token"), "sent token echoed");
            assert!(!reply.text().contains(TOKEN), "configured token leaked");
        }
    }
    assert!(
        !server
            .agent
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Submit(_) | Call::Abort(_))),
        "refused requests never reach the agent"
    );

    let auth = bearer();
    let ok = send(
        server.addr,
        Method::POST,
        "/v1/tests",
        &[("authorization", &auth), ("content-type", "text/plain")],
        YAML_PLAN,
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert!(!ok.text().contains(TOKEN));
    // Reads need no token.
    assert_eq!(get(server.addr, "/v1/tests").await.status, StatusCode::OK);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn without_a_token_file_mutations_are_refused_unless_allowed() {
    let server = start_with(ApiConfig::default()).await;
    let auth = bearer();
    let reply = send(
        server.addr,
        Method::POST,
        "/v1/tests",
        &[("authorization", &auth), ("content-type", "text/plain")],
        YAML_PLAN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let (_, message) = reply.error();
    assert!(
        message.contains("runs without an API token file"),
        "{message}"
    );
    assert!(server.agent.submits().is_empty());
    assert_eq!(
        get(server.addr, "/v1/tests/t-1").await.status,
        StatusCode::OK
    );
    server.stop().await.expect("clean stop");

    let open = start_with(ApiConfig {
        allow_unauthenticated: true,
        ..ApiConfig::default()
    })
    .await;
    let created = send(
        open.addr,
        Method::POST,
        "/v1/tests",
        &[("content-type", "text/plain")],
        YAML_PLAN,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let aborted = send(
        open.addr,
        Method::DELETE,
        "/v1/tests/t-1",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(aborted.status, StatusCode::OK);
    open.stop().await.expect("clean stop");
}

#[tokio::test]
async fn abort_then_abort_again() {
    let server = start().await;
    let auth = bearer();
    let headers = [("authorization", auth.as_str())];
    let first = send(
        server.addr,
        Method::DELETE,
        "/v1/tests/t-1",
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.json(),
        json!({"id": "t-1", "abortedAtUnixMs": fake::T1_START + 90_000, "alreadyEnded": false})
    );
    let second = send(
        server.addr,
        Method::DELETE,
        "/v1/tests/t-1",
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    let (code, message) = second.error();
    assert_eq!(code, "already_done");
    assert_eq!(
        message,
        "test \"t-1\" already was aborted at 2025-03-01T12:01:30.000Z"
    );
    let ended = send(
        server.addr,
        Method::DELETE,
        "/v1/tests/t-2",
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(ended.status, StatusCode::CONFLICT);
    assert!(ended.error().1.contains("already ended at"));
    let unknown = send(
        server.addr,
        Method::DELETE,
        "/v1/tests/t-9",
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    server.stop().await.expect("clean stop");
}
