//! Durations in k6's notation: parsing (`250ms`, `1m30s`, `1.5h`), printing
//! (`1m30s`) and the CLI's `--stage 30s:100`.
//!
//! The grammar is Go's `time.ParseDuration`, which k6 uses, plus k6's `d`
//! for days: one or more `<decimal><unit>` pairs with units `ns`, `us`
//! (`µs`, `μs`), `ms`, `s`, `m`, `h`, `d`. As in k6's options, a bare number
//! (`1500`, `2.5`) means milliseconds. Signs are rejected: no Volley
//! duration can be negative. Values are exact to the nanosecond (fractions
//! are truncated below one nanosecond) and at most [`MAX_DURATION`].

use std::time::Duration;

use super::types::Stage;

/// The longest duration a plan may state anywhere (365 days). Far beyond
/// any load test, and small enough that adding a few of them to an
/// `Instant` can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

const EXPECTED: &str = "a duration like 250ms, 30s, 1m30s or 1.5h";

const NANOS_PER_MS: u128 = 1_000_000;

/// Parses a k6 duration (`250ms`, `1m30s`, `1.5h`, `2d`). A bare number is
/// milliseconds, as in k6's options (`1500` → 1.5 s). The error text
/// reads `got "…", expected …`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("got an empty string, expected {EXPECTED}"));
    }
    if text.starts_with('-') {
        return Err(format!(
            "got \"{}\", expected a non-negative duration",
            text.escape_debug()
        ));
    }
    let nanos = match parse_decimal(text) {
        Some((number, "")) => number.scale(NANOS_PER_MS),
        _ => parse_units(text)
            .ok_or_else(|| format!("got \"{}\", expected {EXPECTED}", text.escape_debug()))?,
    };
    to_duration(nanos).ok_or_else(|| {
        format!(
            "got \"{}\", expected at most {}",
            text.escape_debug(),
            format_duration(MAX_DURATION)
        )
    })
}

/// A bare number of milliseconds, as k6 reads numeric duration options.
pub(crate) fn duration_from_millis_f64(ms: f64) -> Result<Duration, String> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(format!("got \"{ms}\", expected a non-negative duration"));
    }
    let nanos = ms * 1e6;
    if nanos > MAX_DURATION.as_nanos() as f64 {
        return Err(format!(
            "got \"{ms}\", expected at most {}",
            format_duration(MAX_DURATION)
        ));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

fn to_duration(nanos: u128) -> Option<Duration> {
    if nanos > MAX_DURATION.as_nanos() {
        return None;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    let sub = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some(Duration::new(secs, sub))
}

/// A non-negative decimal `int[.frac]` kept exact.
struct Decimal<'a> {
    int: &'a str,
    frac: &'a str,
}

impl Decimal<'_> {
    /// `self × unit` in nanoseconds, saturating far above [`MAX_DURATION`]
    /// so overflow is reported as "too long", never wrapped.
    fn scale(&self, unit: u128) -> u128 {
        let mut int: u128 = 0;
        for b in self.int.bytes() {
            int = int.saturating_mul(10).saturating_add(u128::from(b - b'0'));
        }
        // 18 fraction digits are more than a nanosecond of a day needs.
        let frac_digits = &self.frac[..self.frac.len().min(18)];
        let mut frac: u128 = 0;
        for b in frac_digits.bytes() {
            frac = frac * 10 + u128::from(b - b'0');
        }
        let denom = 10u128.pow(frac_digits.len() as u32);
        int.saturating_mul(unit).saturating_add(frac * unit / denom)
    }
}

/// Splits a leading decimal off `s`. Needs at least one digit.
fn parse_decimal(s: &str) -> Option<(Decimal<'_>, &str)> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let (int, rest) = s.split_at(int_len);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            after.split_at(n)
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((Decimal { int, frac }, rest))
}

/// `<decimal><unit>` pairs, summed in nanoseconds.
fn parse_units(mut s: &str) -> Option<u128> {
    let mut total: u128 = 0;
    while !s.is_empty() {
        let (number, rest) = parse_decimal(s)?;
        let (unit, rest) = split_unit(rest)?;
        total = total.saturating_add(number.scale(unit));
        s = rest;
    }
    Some(total)
}

