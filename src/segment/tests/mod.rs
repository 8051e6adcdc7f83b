//! Tests of the segment module as a whole: k6's published vectors and
//! worked examples, the arrival schedules, and property tests of the
//! invariants the fleet relies on (shares sum up, never shrink, never
//! overlap, and reproduce the single-node schedule exactly).

mod arrivals;
mod props;
mod sequence;
mod vectors;

use super::{ExecutionTuple, Rational, Segment, SegmentSequence};

/// A sequence the test wrote by hand.
fn seq(text: &str) -> SegmentSequence {
    SegmentSequence::parse(text).expect("invariant: test sequences are valid")
}

/// Every share of a hand-written sequence.
fn tuples(text: &str) -> Vec<ExecutionTuple> {
    ExecutionTuple::all(seq(text))
}

/// The tuple of `segment` in `sequence`, both written by hand.
fn tuple(sequence: &str, segment: &str) -> ExecutionTuple {
    let segment = Segment::parse(segment).expect("invariant: test segments are valid");
    ExecutionTuple::new(seq(sequence), &segment).expect("invariant: test segment is in sequence")
}

fn r(num: u64, den: u64) -> Rational {
    Rational::new(num, den).expect("invariant: test denominators are non-zero")
}
