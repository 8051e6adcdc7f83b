//! The live progress line printed (and redrawn) while a test runs:
//!
//! ```text
//! running [===>      ] 12.0s/30.0s  vus 50/50  3,412 req/s  p95 4.21ms  errors 0 (0.00%)  40,944 iters
//! ```
//!
//! It always fits in [`MAX_WIDTH`] terminal columns: when it would not,
//! the bar narrows first, then the least useful parts go (iterations, VUs,
//! p95), then the phase text is shortened.

use std::time::Duration;

use super::ansi::Paint;
use super::format;

/// The widest the line ever gets, in terminal columns.
pub const MAX_WIDTH: usize = 100;
/// Bar width (inside the brackets) when there is room, and when there is not.
const BAR_WIDE: usize = 20;
const BAR_NARROW: usize = 10;
/// The phase text is never cut shorter than this.
const MIN_PHASE: usize = 8;

/// A snapshot of a running test.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Test time so far.
    pub elapsed: Duration,
    /// Planned test time; zero when unknown (iteration-based runs), which
    /// shows no bar.
    pub total: Duration,
    /// Active VUs.
    pub vus: u64,
    /// Allocated VUs: the most that can be active.
    pub vus_max: u64,
    /// Completed iterations.
    pub iterations: u64,
    /// Requests per second over the last reporting interval.
    pub rps: f64,
    /// 95th percentile `http_req_duration` so far, in ms; `None` before the
    /// first response.
    pub p95_ms: Option<f64>,
    /// Failed requests so far (`http_req_failed` true samples).
    pub errors: u64,
    /// All requests so far, for the error share.
    pub requests: u64,
    /// What the run is doing, replacing `running` (fleet: `running on 3
    /// agents`).
    pub phase: Option<String>,
}

/// How a part of the line is coloured.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Bar,
    Value,
    Alarm,
}

