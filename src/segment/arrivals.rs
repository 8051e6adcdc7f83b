//! The global start times of the arrival-rate executors and the subset one
//! share fires.
//!
//! Every node computes the start time of global iteration `g` from `g` alone,
//! with integer arithmetic, and fires only the `g` its [`ExecutionTuple`]
//! owns. The union over a sequence's shares is therefore exactly the
//! single-node schedule, interleaved without bunching (k6
//! `constant_arrival_rate.go`, `ramping_arrival_rate.go`).
//!
//! Definition: with `I(t)` the number of iterations due by time `t` (the
//! integral of the rate), iteration `g` (0-based) starts at the first
//! instant after which `I` exceeds `g`, rounded down to the nanosecond, and
//! only if that is before the end of the schedule. Where the rate is
//! positive this is the time at which `I(t) = g`: `g · time_unit / rate` for
//! a constant rate, the root of a quadratic in a linear ramp. A schedule
//! with rate 0 throughout starts nothing.
//!
//! Difference from k6: k6's ramping executor starts iteration `g` when
//! `I(t) = g + 1`, so its first iteration comes one period late and its
//! constant and ramping executors disagree; Volley uses one definition for
//! both. k6 also computes ramps in `f64` and constant periods truncated to
//! whole nanoseconds (drifting); Volley is exact.

use std::time::Duration;

use super::{ExecutionTuple, GlobalIndices, SegmentError};
use crate::plan::{Executor, Stage};

/// A global arrival schedule: how many iterations start, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate` iterations start every `time_unit` for `duration`.
    Constant {
        rate: u64,
        time_unit: Duration,
        duration: Duration,
    },
    /// The rate (iterations per `time_unit`) goes linearly from `start_rate`
    /// to each stage's target over the stage's duration; a stage of
    /// duration 0 jumps to its target.
    Ramping {
        start_rate: u64,
        time_unit: Duration,
        stages: Vec<Stage>,
    },
}

/// One linear piece of a schedule, in integer nanoseconds. Rates are
/// iterations per time unit.
#[derive(Debug, Clone)]
struct Piece {
    /// Offset of the piece from the start of the schedule.
    start_ns: u64,
    /// Length of the piece; 0 for a stage that jumps to its target.
    duration_ns: u64,
    /// Rate at the start of the piece (the previous stage's target).
    from: u64,
    /// Rate at the end of the piece (this stage's target).
    to: u64,
    /// `2 · time_unit_ns · I(end of piece)`: the integral in units that keep
    /// it an exact integer, since `I` over a piece is
    /// `(from + to) · duration_ns / (2 · time_unit_ns)`.
    end_weight: u128,
}

// === impl Schedule ===

impl Schedule {
    /// The schedule of an arrival-rate executor; `None` for the others.
    pub fn from_executor(executor: &Executor) -> Option<Schedule> {
        match executor {
            Executor::ConstantArrivalRate {
                rate,
                time_unit,
                duration,
                ..
            } => Some(Schedule::Constant {
                rate: *rate,
                time_unit: *time_unit,
                duration: *duration,
            }),
            Executor::RampingArrivalRate {
                start_rate,
                time_unit,
                stages,
                ..
            } => Some(Schedule::Ramping {
                start_rate: *start_rate,
                time_unit: *time_unit,
                stages: stages.clone(),
            }),
            _ => None,
        }
    }

    /// Checks that the schedule can be timed exactly: a positive time unit,
    /// a total duration within `u64` nanoseconds (584 years), and an
    /// iteration count that fits in `u64`.
    pub fn validate(&self) -> Result<(), SegmentError> {
        Timeline::new(self).map(|_| ())
    }

    /// The time unit rates are expressed in.
    pub fn time_unit(&self) -> Duration {
        match self {
            Schedule::Constant { time_unit, .. } | Schedule::Ramping { time_unit, .. } => {
                *time_unit
            }
        }
    }

    /// Total length of the schedule (saturating).
    pub fn duration(&self) -> Duration {
        match self {
            Schedule::Constant { duration, .. } => *duration,
            Schedule::Ramping { stages, .. } => stages
                .iter()
                .fold(Duration::ZERO, |sum, s| sum.saturating_add(s.duration)),
        }
    }

    /// How many iterations the whole schedule starts, over all shares:
    /// `ceil(I(end))`, e.g. `ceil(rate · duration / time_unit)` for a
    /// constant rate. Saturates at `u64::MAX`; 0 when the time unit is 0.
    pub fn total_iterations(&self) -> u64 {
        let time_unit_ns = self.time_unit().as_nanos();
        if time_unit_ns == 0 {
            return 0;
        }
        let weight = self
            .linear_pieces()
            .try_fold(0u128, |sum, (from, to, duration)| {
                let piece = (u128::from(from) + u128::from(to)).checked_mul(duration.as_nanos())?;
                sum.checked_add(piece)
            });
        match weight {
            Some(weight) => {
                let count = weight.div_ceil(2 * time_unit_ns);
                u64::try_from(count).unwrap_or(u64::MAX)
            }
            None => u64::MAX,
        }
    }

