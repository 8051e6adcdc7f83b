//! From request to response: the route table, method and auth checks, the
//! calls into the [`Agent`], and how answers and errors are written.
//!
//! The router is generic over the request body so it can be exercised
//! without sockets; `server` feeds it hyper's `Incoming`. Every call into
//! the agent runs under the request's deadline and is shielded against
//! panics, so a slow or faulty agent costs one request a 503/500, never the
//! connection or the server.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::header::{
    ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION,
    WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Body;
use serde::Serialize;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

use super::auth::Auth;
use super::dto::{MemberList, ReadyView, TestList};
use super::error::ApiError;
use super::{Agent, prom, query, submit};

/// The response type of every route.
pub(crate) type ApiResponse = Response<Full<Bytes>>;

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// Everything a request needs; shared by all connections.
pub(crate) struct Router {
    pub(crate) agent: Arc<dyn Agent>,
    pub(crate) auth: Auth,
    /// Largest request body accepted.
    pub(crate) max_body: usize,
    /// Budget for reading the body plus the agent's answer.
    pub(crate) request_timeout: Duration,
}

/// A served path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Healthz,
    Readyz,
    Metrics,
    Members,
    Tests,
    Test(String),
    Summary(String),
    /// `/ui`: the fleet's page.
    Ui,
}

/// `GET /v1/tests/{id}/summary?format=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SummaryFormat {
    Json,
    Text,
}

// === impl Router ===

impl Router {
    /// Answers one request. Never fails: errors become JSON error answers.
    pub(crate) async fn handle<B>(&self, request: Request<B>) -> ApiResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Display,
    {
        let started = Instant::now();
        // Only the path is logged: query strings may carry env values.
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let version = request.version();
        let mut response = match self.dispatch(request, started + self.request_timeout).await {
            Ok(response) => response,
            Err(error) => error_response(&error),
        };
        if method == Method::HEAD {
            // HEAD is answered as GET, with the headers (the length
            // included) and without the body.
            let length = response.body().size_hint().exact().unwrap_or(0);
            response
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
            *response.body_mut() = Full::new(Bytes::new());
        }
        // After 413/408 the rest of the body may be unread (a 413 drains
        // only so much), so an HTTP/1 connection cannot carry another
        // request; say so. (HTTP/2 resets
        // just the stream, and forbids the header.)
        let unread = matches!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        );
        if unread && version < Version::HTTP_2 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        debug!(
            %method,
            %path,
            status = response.status().as_u16(),
            elapsed = ?started.elapsed(),
            "api request"
        );
        response
    }

    async fn dispatch<B>(
        &self,
        request: Request<B>,
        deadline: Instant,
    ) -> Result<ApiResponse, ApiError>
    where
        B: Body<Data = Bytes>,
        B::Error: Display,
    {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        let route = Route::resolve(path)?.ok_or_else(|| ApiError::NoRoute {
            method: parts.method.clone(),
            path: path.to_owned(),
        })?;
        let allow = route.allow();
        if !allow.contains(&parts.method) {
            return Err(ApiError::MethodNotAllowed {
                method: parts.method.clone(),
                path: path.to_owned(),
                allow: allow.to_vec(),
            });
        }
        if parts.method == Method::POST || parts.method == Method::DELETE {
            self.auth
                .check(&parts.headers)
                .map_err(ApiError::Unauthorized)?;
        }
        let agent = &self.agent;
        match (route, parts.method) {
            (Route::Healthz, _) => Ok(text(StatusCode::OK, TEXT, "ok\n".into())),
            (Route::Ui, _) => Ok(ui_page()),
            (Route::Readyz, _) => {
                let ready = self.call(deadline, async { agent.ready() }).await?;
                let status = match ready {
                    true => StatusCode::OK,
                    false => StatusCode::SERVICE_UNAVAILABLE,
                };
                Ok(json(status, &ReadyView { ready }))
            }
            (Route::Metrics, _) => {
                let snapshot = self.call(deadline, agent.prometheus()).await?;
                Ok(text(StatusCode::OK, prom::CONTENT_TYPE, snapshot.render()))
            }
            (Route::Members, _) => {
                let members = self.call(deadline, agent.members()).await?;
                Ok(json(StatusCode::OK, &MemberList { members }))
            }
            (Route::Tests, Method::POST) => {
                let bytes = timeout_at(
                    deadline,
                    submit::read_body(&parts.headers, body, self.max_body),
                )
                .await
                .map_err(|_| ApiError::RequestTimeout {
                    after: self.request_timeout,
                })??;
                let request = submit::parse(&parts.headers, parts.uri.query(), &bytes)?;
                let created = self.call(deadline, agent.submit(request)).await??;
                let mut response = json(StatusCode::CREATED, &created);
                let location = format!("/v1/tests/{}", query::encode(&created.id));
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, value);
                }
                Ok(response)
            }
            (Route::Tests, _) => {
                let tests = match tests_scope(parts.uri.query())? {
                    TestsScope::Fleet => self.call(deadline, agent.list_fleet_tests()).await?,
                    TestsScope::Local => self.call(deadline, agent.list_tests()).await?,
                };
                Ok(json(StatusCode::OK, &TestList { tests }))
            }
            (Route::Test(id), Method::DELETE) => {
                let aborted = self.call(deadline, agent.abort(&id)).await??;
                Ok(json(StatusCode::OK, &aborted))
            }
            (Route::Test(id), _) => {
                let view = self.call(deadline, agent.get_test(&id)).await??;
                Ok(json(StatusCode::OK, &view))
            }
            (Route::Summary(id), _) => {
                let format = summary_format(parts.uri.query())?;
                let view = self.call(deadline, agent.get_summary(&id)).await??;
                Ok(match format {
                    SummaryFormat::Json => json(StatusCode::OK, &view),
                    SummaryFormat::Text => text(StatusCode::OK, TEXT, view.text),
                })
            }
        }
    }

    /// Runs an agent call under the request deadline, turning a timeout
    /// into 503 and a panic into 500.
    async fn call<T>(
        &self,
        deadline: Instant,
        future: impl Future<Output = T>,
    ) -> Result<T, ApiError> {
        match timeout_at(deadline, AssertUnwindSafe(future).catch_unwind()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_panic)) => Err(ApiError::Internal {
                message: "the agent failed while answering; its log has the details".to_owned(),
            }),
            Err(_elapsed) => Err(ApiError::Unavailable {
                message: format!(
                    "the agent did not answer within {:?}; a submit or abort may still take \
                     effect, so check GET /v1/tests before retrying",
                    self.request_timeout
                ),
            }),
        }
    }
}

