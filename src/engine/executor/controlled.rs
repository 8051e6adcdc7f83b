//! `constant-vus` and `ramping-vus`: a controller that keeps the VU count on
//! the scaled steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::iterations::Budget;
use super::{Realloc, Retire, ScenarioCtx, Stops, vu_loop};
use crate::engine::schedule::VuStep;
use crate::engine::vu::Vu;

/// `constant-vus` and `ramping-vus`: VUs join and leave to follow the
/// global steps scaled to this share; the last to join is the first to
/// leave, with `ramp_down` to finish its iteration. A reallocation (fleet)
/// rescales the current count from its effective instant on.
pub(super) async fn controlled(
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
    // VUs planned for this scenario are in `vus_max` from the run's start;
    // more are created only while ramped-down VUs still finish an
    // iteration, or when a reallocation grows this share.
    let planned = global
        .iter()
        .map(|s| cx.tuple.scale(s.vus))
        .max()
        .unwrap_or(0);
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Vu>();
    // Running VUs, most recently started last: (retire flag, interrupt).
    let mut running: Vec<(Arc<AtomicBool>, CancellationToken)> = Vec::new();
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
                retire.store(true, Ordering::Relaxed);
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
                if created > planned {
                    cx.gauges.allocated.fetch_add(1, Ordering::Relaxed);
                }
                cx.new_vu_with(&tuple, created - 1)
            });
            let retire = Arc::new(AtomicBool::new(false));
            let vu_interrupt = interrupt.child_token();
            running.push((retire.clone(), vu_interrupt.clone()));
            live += 1;
            let shared = cx.shared.clone();
            let gauges = cx.gauges.clone();
            let back = back_tx.clone();
            let scenario = cx.scenario;
            // `map`, not an `async` block around the loop: that would keep
            // a second copy of the VU in the task for the whole run.
            let vu_task = vu_loop(
                vu,
                shared,
                scenario,
                end,
                Budget::Unlimited,
                Stops {
                    retire: Retire {
                        run: cx.stop.clone(),
                        own: Some(retire),
                    },
                    interrupt: vu_interrupt,
                },
                gauges,
            )
            .map(move |vu| {
                let _ = back.send(vu);
            });
            tokio::spawn(vu_task);
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
}
