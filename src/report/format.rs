//! Number, duration, byte and percent formatting exactly as k6's summary
//! prints them, so that a Volley summary reads like a k6 one digit for digit.
//!
//! k6 formats in JavaScript; the rules that matter here:
//! - durations (milliseconds in) are *truncated* to two decimals and shown
//!   in the largest fitting unit: `742µs`, `148.21ms`, `1.2s`, `2m3s`;
//! - bytes use decimal units (1 kB = 1000 B), rounded to one decimal below
//!   ten units and to an integer above: `4.9 kB`, `519 kB`;
//! - rates (`Rate` metrics) are truncated percentages with two decimals;
//! - plain numbers keep up to six decimals without trailing zeros;
//! - rounding to a fixed number of decimals breaks exact ties upwards (JS
//!   `toFixed`), not to even as Rust's formatter does.

/// A k6 duration from milliseconds: `0s`, `512ns`, `742µs`, `148.21ms`,
/// `1.2s`, `2m3s`, `1h2m3s`.
pub fn duration_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return non_finite(ms);
    }
    if ms == 0.0 {
        return "0s".to_owned();
    }
    if ms < 0.001 {
        return format!("{}ns", js_to_string((ms * 1_000_000.0).trunc()));
    }
    if ms < 1.0 {
        return format!("{}µs", truncated(ms * 1000.0, 2));
    }
    if ms < 1000.0 {
        return format!("{}ms", truncated(ms, 2));
    }
    // Below a minute seconds keep two decimals; from a minute on they are
    // whole, as in k6.
    let seconds_precision = if ms > 60_000.0 { 0 } else { 2 };
    let seconds = format!(
        "{}s",
        truncated((ms % 60_000.0) / 1000.0, seconds_precision)
    );
    let minutes = (ms / 60_000.0).trunc();
    if minutes < 1.0 {
        return seconds;
    }
    let with_minutes = format!("{}m{seconds}", js_to_string(minutes % 60.0));
    let hours = (minutes / 60.0).trunc();
    if hours < 1.0 {
        return with_minutes;
    }
    format!("{}h{with_minutes}", js_to_string(hours))
}

/// A byte amount with decimal units: `7 B`, `639 B`, `4.9 kB`, `519 kB`,
/// `1.2 MB`.
pub fn bytes(amount: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    if !amount.is_finite() {
        return format!("{} B", non_finite(amount));
    }
    if amount < 10.0 {
        return format!("{} B", js_to_string(amount));
    }
    let exponent = (amount.ln() / 1000f64.ln()).floor();
    // The exponent is at least 0 here (amount >= 10) and capped at the
    // largest unit, so the cast cannot lose anything that matters.
    let index = (exponent as usize).min(UNITS.len() - 1);
    let scaled = amount / 1000f64.powi(index as i32);
    let rounded = (scaled * 10.0 + 0.5).floor() / 10.0;
    let decimals = if rounded < 10.0 { 1 } else { 0 };
    format!("{} {}", to_fixed(rounded, decimals), UNITS[index])
}

/// A byte rate: `76 kB/s`, `718 B/s`.
pub fn bytes_per_second(rate: f64) -> String {
    format!("{}/s", bytes(rate))
}

/// A share in [0, 1] as k6 prints `Rate` metrics: truncated, two decimals,
/// `66.66%`, `100.00%`.
pub fn percent(share: f64) -> String {
    if !share.is_finite() {
        return format!("{}%", non_finite(share));
    }
    format!("{}%", to_fixed((share * 100.0 * 100.0).trunc() / 100.0, 2))
}

/// A plain number: up to six decimals, no trailing zeros (`6.56109`, `45`).
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return non_finite(value);
    }
    fixed_no_trailing_zeros(value, 6)
}

/// A per-second rate of a plain counter: `6.56109/s`.
pub fn per_second(rate: f64) -> String {
    format!("{}/s", number(rate))
}

