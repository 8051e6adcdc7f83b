//! [`Segment`] (one share `(a, b]` of the test) and [`SegmentSequence`] (the
//! ordered cut points every node shares): parsing, validation, and turning
//! capacity weights into cut points with a bounded common denominator.

use std::fmt;
use std::str::FromStr;

use super::rational::{gcd, lcm};
use super::{MAX_LCD, Rational, SegmentError};

/// Capacity weights are quantized to this many parts of the whole when their
/// reduced sum is larger, so that a fleet's striping tables stay small.
pub const WEIGHT_RESOLUTION: u64 = 10_000;

/// One share of the test: the half-open interval `(from, to]` of the whole,
/// with `0 <= from < to <= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Exclusive start: the share of the test before this one.
    from: Rational,
    /// Inclusive end; `to - from` is this segment's share.
    to: Rational,
}

// === impl Segment ===

impl Segment {
    /// `(from, to]`; an error unless `0 <= from < to <= 1`.
    pub fn new(from: Rational, to: Rational) -> Result<Segment, SegmentError> {
        let text = format!("{from}:{to}");
        for value in [from, to] {
            if value > Rational::ONE {
                return Err(SegmentError::OutOfRange {
                    text: text.clone(),
                    value,
                });
            }
        }
        if from >= to {
            return Err(SegmentError::EmptySegment { text, from, to });
        }
        Ok(Segment { from, to })
    }

    /// The whole test, `0:1`: the single-node case.
    pub fn full() -> Segment {
        Segment {
            from: Rational::ZERO,
            to: Rational::ONE,
        }
    }

    /// Parses `a:b` (`1/3:2/3`, `0.5:0.75`, `50%:75%`) or a single `b`,
    /// which means `0:b` as in k6.
    pub fn parse(text: &str) -> Result<Segment, SegmentError> {
        let parts: Vec<&str> = text.split(':').collect();
        let (from, to) = match parts.as_slice() {
            [to] => (Rational::ZERO, Rational::parse(to)?),
            [from, to] => (Rational::parse(from)?, Rational::parse(to)?),
            _ => {
                return Err(SegmentError::SegmentSyntax {
                    text: text.to_owned(),
                });
            }
        };
        Segment::new(from, to).map_err(|err| match err {
            SegmentError::OutOfRange { value, .. } => SegmentError::OutOfRange {
                text: text.to_owned(),
                value,
            },
            SegmentError::EmptySegment { from, to, .. } => SegmentError::EmptySegment {
                text: text.to_owned(),
                from,
                to,
            },
            other => other,
        })
    }

    /// Start of the interval (exclusive).
    pub fn from(&self) -> Rational {
        self.from
    }

    /// End of the interval (inclusive).
    pub fn to(&self) -> Rational {
        self.to
    }

    /// `to - from`, the share of the whole.
    pub fn length(&self) -> Rational {
        self.to
            .checked_sub(self.from)
            .expect("invariant: from < to, and both have u64 denominators")
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.from, self.to)
    }
}

impl FromStr for Segment {
    type Err = SegmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Segment::parse(s)
    }
}

/// The ordered cut points `0 = r0 < r1 < … < rn = 1` shared by every node;
/// segment `i` is `(r_i, r_{i+1}]`.
///
/// Invariants, checked on construction: starts at 0, ends at 1, strictly
/// increasing, and the common denominator of the segment lengths is at
/// most [`MAX_LCD`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentSequence {
    /// The cut points, including the leading 0 and trailing 1, so that
    /// segment `i` is simply `points[i]..points[i + 1]`.
    points: Vec<Rational>,
    /// Least common denominator of the segment lengths: the period of the
    /// striping pattern, kept because every tuple needs it.
    lcd: u64,
}

// === impl SegmentSequence ===

impl SegmentSequence {
    /// `0,1`: one segment, the whole test.
    pub fn full() -> SegmentSequence {
        SegmentSequence {
            points: vec![Rational::ZERO, Rational::ONE],
            lcd: 1,
        }
    }

    /// Parses `0,1/3,2/3,1`. A missing leading `0` or trailing `1` is filled
    /// in (`1/3,2/3` means `0,1/3,2/3,1`). Errors name the element and why.
    pub fn parse(text: &str) -> Result<SegmentSequence, SegmentError> {
        if text.trim().is_empty() {
            return Err(SegmentError::EmptySequence {
                text: text.to_owned(),
            });
        }
        let mut points = Vec::new();
        for (index, element) in text.split(',').enumerate() {
            let in_element = |error: SegmentError| SegmentError::SequenceElement {
                sequence: text.to_owned(),
                index,
                error: Box::new(error),
            };
            let value = Rational::parse(element).map_err(in_element)?;
            if value > Rational::ONE {
                return Err(in_element(SegmentError::OutOfRange {
                    text: element.trim().to_owned(),
                    value,
                }));
            }
            points.push(value);
        }
        SegmentSequence::build(points, text, true)
    }

    /// Builds a sequence from cut points, filling in a missing leading `0`
    /// and trailing `1`.
    pub fn from_points(points: Vec<Rational>) -> Result<SegmentSequence, SegmentError> {
        let text = render(&points);
        if points.is_empty() {
            return Err(SegmentError::EmptySequence { text });
        }
        if let Some((index, &value)) = points.iter().enumerate().find(|(_, p)| **p > Rational::ONE)
        {
            return Err(SegmentError::SequenceElement {
                sequence: text,
                index,
                error: Box::new(SegmentError::OutOfRange {
                    text: value.to_string(),
                    value,
                }),
            });
        }
        SegmentSequence::build(points, &text, true)
    }

