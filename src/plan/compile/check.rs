//! One check of a request: its condition typed ([`CheckKind`]), regexes
//! compiled once, and the display name derived from the condition when the
//! plan gives none (`status is 200`, `duration < 200ms`).

use std::time::Duration;

use http::HeaderName;

use super::super::duration::{format_duration, parse_duration};
use super::super::error::PlanError;
use super::super::raw::{CHECK_KINDS, HeaderSpec, RawCheck, RawJsonCheck, StatusSpec};
use super::super::threshold::Op;
use super::super::types::{CheckKind, TimingPhase};
use super::flow::exactly_one;

const TIMING_FORM: &str = "a comparison and a duration like \"<200ms\", \"<=1s\" or \">50ms\" (a bare number is milliseconds)";

/// The condition of a check and its derived display name.
pub(super) fn check_kind(check: &RawCheck, path: &str) -> Result<(CheckKind, String), PlanError> {
    exactly_one(
        &[
            ("status", check.status.is_some()),
            ("header", check.header.is_some()),
            ("bodyContains", check.body_contains.is_some()),
            ("bodyMatches", check.body_matches.is_some()),
            ("json", check.json.is_some()),
            ("duration", check.duration.is_some()),
            ("waiting", check.waiting.is_some()),
            ("not", check.not.is_some()),
        ],
        path,
        &format!("has no condition; expected one of {CHECK_KINDS}"),
        &format!("a check has exactly one of {CHECK_KINDS} (write two checks)"),
    )?;
    if let Some(status) = &check.status {
        return Ok(match status {
            StatusSpec::One(code) => (CheckKind::Status(*code), format!("status is {code}")),
            StatusSpec::Many(codes) => {
                let list: Vec<String> = codes.iter().map(u16::to_string).collect();
                (
                    CheckKind::StatusIn(codes.clone()),
                    format!("status in [{}]", list.join(", ")),
                )
            }
        });
    }
    if let Some(header) = &check.header {
        return header_check(header, &format!("{path}.header"));
    }
    if let Some(text) = &check.body_contains {
        return Ok((
            CheckKind::BodyContains(text.clone()),
            format!("body contains \"{text}\""),
        ));
    }
    if let Some(pattern) = &check.body_matches {
        let re = regex::bytes::Regex::new(pattern)
            .map_err(|e| bad_regex(format!("{path}.bodyMatches"), pattern, &e))?;
        return Ok((
            CheckKind::BodyMatches(re),
            format!("body matches /{pattern}/"),
        ));
    }
    if let Some(json) = &check.json {
        return json_check(json, &format!("{path}.json"));
    }
    for (text, phase, key) in [
        (&check.duration, TimingPhase::Duration, "duration"),
        (&check.waiting, TimingPhase::Waiting, "waiting"),
    ] {
        if let Some(text) = text {
            let (op, limit) = timing_bound(text, &format!("{path}.{key}"))?;
            let name = format!("{key} {} {}", op.symbol(), format_duration(limit));
            return Ok((CheckKind::Timing { phase, op, limit }, name));
        }
    }
    if let Some(inner) = &check.not {
        let inner_path = format!("{path}.not");
        if let Some(name) = &inner.name {
            return Err(PlanError::invalid(
                format!("{inner_path}.name"),
                name,
                "no name inside `not` (name the outer check: {name: ..., not: {...}})",
            ));
        }
        let (kind, name) = check_kind(inner, &inner_path)?;
        return Ok((CheckKind::Not(Box::new(kind)), format!("not ({name})")));
    }
    Err(PlanError::field(
        path,
        format!("has no condition; expected one of {CHECK_KINDS}"),
    ))
}

fn header_check(header: &HeaderSpec, path: &str) -> Result<(CheckKind, String), PlanError> {
    let cmp = match header {
        HeaderSpec::Present(name) => {
            return Ok((
                CheckKind::HeaderPresent(header_name(name, path)?),
                format!("header {name} present"),
            ));
        }
        HeaderSpec::Compare(cmp) => cmp,
    };
    let name = header_name(&cmp.name, &format!("{path}.name"))?;
    match (&cmp.equals, &cmp.matches) {
        (Some(value), None) => Ok((
            CheckKind::HeaderEquals(name, value.0.clone()),
            format!("header {} is \"{}\"", cmp.name, value.0),
        )),
        (None, Some(pattern)) => {
            let re = regex::Regex::new(pattern)
                .map_err(|e| bad_regex(format!("{path}.matches"), pattern, &e))?;
            Ok((
                CheckKind::HeaderMatches(name, re),
                format!("header {} matches /{pattern}/", cmp.name),
            ))
        }
        (Some(_), Some(_)) => Err(PlanError::field(
            path,
            "has both `equals` and `matches`; use one (or write two checks)",
        )),
        (None, None) => Err(PlanError::field(
            path,
            "has a name but no `equals` or `matches`; write `header: NAME` for \"present\"",
        )),
    }
}