/// An integer with thousands separators: `3,412`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// JavaScript's `Number.prototype.toFixed`: `prec` decimals, exact ties
/// rounded away from zero (Rust's formatter rounds them to even).
pub fn to_fixed(value: f64, prec: usize) -> String {
    if !value.is_finite() {
        return non_finite(value);
    }
    if value.abs() >= 1e21 {
        return js_to_string(value);
    }
    let rounded = format!("{value:.prec$}");
    // An exact tie has a terminating expansion with a single 5 right after
    // the kept digits. Doubles that are not ties differ from one within the
    // next 25 digits for every magnitude where a tie at six or fewer
    // decimals is possible.
    let long = format!("{value:.*}", prec + 25);
    let Some(point) = long.find('.') else {
        return rounded;
    };
    let tail = &long[point + 1 + prec..];
    let is_tie = tail.starts_with('5') && tail[1..].bytes().all(|b| b == b'0');
    if !is_tie {
        return rounded;
    }
    let kept = &long[..point + 1 + prec];
    increment_last_digit(kept.trim_end_matches('.'))
}

/// `toFixed` then drop trailing zeros, as k6's `toFixedNoTrailingZeros`.
fn fixed_no_trailing_zeros(value: f64, prec: usize) -> String {
    let fixed = to_fixed(value, prec);
    match fixed.parse::<f64>() {
        Ok(parsed) => js_to_string(parsed),
        Err(_) => fixed,
    }
}

/// Truncate (not round) to `prec` decimals, then drop trailing zeros.
fn truncated(value: f64, prec: i32) -> String {
    let scale = 10f64.powi(prec);
    // `prec` is 0 or 2 here, so the cast back is lossless.
    fixed_no_trailing_zeros((scale * value).trunc() / scale, prec as usize)
}

/// Adds one unit in the last place to a decimal string such as `-0.0078`,
/// carrying through nines; the sign stays as is (away from zero).
fn increment_last_digit(kept: &str) -> String {
    let (sign, digits) = match kept.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", kept),
    };
    let mut bytes: Vec<u8> = digits.bytes().collect();
    let mut carry = true;
    for b in bytes.iter_mut().rev() {
        if !carry {
            break;
        }
        match *b {
            b'.' => continue,
            b'9' => *b = b'0',
            _ => {
                *b += 1;
                carry = false;
            }
        }
    }
    let body = String::from_utf8(bytes).expect("invariant: only ASCII digits and '.' were edited");
    if carry {
        format!("{sign}1{body}")
    } else {
        format!("{sign}{body}")
    }
}

