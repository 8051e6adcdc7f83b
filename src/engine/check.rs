//! Checks and captures: judging a response and pulling values out of it.

use super::http::Response;
use crate::plan::{CaptureSource, CheckKind};

/// True when the response satisfies the check. A failed request (no
/// response) fails every check.
pub fn evaluate(kind: &CheckKind, resp: &Response, json: Option<&serde_json::Value>) -> bool {
    if resp.error.is_some() {
        return false;
    }
    match kind {
        CheckKind::Status(code) => resp.status == *code,
        CheckKind::StatusIn(codes) => codes.contains(&resp.status),
        CheckKind::HeaderPresent(name) => resp.header(name.as_str()).is_some(),
        CheckKind::HeaderEquals(name, value) => resp.header(name.as_str()) == Some(value.as_str()),
        CheckKind::BodyContains(needle) => contains(&resp.body, needle.as_bytes()),
        CheckKind::JsonEquals { pointer, value } => {
            json.and_then(|j| j.pointer(pointer)) == Some(value)
        }
        CheckKind::JsonExists { pointer } => json.and_then(|j| j.pointer(pointer)).is_some(),
    }
}

/// The captured value, or `None` when the response does not have it.
pub fn capture(
    source: &CaptureSource,
    resp: &Response,
    json: Option<&serde_json::Value>,
) -> Option<String> {
    if resp.error.is_some() {
        return None;
    }
    match source {
        CaptureSource::JsonPointer(p) => json.and_then(|j| j.pointer(p)).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        CaptureSource::Header(name) => resp.header(name.as_str()).map(str::to_owned),
        CaptureSource::Regex(re) => {
            let text = String::from_utf8_lossy(&resp.body);
            let caps = re.captures(&text)?;
            caps.get(1)
                .or_else(|| caps.get(0))
                .map(|m| m.as_str().to_owned())
        }
        // The VU reads its own jar (`engine::vu`).
        CaptureSource::Cookie(_) => None,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> Response {
        let mut r = Response {
            status,
            body: body.as_bytes().to_vec(),
            ..Response::default()
        };
        r.headers.push((
            http::HeaderName::from_static("x-token"),
            http::HeaderValue::from_static("abc"),
        ));
        r
    }

    #[test]
    fn checks() {
        let r = resp(200, r#"{"a":{"b":1},"s":"x"}"#);
        let j: serde_json::Value = serde_json::from_slice(&r.body).expect("test json");
        assert!(evaluate(&CheckKind::Status(200), &r, None));
        assert!(!evaluate(&CheckKind::Status(201), &r, None));
        assert!(evaluate(&CheckKind::StatusIn(vec![201, 200]), &r, None));
        assert!(evaluate(&CheckKind::BodyContains("\"s\"".into()), &r, None));
        assert!(!evaluate(&CheckKind::BodyContains("nope".into()), &r, None));
        let name = http::HeaderName::from_static("x-token");
        assert!(evaluate(&CheckKind::HeaderPresent(name.clone()), &r, None));
        assert!(evaluate(
            &CheckKind::HeaderEquals(name, "abc".into()),
            &r,
            None
        ));
        let eq = CheckKind::JsonEquals {
            pointer: "/a/b".into(),
            value: serde_json::json!(1),
        };
        assert!(evaluate(&eq, &r, Some(&j)));
        assert!(!evaluate(
            &CheckKind::JsonExists {
                pointer: "/zz".into()
            },
            &r,
            Some(&j)
        ));
        let mut failed = resp(0, "");
        failed.error = Some(crate::metrics::ErrorKind::Timeout);
        assert!(!evaluate(&CheckKind::StatusIn(vec![0]), &failed, None));
    }

    #[test]
    fn captures() {
        let r = resp(200, r#"{"a":{"b":1},"s":"x"} id=77"#);
        let j = serde_json::json!({"a": {"b": 1}, "s": "x"});
        assert_eq!(
            capture(&CaptureSource::JsonPointer("/s".into()), &r, Some(&j)).as_deref(),
            Some("x")
        );
        assert_eq!(
            capture(&CaptureSource::JsonPointer("/a".into()), &r, Some(&j)).as_deref(),
            Some(r#"{"b":1}"#)
        );
        let re = regex::Regex::new(r"id=(\d+)").expect("test regex");
        assert_eq!(
            capture(&CaptureSource::Regex(re), &r, None).as_deref(),
            Some("77")
        );
        let h = http::HeaderName::from_static("x-token");
        assert_eq!(
            capture(&CaptureSource::Header(h), &r, None).as_deref(),
            Some("abc")
        );
    }
}