// === impl Route ===

impl Route {
    /// The route for `path` (one trailing slash tolerated), `None` for a
    /// path the API does not serve.
    fn resolve(path: &str) -> Result<Option<Route>, ApiError> {
        let path = match path.strip_suffix('/') {
            Some(trimmed) if !trimmed.is_empty() => trimmed,
            _ => path,
        };
        let route = match path {
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/v1/members" => Route::Members,
            "/v1/tests" => Route::Tests,
            "/ui" => Route::Ui,
            _ => {
                let Some(rest) = path.strip_prefix("/v1/tests/") else {
                    return Ok(None);
                };
                let (raw_id, tail) = match rest.split_once('/') {
                    Some((id, tail)) => (id, Some(tail)),
                    None => (rest, None),
                };
                if raw_id.is_empty() {
                    return Ok(None);
                }
                let id = query::decode(raw_id, false).map_err(|reason| ApiError::BadRequest {
                    message: format!("the test id {raw_id:?} in the path {reason}"),
                })?;
                match tail {
                    None => Route::Test(id),
                    Some("summary") => Route::Summary(id),
                    Some(_) => return Ok(None),
                }
            }
        };
        Ok(Some(route))
    }

    /// Methods served; HEAD wherever GET is (answered as GET without a body).
    fn allow(&self) -> &'static [Method] {
        match self {
            Route::Tests => &[Method::GET, Method::HEAD, Method::POST],
            Route::Test(_) => &[Method::GET, Method::HEAD, Method::DELETE],
            _ => &[Method::GET, Method::HEAD],
        }
    }
}

/// `GET /v1/tests?scope=...`: the fleet's tests (default), or this agent's
/// own (what agents ask each other, so a listing never recurses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TestsScope {
    Fleet,
    Local,
}

