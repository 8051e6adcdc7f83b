//! [`ExecutionTuple`]: a sequence plus "which segment is mine", with k6's
//! striping of global unit numbers precomputed.
//!
//! Striping (k6 `NewExecutionSegmentSequenceWrapper`): with `L` the common
//! denominator and `n_i = length_i · L`, segment `i` owns `n_i` of every `L`
//! consecutive global units. Units `0..L` are dealt one by one; unit `k`
//! goes to the first segment, in order of decreasing `n_i` (stable), whose
//! count so far `c` satisfies `k >= ceil(c · L / n_i)`. Each segment's picks
//! are thus spread about `L / n_i` apart, and the pattern repeats every `L`
//! units. k6 scans every segment for every unit (`O(L · n)`); Volley keeps
//! the segments that are due in a heap, which gives the same owners in
//! `O(L · log n)`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Arc;

use super::{Rational, Segment, SegmentError, SegmentSequence};

/// A sequence and the index of my segment in it, with the striping tables.
/// Cloning is cheap: the tables are shared.
#[derive(Clone)]
pub struct ExecutionTuple {
    sequence: SegmentSequence,
    index: usize,
    /// Shared by every tuple built from the same sequence by [`ExecutionTuple::all`].
    striping: Arc<Striping>,
}

/// Which global units each segment owns within one period of `L` units.
#[derive(Debug)]
struct Striping {
    lcd: u64,
    /// Per segment, its positions in `0..L`, ascending; never empty, and
    /// together a partition of `0..L`. `u32` is enough: `L <= MAX_LCD`.
    positions: Vec<Vec<u32>>,
}

// === impl ExecutionTuple ===

impl ExecutionTuple {
    /// The tuple for `segment`, which must be one of `sequence`'s segments.
    pub fn new(sequence: SegmentSequence, segment: &Segment) -> Result<Self, SegmentError> {
        let index = sequence
            .index_of(segment)
            .ok_or_else(|| SegmentError::NotInSequence {
                segment: segment.to_string(),
                sequence: sequence.to_string(),
            })?;
        Ok(ExecutionTuple::at(sequence, index))
    }

    /// The tuple for segment `index` of `sequence` (a fleet member's rank).
    pub fn from_index(sequence: SegmentSequence, index: usize) -> Result<Self, SegmentError> {
        if index >= sequence.segment_count() {
            return Err(SegmentError::IndexOutOfRange {
                index,
                segments: sequence.segment_count(),
                sequence: sequence.to_string(),
            });
        }
        Ok(ExecutionTuple::at(sequence, index))
    }

    /// Every segment's tuple, in order, sharing one set of tables.
    pub fn all(sequence: SegmentSequence) -> Vec<ExecutionTuple> {
        let striping = Arc::new(Striping::new(&sequence));
        (0..sequence.segment_count())
            .map(|index| ExecutionTuple {
                sequence: sequence.clone(),
                index,
                striping: Arc::clone(&striping),
            })
            .collect()
    }

    /// The single-node case: segment `0:1` of the sequence `0,1`.
    pub fn full() -> Self {
        ExecutionTuple::at(SegmentSequence::full(), 0)
    }

    fn at(sequence: SegmentSequence, index: usize) -> Self {
        let striping = Arc::new(Striping::new(&sequence));
        ExecutionTuple {
            sequence,
            index,
            striping,
        }
    }

    pub fn sequence(&self) -> &SegmentSequence {
        &self.sequence
    }

    /// Index of my segment in the sequence.
    pub fn index(&self) -> usize {
        self.index
    }

    /// My segment.
    pub fn segment(&self) -> Segment {
        self.sequence
            .segment(self.index)
            .expect("invariant: index < segment_count, checked on construction")
    }

    /// `L`: the striping pattern repeats every `L` global units.
    pub fn lcd(&self) -> u64 {
        self.striping.lcd
    }

