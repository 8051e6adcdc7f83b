//! Arrival schedules: the k6 reference's rate examples (§3.4), exact
//! constant and ramping start times, zero-rate and zero-duration edges,
//! rates for display, and validation.

use std::time::Duration;

use super::{tuple, tuples};
use crate::plan::{Executor, Stage};
use crate::segment::{Arrivals, ExecutionTuple, Schedule, SegmentError, SegmentSequence};

const SECOND: Duration = Duration::from_secs(1);

fn constant(rate: u64, time_unit: Duration, duration: Duration) -> Schedule {
    Schedule::Constant {
        rate,
        time_unit,
        duration,
    }
}

fn stage(millis: u64, target: u64) -> Stage {
    Stage {
        duration: Duration::from_millis(millis),
        target,
    }
}

fn ramping(start_rate: u64, stages: Vec<Stage>) -> Schedule {
    Schedule::Ramping {
        start_rate,
        time_unit: SECOND,
        stages,
    }
}

fn arrivals(schedule: &Schedule, tuple: &ExecutionTuple) -> Vec<(u64, Duration)> {
    Arrivals::new(schedule.clone(), tuple)
        .expect("invariant: test schedules are valid")
        .collect()
}

fn single_node(schedule: &Schedule) -> Vec<(u64, Duration)> {
    arrivals(schedule, &ExecutionTuple::full())
}

fn millis(pairs: &[(u64, Duration)], n: usize) -> Vec<u128> {
    pairs.iter().take(n).map(|(_, at)| at.as_millis()).collect()
}

/// k6 re-segments arrival-rate tuples by maxVUs before striping.
fn by_max_vus(all: &[ExecutionTuple], max_vus: u64) -> Vec<ExecutionTuple> {
    all.iter()
        .filter_map(|t| t.resegment(max_vus).expect("invariant: small maxVUs"))
        .collect()
}

#[test]
fn hundred_per_second_over_three_equal_shares() {
    let schedule = constant(100, SECOND, SECOND);
    let shares: Vec<Vec<(u64, Duration)>> = by_max_vus(&tuples("0,1/3,2/3,1"), 100)
        .iter()
        .map(|t| arrivals(&schedule, t))
        .collect();
    let counts: Vec<usize> = shares.iter().map(Vec::len).collect();
    assert_eq!(counts, [34, 33, 33]);
    assert_eq!(millis(&shares[0], 3), [0, 30, 60]);
    assert_eq!(millis(&shares[1], 3), [10, 40, 70]);
    assert_eq!(millis(&shares[2], 3), [20, 50, 80]);
}

#[test]
fn hundred_per_second_split_fifty_thirty_twenty() {
    let schedule = constant(100, SECOND, SECOND);
    let shares: Vec<Vec<(u64, Duration)>> = by_max_vus(&tuples("0,1/2,4/5,1"), 100)
        .iter()
        .map(|t| arrivals(&schedule, t))
        .collect();
    let counts: Vec<usize> = shares.iter().map(Vec::len).collect();
    assert_eq!(counts, [50, 30, 20]);
    assert_eq!(millis(&shares[1], 5), [10, 50, 70, 110, 150]);
}

#[test]
fn small_max_vus_skews_the_rate_split_as_in_k6() {
    let schedule = constant(300, SECOND, SECOND);
    let all = tuples("0,1/3,2/3,1");
    let skewed: Vec<usize> = by_max_vus(&all, 5)
        .iter()
        .map(|t| arrivals(&schedule, t).len())
        .collect();
    assert_eq!(skewed, [120, 120, 60]);
    // Striping by the original tuple instead splits the rate evenly.
    let even: Vec<usize> = all.iter().map(|t| arrivals(&schedule, t).len()).collect();
    assert_eq!(even, [100, 100, 100]);
}

#[test]
fn capacity_weights_split_a_thousand_per_second() {
    let schedule = constant(1000, SECOND, SECOND);
    let sequence = SegmentSequence::from_weights(&[4, 2, 2, 1, 1]);
    let all = ExecutionTuple::all(sequence.expect("invariant: weights are positive"));
    let counts: Vec<usize> = all.iter().map(|t| arrivals(&schedule, t).len()).collect();
    assert_eq!(counts, [400, 200, 200, 100, 100]);
    let shares: Vec<u64> = all
        .iter()
        .map(|t| Arrivals::new(schedule.clone(), t).map_or(0, |a| a.share()))
        .collect();
    assert_eq!(shares, [400, 200, 200, 100, 100]);
}

