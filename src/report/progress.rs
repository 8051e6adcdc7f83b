//! The live progress shown while a test runs, as pure text.
//!
//! On a terminal ([`terminal_lines`]): a status line, then a line per
//! scenario with a bar, every line cut to the terminal's width (minus one
//! column, so the cursor never wraps):
//!
//! ```text
//! running 12.0s/30.0s  vus 50/50  3,412 req/s  p95 4.21ms  errors 0 (0.00%)  40,944 iters
//!   default [========>           ]  40%  12.0s/30.0s  40,944 iters
//! ```
//!
//! When a line does not fit, whole fields go by a fixed priority (status
//! line: iterations first, then p95, VUs, errors, req/s; scenario lines:
//! iterations, then time, then the percentage) and, last, the text is cut.
//! The bar's width depends on the terminal's width only, so it does not
//! change from one redraw to the next.
//!
//! Not on a terminal ([`plain_line`]): one self-contained line, no escape
//! codes, no width limit, for logs.

use std::time::Duration;

use super::ansi::Paint;
use super::format;

/// Bar width (inside the brackets): a quarter of the terminal, within these.
const BAR_MIN: usize = 10;
const BAR_MAX: usize = 40;
/// Scenario names are padded to the longest, but never beyond this.
const NAME_MAX: usize = 24;
/// The status text (`running`, `running on 3 agents`) is never cut
/// shorter than this.
const MIN_PHASE: usize = 8;

/// A snapshot of a running test.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// Test time so far.
    pub elapsed: Duration,
    /// Planned test time; zero when unknown (a fleet follower), which shows
    /// the elapsed time alone.
    pub total: Duration,
    /// Active VUs.
    pub vus: u64,
    /// Allocated VUs: the most that can be active.
    pub vus_max: u64,
    /// Completed iterations.
    pub iterations: u64,
    /// Requests per second over the last reporting interval.
    pub rps: f64,
    /// 95th percentile `http_req_duration` of the last interval, in ms;
    /// `None` without responses.
    pub p95_ms: Option<f64>,
    /// Failed requests so far (`http_req_failed` true samples).
    pub errors: u64,
    /// All requests so far, for the error share.
    pub requests: u64,
    /// What the run is doing, replacing `running` (fleet: `running on 3
    /// agents`).
    pub phase: Option<String>,
    /// One entry per scenario, in the plan's order.
    pub scenarios: Vec<ScenarioProgress>,
}

/// Where one scenario is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScenarioProgress {
    pub name: String,
    /// Its `startTime`.
    pub start: Duration,
    /// Its nominal length (without graceful stop); zero when unknown.
    pub length: Duration,
    /// Iterations it completed so far.
    pub iterations: u64,
    /// Its VUs at work now; `None` when not known (a fleet follower).
    pub vus: Option<u64>,
}

/// How a part of a line is coloured.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Bar,
    Value,
    Alarm,
}

/// One field of a line: its text, colour, and rank (0 is never dropped;
/// the highest rank goes first).
struct Field {
    text: String,
    style: Style,
    rank: u8,
}

/// Every line to draw on a terminal `width` columns wide: the status
/// line, then one per scenario. None is wider than `width - 1`.
pub fn terminal_lines(p: &Progress, width: usize, color: bool) -> Vec<String> {
    let budget = width.saturating_sub(1).max(1);
    let mut lines = vec![line(p, width, color)];
    let name_width = p
        .scenarios
        .iter()
        .map(|s| format::display_width(&s.name))
        .max()
        .unwrap_or(0)
        .min(NAME_MAX);
    // With one scenario, the status line's VUs are its own.
    let show_vus = p.scenarios.len() > 1;
    for s in &p.scenarios {
        lines.push(scenario_line(
            s, p.elapsed, name_width, budget, color, show_vus,
        ));
    }
    lines
}

/// Bar width (inside the brackets) for a terminal `width` columns wide.
pub fn bar_width(width: usize) -> usize {
    (width / 4).clamp(BAR_MIN, BAR_MAX)
}

/// The status line for a terminal `width` columns wide (at most
/// `width - 1` columns).
pub fn line(p: &Progress, width: usize, color: bool) -> String {
    let budget = width.saturating_sub(1).max(1);
    let phase = p
        .phase
        .as_deref()
        .unwrap_or("running")
        .replace(['\n', '\r'], " ");
    let time = if p.total > Duration::ZERO {
        format!(" {}/{}", clock(p.elapsed), clock(p.total))
    } else {
        format!(" {}", clock(p.elapsed))
    };
    let mut fields = vec![
        Field {
            text: format!("vus {}/{}", p.vus, p.vus_max),
            style: Style::Plain,
            rank: 3,
        },
        Field {
            text: format!("{} req/s", rate(p.rps)),
            style: Style::Value,
            rank: 1,
        },
        Field {
            text: format!(
                "p95 {}",
                p.p95_ms.map_or_else(|| "-".to_owned(), format::duration_ms)
            ),
            style: Style::Value,
            rank: 4,
        },
        Field {
            text: format!(
                "errors {} ({})",
                format::thousands(p.errors),
                format::percent(error_share(p))
            ),
            style: if p.errors > 0 {
                Style::Alarm
            } else {
                Style::Plain
            },
            rank: 2,
        },
        Field {
            text: format!("{} iters", format::thousands(p.iterations)),
            style: Style::Plain,
            rank: 5,
        },
    ];
    // A long status text gives way to the fields down to a third of the
    // line; the fields give way to it below that.
    let phase_claim = format::display_width(&phase).min((budget / 3).max(MIN_PHASE));
    drop_to_fit(
        &mut fields,
        budget.saturating_sub(phase_claim + format::display_width(&time)),
    );
    let used: usize = fields
        .iter()
        .map(|f| 2 + format::display_width(&f.text))
        .sum();
    let phase_room = budget
        .saturating_sub(used + format::display_width(&time))
        .max(MIN_PHASE);
    let mut parts = vec![
        (shorten(&phase, phase_room), Style::Plain),
        (time, Style::Plain),
    ];
    for f in fields {
        parts.push(("  ".into(), Style::Plain));
        parts.push((f.text, f.style));
    }
    finish(parts, budget, color)
}

