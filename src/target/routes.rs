//! The target's routes: mapping a request path to a [`Route`], validating its
//! parameter and building the response.
//!
//! Every method is accepted on every route: load plans POST to `/status/201`
//! as often as they GET it, and `/echo` exists for bodies. Bad parameters get a
//! 400 whose body says what was wrong and what form is expected. Fixed bodies
//! are static; only `/json`, `/headers`, `/echo` headers and error messages
//! build anything per request.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, SERVER};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::watch;

use super::body::TargetBody;
use super::session;
use super::stats::{Route, TargetStats};

/// Body of `/`.
const ROOT_BODY: &[u8] = b"Volley target\n";

/// Body of a 404: tells a person poking at the target what exists.
const NOT_FOUND_BODY: &[u8] = b"not found; routes: / /bytes/N /delay/MS /status/CODE /json \
/echo /headers /stall /drop /redirect/N /cookies /cookies/set?NAME=VALUE \
/digest-auth/auth/USER/PASSWORD\n";

/// Body of `/delay/MS` once the delay has passed.
const DELAY_BODY: &[u8] = b"delayed\n";

/// The last stretch of a `/delay/MS` spent yielding rather than on the
/// millisecond timer, so the delay is exact to well under a millisecond.
const DELAY_SPIN: Duration = Duration::from_millis(2);

/// Longest chain `/redirect/N` serves.
const MAX_REDIRECTS: u64 = 100;

/// Value of the `Server` header on every response.
const SERVER_NAME: &str = "volley-target";

/// Header carrying the request method on `/echo` responses.
const X_ECHO_METHOD: HeaderName = HeaderName::from_static("x-echo-method");

pub(super) const TEXT: &str = "text/plain; charset=utf-8";
pub(super) const JSON: &str = "application/json";
const OCTETS: &str = "application/octet-stream";

/// Lowest and highest status `/status/CODE` serves (1xx cannot be a final
/// response, and the `http` crate's codes stop being meaningful past 599).
const STATUS_RANGE: std::ops::RangeInclusive<u16> = 200..=599;

/// The service error that makes hyper drop a `/stall` request without an
/// answer once the target shuts down (h1 closes the connection, h2 resets the
/// stream).
#[derive(Debug, thiserror::Error)]
#[error("/stall request released without an answer because the target is shutting down")]
pub(crate) struct StallReleased;

/// Everything a request handler needs; one per server, shared by `Arc`.
#[derive(Debug)]
pub(crate) struct Router {
    /// Upper bound for `/delay/MS`, so a typo cannot hold a connection for days.
    pub(crate) max_delay: Duration,
    /// Upper bound for `/bytes/N`, so one request cannot stream forever.
    pub(crate) max_bytes: usize,
    /// Held before every answer (see `TargetConfig::added_latency`).
    pub(crate) added_latency: Duration,
    /// Counters updated per request.
    pub(crate) stats: Arc<TargetStats>,
    /// Becomes `true` when the server shuts down; releases `/stall` requests.
    pub(crate) stop_rx: watch::Receiver<bool>,
}

