//! Tests of the segment module as a whole: k6's published vectors and
//! worked examples, the arrival schedules, and property tests of the
//! invariants the fleet relies on (shares sum up, never shrink, never
//! overlap, and reproduce the single-node schedule exactly).

mod sequence;

use super::Rational;

fn r(num: u64, den: u64) -> Rational {
    Rational::new(num, den).expect("invariant: test denominators are non-zero")
}
