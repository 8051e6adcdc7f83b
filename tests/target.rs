//! Loopback tests of the built-in target (`volley::target`): every route over
//! HTTP/1.1, h2c (prior knowledge) and TLS with ALPN `h2` and `http/1.1`, plus
//! limits, statistics, robustness against bad clients and shutdown.
//!
//! Clients are hyper's per-connection `conn` API so each test controls which
//! protocol and which connection a request uses.

#[path = "target/client.rs"]
mod client;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};
use volley::target::{self, BYTES_PATTERN, Route, TargetConfig, TargetError, TargetStats};

use client::{
    Conn, PATIENCE, PROTOCOLS, Proto, connect, eventually, get, header, loopback, request, start,
    start_with, tls_connector,
};

#[tokio::test]
async fn root_and_not_found_on_every_protocol() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let root = get(&target, proto, "/").await;
        assert_eq!(root.status, StatusCode::OK, "{proto:?}");
        assert_eq!(root.body, "Volley target\n", "{proto:?}");
        assert_eq!(header(&root, "server"), "volley-target");
        assert!(header(&root, "content-type").starts_with("text/plain"));

        for path in ["/nope", "/bytes", "/json/extra"] {
            let reply = get(&target, proto, path).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{proto:?} {path}");
            assert!(String::from_utf8_lossy(&reply.body).contains("/bytes/N"));
        }
        assert_eq!(target.stats.route(Route::NotFound), 3);
        target.shutdown().await;
    }
}

#[tokio::test]
async fn bytes_have_the_asked_length_and_the_pattern() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        for len in [0usize, 1, 63, 64, 100_000] {
            let reply = get(&target, proto, &format!("/bytes/{len}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{proto:?} {len}");
            assert_eq!(reply.body.len(), len, "{proto:?}");
            // h2 ends an empty body with END_STREAM on the headers, without a length.
            if len > 0 || !proto.h2() {
                assert_eq!(
                    header(&reply, "content-length"),
                    len.to_string(),
                    "{proto:?}"
                );
            }
            for (i, byte) in reply.body.iter().enumerate() {
                assert_eq!(*byte, BYTES_PATTERN[i % BYTES_PATTERN.len()], "byte {i}");
            }
        }
        assert_eq!(target.stats.bytes_out(), 100_128);
        target.shutdown().await;
    }
}

#[tokio::test]
async fn bytes_beyond_the_limit_or_malformed_are_rejected() {
    let config = TargetConfig {
        max_bytes: 10,
        ..TargetConfig::default()
    };
    let target = start_with(Proto::H1, config).await;
    assert_eq!(get(&target, Proto::H1, "/bytes/10").await.body.len(), 10);
    for path in ["/bytes/11", "/bytes/-1", "/bytes/1k", "/bytes/"] {
        let reply = get(&target, Proto::H1, path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        let message = String::from_utf8_lossy(&reply.body);
        assert!(
            message.contains(path) && message.contains("0 to 10"),
            "{message}"
        );
    }
    target.shutdown().await;

    let target = start(Proto::H2c).await;
    let reply = get(&target, Proto::H2c, "/bytes/67108865").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&reply.body).contains("67108864"));
    target.shutdown().await;
}

#[tokio::test]
async fn delay_waits_at_least_the_asked_time() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let mut conn = connect(&target, proto).await;
        let started = Instant::now();
        let reply = conn
            .fetch(request(&target, Method::GET, "/delay/150", Bytes::new()))
            .await;
        let elapsed = started.elapsed();
        assert_eq!(reply.status, StatusCode::OK, "{proto:?}");
        assert!(
            elapsed >= Duration::from_millis(150),
            "{proto:?} took {elapsed:?}"
        );
        assert!(elapsed < PATIENCE, "{proto:?} took {elapsed:?}");
        target.shutdown().await;
    }
}