    /// The rate at `offset`, in iterations per second, for progress display;
    /// 0 outside the schedule or with a time unit of 0.
    pub fn rate_at(&self, offset: Duration) -> f64 {
        let unit_secs = self.time_unit().as_secs_f64();
        if unit_secs == 0.0 {
            return 0.0;
        }
        let mut start = Duration::ZERO;
        for (from, to, duration) in self.linear_pieces() {
            let end = start.saturating_add(duration);
            if offset < end {
                let into = (offset - start).as_secs_f64() / duration.as_secs_f64();
                let rate = from as f64 + (to as f64 - from as f64) * into;
                return rate / unit_secs;
            }
            start = end;
        }
        0.0
    }

    /// `(from rate, to rate, duration)` of each linear piece, in order.
    fn linear_pieces(&self) -> Box<dyn Iterator<Item = (u64, u64, Duration)> + '_> {
        match self {
            Schedule::Constant { rate, duration, .. } => {
                Box::new(std::iter::once((*rate, *rate, *duration)))
            }
            Schedule::Ramping {
                start_rate, stages, ..
            } => Box::new(stages.iter().scan(*start_rate, |from, stage| {
                let piece = (*from, stage.target, stage.duration);
                *from = stage.target;
                Some(piece)
            })),
        }
    }
}

/// A validated schedule in integer nanoseconds.
#[derive(Debug, Clone)]
struct Timeline {
    /// Twice the time unit: `I(t) >= g` compares `2 · time_unit_ns · g`
    /// with piece weights.
    double_unit_ns: u128,
    pieces: Vec<Piece>,
    total: u64,
}

// === impl Timeline ===

impl Timeline {
    fn new(schedule: &Schedule) -> Result<Timeline, SegmentError> {
        let time_unit_ns = schedule.time_unit().as_nanos();
        if time_unit_ns == 0 {
            return Err(SegmentError::ZeroTimeUnit);
        }
        let duration = schedule.duration();
        if duration.as_nanos() > u128::from(u64::MAX) {
            return Err(SegmentError::ScheduleTooLong { duration });
        }
        let mut pieces = Vec::new();
        let (mut start_ns, mut weight) = (0u64, 0u128);
        for (from, to, piece_duration) in schedule.linear_pieces() {
            let duration_ns = u64::try_from(piece_duration.as_nanos())
                .map_err(|_| SegmentError::ScheduleTooLong { duration })?;
            let piece_weight = (u128::from(from) + u128::from(to))
                .checked_mul(u128::from(duration_ns))
                .ok_or(SegmentError::ScheduleTooLarge)?;
            weight = weight
                .checked_add(piece_weight)
                .ok_or(SegmentError::ScheduleTooLarge)?;
            pieces.push(Piece {
                start_ns,
                duration_ns,
                from,
                to,
                end_weight: weight,
            });
            start_ns = start_ns
                .checked_add(duration_ns)
                .ok_or(SegmentError::ScheduleTooLong { duration })?;
        }
        // Headroom: the exact root test adds terms up to twice a weight.
        if weight > u128::MAX / 4 {
            return Err(SegmentError::ScheduleTooLarge);
        }
        let double_unit_ns = 2 * time_unit_ns;
        let total = u64::try_from(weight.div_ceil(double_unit_ns))
            .map_err(|_| SegmentError::ScheduleTooLarge)?;
        Ok(Timeline {
            double_unit_ns,
            pieces,
            total,
        })
    }

    /// Start offset of global iteration `g`, `None` if it does not start.
    fn offset_of(&self, g: u64) -> Option<Duration> {
        if g >= self.total {
            return None;
        }
        // g < total = ceil(W / 2u) gives 2u · g < W <= u128::MAX / 4.
        let target = self.double_unit_ns * u128::from(g);
        let index = self.pieces.partition_point(|p| p.end_weight <= target);
        let piece = self.pieces.get(index)?;
        let before = index
            .checked_sub(1)
            .and_then(|i| self.pieces.get(i))
            .map_or(0, |p| p.end_weight);
        let into = piece.solve(target - before);
        Some(Duration::from_nanos(piece.start_ns + into))
    }
}

// === impl Piece ===

impl Piece {
    /// `floor(τ)` for the `τ` in `[0, duration)` where the piece's weight so
    /// far, `G(τ) = 2·from·τ + (to − from)·τ² / duration`, equals `target`.
    /// Requires `target < G(duration)`, the piece's whole weight.
    fn solve(&self, target: u128) -> u64 {
        let (a, b, d) = (self.from, self.to, self.duration_ns);
        if a == b {
            // Constant rate: τ = target / (2a), the drift-free
            // `g · time_unit / rate` on a constant schedule. a > 0 here as
            // the piece has positive weight.
            let tau = target / (2 * u128::from(a));
            return u64::try_from(tau).unwrap_or(d);
        }
        // Quadratic: (b−a)τ² + 2adτ − target·d = 0. The root without
        // cancellation is target / (a + sqrt(a² + (b−a)·target/d)); the
        // float is only a first guess, refined with exact comparisons.
        let (af, cf, tf, df) = (a as f64, b as f64 - a as f64, target as f64, d as f64);
        let denom = af + (af * af + cf * tf / df).max(0.0).sqrt();
        let guess = if denom > 0.0 { tf / denom } else { 0.0 };
        let guess = if guess.is_finite() {
            (guess as u64).min(d)
        } else {
            0
        };
        floor_root(|tau| self.weight_at_most(tau, target), guess, d)
    }

