//! [`ApiClient`]: the agent API from the other side, for `volley run
//! --agent URL`, `volley tests|abort|members`, the demo and tests.
//!
//! Plain `http://` only: the agent API is cluster-internal (reached through
//! a Service or `kubectl port-forward`), and its one secret, the bearer
//! token, guards only the mutating calls. Failures say which agent, which
//! call, and the server's own message when it sent one.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;

use super::auth::SecretToken;
use super::dto::{
    AbortResponse, MemberList, MemberView, ReadyView, SubmitRequest, SubmitResponse, SummaryView,
    TestBrief, TestList, TestView,
};
use super::error::ErrorBody;
use super::query;

/// Default for [`ApiClient::with_timeout`].
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A dead address should fail fast rather than take the whole timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle pooled connections are dropped after this. The server closes an
/// idle HTTP/1 connection after its request timeout (30 s by default, the
/// header-read timer runs while idle); staying well below it avoids sending
/// on a connection the server is closing.
const POOL_IDLE: Duration = Duration::from_secs(5);

/// Largest answer read, so a wrong URL pointing at something chatty cannot
/// exhaust memory. Summaries are far smaller.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// How much of a non-JSON error body to quote.
const QUOTE: usize = 200;

/// A client of one agent's API.
#[derive(Clone)]
pub struct ApiClient {
    /// `http://host:port` plus an optional path prefix, without a trailing `/`.
    base: Uri,
    /// Sent on mutating calls only: reads need none and should not leak it.
    token: Option<SecretToken>,
    /// Pooled connections with retries of requests cancelled on a stale
    /// connection: right for control-plane calls.
    inner: Client<HttpConnector, Full<Bytes>>,
    /// Budget for one call, from sending to the last byte of the answer.
    timeout: Duration,
}

/// Why a call failed. No variant carries the token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid agent URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach agent at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{method} {path} to the agent at {url} failed: {reason}")]
    Transport {
        url: String,
        method: Method,
        path: String,
        reason: String,
    },
    #[error("the agent at {url} did not answer {method} {path} within {after:?}")]
    Timeout {
        url: String,
        method: Method,
        path: String,
        after: Duration,
    },
    /// The agent refused: `message` is its own explanation.
    #[error("the agent at {url} answered {status} to {method} {path}: {message}")]
    Status {
        url: String,
        method: Method,
        path: String,
        status: StatusCode,
        /// The `error.code` of the answer, when it was a Volley error body.
        code: Option<String>,
        message: String,
    },
    #[error(
        "the agent at {url} answered {method} {path} with {status} and a body Volley cannot \
         read: {reason}"
    )]
    Decode {
        url: String,
        method: Method,
        path: String,
        status: StatusCode,
        reason: String,
    },
}

/// One call's method and path, for building the request and the errors.
struct Call<'a> {
    method: Method,
    path: &'a str,
}

/// A response read to the end.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

// === impl ApiClient ===