#[tokio::test]
async fn added_latency_holds_every_answer_and_adds_to_delay() {
    let config = TargetConfig {
        added_latency: Duration::from_millis(40),
        ..TargetConfig::default()
    };
    for proto in PROTOCOLS {
        let target = start_with(proto, config.clone()).await;
        let mut conn = connect(&target, proto).await;
        for (path, at_least) in [("/", 40), ("/json", 40), ("/delay/30", 70)] {
            let started = Instant::now();
            let reply = conn
                .fetch(request(&target, Method::GET, path, Bytes::new()))
                .await;
            let elapsed = started.elapsed();
            assert_eq!(reply.status, StatusCode::OK, "{proto:?} {path}");
            assert!(
                elapsed >= Duration::from_millis(at_least),
                "{proto:?} {path} took {elapsed:?}"
            );
            assert!(elapsed < PATIENCE, "{proto:?} {path} took {elapsed:?}");
        }
        target.shutdown().await;
    }
}

#[tokio::test]
async fn delay_beyond_the_limit_is_rejected() {
    let config = TargetConfig {
        max_delay: Duration::from_millis(100),
        ..TargetConfig::default()
    };
    let target = start_with(Proto::H1, config).await;
    assert_eq!(
        get(&target, Proto::H1, "/delay/100").await.status,
        StatusCode::OK
    );
    for path in ["/delay/101", "/delay/1.5", "/delay/"] {
        let reply = get(&target, Proto::H1, path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(String::from_utf8_lossy(&reply.body).contains("0 to 100"));
    }
    assert_eq!(target.stats.route(Route::Delay), 4);
    target.shutdown().await;
}

#[tokio::test]
async fn status_answers_with_the_asked_code() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let mut conn = connect(&target, proto).await;
        for code in [200u16, 201, 204, 302, 404, 418, 500, 503, 599] {
            let path = format!("/status/{code}");
            let reply = conn
                .fetch(request(&target, Method::POST, &path, Bytes::new()))
                .await;
            assert_eq!(reply.status.as_u16(), code, "{proto:?}");
            if code == 204 {
                assert!(reply.body.is_empty());
            } else {
                assert!(
                    reply.body.starts_with(code.to_string().as_bytes()),
                    "{proto:?}"
                );
            }
        }
        for bad in ["100", "101", "199", "600", "abc"] {
            let path = format!("/status/{bad}");
            let reply = conn
                .fetch(request(&target, Method::GET, &path, Bytes::new()))
                .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{proto:?} {bad}");
            assert!(String::from_utf8_lossy(&reply.body).contains("200 to 599"));
        }
        target.shutdown().await;
    }
}

#[tokio::test]
async fn json_document_carries_a_fresh_token() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let reply = get(&target, proto, "/json").await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(header(&reply, "content-type"), "application/json");
            let doc: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
            assert_eq!(doc["id"], 42);
            assert_eq!(doc["name"], "volley");
            assert_eq!(doc["items"].as_array().map(Vec::len), Some(2));
            assert_eq!(doc["ok"], true);
            let token = doc["token"].as_str().expect("token string").to_owned();
            assert!(token.starts_with("tok-"), "{token}");
            tokens.push(token);
        }
        assert_ne!(tokens[0], tokens[1], "{proto:?}");
        target.shutdown().await;
    }
}

#[tokio::test]
async fn echo_returns_body_content_type_and_method() {
    let large: Bytes = (0..1_048_576u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let mut conn = connect(&target, proto).await;
        let cases = [
            (
                Method::POST,
                Bytes::from_static(b"{\"a\":1}"),
                Some("application/json"),
            ),
            (Method::PUT, large.clone(), Some("application/octet-stream")),
            (Method::PATCH, Bytes::from_static(b"x"), None),
            (Method::GET, Bytes::new(), None),
        ];
        for (method, body, content_type) in cases {
            let mut req = request(&target, method.clone(), "/echo", body.clone());
            if let Some(ct) = content_type {
                req.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    ct.parse().expect("header value"),
                );
            }
            let reply = conn.fetch(req).await;
            assert_eq!(reply.status, StatusCode::OK, "{proto:?} {method}");
            assert_eq!(reply.body, body, "{proto:?} {method}");
            assert_eq!(header(&reply, "x-echo-method"), method.as_str());
            assert_eq!(header(&reply, "content-type"), content_type.unwrap_or(""));
        }
        assert_eq!(target.stats.route(Route::Echo), 4);
        target.shutdown().await;
    }
}

