//! Running a whole plan on this machine: scenarios on their start offsets,
//! one recorder fed by every VU's batches, interval snapshots every second,
//! thresholds every two, and the final result.
//!
//! The `vus` and `vus_max` gauges are sampled once per interval, shortly
//! before it closes (at 95 % of it: 50 ms before each whole second), while
//! the scenarios run: from the start until the longest `startTime +
//! duration`, not in graceful stops and teardown. k6 samples once a
//! second from its start-up, so its samples fall just before each whole
//! second of the test, and the last one before the end sees every VU still
//! at work (its samples in a graceful stop depend on that phase). A sample
//! at the instant a scenario ends would catch its VUs stopping (a 200-VU
//! test would end on `vus` 198). `vus_max` counts the plan's planned VUs
//! from the start ([`super::planned`]).
//!
//! The recorder runs inside `run`'s own loop (not a separate task), so the
//! observer (progress line, JSON output, the fleet's streamer) is called in
//! order with plain `&mut` access.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_util::sync::CancellationToken;

use super::executor::{Realloc, ScenarioCtx, VuGauges, run_scenario};
use super::http::HttpClientConfig;
use super::planned::planned_vus;
use super::saturation::{LagCounts, LoadMeter, PROBE_EVERY, Saturation};
use super::sink::SinkHandle;
use super::vu::Shared;
use crate::metrics::aggregate::Aggregate;
use crate::metrics::judge;
use crate::metrics::recorder::Point;
use crate::metrics::recorder::{Recorder, RecorderOptions};
use crate::metrics::snapshot::{SeriesKey, Snapshot};
use crate::metrics::{Sample, Summary, ThresholdOutcome};
use crate::plan::Plan;
use crate::segment::ExecutionTuple;

/// Thresholds are judged every this many intervals during the run (k6: 2 s).
const THRESHOLD_EVERY: u64 = 2;

/// How a run is shaped beyond its plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// This machine's share of the load (the whole of it for a local run).
    pub tuple: ExecutionTuple,
    /// When to start (a fleet barrier); `None` starts now.
    pub start_at: Option<Instant>,
    /// Length of an interval snapshot.
    pub interval: Duration,
    /// Tags added to every series (the fleet adds `agent`).
    pub extra_tags: Vec<(String, String)>,
    /// Most distinct series before samples are folded into overflow series.
    pub max_series: usize,
    /// New shares while running (the fleet lost an agent).
    pub realloc: Option<watch::Receiver<Option<Realloc>>>,
    /// The script whose functions the VUs run (a plan from a script).
    pub script: Option<Arc<crate::script::ScriptRun>>,
    /// A fleet share: the plan's `setup` ran on the accepting agent, which
    /// also runs `teardown`; the VUs start with these values.
    pub setup_values: Option<super::lifecycle::SetupValues>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            tuple: ExecutionTuple::full(),
            start_at: None,
            interval: Duration::from_secs(1),
            extra_tags: Vec::new(),
            max_series: 5_000,
            realloc: None,
            script: None,
            setup_values: None,
        }
    }
}

/// What an observer sees every interval.
pub struct IntervalReport<'a> {
    /// Samples of this interval only.
    pub snapshot: &'a Snapshot,
    /// Everything since the start, this interval included.
    pub total: &'a Aggregate,
    /// Time since the start.
    pub elapsed: Duration,
    /// VUs at work and VUs initialised (k6's `vus` and `vus_max`), now.
    pub vus: u64,
    pub vus_max: u64,
    /// Each scenario's VUs at work now, in the plan's order.
    pub scenario_vus: &'a [u64],
    /// Set on the intervals where thresholds were judged.
    pub thresholds: Option<&'a [ThresholdOutcome]>,
}

/// Every sample's values since the last batch, for outputs that write
/// each sample (k6's JSON and CSV).
pub struct PointBatch<'a> {
    /// When the recorder took the samples in, nanoseconds since the Unix
    /// epoch: a VU ships its samples at the end of an iteration (or every
    /// 256), so this is at most an iteration, or an interval for a long
    /// one, after they happened.
    pub time_unix_ns: u128,
    /// Keys of the series created since the last batch; a point's series
    /// id indexes the list of every key sent so far.
    pub new_keys: &'a [SeriesKey],
    pub points: &'a [Point],
}

