//! The API's error vocabulary: [`ApiError`] (what an [`Agent`](super::Agent)
//! or the router reports), its HTTP status and stable `code`, and the JSON
//! body every error answer carries:
//!
//! ```json
//! {"error": {"code": "not_found", "message": "no test \"t-123\" on this fleet (known: t-1, t-2)"}}
//! ```
//!
//! Messages are written for a person at a terminal: what was wrong, where,
//! the value, the expected form. They never contain the bearer token.

use std::fmt;
use std::time::Duration;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// Everything an API request can fail with. The agent returns these from
/// its [`Agent`](super::Agent) methods; the router adds the ones about the
/// request itself (routing, auth, body).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or its plan is invalid (the message names
    /// the field path, e.g. `scenarios.main.stages[2].target`).
    #[error("{message}")]
    BadRequest { message: String },

    /// A mutating endpoint without an acceptable bearer token.
    #[error("{0}")]
    Unauthorized(AuthFailure),

    /// A test (or other object) that does not exist. `what` completes "no
    /// …": `test "t-123" on this fleet (known: t-1, t-2)`.
    #[error("no {what}")]
    NotFound { what: String },

    /// A path the API does not serve at all.
    #[error("no route for {method} {path}; this API serves: {}", ROUTES.join(", "))]
    NoRoute { method: Method, path: String },

    /// A served path asked with a method it does not support.
    #[error("{method} is not allowed on {path}; use {}", join_methods(allow))]
    MethodNotAllowed {
        method: Method,
        path: String,
        allow: Vec<Method>,
    },

    /// The request clashes with the fleet's state, e.g. a submit while the
    /// selected agents are busy (the message names them and their test), or
    /// a summary asked for while the test still runs.
    #[error("{message}")]
    Conflict { message: String },

    /// A second abort, or an abort of a test that is over.
    #[error("test \"{id}\" already {ending} at {}", format_unix_ms(*at_unix_ms))]
    AlreadyDone {
        id: String,
        ending: Ending,
        at_unix_ms: u64,
    },

    /// The request body is larger than [`ApiConfig::max_body`](super::ApiConfig::max_body).
    #[error(
        "request body is larger than the agent API's {limit}-byte limit (a fixed limit, no \
         setting raises it): a submit carries the plan with its data files, script modules and \
         opened files, so make those smaller"
    )]
    PayloadTooLarge { limit: usize },

    /// A submit body of a type the API does not read.
    #[error(
        "cannot read a plan sent as {content_type:?}: send the JSON submit request as \
         `application/json`, or the plan itself as `application/yaml` or `text/plain` \
         (with curl: `--data-binary @plan.yaml -H 'Content-Type: application/yaml'`)"
    )]
    UnsupportedMediaType { content_type: String },

    /// The client did not finish sending its body in time.
    #[error("the request body did not arrive within {after:?}")]
    RequestTimeout { after: Duration },

    /// A well-formed request the fleet cannot carry out: fewer matching
    /// agents than `minAgents`, clock offsets over tolerance.
    #[error("{message}")]
    Unprocessable { message: String },

    /// The agent cannot serve the request now (not joined, draining, slow).
    #[error("{message}")]
    Unavailable { message: String },

    /// A fault in the agent itself.
    #[error("internal error: {message}")]
    Internal { message: String },
}

/// Why a bearer token was not accepted. No variant carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error(
        "missing bearer token: this endpoint needs `Authorization: Bearer <token>` with the \
         agent's API token"
    )]
    Missing,
    #[error("the Authorization header is not of the form `Bearer <token>`")]
    Malformed,
    #[error("wrong bearer token: it does not match the agent's API token")]
    Wrong,
    #[error(
        "this agent runs without an API token file, so it refuses to start or abort tests; \
         give it a token file (and send the token as `Authorization: Bearer <token>`)"
    )]
    NotConfigured,
}

/// How a test that can no longer be aborted ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It ran to its end.
    Ended,
    /// It was aborted before.
    Aborted,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Ended => "ended",
            Ending::Aborted => "was aborted",
        })
    }
}

/// Every route the API serves, for 404 answers and the docs.
pub const ROUTES: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/members",
    "GET /v1/tests",
    "POST /v1/tests",
    "GET /v1/tests/{id}",
    "DELETE /v1/tests/{id}",
    "GET /v1/tests/{id}/summary",
    "GET /ui",
];

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-matchable (`not_found`, `conflict`, ...).
    pub code: String,
    /// For a person; see [`ApiError`]'s variants.
    pub message: String,
    /// The routes the API serves, on `no route` answers only, so a client
    /// that got a path wrong sees the right ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
}

// === impl ApiError ===