    /// The first global unit I own (k6's `start`).
    pub fn start(&self) -> u64 {
        u64::from(self.positions()[0])
    }

    /// Gaps between my consecutive global units, cyclic; the last gap wraps
    /// into the next period (k6's `offsets`). Sums to `L`.
    pub fn offsets(&self) -> Vec<u64> {
        let positions = self.positions();
        let wrap = u64::from(positions[0]) + self.lcd();
        positions
            .iter()
            .map(|&p| u64::from(p))
            .skip(1)
            .chain(std::iter::once(wrap))
            .zip(positions.iter().map(|&p| u64::from(p)))
            .map(|(next, current)| next - current)
            .collect()
    }

    /// My share of `value` units (k6 `ScaleInt64`): how many of the global
    /// units `0..value` I own. The shares of all segments sum to `value`,
    /// and each is non-decreasing in `value`.
    pub fn scale(&self, value: u64) -> u64 {
        self.striping.scale(self.index, value)
    }

    /// Whether global unit `global` is mine.
    pub fn owns(&self, global: u64) -> bool {
        let position = global % self.lcd();
        self.positions()
            .binary_search_by(|&p| u64::from(p).cmp(&position))
            .is_ok()
    }

    /// My global units in ascending order (k6 `SegmentedIndex`), without end.
    pub fn global_indices(&self) -> GlobalIndices {
        GlobalIndices {
            striping: Arc::clone(&self.striping),
            segment: self.index,
            base: Some(0),
            next: 0,
        }
    }

    /// The global number of my `local`-th unit (both 0-based): unique across
    /// the fleet, so the engine numbers VUs with it. Saturates at
    /// `u64::MAX` for locals whose global number would not fit.
    pub fn local_to_global(&self, local: u64) -> u64 {
        let positions = self.positions();
        let per_period = positions.len() as u64;
        let period = local / per_period;
        let offset = positions[(local % per_period) as usize];
        let global = u128::from(period) * u128::from(self.lcd()) + u128::from(offset);
        u64::try_from(global).unwrap_or(u64::MAX)
    }

    /// The tuple re-cut by `value` (k6 `GetNewExecutionTupleFromValue`):
    /// every segment's new length is its share of `value` divided by
    /// `value`, and segments whose share is 0 are dropped. Shared iterations
    /// use it with the VU count, arrival rates with `maxVUs`.
    ///
    /// `Ok(None)` when my share of `value` is 0 (including `value == 0`):
    /// this node has nothing to do. An error when the new sequence is too
    /// fine ([`SegmentError::TooFine`]; its denominator divides `value`, so
    /// never for `value <= MAX_LCD`).
    pub fn resegment(&self, value: u64) -> Result<Option<ExecutionTuple>, SegmentError> {
        if self.scale(value) == 0 {
            return Ok(None);
        }
        if value.is_multiple_of(self.lcd()) {
            // Every share is exactly `value · length`: the same sequence.
            return Ok(Some(self.clone()));
        }
        let mut points = vec![Rational::ZERO];
        let mut cumulative = 0u64;
        let mut new_index = 0;
        for index in 0..self.sequence.segment_count() {
            let share = self.striping.scale(index, value);
            if share == 0 {
                continue;
            }
            if index == self.index {
                new_index = points.len() - 1;
            }
            cumulative += share;
            points.push(
                Rational::new(cumulative, value).expect("invariant: value > 0 as my share is > 0"),
            );
        }
        let sequence = SegmentSequence::from_points(points)?;
        Ok(Some(ExecutionTuple::at(sequence, new_index)))
    }

    fn positions(&self) -> &[u32] {
        &self.striping.positions[self.index]
    }
}

impl fmt::Debug for ExecutionTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionTuple")
            .field("sequence", &self.sequence.to_string())
            .field("index", &self.index)
            .field("lcd", &self.striping.lcd)
            .finish()
    }
}

impl PartialEq for ExecutionTuple {
    /// The tables are a function of the sequence, so they need no comparing.
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.sequence == other.sequence
    }
}

