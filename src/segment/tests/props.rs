//! Property tests: for random sequences (up to 8 segments, small
//! denominators) and values, the shares behave as the fleet needs, the
//! striping matches k6's own loop, and the shares' arrivals reproduce the
//! single-node schedule exactly.

use std::time::Duration;

use proptest::prelude::*;

use super::r;
use crate::plan::Stage;
use crate::segment::{Arrivals, ExecutionTuple, Rational, Schedule, SegmentSequence};

/// Sequences from cut points with denominators up to 12, or from weights.
fn sequences() -> impl Strategy<Value = SegmentSequence> {
    let point = (2u64..=12).prop_flat_map(|q| (1..q).prop_map(move |p| r(p, q)));
    let from_points = prop::collection::vec(point, 0..=7).prop_map(|mut points| {
        points.push(Rational::ZERO);
        points.sort();
        points.dedup();
        SegmentSequence::from_points(points).expect("invariant: sorted points in [0, 1)")
    });
    let from_weights = prop::collection::vec(1u64..=20, 1..=8).prop_map(|weights| {
        SegmentSequence::from_weights(&weights).expect("invariant: positive weights")
    });
    prop_oneof![from_points, from_weights]
}

/// k6's `NewExecutionSegmentSequenceWrapper`, written as directly as
/// possible: `(start, offsets)` per segment.
fn k6_striping(sequence: &SegmentSequence) -> Vec<(u64, Vec<u64>)> {
    let lcd = sequence.lcd();
    let numerators: Vec<u64> = sequence
        .segments()
        .map(|s| s.length().numer() * (lcd / s.length().denom()))
        .collect();
    let mut sorted: Vec<usize> = (0..numerators.len()).collect();
    sorted.sort_by(|&a, &b| numerators[b].cmp(&numerators[a]));
    let mut chosen = vec![0u64; sorted.len()];
    let mut picks: Vec<Vec<u64>> = vec![Vec::new(); sorted.len()];
    for i in 0..lcd {
        for (rank, &segment) in sorted.iter().enumerate() {
            let num = chosen[rank] * lcd;
            let den = numerators[segment];
            if i > num / den || (i == num / den && num.is_multiple_of(den)) {
                chosen[rank] += 1;
                picks[segment].push(i);
                break;
            }
        }
    }
    picks
        .into_iter()
        .map(|p| {
            let wrapped = p.iter().skip(1).copied().chain([p[0] + lcd]);
            let offsets = wrapped.zip(&p).map(|(next, cur)| next - cur).collect();
            (p[0], offsets)
        })
        .collect()
}

/// k6's `ScaleInt64`: walk my stripes below `value % L`.
fn k6_scale(start: u64, offsets: &[u64], lcd: u64, value: u64) -> u64 {
    let mut result = (value / lcd) * offsets.len() as u64;
    let (mut i, mut gi) = (start, 0);
    while i < value % lcd {
        result += 1;
        i += offsets[gi];
        gi += 1;
    }
    result
}

