//! A check as written under a request's `check:`: exactly one condition
//! (`compile` checks that), an optional display name, and `not` wrapping
//! another check.

use serde::Deserialize;

use super::values::{self, HeaderSpec, StatusSpec};

/// One check: exactly one condition, and an optional display name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCheck {
    pub name: Option<String>,
    pub status: Option<StatusSpec>,
    pub header: Option<HeaderSpec>,
    pub body_contains: Option<String>,
    /// A regular expression the body must match somewhere.
    pub body_matches: Option<String>,
    pub json: Option<RawJsonCheck>,
    /// `"<200ms"`: a bound on `http_req_duration` (`<`, `<=`, `>`, `>=`).
    pub duration: Option<String>,
    /// The same on `http_req_waiting` (time to first byte).
    pub waiting: Option<String>,
    /// Holds when the inner check does not (the response still has to
    /// arrive: a failed request fails every check).
    pub not: Option<Box<RawCheck>>,
}

/// The check condition keys, for messages.
pub const CHECK_KINDS: &str =
    "status, header, bodyContains, bodyMatches, json, duration, waiting, not";

/// `json: {pointer}` and one comparison: `equals`, `contains`, or number
/// bounds (`lt`, `le`, `gt`, `ge`, which may be combined into a range).
/// Without any, the check is "exists".
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonCheck {
    pub pointer: String,
    #[serde(default, deserialize_with = "values::present_json")]
    pub equals: Option<serde_json::Value>,
    /// A substring of a string, or an element of an array.
    #[serde(default, deserialize_with = "values::present_json")]
    pub contains: Option<serde_json::Value>,
    pub lt: Option<f64>,
    pub le: Option<f64>,
    pub gt: Option<f64>,
    pub ge: Option<f64>,
}
