//! Kubernetes resource quantities (`3920m`, `27Gi`, `1e9`, `129M`) parsed
//! into numbers: CPU cores as `f64`, memory as whole bytes.
//!
//! k8s-openapi hands quantities over as plain strings (`Quantity(String)`),
//! so the agent parses the Node's `status.allocatable` itself. The grammar
//! is the API server's:
//!
//! ```text
//! quantity  ::= sign? number suffix
//! number    ::= digits | digits "." digits? | "." digits
//! suffix    ::= binarySI | decimalSI | ("e" | "E") sign? digits
//! binarySI  ::= Ki | Mi | Gi | Ti | Pi | Ei            (powers of 1024)
//! decimalSI ::= n | u | m | "" | k | M | G | T | P | E (powers of 1000)
//! ```
//!
//! Memory is computed exactly in integers (`27Gi` is exactly
//! 28 991 029 248 bytes) and rounded up to a whole byte, as Kubernetes does;
//! CPU is a float, which is plenty for a capacity weight.

/// A quantity that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is empty or only whitespace.
    #[error("quantity is empty; expected a number with an optional unit, such as 3920m or 27Gi")]
    Empty,
    /// The text does not follow the quantity grammar.
    #[error(
        "quantity {value:?} is not a Kubernetes quantity: {reason}; expected a number with an \
         optional suffix (Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent like 1e9)"
    )]
    Malformed {
        /// The text as given.
        value: String,
        /// What exactly is wrong with it.
        reason: &'static str,
    },
    /// CPU and memory cannot be negative.
    #[error("quantity {value:?} is negative; allocatable {what} cannot be below zero")]
    Negative {
        /// The text as given.
        value: String,
        /// `cpu` or `memory`.
        what: &'static str,
    },
    /// The value does not fit the target type (more than 2^64-1 bytes).
    #[error("quantity {value:?} is too large for {what}")]
    TooLarge {
        /// The text as given.
        value: String,
        /// `cpu` or `memory`.
        what: &'static str,
    },
}

/// A quantity taken apart: `(-1)^negative * mantissa * 10^exp10 * 2^exp2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    negative: bool,
    /// All digits of the number, the fraction included (`1.5` → 15).
    mantissa: u128,
    /// Power of ten, after moving the decimal point to the mantissa's end.
    exp10: i32,
    /// Power of two from a binary suffix (`Ki` → 10).
    exp2: u32,
}

/// Most digits a mantissa may have: 10^38 < 2^128.
const MAX_DIGITS: u32 = 38;

/// Largest exponent accepted after `e`: far beyond any real quantity, small
/// enough that arithmetic on it cannot overflow.
const MAX_EXPONENT: i32 = 1000;

/// Parses CPU cores: `3920m` → 3.92, `4` → 4.0, `0.5` → 0.5, `100u` → 0.0001.
pub fn parse_cpu(value: &str) -> Result<f64, QuantityError> {
    let p = parse(value)?;
    if p.negative && p.mantissa != 0 {
        return Err(QuantityError::Negative {
            value: value.to_string(),
            what: "cpu",
        });
    }
    // Powers are bounded by MAX_EXPONENT and 60, so the casts are exact.
    let cores = p.mantissa as f64 * 10f64.powi(p.exp10) * 2f64.powi(p.exp2 as i32);
    if !cores.is_finite() {
        return Err(QuantityError::TooLarge {
            value: value.to_string(),
            what: "cpu",
        });
    }
    Ok(cores)
}

