//! The engine on paused time, with flows that only sleep (no I/O): the VU
//! gauges of every executor as k6 reports them, and iteration durations
//! that are never shorter than what the iteration slept.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::metrics::{Metric, Value};
use crate::plan::{Format, FsFiles, LoadOptions};

fn plan(yaml: &str) -> Plan {
    match crate::plan::parse(yaml, Format::Yaml, &LoadOptions::default(), &FsFiles) {
        Ok(p) => p,
        Err(e) => panic!("test plan does not parse: {e}\n---\n{yaml}"),
    }
}

/// Every interval snapshot's VU gauge samples, and what each report said.
#[derive(Default)]
struct Gauges {
    vus: Vec<f64>,
    vus_max: Vec<f64>,
    reports: Vec<(u64, u64)>,
    /// Each report's VUs per scenario.
    scenarios: Vec<Vec<u64>>,
}

impl Observer for Gauges {
    fn on_interval(&mut self, report: &IntervalReport<'_>) {
        for (key, value) in &report.snapshot.series {
            match (key.metric, value) {
                (Metric::Vus, Value::Gauge { value, .. }) => self.vus.push(*value),
                (Metric::VusMax, Value::Gauge { value, .. }) => self.vus_max.push(*value),
                _ => {}
            }
        }
        self.reports.push((report.vus, report.vus_max));
        self.scenarios.push(report.scenario_vus.to_vec());
    }
}

async fn run_paused(yaml: &str) -> (RunResult, Gauges) {
    let mut gauges = Gauges::default();
    let result = run(
        Arc::new(plan(yaml)),
        RunOptions::default(),
        CancellationToken::new(),
        &mut gauges,
    )
    .await
    .expect("the plan runs");
    (result, gauges)
}

/// `(value, min, max)` of a gauge over the run.
fn gauge(r: &RunResult, metric: Metric) -> (f64, f64, f64) {
    match r.total.metric_value(metric, &[]) {
        Some(Value::Gauge { value, min, max }) => (value, min, max),
        other => panic!("{} is not a sampled gauge: {other:?}", metric.name()),
    }
}

#[tokio::test(start_paused = true)]
async fn constant_vus_end_on_all_their_vus() {
    // Iterations end exactly on the scenario's end (3 s): the last sample
    // (at 2.95 s) must not catch the VUs stopping.
    let (r, g) = run_paused(
        "scenarios: {main: {executor: constant-vus, vus: 200, duration: 3s}}\nflow: [{sleep: 100ms}]",
    )
    .await;
    assert_eq!(gauge(&r, Metric::Vus), (200.0, 200.0, 200.0), "{:?}", g.vus);
    assert_eq!(gauge(&r, Metric::VusMax), (200.0, 200.0, 200.0));
    assert_eq!(
        g.vus,
        vec![200.0; 3],
        "one sample per interval, none after 3 s"
    );
    // The last report: every VU has stopped, all are still initialised.
    assert_eq!(g.reports.last(), Some(&(0, 200)));
}

#[tokio::test(start_paused = true)]
async fn ramping_vus_count_their_largest_stage_from_the_start() {
    let (r, _) = run_paused(
        "scenarios: {main: {executor: ramping-vus, startVUs: 0, gracefulRampDown: 0s, \
         stages: [{duration: 2s, target: 10}, {duration: 1s, target: 10}]}}\nflow: [{sleep: 100ms}]",
    )
    .await;
    // Samples at 0.95 s (4 VUs: one every 200 ms from 0.2 s), 1.95 s (9)
    // and 2.95 s (10).
    assert_eq!(gauge(&r, Metric::Vus), (10.0, 4.0, 10.0));
    assert_eq!(gauge(&r, Metric::VusMax), (10.0, 10.0, 10.0));
}

#[tokio::test(start_paused = true)]
async fn iteration_executors_count_their_vus_until_the_work_is_done() {
    for executor in [
        "{executor: per-vu-iterations, vus: 4, iterations: 3}",
        "{executor: shared-iterations, vus: 4, iterations: 12}",
    ] {
        let (r, g) = run_paused(&format!(
            "scenarios: {{main: {executor}}}\nflow: [{{sleep: 1s}}]"
        ))
        .await;
        assert_eq!(
            gauge(&r, Metric::Vus),
            (4.0, 4.0, 4.0),
            "{executor}: {:?}",
            g.vus
        );
        assert_eq!(gauge(&r, Metric::VusMax), (4.0, 4.0, 4.0), "{executor}");
        assert_eq!(r.elapsed, Duration::from_secs(3), "{executor}");
    }
}

#[tokio::test(start_paused = true)]
async fn arrival_rate_counts_pre_allocated_vus_from_the_start() {
    // Both scenarios' pre-allocated VUs are planned from the start and stay
    // counted after the scenarios end. (A `startTime` would make the
    // scenario's precise start spin on the paused clock; the planning of
    // scenarios that start later is tested in `planned`.)
    let (r, _) = run_paused(
        "scenarios:\n  \
           warm: {executor: constant-arrival-rate, rate: 10, timeUnit: 1s, duration: 2s, preAllocatedVUs: 50}\n  \
           main: {executor: constant-arrival-rate, rate: 20, timeUnit: 1s, duration: 2s, preAllocatedVUs: 200}\n\
         flow: [{sleep: 10ms}]",
    )
    .await;
    assert_eq!(gauge(&r, Metric::VusMax), (250.0, 250.0, 250.0));
    // `vus` counts VUs running an iteration: 10 ms of every 100 ms and of
    // every 50 ms, so at most two at each sample.
    let (_, _, busy) = gauge(&r, Metric::Vus);
    assert!(busy <= 2.0, "{busy}");
}

