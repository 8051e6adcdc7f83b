//! The iteration-based executors (`per-vu-iterations`, `shared-iterations`):
//! VUs bounded by a [`Budget`], and the iterations a fleet hands over from a
//! lost agent ([`Work::take_over`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Retire, ScenarioCtx, Stops, vu_loop};
use crate::engine::vu::Vu;

/// How many iterations a closed-model VU may still start.
#[derive(Clone)]
pub(super) enum Budget {
    Unlimited,
    /// Its own count (`per-vu-iterations`).
    PerVu(u64),
    /// A counter shared by every VU (`shared-iterations`).
    Shared(Arc<AtomicU64>),
}

impl Budget {
    pub(super) fn take(&mut self) -> bool {
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

/// The iterations of an iteration-based scenario.
pub(super) enum Work {
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
pub(super) async fn closed(
    cx: &ScenarioCtx,
    vus: u64,
    duration: Duration,
    graceful: Duration,
    work: Work,
) {
    let end = cx.start + duration;
    let interrupt = cx.deadline_token(end + graceful);
    let mut tasks = JoinSet::new();
    let mut started = 0;
    let mut spawn = |tasks: &mut JoinSet<Vu>, budget: Budget| {
        let vu = cx.new_vu(started);
        started += 1;
        // The first `vus` are planned (in `vus_max` from the start); more
        // come only for iterations taken over from a lost agent.
        if started > vus {
            cx.gauges.allocated.fetch_add(1, Ordering::Relaxed);
        }
        tasks.spawn(vu_loop(
            vu,
            cx.shared.clone(),
            cx.scenario,
            end,
            budget,
            Stops {
                retire: Retire::with_run(&cx.stop),
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
