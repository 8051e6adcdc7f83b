//! What a plan does with a response: checks (with their conditions),
//! captures into variables, and values added to custom metrics (by
//! `metric` steps and requests' `metrics` entries).

use std::time::Duration;

use http::HeaderName;

use super::super::template::Template;
use super::super::threshold::Op;
use super::{CheckId, Tags, VarSlot};
use crate::catalog::Metric;

/// A named assertion on a response; results feed the `checks` rate.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: CheckId,
    /// Display name: the user's `name`, or one derived from the condition
    /// (`status is 200`).
    pub name: String,
    pub kind: CheckKind,
}

#[derive(Debug, Clone)]
pub enum CheckKind {
    Status(u16),
    StatusIn(Vec<u16>),
    HeaderPresent(HeaderName),
    HeaderEquals(HeaderName, String),
    /// The header is there and its value matches the regex somewhere.
    HeaderMatches(HeaderName, regex::Regex),
    BodyContains(String),
    /// The body (as bytes, so any encoding) matches the regex somewhere.
    BodyMatches(regex::bytes::Regex),
    /// RFC 6901 pointer into the JSON body, compared to a JSON value.
    JsonEquals {
        pointer: String,
        value: serde_json::Value,
    },
    JsonExists {
        pointer: String,
    },
    /// The value at `pointer` is a JSON number within every bound.
    JsonCompare {
        pointer: String,
        bounds: Vec<(Op, f64)>,
    },
    /// The value at `pointer` is a string containing `value` (a string),
    /// or an array with an element equal to `value`.
    JsonContains {
        pointer: String,
        value: serde_json::Value,
    },
    /// A phase of the (final) response's timings against a bound.
    Timing {
        phase: TimingPhase,
        op: Op,
        limit: Duration,
    },
    /// Holds when the inner condition does not (on a response that arrived).
    Not(Box<CheckKind>),
}

/// The timings a check can bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingPhase {
    /// `http_req_duration`: sending + waiting + receiving.
    Duration,
    /// `http_req_waiting`: time to first byte.
    Waiting,
}

impl CheckKind {
    /// The check reads response headers (they must be kept).
    pub fn reads_headers(&self) -> bool {
        match self {
            CheckKind::HeaderPresent(_)
            | CheckKind::HeaderEquals(..)
            | CheckKind::HeaderMatches(..) => true,
            CheckKind::Not(inner) => inner.reads_headers(),
            _ => false,
        }
    }

    /// The check parses the body as JSON.
    pub fn parses_json(&self) -> bool {
        match self {
            CheckKind::JsonEquals { .. }
            | CheckKind::JsonExists { .. }
            | CheckKind::JsonCompare { .. }
            | CheckKind::JsonContains { .. } => true,
            CheckKind::Not(inner) => inner.parses_json(),
            _ => false,
        }
    }

    /// The check reads the body (it must be kept even under
    /// `discardResponseBodies`).
    pub fn reads_body(&self) -> bool {
        match self {
            CheckKind::BodyContains(_) | CheckKind::BodyMatches(_) => true,
            CheckKind::Not(inner) => inner.reads_body(),
            other => other.parses_json(),
        }
    }
}

/// Stores part of a response in a variable for later templates of the same VU.
#[derive(Debug, Clone)]
pub struct Capture {
    pub var: VarSlot,
    pub source: CaptureSource,
}

#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// RFC 6901 pointer; strings are stored bare, other values as JSON text.
    JsonPointer(String),
    Header(HeaderName),
    /// First capture group if the regex has one, else the whole match.
    Regex(regex::Regex),
    /// The value of a cookie in the VU's jar after the response (its
    /// `Set-Cookie`s stored), as it would be sent to the request's URL.
    Cookie(String),
}

/// A `metric` step: one value added to a declared custom metric, tagged
/// with the scenario, the enclosing group and the step's own tags.
#[derive(Debug, Clone)]
pub struct MetricStep {
    pub metric: Metric,
    pub scenario: usize,
    /// The enclosing group path in k6 form (`""`, `"::login"`).
    pub group: String,
    pub tags: Tags,
    pub value: MetricValue,
}

/// What a `metric` step adds.
#[derive(Debug, Clone)]
pub enum MetricValue {
    Fixed(f64),
    /// Rendered per iteration and read as a number (`true`/`false` as 1
    /// and 0); a value that is not one adds nothing.
    Template(Template),
}

/// A value of a request's final response added to a custom metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMetric {
    pub metric: Metric,
    pub value: ResponseValue,
}

/// What of a response a request's `metrics` entry adds: a timing phase in
/// milliseconds, the status, or whether every check of it passed (1/0).
/// The plan file names them as they are spelled here in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseValue {
    Duration,
    Waiting,
    Blocked,
    Connecting,
    TlsHandshaking,
    Sending,
    Receiving,
    Status,
    Checks,
}
