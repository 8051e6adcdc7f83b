//! Thresholds in k6 syntax: `p(95)<200`, `rate<0.01`, `count>=500` on a
//! metric or a tag-filtered submetric (`http_req_duration{scenario:main}`).
//!
//! This module only parses and type-checks; evaluation against recorded
//! values lives in `metrics::threshold`.

use std::time::Duration;

/// One pass/fail criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Metric name (`http_req_duration`).
    pub metric: String,
    /// Tag filter of a submetric, in the order written; empty for the whole metric.
    pub tags: Vec<(String, String)>,
    /// The metric key as written (`http_req_duration{scenario:main}`), for display.
    pub key: String,
    /// The expression as written (`p(95)<200`), for display and export.
    pub source: String,
    pub aggregation: Aggregation,
    pub op: Op,
    /// Right-hand side. Time trends are in milliseconds, as in k6.
    pub value: f64,
    /// Stop the whole test as soon as this threshold fails.
    pub abort_on_fail: bool,
    /// With `abort_on_fail`: do not abort before this much test time passed.
    pub delay_abort_eval: Duration,
}

/// The left-hand side of a threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Med,
    /// `p(N)`, N in [0, 100].
    Percentile(f64),
    /// Rate metrics: share of true values; counters: count per second.
    Rate,
    Count,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Op::Lt => lhs < rhs,
            Op::Le => lhs <= rhs,
            Op::Gt => lhs > rhs,
            Op::Ge => lhs >= rhs,
            Op::Eq => lhs == rhs,
            Op::Ne => lhs != rhs,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}