impl ApiError {
    /// `NotFound` for a test id. The ids the fleet knows are not listed: a
    /// 404 must not enumerate tests to whoever guesses a URL.
    pub fn unknown_test(id: &str) -> Self {
        ApiError::NotFound {
            what: format!("test {id:?} on this fleet (`volley tests` lists its tests)"),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::AlreadyDone { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `error.code` of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::AlreadyDone { .. } => "already_done",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal { .. } => "internal",
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        let routes = match self {
            ApiError::NoRoute { .. } => ROUTES.iter().map(|r| (*r).to_owned()).collect(),
            _ => Vec::new(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                routes,
            },
        }
    }
}

fn join_methods(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `2025-03-01T12:00:05.250Z` (UTC) for a Unix time in milliseconds, or the
/// raw number when it is outside the calendar's range.
pub(crate) fn format_unix_ms(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        ),
        Err(_) => format!("{unix_ms} ms after the Unix epoch"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status_and_code() {
        let cases = [
            (
                ApiError::BadRequest {
                    message: "x".into(),
                },
                400,
                "bad_request",
            ),
            (
                ApiError::Unauthorized(AuthFailure::Wrong),
                401,
                "unauthorized",
            ),
            (ApiError::NotFound { what: "x".into() }, 404, "not_found"),
            (
                ApiError::NoRoute {
                    method: Method::GET,
                    path: "/x".into(),
                },
                404,
                "not_found",
            ),
            (
                ApiError::MethodNotAllowed {
                    method: Method::PUT,
                    path: "/v1/tests".into(),
                    allow: vec![Method::GET, Method::POST],
                },
                405,
                "method_not_allowed",
            ),
            (
                ApiError::Conflict {
                    message: "x".into(),
                },
                409,
                "conflict",
            ),
            (
                ApiError::AlreadyDone {
                    id: "t-1".into(),
                    ending: Ending::Aborted,
                    at_unix_ms: 0,
                },
                409,
                "already_done",
            ),
            (
                ApiError::PayloadTooLarge { limit: 10 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::UnsupportedMediaType {
                    content_type: "x".into(),
                },
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::RequestTimeout {
                    after: Duration::from_secs(1),
                },
                408,
                "request_timeout",
            ),
            (
                ApiError::Unprocessable {
                    message: "x".into(),
                },
                422,
                "unprocessable",
            ),
            (
                ApiError::Unavailable {
                    message: "x".into(),
                },
                503,
                "unavailable",
            ),
            (
                ApiError::Internal {
                    message: "x".into(),
                },
                500,
                "internal",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.body().error.code, code);
            assert_eq!(error.body().error.message, error.to_string());
        }
    }

    #[test]
    fn unknown_test_names_the_id_and_no_other() {
        assert_eq!(
            ApiError::unknown_test("t-123").to_string(),
            "no test \"t-123\" on this fleet (`volley tests` lists its tests)"
        );
    }

    #[test]
    fn already_done_says_how_and_when() {
        let error = ApiError::AlreadyDone {
            id: "t-7".into(),
            ending: Ending::Aborted,
            at_unix_ms: 1_740_830_405_250,
        };
        assert_eq!(
            error.to_string(),
            "test \"t-7\" already was aborted at 2025-03-01T12:00:05.250Z"
        );
        let ended = ApiError::AlreadyDone {
            id: "t-7".into(),
            ending: Ending::Ended,
            at_unix_ms: 0,
        };
        assert_eq!(
            ended.to_string(),
            "test \"t-7\" already ended at 1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn out_of_range_times_fall_back_to_the_number() {
        assert_eq!(
            format_unix_ms(u64::MAX),
            format!("{} ms after the Unix epoch", u64::MAX)
        );
    }

    #[test]
    fn no_route_and_wrong_method_explain_what_exists() {
        let error = ApiError::NoRoute {
            method: Method::GET,
            path: "/v2/tests".into(),
        };
        let body = error.body();
        assert_eq!(body.error.routes.len(), ROUTES.len());
        assert!(body.error.message.contains("GET /v1/tests/{id}/summary"));
        let json = serde_json::to_value(&body).expect("invariant: plain data serialises");
        assert_eq!(json["error"]["code"], "not_found");

        let wrong = ApiError::MethodNotAllowed {
            method: Method::PUT,
            path: "/v1/tests".into(),
            allow: vec![Method::GET, Method::POST],
        };
        assert_eq!(
            wrong.to_string(),
            "PUT is not allowed on /v1/tests; use GET, POST"
        );
        let json = serde_json::to_value(wrong.body()).expect("invariant: plain data serialises");
        assert!(json["error"].get("routes").is_none(), "{json}");
    }
}
