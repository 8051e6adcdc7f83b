//! The dispatcher at absurd rates, on paused time: drops are counted
//! exactly, samples stay `O(rounds)` rather than `O(drops)`, and the
//! scenario ends at its end.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::engine::executor::VuGauges;
use crate::engine::http::HttpClientConfig;
use crate::engine::sink::SinkHandle;
use crate::engine::vu::Shared;
use crate::plan::{Format, FsFiles, LoadOptions, Plan};

/// One VU that sleeps far longer than the scenario, so that every arrival
/// after the first finds no VU.
fn flood(rate: u64, duration: &str) -> Arc<Plan> {
    let text = format!(
        "scenarios:\n  flood:\n    executor: constant-arrival-rate\n    rate: {rate}\n    \
         duration: {duration}\n    preAllocatedVUs: 1\n    maxVUs: 1\n    gracefulStop: 0s\n    \
         flow:\n      - sleep: 1h\n"
    );
    let plan = crate::plan::parse(&text, Format::Yaml, &LoadOptions::default(), &FsFiles)
        .expect("the test plan loads");
    Arc::new(plan)
}

/// What the dispatcher sent the recorder.
#[derive(Debug, Default)]
struct Counted {
    dropped: u64,
    dropped_samples: u64,
    intended: u64,
    interrupted: u64,
}

async fn run(plan: Arc<Plan>) -> (Counted, Duration) {
    let shared = Arc::new(Shared::new(
        plan.clone(),
        HttpClientConfig::new(&plan.http).expect("the default HTTP options are valid"),
        None,
    ));
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Sample>>();
    let start = Instant::now();
    let cx = ScenarioCtx {
        shared,
        scenario: 0,
        start,
        tuple: ExecutionTuple::full(),
        vu_offset: 0,
        sink: SinkHandle::new(tx, Arc::new(AtomicU64::new(0))),
        gauges: Arc::new(VuGauges::default()),
        stop: CancellationToken::new(),
        realloc: watch::channel(None).1,
    };
    let Executor::ConstantArrivalRate {
        rate,
        time_unit,
        duration,
        pre_allocated_vus,
        max_vus,
    } = plan.scenarios[0].executor.clone()
    else {
        panic!("the test plan is constant-arrival-rate");
    };
    let schedule = Schedule::Constant {
        rate,
        time_unit,
        duration,
    };
    let graceful = plan.scenarios[0].graceful_stop;
    open(&cx, schedule, pre_allocated_vus, max_vus, graceful).await;
    let took = start.elapsed();
    drop(cx);
    let mut counted = Counted::default();
    while let Some(batch) = rx.recv().await {
        for sample in batch {
            match sample {
                Sample::Dropped { count, .. } => {
                    counted.dropped += u64::from(count);
                    counted.dropped_samples += 1;
                }
                Sample::IntendedWait { .. } => counted.intended += 1,
                Sample::Iteration {
                    interrupted: true, ..
                } => counted.interrupted += 1,
                _ => {}
            }
        }
    }
    (counted, took)
}

use crate::plan::Executor;

#[tokio::test(start_paused = true)]
async fn a_billion_per_second_is_counted_in_rounds_and_ends_on_time() {
    let (counted, took) = run(flood(1_000_000_000, "2s")).await;
    eprintln!("{counted:?} in {took:?}");
    // Every arrival but the first (which took the only VU) was dropped,
    // and each one is counted.
    assert_eq!(counted.dropped, 2_000_000_000 - 1);
    // One sample per round of the dispatcher (about one per timer slack),
    // not one per drop.
    assert!(
        counted.dropped_samples <= 2 * 2 * 2_000,
        "{} Dropped samples for 2 s",
        counted.dropped_samples
    );
    // The intended-start view remembers a bounded number of drops.
    assert!(counted.intended <= MAX_PENDING_DROPS, "{counted:?}");
    // The VU's iteration was cut at the end (gracefulStop 0s).
    assert_eq!(counted.interrupted, 1);
    assert!(
        took <= Duration::from_secs(2) + Duration::from_millis(10),
        "the scenario ends at its end: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_the_dispatcher_keeps_up_with_drops_one_by_one() {
    // 100/s: every arrival is its own round, exactly as before.
    let (counted, _) = run(flood(100, "1s")).await;
    assert_eq!(counted.dropped, 99);
    assert_eq!(counted.dropped_samples, 99);
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_the_dispatcher_however_far_behind() {
    let plan = flood(1_000_000_000_000, "1h");
    let shared = Arc::new(Shared::new(
        plan.clone(),
        HttpClientConfig::new(&plan.http).expect("the default HTTP options are valid"),
        None,
    ));
    let (tx, _rx) = mpsc::unbounded_channel::<Vec<Sample>>();
    let stop = CancellationToken::new();
    let start = Instant::now();
    let cx = ScenarioCtx {
        shared,
        scenario: 0,
        start,
        tuple: ExecutionTuple::full(),
        vu_offset: 0,
        sink: SinkHandle::new(tx, Arc::new(AtomicU64::new(0))),
        gauges: Arc::new(VuGauges::default()),
        stop: stop.clone(),
        realloc: watch::channel(None).1,
    };
    let schedule = Schedule::Constant {
        rate: 1_000_000_000_000,
        time_unit: Duration::from_secs(1),
        duration: Duration::from_secs(3600),
    };
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.cancel();
    });
    open(&cx, schedule, 1, 1, Duration::ZERO).await;
    assert!(stopper.is_finished() || start.elapsed() >= Duration::from_secs(3));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "stopped at the stop, not at the end of the hour: {:?}",
        start.elapsed()
    );
}
