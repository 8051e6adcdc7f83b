//! The controller's pure decisions: what an agent does about a `LoadTest`
//! it sees, and the status values it writes. No I/O, so every rule is a
//! unit test.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::conditions::{COMPLETE, Reason, conditions, find};
use crate::kube::crd::{
    ConditionStatus, LoadTest, LoadTestStatus, MAX_REGION_CELLS, Phase, RegionCellStatus,
    ThresholdStatus,
};
use crate::metrics::{MatrixCell, Metric, MetricValues, Summary, ThresholdOutcome};

/// What this agent should do about one `LoadTest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing: done, someone else's, or already running here.
    Nothing,
    /// Unclaimed (new, or its spec changed since the last run): try to
    /// claim it with a resourceVersion-guarded status replace.
    Claim,
    /// Claimed by this agent's node id but not running here: the agent
    /// restarted. Carry on without a new claim.
    Resume,
    /// Claimed by an agent that is no longer a fleet member: claim it over.
    TakeOver { from: String },
    /// Running here, but another agent now holds the claim: stop quietly.
    Yield,
}

/// The `metadata.generation` of a `LoadTest` (0 when the server set none).
pub fn generation(lt: &LoadTest) -> i64 {
    lt.metadata.generation.unwrap_or(0)
}

/// Whether the fleet `fleet` (its cluster id; `None`: any) serves `lt`:
/// a test naming another fleet in `spec.fleet` is none of its business.
pub fn serves(lt: &LoadTest, fleet: Option<&str>) -> bool {
    match (lt.spec.fleet.as_deref(), fleet) {
        (Some(wanted), Some(mine)) => wanted == mine,
        _ => true,
    }
}

/// Decides what to do about `lt`. `running_here` says whether this agent
/// has a task for it; `claimer_gone` says whether an agent id has been out
/// of the fleet long enough to take its tests over.
pub fn decide(
    lt: &LoadTest,
    me: &str,
    running_here: bool,
    claimer_gone: &dyn Fn(&str) -> bool,
) -> Action {
    if lt.metadata.deletion_timestamp.is_some() {
        return Action::Nothing;
    }
    let status = lt.status.as_ref();
    let claimer = status.and_then(|s| s.claimed_by.as_deref());
    if running_here {
        return match claimer {
            Some(other) if other != me => Action::Yield,
            _ => Action::Nothing,
        };
    }
    let Some(status) = status else {
        return Action::Claim;
    };
    match status.phase {
        Some(phase) if phase.is_terminal() => {
            // A finished test runs again only when its spec changed after
            // that run; a failed one is never retried as is.
            if status.observed_generation.unwrap_or(0) < generation(lt) {
                Action::Claim
            } else {
                Action::Nothing
            }
        }
        _ => match claimer {
            None => Action::Claim,
            Some(c) if c == me => Action::Resume,
            Some(c) if claimer_gone(c) => Action::TakeOver {
                from: c.to_string(),
            },
            Some(_) => Action::Nothing,
        },
    }
}

/// The status a claim writes at `now` (RFC 3339): everything from an
/// earlier run is cleared, and the conditions say the test has not ended.
pub fn claim_status(lt: &LoadTest, me: &str, now: &str) -> LoadTestStatus {
    let message = format!("claimed by agent {me}");
    let previous = lt
        .status
        .as_ref()
        .map_or(&[][..], |s| s.conditions.as_slice());
    LoadTestStatus {
        phase: Some(Phase::Claimed),
        claimed_by: Some(me.to_string()),
        conditions: conditions(
            previous,
            Phase::Claimed,
            Reason::Claimed,
            &message,
            generation(lt),
            now,
        ),
        message: Some(message),
        observed_generation: Some(generation(lt)),
        run_id: lt.spec.run_id.clone(),
        ..LoadTestStatus::default()
    }
}

/// When a finished `LoadTest` is to be deleted (`spec.ttlSecondsAfterFinished`
/// after `status.completionTime`, or after the `Complete` condition turned
/// True when an older agent wrote no completion time). `None` when it never
/// is: no TTL, not finished, or finished for an older spec that is about to
/// run again.
pub fn expires_at(lt: &LoadTest) -> Option<Timestamp> {
    let ttl = lt.spec.ttl_seconds_after_finished?;
    let status = lt.status.as_ref()?;
    if !status.phase.is_some_and(Phase::is_terminal)
        || status.observed_generation.unwrap_or(0) < generation(lt)
    {
        return None;
    }
    let finished = status.completion_time.clone().or_else(|| {
        find(&status.conditions, COMPLETE)
            .filter(|c| c.status == ConditionStatus::True)
            .map(|c| c.last_transition_time.clone())
    })?;
    let finished: Timestamp = finished.parse().ok()?;
    finished
        .checked_add(SignedDuration::from_secs(i64::from(ttl)))
        .ok()
}