#[test]
fn constant_start_times_are_exact_without_drift() {
    // 3/s: a period of 333_333_333.3 ns. Truncating the period first (as
    // k6 does) would put iteration 300_000 0.1 ms early.
    let schedule = constant(3, SECOND, Duration::from_secs(100_001));
    let mut all =
        Arrivals::new(schedule, &ExecutionTuple::full()).expect("invariant: valid schedule");
    assert_eq!(all.total_iterations(), 300_003);
    let first: Vec<u128> = (&mut all).take(4).map(|(_, at)| at.as_nanos()).collect();
    assert_eq!(first, [0, 333_333_333, 666_666_666, 1_000_000_000]);
    let (g, at) = all.nth(300_000 - 4).expect("invariant: within the total");
    assert_eq!((g, at), (300_000, Duration::from_secs(100_000)));
}

#[test]
fn constant_schedule_counts_starts_before_the_end() {
    let count = |rate, unit, duration| constant(rate, unit, duration).total_iterations();
    assert_eq!(count(3, SECOND, SECOND), 3);
    assert_eq!(count(3, SECOND, SECOND + Duration::from_nanos(1)), 4);
    assert_eq!(count(0, SECOND, SECOND), 0);
    assert_eq!(
        count(60, Duration::from_secs(60), Duration::from_secs(30)),
        30
    );
    assert_eq!(count(1, SECOND, Duration::ZERO), 0);
    let last = single_node(&constant(3, SECOND, SECOND)).pop();
    assert_eq!(last, Some((2, Duration::from_nanos(666_666_666))));
}

#[test]
fn ramping_up_from_zero_inverts_the_quadratic() {
    // 0 → 100/s over 10 s: I(t) = 5t², 500 iterations.
    let schedule = ramping(0, vec![stage(10_000, 100)]);
    assert_eq!(schedule.total_iterations(), 500);
    let all = single_node(&schedule);
    assert_eq!(all.len(), 500);
    let at = |g: usize| all[g].1.as_nanos();
    assert_eq!(at(0), 0);
    assert_eq!(at(1), 447_213_595); // √0.2 s
    assert_eq!(at(5), 1_000_000_000);
    assert_eq!(at(20), 2_000_000_000);
    assert_eq!(at(125), 5_000_000_000);
    assert_eq!(at(499), 9_989_994_994); // √99.8 s
}

#[test]
fn ramping_down_takes_the_earlier_root() {
    // 100 → 0/s over 10 s: I(t) = 100t − 5t², 500 iterations.
    let all = single_node(&ramping(100, vec![stage(10_000, 0)]));
    assert_eq!(all.len(), 500);
    let at = |g: usize| all[g].1.as_nanos();
    assert_eq!(at(0), 0);
    assert_eq!(at(1), 10_005_005);
    assert_eq!(at(250), 2_928_932_188); // 10 − √50 s
    assert_eq!(at(499), 9_552_786_404);
}

#[test]
fn ramping_across_stages_continues_the_integral() {
    // 50 → 150/s over 2 s (200 iterations), then 150 → 0/s over 1 s (75).
    let all = single_node(&ramping(50, vec![stage(2_000, 150), stage(1_000, 0)]));
    assert_eq!(all.len(), 275);
    let expected: [(usize, u128); 7] = [
        (0, 0),
        (1, 19_803_902),
        (100, 1_236_067_977),
        (199, 1_993_325_909),
        (200, 2_000_000_000),
        (201, 2_006_689_038),
        (274, 2_884_529_946),
    ];
    for (g, nanos) in expected {
        assert_eq!(all[g].1.as_nanos(), nanos, "iteration {g}");
    }
    assert!(
        all.windows(2).all(|w| w[0].1 <= w[1].1),
        "start times never go back"
    );
}

