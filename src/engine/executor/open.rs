//! `constant-arrival-rate` and `ramping-arrival-rate`: one dispatcher that
//! starts iterations on this share's instants of the global schedule.

use std::collections::VecDeque;
use std::iter::Peekable;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::{ScenarioCtx, run_one};
use crate::engine::vu::{IterationSpec, Vu, scenario_index};
use crate::metrics::Sample;
use crate::segment::{Arrivals, ExecutionTuple, Schedule};

/// Open model: start iterations at the schedule's instants owned by this
/// share; a due iteration with no free VU (and `maxVUs` reached) is dropped.
/// A reallocation switches to the new share's instants from its effective
/// instant on, so the survivors of a lost agent cover its arrivals.
pub(super) async fn open(
    cx: &ScenarioCtx,
    schedule: Schedule,
    pre_allocated: u64,
    max_vus: u64,
    graceful: Duration,
) {
    let duration = schedule.duration();
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
    // The pre-allocated VUs are counted in `vus_max` from the run's start
    // (planned); VUs added past them are counted as they come.
    let mut allocated = pre;
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
    sink: &mut crate::engine::sink::SampleSink,
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
