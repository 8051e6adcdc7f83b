//! The end-of-test text summary in k6's (≥ 1.0) layout: `█ THRESHOLDS`,
//! `█ TOTAL RESULTS` (checks, then CUSTOM / HTTP / EXECUTION / NETWORK
//! metric groups, then Volley's ERRORS group), in full mode a
//! `█ SCENARIO: name` section per scenario with its `↳ GROUP: name`
//! blocks, and for fleet runs `█ BREAKDOWN`, then `█ NOTES`.
//!
//! Deliberate differences from k6 1.1.0's output, all cosmetic: lines carry
//! no trailing blanks, and the dotted name column is sized from the names
//! shown (k6 sizes it from every name written twice, which pushes the
//! values ~40 columns right); it never sits left of k6's usual column.
//! As in k6's compact mode, the per-phase HTTP trends (`http_req_blocked`,
//! `…_connecting`, `…_tls_handshaking`, `…_sending`, `…_waiting`,
//! `…_receiving`) and `group_duration` are left out of TOTAL RESULTS; they
//! still appear under THRESHOLDS and in the JSON export.

use crate::metrics::{
    Breakdown, CheckSummary, Metric, MetricKind, MetricSummary, MetricValues, ScopeKind, Section,
    Summary, ThresholdOutcome, Unit,
};

use super::ansi::Paint;
use super::format;
use super::lookup::{self, MetricKey};
use super::table::{self, Cells, INDENT, Row, Widths};

/// How to render the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// ANSI colours (k6's palette). Off for pipes and files.
    pub color: bool,
    /// A heading printed above the summary (a plan name, a fleet run id).
    pub title: Option<String>,
    /// `--summary-mode full`: a section per scenario, with its groups.
    pub full: bool,
}

const PASS: &str = "✓";
const FAIL: &str = "✗";
const SECTION_MARK: &str = "█";
const SUBTITLE_MARK: &str = "↳";

/// Renders `summary` as text, ending with a newline.
pub fn render(summary: &Summary, opts: &TextOptions) -> String {
    let paint = Paint::new(opts.color);
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    if !summary.thresholds.is_empty() {
        sections.push(("THRESHOLDS".into(), thresholds(summary, paint)));
    }
    sections.push((
        "TOTAL RESULTS".into(),
        results(
            &summary.metrics,
            &summary.checks,
            summary,
            paint,
            opts.full,
            true,
        ),
    ));
    if opts.full {
        sections.extend(scopes(summary, paint));
    }
    if !summary.breakdown.is_empty() {
        sections.push(("BREAKDOWN".into(), breakdown(&summary.breakdown, paint)));
    }
    if !summary.matrix.is_empty() {
        sections.push((
            "REGION MATRIX".into(),
            matrix::lines(&summary.matrix, paint),
        ));
    }
    if !summary.notes.is_empty() {
        let notes = summary
            .notes
            .iter()
            .map(|n| format!("{INDENT}- {n}"))
            .collect();
        sections.push(("NOTES".into(), notes));
    }

    let mut out = String::new();
    if let Some(title) = opts
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        out.push_str(&format!("  {}\n\n", paint.bold(title)));
    }
    let rendered: Vec<String> = sections
        .into_iter()
        .map(|(title, mut lines)| {
            while lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            let head = format!("  {SECTION_MARK} {}", paint.bold(&title));
            if lines.is_empty() {
                head
            } else {
                let body: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
                format!("{head}\n\n{}", body.join("\n"))
            }
        })
        .collect();
    out.push_str(&rendered.join("\n\n\n"));
    out.push('\n');
    out
}

// === THRESHOLDS ===