impl ApiClient {
    /// A client for the agent at `base_url` (`http://host:port`, optionally
    /// with a path prefix; `host:port` alone means `http://`).
    pub fn new(base_url: &str, token: Option<SecretToken>) -> Result<Self, ClientError> {
        let base = parse_base(base_url)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            base,
            token,
            inner,
            timeout: DEFAULT_CLIENT_TIMEOUT,
        })
    }

    /// A client of another agent at `base_url`, with this one's token and
    /// per-call budget.
    pub fn for_agent(&self, base_url: &str) -> Result<Self, ClientError> {
        Ok(Self {
            base: parse_base(base_url)?,
            ..self.clone()
        })
    }

    /// The same client with another per-call budget.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The agent's base URL, as errors show it.
    pub fn base_url(&self) -> String {
        self.base.to_string().trim_end_matches('/').to_owned()
    }

    /// `POST /v1/tests` (JSON form). Needs the token.
    pub async fn submit(&self, request: &SubmitRequest) -> Result<SubmitResponse, ClientError> {
        let body = serde_json::to_vec(request)
            .expect("invariant: a SubmitRequest (strings, string maps, integers) serialises");
        let call = Call::new(Method::POST, "/v1/tests");
        let answer = self
            .send(&call, Some(Bytes::from(body)), self.token.as_ref())
            .await?;
        self.json(&call, answer, StatusCode::CREATED)
    }

    /// `GET /v1/tests`: the fleet's tests.
    pub async fn list_tests(&self) -> Result<Vec<TestBrief>, ClientError> {
        let list: TestList = self.get_json("/v1/tests").await?;
        Ok(list.tests)
    }

    /// `GET /v1/tests?scope=local`: the tests the agent itself knows.
    pub async fn list_local_tests(&self) -> Result<Vec<TestBrief>, ClientError> {
        let list: TestList = self.get_json("/v1/tests?scope=local").await?;
        Ok(list.tests)
    }

    /// `GET /v1/tests/{id}`.
    pub async fn get_test(&self, id: &str) -> Result<TestView, ClientError> {
        self.get_json(&format!("/v1/tests/{}", query::encode(id)))
            .await
    }

    /// `GET /v1/tests/{id}/summary`.
    pub async fn get_summary(&self, id: &str) -> Result<SummaryView, ClientError> {
        self.get_json(&format!("/v1/tests/{}/summary", query::encode(id)))
            .await
    }

    /// `GET /v1/tests/{id}/summary?format=text`: the k6-style text alone.
    pub async fn get_summary_text(&self, id: &str) -> Result<String, ClientError> {
        self.get_text(&format!(
            "/v1/tests/{}/summary?format=text",
            query::encode(id)
        ))
        .await
    }

    /// `DELETE /v1/tests/{id}`. Needs the token.
    pub async fn abort(&self, id: &str) -> Result<AbortResponse, ClientError> {
        let path = format!("/v1/tests/{}", query::encode(id));
        let call = Call::new(Method::DELETE, &path);
        let answer = self.send(&call, None, self.token.as_ref()).await?;
        self.json(&call, answer, StatusCode::OK)
    }

    /// `GET /v1/members`.
    pub async fn members(&self) -> Result<Vec<MemberView>, ClientError> {
        let list: MemberList = self.get_json("/v1/members").await?;
        Ok(list.members)
    }

    /// `GET /healthz`: `Ok` when the agent process serves.
    pub async fn healthz(&self) -> Result<(), ClientError> {
        self.get_text("/healthz").await.map(drop)
    }

    /// `GET /readyz`: whether the agent joined the fleet and is not
    /// draining (`Ok(false)` for its 503).
    pub async fn readyz(&self) -> Result<bool, ClientError> {
        let call = Call::new(Method::GET, "/readyz");
        let answer = self.send(&call, None, None).await?;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            return self
                .decode::<ReadyView>(&call, &answer)
                .map(|view| view.ready);
        }
        let view: ReadyView = self.json(&call, answer, StatusCode::OK)?;
        Ok(view.ready)
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.get_text("/metrics").await
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let call = Call::new(Method::GET, path);
        let answer = self.send(&call, None, None).await?;
        self.json(&call, answer, StatusCode::OK)
    }

    async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let call = Call::new(Method::GET, path);
        let answer = self.send(&call, None, None).await?;
        if answer.status != StatusCode::OK {
            return Err(self.refusal(&call, &answer));
        }
        String::from_utf8(answer.body.to_vec()).map_err(|error| {
            self.decode_error(&call, answer.status, format!("not UTF-8 text: {error}"))
        })
    }

    /// Sends one request and reads the whole answer, within the timeout.
    async fn send(
        &self,
        call: &Call<'_>,
        json_body: Option<Bytes>,
        token: Option<&SecretToken>,
    ) -> Result<Answer, ClientError> {
        let request = self.request(call, json_body, token)?;
        let exchange = async {
            let response = self.inner.request(request).await.map_err(|error| {
                let reason = root_cause(&error);
                if error.is_connect() {
                    ClientError::Unreachable {
                        url: self.base_url(),
                        reason,
                    }
                } else {
                    self.transport_error(call, reason)
                }
            })?;
            let status = response.status();
            let mut body = response.into_body();
            let mut buf = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame =
                    frame.map_err(|error| self.transport_error(call, root_cause(&error)))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > MAX_RESPONSE {
                        return Err(self.decode_error(
                            call,
                            status,
                            format!("the answer is larger than {MAX_RESPONSE} bytes"),
                        ));
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Answer {
                status,
                body: buf.freeze(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                url: self.base_url(),
                method: call.method.clone(),
                path: call.path.to_owned(),
                after: self.timeout,
            })?
    }

    fn request(
        &self,
        call: &Call<'_>,
        json_body: Option<Bytes>,
        token: Option<&SecretToken>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let uri = format!("{}{}", self.base_url(), call.path);
        let uri: Uri = uri.parse().map_err(|error| ClientError::InvalidUrl {
            url: uri.clone(),
            reason: format!("{error}"),
        })?;
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(ACCEPT, "application/json");
        if json_body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        if let Some(token) = token {
            // A SecretToken is visible ASCII by construction.
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .expect("invariant: a SecretToken holds only visible ASCII");
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        Ok(builder
            .body(Full::new(json_body.unwrap_or_default()))
            .expect("invariant: method, parsed URI and static headers form a valid request"))
    }

    /// The answer as `T` when its status is `expected`, else the agent's
    /// refusal.
    fn json<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        answer: Answer,
        expected: StatusCode,
    ) -> Result<T, ClientError> {
        if answer.status != expected {
            return Err(self.refusal(call, &answer));
        }
        self.decode(call, &answer)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        answer: &Answer,
    ) -> Result<T, ClientError> {
        serde_json::from_slice(&answer.body)
            .map_err(|error| self.decode_error(call, answer.status, error.to_string()))
    }

    /// A non-success answer as an error, with the agent's message when the
    /// body is a Volley error, or the start of the body otherwise.
    fn refusal(&self, call: &Call<'_>, answer: &Answer) -> ClientError {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&answer.body) {
            Ok(body) => (Some(body.error.code), body.error.message),
            Err(_) => {
                let text = String::from_utf8_lossy(&answer.body);
                let text = text.trim();
                let message = if text.is_empty() {
                    answer
                        .status
                        .canonical_reason()
                        .unwrap_or("no explanation")
                        .to_owned()
                } else {
                    let mut quoted: String = text.chars().take(QUOTE).collect();
                    if quoted.len() < text.len() {
                        quoted.push('…');
                    }
                    quoted
                };
                (None, message)
            }
        };
        ClientError::Status {
            url: self.base_url(),
            method: call.method.clone(),
            path: call.path.to_owned(),
            status: answer.status,
            code,
            message,
        }
    }

    fn transport_error(&self, call: &Call<'_>, reason: String) -> ClientError {
        ClientError::Transport {
            url: self.base_url(),
            method: call.method.clone(),
            path: call.path.to_owned(),
            reason,
        }
    }

    fn decode_error(&self, call: &Call<'_>, status: StatusCode, reason: String) -> ClientError {
        ClientError::Decode {
            url: self.base_url(),
            method: call.method.clone(),
            path: call.path.to_owned(),
            status,
            reason,
        }
    }
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base_url())
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

