//! One export request to the collector: OTLP/HTTP (`POST`, protobuf body)
//! or OTLP/gRPC (HTTP/2 without TLS, a length-prefixed message, the
//! outcome in `grpc-status`), retried with back-off, within a time limit,
//! every address checked against the agent's egress policy on a fleet.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;

use crate::outputs::otel_config::{Exporter, OtelConfig};
use crate::outputs::push::{self, Answer, Failure, PushClient};
use crate::plan::egress::EgressPolicy;

/// Budget of one request, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends exports to the collector.
pub(super) struct Sender {
    client: PushClient,
    exporter: Exporter,
    url: Uri,
    /// `host:port`, for messages.
    endpoint: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    egress: Option<Arc<EgressPolicy>>,
}

impl Sender {
    pub(super) fn new(c: &OtelConfig, egress: Option<Arc<EgressPolicy>>) -> Result<Sender, String> {
        // gRPC without TLS: HTTP/2 with prior knowledge (h2c).
        let client = push::client(c.exporter == Exporter::Grpc, &c.tls)?;
        let url = c
            .url()
            .parse()
            .map_err(|e| format!("{}: not a URL ({e})", c.url()))?;
        let headers = push::headers(&c.headers)?;
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
        push::with_retries(|| self.send(body.clone())).await
    }

    async fn send(&self, message: Bytes) -> Result<(), Failure> {
        let url = self.url.to_string();
        push::check_egress(self.egress.as_deref(), &url).await?;
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
        let answer = push::exchange(&self.client, req, &self.endpoint, REQUEST_TIMEOUT).await?;
        match self.exporter {
            Exporter::Http => http_outcome(&self.endpoint, &answer),
            Exporter::Grpc => grpc_outcome(&self.endpoint, &answer),
        }
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
fn http_outcome(endpoint: &str, answer: &Answer) -> Result<(), Failure> {
    answer.outcome(
        &format!("the collector at {endpoint}"),
        |s| matches!(s.as_u16(), 429 | 502 | 503 | 504),
        |_| None,
    )
}

/// OTLP/gRPC: `grpc-status` in the trailers (or, in a trailers-only
/// answer, the headers); 0 is delivered, the OTLP specification's
/// retryable codes are retried.
fn grpc_outcome(endpoint: &str, answer: &Answer) -> Result<(), Failure> {
    let Answer {
        status,
        head,
        trailers,
        ..
    } = answer;
    if !status.is_success() {
        return Err(Failure::Retry(format!(
            "the collector at {endpoint} answered HTTP {status} to gRPC"
        )));
    }
    let field = |name: &str| {
        trailers
            .as_ref()
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn grpc_frames_and_statuses() {
        assert_eq!(&grpc_frame(b"abc")[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let answer =
            |status: StatusCode, head: &http::HeaderMap, trailers: Option<&http::HeaderMap>| {
                Answer {
                    status,
                    head: head.clone(),
                    trailers: trailers.cloned(),
                    body: Bytes::from_static(b"no"),
                }
            };
        let mut t = http::HeaderMap::new();
        let head = http::HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(grpc_outcome("c:1", &answer(StatusCode::OK, &head, Some(&t))).is_ok());
        t.insert("grpc-status", HeaderValue::from_static("14"));
        assert!(matches!(
            grpc_outcome("c:1", &answer(StatusCode::OK, &head, Some(&t))),
            Err(Failure::Retry(_))
        ));
        t.insert("grpc-status", HeaderValue::from_static("3"));
        t.insert("grpc-message", HeaderValue::from_static("bad"));
        match grpc_outcome("c:1", &answer(StatusCode::OK, &head, Some(&t))) {
            Err(Failure::Final(r)) => assert!(r.contains("status 3: bad"), "{r}"),
            _ => panic!("INVALID_ARGUMENT is final"),
        }
        // Trailers-only answers carry it in the headers.
        assert!(matches!(
            grpc_outcome("c:1", &answer(StatusCode::OK, &t, None)),
            Err(Failure::Final(_))
        ));
        assert!(matches!(
            http_outcome("c:1", &answer(StatusCode::SERVICE_UNAVAILABLE, &head, None)),
            Err(Failure::Retry(_))
        ));
        assert!(matches!(
            http_outcome("c:1", &answer(StatusCode::BAD_REQUEST, &head, None)),
            Err(Failure::Final(_))
        ));
    }
}