proptest! {
    #[test]
    fn striping_matches_k6(sequence in sequences(), value in 0u64..100_000) {
        let expected = k6_striping(&sequence);
        let lcd = sequence.lcd();
        for (tuple, (start, offsets)) in ExecutionTuple::all(sequence).iter().zip(&expected) {
            prop_assert_eq!(tuple.start(), *start);
            prop_assert_eq!(&tuple.offsets(), offsets);
            prop_assert_eq!(tuple.scale(value), k6_scale(*start, offsets, lcd, value));
        }
    }

    #[test]
    fn shares_sum_to_the_value(sequence in sequences(), value in any::<u64>()) {
        let all = ExecutionTuple::all(sequence);
        let sum: u128 = all.iter().map(|t| u128::from(t.scale(value))).sum();
        prop_assert_eq!(sum, u128::from(value));
    }

    #[test]
    fn shares_never_shrink_as_the_value_grows(
        sequence in sequences(),
        value in 0u64..1_000_000,
        more in 0u64..1_000,
    ) {
        for t in ExecutionTuple::all(sequence) {
            let (now, next, later) = (t.scale(value), t.scale(value + 1), t.scale(value + more));
            prop_assert!(now <= later);
            // One more unit goes to exactly its owner.
            prop_assert_eq!(next - now, u64::from(t.owns(value)));
        }
    }

    #[test]
    fn global_indices_partition_the_units(sequence in sequences(), value in 0u64..3_000) {
        let all = ExecutionTuple::all(sequence);
        let mut union = Vec::new();
        for t in &all {
            let mine: Vec<u64> = t.global_indices().take_while(|&g| g < value).collect();
            prop_assert_eq!(mine.len() as u64, t.scale(value));
            prop_assert!(mine.windows(2).all(|w| w[0] < w[1]));
            for (local, &global) in mine.iter().enumerate() {
                prop_assert_eq!(t.local_to_global(local as u64), global);
                prop_assert!(t.owns(global));
            }
            union.extend(mine);
        }
        union.sort_unstable();
        prop_assert_eq!(union, (0..value).collect::<Vec<_>>());
    }

    #[test]
    fn resegmenting_keeps_each_share_of_the_value(sequence in sequences(), value in 0u64..5_000) {
        let all = ExecutionTuple::all(sequence);
        let mut recut_sequence = None;
        let mut kept = 0;
        for t in &all {
            let recut = t.resegment(value);
            prop_assert!(recut.is_ok());
            match recut.ok().flatten() {
                None => prop_assert_eq!(t.scale(value), 0),
                Some(new) => {
                    prop_assert_eq!(new.scale(value), t.scale(value));
                    prop_assert_eq!(new.index(), kept);
                    kept += 1;
                    // Every share derives the same new sequence on its own.
                    let shared = recut_sequence.get_or_insert_with(|| new.sequence().clone());
                    prop_assert_eq!(&*shared, new.sequence());
                }
            }
        }
        prop_assert_eq!(recut_sequence.map_or(0, |s| s.segment_count()), kept);
    }
}

const UNITS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_millis(250),
    Duration::from_secs(60),
];

fn constant_schedules() -> impl Strategy<Value = Schedule> {
    (0u64..=300, 0usize..UNITS.len(), 0u64..=2_000).prop_map(|(rate, unit, millis)| {
        Schedule::Constant {
            rate,
            time_unit: UNITS[unit],
            duration: Duration::from_millis(millis),
        }
    })
}

fn ramping_schedules() -> impl Strategy<Value = Schedule> {
    let stage = (0u64..=1_000, 0u64..=300).prop_map(|(millis, target)| Stage {
        duration: Duration::from_millis(millis) + Duration::from_nanos(millis % 7),
        target,
    });
    (
        0u64..=300,
        0usize..UNITS.len(),
        prop::collection::vec(stage, 0..=4),
    )
        .prop_map(|(start_rate, unit, stages)| Schedule::Ramping {
            start_rate,
            time_unit: UNITS[unit],
            stages,
        })
}

fn collect(schedule: &Schedule, tuple: &ExecutionTuple) -> Vec<(u64, Duration)> {
    Arrivals::new(schedule.clone(), tuple)
        .expect("invariant: generated schedules are valid")
        .collect()
}

/// The shares' arrivals, merged, must be the single-node schedule itself.
fn assert_union_is_single_node(
    schedule: &Schedule,
    shares: &[ExecutionTuple],
) -> Result<(), TestCaseError> {
    let single = collect(schedule, &ExecutionTuple::full());
    prop_assert_eq!(single.len() as u64, schedule.total_iterations());
    let mut union = Vec::with_capacity(single.len());
    for t in shares {
        let mine = collect(schedule, t);
        prop_assert_eq!(mine.len() as u64, t.scale(schedule.total_iterations()));
        prop_assert!(mine.iter().all(|(g, _)| t.owns(*g)));
        union.extend(mine);
    }
    union.sort_unstable();
    prop_assert_eq!(union, single);
    Ok(())
}