#[tokio::test]
async fn headers_route_lists_the_request_headers() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let mut conn = connect(&target, proto).await;
        let mut req = request(&target, Method::GET, "/headers", Bytes::new());
        req.headers_mut()
            .insert("x-volley-test", "abc".parse().expect("value"));
        req.headers_mut()
            .append("x-twice", "1".parse().expect("value"));
        req.headers_mut()
            .append("x-twice", "2".parse().expect("value"));
        let reply = conn.fetch(req).await;
        assert_eq!(reply.status, StatusCode::OK);
        let doc: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
        assert_eq!(doc["x-volley-test"], "abc", "{proto:?} {doc}");
        assert_eq!(doc["x-twice"], "1, 2", "{proto:?} {doc}");
        target.shutdown().await;
    }
}

#[tokio::test]
async fn raw_http1_header_names_come_back_lowercase() {
    let target = start(Proto::H1).await;
    let mut tcp = TcpStream::connect(target.addr).await.expect("connect");
    tcp.write_all(
        b"GET /headers HTTP/1.1\r\nHost: t\r\nX-Mixed-Case: Yes\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write request");
    let mut raw = Vec::new();
    timeout(PATIENCE, tcp.read_to_end(&mut raw))
        .await
        .expect("in time")
        .expect("read");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let doc: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(doc["x-mixed-case"], "Yes", "{doc}");
    assert_eq!(doc["host"], "t");
    target.shutdown().await;
}

#[tokio::test]
async fn stall_never_answers() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let mut conn = connect(&target, proto).await;
        let req = request(&target, Method::GET, "/stall", Bytes::new());
        // Sent from a task of its own, so the request goes out however long the target takes
        // to route it on a busy machine (a client that gives up first never sends it), and
        // waited for from the moment the target has it.
        let mut stalled = tokio::spawn(async move { conn.send(req).await.map(|r| r.status()) });
        let stats = Arc::clone(&target.stats);
        eventually("the stall to be routed", || stats.route(Route::Stall) == 1).await;
        let waited = timeout(Duration::from_millis(300), &mut stalled).await;
        assert!(waited.is_err(), "{proto:?}: /stall answered: {waited:?}");
        assert_eq!(target.stats.route(Route::Stall), 1, "{proto:?}");
        stalled.abort();
        target.shutdown().await;
    }
}

#[tokio::test]
async fn drop_closes_mid_response() {
    for proto in PROTOCOLS {
        let target = start(proto).await;
        let mut conn = connect(&target, proto).await;
        let req = request(&target, Method::GET, "/drop", Bytes::new());
        let response = timeout(PATIENCE, conn.send(req))
            .await
            .expect("head in time");
        let response = response.expect("the head arrives before the abort");
        assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
        assert_eq!(response.headers()["content-length"], "4096", "{proto:?}");
        let body = timeout(PATIENCE, response.into_body().collect())
            .await
            .expect("in time");
        assert!(body.is_err(), "{proto:?}: body completed despite the abort");

        // The target itself is unharmed.
        assert_eq!(get(&target, proto, "/").await.status, StatusCode::OK);
        assert_eq!(target.stats.route(Route::Drop), 1);
        target.shutdown().await;
    }
}

#[tokio::test]
async fn stats_count_requests_routes_and_connections() {
    let target = start(Proto::H1).await;
    let mut conn = connect(&target, Proto::H1).await;
    for path in ["/", "/json", "/json", "/status/500", "/nope"] {
        conn.fetch(request(&target, Method::GET, path, Bytes::new()))
            .await;
    }
    get(&target, Proto::H1, "/bytes/10").await;

    let stats: &TargetStats = &target.stats;
    assert_eq!(stats.requests(), 6);
    assert_eq!(stats.route(Route::Root), 1);
    assert_eq!(stats.route(Route::Json), 2);
    assert_eq!(stats.route(Route::Status), 1);
    assert_eq!(stats.route(Route::NotFound), 1);
    assert_eq!(stats.route(Route::Bytes), 1);
    assert_eq!(stats.route(Route::Echo), 0);
    assert_eq!(
        stats.connections(),
        2,
        "keep-alive reuses the first connection"
    );
    target.shutdown().await;
}

