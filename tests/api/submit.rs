//! `POST /v1/tests`: the JSON and raw-plan forms, bad bodies, the body
//! limit, the request timeout, and the agent's refusals passed through.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use volley::api::{ApiConfig, PlanFormat, SubmitRequest};

use crate::YAML_PLAN;
use crate::fake::SubmitMode;
use crate::support::{self, bearer, get, raw, send, start, start_with};

#[tokio::test]
async fn json_submit_creates_a_test() {
    let server = start().await;
    let request = SubmitRequest {
        env: [("BASE_URL".to_owned(), "http://127.0.0.1:1".to_owned())].into(),
        files: [("users.csv".to_owned(), "id\n1\n".to_owned())].into(),
        uploads: Default::default(),
        selector: [("region".to_owned(), "eu".to_owned())].into(),
        min_agents: Some(2),
        lead_time: Some("3s".into()),
        name: Some("soak".into()),
        ..SubmitRequest::new(YAML_PLAN)
    };
    let body = serde_json::to_vec(&request).expect("serialises");
    let auth = bearer();
    let reply = send(
        server.addr,
        Method::POST,
        "/v1/tests",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.header("location"), "/v1/tests/t-3");
    let json = reply.json();
    assert_eq!(json["id"], "t-3");
    assert_eq!(json["startsIn"], "2.0s");
    assert_eq!(json["allocation"][0]["share"], "2/3");
    assert_eq!(json["allocation"][0]["vus"], 20);
    assert!(json["allocation"][1].get("vus").is_none());
    assert_eq!(json["origin"], "node-a");
    assert_eq!(server.agent.submits(), vec![request]);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn raw_yaml_submit_takes_options_from_the_query() {
    let server = start().await;
    let auth = bearer();
    let query = "/v1/tests?selector=region=eu,pool=load&minAgents=2&leadTime=3s&env=K=V&env=K2=a%20b&name=x&format=yaml";
    for content_type in [
        "application/yaml",
        "text/yaml",
        "application/x-yaml",
        "text/plain",
    ] {
        let reply = send(
            server.addr,
            Method::POST,
            query,
            &[("content-type", content_type), ("authorization", &auth)],
            YAML_PLAN,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{content_type}: {}",
            reply.text()
        );
    }
    let submits = server.agent.submits();
    assert_eq!(submits.len(), 4);
    let expected = SubmitRequest {
        format: Some(PlanFormat::Yaml),
        env: [("K".into(), "V".into()), ("K2".into(), "a b".into())].into(),
        selector: [
            ("region".into(), "eu".into()),
            ("pool".into(), "load".into()),
        ]
        .into(),
        min_agents: Some(2),
        lead_time: Some("3s".into()),
        name: Some("x".into()),
        ..SubmitRequest::new(YAML_PLAN)
    };
    assert!(submits.iter().all(|s| *s == expected), "{submits:#?}");

    let bad = send(
        server.addr,
        Method::POST,
        "/v1/tests?minAgents=many",
        &[("content-type", "text/plain"), ("authorization", &auth)],
        YAML_PLAN,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().1.contains("minAgents=\"many\""));
    assert_eq!(
        server.agent.submits().len(),
        4,
        "a bad request never reaches the agent"
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_json_is_a_400_with_the_position() {
    let server = start().await;
    let auth = bearer();
    let cases: [(&[u8], &str); 3] = [
        (b"{\"plan\": \"x\",\n \"minAgents\": \"2\"}", "at minAgents"),
        (b"{\"plan\": \"x\",", "line 1 column 13"),
        (
            b"{\"plan\": \"x\", \"selecter\": {}}",
            "unknown field `selecter`",
        ),
    ];
    for (body, expected) in cases {
        let reply = send(
            server.addr,
            Method::POST,
            "/v1/tests",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            Bytes::from_static(body),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let (code, message) = reply.error();
        assert_eq!(code, "bad_request");
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("line "), "{message}");
    }
    let form = send(
        server.addr,
        Method::POST,
        "/v1/tests",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &auth),
        ],
        YAML_PLAN,
    )
    .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(server.agent.submits().is_empty());
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_with_or_without_content_length() {
    let server = start_with(ApiConfig {
        max_body: 1024,
        ..support::config()
    })
    .await;
    let auth = bearer();
    let big = "x".repeat(4096);
    let declared = send(
        server.addr,
        Method::POST,
        "/v1/tests",
        &[("authorization", &auth), ("content-type", "text/plain")],
        big.clone(),
    )
    .await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(declared.header("connection"), "close");
    let (code, message) = declared.error();
    assert_eq!(code, "payload_too_large");
    assert!(message.contains("1024-byte limit"), "{message}");

    // Chunked: no Content-Length, so the limit is enforced while reading.
    let mut request = format!(
        "POST /v1/tests HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..4 {
        request.extend_from_slice(format!("{:x}\r\n{}\r\n", 600, "y".repeat(600)).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(server.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // At the limit is fine.
    let plan = format!("{YAML_PLAN}{}", "#".repeat(1024 - YAML_PLAN.len()));
    let fits = send(
        server.addr,
        Method::POST,
        "/v1/tests",
        &[("authorization", &auth), ("content-type", "text/plain")],
        plan,
    )
    .await;
    assert_eq!(fits.status, StatusCode::CREATED);
    assert_eq!(server.agent.submits().len(), 1);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn agent_refusals_keep_their_status_and_message() {
    let server = start().await;
    let auth = bearer();
    let cases = [
        (
            SubmitMode::Busy,
            StatusCode::CONFLICT,
            "conflict",
            "busy with test t-1",
        ),
        (
            SubmitMode::TooFewAgents,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            "minAgents is 3",
        ),
        (
            SubmitMode::Draining,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "draining",
        ),
        (
            SubmitMode::Panic,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "its log has the details",
        ),
    ];
    for (mode, status, expected_code, expected_message) in cases {
        server.agent.set_mode(mode);
        let reply = send(
            server.addr,
            Method::POST,
            "/v1/tests",
            &[("authorization", &auth), ("content-type", "text/plain")],
            YAML_PLAN,
        )
        .await;
        assert_eq!(reply.status, status, "{mode:?}");
        let (code, message) = reply.error();
        assert_eq!(code, expected_code);
        assert!(message.contains(expected_message), "{mode:?}: {message}");
    }
    // A panicking agent call cost one request, not the server.
    assert_eq!(get(server.addr, "/healthz").await.status, StatusCode::OK);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn slow_agents_and_slow_senders_hit_the_request_timeout() {
    let server = start_with(ApiConfig {
        request_timeout: Duration::from_millis(300),
        ..support::config()
    })
    .await;
    let auth = bearer();
    server.agent.set_mode(SubmitMode::Hang);
    let reply = send(
        server.addr,
        Method::POST,
        "/v1/tests",
        &[("authorization", &auth), ("content-type", "text/plain")],
        YAML_PLAN,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.error().1.contains("did not answer within 300ms"));

    // Announces 100 bytes, sends 10, then waits.
    let request = format!(
        "POST /v1/tests HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n0123456789"
    );
    let answer = raw(server.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    server.stop().await.expect("clean stop");
}