fn tests_scope(query: Option<&str>) -> Result<TestsScope, ApiError> {
    let mut scope = TestsScope::Fleet;
    for (key, value) in query::pairs(query.unwrap_or(""))? {
        scope = match (key.as_str(), value.as_str()) {
            ("scope", "fleet") => TestsScope::Fleet,
            ("scope", "local") => TestsScope::Local,
            ("scope", other) => {
                return Err(ApiError::BadRequest {
                    message: format!(
                        "test list scope {other:?} is not known; expected scope=fleet or scope=local"
                    ),
                });
            }
            _ => {
                return Err(ApiError::BadRequest {
                    message: format!(
                        "unknown query parameter {key:?} for the test list; known: scope"
                    ),
                });
            }
        };
    }
    Ok(scope)
}

fn summary_format(query: Option<&str>) -> Result<SummaryFormat, ApiError> {
    let mut format = SummaryFormat::Json;
    for (key, value) in query::pairs(query.unwrap_or(""))? {
        format = match (key.as_str(), value.as_str()) {
            ("format", "json") => SummaryFormat::Json,
            ("format", "text") => SummaryFormat::Text,
            ("format", other) => {
                return Err(ApiError::BadRequest {
                    message: format!(
                        "summary format {other:?} is not known; expected format=json or format=text"
                    ),
                });
            }
            _ => {
                return Err(ApiError::BadRequest {
                    message: format!(
                        "unknown query parameter {key:?} for a summary; known: format"
                    ),
                });
            }
        };
    }
    Ok(format)
}

// === responses ===

/// The `/ui` page, built once; it may only talk to this origin.
fn ui_page() -> ApiResponse {
    static PAGE: std::sync::LazyLock<Bytes> =
        std::sync::LazyLock::new(|| Bytes::from(crate::report::html::ui_page()));
    let mut response = base(StatusCode::OK, "text/html; charset=utf-8", PAGE.clone());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::report::html::render::LIVE_CSP),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    response
}

fn base(status: StatusCode, content_type: &'static str, body: Bytes) -> ApiResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Answers describe a moving fleet; a cached one is a wrong one.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> ApiResponse {
    base(status, content_type, Bytes::from(body))
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> ApiResponse {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            base(status, JSON, Bytes::from(body))
        }
        Err(error) => error_response(&ApiError::Internal {
            message: format!("the answer could not be encoded as JSON: {error}"),
        }),
    }
}