impl Router {
    /// Answers one request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<TargetBody>, StallReleased> {
        if !self.added_latency.is_zero() {
            let at = tokio::time::Instant::now() + self.added_latency;
            crate::clock::sleep_until_precise(at, DELAY_SPIN).await;
        }
        let (route, param) = classify(req.uri().path());
        let count = self.stats.record_request(route);
        let stats = &self.stats;
        let response = match route {
            Route::Root => respond(
                StatusCode::OK,
                TEXT,
                TargetBody::from_static(ROOT_BODY, stats),
            ),
            Route::Bytes => match parse_number(param).filter(|n| *n <= self.max_bytes as u64) {
                Some(len) => respond(StatusCode::OK, OCTETS, TargetBody::pattern(len, stats)),
                None => self.bad_request(format!(
                    "/bytes/{param}: expected a byte count from 0 to {} (e.g. /bytes/1024)\n",
                    self.max_bytes
                )),
            },
            Route::Delay => match parse_number(param)
                .map(Duration::from_millis)
                .filter(|d| *d <= self.max_delay)
            {
                Some(delay) => {
                    // tokio's timer alone would add up to ~2 ms to every delay.
                    let at = tokio::time::Instant::now() + delay;
                    crate::clock::sleep_until_precise(at, DELAY_SPIN).await;
                    respond(
                        StatusCode::OK,
                        TEXT,
                        TargetBody::from_static(DELAY_BODY, stats),
                    )
                }
                None => self.bad_request(format!(
                    "/delay/{param}: expected a delay in milliseconds from 0 to {} \
                     (e.g. /delay/250)\n",
                    self.max_delay.as_millis()
                )),
            },
            Route::Status => match parse_status(param) {
                Some(status) => respond(status, TEXT, TargetBody::full(status_body(status), stats)),
                None => self.bad_request(format!(
                    "/status/{param}: expected a status code from {} to {} (e.g. /status/503); \
                     1xx codes cannot be a final response\n",
                    STATUS_RANGE.start(),
                    STATUS_RANGE.end()
                )),
            },
            Route::Json => respond(
                StatusCode::OK,
                JSON,
                TargetBody::full(json_doc(count), stats),
            ),
            Route::Echo => echo(req, stats),
            Route::Headers => headers_doc(&req, stats),
            Route::Redirect => match parse_number(param).filter(|n| *n <= MAX_REDIRECTS) {
                Some(n) => session::redirect(n, stats),
                None => self.bad_request(format!(
                    "/redirect/{param}: expected a number of redirects from 0 to {MAX_REDIRECTS} \
                     (e.g. /redirect/3)\n"
                )),
            },
            Route::Cookies => session::cookies(&req, stats),
            Route::DigestAuth => match session::digest_auth(&req, param, stats) {
                Ok(r) => r,
                Err(message) => self.bad_request(message),
            },
            Route::CookiesSet => match session::set_cookies(req.uri().query().unwrap_or(""), stats)
            {
                Ok(r) => r,
                Err(message) => self.bad_request(message),
            },
            Route::Stall => {
                let mut stop_rx = self.stop_rx.clone();
                // Either outcome (stop signalled, or the server is gone) releases it.
                let _ = stop_rx.wait_for(|stop| *stop).await;
                return Err(StallReleased);
            }
            Route::Drop => respond(StatusCode::OK, OCTETS, TargetBody::dropping(stats)),
            Route::NotFound => respond(
                StatusCode::NOT_FOUND,
                TEXT,
                TargetBody::from_static(NOT_FOUND_BODY, stats),
            ),
        };
        Ok(response)
    }

    fn bad_request(&self, message: String) -> Response<TargetBody> {
        respond(
            StatusCode::BAD_REQUEST,
            TEXT,
            TargetBody::full(Bytes::from(message), &self.stats),
        )
    }
}

/// Maps a request path to its route and the route's parameter (the text after
/// `/bytes/`, `/delay/` or `/status/`; empty for other routes).
pub(crate) fn classify(path: &str) -> (Route, &str) {
    let fixed = match path {
        "/" => Some(Route::Root),
        "/json" => Some(Route::Json),
        "/echo" => Some(Route::Echo),
        "/headers" => Some(Route::Headers),
        "/stall" => Some(Route::Stall),
        "/drop" => Some(Route::Drop),
        "/cookies" => Some(Route::Cookies),
        "/cookies/set" => Some(Route::CookiesSet),
        _ => None,
    };
    if let Some(route) = fixed {
        return (route, "");
    }
    const PARAMETERISED: [(&str, Route); 5] = [
        ("/bytes/", Route::Bytes),
        ("/delay/", Route::Delay),
        ("/status/", Route::Status),
        ("/redirect/", Route::Redirect),
        ("/digest-auth/", Route::DigestAuth),
    ];
    for (prefix, route) in PARAMETERISED {
        if let Some(param) = path.strip_prefix(prefix) {
            return (route, param);
        }
    }
    (Route::NotFound, "")
}

/// A non-negative decimal integer made of ASCII digits only (no sign, no
/// spaces); `None` if malformed or above `u64::MAX`.
pub(crate) fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A final status code in [`STATUS_RANGE`].
fn parse_status(text: &str) -> Option<StatusCode> {
    let code = u16::try_from(parse_number(text)?).ok()?;
    if !STATUS_RANGE.contains(&code) {
        return None;
    }
    StatusCode::from_u16(code).ok()
}

/// The small body of `/status/CODE` (`"503 Service Unavailable\n"`), built once
/// per code and then shared. Statuses that forbid content get none.
fn status_body(status: StatusCode) -> Bytes {
    static BODIES: OnceLock<Vec<Bytes>> = OnceLock::new();
    if matches!(
        status,
        StatusCode::NO_CONTENT | StatusCode::RESET_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        return Bytes::new();
    }
    let bodies = BODIES.get_or_init(|| {
        STATUS_RANGE
            .map(|code| {
                let reason = StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason());
                Bytes::from(match reason {
                    Some(reason) => format!("{code} {reason}\n"),
                    None => format!("{code}\n"),
                })
            })
            .collect()
    });
    let index = usize::from(status.as_u16() - STATUS_RANGE.start());
    bodies.get(index).cloned().unwrap_or_default()
}

/// The `/json` document; `count` makes each token distinct.
fn json_doc(count: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":42,"name":"volley","token":"tok-{count}","items":[{{"id":1,"name":"alpha"}},{{"id":2,"name":"beta"}}],"ok":true}}"#
    ))
}

