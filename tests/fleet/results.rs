//! What agents keep in their data directories (`tests/<id>/intervals-<agent>.bin`), read back
//! after a test, so results can be recomputed offline and compared with the fleet's summary.

use volley::fleet::store::Store;
use volley::metrics::aggregate::trend_percentile_ms;
use volley::metrics::{Aggregate, Metric, MetricValues, Snapshot, Summary, Value};

use super::Agent;

/// Why stored intervals could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read the intervals of test {test} kept by agent {agent}: {reason}")]
    Store {
        agent: String,
        test: String,
        reason: String,
    },
    #[error("interval {seq} of agent {agent} does not decode: {reason}")]
    Decode {
        agent: String,
        seq: u64,
        reason: String,
    },
    #[error("intervals of agent {agent} do not fold together: {reason}")]
    Merge { agent: String, reason: String },
}

/// Every interval `agent` kept of test `id`, one per sequence number (a retried append stores a
/// second copy), in sequence order.
pub fn intervals(agent: &Agent, id: &str) -> Result<Vec<(u64, Snapshot)>, ResultsError> {
    intervals_of(agent, id, &agent.id)
}

/// Every interval of `of`'s share that `agent` kept of test `id` (its own, or those of the
/// origin it would succeed), as [`intervals`].
pub fn intervals_of(
    agent: &Agent,
    id: &str,
    of: &str,
) -> Result<Vec<(u64, Snapshot)>, ResultsError> {
    let store_err = |reason: String| ResultsError::Store {
        agent: agent.id.clone(),
        test: id.to_owned(),
        reason,
    };
    let store = Store::open(&agent.data_dir).map_err(|e| store_err(e.to_string()))?;
    let mut records = store
        .read_intervals(id, of)
        .map_err(|e| store_err(e.to_string()))?;
    records.sort_by_key(|(seq, _)| *seq);
    records.dedup_by_key(|(seq, _)| *seq);
    records
        .into_iter()
        .map(|(seq, bytes)| {
            Snapshot::decode(&bytes)
                .map(|s| (seq, s))
                .map_err(|e| ResultsError::Decode {
                    agent: agent.id.clone(),
                    seq,
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// One agent's running total over its intervals, as the agent itself would fold them.
pub fn totals(agent: &Agent, id: &str) -> Result<Aggregate, ResultsError> {
    totals_of(agent, id, &agent.id)
}

/// The running total over the intervals of `of`'s share that `agent` kept.
pub fn totals_of(agent: &Agent, id: &str, of: &str) -> Result<Aggregate, ResultsError> {
    let mut agg = Aggregate::new();
    for (_, snapshot) in intervals_of(agent, id, of)? {
        agg.add_interval(&snapshot)
            .map_err(|e| ResultsError::Merge {
                agent: agent.id.clone(),
                reason: e.to_string(),
            })?;
    }
    Ok(agg)
}

/// The highest `vus` gauge an agent reported: the VUs it actually ran.
pub fn max_vus(agg: &Aggregate) -> Option<f64> {
    match agg.metric_value(Metric::Vus, &[])? {
        Value::Gauge { max, .. } => Some(max),
        _ => None,
    }
}

/// Requests an agent completed (`http_reqs`).
pub fn requests(agg: &Aggregate) -> u64 {
    match agg.metric_value(Metric::HttpReqs, &[]) {
        Some(Value::Counter(c)) => c as u64,
        _ => 0,
    }
}

/// `http_req_duration` of every agent and every interval in one histogram: counts and trends
/// add across agents and across time alike.
pub fn merged_durations(agents: &[Agent], id: &str) -> Result<Value, ResultsError> {
    let mut merged: Option<Value> = None;
    for agent in agents {
        let agg = totals(agent, id)?;
        let Some(value) = agg.metric_value(Metric::HttpReqDuration, &[]) else {
            continue;
        };
        match merged.as_mut() {
            None => merged = Some(value),
            Some(m) => m.merge_sources(&value).map_err(|e| ResultsError::Merge {
                agent: agent.id.clone(),
                reason: e.to_string(),
            })?,
        }
    }
    merged.ok_or_else(|| ResultsError::Merge {
        agent: "every agent".into(),
        reason: "no http_req_duration sample anywhere".into(),
    })
}

/// `p(N)` in milliseconds of a trend value, as the summary computes it.
pub fn percentile_ms(value: &Value, percentile: f64) -> Option<f64> {
    value.as_trend().map(|h| trend_percentile_ms(h, percentile))
}

/// A trend statistic (`med`, `p(95)`) of a metric in a summary.
pub fn summary_stat(summary: &Summary, metric: &str, stat: &str) -> Option<f64> {
    summary.metric(metric)?.stat(stat)
}

/// The sample count of a trend metric in a summary.
pub fn summary_count(summary: &Summary, metric: &str) -> Option<u64> {
    match &summary.metric(metric)?.values {
        MetricValues::Trend { count, .. } => Some(*count),
        _ => None,
    }
}

/// The count of a counter metric (`iterations`, `http_reqs`) in a summary.
pub fn summary_counter(summary: &Summary, metric: &str) -> Option<u64> {
    match &summary.metric(metric)?.values {
        MetricValues::Counter { count, .. } => Some(*count as u64),
        _ => None,
    }
}

/// The `agent` rows of a summary's breakdown: `(agent, requests)` in agent order.
pub fn requests_by_agent(summary: &Summary) -> Vec<(String, u64)> {
    summary
        .breakdown
        .iter()
        .filter(|b| b.dimension == "agent")
        .map(|b| (b.value.clone(), b.requests))
        .collect()
}

/// Requests of every agent's row, added up.
pub fn total_requests(summary: &Summary) -> u64 {
    requests_by_agent(summary).iter().map(|(_, n)| n).sum()
}

/// `(passes, fails)` of root check `name` in a k6 summary export.
pub fn root_check(export: &serde_json::Value, name: &str) -> (u64, u64) {
    let c = &export["root_group"]["checks"][name];
    assert!(c.is_object(), "no root check {name:?} in {export}");
    (
        c["passes"].as_u64().unwrap_or_default(),
        c["fails"].as_u64().unwrap_or_default(),
    )
}

/// Asserts that the summary's breakdown has `n` agents and that each sent requests.
pub fn assert_every_agent_sent(summary: &Summary, n: usize) {
    let by_agent = requests_by_agent(summary);
    assert_eq!(by_agent.len(), n, "{by_agent:?}");
    assert!(
        by_agent.iter().all(|(_, n)| *n > 0),
        "every agent's VUs sent requests: {by_agent:?}"
    );
}
