//! The engine's HTTP client against small loopback servers: connection
//! reuse, framing, the keep-alive race, failures and their classes, TLS,
//! HTTP/2 and timings.

#[path = "http_client/servers.rs"]
mod servers;

#[path = "http_client/failures.rs"]
mod failures;

#[path = "http_client/secure_and_h2.rs"]
mod secure_and_h2;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderName, Method};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use volley::engine::http::{HttpClientConfig, OutRequest, Response, VuClient};
use volley::metrics::ErrorKind;
use volley::plan::HttpOptions;

use servers::{RequestReader, SeenRequest, Server};

fn options() -> HttpOptions {
    HttpOptions {
        user_agent: "volley-test/1".into(),
        timeout: Duration::from_secs(10),
        ..HttpOptions::default()
    }
}

fn client_with(opts: &HttpOptions) -> VuClient {
    VuClient::new(Arc::new(HttpClientConfig::new(opts).unwrap()))
}

fn client() -> VuClient {
    client_with(&options())
}

fn request<'a>(method: &'a Method, url: &'a str) -> OutRequest<'a> {
    OutRequest {
        method,
        url,
        headers: &[],
        body: &[],
        timeout: Duration::from_secs(10),
        keep_body: true,
        keep_headers: true,
    }
}

async fn get(client: &mut VuClient, url: &str) -> Response {
    let mut out = Response::default();
    client.send(&request(&Method::GET, url), &mut out).await;
    out
}

fn assert_ok(out: &Response) {
    assert_eq!(out.error, None, "unexpected failure: {:?}", out.failure);
}

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = Server::keep_alive(HELLO).await;
    let mut client = client();
    let url = server.url("/hello");
    let mut out = Response::default();
    for i in 0..20 {
        client.send(&request(&Method::GET, &url), &mut out).await;
        assert_ok(&out);
        assert_eq!(out.status, 200);
        assert_eq!(out.body, b"hello");
        assert_eq!(out.header("content-type"), Some("text/plain"));
        assert_eq!(out.reused, i > 0, "request {i}");
        assert_eq!(out.bytes_received, HELLO.len() as u64);
        assert_eq!(out.http_version, http::Version::HTTP_11);
    }
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn request_head_and_body_reach_the_server() {
    let seen = Arc::new(Mutex::new(Vec::<SeenRequest>::new()));
    let record = Arc::clone(&seen);
    let server = Server::raw(move |mut stream, _| {
        let record = Arc::clone(&record);
        async move {
            let mut reader = RequestReader::default();
            while let Some(req) = reader.next(&mut stream).await {
                record.lock().unwrap().push(req);
                let _ = stream
                    .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        }
    })
    .await;
    let mut client = client();
    let url = server.url("/items?kind=a b");
    let headers = vec![
        (HeaderName::from_static("x-trace"), "t-1".to_string()),
        (http::header::CONTENT_TYPE, "application/json".to_string()),
    ];
    let body = br#"{"id":7}"#;
    let req = OutRequest {
        headers: &headers,
        body,
        keep_headers: false,
        ..request(&Method::POST, &url)
    };
    let mut out = Response::default();
    client.send(&req, &mut out).await;
    assert_ok(&out);
    assert_eq!(out.status, 201);
    assert!(out.headers.is_empty(), "keep_headers=false copies nothing");
    let seen = seen.lock().unwrap();
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/items?kind=a%20b");
    assert_eq!(req.header("host"), Some(server.addr.to_string().as_str()));
    assert_eq!(req.header("user-agent"), Some("volley-test/1"));
    assert_eq!(req.header("x-trace"), Some("t-1"));
    assert_eq!(req.header("content-length"), Some("8"));
    assert_eq!(req.body, body);
    assert_eq!(out.bytes_sent, req.wire_len as u64);
}

#[tokio::test]
async fn no_connection_reuse_dials_every_time() {
    let seen_close = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen_close);
    let server = Server::raw(move |mut stream, _| {
        let record = Arc::clone(&record);
        async move {
            let mut reader = RequestReader::default();
            while let Some(req) = reader.next(&mut stream).await {
                record
                    .lock()
                    .unwrap()
                    .push(req.header("connection").map(str::to_owned));
                let _ = stream.write_all(HELLO).await;
            }
        }
    })
    .await;
    let mut client = client_with(&HttpOptions {
        no_connection_reuse: true,
        ..options()
    });
    let url = server.url("/");
    for _ in 0..5 {
        let out = get(&mut client, &url).await;
        assert_ok(&out);
        assert!(!out.reused);
        assert!(out.timings.connecting > Duration::ZERO);
    }
    assert_eq!(server.accepts(), 5);
    assert!(
        seen_close
            .lock()
            .unwrap()
            .iter()
            .all(|c| c.as_deref() == Some("close"))
    );
}

