//! `constant-arrival-rate` and `ramping-arrival-rate`: one dispatcher that
//! starts iterations on this share's instants of the global schedule.
//!
//! Memory is `O(1)` whatever the rate: a dispatcher with no free VU counts
//! every arrival already due in one step (one `Dropped` sample per round,
//! not per arrival) and remembers a bounded number of them for the
//! intended-start view; it checks the stop and the scenario's end every
//! round, and yields to the runtime when it has not slept for a while, so
//! an absurd rate ends with its scenario like any other.

use std::collections::VecDeque;
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
    let mut drops = PendingDrops::default();
    // Dispatches since the dispatcher last slept.
    let mut unslept = 0u32;
    let mut iters = 0u64;
    let mut realloc = cx.realloc.clone();
    let mut realloc_open = true;
    // The next share's arrivals and when they take over.
    let mut pending: Option<(Instant, Upcoming, u64)> = None;
    loop {
        if pending
            .as_ref()
            .is_some_and(|(at, _, _)| arrivals.peek().is_none_or(|o| cx.start + o >= *at))
            && let Some((_, next, next_max)) = pending.take()
        {
            arrivals = next;
            max = next_max.max(pre);
        }
        let Some(offset) = arrivals.peek() else {
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
            unslept = 0;
        } else if cx.stop.is_cancelled() {
            break;
        } else if unslept >= YIELD_EVERY {
            // Behind the schedule: let the VUs (and the recorder) run.
            unslept = 0;
            tokio::task::yield_now().await;
            continue;
        }
        let now = Instant::now();
        if now >= end + LATE_START {
            // However far behind, the scenario ends at its end: what is
            // still due was never started.
            let mut until = end;
            if let Some((at, _, _)) = &pending {
                until = until.min(*at);
            }
            let rest = arrivals.skip_before(until.saturating_duration_since(cx.start));
            if rest > 0 {
                push_dropped(&mut sink, scenario, rest);
                drops.remember(due, until.max(due), rest);
            }
            break;
        }
        unslept += 1;
        arrivals.take();
        while let Ok(vu) = back_rx.try_recv() {
            let service = vu.last_request_duration();
            idle.push(vu);
            out -= 1;
            drops.settle(&mut sink, scenario, service);
        }
        let mut vu = match idle.pop() {
            Some(vu) => vu,
            None if allocated < max => {
                allocated += 1;
                cx.gauges.allocated.fetch_add(1, Ordering::Relaxed);
                cx.new_vu(allocated - 1)
            }
            None => {
                // No VU now, so none for any arrival due by now either
                // (within the timer's slack, before a new share takes
                // over): all of them are dropped in one step.
                let mut until = (now + TIMER_SLACK).min(end);
                if let Some((at, _, _)) = &pending {
                    until = until.min(*at);
                }
                // Inclusive: an arrival at `now + slack` counts as due.
                let more = arrivals.skip_before(
                    until.saturating_duration_since(cx.start) + Duration::from_nanos(1),
                );
                let count = 1 + more;
                push_dropped(&mut sink, scenario, count);
                drops.remember(due, until.max(due), count);
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
        let scenario = cx.scenario;
        // `vu` is used where the block captured it: a `let` of its own
        // would hold a second copy of the VU in the task.
        tokio::spawn(async move {
            gauges.enter(scenario);
            run_one(&mut vu, &shared, spec, &interrupt).await;
            gauges.leave(scenario);
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
        drops.settle(&mut sink, scenario, vu.last_request_duration());
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
) -> Option<Upcoming> {
    let tuple = match tuple.resegment(max_vus) {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(%scenario, "cannot split the arrival rate: {e}");
            return None;
        }
    };
    match Arrivals::new(schedule.clone(), &tuple) {
        Ok(mut a) => {
            a.skip_before(from);
            Some(Upcoming {
                arrivals: a,
                head: None,
            })
        }
        Err(e) => {
            tracing::error!(%scenario, "invalid arrival schedule: {e}");
            None
        }
    }
}

/// A share's arrivals with the next one looked at but not taken.
struct Upcoming {
    arrivals: Arrivals,
    head: Option<Duration>,
}

// === impl Upcoming ===

impl Upcoming {
    /// Start offset of the next arrival.
    fn peek(&mut self) -> Option<Duration> {
        if self.head.is_none() {
            self.head = self.arrivals.next().map(|(_, offset)| offset);
        }
        self.head
    }

    /// Takes the arrival [`Upcoming::peek`] showed.
    fn take(&mut self) {
        self.head = None;
    }

    /// Skips every arrival before offset `at`; how many.
    fn skip_before(&mut self, at: Duration) -> u64 {
        match self.head {
            Some(offset) if offset >= at => return 0,
            Some(_) => self.head = None,
            None => return self.arrivals.skip_before(at),
        }
        1 + self.arrivals.skip_before(at)
    }
}

/// One `Dropped` sample for `count` arrivals (split only past `u32`).
fn push_dropped(sink: &mut crate::engine::sink::SampleSink, scenario: u16, count: u64) {
    let mut left = count;
    while left > 0 {
        let part = u32::try_from(left).unwrap_or(u32::MAX);
        sink.push(Sample::Dropped {
            scenario,
            count: part,
        });
        left -= u64::from(part);
    }
}

/// tokio's timer rounds deadlines up to the next millisecond; aiming half
/// a millisecond early centres arrivals on their intended instants instead
/// of starting every one of them late.
const TIMER_SLACK: Duration = Duration::from_micros(500);

/// How late after the scenario's end an arrival due before it may still
/// start (a timer that fired late); past that the dispatcher stops and
/// counts what is left as dropped.
const LATE_START: Duration = Duration::from_millis(50);

/// Dispatches in a row without sleeping before the dispatcher yields.
const YIELD_EVERY: u32 = 64;

/// Dropped iterations remembered for the intended-start view; beyond this
/// they are still counted in `dropped_iterations`.
const MAX_PENDING_DROPS: u64 = 100_000;

/// Dropped iterations waiting for a VU to come free, remembered as runs
/// (`count` arrivals due from `first` to `last`), at most
/// [`MAX_PENDING_DROPS`] of them in all.
#[derive(Default)]
struct PendingDrops {
    runs: VecDeque<(Instant, Instant, u64)>,
    remembered: u64,
}

// === impl PendingDrops ===

impl PendingDrops {
    fn remember(&mut self, first: Instant, last: Instant, count: u64) {
        let count = count.min(MAX_PENDING_DROPS - self.remembered);
        if count > 0 {
            self.runs.push_back((first, last, count));
            self.remembered += count;
        }
    }

    /// A VU came free: iterations dropped since the last one would have
    /// started now at the earliest, and would then have waited for their
    /// answer about as long as that VU's last request did (`service`).
    /// Their latency from the intended start is that sum: recording the
    /// wait alone would show the arrivals a stall turned away as faster
    /// than the requests it held up. A run's arrivals are taken as evenly
    /// spread between its first and last due instants.
    fn settle(
        &mut self,
        sink: &mut crate::engine::sink::SampleSink,
        scenario: u16,
        service: Duration,
    ) {
        if self.runs.is_empty() {
            return;
        }
        let now = Instant::now();
        for (first, last, count) in self.runs.drain(..) {
            let span = last.saturating_duration_since(first);
            for i in 0..count {
                let due = first + span.mul_f64(i as f64 / count as f64);
                sink.push(Sample::IntendedWait {
                    scenario,
                    wait: now.saturating_duration_since(due) + service,
                });
            }
        }
        self.remembered = 0;
    }
}

#[cfg(test)]
mod tests;
