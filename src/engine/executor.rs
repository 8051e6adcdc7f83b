//! The six k6 executors on one share of the load.
//!
//! Load models are data, not one function per combination: closed-model
//! executors (`constant-vus`, `ramping-vus`, `per-vu-iterations`,
//! `shared-iterations`) run long-lived VU loops bounded by a [`Budget`];
//! open-model executors (`constant-arrival-rate`, `ramping-arrival-rate`)
//! run one dispatcher that starts iterations on the global schedule's
//! instants owned by this share and hands each to a free VU.
//!
//! Stopping follows k6: at a scenario's end no new iteration starts;
//! iterations still running get `gracefulStop` (per VU: `gracefulRampDown`
//! when a ramp removes it) and are then interrupted and recorded as such.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::iter::Peekable;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::schedule::{VuStep, ramping_vus_steps};
use super::sink::SinkHandle;
use super::vu::{IterationSpec, Shared, Vu, scenario_index};
use crate::metrics::Sample;
use crate::plan::Executor;
use crate::segment::{Arrivals, ExecutionTuple, Schedule};

/// Live VU counts of the whole run, read by the collector every interval.
#[derive(Debug, Default)]
pub struct VuGauges {
    pub active: AtomicU64,
    pub allocated: AtomicU64,
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

/// How many iterations a closed-model VU may still start.
#[derive(Clone)]
enum Budget {
    Unlimited,
    /// Its own count (`per-vu-iterations`).
    PerVu(u64),
    /// A counter shared by every VU (`shared-iterations`).
    Shared(Arc<AtomicU64>),
}

impl Budget {
    fn take(&mut self) -> bool {
        match self {
            Budget::Unlimited => true,
            Budget::PerVu(n) => {
                if *n == 0 {
                    return false;
                }
                *n -= 1;
                true
            }
            Budget::Shared(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
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
            open(
                &cx,
                schedule,
                duration,
                pre_allocated_vus,
                max_vus,
                graceful,
            )
            .await;
        }
        Executor::RampingArrivalRate {
            start_rate,
            time_unit,
            stages,
            pre_allocated_vus,
            max_vus,
        } => {
            let duration = stages.iter().map(|s| s.duration).sum();
            let schedule = Schedule::Ramping {
                start_rate,
                time_unit,
                stages,
            };
            open(
                &cx,
                schedule,
                duration,
                pre_allocated_vus,
                max_vus,
                graceful,
            )
            .await;
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
    retire: CancellationToken,
    /// Cut the current iteration (graceful stop over).
    interrupt: CancellationToken,
}

/// One closed-model VU: iterate until `end`, the budget runs out, `retire`
/// is cancelled (no new iterations), or `interrupt` cuts the current one.
async fn vu_loop(
    mut vu: Vu,
    shared: Arc<Shared>,
    scenario: usize,
    end: Instant,
    mut budget: Budget,
    stops: Stops,
    gauges: Arc<VuGauges>,
) -> Vu {
    let Stops { retire, interrupt } = stops;
    gauges.active.fetch_add(1, Ordering::Relaxed);
    let mut iter = 0;
    while Instant::now() < end && !retire.is_cancelled() && budget.take() {
        let spec = IterationSpec {
            scenario,
            iter,
            intended: None,
        };
        if !run_one(&mut vu, &shared, spec, &interrupt).await {
            break;
        }
        iter += 1;
    }
    gauges.active.fetch_sub(1, Ordering::Relaxed);
    vu.sink.flush();
    vu
}

/// Runs one iteration unless interrupted; false when it was cut short.
async fn run_one(
    vu: &mut Vu,
    shared: &Shared,
    spec: IterationSpec,
    interrupt: &CancellationToken,
) -> bool {
    let started = Instant::now();
    let finished = tokio::select! {
        biased;
        _ = interrupt.cancelled() => false,
        _ = vu.iterate(shared, spec) => true,
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

/// The iterations of an iteration-based scenario.
enum Work {
    /// `per-vu-iterations`: this many for each VU.
    PerVu(u64),
    /// `shared-iterations`: what is left of this agent's share.
    Shared(Arc<AtomicU64>),
}

impl Work {
    fn budget(&self) -> Budget {
        match self {
            Work::PerVu(n) => Budget::PerVu(*n),
            Work::Shared(left) => Budget::Shared(left.clone()),
        }
    }

    /// Adds `extra` iterations taken over from a lost agent; returns the
    /// budgets of the VUs to start for them (`running` VUs still work).
    fn take_over(&self, extra: u64, vus: u64, running: u64) -> Vec<Budget> {
        match self {
            // Whole VUs of `n` iterations, the last one with the remainder.
            Work::PerVu(n) if *n > 0 => {
                let (full, rest) = (extra / n, extra % n);
                let mut budgets: Vec<Budget> = (0..full).map(|_| Budget::PerVu(*n)).collect();
                if rest > 0 {
                    budgets.push(Budget::PerVu(rest));
                }
                budgets
            }
            Work::PerVu(_) => Vec::new(),
            // The share grows; VUs that already ran out are started again.
            Work::Shared(left) => {
                left.fetch_add(extra, Ordering::Relaxed);
                let idle = vus.saturating_sub(running).min(extra);
                (0..idle).map(|_| Budget::Shared(left.clone())).collect()
            }
        }
    }
}

/// `per-vu-iterations` and `shared-iterations`: `vus` VUs work through
/// their iterations until `duration` (maxDuration). Iterations taken over
/// from a lost agent (fleet) start more VUs or refill the shared count.
async fn closed(cx: &ScenarioCtx, vus: u64, duration: Duration, graceful: Duration, work: Work) {
    let end = cx.start + duration;
    let interrupt = cx.deadline_token(end + graceful);
    let mut tasks = JoinSet::new();
    let mut started = 0;
    let mut spawn = |tasks: &mut JoinSet<Vu>, budget: Budget| {
        let vu = cx.new_vu(started);
        started += 1;
        cx.gauges.allocated.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(vu_loop(
            vu,
            cx.shared.clone(),
            cx.scenario,
            end,
            budget,
            Stops {
                retire: cx.stop.clone(),
                interrupt: interrupt.clone(),
            },
            cx.gauges.clone(),
        ));
    };
    for _ in 0..vus {
        spawn(&mut tasks, work.budget());
    }
    let mut realloc = cx.realloc.clone();
    let mut realloc_open = true;
    let mut taken_over = 0;
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
            changed = realloc.changed(), if realloc_open => {
                if changed.is_err() {
                    realloc_open = false;
                    continue;
                }
                let total = realloc
                    .borrow_and_update()
                    .as_ref()
                    .and_then(|r| r.extra_iterations.get(&cx.scenario).copied())
                    .unwrap_or(0);
                if total <= taken_over || Instant::now() >= end || cx.stop.is_cancelled() {
                    continue;
                }
                let running = tasks.len() as u64;
                for budget in work.take_over(total - taken_over, vus, running) {
                    spawn(&mut tasks, budget);
                }
                taken_over = total;
            }
        }
    }
    interrupt.cancel();
    cx.gauges.allocated.fetch_sub(started, Ordering::Relaxed);
}

/// `constant-vus` and `ramping-vus`: VUs join and leave to follow the
/// global steps scaled to this share; the last to join is the first to
/// leave, with `ramp_down` to finish its iteration. A reallocation (fleet)
/// rescales the current count from its effective instant on.
async fn controlled(
    cx: &ScenarioCtx,
    global: Vec<VuStep>,
    duration: Duration,
    graceful: Duration,
    ramp_down: Duration,
) {
    let end = cx.start + duration;
    let interrupt = cx.deadline_token(end + graceful);
    let mut tuple = cx.tuple.clone();
    let mut realloc = cx.realloc.clone();
    let mut realloc_open = true;
    let mut pending: Option<Realloc> = None;
    let mut idle: Vec<Vu> = Vec::new();
    let mut created = 0u64;
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Vu>();
    // Running VUs, most recently started last: (retire, interrupt) tokens.
    let mut running: Vec<(CancellationToken, CancellationToken)> = Vec::new();
    let mut live = 0usize;
    let mut step_index = 0;
    let mut global_vus = 0;
    loop {
        // The next thing to happen: a step, or a pending reallocation.
        let next_step = global.get(step_index).map(|s| cx.start + s.at);
        let next_realloc = pending.as_ref().map(|r| r.effective);
        let wake = match (next_step, next_realloc) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        if wake >= end && !(step_index == 0 && wake == cx.start) {
            break;
        }
        tokio::select! {
            _ = cx.stop.cancelled() => break,
            changed = realloc.changed(), if realloc_open => {
                match changed {
                    Ok(()) => pending = realloc.borrow_and_update().clone(),
                    Err(_) => realloc_open = false,
                }
                continue;
            }
            _ = sleep_until(wake) => {}
        }
        let now = Instant::now();
        if let Some(r) = pending.take_if(|r| r.effective <= now) {
            tuple = r.tuple;
        }
        while global
            .get(step_index)
            .is_some_and(|s| cx.start + s.at <= now)
        {
            global_vus = global[step_index].vus;
            step_index += 1;
        }
        while let Ok(vu) = back_rx.try_recv() {
            idle.push(vu);
            live -= 1;
        }
        let want = usize::try_from(tuple.scale(global_vus)).unwrap_or(usize::MAX);
        while running.len() > want {
            if let Some((retire, vu_interrupt)) = running.pop() {
                retire.cancel();
                let t = vu_interrupt.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = t.cancelled() => {}
                        _ = tokio::time::sleep(ramp_down) => t.cancel(),
                    }
                });
            }
        }
        while running.len() < want {
            // VUs still finishing a ramp-down iteration are not reused
            // until they are back; a ramp-up meanwhile gets new ones.
            let vu = idle.pop().unwrap_or_else(|| {
                created += 1;
                cx.gauges.allocated.fetch_add(1, Ordering::Relaxed);
                cx.new_vu_with(&tuple, created - 1)
            });
            let retire = cx.stop.child_token();
            let vu_interrupt = interrupt.child_token();
            running.push((retire.clone(), vu_interrupt.clone()));
            live += 1;
            let shared = cx.shared.clone();
            let gauges = cx.gauges.clone();
            let back = back_tx.clone();
            let scenario = cx.scenario;
            tokio::spawn(async move {
                let vu = vu_loop(
                    vu,
                    shared,
                    scenario,
                    end,
                    Budget::Unlimited,
                    Stops {
                        retire,
                        interrupt: vu_interrupt,
                    },
                    gauges,
                )
                .await;
                let _ = back.send(vu);
            });
        }
    }
    // Wait for every VU still out: they stop at `end` (or the graceful stop).
    drop(back_tx);
    while live > 0 {
        if back_rx.recv().await.is_none() {
            break;
        }
        live -= 1;
    }
    interrupt.cancel();
    cx.gauges.allocated.fetch_sub(created, Ordering::Relaxed);
}

/// Open model: start iterations at the schedule's instants owned by this
/// share; a due iteration with no free VU (and `maxVUs` reached) is dropped.
/// A reallocation switches to the new share's instants from its effective
/// instant on, so the survivors of a lost agent cover its arrivals.
async fn open(
    cx: &ScenarioCtx,
    schedule: Schedule,
    duration: Duration,
    pre_allocated: u64,
    max_vus: u64,
    graceful: Duration,
) {
    let end = cx.start + duration;
    let interrupt = cx.deadline_token(end + graceful);
    let name = cx.shared.plan.scenarios[cx.scenario].name.clone();
    let Some(mut arrivals) = share_arrivals(&schedule, &cx.tuple, max_vus, Duration::ZERO, &name)
    else {
        return;
    };
    let pre = cx.tuple.scale(pre_allocated);
    let mut max = cx.tuple.scale(max_vus).max(pre);
    let mut idle: Vec<Vu> = (0..pre).rev().map(|l| cx.new_vu(l)).collect();
    let mut allocated = pre;
    cx.gauges.allocated.fetch_add(pre, Ordering::Relaxed);
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Vu>();
    let mut out = 0u64;
    let mut sink = cx.sink.sink();
    let scenario = scenario_index(cx.scenario);
    let mut dropped_at: VecDeque<Instant> = VecDeque::new();
    let mut iters = 0u64;
    let mut realloc = cx.realloc.clone();
    let mut realloc_open = true;
    // The next share's arrivals and when they take over.
    let mut pending: Option<(Instant, Peekable<Arrivals>, u64)> = None;
    loop {
        if pending
            .as_ref()
            .is_some_and(|(at, _, _)| arrivals.peek().is_none_or(|(_, o)| cx.start + *o >= *at))
            && let Some((_, next, next_max)) = pending.take()
        {
            arrivals = next;
            max = next_max.max(pre);
        }
        let Some(&(_, offset)) = arrivals.peek() else {
            break;
        };
        let due = cx.start + offset;
        if due >= end {
            break;
        }
        if Instant::now() + TIMER_SLACK < due {
            tokio::select! {
                biased;
                _ = cx.stop.cancelled() => break,
                changed = realloc.changed(), if realloc_open => {
                    match changed {
                        Ok(()) => {
                            let update = realloc.borrow_and_update().clone();
                            if let Some(r) = update {
                                let from = r.effective.saturating_duration_since(cx.start);
                                pending = share_arrivals(&schedule, &r.tuple, max_vus, from, &name)
                                    .map(|a| (r.effective, a, r.tuple.scale(max_vus)));
                            }
                        }
                        Err(_) => realloc_open = false,
                    }
                    continue;
                }
                _ = sleep_until(due - TIMER_SLACK) => {}
            }
        } else if cx.stop.is_cancelled() {
            break;
        }
        arrivals.next();
        while let Ok(vu) = back_rx.try_recv() {
            let service = vu.last_request_duration();
            idle.push(vu);
            out -= 1;
            settle_drops(&mut dropped_at, &mut sink, scenario, service);
        }
        let vu = match idle.pop() {
            Some(vu) => vu,
            None if allocated < max => {
                allocated += 1;
                cx.gauges.allocated.fetch_add(1, Ordering::Relaxed);
                cx.new_vu(allocated - 1)
            }
            None => {
                sink.push(Sample::Dropped { scenario, count: 1 });
                if dropped_at.len() < MAX_PENDING_DROPS {
                    dropped_at.push_back(due);
                }
                sink.flush_if_stale();
                continue;
            }
        };
        out += 1;
        let spec = IterationSpec {
            scenario: cx.scenario,
            iter: iters,
            intended: Some(due),
        };
        iters += 1;
        let shared = cx.shared.clone();
        let back = back_tx.clone();
        let gauges = cx.gauges.clone();
        let interrupt = interrupt.clone();
        tokio::spawn(async move {
            let mut vu = vu;
            gauges.active.fetch_add(1, Ordering::Relaxed);
            run_one(&mut vu, &shared, spec, &interrupt).await;
            gauges.active.fetch_sub(1, Ordering::Relaxed);
            // An idle VU may wait on the stack for many intervals (the last
            // one back is the first reused); its samples must not wait with
            // it, or interval snapshots and thresholds miss them.
            vu.sink.flush();
            let _ = back.send(vu);
        });
        sink.flush_if_stale();
    }
    drop(back_tx);
    while out > 0 {
        let Some(vu) = back_rx.recv().await else {
            break;
        };
        out -= 1;
        settle_drops(
            &mut dropped_at,
            &mut sink,
            scenario,
            vu.last_request_duration(),
        );
    }
    sink.flush();
    interrupt.cancel();
    cx.gauges.allocated.fetch_sub(allocated, Ordering::Relaxed);
}

/// The arrivals `tuple` owns, re-segmented by `max_vus` as k6 does, from
/// offset `from` on; `None` when this share runs nothing.
fn share_arrivals(
    schedule: &Schedule,
    tuple: &ExecutionTuple,
    max_vus: u64,
    from: Duration,
    scenario: &str,
) -> Option<Peekable<Arrivals>> {
    let tuple = match tuple.resegment(max_vus) {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(%scenario, "cannot split the arrival rate: {e}");
            return None;
        }
    };
    match Arrivals::new(schedule.clone(), &tuple) {
        Ok(a) => {
            let mut a = a.peekable();
            while a.next_if(|(_, o)| *o < from).is_some() {}
            Some(a)
        }
        Err(e) => {
            tracing::error!(%scenario, "invalid arrival schedule: {e}");
            None
        }
    }
}

