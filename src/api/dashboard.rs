//! The live dashboard's server (`volley run --dashboard`): the report page
//! and its data, fresh every period, for a browser on the same machine.
//!
//! Small on purpose: HTTP/1.1 only, `GET` and `HEAD` only, no request
//! bodies, request heads within 16 KiB and 5 s, at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed at once). It
//! serves `/` (the page) and `/data` (the page's JSON); it binds where it
//! is told, loopback by default (`cli::report_out`), and answers only
//! requests whose `Host` names that address (no DNS rebinding).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::debug;

/// Most connections served at once: a browser opens a few.
pub const MAX_CONNECTIONS: usize = 8;
/// Longest wait for a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head.
const MAX_HEAD: usize = 16 * 1024;

/// What the dashboard serves: the page (fixed) and its latest data.
#[derive(Clone)]
pub struct Dashboard {
    pub page: Bytes,
    pub data: watch::Receiver<Bytes>,
    /// The `Host` values accepted (`127.0.0.1:5665`, `localhost:5665`):
    /// a page of another site that a rebound DNS name points here gets
    /// 421, not the test's data. Empty accepts any (a dashboard bound to
    /// every interface is reached by names this process cannot know).
    pub hosts: Vec<String>,
}

impl Dashboard {
    /// The `Host` values a dashboard on `addr` accepts.
    pub fn hosts_for(addr: std::net::SocketAddr) -> Vec<String> {
        if addr.ip().is_unspecified() {
            return Vec::new();
        }
        let port = addr.port();
        let mut hosts = vec![addr.to_string()];
        if addr.ip().is_loopback() {
            hosts.push(format!("localhost:{port}"));
        }
        hosts
    }
}

/// Serves `dashboard` on `listener` until `shutdown` resolves.
pub async fn serve_dashboard(
    listener: TcpListener,
    dashboard: Dashboard,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let dashboard = Arc::new(dashboard);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    debug!(%error, "dashboard: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(%peer, "dashboard: connection over the limit closed");
            continue;
        };
        let dashboard = Arc::clone(&dashboard);
        let connection = builder.serve_connection(
            TokioIo::new(tcp),
            service_fn(move |request| {
                let answer = answer(&dashboard, &request);
                async move { Ok::<_, Infallible>(answer) }
            }),
        );
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%peer, %error, "dashboard connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// The answer to one request.
fn answer<B>(dashboard: &Dashboard, request: &Request<B>) -> Response<Full<Bytes>> {
    let has_body = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || request
            .headers()
            .contains_key(http::header::TRANSFER_ENCODING);
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        r.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        close(&mut r);
        return r;
    }
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    if !dashboard.hosts.is_empty() && !host.is_some_and(|h| dashboard.hosts.contains(&h)) {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this dashboard answers only to the address it printed\n",
        );
    }
    if has_body {
        let mut r = plain(StatusCode::PAYLOAD_TOO_LARGE, "no request bodies\n");
        close(&mut r);
        return r;
    }
    let (content_type, body) = match request.uri().path() {
        "/" | "/index.html" => ("text/html; charset=utf-8", dashboard.page.clone()),
        "/data" => ("application/json", dashboard.data.borrow().clone()),
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                "not found: the dashboard serves / and /data\n",
            );
        }
    };
    let length = body.len();
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        body
    };
    let mut r = Response::new(Full::new(body));
    let headers = r.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn close(r: &mut Response<Full<Bytes>>) {
    r.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard() -> (watch::Sender<Bytes>, Dashboard) {
        let (tx, rx) = watch::channel(Bytes::from_static(b"{\"n\":1}"));
        (
            tx,
            Dashboard {
                page: Bytes::from_static(b"<!doctype html>"),
                data: rx,
                hosts: Dashboard::hosts_for("127.0.0.1:5665".parse().expect("addr")),
            },
        )
    }

    fn request(method: Method, path: &str) -> Request<()> {
        let mut r = Request::new(());
        *r.method_mut() = method;
        *r.uri_mut() = path.parse().expect("path");
        r.headers_mut().insert(
            http::header::HOST,
            HeaderValue::from_static("127.0.0.1:5665"),
        );
        r
    }

    #[test]
    fn serves_the_page_and_the_latest_data_only() {
        let (tx, d) = dashboard();
        let page = answer(&d, &request(Method::GET, "/"));
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        tx.send_replace(Bytes::from_static(b"{\"n\":2}"));
        let data = answer(&d, &request(Method::GET, "/data"));
        assert_eq!(data.headers()["content-length"], "7");
        let head = answer(&d, &request(Method::HEAD, "/data"));
        assert_eq!(head.headers()["content-length"], "7");
        assert_eq!(
            answer(&d, &request(Method::GET, "/etc/passwd")).status(),
            StatusCode::NOT_FOUND
        );
        let post = answer(&d, &request(Method::POST, "/data"));
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()["allow"], "GET, HEAD");
        let mut with_body = request(Method::GET, "/");
        with_body
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(5));
        assert_eq!(
            answer(&d, &with_body).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        for (host, status) in [
            ("localhost:5665", StatusCode::OK),
            ("evil.example:5665", StatusCode::MISDIRECTED_REQUEST),
        ] {
            let mut r = request(Method::GET, "/data");
            r.headers_mut()
                .insert(http::header::HOST, HeaderValue::from_static(host));
            assert_eq!(answer(&d, &r).status(), status, "{host}");
        }
        let mut no_host = request(Method::GET, "/data");
        no_host.headers_mut().remove(http::header::HOST);
        assert_eq!(
            answer(&d, &no_host).status(),
            StatusCode::MISDIRECTED_REQUEST
        );
        assert!(Dashboard::hosts_for("0.0.0.0:1".parse().expect("addr")).is_empty());
    }
}
