//! The six k6 executors on one share of the load.
//!
//! Load models are data, not one function per combination: closed-model
//! executors run long-lived VU loops: `controlled` (`constant-vus`,
//! `ramping-vus`) keeps their count on the steps, `iterations`
//! (`per-vu-iterations`, `shared-iterations`) bounds them by a budget;
//! `open` (`constant-arrival-rate`, `ramping-arrival-rate`) runs one
//! dispatcher that starts iterations on the global schedule's instants owned
//! by this share and hands each to a free VU.
//!
//! Stopping follows k6: at a scenario's end no new iteration starts;
//! iterations still running get `gracefulStop` (per VU: `gracefulRampDown`
//! when a ramp removes it) and are then interrupted and recorded as such.

// Some functions here return an `async move` block instead of being an
// `async fn`: an `async fn` moves its arguments into locals and its future
// then holds them twice (ARCHITECTURE.md, invariant 19).
#![allow(clippy::manual_async_fn)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

mod controlled;
mod iterations;
mod open;

use self::controlled::controlled;
use self::iterations::{Budget, Work, closed};
use self::open::open;
use super::schedule::{VuStep, ramping_vus_steps};
use super::sink::SinkHandle;
use super::vu::{IterationSpec, Shared, Vu, scenario_index};
use crate::metrics::Sample;
use crate::plan::Executor;
use crate::segment::{ExecutionTuple, Schedule};

/// Live VU counts of the whole run, read by the collector, with k6's
/// meanings.
#[derive(Debug, Default)]
pub struct VuGauges {
    /// k6's `vus`: VUs at work. A closed-model VU from its start until its
    /// loop ends (its last iteration included); an open-model VU while it
    /// runs an iteration.
    pub active: AtomicU64,
    /// k6's `vus_max`: VUs initialised for the run. The plan's planned VUs
    /// from the start ([`crate::engine::planned`]), plus every VU an
    /// executor adds past its own plan (an arrival-rate scenario past its
    /// `preAllocatedVUs`, a share grown by a reallocation); never
    /// decreases.
    pub allocated: AtomicU64,
    /// `vus` of each scenario, in the plan's order (for the progress
    /// display; k6's `vus` gauge itself is untagged).
    pub scenarios: Vec<AtomicU64>,
}