fn split_unit(s: &str) -> Option<(u128, &str)> {
    // Longest units first so that `ms` is not read as `m` + `s`.
    const UNITS: [(&str, u128); 9] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ];
    UNITS
        .iter()
        .find_map(|(name, nanos)| s.strip_prefix(name).map(|rest| (*nanos, rest)))
}

/// Prints a duration the way k6 shows them: `0s`, `750µs`, `250ms`,
/// `1.5s`, `1m30s`, `2h`, `1h0m5s` is shortened to `1h5s`. The output
/// parses back to the same value with [`parse_duration`].
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = nanos / 60_000_000_000 % 60;
    let sec_nanos = nanos % 60_000_000_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if sec_nanos > 0 {
        out.push_str(&format!("{}s", fraction(sec_nanos, 1_000_000_000)));
    }
    out
}

/// `value / unit` as a decimal without trailing zeros (`1500, 1000` → `1.5`).
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let rest = value % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses the CLI's `--stage DURATION:TARGET` (k6: `--stage 30s:100`).
pub fn parse_stage(s: &str) -> Result<Stage, String> {
    let Some((duration, target)) = s.rsplit_once(':') else {
        return Err(format!(
            "got \"{}\", expected DURATION:TARGET like 30s:100",
            s.escape_debug()
        ));
    };
    let duration = parse_duration(duration)?;
    let target = target.trim().parse::<u64>().map_err(|_| {
        format!(
            "got \"{}\", expected a non-negative integer target after the colon",
            target.escape_debug()
        )
    })?;
    Ok(Stage { duration, target })
}

/// A duration as Go's `time.Duration` prints one (k6 writes them so): `0s`, `500ms`, `1.5s`, `3m0s`, `1h0m0s`.
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d < Duration::from_secs(1) {
        let ms = d.as_secs_f64() * 1000.0;
        return format!("{}ms", trim(ms));
    }
    let total = d.as_secs();
    let (h, m) = (total / 3600, (total / 60) % 60);
    let secs = (total % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let s = format!("{}s", trim(secs));
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// `1.5`, `30`, `0.25`: no trailing zeros, at most 9 decimals.
fn trim(x: f64) -> String {
    let text = format!("{x:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn k6_forms() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("1m30s", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("500us", Duration::from_micros(500)),
            ("500µs", Duration::from_micros(500)),
            ("500μs", Duration::from_micros(500)),
            ("7ns", Duration::from_nanos(7)),
            ("2d", Duration::from_secs(2 * 86_400)),
            ("1d12h", Duration::from_secs(36 * 3600)),
            ("1500", Duration::from_millis(1500)),
            ("2.5", Duration::from_micros(2500)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            (" 10s ", Duration::from_secs(10)),
            (".5s", Duration::from_millis(500)),
            ("1.s", Duration::from_secs(1)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_what_k6_rejects() {
        for bad in [
            "", "s", "10x", "1m30", "-1s", "1 s", "ms", "1e3", "+1s", ".s", "1h-5m",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.starts_with("got "), "{bad}: {err}");
        }
        assert!(parse_duration("-5s").unwrap_err().contains("non-negative"));
        assert!(parse_duration("366d").unwrap_err().contains("at most"));
        assert!(parse_duration("99999999999999999999999999h").is_err());
    }

    #[test]
    fn prints_like_k6() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_micros(750), "750µs"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(3605), "1h5s"),
            (Duration::from_secs(3660), "1h1m"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(d), want);
        }
    }

    #[test]
    fn stages_from_the_cli() {
        assert_eq!(
            parse_stage("30s:100"),
            Ok(Stage {
                duration: Duration::from_secs(30),
                target: 100
            })
        );
        assert_eq!(parse_stage("1m30s:0").map(|s| s.target), Ok(0));
        assert!(parse_stage("30s").is_err());
        assert!(parse_stage("30s:-1").is_err());
        assert!(parse_stage("30x:1").is_err());
    }

    #[test]
    fn millis_from_numbers() {
        assert_eq!(
            duration_from_millis_f64(1.5),
            Ok(Duration::from_micros(1500))
        );
        assert!(duration_from_millis_f64(-1.0).is_err());
        assert!(duration_from_millis_f64(f64::NAN).is_err());
        assert!(duration_from_millis_f64(1e30).is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(nanos in 0u64..=MAX_DURATION.as_nanos() as u64) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
            let _ = parse_stage(&s);
        }
    }
}