/// `  name [=====>    ]  40%  12.0s/30.0s  1,234 iters`.
fn scenario_line(
    s: &ScenarioProgress,
    elapsed: Duration,
    name_width: usize,
    budget: usize,
    color: bool,
    show_vus: bool,
) -> String {
    let bar = bar_width(budget + 1);
    let local = elapsed.saturating_sub(s.start);
    let fraction = if s.length.is_zero() {
        0.0
    } else {
        (local.as_secs_f64() / s.length.as_secs_f64()).clamp(0.0, 1.0)
    };
    let time = if elapsed < s.start {
        format!("starts at {}", clock(s.start))
    } else if s.length.is_zero() {
        clock(local)
    } else {
        format!("{}/{}", clock(local.min(s.length)), clock(s.length))
    };
    let mut fields = vec![
        Field {
            text: format!("{:>3}%", (fraction * 100.0).floor() as u64),
            style: Style::Plain,
            rank: 3,
        },
        Field {
            text: time,
            style: Style::Plain,
            rank: 4,
        },
        Field {
            text: format!("{} iters", format::thousands(s.iterations)),
            style: Style::Value,
            rank: 5,
        },
    ];
    if let (true, Some(vus)) = (show_vus, s.vus) {
        fields.insert(
            2,
            Field {
                text: format!("{} VUs", format::thousands(vus)),
                style: Style::Value,
                rank: 6,
            },
        );
    }
    // "  " + name + " " + [bar]
    let fixed = 2 + name_width + 1 + bar + 2;
    drop_to_fit(&mut fields, budget.saturating_sub(fixed));
    let name = shorten(&s.name.replace(['\n', '\r'], " "), name_width);
    let pad = name_width.saturating_sub(format::display_width(&name));
    let mut parts = vec![
        (format!("  {name}{} ", " ".repeat(pad)), Style::Plain),
        (progress_bar(fraction, bar), Style::Bar),
    ];
    for f in fields {
        parts.push(("  ".into(), Style::Plain));
        parts.push((f.text, f.style));
    }
    finish(parts, budget, color)
}

/// Drops fields, highest rank first, until they fit in `room` columns
/// (each takes two columns of separator); rank 0 is kept.
fn drop_to_fit(fields: &mut Vec<Field>, room: usize) {
    loop {
        let width: usize = fields
            .iter()
            .map(|f| 2 + format::display_width(&f.text))
            .sum();
        if width <= room {
            return;
        }
        let Some((i, _)) = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.rank > 0)
            .max_by_key(|(_, f)| f.rank)
        else {
            return;
        };
        fields.remove(i);
    }
}

/// Joins the parts, cut to `budget` columns (only absurd numbers or a
/// tiny terminal need the cut), coloured when asked.
fn finish(parts: Vec<(String, Style)>, budget: usize, color: bool) -> String {
    let width: usize = parts.iter().map(|(t, _)| format::display_width(t)).sum();
    if width > budget {
        let plain: String = parts.iter().map(|(t, _)| t.as_str()).collect();
        return shorten(&plain, budget);
    }
    let paint = Paint::new(color);
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

/// The line written every few seconds when stderr is not a terminal: every
/// figure, no escape codes, no width limit.
///
/// `running 12.0s/30.0s, vus 50/50, 40,944 iterations, 3,412 req/s, p95 4.21ms, errors 0 (0.00%)`
pub fn plain_line(p: &Progress) -> String {
    let phase = p
        .phase
        .as_deref()
        .unwrap_or("running")
        .replace(['\n', '\r'], " ");
    let time = if p.total > Duration::ZERO {
        format!("{}/{}", clock(p.elapsed), clock(p.total))
    } else {
        clock(p.elapsed)
    };
    let p95 = p.p95_ms.map_or_else(|| "-".to_owned(), format::duration_ms);
    let mut out = format!(
        "{phase} {time}, vus {}/{}, {} iterations, {} req/s, p95 {p95}, errors {} ({})",
        p.vus,
        p.vus_max,
        format::thousands(p.iterations),
        rate(p.rps),
        format::thousands(p.errors),
        format::percent(error_share(p)),
    );
    if p.scenarios.len() > 1 {
        let each: Vec<String> = p
            .scenarios
            .iter()
            .map(|s| {
                let name = s.name.replace(['\n', '\r'], " ");
                match s.vus {
                    Some(vus) => format!(
                        "{name} {} ({} VUs)",
                        format::thousands(s.iterations),
                        format::thousands(vus)
                    ),
                    None => format!("{name} {}", format::thousands(s.iterations)),
                }
            })
            .collect();
        out.push_str(&format!(" [{}]", each.join(", ")));
    }
    out
}

fn error_share(p: &Progress) -> f64 {
    if p.requests == 0 {
        0.0
    } else {
        (p.errors as f64 / p.requests as f64).min(1.0)
    }
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

/// `[=========>          ]`, `width` columns inside the brackets.
fn progress_bar(fraction: f64, width: usize) -> String {
    // fraction is in [0, 1], so the product is in [0, width].
    let filled = (fraction.clamp(0.0, 1.0) * width as f64).round() as usize;
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
mod tests;