impl Eq for ExecutionTuple {}

// === impl Striping ===

impl Striping {
    fn new(sequence: &SegmentSequence) -> Striping {
        let lcd = sequence.lcd();
        let numerators = sequence.normalized_numerators();
        // Priority order: larger numerators first, ties in sequence order.
        let mut order: Vec<usize> = (0..numerators.len()).collect();
        order.sort_by_key(|&i| Reverse(numerators[i]));

        let mut positions: Vec<Vec<u32>> = numerators
            .iter()
            .map(|&n| Vec::with_capacity(usize::try_from(n).unwrap_or(0)))
            .collect();
        // Ranks (positions in `order`) that may take the next unit.
        let mut due: BinaryHeap<Reverse<usize>> = (0..order.len()).map(Reverse).collect();
        // (first unit it may take, rank) for the others.
        let mut waiting: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        let mut counts = vec![0u64; order.len()];

        for unit in 0..lcd {
            while let Some(&Reverse((at, rank))) = waiting.peek() {
                if at > unit {
                    break;
                }
                waiting.pop();
                due.push(Reverse(rank));
            }
            // The counts sum to `unit`; if every segment still had to wait,
            // each c_s > unit · n_s / L, summing to more than `unit`.
            let Reverse(rank) = due
                .pop()
                .expect("invariant: some segment is always due (the n_i sum to L)");
            let segment = order[rank];
            positions[segment]
                .push(u32::try_from(unit).expect("invariant: L <= MAX_LCD fits in u32"));
            counts[rank] += 1;
            let n = numerators[segment];
            if counts[rank] < n {
                let next = (u128::from(counts[rank]) * u128::from(lcd)).div_ceil(u128::from(n));
                let next = u64::try_from(next).expect("invariant: c < n so c·L/n < L");
                waiting.push(Reverse((next, rank)));
            }
        }
        Striping { lcd, positions }
    }

    /// Segment `index`'s share of the global units `0..value`.
    fn scale(&self, index: usize, value: u64) -> u64 {
        let positions = &self.positions[index];
        let whole = (value / self.lcd) * positions.len() as u64;
        let rest = value % self.lcd;
        whole + positions.partition_point(|&p| u64::from(p) < rest) as u64
    }
}

/// One segment's global unit numbers in ascending order (k6
/// `SegmentedIndex`). Ends only if the next number would not fit in `u64`.
#[derive(Debug, Clone)]
pub struct GlobalIndices {
    striping: Arc<Striping>,
    segment: usize,
    /// First unit of the current period; `None` once past `u64::MAX`.
    base: Option<u64>,
    /// Next position within the period.
    next: usize,
}

impl GlobalIndices {
    /// The global number of my `local`-th unit (0-based), `None` past
    /// `u64::MAX`.
    pub fn global_at(&self, local: u64) -> Option<u64> {
        let positions = &self.striping.positions[self.segment];
        let per_period = positions.len() as u64;
        let period = local / per_period;
        let offset = u64::from(positions[(local % per_period) as usize]);
        period
            .checked_mul(self.striping.lcd)
            .and_then(|base| base.checked_add(offset))
    }

    /// Continues from my `local`-th unit, as if the ones before had been
    /// taken: `O(1)` whatever the count skipped.
    pub fn seek(&mut self, local: u64) {
        let per_period = self.striping.positions[self.segment].len() as u64;
        self.base = (local / per_period).checked_mul(self.striping.lcd);
        self.next = (local % per_period) as usize;
    }
}

impl Iterator for GlobalIndices {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let base = self.base?;
        let positions = &self.striping.positions[self.segment];
        let global = base.checked_add(u64::from(positions[self.next]));
        self.next += 1;
        if self.next == positions.len() {
            self.next = 0;
            self.base = base.checked_add(self.striping.lcd);
        }
        if global.is_none() {
            self.base = None;
        }
        global
    }
}
