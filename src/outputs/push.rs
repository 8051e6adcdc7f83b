//! One push to a metrics backend over HTTP or HTTPS, shared by the outputs
//! that push (InfluxDB, Prometheus remote write, OpenTelemetry): the hyper
//! client and its TLS settings ([`PushTls`]: public roots, an extra CA,
//! a client certificate, or k6's "skip verify"), the egress check of the
//! backend's resolved addresses, one exchange within a time limit, and
//! retries with back-off. Each output builds its own request and says
//! which answers are worth another try.
//!
//! This module owns the hyper client the push outputs share.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::engine::http::HttpClientConfig;
use crate::plan::HttpOptions;
use crate::plan::egress::EgressPolicy;
use crate::plan::net::TlsAuth;

/// Tries of one push before what it carries counts as not delivered.
pub(super) const ATTEMPTS: u32 = 4;
/// The first retry's wait; each next one doubles it.
pub(super) const BACKOFF: Duration = Duration::from_millis(250);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The part of an error answer's body a message quotes.
const EXCERPT: usize = 300;

/// The client of a push output.
pub(super) type PushClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How a push output trusts its backend over `https://`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushTls {
    /// Any server certificate is accepted (k6's `…INSECURE_SKIP_VERIFY`).
    pub insecure_skip_verify: bool,
    /// A PEM file of CA certificates trusted besides the public roots.
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, presented when the
    /// backend asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl PushTls {
    /// The rustls configuration, built the way a plan's own TLS options
    /// are; an unreadable or invalid file is named with what is wrong
    /// with it.
    fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
        };
        let mut opts = HttpOptions {
            insecure_skip_tls_verify: self.insecure_skip_verify,
            ..HttpOptions::default()
        };
        if let Some((cert, key)) = &self.client_cert {
            let text = |path: &PathBuf, what: &str| {
                String::from_utf8(read(path, what)?)
                    .map_err(|_| format!("{what} {}: not PEM text", path.display()))
            };
            opts.net.tls_auth = vec![TlsAuth {
                domains: Vec::new(),
                cert_pem: text(cert, "the client certificate")?,
                key_pem: text(key, "the client key")?,
            }];
        }
        let config = match &self.ca_file {
            Some(ca) => HttpClientConfig::with_extra_roots(&opts, &read(ca, "the CA file")?),
            None => HttpClientConfig::new(&opts),
        }
        .map_err(|e| format!("TLS: {e}"))?;
        // Without domains the client certificate is for any backend.
        let mut tls = config.tls_config("").as_ref().clone();
        // The connector offers the protocols it speaks itself.
        tls.alpn_protocols.clear();
        Ok(tls)
    }
}

/// A client for `http://` and `https://` backends; `http2_only` for gRPC
/// (HTTP/2 with prior knowledge over `http://`, by ALPN over `https://`).
pub(super) fn client(http2_only: bool, tls: &PushTls) -> Result<PushClient, String> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.enforce_http(false);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls.client_config()?)
        .https_or_http();
    let connector = if http2_only {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    let mut client = Client::builder(TokioExecutor::new());
    client.pool_timer(TokioTimer::new());
    if http2_only {
        client.http2_only(true);
    }
    Ok(client.build(connector))
}

/// Why a push failed, and whether another try may do better.
#[derive(Debug)]
pub(super) enum Failure {
    Retry(String),
    Final(String),
}

/// A backend's whole answer.
pub(super) struct Answer {
    pub status: StatusCode,
    pub head: HeaderMap,
    pub trailers: Option<HeaderMap>,
    pub body: Bytes,
}

impl Answer {
    /// The start of the body, for a message.
    pub fn excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(EXCERPT)])
            .trim()
            .to_owned()
    }

    /// `2xx` is delivered; `retry` says which other statuses are worth
    /// another try; `hint` may add advice to a final failure.
    pub fn outcome(
        &self,
        backend: &str,
        retry: impl Fn(StatusCode) -> bool,
        hint: impl Fn(StatusCode) -> Option<&'static str>,
    ) -> Result<(), Failure> {
        if self.status.is_success() {
            return Ok(());
        }
        let reason = format!("{backend} answered {}: {}", self.status, self.excerpt());
        if retry(self.status) {
            return Err(Failure::Retry(reason));
        }
        Err(Failure::Final(match hint(self.status) {
            Some(hint) => format!("{reason} ({hint})"),
            None => reason,
        }))
    }
}