/// The progress line: one line, no newline, at most [`MAX_WIDTH`] columns.
pub fn line(p: &Progress, color: bool) -> String {
    let paint = Paint::new(color);
    let phase = p
        .phase
        .as_deref()
        .unwrap_or("running")
        .replace(['\n', '\r'], " ");
    let mut optional = Optional {
        vus: true,
        p95: true,
        iterations: true,
    };
    let mut bar = BAR_WIDE;
    let mut phase_width = format::display_width(&phase);
    loop {
        let parts = layout(p, &phase, phase_width, bar, optional);
        let width: usize = parts
            .iter()
            .map(|(text, _)| format::display_width(text))
            .sum();
        if width <= MAX_WIDTH {
            return paint_parts(&parts, paint);
        }
        let excess = width - MAX_WIDTH;
        if bar > BAR_NARROW && p.total > Duration::ZERO {
            bar = BAR_NARROW;
        } else if optional.iterations {
            optional.iterations = false;
        } else if optional.vus {
            optional.vus = false;
        } else if optional.p95 {
            optional.p95 = false;
        } else if phase_width > MIN_PHASE {
            phase_width = phase_width.saturating_sub(excess).max(MIN_PHASE);
        } else {
            // Only absurd numbers get here (durations of centuries); cut
            // the plain text rather than overflow the terminal.
            let plain: String = parts.iter().map(|(text, _)| text.as_str()).collect();
            let mut cut: String = plain.chars().take(MAX_WIDTH - 1).collect();
            cut.push('…');
            return cut;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Optional {
    vus: bool,
    p95: bool,
    iterations: bool,
}

fn layout(
    p: &Progress,
    phase: &str,
    phase_width: usize,
    bar: usize,
    optional: Optional,
) -> Vec<(String, Style)> {
    let mut parts = vec![(shorten(phase, phase_width), Style::Plain)];
    if p.total > Duration::ZERO {
        parts.push((" ".into(), Style::Plain));
        parts.push((progress_bar(p.elapsed, p.total, bar), Style::Bar));
        parts.push((
            format!(" {}/{}", clock(p.elapsed), clock(p.total)),
            Style::Plain,
        ));
    } else {
        parts.push((format!(" {}", clock(p.elapsed)), Style::Plain));
    }
    let mut field = |text: String, style: Style| {
        parts.push(("  ".into(), Style::Plain));
        parts.push((text, style));
    };
    if optional.vus {
        field(format!("vus {}/{}", p.vus, p.vus_max), Style::Plain);
    }
    field(format!("{} req/s", rate(p.rps)), Style::Value);
    if optional.p95 {
        let p95 = p.p95_ms.map_or_else(|| "-".to_owned(), format::duration_ms);
        field(format!("p95 {p95}"), Style::Value);
    }
    let share = if p.requests == 0 {
        0.0
    } else {
        (p.errors as f64 / p.requests as f64).min(1.0)
    };
    let errors = format!(
        "errors {} ({})",
        format::thousands(p.errors),
        format::percent(share)
    );
    field(
        errors,
        if p.errors > 0 {
            Style::Alarm
        } else {
            Style::Plain
        },
    );
    if optional.iterations {
        field(
            format!("{} iters", format::thousands(p.iterations)),
            Style::Plain,
        );
    }
    parts
}

fn paint_parts(parts: &[(String, Style)], paint: Paint) -> String {
    parts
        .iter()
        .map(|(text, style)| match style {
            Style::Plain => text.clone(),
            Style::Bar => paint.green(text),
            Style::Value => paint.cyan(text),
            Style::Alarm => paint.red(text),
        })
        .collect()
}

/// `text` cut to `width` columns, ending in `…` when cut.
fn shorten(text: &str, width: usize) -> String {
    if format::display_width(text) <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `[=========>          ]`.
fn progress_bar(elapsed: Duration, total: Duration, width: usize) -> String {
    let fraction = (elapsed.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0);
    // fraction is in [0, 1], so the product is in [0, width].
    let filled = (fraction * width as f64).round() as usize;
    let inner = match filled {
        0 => " ".repeat(width),
        f if f >= width => "=".repeat(width),
        f => format!("{}>{}", "=".repeat(f - 1), " ".repeat(width - f)),
    };
    format!("[{inner}]")
}

/// `12.0s`, `2m03s`, `1h02m03s`: tenths below a minute, truncated.
fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{}.{}s", secs, d.subsec_millis() / 100);
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h == 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{h}h{m:02}m{s:02}s")
    }
}

/// `3,412` from 100 req/s up, `12.5` below; nonsense reads as 0.
fn rate(rps: f64) -> String {
    if !rps.is_finite() || rps <= 0.0 {
        return "0".into();
    }
    if rps >= 100.0 {
        // Saturating cast: astronomically large rates print as u64::MAX.
        format::thousands(rps.round() as u64)
    } else {
        format!("{rps:.1}")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Progress {
        Progress {
            elapsed: Duration::from_secs(12),
            total: Duration::from_secs(30),
            vus: 50,
            vus_max: 50,
            iterations: 40_944,
            rps: 3_412.4,
            p95_ms: Some(4.213),
            errors: 0,
            requests: 40_944,
            phase: None,
        }
    }

    #[test]
    fn typical_line_fits_everything_with_a_narrow_bar() {
        let out = line(&sample(), false);
        assert_eq!(
            out,
            "running [===>      ] 12.0s/30.0s  vus 50/50  3,412 req/s  p95 4.21ms  errors 0 (0.00%)  40,944 iters"
        );
        assert_eq!(format::display_width(&out), MAX_WIDTH);
    }

    #[test]
    fn a_short_line_keeps_the_wide_bar() {
        let p = Progress {
            iterations: 7,
            rps: 3.0,
            vus: 1,
            vus_max: 1,
            p95_ms: None,
            ..sample()
        };
        assert_eq!(
            line(&p, false),
            "running [=======>            ] 12.0s/30.0s  vus 1/1  3.0 req/s  p95 -  errors 0 (0.00%)  7 iters"
        );
    }

    #[test]
    fn fleet_phase_drops_the_least_useful_parts_first() {
        let p = Progress {
            phase: Some("running on 3 agents".into()),
            errors: 12,
            ..sample()
        };
        let out = line(&p, false);
        assert_eq!(
            out,
            "running on 3 agents [===>      ] 12.0s/30.0s  vus 50/50  3,412 req/s  p95 4.21ms  errors 12 (0.02%)"
        );
        assert!(format::display_width(&out) <= MAX_WIDTH);
    }

    #[test]
    fn unknown_total_shows_no_bar_and_empty_latency_shows_a_dash() {
        let p = Progress {
            total: Duration::ZERO,
            elapsed: Duration::from_millis(125_400),
            p95_ms: None,
            rps: 12.34,
            ..sample()
        };
        assert_eq!(
            line(&p, false),
            "running 2m05s  vus 50/50  12.3 req/s  p95 -  errors 0 (0.00%)  40,944 iters"
        );
    }

    #[test]
    fn bar_fills_from_empty_to_full() {
        let total = Duration::from_secs(10);
        assert_eq!(progress_bar(Duration::ZERO, total, 10), "[          ]");
        assert_eq!(
            progress_bar(Duration::from_secs(5), total, 10),
            "[====>     ]"
        );
        assert_eq!(
            progress_bar(Duration::from_secs(10), total, 10),
            "[==========]"
        );
        assert_eq!(
            progress_bar(Duration::from_secs(99), total, 10),
            "[==========]"
        );
    }

    #[test]
    fn clock_formats() {
        assert_eq!(clock(Duration::from_millis(12_049)), "12.0s");
        assert_eq!(clock(Duration::from_millis(59_999)), "59.9s");
        assert_eq!(clock(Duration::from_secs(123)), "2m03s");
        assert_eq!(clock(Duration::from_secs(3_723)), "1h02m03s");
    }

    #[test]
    fn colour_wraps_parts_without_changing_the_text() {
        let p = Progress {
            errors: 3,
            ..sample()
        };
        let colored = line(&p, true);
        assert!(
            colored.contains("\x1b[32m[") && colored.contains("\x1b[31merrors 3"),
            "{colored:?}"
        );
        assert_eq!(
            format::display_width(&colored),
            format::display_width(&line(&p, false))
        );
    }

    #[test]
    fn a_very_long_phase_is_shortened() {
        let p = Progress {
            phase: Some("x".repeat(300)),
            ..sample()
        };
        let out = line(&p, false);
        assert!(out.starts_with("xxxxxxx") && out.contains("…"), "{out}");
        assert_eq!(format::display_width(&out), MAX_WIDTH);
        assert!(out.contains("req/s") && out.contains("errors 0"));
    }

    proptest! {
        #[test]
        fn never_wider_than_the_terminal_budget(
            elapsed in 0u64..u64::MAX / 2,
            total in prop_oneof![Just(0u64), 0u64..u64::MAX / 2],
            vus in any::<u64>(),
            vus_max in any::<u64>(),
            iterations in any::<u64>(),
            rps in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -1e3f64..1e30],
            p95 in proptest::option::of(0f64..1e12),
            errors in any::<u64>(),
            requests in any::<u64>(),
            phase in proptest::option::of("[a-z ✓µ\n]{0,150}"),
            color in any::<bool>(),
        ) {
            let p = Progress {
                elapsed: Duration::from_millis(elapsed),
                total: Duration::from_millis(total),
                vus, vus_max, iterations, rps, p95_ms: p95, errors, requests, phase,
            };
            let out = line(&p, color);
            prop_assert!(format::display_width(&out) <= MAX_WIDTH, "{} columns: {out:?}", format::display_width(&out));
            prop_assert!(!out.contains('\n'));
        }
    }
}
