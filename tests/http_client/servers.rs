//! Small loopback servers for the HTTP client tests: raw-bytes HTTP/1.1
//! scripts, TLS with a certificate generated per test, and hyper for
//! HTTP/2. Every server binds 127.0.0.1:0 and stops when dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A listening server that counts accepted connections.
pub struct Server {
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Runs `handler(stream, connection_index)` for every connection.
    pub async fn raw<F, Fut>(handler: F) -> Server
    where
        F: Fn(TcpStream, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepts);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                stream.set_nodelay(true).unwrap();
                let index = counter.fetch_add(1, Ordering::SeqCst);
                conns.spawn(handler(stream, index));
            }
        });
        Server {
            addr,
            accepts,
            task,
        }
    }

    /// Answers every request on every connection with `response`.
    pub async fn keep_alive(response: &'static [u8]) -> Server {
        Server::raw(move |mut stream, _| async move {
            let mut reader = RequestReader::default();
            while reader.next(&mut stream).await.is_some() {
                if stream.write_all(response).await.is_err() {
                    return;
                }
            }
        })
        .await
    }

    /// A TLS server speaking HTTP/1.1 (or h2 when `h2` and offered) with a
    /// fresh self-signed certificate for `localhost` and 127.0.0.1.
    pub async fn tls(h2: bool) -> (Server, String) {
        let (config, ca_pem) = tls_server_config(h2);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let server = Server::raw(move |stream, _| {
            let acceptor = acceptor.clone();
            async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    serve_hyper(tls).await;
                } else {
                    let mut tls = tls;
                    let mut reader = RequestReader::default();
                    while reader.next(&mut tls).await.is_some() {
                        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure";
                        if tls.write_all(response).await.is_err() || tls.flush().await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .await;
        (server, ca_pem)
    }

    /// Plain TCP served by hyper's auto builder (HTTP/1.1 or h2c).
    pub async fn hyper_plain() -> Server {
        Server::raw(|stream, _| serve_hyper(stream)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

/// Serves `io` with hyper: the body is `h2 says hi` for HTTP/2 and
/// `h1 says hi` otherwise, echoing the request body length in a header.
async fn serve_hyper<I>(io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|req: http::Request<Incoming>| async move {
        let version = req.version();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        let text: &'static [u8] = if version == http::Version::HTTP_2 {
            b"h2 says hi"
        } else {
            b"h1 says hi"
        };
        let response = http::Response::builder()
            .header("x-request-body", body.to_string())
            .body(Full::new(Bytes::from_static(text)))
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

fn tls_server_config(h2: bool) -> (rustls::ServerConfig, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .unwrap();
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    (config, cert.pem())
}

/// One request as a raw server saw it.
#[derive(Debug, Clone, Default)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Exact bytes of head and body on the wire.
    pub wire_len: usize,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads requests (head + Content-Length body) from a stream, keeping any
/// bytes of the next request.
#[derive(Default)]
pub struct RequestReader {
    buf: Vec<u8>,
}

impl RequestReader {
    /// The next request, or `None` at the end of the stream.
    pub async fn next<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Option<SeenRequest> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(head_len)) = req.parse(&self.buf) {
                let mut seen = SeenRequest {
                    method: req.method.unwrap_or("").to_string(),
                    path: req.path.unwrap_or("").to_string(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    ..SeenRequest::default()
                };
                let body_len: usize = seen
                    .header("content-length")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < head_len + body_len {
                    if !self.read_more(stream).await {
                        return None;
                    }
                }
                seen.body = self.buf[head_len..head_len + body_len].to_vec();
                seen.wire_len = head_len + body_len;
                self.buf.drain(..head_len + body_len);
                return Some(seen);
            }
            if !self.read_more(stream).await {
                return None;
            }
        }
    }

    async fn read_more<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> bool {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }
}
