//! Turning a `POST /v1/tests` request into a checked [`SubmitRequest`]:
//! reading the body within the size limit, telling the JSON request form
//! from a raw plan by `Content-Type`, and the checks the API can make
//! without the plan parser (an empty plan, `minAgents: 0`, a malformed
//! `leadTime`). The agent validates the plan itself.

use std::fmt::Display;
use std::pin::pin;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;
use hyper::body::Body;

use super::dto::SubmitRequest;
use super::error::ApiError;
use super::query;

/// Raw plan media types (besides a missing `Content-Type`).
const RAW_TYPES: &[&str] = &[
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "text/plain",
];

/// How a submit body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyForm {
    /// A JSON [`SubmitRequest`].
    Json,
    /// The plan text itself, options in the query string.
    Raw,
}

/// How much of an oversized body is read and thrown away before the 413 is
/// sent. A client still writing its body when the server answers and closes
/// gets a broken pipe instead of the answer; draining lets it finish and
/// read why. Beyond this the connection is closed at once.
const DRAIN_BUDGET: u64 = 16 << 20;

/// Reads the whole body, refusing (413) once it is known to be over
/// `limit`: from `Content-Length` before keeping anything, then while
/// streaming for bodies without one (chunked) or that lie about it. What
/// is left of an oversized body is drained (up to [`DRAIN_BUDGET`]) first.
pub(crate) async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut body = pin!(body);
    if declared.is_some_and(|len| len > limit as u64) {
        if declared.is_some_and(|len| len <= DRAIN_BUDGET) {
            drain(body.as_mut(), DRAIN_BUDGET).await;
        }
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut buf = BytesMut::with_capacity(declared.map_or(0, |len| len as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| ApiError::BadRequest {
            message: format!("the request body could not be read: {error}"),
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(body.as_mut(), DRAIN_BUDGET).await;
                return Err(ApiError::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads and discards `body` to its end, or until `budget` bytes were read
/// or it fails.
async fn drain<B: Body<Data = Bytes>>(mut body: std::pin::Pin<&mut B>, budget: u64) {
    let mut read = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            read += data.len() as u64;
            if read > budget {
                return;
            }
        }
    }
}

/// The submit request in `body`, read according to `headers` (its
/// `Content-Type`) and `query` (options of a raw plan), then checked.
pub(crate) fn parse(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<SubmitRequest, ApiError> {
    let request = match body_form(headers)? {
        BodyForm::Json => {
            if query.is_some_and(|q| !q.is_empty()) {
                return Err(ApiError::BadRequest {
                    message: "a JSON submit request carries its options in the body; \
                              query parameters are only for a raw plan body"
                        .to_owned(),
                });
            }
            parse_json(body)?
        }
        BodyForm::Raw => {
            let mut request = query::submit_options(query.unwrap_or(""))?;
            request.plan = String::from_utf8(body.to_vec()).map_err(|e| ApiError::BadRequest {
                message: format!(
                    "the plan is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            })?;
            request
        }
    };
    check(&request)?;
    Ok(request)
}

fn body_form(headers: &HeaderMap) -> Result<BodyForm, ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(BodyForm::Raw);
    };
    let unsupported = || ApiError::UnsupportedMediaType {
        content_type: String::from_utf8_lossy(value.as_bytes()).into_owned(),
    };
    let text = value.to_str().map_err(|_| unsupported())?;
    let media = text.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(BodyForm::Json)
    } else if RAW_TYPES.iter().any(|t| media.eq_ignore_ascii_case(t)) {
        Ok(BodyForm::Raw)
    } else {
        Err(unsupported())
    }
}

/// Decodes the JSON form, naming the field path and position of the
/// first problem.
fn parse_json(body: &[u8]) -> Result<SubmitRequest, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| (error.path().to_string(), error.into_inner()))
        .and_then(|request: SubmitRequest| {
            // Rejects trailing data after the object.
            deserializer
                .end()
                .map(|()| request)
                .map_err(|error| (".".to_owned(), error))
        });
    parsed.map_err(|(path, error)| {
        let place = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        let mut message = format!("the JSON submit request is invalid{place}: {error}");
        let looks_like_plan =
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
                .is_ok_and(|object| !object.contains_key("plan"));
        if looks_like_plan {
            message.push_str(
                " (this looks like a plan itself: send it with Content-Type application/yaml or \
                 text/plain, or wrap it as {\"plan\": \"...\"})",
            );
        }
        ApiError::BadRequest { message }
    })
}

/// What the API checks before handing a request to the agent.
fn check(request: &SubmitRequest) -> Result<(), ApiError> {
    let bad = |message: String| Err(ApiError::BadRequest { message });
    match (&request.script, request.plan.trim().is_empty()) {
        (None, true) => {
            return bad(
                "the plan is empty: send the plan text (YAML or JSON), or a script".to_owned(),
            );
        }
        (Some(_), false) => {
            return bad("both a plan and a script were sent; send one".to_owned());
        }
        _ => {}
    }
    if request.min_agents == Some(0) {
        return bad("minAgents must be at least 1 (got 0)".to_owned());
    }
    if let Some(lead) = &request.lead_time
        && !is_k6_duration(lead)
    {
        return bad(format!(
            "leadTime {lead:?} is not a k6 duration; expected e.g. 500ms, 3s or 1m30s"
        ));
    }
    if let Err(e) = crate::fleet::selector::check(&request.match_expressions, "matchExpressions") {
        return bad(e.to_string());
    }
    for (field, map) in [
        ("selector", &request.selector),
        ("env", &request.env),
        ("files", &request.files),
        ("uploads", &request.uploads),
    ] {
        if map.contains_key("") {
            return bad(format!("{field} has an empty key"));
        }
    }
    Ok(())
}

/// `500ms`, `3s`, `1m30s`, `1.5h`: one or more number-unit pairs, units
/// `ns us µs ms s m h` (the grammar the `LoadTest` CRD also enforces).
pub(crate) fn is_k6_duration(text: &str) -> bool {
    const UNITS: [&str; 7] = ["ns", "us", "µs", "ms", "s", "m", "h"];
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return false;
            }
            rest = &fraction[digits..];
        }
        // Longest unit first, so `ms` is not read as `m` followed by `s`.
        let Some(unit) = UNITS
            .iter()
            .filter(|unit| rest.starts_with(**unit))
            .max_by_key(|unit| unit.len())
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;

    use super::*;
    use crate::api::dto::PlanFormat;

    fn typed(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("valid header"),
        );
        headers
    }

    fn bad_message(result: Result<SubmitRequest, ApiError>) -> String {
        match result {
            Err(ApiError::BadRequest { message }) => message,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            query in "[a-zA-Z=&%,0-9]{0,30}",
            json in proptest::prelude::any::<bool>(),
        ) {
            let headers = typed(if json { "application/json" } else { "text/plain" });
            let _ = parse(&headers, Some(&query), &body);
        }

        #[test]
        fn duration_check_never_panics(text in "[0-9.µnumsh ]{0,12}") {
            let _ = is_k6_duration(&text);
        }
    }

    #[test]
    fn durations_follow_k6() {
        for ok in ["3s", "500ms", "1m30s", "1.5h", "10us", "2µs", "0s"] {
            assert!(is_k6_duration(ok), "{ok}");
        }
        for bad in ["", "3", "s", "3 s", "1.s", ".5s", "3sec", "-1s", "1d"] {
            assert!(!is_k6_duration(bad), "{bad}");
        }
    }

    #[test]
    fn json_and_raw_forms_by_content_type() {
        let json = br#"{"plan": "scenarios: {}", "minAgents": 2}"#;
        let request =
            parse(&typed("application/json; charset=utf-8"), None, json).expect("json form");
        assert_eq!(request.min_agents, Some(2));

        for raw in [
            "application/yaml",
            "text/yaml",
            "application/x-yaml",
            "TEXT/PLAIN",
        ] {
            let request = parse(&typed(raw), Some("minAgents=3&format=json"), b"{}")
                .unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(request.plan, "{}");
            assert_eq!(request.min_agents, Some(3));
            assert_eq!(request.format, Some(PlanFormat::Json));
        }
        let untyped = parse(&HeaderMap::new(), None, b"scenarios: {}").expect("no content type");
        assert_eq!(untyped.plan, "scenarios: {}");
    }

    #[test]
    fn other_media_types_are_refused_with_a_hint() {
        let error = parse(
            &typed("application/x-www-form-urlencoded"),
            None,
            b"scenarios: {}",
        )
        .expect_err("form bodies are curl's default, not a plan");
        assert_eq!(error.status().as_u16(), 415);
        assert!(error.to_string().contains("--data-binary"), "{error}");
    }

    #[test]
    fn json_errors_name_the_field_and_position() {
        let message = bad_message(parse(
            &typed("application/json"),
            None,
            br#"{"plan": "x", "minAgents": "2"}"#,
        ));
        assert!(message.contains("at minAgents"), "{message}");
        assert!(message.contains("line 1 column"), "{message}");

        let message = bad_message(parse(&typed("application/json"), None, b"{\"plan\": \n 3"));
        assert!(message.contains("line 2"), "{message}");

        let message = bad_message(parse(
            &typed("application/json"),
            None,
            b"{\"plan\":\"x\"} {}",
        ));
        assert!(message.contains("trailing"), "{message}");

        let message = bad_message(parse(
            &typed("application/json"),
            None,
            br#"{"scenarios": {}}"#,
        ));
        assert!(message.contains("looks like a plan itself"), "{message}");

        let message = bad_message(parse(
            &typed("application/json"),
            Some("minAgents=2"),
            br#"{"plan": "x"}"#,
        ));
        assert!(message.contains("query parameters"), "{message}");
    }

    #[test]
    fn checks_catch_what_the_agent_should_not_see() {
        let cases: [(&str, &[u8], &str); 5] = [
            ("", b"  \n", "the plan is empty"),
            ("minAgents=0", b"x: 1", "minAgents must be at least 1"),
            ("leadTime=3", b"x: 1", "leadTime \"3\" is not a k6 duration"),
            ("env==1", b"x: 1", "expected KEY=VALUE"),
            ("", b"x: \xff", "not UTF-8 text (invalid byte at offset 3)"),
        ];
        for (query, body, expected) in cases {
            let message = bad_message(parse(&typed("text/plain"), Some(query), body));
            assert!(message.contains(expected), "{query}: {message}");
        }
        let message = bad_message(parse(
            &typed("application/json"),
            None,
            br#"{"plan": "x", "files": {"": "data"}}"#,
        ));
        assert_eq!(message, "files has an empty key");
    }

    #[tokio::test]
    async fn an_oversized_body_is_drained_before_the_413_so_the_client_can_read_it() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let sent = Arc::new(AtomicUsize::new(0));
        let counted = sent.clone();
        let chunks = futures::StreamExt::map(
            futures::stream::iter([b"12345".as_slice(), b"67890", b"1", b"2"]),
            move |c| {
                counted.fetch_add(c.len(), Ordering::Relaxed);
                Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c)))
            },
        );
        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
        let error = read_body(&declared, StreamBody::new(chunks), 10)
            .await
            .expect_err("declared over the limit");
        assert_eq!(error, ApiError::PayloadTooLarge { limit: 10 });
        assert_eq!(sent.load(Ordering::Relaxed), 12, "the whole body was read");
    }

    #[tokio::test]
    async fn body_limit_uses_content_length_then_the_stream() {
        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("11"));
        let error = read_body(&declared, Full::new(Bytes::from_static(b"x")), 10)
            .await
            .expect_err("declared over the limit");
        assert_eq!(error, ApiError::PayloadTooLarge { limit: 10 });

        let chunks = futures::stream::iter(
            [b"12345".as_slice(), b"67890", b"1"]
                .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c)))),
        );
        let error = read_body(&HeaderMap::new(), StreamBody::new(chunks), 10)
            .await
            .expect_err("streamed over the limit");
        assert_eq!(error, ApiError::PayloadTooLarge { limit: 10 });

        let exact = read_body(
            &HeaderMap::new(),
            Full::new(Bytes::from_static(b"0123456789")),
            10,
        )
        .await
        .expect("at the limit is fine");
        assert_eq!(&exact[..], b"0123456789");
    }
}