/// Metrics with thresholds in k6's order, each followed by one line per
/// threshold in plan order; submetrics of a thresholded parent show only
/// their tag part, one level deeper.
fn thresholds(summary: &Summary, paint: Paint) -> Vec<String> {
    // Group outcomes by metric, whatever the spelling of the key.
    let mut groups: Vec<(MetricKey, String, Vec<&ThresholdOutcome>)> = Vec::new();
    for outcome in &summary.thresholds {
        let key = MetricKey::parse(&outcome.key);
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, outcomes)) => outcomes.push(outcome),
            None => {
                let label = lookup::find(summary, &outcome.key)
                    .map_or_else(|| outcome.key.clone(), MetricSummary::key);
                groups.push((key, label, vec![outcome]));
            }
        }
    }
    groups.sort_by(|a, b| lookup::k6_order(&a.1, &b.1));

    let mut lines = Vec::new();
    for (key, label, outcomes) in &groups {
        let parent_listed = !key.tags.is_empty()
            && groups
                .iter()
                .any(|(k, _, _)| k.name == key.name && k.tags.is_empty());
        let indent = if parent_listed { "      " } else { INDENT };
        let shown = match (parent_listed, label.find('{')) {
            (true, Some(at)) => &label[at..],
            _ => label.as_str(),
        };
        lines.push(format!("{indent}{shown}"));
        let metric = lookup::find(summary, label);
        for outcome in outcomes {
            let mark = if outcome.ok {
                paint.green(PASS)
            } else {
                paint.red(FAIL)
            };
            let value = threshold_value(outcome, metric, &key.name);
            let mut line = format!(
                "{indent}{mark} {} {}={}",
                paint.white(&format!("'{}'", outcome.source.trim())),
                paint.white(&outcome.aggregation),
                paint.cyan(&value)
            );
            if outcome.aborted {
                line.push_str(&format!(
                    "  {}",
                    paint.red("(abortOnFail: stopped the test)")
                ));
            }
            lines.push(line);
        }
        lines.push(String::new());
    }
    lines
}

/// The observed value of a threshold, formatted like the metric's values.
fn threshold_value(
    outcome: &ThresholdOutcome,
    metric: Option<&MetricSummary>,
    name: &str,
) -> String {
    let Some(observed) = outcome.observed else {
        return "no data".into();
    };
    let catalog = Metric::from_name(name);
    let unit = catalog.map_or(Unit::Default, Metric::unit);
    let kind = metric
        .map(values_kind)
        .or(catalog.map(Metric::kind))
        .unwrap_or(MetricKind::Trend);
    match kind {
        MetricKind::Counter if outcome.aggregation == "rate" => {
            format!("{}/s", humanize(observed, unit))
        }
        MetricKind::Rate => format::percent(observed),
        _ => humanize(observed, unit),
    }
}

fn values_kind(metric: &MetricSummary) -> MetricKind {
    match metric.values {
        MetricValues::Counter { .. } => MetricKind::Counter,
        MetricValues::Gauge { .. } => MetricKind::Gauge,
        MetricValues::Rate { .. } => MetricKind::Rate,
        MetricValues::Trend { .. } => MetricKind::Trend,
    }
}

/// A value in its unit's k6 form (not for `Rate` metrics, which are
/// percentages).
fn humanize(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Data => format::bytes(value),
        Unit::Time => format::duration_ms(value),
        Unit::Default => format::number(value),
    }
}

// === TOTAL RESULTS ===

/// Whether a metric is listed: compact mode leaves out the request
/// phases (see the module docs), full mode shows them as k6 does.
fn shown(metric: &MetricSummary, full: bool) -> bool {
    if full && metric.metric().and_then(Metric::section) == Some(Section::Http) {
        return true;
    }
    !matches!(
        metric.metric(),
        Some(
            Metric::HttpReqBlocked
                | Metric::HttpReqConnecting
                | Metric::HttpReqTlsHandshaking
                | Metric::HttpReqSending
                | Metric::HttpReqWaiting
                | Metric::HttpReqReceiving
                | Metric::GroupDuration
                | Metric::Checks
        )
    )
}

/// Metric groups in k6's order: custom metrics first.
const GROUPS: [(Option<Section>, &str); 4] = [
    (None, "CUSTOM"),
    (Some(Section::Http), "HTTP"),
    (Some(Section::Execution), "EXECUTION"),
    (Some(Section::Network), "NETWORK"),
];

/// One section per scenario (`█ SCENARIO: name`), its groups inside it
/// (`↳ GROUP: name`, indented by depth), as k6's full mode prints them.
fn scopes(summary: &Summary, paint: Paint) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for scope in &summary.scopes {
        let lines = results(&scope.metrics, &scope.checks, summary, paint, true, false);
        match scope.kind {
            ScopeKind::Scenario => sections.push((format!("SCENARIO: {}", scope.name), lines)),
            ScopeKind::Group => {
                let Some((_, body)) = sections.last_mut() else {
                    continue;
                };
                let pad = "  ".repeat(scope.depth.saturating_sub(1));
                while body.last().is_some_and(|l| l.is_empty()) {
                    body.pop();
                }
                body.push(String::new());
                body.push(format!(
                    "{INDENT}{pad}{SUBTITLE_MARK} GROUP: {}",
                    scope.name
                ));
                body.push(String::new());
                let inner = format!("{pad}  ");
                body.extend(lines.into_iter().map(|l| {
                    if l.is_empty() {
                        l
                    } else {
                        format!("{inner}{l}")
                    }
                }));
            }
        }
    }
    sections
}