// === impl Call ===

impl<'a> Call<'a> {
    fn new(method: Method, path: &'a str) -> Self {
        Self { method, path }
    }
}

// === impl ClientError ===

impl ClientError {
    /// The HTTP status, when the agent answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } | ClientError::Decode { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The agent's `error.code` (`not_found`, `conflict`, ...), when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Checks and normalises a base URL: `http` scheme, an authority, no query,
/// the path prefix kept without its trailing `/`.
fn parse_base(base_url: &str) -> Result<Uri, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: base_url.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = base_url.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|error: http::uri::InvalidUri| {
            invalid(&format!("{error} (expected e.g. http://127.0.0.1:7070)"))
        })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "https is not supported: the agent API is plain HTTP inside the cluster; use \
                 http:// (from outside, through `kubectl port-forward`)",
            ));
        }
        _ => return Err(invalid("the scheme must be http://")),
    }
    let Some(authority) = uri.authority() else {
        return Err(invalid(
            "it has no host (expected e.g. http://127.0.0.1:7070)",
        ));
    };
    if authority.host().is_empty() {
        return Err(invalid(
            "it has no host (expected e.g. http://127.0.0.1:7070)",
        ));
    }
    if uri.query().is_some() {
        return Err(invalid("a base URL cannot have a query string"));
    }
    let prefix = uri.path().trim_end_matches('/');
    format!("http://{authority}{prefix}")
        .parse()
        .map_err(|error: http::uri::InvalidUri| invalid(&error.to_string()))
}

/// The innermost cause of a transport error, worded for a person:
/// `connection refused`, `timed out`, or the error's own text.
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current: &(dyn StdError + 'static) = error;
    loop {
        if let Some(io) = current.downcast_ref::<io::Error>() {
            return match io.kind() {
                kind @ (io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::TimedOut
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::AddrNotAvailable) => kind.to_string(),
                _ => io.to_string(),
            };
        }
        match current.source() {
            Some(next) => current = next,
            None => return current.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        let cases = [
            ("http://127.0.0.1:7070", "http://127.0.0.1:7070"),
            ("http://127.0.0.1:7070/", "http://127.0.0.1:7070"),
            ("127.0.0.1:7070", "http://127.0.0.1:7070"),
            (
                " http://agent.volley.svc:7070/prefix/ ",
                "http://agent.volley.svc:7070/prefix",
            ),
            ("http://[::1]:7070", "http://[::1]:7070"),
        ];
        for (input, expected) in cases {
            let client = ApiClient::new(input, None).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(client.base_url(), expected, "{input}");
        }
    }

    #[test]
    fn bad_base_urls_say_why() {
        let cases = [
            ("https://agent:7070", "https is not supported"),
            ("ftp://agent", "scheme must be http"),
            ("http://agent:7070/?x=1", "query string"),
            ("http://", "expected e.g."),
            ("http://a b", "expected e.g."),
        ];
        for (input, expected) in cases {
            let error = ApiClient::new(input, None).expect_err(input);
            assert!(matches!(error, ClientError::InvalidUrl { .. }), "{input}");
            assert!(error.to_string().contains(expected), "{input}: {error}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = SecretToken::new("hunter2-token").expect("token");
        let client = ApiClient::new("http://127.0.0.1:1", Some(token)).expect("client");
        let debug = format!("{client:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("127.0.0.1:1"), "{debug}");
    }

    #[test]
    fn root_cause_prefers_the_io_kind() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] io::Error);
        let refused = Outer(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(root_cause(&refused), "connection refused");
        let custom = Outer(io::Error::other("tcp connect error: boom"));
        assert_eq!(root_cause(&custom), "tcp connect error: boom");
        let plain = ClientError::InvalidUrl {
            url: "x".into(),
            reason: "y".into(),
        };
        assert_eq!(root_cause(&plain), plain.to_string());
    }
}
