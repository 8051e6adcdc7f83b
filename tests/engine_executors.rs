//! The executors against the built-in target: exact iteration counts of the
//! iteration-based executors (in the summary and at the target), ramps that
//! reach their targets along the schedule, and the graceful stop.

mod common;

use std::time::Duration;

use common::{
    IntervalTrace, base, counter, gauge, plan, run_with, run_yaml, start_target, summary_count,
};
use volley::engine::{EndReason, RunOptions};
use volley::metrics::Metric;
use volley::segment::Schedule;
use volley::target::Route;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_vu_iterations_runs_vus_times_iterations() {
    let target = start_target().await;
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 4
    iterations: 5
    maxDuration: 10s
flow:
  - get: "{base}/"
  - get: "{base}/json"
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(
        counter(&r, Metric::Iterations),
        20.0,
        "4 VUs × 5 iterations"
    );
    assert_eq!(summary_count(&r, "iterations"), 20.0);
    assert_eq!(
        counter(&r, Metric::HttpReqs),
        40.0,
        "two requests per iteration"
    );
    assert_eq!(target.stats.route(Route::Root), 20);
    assert_eq!(target.stats.route(Route::Json), 20);
    assert_eq!(
        common::trend_count(&r, Metric::IterationDuration),
        20,
        "one iteration_duration sample per completed iteration"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_iterations_runs_exactly_the_iterations() {
    let target = start_target().await;
    // 3 VUs share 10 iterations: a per-VU split would run 9 or 12.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: shared-iterations
    vus: 3
    iterations: 10
    maxDuration: 10s
flow:
  - get: "{}/delay/5"
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::Iterations), 10.0);
    assert_eq!(summary_count(&r, "iterations"), 10.0);
    assert_eq!(summary_count(&r, "http_reqs"), 10.0);
    assert_eq!(target.stats.route(Route::Delay), 10);
    assert_eq!(target.stats.requests(), 10);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_vus_follows_its_stages_to_the_target() {
    let target = start_target().await;
    // 0 → 10 VUs over 2 s (one more every 200 ms), then hold 10 for 1 s.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: ramping-vus
    startVUs: 0
    stages:
      - {{duration: 2s, target: 10}}
      - {{duration: 1s, target: 10}}
    gracefulRampDown: 0s
    gracefulStop: 1s
flow:
  - get: "{}/"
  - sleep: 50ms
"#,
        base(&target)
    );
    let mut trace = IntervalTrace::default();
    let opts = RunOptions {
        interval: Duration::from_millis(100),
        ..RunOptions::default()
    };
    let r = run_with(plan(&yaml), opts, &mut trace).await;
    assert_eq!(r.end, EndReason::Completed);

    let (_, _, vus_peak) = gauge(&r, Metric::Vus);
    let (_, _, vus_max_peak) = gauge(&r, Metric::VusMax);
    assert_eq!(
        vus_peak, 10.0,
        "the vus gauge reaches the last stage's target"
    );
    assert_eq!(
        vus_max_peak, 10.0,
        "no more VUs than the target were allocated"
    );

    let during_ramp: Vec<_> = trace
        .points
        .iter()
        .filter(|p| p.elapsed < Duration::from_millis(2_000))
        .collect();
    assert!(
        during_ramp.len() >= 10,
        "expected a report every 100 ms during the ramp, got {:?}",
        trace.points
    );
    let series: Vec<u64> = during_ramp.iter().map(|p| p.vus).collect();
    println!("ramping-vus: vus per 100 ms interval during the ramp: {series:?}");
    for pair in series.windows(2) {
        assert!(
            pair[0] <= pair[1],
            "vus went down during the ramp: {series:?}"
        );
    }
    // Each report is close to the schedule (one VU per 200 ms): never ahead
    // of it by more than one step, never far behind.
    for p in &during_ramp {
        let due = (p.elapsed.as_millis() / 200) as u64;
        assert!(
            p.vus <= due + 1 && p.vus + 3 >= due,
            "at {:?} the schedule says {due} VUs, the run had {}",
            p.elapsed,
            p.vus
        );
    }
    // While holding, every report shows the full 10.
    let holding: Vec<u64> = trace
        .points
        .iter()
        .filter(|p| {
            p.elapsed >= Duration::from_millis(2_150) && p.elapsed < Duration::from_millis(2_900)
        })
        .map(|p| p.vus)
        .collect();
    assert!(
        !holding.is_empty(),
        "no report while holding: {:?}",
        trace.points
    );
    assert!(holding.iter().all(|v| *v == 10), "holding: {holding:?}");
    assert_eq!(
        target.stats.route(Route::Root) as f64,
        counter(&r, Metric::HttpReqs)
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_arrival_rate_starts_the_integral_of_its_rate() {
    let target = start_target().await;
    // 0 → 100 iterations/s over 2 s: the area under the ramp is 100.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: ramping-arrival-rate
    startRate: 0
    timeUnit: 1s
    preAllocatedVUs: 10
    maxVUs: 50
    stages:
      - {{duration: 2s, target: 100}}
flow:
  - get: "{}/"
"#,
        base(&target)
    );
    let plan = plan(&yaml);
    let schedule = Schedule::from_executor(&plan.scenarios[0].executor)
        .expect("an arrival-rate executor has a schedule");
    let expected = schedule.total_iterations();
    assert_eq!(expected, 100, "the schedule's integral");

    let mut trace = IntervalTrace::default();
    let opts = RunOptions {
        interval: Duration::from_millis(500),
        ..RunOptions::default()
    };
    let r = run_with(plan, opts, &mut trace).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::Iterations), expected as f64);
    assert_eq!(counter(&r, Metric::HttpReqs), expected as f64);
    assert_eq!(counter(&r, Metric::DroppedIterations), 0.0);
    assert_eq!(target.stats.route(Route::Root), expected);

    // Each interval holds what the schedule started in it: the rate is 50·t
    // per second, so [t0, t1) starts 25·(t1² − t0²) iterations (about 6, 19,
    // 31 and 44 per half second). Samples reach the interval they happened
    // in, even from VUs that then sit idle.
    let mut from = 0.0f64;
    let mut seen = Vec::new();
    for p in trace
        .points
        .iter()
        .filter(|p| p.elapsed <= Duration::from_millis(2_050))
    {
        let to = p.elapsed.as_secs_f64().min(2.0);
        let due = 25.0 * (to * to - from * from);
        seen.push((p.iterations, (due * 10.0).round() / 10.0));
        assert!(
            (p.iterations - due).abs() <= 4.0,
            "interval ending at {:?}: {} iterations, the schedule says {due:.1}",
            p.elapsed,
            p.iterations
        );
        from = to;
    }
    println!("ramping-arrival-rate: (iterations, scheduled) per 500 ms interval: {seen:?}");
    assert!(seen.len() >= 4, "{:?}", trace.points);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_interrupts_iterations_that_outlive_it() {
    let target = start_target().await;
    // Every iteration takes 1.5 s; the scenario lasts 1 s plus 200 ms of
    // graceful stop, so both VUs' first iterations are cut at 1.2 s.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: constant-vus
    vus: 2
    duration: 1s
    gracefulStop: 200ms
flow:
  - get: "{}/delay/1500"
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;
    println!("graceful stop: run ended after {:?}", r.elapsed);
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(
        target.stats.route(Route::Delay),
        2,
        "each VU started one iteration"
    );
    assert_eq!(
        counter(&r, Metric::Iterations),
        0.0,
        "interrupted iterations are not counted"
    );
    assert_eq!(common::trend_count(&r, Metric::IterationDuration), 0);
    assert_eq!(counter(&r, Metric::HttpReqs), 0.0, "no request completed");
    assert!(
        r.elapsed >= Duration::from_millis(1_150) && r.elapsed < Duration::from_millis(1_450),
        "the run should end at duration + gracefulStop (1.2 s), not when the requests \
         would have (1.5 s): it took {:?}",
        r.elapsed
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_lets_iterations_finish_within_it() {
    let target = start_target().await;
    // Iterations of 300 ms; the last ones start before 1 s and end before
    // 1 s + 500 ms of graceful stop, so none is interrupted.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: constant-vus
    vus: 2
    duration: 1s
    gracefulStop: 500ms
flow:
  - get: "{}/delay/300"
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;
    let started = target.stats.route(Route::Delay);
    println!(
        "graceful stop (finishing): {started} iterations started, run ended after {:?}",
        r.elapsed
    );
    assert!(started >= 4, "two VUs for 1 s at 300 ms each: {started}");
    assert_eq!(
        counter(&r, Metric::Iterations),
        started as f64,
        "every started iteration finished within the graceful stop"
    );
    assert!(
        r.elapsed > Duration::from_millis(1_000) && r.elapsed < Duration::from_millis(1_500),
        "the run waits for the last iterations, no longer: {:?}",
        r.elapsed
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_run_side_by_side_with_distinct_vus() {
    let target = start_target().await;
    // Two scenarios at once; `${vu}` numbers VUs across both (a: 1-2,
    // b: 3-5), and each VU asks for /status/2<vu>0 so the status tag shows
    // which VUs each scenario ran.
    let yaml = format!(
        r#"
scenarios:
  a:
    executor: per-vu-iterations
    vus: 2
    iterations: 3
  b:
    executor: shared-iterations
    startTime: 100ms
    vus: 3
    iterations: 7
flow:
  - get:
      url: "{}/status/2${{vu}}0"
      name: by-vu
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;
    let in_scenario = |scenario: &str, metric: Metric| {
        common::counter_where(&r, metric, &[("scenario", scenario)])
    };
    assert_eq!(in_scenario("a", Metric::Iterations), 6.0);
    assert_eq!(in_scenario("b", Metric::Iterations), 7.0);
    assert_eq!(counter(&r, Metric::Iterations), 13.0);
    assert_eq!(target.stats.route(Route::Status), 13);
    let by_status = |scenario: &str, status: &str| {
        common::counter_where(
            &r,
            Metric::HttpReqs,
            &[("scenario", scenario), ("status", status)],
        )
    };
    assert_eq!(by_status("a", "210") + by_status("a", "220"), 6.0);
    assert_eq!(by_status("a", "210"), 3.0, "per-vu-iterations: 3 each");
    let b: f64 = ["230", "240", "250"]
        .iter()
        .map(|s| by_status("b", s))
        .sum();
    assert_eq!(b, 7.0, "scenario b ran VUs 3 to 5 only");
    target.shutdown().await;
}