/// Parses memory as bytes, rounded up to a whole byte: `27Gi`, `512Mi`,
/// `1e9`, `128974848`, `129M`, `123k`.
pub fn parse_memory(value: &str) -> Result<u64, QuantityError> {
    let p = parse(value)?;
    if p.negative && p.mantissa != 0 {
        return Err(QuantityError::Negative {
            value: value.to_string(),
            what: "memory",
        });
    }
    let too_large = || QuantityError::TooLarge {
        value: value.to_string(),
        what: "memory",
    };
    if p.mantissa == 0 {
        return Ok(0);
    }
    let scaled = p
        .mantissa
        .checked_mul(1u128 << p.exp2)
        .ok_or_else(too_large)?;
    let bytes = if p.exp10 >= 0 {
        let factor = 10u128
            .checked_pow(p.exp10.unsigned_abs())
            .ok_or_else(too_large)?;
        scaled.checked_mul(factor).ok_or_else(too_large)?
    } else {
        match 10u128.checked_pow(p.exp10.unsigned_abs()) {
            Some(divisor) => scaled.div_ceil(divisor),
            // The divisor exceeds any u128, so a positive value rounds up
            // to one byte.
            None => 1,
        }
    };
    u64::try_from(bytes).map_err(|_| too_large())
}

/// Splits a quantity into sign, mantissa and exponents.
fn parse(value: &str) -> Result<Parsed, QuantityError> {
    let text = value.trim();
    if text.is_empty() {
        return Err(QuantityError::Empty);
    }
    let malformed = |reason| QuantityError::Malformed {
        value: value.to_string(),
        reason,
    };

    let (negative, rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };

    // The number: digits with at most one decimal point.
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac_part.contains('.') {
        return Err(malformed("more than one decimal point"));
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(malformed("no digits before the unit"));
    }

    let mut mantissa: u128 = 0;
    let mut digits: u32 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        let d = u128::from(b - b'0');
        if mantissa == 0 && d == 0 {
            continue; // leading zeros carry no precision
        }
        digits += 1;
        if digits > MAX_DIGITS {
            return Err(malformed("more than 38 significant digits"));
        }
        mantissa = mantissa * 10 + d;
    }
    let frac_digits = i32::try_from(frac_part.len()).map_err(|_| malformed("fraction too long"))?;
    if frac_digits > MAX_EXPONENT {
        return Err(malformed("fraction too long"));
    }

    let (exp10, exp2) = parse_suffix(suffix).ok_or_else(|| {
        malformed("unknown unit suffix (units are case-sensitive: Mi, not mi or MI)")
    })?;
    Ok(Parsed {
        negative,
        mantissa,
        exp10: exp10 - frac_digits,
        exp2,
    })
}

