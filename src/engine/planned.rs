//! How many VUs a plan needs at once, as k6 plans them: what `vus_max`
//! shows from the start of a run. Pure: scenarios and a scaling rule in,
//! a count out.
//!
//! k6 initialises every planned VU before the test starts and counts them
//! all in `vus_max` (the initialised VUs), then adds any VU an
//! arrival-rate executor initialises past its `preAllocatedVUs`. Each
//! scenario reserves VUs from its `startTime` until the end of its
//! `gracefulStop`: `vus` (constant-vus, per-vu-iterations,
//! shared-iterations), `preAllocatedVUs` (the arrival-rate executors), or
//! for ramping-vus its stages' VU count, where a VU removed by a ramp-down
//! stays reserved for `gracefulRampDown` so that it may finish its
//! iteration. Scenarios that run at different times share VUs: the plan
//! needs the largest sum of reservations over time.

use std::collections::VecDeque;
use std::time::Duration;

use super::schedule::{VuStep, ramping_vus_steps, scaled_steps};
use crate::plan::{Executor, Scenario};

/// The VUs `scenarios` need at once on a share whose VU counts scale by
/// `scale` (the whole count for a local run): the largest sum, over time,
/// of every scenario's reservation.
pub fn planned_vus(scenarios: &[Scenario], scale: impl Fn(u64) -> u64) -> u64 {
    // Every change of any scenario's reservation, then a sweep in time.
    let mut changes: Vec<(Duration, usize, u64)> = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        for step in reservation(s, &scale) {
            changes.push((s.start_time.saturating_add(step.at), i, step.vus));
        }
    }
    // Stable: a scenario's own changes at one instant keep their order.
    changes.sort_by_key(|(at, _, _)| *at);
    let mut current = vec![0u64; scenarios.len()];
    let mut sum = 0u64;
    let mut most = 0;
    let mut i = 0;
    while i < changes.len() {
        let at = changes[i].0;
        while i < changes.len() && changes[i].0 == at {
            let (_, scenario, vus) = changes[i];
            sum = sum - current[scenario] + vus;
            current[scenario] = vus;
            i += 1;
        }
        most = most.max(sum);
    }
    most
}

/// The most VUs one scenario reserves at any time on the share.
pub fn scenario_planned_vus(scenario: &Scenario, scale: impl Fn(u64) -> u64) -> u64 {
    reservation(scenario, &scale)
        .iter()
        .map(|s| s.vus)
        .max()
        .unwrap_or(0)
}

/// One scenario's reserved VUs over time, offsets from its start, ending
/// with a step to 0 at the end of its graceful stop.
fn reservation(s: &Scenario, scale: &impl Fn(u64) -> u64) -> Vec<VuStep> {
    let flat = |vus: u64, run: Duration| {
        vec![
            VuStep {
                at: Duration::ZERO,
                vus: scale(vus),
            },
            VuStep {
                at: run.saturating_add(s.graceful_stop),
                vus: 0,
            },
        ]
    };
    match &s.executor {
        Executor::ConstantVus { vus, duration } => flat(*vus, *duration),
        Executor::PerVuIterations {
            vus, max_duration, ..
        }
        | Executor::SharedIterations {
            vus, max_duration, ..
        } => flat(*vus, *max_duration),
        Executor::ConstantArrivalRate {
            pre_allocated_vus,
            duration,
            ..
        } => flat(*pre_allocated_vus, *duration),
        Executor::RampingArrivalRate {
            pre_allocated_vus,
            stages,
            ..
        } => flat(*pre_allocated_vus, stages.iter().map(|s| s.duration).sum()),
        Executor::RampingVus {
            start_vus,
            stages,
            graceful_ramp_down,
        } => {
            let run: Duration = stages.iter().map(|s| s.duration).sum();
            let end = run.saturating_add(s.graceful_stop);
            let raw = scaled_steps(&ramping_vus_steps(*start_vus, stages), scale);
            let mut held: Vec<VuStep> = held_for(&raw, *graceful_ramp_down)
                .into_iter()
                .take_while(|step| step.at < end)
                .collect();
            held.push(VuStep { at: end, vus: 0 });
            held
        }
    }
}

/// `steps` with every decrease delayed by `hold`: the count at `t` is the
/// largest the steps reach within `[t − hold, t]` (k6 keeps VUs a ramp
/// removes reserved for `gracefulRampDown`). Steps are sorted by instant;
/// the result is too, without repeats.
fn held_for(steps: &[VuStep], hold: Duration) -> Vec<VuStep> {
    // Step i holds from steps[i].at until steps[i + 1].at, and stays in the
    // window until `hold` after that: its `leave` instant.
    let leave = |i: usize| steps.get(i + 1).map(|next| next.at.saturating_add(hold));
    let mut instants: Vec<Duration> = steps
        .iter()
        .map(|s| s.at)
        .chain((0..steps.len()).filter_map(leave))
        .collect();
    instants.sort_unstable();
    instants.dedup();

    // Steps in the window, largest first; each one leaves after those
    // behind it, so a new step removes the smaller ones before it.
    let mut window: VecDeque<(u64, Option<Duration>)> = VecDeque::new();
    let mut next = 0;
    let mut out: Vec<VuStep> = Vec::new();
    for at in instants {
        while next < steps.len() && steps[next].at <= at {
            let vus = steps[next].vus;
            while window.back().is_some_and(|(v, _)| *v <= vus) {
                window.pop_back();
            }
            window.push_back((vus, leave(next)));
            next += 1;
        }
        while window
            .front()
            .is_some_and(|(_, gone)| gone.is_some_and(|g| g <= at))
        {
            window.pop_front();
        }
        let vus = window.front().map_or(0, |(v, _)| *v);
        if out.last().is_none_or(|last| last.vus != vus) {
            out.push(VuStep { at, vus });
        }
    }
    out
}

#[cfg(test)]
mod tests;
