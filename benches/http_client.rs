//! Time per request of the engine's HTTP client: sequential requests from
//! one VU over a kept-alive loopback connection to a minimal raw server
//! (HTTP/1.1) or hyper (h2c). Round-trip bound: the number includes the
//! server's share and two loopback wake-ups. For the client's own CPU cost
//! per request see `examples/h1_loop.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use volley::engine::http::{HttpClientConfig, OutRequest, Response, VuClient};
use volley::plan::HttpOptions;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello volley";

/// A keep-alive server answering every bodiless request with `RESPONSE`,
/// or every POST with it after reading a Content-Length body.
async fn raw_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut filled = 0;
                loop {
                    match stream.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => filled += n,
                    }
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let mut req = httparse::Request::new(&mut headers);
                    let Ok(httparse::Status::Complete(head)) = req.parse(&buf[..filled]) else {
                        continue;
                    };
                    let body: usize = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                        .unwrap_or(0);
                    if filled < head + body {
                        continue;
                    }
                    buf.copy_within(head + body..filled, 0);
                    filled -= head + body;
                    if stream.write_all(RESPONSE).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn hyper_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"hello volley")),
                    ))
                });
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let _ = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn options(h2c: bool) -> HttpOptions {
    HttpOptions {
        user_agent: "volley-bench".into(),
        http2_prior_knowledge: h2c,
        timeout: Duration::from_secs(10),
        ..HttpOptions::default()
    }
}

/// One benchmarked request shape.
struct Case<'a> {
    name: &'static str,
    url: &'a str,
    method: Method,
    body: &'a [u8],
    /// Keep headers and body (what checks need).
    keep: bool,
    h2c: bool,
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let raw = rt.block_on(raw_server());
    let h2 = rt.block_on(hyper_server());
    let raw_url = format!("http://{raw}/bench");
    let h2_url = format!("http://{h2}/bench");
    let payload = vec![b'x'; 1024];
    let cases = [
        Case {
            name: "h1_get",
            url: &raw_url,
            method: Method::GET,
            body: &[],
            keep: false,
            h2c: false,
        },
        Case {
            name: "h1_get_keep_all",
            url: &raw_url,
            method: Method::GET,
            body: &[],
            keep: true,
            h2c: false,
        },
        Case {
            name: "h1_post_1k",
            url: &raw_url,
            method: Method::POST,
            body: &payload,
            keep: false,
            h2c: false,
        },
        Case {
            name: "h2c_get",
            url: &h2_url,
            method: Method::GET,
            body: &[],
            keep: true,
            h2c: true,
        },
    ];
    let mut group = c.benchmark_group("http_client");
    for case in &cases {
        let config = Arc::new(HttpClientConfig::new(&options(case.h2c)).expect("client config"));
        let mut client = VuClient::new(config);
        let mut out = Response::default();
        let req = OutRequest {
            method: &case.method,
            url: case.url,
            headers: &[],
            body: case.body,
            timeout: Duration::from_secs(10),
            keep_body: case.keep,
            keep_headers: case.keep,
        };
        group.bench_function(case.name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        client.send(&req, &mut out).await;
                        assert!(out.error.is_none(), "{:?}", out.failure);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