/// JavaScript's `Number.prototype.toString` for finite values: the
/// shortest round-trip form, exponent only below 1e-6 and from 1e21.
pub fn js_to_string(value: f64) -> String {
    if !value.is_finite() {
        return non_finite(value);
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs();
    if !(1e-6..1e21).contains(&magnitude) {
        let exp = format!("{value:e}");
        return match exp.split_once('e') {
            Some((mantissa, power)) if !power.starts_with('-') => format!("{mantissa}e+{power}"),
            _ => exp,
        };
    }
    format!("{value}")
}

fn non_finite(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value > 0.0 {
        "Infinity".to_owned()
    } else {
        "-Infinity".to_owned()
    }
}

/// The width of `text` on a terminal: characters, not counting ANSI
/// escape sequences.
pub fn display_width(text: &str) -> usize {
    let mut width = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC '[' parameters, ended by a byte in 0x40..=0x7e.
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) && c != '[' {
                    break;
                }
            }
            continue;
        }
        width += 1;
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_k6_prints_them() {
        // Values from k6 1.1.0 summaries and from k6's own formatter run on
        // the same inputs.
        assert_eq!(duration_ms(148.2134), "148.21ms");
        assert_eq!(duration_ms(140.36), "140.36ms");
        assert_eq!(duration_ms(106.2062925), "106.2ms");
        assert_eq!(duration_ms(0.513_87), "513.87µs");
        assert_eq!(duration_ms(0.742), "742µs");
        assert_eq!(duration_ms(21.907_34), "21.9ms");
        assert_eq!(duration_ms(14.0), "14ms");
        assert_eq!(duration_ms(0.000_512), "512ns");
        assert_eq!(duration_ms(0.0), "0s");
        assert_eq!(duration_ms(1200.0), "1.2s");
        assert_eq!(duration_ms(1234.5678), "1.23s");
        assert_eq!(duration_ms(60_000.0), "1m0s");
        assert_eq!(duration_ms(62_000.0), "1m2s");
        assert_eq!(duration_ms(123_456.0), "2m3s");
        assert_eq!(duration_ms(3_723_000.0), "1h2m3s");
        assert_eq!(duration_ms(f64::NAN), "NaN");
    }

    #[test]
    fn durations_truncate_not_round() {
        assert_eq!(duration_ms(148.219), "148.21ms");
        assert_eq!(duration_ms(2.999_999), "2.99ms");
        assert_eq!(duration_ms(0.999_999), "999.99µs");
    }

    #[test]
    fn bytes_use_decimal_units() {
        assert_eq!(bytes(519_000.0), "519 kB");
        assert_eq!(bytes(4_900.0), "4.9 kB");
        assert_eq!(bytes(5_662.0), "5.7 kB");
        assert_eq!(bytes(38_836.0), "39 kB");
        assert_eq!(bytes(639.0), "639 B");
        assert_eq!(bytes(7.0), "7 B");
        assert_eq!(bytes(5_000.0), "5.0 kB");
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes_per_second(76_000.0), "76 kB/s");
        assert_eq!(bytes_per_second(718.0), "718 B/s");
        assert_eq!(bytes_per_second(2_760.049_118_871_453), "2.8 kB/s");
        assert_eq!(bytes_per_second(18_931.343_620_715_605), "19 kB/s");
    }

    #[test]
    fn percents_truncate_to_two_decimals() {
        assert_eq!(percent(0.666_666_666_666_666_6), "66.66%");
        assert_eq!(percent(1.0), "100.00%");
        assert_eq!(percent(0.0), "0.00%");
        assert_eq!(percent(0.5), "50.00%");
        assert_eq!(percent(0.333_333_333), "33.33%");
    }

    #[test]
    fn numbers_keep_six_decimals_without_trailing_zeros() {
        assert_eq!(number(45.0), "45");
        assert_eq!(per_second(6.561_090_1), "6.56109/s");
        assert_eq!(per_second(13.122_179_4), "13.122179/s");
        assert_eq!(per_second(292.530_916_2), "292.530916/s");
        assert_eq!(per_second(37.047_639_179_482_594), "37.047639/s");
        assert_eq!(number(152.355_555_5), "152.355556");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-0.000_000_1), "0");
    }

    #[test]
    fn to_fixed_breaks_exact_ties_upwards_like_javascript() {
        assert_eq!(to_fixed(0.5, 0), "1");
        assert_eq!(to_fixed(2.5, 0), "3");
        assert_eq!(to_fixed(0.25, 1), "0.3");
        assert_eq!(to_fixed(1.0 / 128.0, 6), "0.007813");
        assert_eq!(to_fixed(-0.25, 1), "-0.3");
        assert_eq!(to_fixed(9.5, 0), "10");
        assert_eq!(to_fixed(0.999_5, 3), "1.000");
        // Not ties: ordinary rounding.
        assert_eq!(to_fixed(1.005, 2), "1.00");
        assert_eq!(to_fixed(148.21, 2), "148.21");
        assert_eq!(to_fixed(7.0, 1), "7.0");
    }

    #[test]
    fn js_to_string_matches_javascript_forms() {
        assert_eq!(js_to_string(3.0), "3");
        assert_eq!(js_to_string(3.5), "3.5");
        assert_eq!(js_to_string(-0.0), "0");
        assert_eq!(js_to_string(1e21), "1e+21");
        assert_eq!(js_to_string(1.5e-7), "1.5e-7");
        assert_eq!(js_to_string(0.000_001), "0.000001");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3_412), "3,412");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn display_width_skips_ansi() {
        assert_eq!(display_width("\x1b[2;37m...:\x1b[0m ok"), 7);
        assert_eq!(display_width("µs ✓"), 4);
    }
}