/// The status a take-over writes: the run's fields stay (its test may
/// still be running on the fleet), only the claim moves.
pub fn takeover_status(lt: &LoadTest, me: &str, from: &str) -> LoadTestStatus {
    let mut status = lt.status.clone().unwrap_or_default();
    status.claimed_by = Some(me.to_string());
    status.message = Some(format!(
        "taken over by agent {me}: agent {from}, which claimed it, left the fleet"
    ));
    if status.observed_generation.is_none() {
        status.observed_generation = Some(generation(lt));
    }
    status
}

/// A fleet test phase (`TestBrief::phase`) as a `LoadTest` phase.
pub fn fleet_phase(phase: &str) -> Option<Phase> {
    match phase.to_ascii_lowercase().as_str() {
        // The fleet registered the run and waits for its start instant.
        "pending" | "starting" => Some(Phase::Starting),
        "running" => Some(Phase::Running),
        "passed" => Some(Phase::Passed),
        "failed" => Some(Phase::Failed),
        "aborted" => Some(Phase::Aborted),
        "error" => Some(Phase::Error),
        _ => None,
    }
}

/// Threshold outcomes as the status lists them.
pub fn threshold_statuses(outcomes: &[ThresholdOutcome]) -> Vec<ThresholdStatus> {
    outcomes
        .iter()
        .map(|t| ThresholdStatus {
            key: t.key.clone(),
            source: t.source.clone(),
            ok: t.ok,
            observed: t.observed.filter(|v| v.is_finite()),
        })
        .collect()
}

/// The region matrix for the status: its first [`MAX_REGION_CELLS`]
/// cells, milliseconds to 0.01.
pub fn region_statuses(cells: &[MatrixCell]) -> Vec<RegionCellStatus> {
    let ms = |v: f64| (v * 100.0).round() / 100.0;
    cells
        .iter()
        .take(MAX_REGION_CELLS)
        .map(|c| RegionCellStatus {
            region: c.region.clone(),
            target_region: c.target_region.clone(),
            requests: c.requests,
            failed: c.failed,
            p50_ms: ms(c.p50_ms),
            p95_ms: ms(c.p95_ms),
            p99_ms: ms(c.p99_ms),
            p95_delta_ms: c.p95_delta_ms.filter(|v| v.is_finite()).map(ms),
        })
        .collect()
}

/// One line for `kubectl describe`:
/// `1234 requests, 0.00% failed, p95 12.3ms, 2/2 thresholds passed`.
pub fn summary_line(summary: &Summary) -> String {
    let requests = match summary.metric(Metric::HttpReqs.name()).map(|m| &m.values) {
        Some(MetricValues::Counter { count, .. }) => format!("{count:.0} requests"),
        _ => "0 requests".to_string(),
    };
    let failed = match summary
        .metric(Metric::HttpReqFailed.name())
        .map(|m| &m.values)
    {
        Some(MetricValues::Rate { rate, .. }) => format!("{:.2}% failed", rate * 100.0),
        _ => "0.00% failed".to_string(),
    };
    let p95 = match summary
        .metric(Metric::HttpReqDuration.name())
        .and_then(|m| m.stat("p(95)"))
    {
        Some(ms) => format!("p95 {ms:.1}ms"),
        None => "p95 -".to_string(),
    };
    let total = summary.thresholds.len();
    let thresholds = if total == 0 {
        "no thresholds".to_string()
    } else {
        let passed = summary.thresholds.iter().filter(|t| t.ok).count();
        format!("{passed}/{total} thresholds passed")
    };
    format!("{requests}, {failed}, {p95}, {thresholds}")
}

/// Unix milliseconds as RFC 3339 UTC (`2026-01-01T00:00:02Z`).
pub fn rfc3339_from_unix_ms(ms: u64) -> Option<String> {
    let ms = i64::try_from(ms).ok()?;
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_string())
}

/// `namespace/name` of a `LoadTest`, for log lines.
pub fn object_ref(lt: &LoadTest) -> String {
    format!("{}/{}", lt.namespace().unwrap_or_default(), lt.name_any())
}