/// Receives interval reports while a run is going.
pub trait Observer: Send {
    fn on_interval(&mut self, report: &IntervalReport<'_>);

    /// Whether this observer wants every sample ([`Observer::on_points`]).
    fn wants_points(&self) -> bool {
        false
    }

    /// Every sample's values, as the recorder takes them in, when
    /// [`Observer::wants_points`] says so.
    fn on_points(&mut self, _batch: &PointBatch<'_>) {}
}

/// An observer that ignores everything.
pub struct NoObserver;

impl Observer for NoObserver {
    fn on_interval(&mut self, _: &IntervalReport<'_>) {}
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Every scenario finished.
    Completed,
    /// A threshold with `abortOnFail` failed.
    ThresholdAbort,
    /// `stop` was cancelled from outside (signal, API, fleet).
    Stopped,
}

/// The result of a run.
#[derive(Debug)]
pub struct RunResult {
    pub total: Aggregate,
    pub elapsed: Duration,
    pub outcomes: Vec<ThresholdOutcome>,
    pub end: EndReason,
    pub summary: Summary,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Set when the generator was saturated while the scenarios ran (also
    /// a note in `summary`).
    pub saturation: Option<Saturation>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    /// The script's `setup()` failed (or timed out): nothing ran.
    #[error("{0}")]
    Script(#[from] crate::script::ScriptError),
    /// The plan's `setup` flow failed a check: nothing ran.
    #[error("{0}")]
    Setup(#[from] super::lifecycle::SetupFailed),
}

/// Runs `plan` to completion (or until `stop` is cancelled).
pub async fn run(
    plan: Arc<Plan>,
    opts: RunOptions,
    stop: CancellationToken,
    observer: &mut dyn Observer,
) -> Result<RunResult, EngineError> {
    let segment = opts.tuple.segment();
    let share = segment.to().to_f64() - segment.from().to_f64();
    let http = HttpClientConfig::new(&plan.http)
        .map_err(|e| EngineError::Http(e.to_string()))?
        .with_rps_share(share);
    let shared = Arc::new(Shared::new(plan.clone(), http, opts.script.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Sample>>();
    let epoch = Arc::new(AtomicU64::new(0));
    let gauges = Arc::new(VuGauges::planned(
        planned_vus(&plan.scenarios, |v| opts.tuple.scale(v)),
        plan.scenarios.len(),
    ));
    if let Some(script) = &opts.script {
        script.host.watch_vus(gauges.clone());
    }
    let mut sink = Some(SinkHandle::new(tx, epoch.clone()));
    if let (Some(script), Some(handle)) = (&opts.script, &sink) {
        // As k6: every VU's init context first, then setup() once, then
        // the start; setup's requests count.
        let mut offset = 0;
        let mut scenarios = Vec::with_capacity(plan.scenarios.len());
        for s in &plan.scenarios {
            scenarios.push((offset, s.executor.initial_vus()));
            offset += s.executor.max_vus();
        }
        crate::script::lifecycle::prewarm(script, &shared.http, handle, &opts.tuple, &scenarios)
            .await?;
        crate::script::lifecycle::setup(script, &shared.http, handle).await?;
    }
    // A plan's own setup, before the start as k6 runs it (unless it ran on
    // the agent that accepted a fleet test).
    match (&opts.setup_values, &sink) {
        (Some(values), _) => super::lifecycle::adopt(&shared, values),
        (None, Some(handle)) => {
            super::lifecycle::setup(&shared, handle).await?;
        }
        (None, None) => {}
    }
    let start = opts.start_at.unwrap_or_else(Instant::now);
    let mut teardown: Option<tokio::task::JoinHandle<()>> = None;

    let run_stop = stop.child_token();
    // Without a fleet nobody reallocates: a closed channel never changes.
    let realloc = opts
        .realloc
        .clone()
        .unwrap_or_else(|| watch::channel(None).1);
    let mut scenarios = JoinSet::new();
    let mut vu_offset = 0;
    for (i, scenario) in plan.scenarios.iter().enumerate() {
        let Some(sink) = sink.clone() else { break };
        scenarios.spawn(run_scenario(ScenarioCtx {
            shared: shared.clone(),
            scenario: i,
            start: start + scenario.start_time,
            tuple: opts.tuple.clone(),
            vu_offset,
            sink,
            gauges: gauges.clone(),
            stop: run_stop.clone(),
            realloc: realloc.clone(),
        }));
        vu_offset += scenario.executor.max_vus();
    }
    // No load outlives the plan: a hard deadline past every graceful stop.
    let hard_end = start + plan.max_duration() + Duration::from_secs(5);
    let deadline = run_stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = deadline.cancelled() => {}
            _ = sleep_until(hard_end) => deadline.cancel(),
        }
    });

    // Is the generator itself the bottleneck? A probe that asks to wake
    // every few ms measures how long ready work waits for a thread; the
    // recorder loop below reads the CPU time each interval.
    let lags = Arc::new(LagCounts::default());
    let probe_stop = run_stop.clone();
    let probe_lags = Arc::clone(&lags);
    tokio::spawn(async move {
        let mut next = start.max(Instant::now()) + PROBE_EVERY;
        loop {
            tokio::select! {
                _ = probe_stop.cancelled() => break,
                _ = sleep_until(next) => {
                    let now = Instant::now();
                    probe_lags.record(now.saturating_duration_since(next));
                    next = now + PROBE_EVERY;
                }
            }
        }
    });
    let cpus = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let mut meter = LoadMeter::new(cpus);
    let mut cpu_at = (Instant::now(), crate::os::process_cpu_time());

    let started_unix_ms = unix_ms_at(start);
    let mut recorder = Recorder::new(
        &plan,
        RecorderOptions {
            max_series: opts.max_series,
            extra_tags: opts.extra_tags.clone(),
        },
    );
    let mut points = observer.wants_points().then(|| {
        recorder.capture_points();
        PointTap { keys_sent: 0 }
    });
    let mut total = Aggregate::default();
    let mut outcomes: Vec<ThresholdOutcome> = Vec::new();
    let mut end = EndReason::Completed;
    let mut ticker = interval_at(start + opts.interval, opts.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The VU gauges, sampled at 95 % of each interval while the scenarios
    // run.
    let mut gauge_ticker = interval_at(start + opts.interval * 19 / 20, opts.interval);
    gauge_ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let load_end = start + plan.nominal_duration();
    let mut ticks = 0u64;
    let mut interval_start = start;
    let mut scenarios_done = false;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(batch) => {
                    recorder.record_all(&batch);
                    if let Some(tap) = &mut points {
                        tap.send(&mut recorder, observer);
                    }
                }
                None => break,
            },
            _ = gauge_ticker.tick(), if !run_stop.is_cancelled() => {
                if Instant::now() < load_end {
                    let (active, max) = gauges.read();
                    recorder.record(&Sample::Vus { active, max });
                    if let Some(tap) = &mut points {
                        tap.send(&mut recorder, observer);
                    }
                }
            }
            _ = ticker.tick() => {
                ticks += 1;
                let now = Instant::now();
                let judge_now = ticks.is_multiple_of(THRESHOLD_EVERY) && !plan.thresholds.is_empty();
                let elapsed = now.saturating_duration_since(start);
                let snapshot = close_interval(&mut recorder, &mut total, interval_start, now);
                let (vus, vus_max) = gauges.read();
                interval_start = now;
                epoch.fetch_add(1, Ordering::Relaxed);
                if judge_now {
                    outcomes = judge::evaluate(&plan.thresholds, &total, elapsed);
                    // Marked, not just tested: the final verdict keeps the
                    // outcome that stopped the run (see below).
                    if judge::mark_aborts(&plan.thresholds, &mut outcomes, elapsed) && end == EndReason::Completed {
                        end = EndReason::ThresholdAbort;
                        run_stop.cancel();
                    }
                }
                if now < load_end && !scenarios_done {
                    let cpu_now = crate::os::process_cpu_time();
                    if let (Some(before), Some(after)) = (cpu_at.1, cpu_now) {
                        meter.interval(now.saturating_duration_since(cpu_at.0), after.saturating_sub(before));
                    }
                    cpu_at = (now, cpu_now);
                }
                let scenario_vus = gauges.read_scenarios();
                observer.on_interval(&IntervalReport {
                    snapshot: &snapshot,
                    total: &total,
                    elapsed,
                    vus,
                    vus_max,
                    scenario_vus: &scenario_vus,
                    thresholds: judge_now.then_some(outcomes.as_slice()),
                });
            }
            _ = scenarios.join_next(), if !scenarios_done => {
                if scenarios.is_empty() {
                    scenarios_done = true;
                    // teardown() runs once every scenario ended; its
                    // samples still reach the recorder (it holds a sink).
                    if let Some(script) = &opts.script {
                        script.release_unused();
                    }
                    if let (Some(script), Some(handle)) = (&opts.script, &sink) {
                        teardown = Some(tokio::spawn(crate::script::lifecycle::teardown(
                            Arc::clone(script),
                            Arc::clone(&shared.http),
                            handle.clone(),
                        )));
                    }
                    let plan_teardown = opts.script.is_none()
                        && opts.setup_values.is_none()
                        && !shared.program.teardown.is_empty();
                    if let (true, Some(handle)) = (plan_teardown, &sink) {
                        let (shared, handle) = (Arc::clone(&shared), handle.clone());
                        teardown = Some(tokio::spawn(async move {
                            super::lifecycle::teardown(&shared, handle).await;
                        }));
                    }
                    sink = None;
                }
            }
        }
        if stop.is_cancelled() && end == EndReason::Completed {
            end = EndReason::Stopped;
        }
    }
    drop(sink);
    if let Some(t) = teardown {
        // Its sink is gone (the channel closed), so it has ended.
        let _ = t.await;
    }
    let now = Instant::now();
    let elapsed = now.saturating_duration_since(start);
    // The last (partial) interval samples no VU gauge: by now every VU
    // has stopped, and the totals keep the last sample, as k6 reports it.
    let snapshot = close_interval(&mut recorder, &mut total, interval_start, now);
    let (vus, vus_max) = gauges.read();
    let scenario_vus = gauges.read_scenarios();
    observer.on_interval(&IntervalReport {
        snapshot: &snapshot,
        total: &total,
        elapsed,
        vus,
        vus_max,
        scenario_vus: &scenario_vus,
        thresholds: None,
    });
    let mut outcomes_final = judge::evaluate(&plan.thresholds, &total, elapsed);
    if end == EndReason::ThresholdAbort {
        // Keep the verdict that stopped the run visible even if later
        // samples would have moved the value back.
        for (f, o) in outcomes_final.iter_mut().zip(&outcomes) {
            if !o.ok && o.aborted {
                *f = o.clone();
            }
        }
    }
    run_stop.cancel();
    let mut summary = Summary::build(&total, &plan, elapsed, outcomes_final.clone());
    let saturation = meter.verdict(&lags);
    if let Some(s) = &saturation {
        summary.notes.push(s.to_string());
    }
    Ok(RunResult {
        total,
        elapsed,
        outcomes: outcomes_final,
        end,
        summary,
        started_unix_ms,
        saturation,
    })
}

/// Hands the recorder's new points to the observer, with the keys of the
/// series it has not seen yet.
struct PointTap {
    keys_sent: usize,
}

impl PointTap {
    fn send(&mut self, recorder: &mut Recorder, observer: &mut dyn Observer) {
        let points = recorder.take_points();
        if points.is_empty() {
            return;
        }
        let new_keys = recorder.keys_from(self.keys_sent);
        self.keys_sent += new_keys.len();
        let time_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        observer.on_points(&PointBatch {
            time_unix_ns,
            new_keys,
            points: &points,
        });
    }
}

/// Takes the interval's snapshot and folds it into the total.
fn close_interval(
    recorder: &mut Recorder,
    total: &mut Aggregate,
    from: Instant,
    to: Instant,
) -> Snapshot {
    let snapshot = recorder.take_interval(unix_ms_at(from), to.saturating_duration_since(from));
    if let Err(e) = total.add_interval(&snapshot) {
        // The recorder only produces well-formed snapshots; this would be a bug.
        tracing::error!("interval not added to the totals: {e}");
    }
    snapshot
}

/// Wall-clock time of a monotonic instant, in ms since the Unix epoch.
fn unix_ms_at(at: Instant) -> u64 {
    let now_sys = SystemTime::now();
    let now = Instant::now();
    let sys = if at <= now {
        now_sys.checked_sub(now - at)
    } else {
        now_sys.checked_add(at - now)
    };
    sys.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
