//! Execution segments: how Volley splits one plan's load over N weighted
//! shares so that the shares together reproduce the single-node schedule
//! exactly. This is k6's `--execution-segment` / `--execution-segment-sequence`
//! model; a fleet of agents with capacities 4:2:2:1:1 uses it the same way.
//!
//! - [`Rational`]: exact cut points (`1/3`, `0.5`, `50%`).
//! - [`Segment`] and [`SegmentSequence`]: one share `(a, b]` of the test and
//!   the ordered cut points every node shares; [`SegmentSequence::from_weights`]
//!   turns capacities into cut points.
//! - [`ExecutionTuple`]: a sequence plus "which segment is mine", with k6's
//!   striping precomputed. It scales integer quantities (VUs, iterations)
//!   into exact, monotone shares and maps local unit numbers to global ones.
//! - [`Schedule`] and [`Arrivals`]: the global start times of arrival-rate
//!   iterations and the subset one share fires.
//!
//! Pure: no tokio, no I/O, no clocks. Every node computes the same answers
//! from the same sequence, so no coordinator is needed to split the work.

mod arrivals;
mod rational;
mod sequence;
mod tuple;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use arrivals::{Arrivals, Schedule};
pub use rational::Rational;
pub use sequence::{Segment, SegmentSequence, WEIGHT_RESOLUTION};
pub use tuple::{ExecutionTuple, GlobalIndices};

/// Largest least common denominator of a sequence's segment lengths.
///
/// The striping tables hold one entry per unit of this denominator (4 bytes
/// each, so at most 16 MiB) and take `O(L · log n)` to build. k6 has no such
/// bound and simply tries; Volley refuses with a message instead.
pub const MAX_LCD: u64 = 1 << 22;

/// Everything that can be wrong with a segment, a sequence, weights or an
/// arrival schedule. Each variant carries the offending text or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("invalid number {text:?}: {reason}; expected {forms}", forms = rational::NUMBER_FORMS)]
    InvalidNumber { text: String, reason: &'static str },

    #[error("{text:?} is {value}, outside [0, 1]; segment cut points are shares of the whole test")]
    OutOfRange { text: String, value: Rational },

    #[error(
        "invalid execution segment {text:?}: expected `a:b` (e.g. `1/3:2/3`) or a single `b` meaning `0:b`"
    )]
    SegmentSyntax { text: String },

    #[error(
        "execution segment {text:?} is empty or reversed: its start {from} must be below its end {to}"
    )]
    EmptySegment {
        text: String,
        from: Rational,
        to: Rational,
    },

    #[error("execution segment sequence {text:?} has no cut points; expected e.g. `0,1/3,2/3,1`")]
    EmptySequence { text: String },

    #[error("execution segment sequence {sequence:?}, element {index}: {error}")]
    SequenceElement {
        sequence: String,
        /// 0-based position of the element as written.
        index: usize,
        error: Box<SegmentError>,
    },

    #[error(
        "execution segment sequence {sequence:?}: element {index} ({element}) is not above the cut point before it ({previous}); cut points must be strictly increasing, e.g. `0,1/3,2/3,1`"
    )]
    NotIncreasing {
        sequence: String,
        index: usize,
        element: Rational,
        previous: Rational,
    },

    #[error(
        "execution segment sequence {sequence:?} is too fine: the common denominator of its segment lengths is {lcd}, above the limit of {max}; use coarser cut points (fewer decimal places) or capacity weights, which Volley quantizes",
        lcd = lcd.map_or_else(|| "beyond 2^64".to_owned(), |l| l.to_string())
    )]
    TooFine {
        sequence: String,
        /// `None` when it does not even fit in 64 bits.
        lcd: Option<u64>,
        max: u64,
    },

    #[error(
        "execution segment {segment} is not one of the segments of the sequence {sequence}; expected two adjacent cut points, e.g. `1/3:2/3` in `0,1/3,2/3,1`"
    )]
    NotInSequence { segment: String, sequence: String },

    #[error(
        "segment index {index} is out of range: the sequence {sequence} has {segments} segments"
    )]
    IndexOutOfRange {
        index: usize,
        segments: usize,
        sequence: String,
    },

    #[error("no capacity weights given; expected one positive weight per share, e.g. 4,2,2,1,1")]
    NoWeights,

    #[error("capacity weight {index} is 0; every share needs a positive weight, e.g. 4,2,2,1,1")]
    ZeroWeight { index: usize },

    #[error("arrival schedule has a time unit of 0; expected a positive time unit such as 1s")]
    ZeroTimeUnit,

    #[error(
        "arrival schedule lasts {duration:?}, longer than the {max:?} Volley can time to the nanosecond",
        max = Duration::from_nanos(u64::MAX)
    )]
    ScheduleTooLong { duration: Duration },

    #[error(
        "arrival schedule starts too many iterations to count (rate × duration / time unit overflows 64 bits); lower the rate or the duration"
    )]
    ScheduleTooLarge,
}