#[tokio::test]
async fn connection_close_response_is_not_reused() {
    let server = Server::raw(|mut stream, _| async move {
        let mut reader = RequestReader::default();
        if reader.next(&mut stream).await.is_some() {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }
        // Keep the socket open: the client must not reuse it anyway.
        let _ = reader.next(&mut stream).await;
    })
    .await;
    let mut client = client();
    let url = server.url("/");
    for _ in 0..3 {
        let out = get(&mut client, &url).await;
        assert_ok(&out);
        assert_eq!(out.body, b"ok");
        assert!(!out.reused);
    }
    assert_eq!(server.accepts(), 3);
}

#[tokio::test]
async fn http10_and_read_to_close_bodies() {
    let server = Server::raw(|mut stream, _| async move {
        let mut reader = RequestReader::default();
        if reader.next(&mut stream).await.is_some() {
            let _ = stream
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
                .await;
        }
    })
    .await;
    let mut client = client();
    let out = get(&mut client, &server.url("/")).await;
    assert_ok(&out);
    assert_eq!(out.http_version, http::Version::HTTP_10);
    assert_eq!(out.body, b"until the end");
    let again = get(&mut client, &server.url("/")).await;
    assert_ok(&again);
    assert!(!again.reused);
    assert_eq!(server.accepts(), 2);
}