/// Checks, then the metric groups, then (TOTAL RESULTS only) errors.
fn results(
    metrics: &[MetricSummary],
    checks: &[CheckSummary],
    summary: &Summary,
    paint: Paint,
    full: bool,
    with_errors: bool,
) -> Vec<String> {
    let check_rows = check_counters(metrics, checks, summary.duration);
    let mut metric_groups: Vec<(&str, Vec<Row>)> = Vec::new();
    for (section, title) in GROUPS {
        let mut metrics: Vec<&MetricSummary> = metrics
            .iter()
            .filter(|m| shown(m, full) && m.metric().and_then(Metric::section) == section)
            .collect();
        metrics.sort_by(|a, b| lookup::k6_order(&a.key(), &b.key()));
        let rows: Vec<Row> = metrics.iter().map(|m| metric_row(m, summary)).collect();
        if !rows.is_empty() {
            metric_groups.push((title, rows));
        }
    }
    let error_rows = if with_errors {
        error_rows(summary)
    } else {
        Vec::new()
    };

    let all_names = check_rows
        .iter()
        .chain(metric_groups.iter().flat_map(|(_, rows)| rows))
        .chain(&error_rows)
        .map(|r| r.name.as_str());
    let column = table::name_column(all_names);

    let mut lines = Vec::new();
    if !check_rows.is_empty() {
        let widths = Widths::of(&check_rows);
        lines.extend(
            check_rows
                .iter()
                .map(|r| table::line(r, column, &widths, paint)),
        );
        lines.push(String::new());
        for check in checks {
            lines.extend(check_lines(check, paint));
        }
        lines.push(String::new());
    }
    let metric_widths = Widths::of(metric_groups.iter().flat_map(|(_, rows)| rows));
    for (title, rows) in &metric_groups {
        lines.push(format!("{INDENT}{}", paint.bold(title)));
        lines.extend(
            rows.iter()
                .map(|r| table::line(r, column, &metric_widths, paint)),
        );
        lines.push(String::new());
    }
    if !error_rows.is_empty() {
        let widths = Widths::of(&error_rows);
        lines.push(format!("{INDENT}{}", paint.bold("ERRORS")));
        lines.extend(
            error_rows
                .iter()
                .map(|r| table::line(r, column, &widths, paint)),
        );
        lines.push(String::new());
    }
    lines
}

/// `checks_total`, `checks_succeeded`, `checks_failed`, from the `checks`
/// rate (what thresholds see) or, without it, from the per-check totals.
fn check_counters(
    metrics: &[MetricSummary],
    checks: &[CheckSummary],
    duration: std::time::Duration,
) -> Vec<Row> {
    let from_metric = metrics
        .iter()
        .find(|m| m.tags.is_empty() && m.name == Metric::Checks.name())
        .and_then(|m| match m.values {
            MetricValues::Rate { passes, fails, .. } => Some((passes, fails)),
            _ => None,
        });
    let (passes, fails) = from_metric.unwrap_or_else(|| {
        checks.iter().fold((0u64, 0u64), |(p, f), c| {
            (p.saturating_add(c.passes), f.saturating_add(c.fails))
        })
    });
    if checks.is_empty() && passes == 0 && fails == 0 {
        return Vec::new();
    }
    // Counts beyond u64 cannot happen in a real run; u128 keeps odd
    // input from overflowing.
    let total = u128::from(passes) + u128::from(fails);
    let share = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 / total as f64
        }
    };
    let seconds = duration.as_secs_f64();
    let per_second = if seconds > 0.0 {
        total as f64 / seconds
    } else {
        0.0
    };
    let plain = |name: &str, main: String, extra: String| Row {
        name: name.into(),
        cells: Cells::Plain {
            main,
            extras: vec![extra],
        },
    };
    vec![
        plain(
            "checks_total",
            total.to_string(),
            format::per_second(per_second),
        ),
        plain(
            "checks_succeeded",
            format::percent(share(passes)),
            format!("{passes} out of {total}"),
        ),
        plain(
            "checks_failed",
            format::percent(share(fails)),
            format!("{fails} out of {total}"),
        ),
    ]
}

/// `✓ name`, or for a check that failed at least once, `✗ name` and a
/// `↳  99% — ✓ 990 / ✗ 10` line under it, all red.
fn check_lines(check: &CheckSummary, paint: Paint) -> Vec<String> {
    if check.fails == 0 {
        return vec![format!(
            "{INDENT}{}",
            paint.green(format!("{PASS} {}", check.name).trim_end())
        )];
    }
    let total = u128::from(check.passes) + u128::from(check.fails);
    let pct = 100 * u128::from(check.passes) / total;
    let detail = format!(
        "{SUBTITLE_MARK}  {pct}% — {PASS} {} / {FAIL} {}",
        check.passes, check.fails
    );
    vec![
        format!(
            "{INDENT}{}",
            paint.red(format!("{FAIL} {}", check.name).trim_end())
        ),
        format!("{INDENT}  {}", paint.red(&detail)),
    ]
}