#[tokio::test]
async fn h2_multiplexes_streams_on_one_connection() {
    let target = start(Proto::H2c).await;
    let Conn::H2(sender) = connect(&target, Proto::H2c).await else {
        unreachable!("H2c connects with h2");
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut conn = Conn::H2(sender.clone());
        let req = request(&target, Method::GET, "/delay/50", Bytes::new());
        tasks.spawn(async move { conn.fetch(req).await.status });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("task"), StatusCode::OK);
    }
    assert_eq!(target.stats.route(Route::Delay), 8);
    assert_eq!(target.stats.connections(), 1);
    target.shutdown().await;
}

#[tokio::test]
async fn bad_clients_do_not_stop_the_server() {
    let plain = start(Proto::H1).await;
    for junk in [
        &b"\x00\x01garbage\r\n\r\n"[..],
        b"GET /delay/10 HTTP/1.1\r\nHo",
        b"",
    ] {
        let mut tcp = TcpStream::connect(plain.addr).await.expect("connect");
        tcp.write_all(junk).await.expect("write");
        drop(tcp);
    }
    // A client that gives up on a stalled request.
    let mut conn = connect(&plain, Proto::H1).await;
    let req = request(&plain, Method::GET, "/stall", Bytes::new());
    assert!(
        timeout(Duration::from_millis(50), conn.send(req))
            .await
            .is_err()
    );
    drop(conn);
    for proto in [Proto::H1, Proto::H2c] {
        assert_eq!(get(&plain, proto, "/").await.status, StatusCode::OK);
    }
    plain.shutdown().await;

    // Cleartext HTTP against the TLS target fails its handshake, nothing more.
    let tls = start(Proto::TlsH2).await;
    let mut tcp = TcpStream::connect(tls.addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut sink = Vec::new();
    let _ = timeout(PATIENCE, tcp.read_to_end(&mut sink))
        .await
        .expect("server closes");
    for proto in [Proto::TlsH1, Proto::TlsH2] {
        assert_eq!(get(&tls, proto, "/").await.status, StatusCode::OK);
    }
    assert_eq!(tls.stats.connections(), 3);
    tls.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_stalled_requests_and_the_port() {
    for proto in [Proto::H1, Proto::TlsH2] {
        let target = start(proto).await;
        let addr = target.addr;
        let mut conn = connect(&target, proto).await;
        let req = request(&target, Method::GET, "/stall", Bytes::new());
        let stalled = tokio::spawn(async move { conn.send(req).await.map(|r| r.status()) });
        let stats = Arc::clone(&target.stats);
        eventually("the stall to be routed", || stats.route(Route::Stall) == 1).await;

        let started = Instant::now();
        timeout(PATIENCE, target.shutdown())
            .await
            .expect("shutdown in time");
        // Released by the stop signal, not by the 2 s grace period running out.
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{proto:?}: shutdown took {took:?}"
        );
        let outcome = timeout(PATIENCE, stalled)
            .await
            .expect("released")
            .expect("task");
        assert!(outcome.is_err(), "{proto:?}: /stall answered {outcome:?}");

        assert!(
            TcpStream::connect(addr).await.is_err(),
            "{proto:?}: still accepting"
        );
        TcpListener::bind(addr).await.expect("port is free again");
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    for proto in [Proto::H1, Proto::H2c] {
        let target = start(proto).await;
        let mut conn = connect(&target, proto).await;
        let req = request(&target, Method::GET, "/delay/300", Bytes::new());
        let in_flight = tokio::spawn(async move { conn.fetch(req).await });
        let stats = Arc::clone(&target.stats);
        eventually("the delay to be routed", || stats.route(Route::Delay) == 1).await;

        timeout(PATIENCE, target.shutdown())
            .await
            .expect("shutdown in time");
        let reply = timeout(PATIENCE, in_flight)
            .await
            .expect("in time")
            .expect("task");
        assert_eq!(reply.status, StatusCode::OK, "{proto:?}");
        assert_eq!(reply.body, "delayed\n");
    }
}

#[tokio::test]
async fn raw_http1_drop_sends_part_of_the_announced_body() {
    let target = start(Proto::H1).await;
    let mut tcp = TcpStream::connect(target.addr).await.expect("connect");
    tcp.write_all(b"GET /drop HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    // The server closes the connection; a reset instead of a FIN is fine too.
    let _ = timeout(PATIENCE, tcp.read_to_end(&mut raw))
        .await
        .expect("closed in time");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-length: 4096"), "{head}");
    let body = &raw[split + 4..];
    assert_eq!(body.len(), 1024, "part of the body, then the close");
    assert_eq!(&body[..64], BYTES_PATTERN);
    target.shutdown().await;
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let target = start(Proto::H1).await;
    let addr = target.addr;
    drop(target);
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "server still accepting after the handle was dropped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn serve_runs_on_a_given_listener_until_shutdown() {
    let listener = TcpListener::bind(loopback()).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(TargetStats::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(target::serve(
        listener,
        TargetConfig::default(),
        Arc::clone(&stats),
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /status/202 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    timeout(PATIENCE, tcp.read_to_end(&mut raw))
        .await
        .expect("in time")
        .expect("read");
    assert!(
        raw.starts_with(b"HTTP/1.1 202 Accepted\r\n"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(stats.route(Route::Status), 1);

    stop_tx.send(()).expect("server still running");
    let result = timeout(PATIENCE, server)
        .await
        .expect("stops in time")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn startup_errors_name_the_problem() {
    let config = TargetConfig {
        tls: true,
        tls_names: vec!["not a name".to_owned()],
        ..TargetConfig::default()
    };
    let err = target::spawn(loopback(), config)
        .await
        .expect_err("bad TLS name");
    assert!(
        matches!(&err, TargetError::TlsName { name, .. } if name == "not a name"),
        "{err:?}"
    );

    let taken = TcpListener::bind(loopback()).await.expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = target::spawn(addr, TargetConfig::default())
        .await
        .expect_err("port taken");
    assert!(
        matches!(&err, TargetError::Bind { addr: a, .. } if *a == addr),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn tls_certificate_covers_extra_names() {
    let config = TargetConfig {
        tls: true,
        tls_names: vec!["target.volley.test".to_owned()],
        ..TargetConfig::default()
    };
    let target = target::spawn(loopback(), config).await.expect("start");
    let ca_pem = target.ca_pem.as_deref().expect("certificate");
    let tcp = TcpStream::connect(target.addr).await.expect("connect");
    let name = ServerName::try_from("target.volley.test").expect("name");
    let tls = tls_connector(ca_pem, b"h2").connect(name, tcp).await;
    assert!(tls.is_ok(), "{:?}", tls.err());
    target.shutdown().await;
}

/// The kernel's count of connections dropped because a listen queue was
/// full (`TcpExt: ListenOverflows`).
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// 2000 clients connecting at once, as VUs do at a test's start: every
/// connection is accepted and answered, and the kernel drops none of them
/// (with a backlog of 128 it dropped thousands of SYNs here, each retried
/// a second later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_simultaneous_connections_are_not_dropped() {
    let t = target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .unwrap();
    let before = listen_overflows();
    let clients = (0..2000).map(|_| {
        let addr = t.addr;
        tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await?;
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).await?;
            Ok::<_, std::io::Error>(reply.starts_with(b"HTTP/1.1 200"))
        })
    });
    let answered = timeout(Duration::from_secs(60), futures::future::join_all(clients))
        .await
        .expect("2000 connections are answered within a minute");
    let ok = answered
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(true))))
        .count();
    assert_eq!(ok, 2000);
    if let (Some(before), Some(after)) = (before, listen_overflows()) {
        assert_eq!(after - before, 0, "the kernel dropped connections");
    }
    assert_eq!(t.stats.requests(), 2000);
}