    /// Whether `G(τ) <= target`, exactly. `τ <= duration < 2^64`, so `τ²`
    /// fits; `(b−a)·τ²/d` is split as `(b−a)·(Q + R/d)` with `τ² = Q·d + R`.
    fn weight_at_most(&self, tau: u64, target: u128) -> bool {
        let (a, b, d) = (self.from, self.to, u128::from(self.duration_ns));
        let tau = u128::from(tau);
        let square = tau * tau;
        let (q, r) = (square / d, square % d);
        let linear = (2 * u128::from(a)).saturating_mul(tau);
        if b >= a {
            let c = u128::from(b - a);
            let curve = (c * q).saturating_add((c * r).div_ceil(d));
            // 2aτ + ceil(cτ²/d) <= target  ⟺  2aτ + cτ²/d <= target.
            linear.saturating_add(curve) <= target
        } else {
            let c = u128::from(a - b);
            let curve = (c * q).saturating_add(c * r / d);
            // 2aτ <= target + floor(cτ²/d)  ⟺  2aτ − cτ²/d <= target.
            linear <= target.saturating_add(curve)
        }
    }
}

/// The largest `τ` in `[0, max]` with `ok(τ)`, for `ok` true at 0 and
/// monotone (true, then false). Gallops from `guess`, then bisects.
fn floor_root(ok: impl Fn(u64) -> bool, guess: u64, max: u64) -> u64 {
    let guess = guess.min(max);
    // Invariant while searching: ok(lo), and hi == None or !ok(hi).
    let (mut lo, mut hi);
    if ok(guess) {
        lo = guess;
        hi = None;
        let mut step = 1u64;
        while lo < max {
            let probe = lo.saturating_add(step).min(max);
            if ok(probe) {
                lo = probe;
                step = step.saturating_mul(2);
            } else {
                hi = Some(probe);
                break;
            }
        }
    } else {
        hi = Some(guess);
        lo = 0;
        let mut step = 1u64;
        let mut upper = guess;
        while upper > 0 {
            let probe = upper.saturating_sub(step);
            if ok(probe) {
                lo = probe;
                break;
            }
            upper = probe;
            hi = Some(probe);
            step = step.saturating_mul(2);
        }
    }
    let Some(mut hi) = hi else { return lo };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The `(global iteration, start offset)` pairs one share fires, in order.
///
/// Pass the tuple the executor should stripe with: k6 first re-cuts it by
/// `maxVUs` ([`ExecutionTuple::resegment`]); passing the tuple unchanged
/// splits the rate exactly by the segment lengths instead.
#[derive(Debug, Clone)]
pub struct Arrivals {
    timeline: Timeline,
    indices: GlobalIndices,
    /// How many pairs this share fires in total.
    share: u64,
    /// How many it has yielded so far.
    yielded: u64,
}

// === impl Arrivals ===

impl Arrivals {
    /// The arrivals of `tuple`'s share of `schedule`. Fails if the schedule
    /// does not [validate](Schedule::validate).
    pub fn new(schedule: Schedule, tuple: &ExecutionTuple) -> Result<Arrivals, SegmentError> {
        let timeline = Timeline::new(&schedule)?;
        let share = tuple.scale(timeline.total);
        Ok(Arrivals {
            timeline,
            indices: tuple.global_indices(),
            share,
            yielded: 0,
        })
    }

    /// Iterations the whole schedule starts, over all shares.
    pub fn total_iterations(&self) -> u64 {
        self.timeline.total
    }

    /// Iterations this share starts: the tuple's share of the total.
    pub fn share(&self) -> u64 {
        self.share
    }

    /// Skips every arrival left that starts before offset `at`, and says
    /// how many: a binary search over the share's remaining arrivals
    /// (start offsets never decrease), so `O(log n)` whatever the rate. An
    /// open-model dispatcher that fell behind counts the arrivals it can
    /// no longer start in one step this way instead of one by one.
    pub fn skip_before(&mut self, at: Duration) -> u64 {
        let due = |local: u64| {
            self.indices
                .global_at(local)
                .and_then(|g| self.timeline.offset_of(g))
                .is_some_and(|offset| offset < at)
        };
        // Every local index in [yielded, lo) is due; none in [hi, share).
        let (mut lo, mut hi) = (self.yielded, self.share);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if due(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let skipped = lo - self.yielded;
        self.yielded = lo;
        self.indices.seek(lo);
        skipped
    }
}

impl Iterator for Arrivals {
    type Item = (u64, Duration);

    fn next(&mut self) -> Option<(u64, Duration)> {
        if self.yielded >= self.share {
            return None;
        }
        let g = self.indices.next()?;
        let offset = self.timeline.offset_of(g)?;
        self.yielded += 1;
        Some((g, offset))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.share - self.yielded).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}
