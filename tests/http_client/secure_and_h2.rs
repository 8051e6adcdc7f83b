//! TLS (self-signed, insecure, extra roots) and HTTP/2 (ALPN and h2c).

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use volley::engine::http::{HttpClientConfig, OutRequest, Response, VuClient};
use volley::metrics::ErrorKind;
use volley::plan::HttpOptions;

use super::servers::Server;
use super::{assert_ok, client, client_with, get, options, request};

#[tokio::test]
async fn tls_with_a_self_signed_certificate() {
    let (server, ca_pem) = Server::tls(false).await;
    let url = format!("https://localhost:{}/", server.addr.port());

    let strict = get(&mut client(), &url).await;
    assert_eq!(strict.error, Some(ErrorKind::Tls), "{:?}", strict.failure);

    let mut insecure = client_with(&HttpOptions {
        insecure_skip_tls_verify: true,
        ..options()
    });
    for i in 0..2 {
        let out = get(&mut insecure, &url).await;
        assert_ok(&out);
        assert_eq!(out.body, b"secure");
        assert_eq!(out.http_version, http::Version::HTTP_11);
        if i == 0 {
            assert!(out.timings.tls_handshaking > Duration::ZERO);
        } else {
            assert!(out.reused);
            assert_eq!(out.timings.tls_handshaking, Duration::ZERO);
        }
    }

    let trusted = HttpClientConfig::with_extra_roots(&options(), ca_pem.as_bytes()).unwrap();
    let out = get(&mut VuClient::new(Arc::new(trusted)), &url).await;
    assert_ok(&out);
    let by_ip = format!("https://127.0.0.1:{}/", server.addr.port());
    let trusted = HttpClientConfig::with_extra_roots(&options(), ca_pem.as_bytes()).unwrap();
    assert_ok(&get(&mut VuClient::new(Arc::new(trusted)), &by_ip).await);
}

#[tokio::test]
async fn h2_is_negotiated_by_alpn() {
    let (server, _) = Server::tls(true).await;
    let url = format!("https://127.0.0.1:{}/h2", server.addr.port());
    let mut client = client_with(&HttpOptions {
        insecure_skip_tls_verify: true,
        ..options()
    });
    for i in 0..3 {
        let mut out = Response::default();
        let req = OutRequest {
            body: b"12345",
            ..request(&Method::POST, &url)
        };
        client.send(&req, &mut out).await;
        assert_ok(&out);
        assert_eq!(out.http_version, http::Version::HTTP_2);
        assert_eq!(out.body, b"h2 says hi");
        assert_eq!(out.header("x-request-body"), Some("5"));
        assert_eq!(out.reused, i > 0);
        assert!(out.bytes_received > 0 && out.bytes_sent > 5);
    }
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn h2c_by_prior_knowledge() {
    let server = Server::hyper_plain().await;
    let url = server.url("/");
    let mut h2c = client_with(&HttpOptions {
        http2_prior_knowledge: true,
        ..options()
    });
    for _ in 0..2 {
        let out = get(&mut h2c, &url).await;
        assert_ok(&out);
        assert_eq!(out.http_version, http::Version::HTTP_2);
        assert_eq!(out.body, b"h2 says hi");
    }
    let h1 = get(&mut client(), &url).await;
    assert_ok(&h1);
    assert_eq!(h1.body, b"h1 says hi");
    assert_eq!(server.accepts(), 2);
}