#[tokio::test]
async fn chunked_body_split_across_reads() {
    let server = Server::raw(|mut stream, _| async move {
        let mut reader = RequestReader::default();
        while reader.next(&mut stream).await.is_some() {
            let pieces: [&[u8]; 6] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
                b"lo\r",
                b"\n7\r\n, world\r\n",
                b"0\r\nX-Trailer: ",
                b"yes\r\n",
                b"\r\n",
            ];
            for piece in pieces {
                if stream.write_all(piece).await.is_err() {
                    return;
                }
                // Pace the pieces so they arrive in separate reads.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
    })
    .await;
    let mut client = client();
    let url = server.url("/chunks");
    for i in 0..2 {
        let out = get(&mut client, &url).await;
        assert_ok(&out);
        assert_eq!(out.body, b"hello, world", "request {i}");
        assert_eq!(out.reused, i == 1);
    }
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn large_content_length_body() {
    const SIZE: usize = 1 << 20;
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n").into_bytes();
    let head_len = response.len();
    response.extend_from_slice(&body);
    let response: &'static [u8] = Box::leak(response.into_boxed_slice());
    let server = Server::keep_alive(response).await;
    let mut client = client();
    let url = server.url("/big");
    let out = get(&mut client, &url).await;
    assert_ok(&out);
    assert_eq!(out.body.len(), SIZE);
    assert!(out.body == body, "body bytes differ");
    let mut discarded = Response::default();
    client
        .send(
            &OutRequest {
                keep_body: false,
                ..request(&Method::GET, &url)
            },
            &mut discarded,
        )
        .await;
    assert_ok(&discarded);
    assert!(discarded.body.is_empty());
    assert_eq!(discarded.bytes_received, (head_len + SIZE) as u64);
    assert!(discarded.reused);
}

#[tokio::test]
async fn bodiless_responses_keep_the_connection() {
    let server = Server::raw(|mut stream, _| async move {
        let mut reader = RequestReader::default();
        while let Some(req) = reader.next(&mut stream).await {
            let response: &[u8] = match (req.method.as_str(), req.path.as_str()) {
                ("HEAD", _) => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                (_, "/204") => b"HTTP/1.1 204 No Content\r\n\r\n",
                (_, "/304") => b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
                _ => HELLO,
            };
            if stream.write_all(response).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut client = client();
    let mut out = Response::default();
    let head_url = server.url("/");
    client
        .send(&request(&Method::HEAD, &head_url), &mut out)
        .await;
    assert_ok(&out);
    assert_eq!(out.header("content-length"), Some("100"));
    assert!(out.body.is_empty());
    for (path, status) in [("/204", 204), ("/304", 304), ("/", 200)] {
        let out = get(&mut client, &server.url(path)).await;
        assert_ok(&out);
        assert_eq!(out.status, status);
        assert!(out.reused);
    }
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let server = Server::raw(|mut stream, _| async move {
        let mut reader = RequestReader::default();
        while reader.next(&mut stream).await.is_some() {
            let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
            tokio::time::sleep(Duration::from_millis(2)).await;
            let _ = stream
                .write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
                .await;
        }
    })
    .await;
    let mut client = client();
    for _ in 0..2 {
        let out = get(&mut client, &server.url("/")).await;
        assert_ok(&out);
        assert_eq!(out.status, 200);
        assert_eq!(out.body, b"done");
        assert_eq!(out.header("link"), None, "interim headers are not kept");
    }
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn server_closing_between_requests_is_redialled() {
    let server = Server::raw(|mut stream, _| async move {
        let mut reader = RequestReader::default();
        if reader.next(&mut stream).await.is_some() {
            let _ = stream.write_all(HELLO).await;
        }
        // Closes without saying so, as an idle timeout would.
    })
    .await;
    let mut client = client();
    let url = server.url("/");
    for _ in 0..3 {
        let out = get(&mut client, &url).await;
        assert_ok(&out);
        assert_eq!(out.body, b"hello");
    }
    assert_eq!(server.accepts(), 3);
}

/// A server whose first connection answers once, then takes the next
/// request and closes without answering: the keep-alive race.
async fn racing_server() -> Server {
    Server::raw(|mut stream, index| async move {
        let mut reader = RequestReader::default();
        if index == 0 {
            if reader.next(&mut stream).await.is_some() {
                let _ = stream.write_all(HELLO).await;
            }
            let _ = reader.next(&mut stream).await;
            return;
        }
        while reader.next(&mut stream).await.is_some() {
            let _ = stream.write_all(HELLO).await;
        }
    })
    .await
}

#[tokio::test]
async fn keep_alive_race_is_retried_once_for_idempotent_requests() {
    let server = racing_server().await;
    let mut client = client();
    let url = server.url("/");
    assert_ok(&get(&mut client, &url).await);
    let out = get(&mut client, &url).await;
    assert_ok(&out);
    assert_eq!(out.body, b"hello");
    assert!(!out.reused, "the retry ran on a fresh connection");
    assert!(out.timings.connecting > Duration::ZERO);
    assert_eq!(server.accepts(), 2);
}

#[tokio::test]
async fn keep_alive_race_does_not_repeat_a_sent_post() {
    let server = racing_server().await;
    let mut client = client();
    let url = server.url("/");
    assert_ok(&get(&mut client, &url).await);
    let mut out = Response::default();
    client.send(&request(&Method::POST, &url), &mut out).await;
    assert_eq!(out.error, Some(ErrorKind::Reset), "{:?}", out.failure);
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn timings_add_up() {
    let server = Server::raw(|mut stream, _| async move {
        let mut reader = RequestReader::default();
        while reader.next(&mut stream).await.is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = stream.write_all(b"56789").await;
        }
    })
    .await;
    let mut client = client();
    let url = server.url("/");
    for i in 0..2 {
        let started = Instant::now();
        let out = get(&mut client, &url).await;
        let total = started.elapsed();
        assert_ok(&out);
        let t = out.timings;
        assert!(
            t.blocked + t.sending + t.waiting + t.receiving <= total,
            "{t:?} > {total:?}"
        );
        assert!(t.connecting + t.tls_handshaking <= t.blocked, "{t:?}");
        assert!(t.waiting >= Duration::from_millis(20), "{t:?}");
        assert!(t.receiving >= Duration::from_millis(20), "{t:?}");
        if i == 0 {
            assert!(!out.reused);
            assert!(
                t.blocked > Duration::ZERO && t.connecting > Duration::ZERO,
                "{t:?}"
            );
        } else {
            assert!(out.reused);
            assert_eq!(t.connecting, Duration::ZERO);
            assert!(t.blocked < Duration::from_millis(20), "{t:?}");
        }
    }
}