fn json_check(json: &RawJsonCheck, path: &str) -> Result<(CheckKind, String), PlanError> {
    check_pointer(&json.pointer, &format!("{path}.pointer"))?;
    let pointer = json.pointer.clone();
    let mut bounds = Vec::new();
    for (value, op, key) in [
        (json.gt, Op::Gt, "gt"),
        (json.ge, Op::Ge, "ge"),
        (json.lt, Op::Lt, "lt"),
        (json.le, Op::Le, "le"),
    ] {
        let Some(v) = value else { continue };
        if !v.is_finite() {
            return Err(PlanError::invalid(
                format!("{path}.{key}"),
                v.to_string(),
                "a finite number",
            ));
        }
        bounds.push((op, v));
    }
    let forms = [
        json.equals.is_some(),
        json.contains.is_some(),
        !bounds.is_empty(),
    ];
    if forms.iter().filter(|f| **f).count() > 1 {
        return Err(PlanError::field(
            path,
            "mixes `equals`, `contains` and number bounds; use one of them (bounds lt, le, gt, ge may be combined)",
        ));
    }
    if let Some(value) = &json.equals {
        return Ok((
            CheckKind::JsonEquals {
                pointer: pointer.clone(),
                value: value.clone(),
            },
            format!("json {pointer} == {value}"),
        ));
    }
    if let Some(value) = &json.contains {
        return Ok((
            CheckKind::JsonContains {
                pointer: pointer.clone(),
                value: value.clone(),
            },
            format!("json {pointer} contains {value}"),
        ));
    }
    if !bounds.is_empty() {
        let text: Vec<String> = bounds
            .iter()
            .map(|(op, v)| format!("{} {v}", op.symbol()))
            .collect();
        return Ok((
            CheckKind::JsonCompare {
                pointer: pointer.clone(),
                bounds,
            },
            format!("json {pointer} {}", text.join(" and ")),
        ));
    }
    Ok((
        CheckKind::JsonExists {
            pointer: pointer.clone(),
        },
        format!("json {pointer} exists"),
    ))
}

/// `<200ms`, `<= 1s`, `>50`: the operator, then a k6 duration.
fn timing_bound(text: &str, path: &str) -> Result<(Op, Duration), PlanError> {
    let t = text.trim();
    let (op, rest) = [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
        .into_iter()
        .find_map(|(sym, op)| t.strip_prefix(sym).map(|rest| (op, rest)))
        .ok_or_else(|| PlanError::invalid(path, text, TIMING_FORM))?;
    let limit = parse_duration(rest).map_err(|_| PlanError::invalid(path, text, TIMING_FORM))?;
    Ok((op, limit))
}

pub(super) fn header_name(name: &str, path: &str) -> Result<HeaderName, PlanError> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        PlanError::invalid(
            path,
            name,
            "a header name of letters, digits and !#$%&'*+-.^_`|~",
        )
    })
}

/// RFC 6901: empty (the whole document) or `/`-separated tokens where `~`
/// is only followed by `0` or `1`.
pub(super) fn check_pointer(pointer: &str, path: &str) -> Result<(), PlanError> {
    let bad_escape = pointer
        .char_indices()
        .any(|(i, c)| c == '~' && !matches!(pointer[i + 1..].chars().next(), Some('0' | '1')));
    if (!pointer.is_empty() && !pointer.starts_with('/')) || bad_escape {
        return Err(PlanError::invalid(
            path,
            pointer,
            "a JSON pointer like /auth/token (RFC 6901: starts with /, ~ only as ~0 or ~1)",
        ));
    }
    Ok(())
}

fn bad_regex(path: String, pattern: &str, e: &regex::Error) -> PlanError {
    PlanError::invalid(
        path,
        pattern,
        format!("a valid regular expression ({})", regex_reason(e)),
    )
}

/// The one-line reason from the regex crate's multi-line message.
pub(super) fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}