#[tokio::test(start_paused = true)]
async fn arrival_rate_adds_vus_past_the_pre_allocated_ones() {
    // From 2 to 10 iterations a second, each 1 s long: about 3, then 6,
    // then 9 run at once; one VU is pre-allocated.
    let (r, g) = run_paused(
        "scenarios: {main: {executor: ramping-arrival-rate, startRate: 2, timeUnit: 1s, \
         preAllocatedVUs: 1, maxVUs: 20, stages: [{duration: 3s, target: 10}]}}\nflow: [{sleep: 1s}]",
    )
    .await;
    assert_eq!(r.total.metric_value(Metric::DroppedIterations, &[]), None);
    assert_eq!(g.vus_max.len(), 3, "{:?}", g.vus_max);
    assert!(
        g.vus_max[0] > 1.0,
        "VUs were added by 0.95 s: {:?}",
        g.vus_max
    );
    assert!(
        g.vus_max.windows(2).all(|w| w[0] < w[1]),
        "more were added as the rate grew, none removed: {:?}",
        g.vus_max
    );
    // Every VU added was needed at once: `vus` reaches it.
    assert_eq!(g.vus.iter().copied().fold(0.0, f64::max), g.vus_max[2]);
    for (vus, max) in g.vus.iter().zip(&g.vus_max) {
        assert!(vus <= max, "{:?} {:?}", g.vus, g.vus_max);
    }
}

#[tokio::test(start_paused = true)]
async fn graceful_stops_and_teardown_are_not_sampled() {
    // 2 s of 2 VUs whose last iterations run 1.5 s past the end (in the
    // graceful stop): samples at 0.95 s and 1.95 s only.
    let (r, g) = run_paused(
        "scenarios: {main: {executor: constant-vus, vus: 2, duration: 2s, gracefulStop: 5s}}\n\
         flow: [{sleep: 1500ms}]",
    )
    .await;
    assert!(r.elapsed >= Duration::from_secs(3), "{:?}", r.elapsed);
    assert_eq!(g.vus, vec![2.0, 2.0]);
    assert_eq!(gauge(&r, Metric::Vus), (2.0, 2.0, 2.0));
}

#[tokio::test(start_paused = true)]
async fn a_one_second_sleep_records_at_least_one_second() {
    let (r, _) = run_paused(
        "scenarios: {main: {executor: shared-iterations, vus: 2, iterations: 4}}\nflow: [{sleep: 1s}]",
    )
    .await;
    let t = r
        .total
        .metric_value(Metric::IterationDuration, &[])
        .expect("iterations ran");
    let t = t.as_trend().expect("a trend");
    assert_eq!(t.count(), 4);
    // The bucket holding 1 s starts at 999.936 ms; the minimum is exact.
    assert_eq!(t.min_ms(), 1000.0);
    assert!(t.percentile_ms(50.0) >= 1000.0);
    // And so does the summary.
    let min = r
        .summary
        .metrics
        .iter()
        .find(|m| m.name == "iteration_duration")
        .and_then(|m| match &m.values {
            crate::metrics::MetricValues::Trend { stats, .. } => {
                stats.iter().find(|(l, _)| l == "min").map(|(_, v)| *v)
            }
            _ => None,
        });
    assert_eq!(min, Some(1000.0));
}

#[tokio::test(start_paused = true)]
async fn each_scenario_reports_its_own_vus() {
    // Both start at once (a `startTime` would spin on the paused clock, see
    // above); `b` ends at 2 s, `a` at 3.5 s.
    let (_, g) = run_paused(
        "scenarios:\n  a: {executor: constant-vus, vus: 3, duration: 3500ms}\n  \
         b: {executor: constant-vus, vus: 5, duration: 2s}\nflow: [{sleep: 100ms}]",
    )
    .await;
    // Reports at 1, 2, 3 and 4 s, then the last one at the end.
    assert_eq!(g.scenarios[0], vec![3, 5], "{:?}", g.scenarios);
    assert_eq!(g.scenarios[2], vec![3, 0], "{:?}", g.scenarios);
    assert_eq!(g.scenarios.last(), Some(&vec![0, 0]), "{:?}", g.scenarios);
    for (report, each) in g.reports.iter().zip(&g.scenarios) {
        assert_eq!(report.0, each.iter().sum::<u64>(), "{:?}", g.scenarios);
    }
}

#[tokio::test(start_paused = true)]
async fn a_light_run_is_not_called_saturated() {
    // Paused time: the lag probe wakes exactly when asked, and the little
    // CPU the run takes is far below a CPU per second.
    let (r, _) = run_paused(
        "scenarios: {main: {executor: constant-vus, vus: 5, duration: 3s}}\nflow: [{sleep: 200ms}]",
    )
    .await;
    assert_eq!(r.saturation, None);
    assert!(
        !r.summary.notes.iter().any(|n| n.contains("saturated")),
        "{:?}",
        r.summary.notes
    );
}