#[test]
fn zero_rate_stretches_start_nothing() {
    // Nothing before the rate turns positive at 5 s.
    let late = single_node(&ramping(0, vec![stage(5_000, 0), stage(1_000, 100)]));
    assert_eq!(late.len(), 50);
    assert_eq!(late[0], (0, Duration::from_secs(5)));
    assert!(single_node(&ramping(0, vec![stage(5_000, 0)])).is_empty());
    assert!(single_node(&ramping(7, vec![])).is_empty());
    // A pause in the middle: nothing between 1 s and 3 s.
    let paused = single_node(&ramping(
        10,
        vec![
            stage(1_000, 10),
            stage(0, 0),
            stage(2_000, 0),
            stage(0, 10),
            stage(1_000, 10),
        ],
    ));
    assert_eq!(paused.len(), 20);
    assert_eq!(paused[9].1, Duration::from_millis(900));
    assert_eq!(paused[10].1, Duration::from_secs(3));
}

#[test]
fn zero_duration_stages_jump_to_their_target() {
    let jumped = ramping(0, vec![stage(0, 100), stage(1_000, 100)]);
    assert_eq!(
        single_node(&jumped),
        single_node(&constant(100, SECOND, SECOND))
    );
}

#[test]
fn rates_for_display_are_per_second() {
    let per_minute = constant(60, Duration::from_secs(60), Duration::from_secs(10));
    assert_eq!(per_minute.rate_at(Duration::ZERO), 1.0);
    assert_eq!(per_minute.rate_at(Duration::from_secs(10)), 0.0);
    let ramp = ramping(0, vec![stage(10_000, 100), stage(0, 40), stage(1_000, 40)]);
    assert_eq!(ramp.rate_at(Duration::from_secs(5)), 50.0);
    assert_eq!(ramp.rate_at(Duration::from_millis(10_500)), 40.0);
    assert_eq!(ramp.rate_at(Duration::from_secs(11)), 0.0);
    assert_eq!(ramp.duration(), Duration::from_secs(11));
    let zero_unit = constant(10, Duration::ZERO, SECOND);
    assert_eq!(zero_unit.rate_at(Duration::ZERO), 0.0);
    assert_eq!(zero_unit.total_iterations(), 0);
}

#[test]
fn invalid_schedules_are_refused() {
    let full = ExecutionTuple::full();
    let zero_unit = constant(10, Duration::ZERO, SECOND);
    assert_eq!(zero_unit.validate(), Err(SegmentError::ZeroTimeUnit));
    assert!(matches!(
        Arrivals::new(zero_unit, &full),
        Err(SegmentError::ZeroTimeUnit)
    ));
    let forever = constant(1, SECOND, Duration::MAX);
    assert!(matches!(
        forever.validate(),
        Err(SegmentError::ScheduleTooLong { .. })
    ));
    let flood = constant(u64::MAX, Duration::from_nanos(1), Duration::from_secs(3600));
    assert_eq!(flood.validate(), Err(SegmentError::ScheduleTooLarge));
    assert_eq!(flood.total_iterations(), u64::MAX);
    let message = SegmentError::ScheduleTooLarge.to_string();
    assert!(message.contains("lower the rate"), "{message}");
}

#[test]
fn schedules_come_from_arrival_rate_executors_only() {
    let executor = Executor::RampingArrivalRate {
        start_rate: 5,
        time_unit: SECOND,
        stages: vec![stage(1_000, 10)],
        pre_allocated_vus: 1,
        max_vus: 2,
    };
    assert_eq!(
        Schedule::from_executor(&executor),
        Some(ramping(5, vec![stage(1_000, 10)]))
    );
    let executor = Executor::ConstantArrivalRate {
        rate: 3,
        time_unit: SECOND,
        duration: SECOND,
        pre_allocated_vus: 1,
        max_vus: 1,
    };
    assert_eq!(
        Schedule::from_executor(&executor),
        Some(constant(3, SECOND, SECOND))
    );
    let executor = Executor::ConstantVus {
        vus: 1,
        duration: SECOND,
    };
    assert_eq!(Schedule::from_executor(&executor), None);
}

#[test]
fn a_share_fires_only_its_stripes() {
    let schedule = constant(10, SECOND, SECOND);
    let middle = tuple("0,1/2,4/5,1", "1/2:4/5");
    let mine = Arrivals::new(schedule, &middle).expect("invariant: valid schedule");
    assert_eq!(
        (mine.total_iterations(), mine.share(), mine.size_hint()),
        (10, 3, (3, Some(3)))
    );
    let fired: Vec<(u64, u128)> = mine.map(|(g, at)| (g, at.as_millis())).collect();
    assert_eq!(fired, [(1, 100), (5, 500), (7, 700)]);
}
