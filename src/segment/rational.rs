//! Exact non-negative rationals for segment cut points: parsing of the forms
//! k6 accepts (`1/3`, `0.5`, `50%`, `1`), normalization, comparison and the
//! little arithmetic segments need.
//!
//! Cut points live in [0, 1] and their denominators must stay small for the
//! striping tables to stay small, so `u64` numerator and denominator with
//! `u128` intermediates are plenty; anything that would not fit is reported,
//! never wrapped.

use std::cmp::Ordering;
use std::fmt;

use super::SegmentError;

/// Most fractional digits accepted in a decimal (`0.123…`): 10^19 no longer
/// fits a `u64` denominator.
const MAX_DECIMAL_DIGITS: u32 = 18;

/// What a number in a segment or sequence must look like, for error messages.
pub(crate) const NUMBER_FORMS: &str =
    "a fraction like 1/3, a decimal like 0.5, a percentage like 50% or an integer like 1";

/// An exact non-negative rational, always in lowest terms with a non-zero
/// denominator, so that derived equality and hashing are value equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: u64,
    den: u64,
}

// === impl Rational ===

impl Rational {
    pub const ZERO: Rational = Rational { num: 0, den: 1 };
    pub const ONE: Rational = Rational { num: 1, den: 1 };

    /// `num/den` in lowest terms; `None` when `den` is 0.
    pub fn new(num: u64, den: u64) -> Option<Rational> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den);
        Some(Rational {
            num: num / g,
            den: den / g,
        })
    }

    /// Reduces a `u128` fraction; `None` when `den` is 0 or the reduced
    /// parts do not fit in `u64`.
    pub(crate) fn from_u128(num: u128, den: u128) -> Option<Rational> {
        if den == 0 {
            return None;
        }
        let g = gcd_u128(num, den);
        Some(Rational {
            num: u64::try_from(num / g).ok()?,
            den: u64::try_from(den / g).ok()?,
        })
    }

    pub fn numer(self) -> u64 {
        self.num
    }

    pub fn denom(self) -> u64 {
        self.den
    }

    pub fn is_zero(self) -> bool {
        self.num == 0
    }

    /// `self - other`; `None` when negative or not representable.
    pub fn checked_sub(self, other: Rational) -> Option<Rational> {
        let lhs = u128::from(self.num) * u128::from(other.den);
        let rhs = u128::from(other.num) * u128::from(self.den);
        let den = u128::from(self.den) * u128::from(other.den);
        Rational::from_u128(lhs.checked_sub(rhs)?, den)
    }

    /// `self + other`; `None` when not representable.
    pub fn checked_add(self, other: Rational) -> Option<Rational> {
        let lhs = u128::from(self.num) * u128::from(other.den);
        let rhs = u128::from(other.num) * u128::from(self.den);
        let den = u128::from(self.den) * u128::from(other.den);
        Rational::from_u128(lhs.checked_add(rhs)?, den)
    }

    /// Nearest `f64`, for display and rates only; never for decisions.
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Parses `1/3`, `0.5`, `.5`, `50%`, `12.5%` or `1` (surrounding spaces
    /// allowed). The error names the text and the forms expected.
    pub fn parse(text: &str) -> Result<Rational, SegmentError> {
        let trimmed = text.trim();
        let invalid = |reason: &'static str| SegmentError::InvalidNumber {
            text: text.to_owned(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(percent) = trimmed.strip_suffix('%') {
            let value = parse_decimal(percent.trim_end()).map_err(invalid)?;
            let den = u128::from(value.den) * 100;
            return Rational::from_u128(u128::from(value.num), den)
                .ok_or_else(|| invalid("its denominator does not fit in 64 bits"));
        }
        if let Some((num, den)) = trimmed.split_once('/') {
            let num = parse_digits(num.trim()).map_err(invalid)?;
            let den = parse_digits(den.trim()).map_err(invalid)?;
            return Rational::new(num, den).ok_or_else(|| invalid("its denominator is 0"));
        }
        parse_decimal(trimmed).map_err(invalid)
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        let lhs = u128::from(self.num) * u128::from(other.den);
        let rhs = u128::from(other.num) * u128::from(self.den);
        lhs.cmp(&rhs)
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Rational {
    /// `0`, `1`, `3` for integers, `1/3` otherwise: the form `parse` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl std::str::FromStr for Rational {
    type Err = SegmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rational::parse(s)
    }
}

/// An unsigned integer made of ASCII digits only.
fn parse_digits(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() {
        return Err("a number is missing around '/'");
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("it contains a character that is not a digit");
    }
    text.parse::<u64>()
        .map_err(|_| "a number does not fit in 64 bits")
}

/// `12`, `0.25`, `.25`, `3.` as an exact rational.
fn parse_decimal(text: &str) -> Result<Rational, &'static str> {
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err("it has no digits");
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || !all_digits(frac_part) {
        return Err("it contains a character that is not a digit, '.', '/' or a final '%'");
    }
    let digits = u32::try_from(frac_part.len()).unwrap_or(u32::MAX);
    if digits > MAX_DECIMAL_DIGITS {
        return Err("it has more than 18 decimal places");
    }
    let scale = 10u64.pow(digits);
    let int_value: u64 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| "a number does not fit in 64 bits")?
    };
    let frac_value: u64 = if frac_part.is_empty() {
        0
    } else {
        frac_part
            .parse()
            .map_err(|_| "a number does not fit in 64 bits")?
    };
    let num = u128::from(int_value) * u128::from(scale) + u128::from(frac_value);
    Rational::from_u128(num, u128::from(scale)).ok_or("a number does not fit in 64 bits")
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn gcd_u128(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Least common multiple, `None` when it exceeds `u64`.
pub(crate) fn lcm(a: u64, b: u64) -> Option<u64> {
    if a == 0 || b == 0 {
        return Some(0);
    }
    (a / gcd(a, b)).checked_mul(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(num: u64, den: u64) -> Rational {
        Rational::new(num, den).expect("invariant: test denominators are non-zero")
    }

    #[test]
    fn parses_every_accepted_form() {
        let cases = [
            ("1/3", r(1, 3)),
            (" 2/6 ", r(1, 3)),
            ("0.5", r(1, 2)),
            (".25", r(1, 4)),
            ("3.", r(3, 1)),
            ("50%", r(1, 2)),
            ("12.5%", r(1, 8)),
            ("100%", Rational::ONE),
            ("1", Rational::ONE),
            ("0", Rational::ZERO),
            ("0.000000000000000001", r(1, 1_000_000_000_000_000_000)),
        ];
        for (text, want) in cases {
            assert_eq!(Rational::parse(text).ok(), Some(want), "parsing {text:?}");
        }
    }

    #[test]
    fn rejects_malformed_numbers_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("abc", "not a digit"),
            ("-1/3", "not a digit"),
            ("1/0", "denominator is 0"),
            ("1/", "missing"),
            ("1e-3", "not a digit"),
            ("0.1234567890123456789", "18 decimal places"),
            ("99999999999999999999", "64 bits"),
            (".", "no digits"),
            ("%", "no digits"),
        ];
        for (text, reason) in cases {
            match Rational::parse(text) {
                Err(err @ SegmentError::InvalidNumber { .. }) => {
                    let message = err.to_string();
                    assert!(message.contains(reason), "{text:?}: {message}");
                    assert!(
                        message.contains("1/3"),
                        "{text:?} lists the forms: {message}"
                    );
                }
                other => panic!("{text:?} should be rejected, got {other:?}"),
            }
        }
    }

    #[test]
    fn normalizes_and_orders_by_value() {
        assert_eq!(r(2, 4), r(1, 2));
        assert_eq!(r(0, 7), Rational::ZERO);
        assert!(r(1, 3) < r(1, 2));
        assert!(r(2, 3) > r(1, 2));
        assert_eq!(Rational::new(1, 0), None);
    }

    #[test]
    fn arithmetic_is_exact_and_checked() {
        assert_eq!(r(2, 3).checked_sub(r(1, 3)), Some(r(1, 3)));
        assert_eq!(r(1, 2).checked_sub(r(1, 3)), Some(r(1, 6)));
        assert_eq!(r(1, 3).checked_sub(r(1, 2)), None);
        assert_eq!(r(1, 3).checked_add(r(1, 6)), Some(r(1, 2)));
        let big = r(1, u64::MAX);
        let other = r(1, u64::MAX - 1);
        assert_eq!(other.checked_sub(big), None, "denominator beyond u64");
        assert_eq!(lcm(4, 6), Some(12));
        assert_eq!(lcm(u64::MAX, u64::MAX - 1), None);
    }

    #[test]
    fn displays_in_a_form_parse_reads_back() {
        for value in [r(1, 3), Rational::ONE, Rational::ZERO, r(7, 10)] {
            assert_eq!(Rational::parse(&value.to_string()).ok(), Some(value));
        }
        assert_eq!(r(4, 8).to_string(), "1/2");
    }
}