    /// k6's fill for a lone `--execution-segment`: the sequence
    /// `0,from,to,1` without duplicates, in which `segment` is one segment.
    pub fn around(segment: &Segment) -> Result<SegmentSequence, SegmentError> {
        let mut points = vec![Rational::ZERO, segment.from, segment.to, Rational::ONE];
        points.dedup();
        let text = render(&points);
        SegmentSequence::build(points, &text, false)
    }

    /// Cut points from capacity weights: share `i` gets `weights[i] / sum`.
    ///
    /// The weights are first divided by their greatest common divisor. If
    /// the reduced sum `S` is at most [`WEIGHT_RESOLUTION`] the split is
    /// exact (4:2:2:1:1 gives `0,2/5,3/5,4/5,9/10,1`). Otherwise each weight
    /// is rounded to the nearest `1/WEIGHT_RESOLUTION` of the total, and to
    /// at least one part so that every share keeps a segment. The common
    /// denominator `L` divides the (quantized) sum, so
    /// `L <= WEIGHT_RESOLUTION + weights.len()`.
    pub fn from_weights(weights: &[u64]) -> Result<SegmentSequence, SegmentError> {
        if weights.is_empty() {
            return Err(SegmentError::NoWeights);
        }
        if let Some(index) = weights.iter().position(|&w| w == 0) {
            return Err(SegmentError::ZeroWeight { index });
        }
        let divisor = weights.iter().copied().fold(0, gcd);
        let reduced: Vec<u128> = weights.iter().map(|&w| u128::from(w / divisor)).collect();
        let sum: u128 = reduced.iter().sum();
        let parts: Vec<u128> = if sum <= u128::from(WEIGHT_RESOLUTION) {
            reduced
        } else {
            let resolution = u128::from(WEIGHT_RESOLUTION);
            reduced
                .iter()
                .map(|&w| ((2 * w * resolution + sum) / (2 * sum)).max(1))
                .collect()
        };
        let total: u128 = parts.iter().sum();
        let mut points = Vec::with_capacity(parts.len() + 1);
        points.push(Rational::ZERO);
        let mut cumulative = 0u128;
        for part in parts {
            cumulative += part;
            let point = Rational::from_u128(cumulative, total)
                .expect("invariant: cumulative <= total <= u64::MAX + weights");
            points.push(point);
        }
        let text = render(&points);
        SegmentSequence::build(points, &text, false)
    }

    /// Validates filled or unfilled points and computes the common
    /// denominator. `text` names the sequence in errors.
    fn build(
        mut points: Vec<Rational>,
        text: &str,
        fill: bool,
    ) -> Result<SegmentSequence, SegmentError> {
        // Element numbers in errors refer to the points as written.
        let mut shift = 0;
        if fill && points.first() != Some(&Rational::ZERO) {
            points.insert(0, Rational::ZERO);
            shift = 1;
        }
        if fill && points.last() != Some(&Rational::ONE) {
            points.push(Rational::ONE);
        }
        let mut lcd = 1u64;
        for (index, pair) in points.windows(2).enumerate() {
            let (previous, element) = (pair[0], pair[1]);
            if element <= previous {
                return Err(SegmentError::NotIncreasing {
                    sequence: text.to_owned(),
                    index: (index + 1).saturating_sub(shift),
                    element,
                    previous,
                });
            }
            let too_fine = |lcd| SegmentError::TooFine {
                sequence: text.to_owned(),
                lcd,
                max: MAX_LCD,
            };
            let length = element
                .checked_sub(previous)
                .ok_or_else(|| too_fine(None))?;
            lcd = lcm(lcd, length.denom()).ok_or_else(|| too_fine(None))?;
            if lcd > MAX_LCD {
                return Err(too_fine(Some(lcd)));
            }
        }
        if points.first() != Some(&Rational::ZERO) || points.last() != Some(&Rational::ONE) {
            // Only reachable from internal callers that pass complete points.
            return Err(SegmentError::EmptySequence {
                text: text.to_owned(),
            });
        }
        Ok(SegmentSequence { points, lcd })
    }

    /// The cut points, from 0 to 1.
    pub fn points(&self) -> &[Rational] {
        &self.points
    }

    /// How many segments (one fewer than cut points); at least 1.
    pub fn segment_count(&self) -> usize {
        self.points.len() - 1
    }

    /// Segment `index`, if there is one.
    pub fn segment(&self, index: usize) -> Option<Segment> {
        let from = *self.points.get(index)?;
        let to = *self.points.get(index + 1)?;
        Some(Segment { from, to })
    }

    /// All segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.points.windows(2).map(|pair| Segment {
            from: pair[0],
            to: pair[1],
        })
    }

    /// Position of `segment` in this sequence, if it is one of its segments.
    pub fn index_of(&self, segment: &Segment) -> Option<usize> {
        let index = self.points.binary_search(&segment.from).ok()?;
        (self.points.get(index + 1) == Some(&segment.to)).then_some(index)
    }

    /// Least common denominator `L` of the segment lengths.
    pub fn lcd(&self) -> u64 {
        self.lcd
    }

    /// Segment `i`'s length times `L`: how many of every `L` consecutive
    /// global units it owns. Sums to `L`.
    pub(crate) fn normalized_numerators(&self) -> Vec<u64> {
        self.segments()
            .map(|segment| {
                let length = segment.length();
                length.numer() * (self.lcd / length.denom())
            })
            .collect()
    }
}

impl fmt::Display for SegmentSequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(&self.points))
    }
}

impl FromStr for SegmentSequence {
    type Err = SegmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SegmentSequence::parse(s)
    }
}

fn render(points: &[Rational]) -> String {
    points
        .iter()
        .map(Rational::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
