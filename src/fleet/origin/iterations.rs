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
/// had, and whose reported totals are `reported`) over `survivors` (the
/// agents still running; `None` if none is), adding them to `extra`.
/// Returns a note per scenario for the summary.
pub fn take_over(
    plan: &Plan,
    before: &Allocation,
    lost: &str,
    reported: Option<&Aggregate>,
    survivors: Option<&Allocation>,
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
        for agent in survivors.iter().flat_map(|a| a.agents()) {
            let Some(Ok(Some(t))) = survivors.map(|a| a.tuple_for(agent)) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::participant::load_bundle;
    use crate::fleet::protocol::PlanBundle;

    fn plan() -> Plan {
        let bundle = PlanBundle::yaml(
            "scenarios:\n  shared:\n    executor: shared-iterations\n    vus: 4\n    iterations: 100\n    flow:\n      - sleep: 1ms\n  each:\n    executor: per-vu-iterations\n    vus: 4\n    iterations: 10\n    flow:\n      - sleep: 1ms\n  steady:\n    executor: constant-vus\n    vus: 4\n    duration: 1s\n    flow:\n      - sleep: 1ms\n",
        );
        load_bundle(&bundle).expect("the plan loads")
    }

    fn allocation(agents: &[&str]) -> Allocation {
        let weights: Vec<(String, f64)> = agents.iter().map(|a| ((*a).to_owned(), 1.0)).collect();
        Allocation::new(1, &weights).expect("a valid allocation")
    }

    #[test]
    fn a_lost_agents_unfinished_iterations_are_split_over_the_running_agents() {
        let before = allocation(&["a", "b", "c", "d"]);
        let running = before.without(&["d".to_owned()]).expect("three remain");
        let mut extra = Extra::new();
        let notes = take_over(&plan(), &before, "d", None, Some(&running), &mut extra);
        // d had a quarter: 25 shared iterations, one VU of 10; nothing reported done.
        let total = |extra: &Extra, scenario: &str| -> u64 {
            extra.values().filter_map(|m| m.get(scenario)).sum()
        };
        assert_eq!(total(&extra, "shared"), 25);
        assert_eq!(total(&extra, "each"), 10);
        assert_eq!(
            total(&extra, "steady"),
            0,
            "time-based executors take over through their share"
        );
        assert!(!extra.contains_key("d"));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("scenario shared: d had reported 0 of its 25 iterations")),
            "{notes:?}"
        );

        // A second loss adds to the running totals.
        let later = running.without(&["c".to_owned()]).expect("two remain");
        take_over(&plan(), &running, "c", None, Some(&later), &mut extra);
        assert!(total(&extra, "shared") > 25);
    }

    #[test]
    fn with_nobody_running_the_iterations_are_reported_as_not_run() {
        let before = allocation(&["a", "b"]);
        let mut extra = Extra::new();
        let notes = take_over(&plan(), &before, "b", None, None, &mut extra);
        assert!(extra.is_empty());
        assert!(
            notes
                .iter()
                .all(|n| n.contains("nobody was left to run them")),
            "{notes:?}"
        );
    }
}
