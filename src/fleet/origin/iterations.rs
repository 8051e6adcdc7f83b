//! Taking over a lost agent's iterations (`per-vu-iterations`,
//! `shared-iterations`): what it had not reported done goes to the agents
//! still running, split by their shares.
//!
//! The lost agent's progress is known from its last delivered interval,
//! which lags by up to about two seconds (a 1 s interval, then delivery):
//! what it did after that, and an iteration it was in the middle of, run
//! again. The fleet's total never falls short while some agent still runs
//! the scenario; when none does, the summary says how many were not run.

use std::collections::BTreeMap;

use crate::fleet::allocation::Allocation;
use crate::metrics::aggregate::Aggregate;
use crate::metrics::{Metric, Value};
use crate::plan::{Executor, Plan};

/// Iterations taken over, per agent and scenario name (running totals).
pub type Extra = BTreeMap<String, BTreeMap<String, u64>>;

/// Splits the unfinished iterations of `lost` (whose share in `before` it
/// had, and whose reported totals are `reported`) over `survivors`, adding
/// them to `extra`. Returns a note per scenario for the summary.
pub fn take_over(
    plan: &Plan,
    before: &Allocation,
    lost: &str,
    reported: Option<&Aggregate>,
    survivors: &Allocation,
    extra: &mut Extra,
) -> Vec<String> {
    let Ok(Some(tuple)) = before.tuple_for(lost) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for scenario in &plan.scenarios {
        let share = match &scenario.executor {
            Executor::PerVuIterations {
                vus, iterations, ..
            } => tuple.scale(*vus) * iterations,
            Executor::SharedIterations {
                vus, iterations, ..
            } => match tuple.resegment(*vus) {
                Ok(Some(t)) => t.scale(*iterations),
                _ => 0,
            },
            _ => continue,
        };
        let done = reported.map_or(0, |agg| completed(agg, &scenario.name));
        let left = share.saturating_sub(done);
        if left == 0 {
            continue;
        }
        let mut given = Vec::new();
        for agent in survivors.agents() {
            let Ok(Some(t)) = survivors.tuple_for(agent) else {
                continue;
            };
            let part = t.scale(left);
            if part > 0 {
                *extra
                    .entry(agent.to_owned())
                    .or_default()
                    .entry(scenario.name.clone())
                    .or_default() += part;
                given.push(format!("{part} to {agent}"));
            }
        }
        notes.push(if given.is_empty() {
            format!(
                "scenario {}: {left} iterations of {lost} were not done and nobody was left to run them",
                scenario.name
            )
        } else {
            format!(
                "scenario {}: {lost} had reported {done} of its {share} iterations; the other {left} were taken over ({})",
                scenario.name,
                given.join(", ")
            )
        });
    }
    notes
}

/// Completed iterations of `scenario` in an agent's totals.
fn completed(agg: &Aggregate, scenario: &str) -> u64 {
    let filter = [("scenario".to_owned(), scenario.to_owned())];
    match agg.metric_value(Metric::Iterations, &filter) {
        Some(Value::Counter(n)) => n as u64,
        _ => 0,
    }
}
