//! Percent-encoding for paths and query strings, and the query options of a
//! raw-plan submit (`?selector=region=eu,pool=load&minAgents=2&leadTime=3s&env=K=V&name=x`).
//!
//! Written for this API's needs only: decoding is strict (a bad `%` escape
//! or non-UTF-8 result is an error naming the parameter), encoding escapes
//! everything but RFC 3986 unreserved characters.

use std::collections::BTreeMap;

use super::dto::{PlanFormat, SubmitRequest};
use super::error::ApiError;

/// Query parameters a raw-plan submit understands.
const SUBMIT_PARAMS: &str = "selector, minAgents, leadTime, env, name, format";

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`, as in
/// query strings). The error says what is wrong, for a message that names
/// the parameter.
pub(crate) fn decode(input: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = hex else {
                    let end = (i + 3).min(bytes.len());
                    return Err(format!(
                        "has a bad escape {:?} at byte {i} (expected % and two hex digits)",
                        String::from_utf8_lossy(&bytes[i..end])
                    ));
                };
                out.push(byte);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| {
        format!(
            "decodes to bytes that are not UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Escapes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`),
/// so the result is safe in a path segment, a query value and a header.
pub(crate) fn encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for byte in input.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0xf)]));
        }
    }
    out
}

/// The decoded `key=value` pairs of a query string, in order. A pair
/// without `=` has an empty value.
pub(crate) fn pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key =
                decode(key, true).map_err(|reason| bad(format!("query key {key:?} {reason}")))?;
            let value = decode(value, true)
                .map_err(|reason| bad(format!("the value of query parameter {key} {reason}")))?;
            Ok((key, value))
        })
        .collect()
}

/// The options of a raw-plan submit from its query string, as a
/// [`SubmitRequest`] whose `plan` is still empty.
pub(crate) fn submit_options(query: &str) -> Result<SubmitRequest, ApiError> {
    let mut options = SubmitRequest::default();
    for (key, value) in pairs(query)? {
        match key.as_str() {
            "selector" => {
                for item in value.split(',').filter(|item| !item.is_empty()) {
                    let (k, v) = key_value("selector", item)?;
                    insert_once(&mut options.selector, "selector", k, v)?;
                }
            }
            "env" => {
                let (k, v) = key_value("env", &value)?;
                insert_once(&mut options.env, "env", k, v)?;
            }
            "minAgents" => {
                let parsed = value.parse::<u32>().map_err(|_| {
                    bad(format!(
                        "query parameter minAgents={value:?} is not a whole number of agents \
                         (expected e.g. minAgents=2)"
                    ))
                })?;
                set_once(&mut options.min_agents, "minAgents", parsed)?;
            }
            "leadTime" => set_once(&mut options.lead_time, "leadTime", value)?,
            "name" => set_once(&mut options.name, "name", value)?,
            "format" => {
                let format = PlanFormat::parse(&value).ok_or_else(|| {
                    bad(format!(
                        "query parameter format={value:?} is not a plan format; expected \
                         format=yaml or format=json"
                    ))
                })?;
                set_once(&mut options.format, "format", format)?;
            }
            _ => {
                return Err(bad(format!(
                    "unknown query parameter {key:?} for a plan submit; known: {SUBMIT_PARAMS} \
                     (data files need the JSON form of the request)"
                )));
            }
        }
    }
    Ok(options)
}

fn key_value<'a>(param: &str, item: &'a str) -> Result<(&'a str, &'a str), ApiError> {
    match item.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(bad(format!(
            "query parameter {param} has {item:?}, expected KEY=VALUE (e.g. {})",
            match param {
                "selector" => "selector=region=eu,pool=load",
                _ => "env=BASE_URL=http://target:8080",
            }
        ))),
    }
}

fn insert_once(
    map: &mut BTreeMap<String, String>,
    param: &str,
    key: &str,
    value: &str,
) -> Result<(), ApiError> {
    match map.insert(key.to_owned(), value.to_owned()) {
        Some(previous) if previous != value => Err(bad(format!(
            "query parameter {param} sets {key} twice ({previous:?} and {value:?})"
        ))),
        _ => Ok(()),
    }
}

fn set_once<T>(slot: &mut Option<T>, param: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(bad(format!(
            "query parameter {param} is given more than once"
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest { message }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(text in any::<String>()) {
            let encoded = encode(&text);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert_eq!(decode(&encoded, false), Ok(text.clone()));
            prop_assert_eq!(decode(&encoded, true), Ok(text));
        }

        #[test]
        fn query_parsing_never_panics(query in "[a-zA-Z=&%,+0-9é]{0,40}") {
            let _ = submit_options(&query);
            let _ = pairs(&query);
        }
    }

    fn message(error: ApiError) -> String {
        match error {
            ApiError::BadRequest { message } => message,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    #[test]
    fn decoding_handles_escapes_plus_and_errors() {
        assert_eq!(decode("a%20b+c", true).as_deref(), Ok("a b c"));
        assert_eq!(decode("a+c", false).as_deref(), Ok("a+c"));
        assert_eq!(decode("%C3%A9", false).as_deref(), Ok("é"));
        assert!(
            decode("%zz", false)
                .expect_err("bad hex")
                .contains("\"%zz\"")
        );
        assert!(decode("ab%4", false).expect_err("short").contains("byte 2"));
        assert!(
            decode("%FF", false)
                .expect_err("not utf-8")
                .contains("UTF-8")
        );
    }

    #[test]
    fn encoding_round_trips() {
        for text in ["t-1", "a b/c?d=e&f", "é%+", ""] {
            assert_eq!(decode(&encode(text), false).as_deref(), Ok(text));
        }
        assert_eq!(encode("t-1_a.b~"), "t-1_a.b~");
        assert_eq!(encode("a/b"), "a%2Fb");
    }

    #[test]
    fn submit_options_parse_every_parameter() {
        let options = submit_options(
            "selector=region=eu,pool=load&minAgents=2&leadTime=3s&env=K=V&env=URL=http://x/?a%3Db&name=smoke+test&format=yaml",
        )
        .expect("valid options");
        assert_eq!(
            options.selector,
            BTreeMap::from([
                ("region".into(), "eu".into()),
                ("pool".into(), "load".into())
            ])
        );
        assert_eq!(options.min_agents, Some(2));
        assert_eq!(options.lead_time.as_deref(), Some("3s"));
        assert_eq!(
            options.env,
            BTreeMap::from([
                ("K".into(), "V".into()),
                ("URL".into(), "http://x/?a=b".into())
            ])
        );
        assert_eq!(options.name.as_deref(), Some("smoke test"));
        assert_eq!(options.format, Some(PlanFormat::Yaml));
        assert!(options.plan.is_empty());
        assert_eq!(submit_options("").expect("empty"), SubmitRequest::default());
    }

    #[test]
    fn submit_options_reject_what_they_cannot_use() {
        let cases = [
            ("minAgents=two", "minAgents=\"two\""),
            ("minAgents=1&minAgents=2", "more than once"),
            ("selector=region", "expected KEY=VALUE"),
            ("env==x", "expected KEY=VALUE"),
            ("env=K=1&env=K=2", "sets K twice"),
            ("format=xml", "format=yaml or format=json"),
            ("files=a", "unknown query parameter \"files\""),
            ("name=%G0", "name has a bad escape"),
        ];
        for (query, expected) in cases {
            let text = message(submit_options(query).expect_err(query));
            assert!(text.contains(expected), "{query}: {text}");
        }
        // The same pair twice is harmless.
        assert!(submit_options("env=K=1&env=K=1").is_ok());
    }
}