/// The powers of ten and two a suffix stands for, or `None` when it is no
/// suffix at all.
fn parse_suffix(suffix: &str) -> Option<(i32, u32)> {
    let powers = match suffix {
        "" => (0, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        _ => return parse_exponent(suffix).map(|e| (e, 0)),
    };
    Some(powers)
}

/// `e9`, `E-3`, `e+2`: a decimal exponent with an integer power.
fn parse_exponent(suffix: &str) -> Option<i32> {
    let rest = suffix.strip_prefix(['e', 'E'])?;
    let (negative, digits) = match rest.as_bytes().first()? {
        b'-' => (true, &rest[1..]),
        b'+' => (false, &rest[1..]),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
        return None;
    }
    let power: i32 = digits.parse().ok()?;
    if power > MAX_EXPONENT {
        return None;
    }
    Some(if negative { -power } else { power })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn cpu_table() {
        let table: &[(&str, f64)] = &[
            ("3920m", 3.92),
            ("4", 4.0),
            ("0.5", 0.5),
            ("100u", 0.0001),
            ("250n", 0.000_000_25),
            ("1k", 1000.0),
            ("2e3", 2000.0),
            ("15E-1", 1.5),
            (".5", 0.5),
            ("1.", 1.0),
            ("+2", 2.0),
            ("-0", 0.0),
            (" 2 ", 2.0),
            ("0", 0.0),
            ("007", 7.0),
        ];
        for (text, want) in table {
            let got = parse_cpu(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(close(got, *want), "{text}: got {got}, want {want}");
        }
    }

    #[test]
    fn memory_table() {
        let table: &[(&str, u64)] = &[
            ("27Gi", 27 * (1 << 30)),
            ("512Mi", 512 * (1 << 20)),
            ("1e9", 1_000_000_000),
            ("128974848", 128_974_848),
            ("129M", 129_000_000),
            ("123k", 123_000),
            ("1Ki", 1024),
            ("1.5Gi", 3 * (1 << 29)),
            ("1Ti", 1 << 40),
            ("2Pi", 2 << 50),
            ("15Ei", 15 << 60),
            ("8E", 8_000_000_000_000_000_000),
            ("1500m", 2), // 1.5 bytes rounds up
            ("1m", 1),
            ("0.1", 1),
            ("0", 0),
            ("0Gi", 0),
            ("1e-50", 1),
            ("12E+2", 1200),
        ];
        for (text, want) in table {
            let got = parse_memory(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn bad_quantities_name_the_value() {
        for text in [
            "", "  ", "Gi", "abc", "1.2.3", "12mi", "12 Gi", "1e", "1e+", "--1", "1x",
        ] {
            let err = parse_memory(text).expect_err(text);
            if !text.trim().is_empty() {
                assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
            }
            assert!(parse_cpu(text).is_err(), "{text}");
        }
        let err = parse_memory("-1Gi").expect_err("negative");
        assert_eq!(
            err,
            QuantityError::Negative {
                value: "-1Gi".into(),
                what: "memory"
            }
        );
        assert!(matches!(
            parse_cpu("-100m"),
            Err(QuantityError::Negative { .. })
        ));
        assert!(matches!(
            parse_memory("16Ei"),
            Err(QuantityError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_memory("1e30"),
            Err(QuantityError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_cpu("1e999"),
            Err(QuantityError::TooLarge { .. })
        ));
        assert!(parse_memory("1e1001").is_err());
        assert!(parse_memory(&"9".repeat(39)).is_err());
    }

    const BINARY: &[(&str, u32)] = &[("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40)];
    const DECIMAL: &[(&str, u32)] = &[("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12)];

    proptest! {
        #[test]
        fn memory_binary_round_trip(n in 0u64..(1 << 20), i in 0usize..BINARY.len()) {
            let (suffix, shift) = BINARY[i];
            prop_assert_eq!(parse_memory(&format!("{n}{suffix}")), Ok(n << shift));
        }

        #[test]
        fn memory_decimal_round_trip(n in 0u64..1_000_000, i in 0usize..DECIMAL.len()) {
            let (suffix, power) = DECIMAL[i];
            let want = n * 10u64.pow(power);
            prop_assert_eq!(parse_memory(&format!("{n}{suffix}")), Ok(want));
            prop_assert_eq!(parse_memory(&format!("{n}e{power}")), Ok(want));
        }

        #[test]
        fn memory_plain_bytes_round_trip(n in any::<u64>()) {
            prop_assert_eq!(parse_memory(&n.to_string()), Ok(n));
        }

        #[test]
        fn memory_fraction_rounds_up(whole in 0u64..1000, tenth in 0u64..10) {
            // whole.tenth Ki = (whole*10 + tenth) * 1024 / 10, rounded up.
            let want = ((whole * 10 + tenth) * 1024).div_ceil(10);
            prop_assert_eq!(parse_memory(&format!("{whole}.{tenth}Ki")), Ok(want));
        }

        #[test]
        fn cpu_millis_round_trip(m in 0u64..100_000_000) {
            let want = m as f64 / 1000.0;
            let from_millis = parse_cpu(&format!("{m}m")).expect("millicores parse");
            prop_assert!(close(from_millis, want), "{m}m -> {from_millis}");
            let from_decimal = parse_cpu(&format!("{want:.3}")).expect("decimal cores parse");
            prop_assert!(close(from_decimal, want), "{want:.3} -> {from_decimal}");
        }

        #[test]
        fn never_panics(text in ".{0,24}") {
            let _ = parse_cpu(&text);
            let _ = parse_memory(&text);
        }

        #[test]
        fn never_panics_on_quantity_like_text(text in "[-+]?[0-9.]{0,6}[eEkMGTPimun+-]{0,3}[0-9]{0,4}") {
            let _ = parse_cpu(&text);
            let _ = parse_memory(&text);
        }
    }
}
