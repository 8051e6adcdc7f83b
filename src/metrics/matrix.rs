//! The in-region vs cross-region matrix of a plan with `targets`: one cell
//! per (agent region, target region) with the requests, failures and
//! latency percentiles of `http_req_duration`, and each percentile's
//! difference to the in-region cell of the same agent region.
//!
//! Cells come from the merged series (`region` and `target_region` tags),
//! so a fleet's matrix is exact: histograms add, percentiles are read from
//! the sum.

use std::collections::BTreeSet;

use super::aggregate::{Aggregate, trend_percentile_ms};
use super::catalog::Metric;
use super::summary::MatrixCell;
use super::value::Value;
use crate::plan::{REGION_TAG, TARGET_REGION_TAG, Target};

/// Every cell with requests: agent regions sorted by name, target regions
/// in the plan's `targets` order (then any other, by name).
pub fn matrix(agg: &Aggregate, targets: &[Target]) -> Vec<MatrixCell> {
    let mut pairs: BTreeSet<(String, usize, String)> = BTreeSet::new();
    for (k, _) in agg.series_of(Metric::HttpReqs) {
        let (Some(region), Some(target)) = (k.tags.get(REGION_TAG), k.tags.get(TARGET_REGION_TAG))
        else {
            continue;
        };
        let order = targets
            .iter()
            .position(|t| t.region == target)
            .unwrap_or(targets.len());
        pairs.insert((region.to_string(), order, target.to_string()));
    }
    let mut cells: Vec<MatrixCell> = pairs
        .into_iter()
        .map(|(region, _, target)| cell(agg, region, target))
        .collect();
    let in_region: Vec<(String, [f64; 3])> = cells
        .iter()
        .filter(|c| c.region == c.target_region)
        .map(|c| (c.region.clone(), [c.p50_ms, c.p95_ms, c.p99_ms]))
        .collect();
    for c in &mut cells {
        if let Some((_, base)) = in_region.iter().find(|(r, _)| *r == c.region) {
            c.p50_delta_ms = Some(c.p50_ms - base[0]);
            c.p95_delta_ms = Some(c.p95_ms - base[1]);
            c.p99_delta_ms = Some(c.p99_ms - base[2]);
        }
    }
    cells
}

fn cell(agg: &Aggregate, region: String, target: String) -> MatrixCell {
    let filter = [
        (REGION_TAG.to_string(), region.clone()),
        (TARGET_REGION_TAG.to_string(), target.clone()),
    ];
    let requests = match agg.metric_value(Metric::HttpReqs, &filter) {
        Some(Value::Counter(n)) => n.round() as u64,
        _ => 0,
    };
    let failed = match agg.metric_value(Metric::HttpReqFailed, &filter) {
        Some(Value::Rate { trues, .. }) => trues,
        _ => 0,
    };
    let (p50_ms, p95_ms, p99_ms) = match agg.metric_value(Metric::HttpReqDuration, &filter) {
        Some(Value::Trend(h)) => (
            trend_percentile_ms(&h, 50.0),
            trend_percentile_ms(&h, 95.0),
            trend_percentile_ms(&h, 99.0),
        ),
        _ => (0.0, 0.0, 0.0),
    };
    MatrixCell {
        region,
        target_region: target,
        requests,
        failed,
        p50_ms,
        p95_ms,
        p99_ms,
        p50_delta_ms: None,
        p95_delta_ms: None,
        p99_delta_ms: None,
    }
}
