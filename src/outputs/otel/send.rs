//! One export request to the collector: OTLP/HTTP (`POST`, protobuf body)
//! or OTLP/gRPC (HTTP/2 without TLS, a length-prefixed message, the
//! outcome in `grpc-status`), retried with back-off, within a time limit,
//! every address checked against the agent's egress policy on a fleet.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::outputs::otel_config::{Exporter, OtelConfig};
use crate::plan::egress::EgressPolicy;

/// Tries of one request before it counts as not delivered.
const ATTEMPTS: u32 = 4;
/// The first retry's wait; each next one doubles it.
const BACKOFF: Duration = Duration::from_millis(250);
/// Budget of one request, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends exports to the collector.
pub(super) struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    exporter: Exporter,
    url: Uri,
    /// `host:port`, for messages.
    endpoint: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    egress: Option<Arc<EgressPolicy>>,
}

enum Failure {
    Retry(String),
    Final(String),
}

impl Sender {
    pub(super) fn new(c: &OtelConfig, egress: Option<Arc<EgressPolicy>>) -> Result<Sender, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_timer(TokioTimer::new());
        if c.exporter == Exporter::Grpc {
            // gRPC without TLS: HTTP/2 with prior knowledge (h2c).
            builder.http2_only(true);
        }
        let client = builder.build(connector);
        let url = c
            .url()
            .parse()
            .map_err(|e| format!("{}: not a URL ({e})", c.url()))?;
        let headers = c
            .headers
            .iter()
            .map(|(k, v)| {
                Ok((
                    HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k}: {e}"))?,
                    HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?,
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Sender {
            client,
            exporter: c.exporter,
            url,
            endpoint: c.endpoint().to_owned(),
            headers,
            egress,
        })
    }

    pub(super) async fn send_with_retries(&self, body: Bytes) -> Result<(), String> {
        let mut wait = BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.send(body.clone()).await {
                Ok(()) => return Ok(()),
                Err(Failure::Final(reason)) => return Err(reason),
                Err(Failure::Retry(reason)) => last = reason,
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(last)
    }

    async fn check_egress(&self) -> Result<(), Failure> {
        let Some(policy) = &self.egress else {
            return Ok(());
        };
        let host = self
            .url
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = self.url.port_u16().unwrap_or(80);
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

    async fn send(&self, message: Bytes) -> Result<(), Failure> {
        self.check_egress().await?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone());
        let body = match self.exporter {
            Exporter::Http => {
                req = req.header(CONTENT_TYPE, "application/x-protobuf");
                message
            }
            Exporter::Grpc => {
                req = req
                    .header(CONTENT_TYPE, "application/grpc")
                    .header("te", "trailers");
                grpc_frame(&message)
            }
        };
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::Final(format!("cannot build a request: {e}")))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                Failure::Retry(format!(
                    "cannot reach {}: {}",
                    self.endpoint,
                    root_cause(&e)
                ))
            })?;
            let status = resp.status();
            let head = resp.headers().clone();
            let collected = resp.into_body().collect().await.map_err(|e| {
                Failure::Retry(format!(
                    "{} broke off its answer: {}",
                    self.endpoint,
                    root_cause(&e)
                ))
            })?;
            let trailers = collected.trailers().cloned();
            let body = collected.to_bytes();
            match self.exporter {
                Exporter::Http => http_outcome(&self.endpoint, status, &body),
                Exporter::Grpc => grpc_outcome(&self.endpoint, status, &head, trailers.as_ref()),
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Retry(format!(
                    "{} did not answer within {} s",
                    self.endpoint,
                    REQUEST_TIMEOUT.as_secs()
                )))
            })
    }
}

/// A gRPC message: uncompressed flag, 4-byte big-endian length, message.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    b.put_slice(message);
    b.freeze()
}

/// OTLP/HTTP: 2xx is delivered; 429, 502, 503, 504 are worth retrying
/// (the OTLP specification's list), everything else is final.
fn http_outcome(endpoint: &str, status: StatusCode, body: &[u8]) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_owned();
    let reason = format!("the collector at {endpoint} answered {status}: {text}");
    match status.as_u16() {
        429 | 502 | 503 | 504 => Err(Failure::Retry(reason)),
        _ => Err(Failure::Final(reason)),
    }
}

/// OTLP/gRPC: `grpc-status` in the trailers (or, in a trailers-only
/// answer, the headers); 0 is delivered, the OTLP specification's
/// retryable codes are retried.
fn grpc_outcome(
    endpoint: &str,
    status: StatusCode,
    head: &http::HeaderMap,
    trailers: Option<&http::HeaderMap>,
) -> Result<(), Failure> {
    if !status.is_success() {
        return Err(Failure::Retry(format!(
            "the collector at {endpoint} answered HTTP {status} to gRPC"
        )));
    }
    let field = |name: &str| {
        trailers
            .and_then(|t| t.get(name))
            .or_else(|| head.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(code) = field("grpc-status") else {
        return Err(Failure::Retry(format!(
            "the collector at {endpoint} answered without a grpc-status"
        )));
    };
    if code == "0" {
        return Ok(());
    }
    let message = field("grpc-message").unwrap_or_default();
    let reason = format!("the collector at {endpoint} answered gRPC status {code}: {message}");
    // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
    // OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
    match code.as_str() {
        "1" | "4" | "8" | "10" | "11" | "14" | "15" => Err(Failure::Retry(reason)),
        _ => Err(Failure::Final(reason)),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_frames_and_statuses() {
        assert_eq!(&grpc_frame(b"abc")[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let mut t = http::HeaderMap::new();
        let head = http::HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(grpc_outcome("c:1", StatusCode::OK, &head, Some(&t)).is_ok());
        t.insert("grpc-status", HeaderValue::from_static("14"));
        assert!(matches!(
            grpc_outcome("c:1", StatusCode::OK, &head, Some(&t)),
            Err(Failure::Retry(_))
        ));
        t.insert("grpc-status", HeaderValue::from_static("3"));
        t.insert("grpc-message", HeaderValue::from_static("bad"));
        match grpc_outcome("c:1", StatusCode::OK, &head, Some(&t)) {
            Err(Failure::Final(r)) => assert!(r.contains("status 3: bad"), "{r}"),
            _ => panic!("INVALID_ARGUMENT is final"),
        }
        // Trailers-only answers carry it in the headers.
        assert!(matches!(
            grpc_outcome("c:1", StatusCode::OK, &t, None),
            Err(Failure::Final(_))
        ));
        assert!(matches!(
            http_outcome("c:1", StatusCode::SERVICE_UNAVAILABLE, b""),
            Err(Failure::Retry(_))
        ));
        assert!(matches!(
            http_outcome("c:1", StatusCode::BAD_REQUEST, b"no"),
            Err(Failure::Final(_))
        ));
    }
}