fn metric_row(metric: &MetricSummary, summary: &Summary) -> Row {
    let name = if metric.tags.is_empty() {
        metric.name.clone()
    } else {
        let tags: Vec<String> = metric
            .tags
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("  {{ {} }}", tags.join(","))
    };
    let unit = metric.metric().map_or(Unit::Default, Metric::unit);
    let cells = match &metric.values {
        MetricValues::Counter { count, rate } => Cells::Plain {
            main: humanize(*count, unit),
            extras: vec![format!("{}/s", humanize(*rate, unit))],
        },
        MetricValues::Gauge { value, min, max } => Cells::Plain {
            main: humanize(*value, unit),
            extras: vec![
                format!("min={}", humanize(*min, unit)),
                format!("max={}", humanize(*max, unit)),
            ],
        },
        MetricValues::Rate {
            rate,
            passes,
            fails,
        } => Cells::Plain {
            main: format::percent(*rate),
            extras: vec![format!(
                "{passes} out of {}",
                u128::from(*passes) + u128::from(*fails)
            )],
        },
        MetricValues::Trend { count, .. } => Cells::Trend(
            summary
                .trend_stats
                .iter()
                .map(|stat| {
                    let label = stat.label();
                    let value = match metric.stat(&label) {
                        Some(v) if label == "count" => format::js_to_string(v),
                        Some(v) => humanize(v, unit),
                        None if label == "count" => count.to_string(),
                        None => "n/a".into(),
                    };
                    (label, value)
                })
                .collect(),
        ),
    };
    Row { name, cells }
}

/// Failed requests by class, with their share of all requests when known.
fn error_rows(summary: &Summary) -> Vec<Row> {
    let requests = summary
        .metric(Metric::HttpReqs.name())
        .and_then(|m| match m.values {
            MetricValues::Counter { count, .. } if count > 0.0 => Some(count),
            _ => None,
        });
    summary
        .errors
        .iter()
        .map(|(class, count)| Row {
            name: class.clone(),
            cells: Cells::Plain {
                main: count.to_string(),
                extras: requests
                    .map(|total| format!("{} of requests", format::percent(*count as f64 / total)))
                    .into_iter()
                    .collect(),
            },
        })
        .collect()
}

// === BREAKDOWN ===

/// One table per dimension (agent, region, ...) in order of first
/// appearance: name left, numbers right-aligned.
fn breakdown(rows: &[Breakdown], paint: Paint) -> Vec<String> {
    let mut dimensions: Vec<&str> = Vec::new();
    for row in rows {
        if !dimensions.contains(&row.dimension.as_str()) {
            dimensions.push(&row.dimension);
        }
    }
    let mut lines = Vec::new();
    for dimension in dimensions {
        let header: Vec<String> = [
            dimension, "requests", "failed", "req/s", "p50", "p95", "p99",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let body: Vec<(Vec<String>, bool)> = rows
            .iter()
            .filter(|r| r.dimension == dimension)
            .map(|r| {
                let cells = vec![
                    r.value.clone(),
                    format::thousands(r.requests),
                    format::thousands(r.failed),
                    format::to_fixed(r.rps, 2),
                    format::duration_ms(r.p50_ms),
                    format::duration_ms(r.p95_ms),
                    format::duration_ms(r.p99_ms),
                ];
                (cells, r.failed > 0)
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                body.iter()
                    .map(|(cells, _)| format::display_width(&cells[i]))
                    .chain([format::display_width(&header[i])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let layout = |cells: &[String]| -> Vec<String> {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let fill = " ".repeat(widths[i].saturating_sub(format::display_width(c)));
                    if i == 0 {
                        format!("{c}{fill}")
                    } else {
                        format!("{fill}{c}")
                    }
                })
                .collect()
        };
        lines.push(format!(
            "{INDENT}{}",
            paint.bold(layout(&header).join("  ").trim_end())
        ));
        for (cells, failed) in &body {
            let mut laid = layout(cells);
            if *failed {
                laid[2] = paint.red(&laid[2]);
            }
            lines.push(format!("{INDENT}{}", laid.join("  ")).trim_end().to_owned());
        }
        lines.push(String::new());
    }
    lines
}

mod matrix;

#[cfg(test)]
mod tests;
