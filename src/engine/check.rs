//! Checks and captures: judging a response and pulling values out of it.

use super::http::Response;
use crate::plan::{CaptureSource, CheckKind, TimingPhase};

/// True when the response satisfies the check. A failed request (no
/// response) fails every check, `not` ones included.
pub fn evaluate(kind: &CheckKind, resp: &Response, json: Option<&serde_json::Value>) -> bool {
    resp.error.is_none() && holds(kind, resp, json)
}

fn holds(kind: &CheckKind, resp: &Response, json: Option<&serde_json::Value>) -> bool {
    let at = |pointer: &str| json.and_then(|j| j.pointer(pointer));
    match kind {
        CheckKind::Status(code) => resp.status == *code,
        CheckKind::StatusIn(codes) => codes.contains(&resp.status),
        CheckKind::HeaderPresent(name) => resp.header(name.as_str()).is_some(),
        CheckKind::HeaderEquals(name, value) => resp.header(name.as_str()) == Some(value.as_str()),
        CheckKind::HeaderMatches(name, re) => {
            resp.header(name.as_str()).is_some_and(|v| re.is_match(v))
        }
        CheckKind::BodyContains(needle) => contains(&resp.body, needle.as_bytes()),
        CheckKind::BodyMatches(re) => re.is_match(&resp.body),
        CheckKind::JsonEquals { pointer, value } => at(pointer) == Some(value),
        CheckKind::JsonExists { pointer } => at(pointer).is_some(),
        CheckKind::JsonCompare { pointer, bounds } => at(pointer)
            .and_then(serde_json::Value::as_f64)
            .is_some_and(|n| bounds.iter().all(|(op, limit)| op.holds(n, *limit))),
        CheckKind::JsonContains { pointer, value } => match (at(pointer), value) {
            (Some(serde_json::Value::String(s)), serde_json::Value::String(needle)) => {
                s.contains(needle.as_str())
            }
            (Some(serde_json::Value::Array(items)), v) => items.contains(v),
            _ => false,
        },
        CheckKind::Timing { phase, op, limit } => {
            let took = match phase {
                TimingPhase::Duration => resp.timings.duration(),
                TimingPhase::Waiting => resp.timings.waiting,
            };
            op.holds(took.as_secs_f64(), limit.as_secs_f64())
        }
        CheckKind::Not(inner) => !holds(inner, resp, json),
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
    use crate::plan::Op;

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
    fn timing_regex_negation_and_json_comparisons() {
        let mut r = resp(200, r#"{"n":5,"s":"hello world","tags":["api","v2"]}"#);
        r.timings.waiting = std::time::Duration::from_millis(120);
        r.timings.receiving = std::time::Duration::from_millis(30);
        let j: serde_json::Value = serde_json::from_slice(&r.body).expect("test json");
        let timing = |phase, op, ms| CheckKind::Timing {
            phase,
            op,
            limit: std::time::Duration::from_millis(ms),
        };
        assert!(evaluate(
            &timing(TimingPhase::Duration, Op::Lt, 200),
            &r,
            None
        ));
        assert!(!evaluate(
            &timing(TimingPhase::Duration, Op::Lt, 150),
            &r,
            None
        ));
        assert!(evaluate(
            &timing(TimingPhase::Duration, Op::Le, 150),
            &r,
            None
        ));
        assert!(evaluate(
            &timing(TimingPhase::Waiting, Op::Lt, 121),
            &r,
            None
        ));
        assert!(!evaluate(
            &timing(TimingPhase::Waiting, Op::Gt, 120),
            &r,
            None
        ));
        let re = |p: &str| regex::bytes::Regex::new(p).expect("test regex");
        assert!(evaluate(&CheckKind::BodyMatches(re(r#""n":\d"#)), &r, None));
        assert!(!evaluate(&CheckKind::BodyMatches(re("^world")), &r, None));
        let name = http::HeaderName::from_static("x-token");
        let hre = |p: &str| regex::Regex::new(p).expect("test regex");
        assert!(evaluate(
            &CheckKind::HeaderMatches(name.clone(), hre("^a.c$")),
            &r,
            None
        ));
        assert!(!evaluate(
            &CheckKind::HeaderMatches(name, hre("^b")),
            &r,
            None
        ));
        let missing = http::HeaderName::from_static("x-missing");
        assert!(!evaluate(
            &CheckKind::HeaderMatches(missing, hre("")),
            &r,
            None
        ));
        let not500 = CheckKind::Not(Box::new(CheckKind::Status(500)));
        assert!(evaluate(&not500, &r, None));
        assert!(!evaluate(
            &CheckKind::Not(Box::new(CheckKind::Status(200))),
            &r,
            None
        ));
        let cmp = |bounds: Vec<(Op, f64)>| CheckKind::JsonCompare {
            pointer: "/n".into(),
            bounds,
        };
        assert!(evaluate(
            &cmp(vec![(Op::Gt, 1.0), (Op::Le, 5.0)]),
            &r,
            Some(&j)
        ));
        assert!(!evaluate(&cmp(vec![(Op::Lt, 5.0)]), &r, Some(&j)));
        let on_string = CheckKind::JsonCompare {
            pointer: "/s".into(),
            bounds: vec![(Op::Gt, 0.0)],
        };
        assert!(!evaluate(&on_string, &r, Some(&j)), "a string is no number");
        let contains = |pointer: &str, v| CheckKind::JsonContains {
            pointer: pointer.into(),
            value: v,
        };
        assert!(evaluate(
            &contains("/s", serde_json::json!("lo wo")),
            &r,
            Some(&j)
        ));
        assert!(!evaluate(
            &contains("/s", serde_json::json!("bye")),
            &r,
            Some(&j)
        ));
        assert!(evaluate(
            &contains("/tags", serde_json::json!("v2")),
            &r,
            Some(&j)
        ));
        assert!(!evaluate(
            &contains("/tags", serde_json::json!("v3")),
            &r,
            Some(&j)
        ));
        assert!(!evaluate(
            &contains("/n", serde_json::json!(5)),
            &r,
            Some(&j)
        ));
        let mut failed = resp(0, "");
        failed.error = Some(crate::metrics::ErrorKind::Timeout);
        assert!(
            !evaluate(&not500, &failed, None),
            "no response fails `not` too"
        );
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
