//! Test clients for the target: one hyper `conn` connection per protocol
//! (HTTP/1.1, h2c prior knowledge, TLS with ALPN `http/1.1` or `h2`), plus
//! small helpers to start targets, send requests and wait for conditions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;
use volley::target::{self, TargetConfig, TargetHandle};

/// Upper bound on anything a test waits for; generous for a loaded 2-core box.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    H1,
    H2c,
    TlsH1,
    TlsH2,
}

pub(crate) const PROTOCOLS: [Proto; 4] = [Proto::H1, Proto::H2c, Proto::TlsH1, Proto::TlsH2];

impl Proto {
    pub(crate) fn tls(self) -> bool {
        matches!(self, Proto::TlsH1 | Proto::TlsH2)
    }
    pub(crate) fn h2(self) -> bool {
        matches!(self, Proto::H2c | Proto::TlsH2)
    }
}

/// One client connection, HTTP/1.1 or h2.
pub(crate) enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// A fully read response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub(crate) async fn start(proto: Proto) -> TargetHandle {
    start_with(proto, TargetConfig::default()).await
}

pub(crate) async fn start_with(proto: Proto, config: TargetConfig) -> TargetHandle {
    let config = TargetConfig {
        tls: proto.tls(),
        ..config
    };
    target::spawn(loopback(), config)
        .await
        .expect("target starts")
}

pub(crate) fn tls_connector(ca_pem: &str, alpn: &[u8]) -> TlsConnector {
    let cert = CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("PEM certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert)
        .expect("certificate is a usable trust anchor");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

pub(crate) async fn connect(target: &TargetHandle, proto: Proto) -> Conn {
    let tcp = TcpStream::connect(target.addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    match proto {
        Proto::H1 => h1_handshake(TokioIo::new(tcp)).await,
        Proto::H2c => h2_handshake(TokioIo::new(tcp)).await,
        Proto::TlsH1 | Proto::TlsH2 => {
            let ca_pem = target
                .ca_pem
                .as_deref()
                .expect("TLS target has a certificate");
            let (alpn, name): (&[u8], _) = if proto == Proto::TlsH2 {
                (b"h2", "localhost")
            } else {
                (b"http/1.1", "127.0.0.1")
            };
            let name = ServerName::try_from(name).expect("valid name");
            let tls = tls_connector(ca_pem, alpn)
                .connect(name, tcp)
                .await
                .expect("TLS handshake");
            assert_eq!(
                tls.get_ref().1.alpn_protocol(),
                Some(alpn),
                "negotiated ALPN"
            );
            if proto == Proto::TlsH2 {
                h2_handshake(TokioIo::new(tls)).await
            } else {
                h1_handshake(TokioIo::new(tls)).await
            }
        }
    }
}

pub(crate) async fn h1_handshake<I>(io: I) -> Conn
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io).await.expect("h1 handshake");
    tokio::spawn(conn);
    Conn::H1(sender)
}

pub(crate) async fn h2_handshake<I>(io: I) -> Conn
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    Conn::H2(sender)
}

pub(crate) fn request(
    target: &TargetHandle,
    method: Method,
    path: &str,
    body: Bytes,
) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", target.addr))
        .header(http::header::HOST, target.addr.to_string())
        .body(Full::new(body))
        .expect("valid request")
}

impl Conn {
    pub(crate) async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> hyper::Result<Response<Incoming>> {
        match self {
            Conn::H1(sender) => {
                sender.ready().await?;
                sender.send_request(req).await
            }
            Conn::H2(sender) => {
                sender.ready().await?;
                sender.send_request(req).await
            }
        }
    }

    pub(crate) async fn fetch(&mut self, req: Request<Full<Bytes>>) -> Reply {
        let response = timeout(PATIENCE, self.send(req))
            .await
            .expect("answer in time");
        let (parts, body) = response.expect("response head").into_parts();
        let body = timeout(PATIENCE, body.collect())
            .await
            .expect("body in time");
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.expect("complete body").to_bytes(),
        }
    }
}

/// GET `path` over a fresh connection.
pub(crate) async fn get(target: &TargetHandle, proto: Proto, path: &str) -> Reply {
    let mut conn = connect(target, proto).await;
    conn.fetch(request(target, Method::GET, path, Bytes::new()))
        .await
}

pub(crate) fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .map(|v| v.to_str().expect("ASCII header"))
        .unwrap_or("")
}

/// Polls `cond` until it holds, failing the test after [`PATIENCE`].
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