impl VuGauges {
    /// Gauges of a run of `scenarios` scenarios that plans `planned` VUs.
    pub fn planned(planned: u64, scenarios: usize) -> VuGauges {
        VuGauges {
            active: AtomicU64::new(0),
            allocated: AtomicU64::new(planned),
            scenarios: (0..scenarios).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A VU of `scenario` starts working (see [`VuGauges::active`]).
    pub fn enter(&self, scenario: usize) {
        self.active.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.scenarios.get(scenario) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A VU of `scenario` stops working.
    pub fn leave(&self, scenario: usize) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = self.scenarios.get(scenario) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Each scenario's VUs at work now, in the plan's order.
    pub fn read_scenarios(&self) -> Vec<u64> {
        self.scenarios
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// `(vus, vus_max)` now.
    pub fn read(&self) -> (u64, u64) {
        (
            self.active.load(Ordering::Relaxed),
            self.allocated.load(Ordering::Relaxed),
        )
    }
}

/// Everything one scenario's executor needs.
pub struct ScenarioCtx {
    pub shared: Arc<Shared>,
    pub scenario: usize,
    /// The instant the scenario starts (test start + `startTime`).
    pub start: Instant,
    /// This share of the load.
    pub tuple: ExecutionTuple,
    /// Added to this scenario's global VU numbers so that `${vu}` is unique
    /// across scenarios.
    pub vu_offset: u64,
    pub sink: SinkHandle,
    pub gauges: Arc<VuGauges>,
    /// Cancelled when the whole run must stop now (signal, abort, threshold).
    pub stop: CancellationToken,
    /// New shares from the fleet (an agent was lost); `None` until then.
    pub realloc: watch::Receiver<Option<Realloc>>,
}

/// A new share of the load, from `effective` on.
#[derive(Debug, Clone)]
pub struct Realloc {
    pub tuple: ExecutionTuple,
    pub effective: Instant,
    /// Iterations taken over from lost agents, by scenario index: the total
    /// so far for this agent (iteration-based executors add the increase).
    pub extra_iterations: BTreeMap<usize, u64>,
}

/// Runs the scenario to its end (graceful stop included).
pub async fn run_scenario(cx: ScenarioCtx) {
    tokio::select! {
        _ = cx.stop.cancelled() => return,
        _ = precise_sleep_until(cx.start) => {}
    }
    let scenario = &cx.shared.plan.scenarios[cx.scenario];
    let graceful = scenario.graceful_stop;
    match scenario.executor.clone() {
        Executor::ConstantVus { vus, duration } => {
            let steps = vec![VuStep {
                at: Duration::ZERO,
                vus,
            }];
            controlled(&cx, steps, duration, graceful, graceful).await;
        }
        Executor::PerVuIterations {
            vus,
            iterations,
            max_duration,
        } => {
            let n = cx.tuple.scale(vus);
            closed(&cx, n, max_duration, graceful, Work::PerVu(iterations)).await;
        }
        Executor::SharedIterations {
            vus,
            iterations,
            max_duration,
        } => {
            let n = cx.tuple.scale(vus);
            // k6 re-segments by the VU count so iterations follow the VUs.
            let mine = match cx.tuple.resegment(vus) {
                Ok(Some(t)) => t.scale(iterations),
                Ok(None) => 0,
                Err(e) => {
                    tracing::error!(scenario = %scenario.name, "cannot split iterations: {e}");
                    0
                }
            };
            let left = Arc::new(AtomicU64::new(mine));
            closed(&cx, n, max_duration, graceful, Work::Shared(left)).await;
        }
        Executor::RampingVus {
            start_vus,
            stages,
            graceful_ramp_down,
        } => {
            let duration = stages.iter().map(|s| s.duration).sum();
            let steps = ramping_vus_steps(start_vus, &stages);
            controlled(&cx, steps, duration, graceful, graceful_ramp_down).await;
        }
        Executor::ConstantArrivalRate {
            rate,
            time_unit,
            duration,
            pre_allocated_vus,
            max_vus,
        } => {
            let schedule = Schedule::Constant {
                rate,
                time_unit,
                duration,
            };
            open(&cx, schedule, pre_allocated_vus, max_vus, graceful).await;
        }
        Executor::RampingArrivalRate {
            start_rate,
            time_unit,
            stages,
            pre_allocated_vus,
            max_vus,
        } => {
            let schedule = Schedule::Ramping {
                start_rate,
                time_unit,
                stages,
            };
            open(&cx, schedule, pre_allocated_vus, max_vus, graceful).await;
        }
    }
}

/// Sleeps until `at` with sub-millisecond precision (the last 2 ms are spent
/// yielding). A fleet's start barrier is only as tight as this.
pub async fn precise_sleep_until(at: Instant) {
    crate::clock::sleep_until_precise(at, Duration::from_millis(2)).await;
}

impl ScenarioCtx {
    fn new_vu(&self, local: u64) -> Vu {
        self.new_vu_with(&self.tuple, local)
    }

    /// A VU numbered by its place in `tuple`'s stripes, so that `${vu}` is
    /// unique across the agents of a fleet.
    fn new_vu_with(&self, tuple: &ExecutionTuple, local: u64) -> Vu {
        let global = tuple.local_to_global(local);
        Vu::new(self.vu_offset + global + 1, &self.shared, self.sink.sink())
    }

    /// A token cancelled at `at` or when the run stops.
    fn deadline_token(&self, at: Instant) -> CancellationToken {
        let token = self.stop.child_token();
        let t = token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = t.cancelled() => {}
                _ = sleep_until(at) => t.cancel(),
            }
        });
        token
    }
}

/// How a VU's loop is told to stop.
struct Stops {
    /// No new iteration (scenario end, ramp-down, run stop).
    retire: Retire,
    /// Cut the current iteration (graceful stop over).
    interrupt: CancellationToken,
}

/// When a VU starts no new iteration: the run stops, or (a VU a ramp
/// removed) its own flag is set. A flag, not a child token: it is only
/// read between iterations, and every running VU has one.
struct Retire {
    run: CancellationToken,
    own: Option<Arc<AtomicBool>>,
}

impl Retire {
    /// Retired with the run only.
    fn with_run(run: &CancellationToken) -> Retire {
        Retire {
            run: run.clone(),
            own: None,
        }
    }

    fn is_set(&self) -> bool {
        self.run.is_cancelled() || self.own.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

/// One closed-model VU: iterate until `end`, the budget runs out, `retire`
/// is cancelled (no new iterations), or `interrupt` cuts the current one.
///
/// A function returning an `async move` block, not an `async fn`: an
/// `async fn` moves each argument into a local of its body, and its future
/// then holds the VU twice (the argument and the local) for the VU's whole
/// life. The block's captures are used in place.
fn vu_loop(
    mut vu: Vu,
    shared: Arc<Shared>,
    scenario: usize,
    end: Instant,
    mut budget: Budget,
    stops: Stops,
    gauges: Arc<VuGauges>,
) -> impl Future<Output = Vu> {
    async move {
        gauges.enter(scenario);
        let mut iter = 0;
        while Instant::now() < end && !stops.retire.is_set() && budget.take() {
            let spec = IterationSpec {
                scenario,
                iter,
                intended: None,
            };
            if !run_one(&mut vu, &shared, spec, &stops.interrupt).await {
                break;
            }
            iter += 1;
        }
        gauges.leave(scenario);
        vu.sink.flush();
        vu
    }
}

/// Runs one iteration unless interrupted; false when it was cut short.
/// (An `async` block, as [`vu_loop`]'s, so that its arguments are not
/// held twice.)
fn run_one(
    vu: &mut Vu,
    shared: &Shared,
    spec: IterationSpec,
    interrupt: &CancellationToken,
) -> impl Future<Output = bool> {
    async move {
        let started = Instant::now();
        let finished = tokio::select! {
            biased;
            _ = interrupt.cancelled() => false,
            _ = vu.iterate(shared, &spec) => true,
        };
        if !finished {
            vu.sink.push(Sample::Iteration {
                scenario: scenario_index(spec.scenario),
                duration: started.elapsed(),
                interrupted: true,
            });
        }
        finished
    }
}

#[cfg(test)]
mod tests;