/// `/echo`: the request body streamed back with its content type and
/// content coding (a gzip body comes back as a gzip response), plus the
/// method in `x-echo-method`.
fn echo(req: Request<Incoming>, stats: &Arc<TargetStats>) -> Response<TargetBody> {
    let content_type = req.headers().get(CONTENT_TYPE).cloned();
    let coding = req.headers().get(CONTENT_ENCODING).cloned();
    // Method tokens are always valid header values; skip the header otherwise.
    let method = HeaderValue::from_str(req.method().as_str()).ok();
    let mut response = respond(
        StatusCode::OK,
        OCTETS,
        TargetBody::echo(req.into_body(), stats),
    );
    let headers = response.headers_mut();
    match content_type {
        Some(value) => headers.insert(CONTENT_TYPE, value),
        None => headers.remove(CONTENT_TYPE),
    };
    if let Some(method) = method {
        headers.insert(X_ECHO_METHOD, method);
    }
    if let Some(coding) = coding {
        headers.insert(CONTENT_ENCODING, coding);
    }
    response
}

/// `/headers`: a JSON object of the request headers; repeated names are
/// joined with `", "`, non-UTF-8 bytes replaced.
fn headers_doc(req: &Request<Incoming>, stats: &Arc<TargetStats>) -> Response<TargetBody> {
    let mut map: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    match serde_json::to_vec(&map) {
        Ok(doc) => respond(
            StatusCode::OK,
            JSON,
            TargetBody::full(Bytes::from(doc), stats),
        ),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            TargetBody::full(
                Bytes::from(format!("encoding headers as JSON: {e}\n")),
                stats,
            ),
        ),
    }
}

/// A response with the given status, content type and body, plus `Server`.
pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: TargetBody,
) -> Response<TargetBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(SERVER, HeaderValue::from_static(SERVER_NAME));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixed_paths_map_to_their_routes() {
        let cases = [
            ("/", Route::Root),
            ("/json", Route::Json),
            ("/echo", Route::Echo),
            ("/headers", Route::Headers),
            ("/stall", Route::Stall),
            ("/drop", Route::Drop),
            ("/nope", Route::NotFound),
            ("", Route::NotFound),
            ("/json/", Route::NotFound),
            ("/bytes", Route::NotFound),
            ("/Bytes/1", Route::NotFound),
        ];
        for (path, route) in cases {
            assert_eq!(classify(path), (route, ""), "{path:?}");
        }
    }

    #[test]
    fn parameterised_paths_carry_their_parameter() {
        assert_eq!(classify("/bytes/1024"), (Route::Bytes, "1024"));
        assert_eq!(classify("/delay/"), (Route::Delay, ""));
        assert_eq!(classify("/status/5x"), (Route::Status, "5x"));
        assert_eq!(classify("/bytes/1/2"), (Route::Bytes, "1/2"));
    }

    #[test]
    fn numbers_are_plain_digits() {
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("007"), Some(7));
        assert_eq!(parse_number("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.5",
            "1e3",
            "0x10",
            "18446744073709551616",
        ] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn status_accepts_final_codes_only() {
        assert_eq!(parse_status("200"), Some(StatusCode::OK));
        assert_eq!(parse_status("599").map(|s| s.as_u16()), Some(599));
        for bad in ["100", "101", "199", "600", "99", "0", "70000", "abc", ""] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn status_bodies_name_the_code() {
        assert_eq!(
            status_body(StatusCode::SERVICE_UNAVAILABLE),
            "503 Service Unavailable\n"
        );
        assert_eq!(status_body(StatusCode::from_u16(599).unwrap()), "599\n");
        assert!(status_body(StatusCode::NO_CONTENT).is_empty());
        assert!(status_body(StatusCode::NOT_MODIFIED).is_empty());
    }

    #[test]
    fn json_doc_is_valid_and_carries_the_token() {
        let doc: serde_json::Value = serde_json::from_slice(&json_doc(7)).unwrap();
        assert_eq!(doc["id"], 42);
        assert_eq!(doc["token"], "tok-7");
        assert_eq!(doc["items"][1]["id"], 2);
        assert_eq!(doc["ok"], true);
    }

    proptest! {
        #[test]
        fn classify_never_panics_and_keeps_the_suffix(path in ".{0,40}") {
            let (route, param) = classify(&path);
            prop_assert!(path.ends_with(param));
            if !param.is_empty() {
                prop_assert!(matches!(
                    route,
                    Route::Bytes | Route::Delay | Route::Status | Route::Redirect | Route::DigestAuth
                ));
            }
        }

        #[test]
        fn numbers_round_trip(n in any::<u64>()) {
            prop_assert_eq!(parse_number(&n.to_string()), Some(n));
        }

        #[test]
        fn non_digits_are_rejected(text in ".*[^0-9].*") {
            prop_assert_eq!(parse_number(&text), None);
        }
    }
}