/// `I(t)` in floating point, independently of the integer code.
fn integral(schedule: &Schedule, t: Duration) -> f64 {
    let (start_rate, unit, stages) = match schedule {
        Schedule::Ramping {
            start_rate,
            time_unit,
            stages,
        } => (*start_rate, *time_unit, stages.clone()),
        Schedule::Constant {
            rate,
            time_unit,
            duration,
        } => (
            *rate,
            *time_unit,
            vec![Stage {
                duration: *duration,
                target: *rate,
            }],
        ),
    };
    let (mut sum, mut from, mut start) = (0.0, start_rate as f64, 0.0);
    let t = t.as_nanos() as f64;
    for stage in stages {
        let (to, d) = (stage.target as f64, stage.duration.as_nanos() as f64);
        let tau = (t - start).clamp(0.0, d);
        if d > 0.0 {
            sum += from * tau + (to - from) * tau * tau / (2.0 * d);
        }
        from = to;
        start += d;
    }
    sum / unit.as_nanos() as f64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn constant_arrivals_split_exactly(
        schedule in constant_schedules(),
        sequence in sequences(),
        max_vus in 1u64..=50,
    ) {
        let all = ExecutionTuple::all(sequence);
        assert_union_is_single_node(&schedule, &all)?;
        let recut: Vec<ExecutionTuple> =
            all.iter().filter_map(|t| t.resegment(max_vus).ok().flatten()).collect();
        assert_union_is_single_node(&schedule, &recut)?;
        if let Schedule::Constant { rate, time_unit, duration } = schedule {
            for (g, at) in collect(&schedule, &ExecutionTuple::full()) {
                let exact = u128::from(g) * time_unit.as_nanos() / u128::from(rate);
                prop_assert_eq!(at.as_nanos(), exact);
                prop_assert!(at < duration);
            }
        }
    }

    #[test]
    fn ramping_arrivals_split_exactly(
        schedule in ramping_schedules(),
        sequence in sequences(),
        max_vus in 1u64..=50,
    ) {
        let all = ExecutionTuple::all(sequence);
        assert_union_is_single_node(&schedule, &all)?;
        let recut: Vec<ExecutionTuple> =
            all.iter().filter_map(|t| t.resegment(max_vus).ok().flatten()).collect();
        assert_union_is_single_node(&schedule, &recut)?;
    }

    #[test]
    fn ramping_start_times_invert_the_integral(schedule in ramping_schedules()) {
        let single = collect(&schedule, &ExecutionTuple::full());
        let end = schedule.duration();
        let expected = integral(&schedule, end).ceil() as u64;
        prop_assert!(single.len() as u64 + 1 >= expected && single.len() as u64 <= expected + 1);
        for pair in single.windows(2) {
            prop_assert!(pair[0].1 <= pair[1].1, "start times go back: {:?}", pair);
        }
        for &(g, at) in &single {
            prop_assert!(at < end);
            let g = g as f64;
            prop_assert!(integral(&schedule, at) <= g + 1e-6, "I({:?}) > {}", at, g);
            let next = at + Duration::from_nanos(1);
            prop_assert!(integral(&schedule, next) >= g - 1e-6, "I({:?}) < {}", next, g);
        }
    }

    #[test]
    fn constant_stages_equal_a_constant_schedule(
        rate in 0u64..=300,
        unit in 0usize..UNITS.len(),
        pieces in prop::collection::vec(0u64..=700, 0..=3),
    ) {
        let stages: Vec<Stage> = pieces
            .iter()
            .map(|&millis| Stage { duration: Duration::from_millis(millis), target: rate })
            .collect();
        let ramping = Schedule::Ramping { start_rate: rate, time_unit: UNITS[unit], stages };
        let constant = Schedule::Constant {
            rate,
            time_unit: UNITS[unit],
            duration: ramping.duration(),
        };
        let full = ExecutionTuple::full();
        prop_assert_eq!(collect(&ramping, &full), collect(&constant, &full));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Skipping the arrivals before an offset leaves exactly the ones
    /// iteration would still yield, and counts the others.
    #[test]
    fn skipping_equals_iterating(
        schedule in prop_oneof![constant_schedules(), ramping_schedules()],
        sequence in sequences(),
        index in 0usize..8,
        taken in 0usize..40,
        at_permille in 0u64..=1_100,
    ) {
        let all = ExecutionTuple::all(sequence);
        let tuple = &all[index % all.len()];
        let expected = collect(&schedule, tuple);
        let at = schedule.duration().mul_f64(at_permille as f64 / 1000.0);
        let mut arrivals = Arrivals::new(schedule.clone(), tuple)
            .expect("invariant: generated schedules are valid");
        let first: Vec<(u64, Duration)> = arrivals.by_ref().take(taken).collect();
        let skipped = arrivals.skip_before(at);
        let rest: Vec<(u64, Duration)> = arrivals.collect();
        let after_taken = &expected[first.len()..];
        let due = after_taken.iter().take_while(|(_, o)| *o < at).count();
        prop_assert_eq!(skipped, due as u64);
        prop_assert_eq!(&rest[..], &after_taken[due..]);
    }
}