/// The JSON answer for `error`, with the headers its status calls for.
pub(crate) fn error_response(error: &ApiError) -> ApiResponse {
    let body = serde_json::to_vec(&error.body()).map_or_else(
        |_| Bytes::from_static(br#"{"error":{"code":"internal","message":"unencodable error"}}"#),
        |mut body| {
            body.push(b'\n');
            Bytes::from(body)
        },
    );
    let mut response = base(error.status(), JSON, body);
    let headers = response.headers_mut();
    match error {
        ApiError::MethodNotAllowed { allow, .. } => {
            let list: Vec<&str> = allow.iter().map(Method::as_str).collect();
            if let Ok(value) = HeaderValue::from_str(&list.join(", ")) {
                headers.insert(ALLOW, value);
            }
        }
        ApiError::Unauthorized(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use futures::future::{self, BoxFuture};
    use http_body_util::BodyExt;

    use super::*;
    use crate::api::dto::{
        AbortResponse, MemberView, SubmitRequest, SubmitResponse, SummaryView, TestBrief, TestView,
    };
    use crate::api::prom::PromSnapshot;

    /// An agent that never answers, except `ready`, which panics.
    struct Stuck;

    impl Agent for Stuck {
        fn submit(&self, _: SubmitRequest) -> BoxFuture<'_, Result<SubmitResponse, ApiError>> {
            Box::pin(future::pending())
        }
        fn list_tests(&self) -> BoxFuture<'_, Vec<TestBrief>> {
            Box::pin(future::pending())
        }
        fn get_test(&self, _: &str) -> BoxFuture<'_, Result<TestView, ApiError>> {
            Box::pin(future::pending())
        }
        fn get_summary(&self, _: &str) -> BoxFuture<'_, Result<SummaryView, ApiError>> {
            Box::pin(future::pending())
        }
        fn abort(&self, _: &str) -> BoxFuture<'_, Result<AbortResponse, ApiError>> {
            Box::pin(future::pending())
        }
        fn members(&self) -> BoxFuture<'_, Vec<MemberView>> {
            Box::pin(future::pending())
        }
        fn ready(&self) -> bool {
            panic!("readiness probe fault")
        }
        fn prometheus(&self) -> BoxFuture<'_, PromSnapshot> {
            Box::pin(future::pending())
        }
    }

    fn router(max_body: usize) -> Router {
        Router {
            agent: Arc::new(Stuck),
            auth: Auth {
                token: None,
                allow_unauthenticated: true,
            },
            max_body,
            request_timeout: Duration::from_secs(30),
        }
    }

    fn request(
        method: Method,
        path: &str,
        version: Version,
        body: &'static str,
    ) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::from_static(body.as_bytes())));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().expect("valid path");
        *request.version_mut() = version;
        request
    }

    async fn error_of(response: ApiResponse) -> (StatusCode, String) {
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("full body")
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON error");
        let code = json["error"]["code"].as_str().expect("code").to_owned();
        (status, code)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_agent_costs_a_503_after_the_request_timeout() {
        let router = router(1024);
        let started = Instant::now();
        let response = router
            .handle(request(Method::GET, "/v1/tests", Version::HTTP_11, ""))
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(
            error_of(response).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_owned())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_agent_costs_a_500() {
        let response = router(1024)
            .handle(request(Method::GET, "/readyz", Version::HTTP_11, ""))
            .await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::INTERNAL_SERVER_ERROR, "internal".to_owned())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn connection_close_only_for_http1_after_an_unread_body() {
        let router = router(4);
        for (version, expected) in [
            (Version::HTTP_10, Some("close")),
            (Version::HTTP_11, Some("close")),
            (Version::HTTP_2, None),
        ] {
            let response = router
                .handle(request(Method::POST, "/v1/tests", version, "too long"))
                .await;
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let connection = response
                .headers()
                .get(CONNECTION)
                .map(|v| v.to_str().expect("ascii"));
            assert_eq!(connection, expected, "{version:?}");
        }
        let response = router
            .handle(request(Method::GET, "/nope", Version::HTTP_11, ""))
            .await;
        assert!(response.headers().get(CONNECTION).is_none());
    }

    #[test]
    fn routes_resolve() {
        let cases = [
            ("/healthz", Some(Route::Healthz)),
            ("/readyz/", Some(Route::Readyz)),
            ("/metrics", Some(Route::Metrics)),
            ("/v1/members", Some(Route::Members)),
            ("/ui", Some(Route::Ui)),
            ("/ui/", Some(Route::Ui)),
            ("/v1/tests", Some(Route::Tests)),
            ("/v1/tests/", Some(Route::Tests)),
            ("/v1/tests/t-1", Some(Route::Test("t-1".into()))),
            ("/v1/tests/a%20b", Some(Route::Test("a b".into()))),
            ("/v1/tests/t-1/summary", Some(Route::Summary("t-1".into()))),
            ("/v1/tests/t-1/summary/", Some(Route::Summary("t-1".into()))),
            ("/", None),
            ("/v1/tests//summary", None),
            ("/v1/tests/t-1/other", None),
            ("/v2/tests", None),
            ("/healthz/x", None),
        ];
        for (path, expected) in cases {
            assert_eq!(Route::resolve(path).expect(path), expected, "{path}");
        }
        let error = Route::resolve("/v1/tests/%zz").expect_err("bad escape");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    proptest::proptest! {
        #[test]
        fn resolving_never_panics(path in "/[a-z0-9/%.]{0,30}") {
            let _ = Route::resolve(&path);
        }
    }

    #[test]
    fn summary_formats() {
        assert_eq!(summary_format(None), Ok(SummaryFormat::Json));
        assert_eq!(summary_format(Some("format=text")), Ok(SummaryFormat::Text));
        assert_eq!(summary_format(Some("format=json")), Ok(SummaryFormat::Json));
        assert!(summary_format(Some("format=xml")).is_err());
        assert!(summary_format(Some("fmt=text")).is_err());
    }

    #[test]
    fn error_responses_carry_their_headers() {
        let response = error_response(&ApiError::MethodNotAllowed {
            method: Method::PUT,
            path: "/v1/tests".into(),
            allow: vec![Method::GET, Method::POST],
        });
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, POST");
        assert_eq!(response.headers()[CONTENT_TYPE], JSON);

        let response = error_response(&ApiError::Unauthorized(
            super::super::error::AuthFailure::Missing,
        ));
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    }
}