/// tokio's timer rounds deadlines up to the next millisecond; aiming half
/// a millisecond early centres arrivals on their intended instants instead
/// of starting every one of them late.
const TIMER_SLACK: Duration = Duration::from_micros(500);

/// Dropped iterations remembered for the intended-start view; beyond this
/// they are still counted in `dropped_iterations`.
const MAX_PENDING_DROPS: usize = 100_000;

/// A VU came free: iterations dropped since the last one would have
/// started now at the earliest, and would then have waited for their
/// answer about as long as that VU's last request did (`service`). Their
/// latency from the intended start is that sum: recording the wait alone
/// would show the arrivals a stall turned away as faster than the requests
/// it held up.
fn settle_drops(
    dropped_at: &mut VecDeque<Instant>,
    sink: &mut super::sink::SampleSink,
    scenario: u16,
    service: Duration,
) {
    if dropped_at.is_empty() {
        return;
    }
    let now = Instant::now();
    for due in dropped_at.drain(..) {
        sink.push(Sample::IntendedWait {
            scenario,
            wait: now.saturating_duration_since(due) + service,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_vu(budgets: &[Budget]) -> Vec<u64> {
        budgets
            .iter()
            .map(|b| match b {
                Budget::PerVu(n) => *n,
                _ => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn per_vu_iterations_taken_over_start_whole_vus_and_one_for_the_rest() {
        let work = Work::PerVu(10);
        assert_eq!(per_vu(&work.take_over(25, 2, 2)), vec![10, 10, 5]);
        assert_eq!(per_vu(&work.take_over(10, 2, 0)), vec![10]);
        assert!(Work::PerVu(0).take_over(5, 2, 2).is_empty());
    }

    #[test]
    fn shared_iterations_taken_over_refill_the_count_and_restart_idle_vus() {
        let left = Arc::new(AtomicU64::new(0));
        let work = Work::Shared(left.clone());
        // One of four VUs still runs: three start again to share the 7 new iterations.
        assert_eq!(work.take_over(7, 4, 1).len(), 3);
        assert_eq!(left.load(Ordering::Relaxed), 7);
        // Never more new VUs than new iterations.
        assert_eq!(work.take_over(2, 4, 0).len(), 2);
        assert_eq!(left.load(Ordering::Relaxed), 9);
        // Every VU still runs: they pick the new iterations up.
        assert!(work.take_over(5, 4, 4).is_empty());
        assert_eq!(left.load(Ordering::Relaxed), 14);
    }
}