/// Sends `req` and reads the whole answer within `limit`. A network
/// error, a broken answer or the limit is worth another try.
pub(super) async fn exchange(
    client: &PushClient,
    req: Request<Full<Bytes>>,
    endpoint: &str,
    limit: Duration,
) -> Result<Answer, Failure> {
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| Failure::Retry(format!("cannot reach {endpoint}: {}", root_cause(&e))))?;
        let status = resp.status();
        let head = resp.headers().clone();
        let collected = resp.into_body().collect().await.map_err(|e| {
            Failure::Retry(format!(
                "{endpoint} broke off its answer: {}",
                root_cause(&e)
            ))
        })?;
        Ok(Answer {
            status,
            head,
            trailers: collected.trailers().cloned(),
            body: collected.to_bytes(),
        })
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(Failure::Retry(format!(
                "{endpoint} did not answer within {} s",
                limit.as_secs()
            )))
        })
}

/// Resolves the backend of `uri` and checks every address against the
/// egress policy, when there is one (an agent's outputs on a fleet).
pub(super) async fn check_egress(policy: Option<&EgressPolicy>, uri: &str) -> Result<(), Failure> {
    let Some(policy) = policy else {
        return Ok(());
    };
    let parsed: Uri = uri
        .parse()
        .map_err(|e| Failure::Final(format!("{uri}: not a URL ({e})")))?;
    let host = parsed
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = parsed
        .port_u16()
        .unwrap_or(if parsed.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::Retry(format!("cannot resolve {host}: {e}")))?;
    for addr in addrs {
        policy
            .check(Some(host), Some(addr.ip()))
            .map_err(|d| Failure::Final(format!("the agent's egress policy refuses {d}")))?;
    }
    Ok(())
}

/// Runs `attempt` up to [`ATTEMPTS`] times while it fails with
/// [`Failure::Retry`], waiting [`BACKOFF`] (doubling) in between; the last
/// reason if it never succeeded.
pub(super) async fn with_retries<F, Fut>(mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let mut wait = BACKOFF;
    let mut last = String::new();
    for n in 1..=ATTEMPTS {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(Failure::Final(reason)) => return Err(reason),
            Err(Failure::Retry(reason)) => last = reason,
        }
        if n < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(last)
}

/// `Authorization: Basic …` for a user and password.
pub(super) fn basic_auth(user: &str, password: Option<&str>) -> Option<HeaderValue> {
    let pair = format!("{user}:{}", password.unwrap_or(""));
    let token = base64::engine::general_purpose::STANDARD.encode(pair);
    HeaderValue::from_str(&format!("Basic {token}")).ok()
}

/// Configured header pairs as header names and values, or which is not
/// valid.
pub(super) fn headers(
    pairs: &[(String, String)],
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    pairs
        .iter()
        .map(|(k, v)| {
            Ok((
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k:?}: {e}"))?,
                HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?,
            ))
        })
        .collect()
}

/// The innermost cause of an error ("connection refused").
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_and_stop_at_a_final_failure() {
        let mut calls = 0;
        let started = tokio::time::Instant::now();
        let out = with_retries(|| {
            calls += 1;
            let n = calls;
            async move {
                match n {
                    1 | 2 => Err(Failure::Retry(format!("try {n}"))),
                    _ => Err(Failure::Final("no".into())),
                }
            }
        })
        .await;
        assert_eq!(out, Err("no".to_owned()));
        assert_eq!(calls, 3);
        // 250 ms, then 500 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(750));

        let mut calls = 0;
        let out = with_retries(|| {
            calls += 1;
            async { Err(Failure::Retry("down".into())) }
        })
        .await;
        assert_eq!(out, Err("down".to_owned()));
        assert_eq!(calls, ATTEMPTS);
    }

    #[test]
    fn outcomes_name_the_backend_and_the_hint() {
        let answer = |code: u16, body: &'static str| Answer {
            status: StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
            head: HeaderMap::new(),
            trailers: None,
            body: Bytes::from_static(body.as_bytes()),
        };
        let retry = |s: StatusCode| s.is_server_error();
        let hint = |s: StatusCode| (s == StatusCode::UNAUTHORIZED).then_some("check the password");
        assert!(answer(204, "").outcome("b", retry, hint).is_ok());
        match answer(503, " busy \n").outcome("InfluxDB at h", retry, hint) {
            Err(Failure::Retry(r)) => {
                assert_eq!(r, "InfluxDB at h answered 503 Service Unavailable: busy")
            }
            other => panic!("{other:?}"),
        }
        match answer(401, "who").outcome("b", retry, hint) {
            Err(Failure::Final(r)) => assert!(r.ends_with("who (check the password)"), "{r}"),
            other => panic!("{other:?}"),
        }
        assert!(headers(&[("bad name".into(), "v".into())]).is_err());
        assert!(basic_auth("u", Some("p")).is_some_and(|v| v == "Basic dTpw"));
    }
}
