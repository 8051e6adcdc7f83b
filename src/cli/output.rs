//! What a local run shows while it goes: the header, live progress lines
//! on a terminal (a plain line every few seconds otherwise); it hands
//! intervals and samples to the run's outputs (`outputs`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::engine::{IntervalReport, Observer, PointBatch};
use crate::metrics::Metric;
use crate::metrics::aggregate::{Aggregate, trend_percentile_ms};
use crate::metrics::value::Value;
use crate::plan::Plan;
use crate::report::progress;

use crate::os;
use crate::outputs::Outputs;

/// How often a plain progress line is written when stderr is not a
/// terminal. k6 writes one a second; every two seconds still shows a hung
/// or failing test within moments in a CI log, halves the log's length on
/// long tests, and matches the cadence at which thresholds are judged.
pub const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// Where the progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// `--quiet`: nothing.
    Quiet,
    /// A terminal: lines redrawn in place, fitted to its width.
    Terminal { color: bool },
    /// A pipe or file: a plain line every [`PLAIN_EVERY`].
    Plain,
}

impl ProgressMode {
    /// From `--quiet`, whether stderr is a terminal, and the colour flags.
    pub fn detect(quiet: bool, no_color: bool) -> ProgressMode {
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Terminal {
                color: !no_color && std::env::var_os("NO_COLOR").is_none(),
            }
        } else {
            ProgressMode::Plain
        }
    }
}

/// The console observer of a local run. Progress goes to stderr, so that
/// stdout carries only results (the summary, or what `handleSummary`
/// writes there) and can be piped into another program.
pub struct Console {
    total: Duration,
    mode: ProgressMode,
    outputs: Outputs,
    /// The scenarios as the header lists them: name, start time, nominal
    /// length and index in the plan.
    scenarios: Vec<(String, Duration, Duration, usize)>,
    /// Lines drawn last time on a terminal (to redraw over them).
    drawn: usize,
    /// When the next plain line is due.
    next_plain: Duration,
}

impl Console {
    pub fn new(plan: &Plan, mode: ProgressMode, outputs: Outputs) -> Console {
        Console {
            total: plan.nominal_duration(),
            mode,
            outputs,
            scenarios: {
                // As the header lists them: by start time, then name.
                let mut list: Vec<_> = plan
                    .scenarios
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.name.clone(), s.start_time, s.executor.duration(), i))
                    .collect();
                list.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
                list
            },
            drawn: 0,
            next_plain: PLAIN_EVERY,
        }
    }

    /// Ends the progress lines and closes the outputs; returns the
    /// summary's notes on points they dropped.
    pub fn finish(&mut self) -> Vec<String> {
        if self.drawn > 0 {
            eprintln!();
            self.drawn = 0;
        }
        self.outputs.finish()
    }

    fn progress(&self, report: &IntervalReport<'_>) -> progress::Progress {
        let mut p = progress_of(report, self.total);
        p.scenarios = self
            .scenarios
            .iter()
            .map(|(name, start, length, index)| progress::ScenarioProgress {
                name: name.clone(),
                start: *start,
                length: *length,
                iterations: scenario_iterations(report, name),
                vus: report.scenario_vus.get(*index).copied(),
            })
            .collect();
        p
    }
}

impl Observer for Console {
    fn wants_points(&self) -> bool {
        self.outputs.wants_points()
    }

    fn on_points(&mut self, batch: &PointBatch<'_>) {
        self.outputs.on_points(batch);
    }

    fn on_interval(&mut self, report: &IntervalReport<'_>) {
        self.outputs.on_interval(report);
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Terminal { color } => {
                let lines =
                    progress::terminal_lines(&self.progress(report), os::terminal_width(), color);
                let mut out = String::new();
                if self.drawn > 0 {
                    // Back to the start of the first line drawn last time.
                    out.push('\r');
                    if self.drawn > 1 {
                        out.push_str(&format!("\x1b[{}A", self.drawn - 1));
                    }
                }
                out.push_str(&lines.join("\x1b[K\n"));
                // Clear the rest of the last line and anything below it.
                out.push_str("\x1b[K\x1b[J");
                let mut stderr = std::io::stderr().lock();
                let _ = stderr.write_all(out.as_bytes());
                let _ = stderr.flush();
                self.drawn = lines.len();
            }
            ProgressMode::Plain => {
                if report.elapsed >= self.next_plain {
                    eprintln!("{}", progress::plain_line(&self.progress(report)));
                    while self.next_plain <= report.elapsed {
                        self.next_plain += PLAIN_EVERY;
                    }
                }
            }
        }
    }
}

/// Iterations a scenario completed so far.
fn scenario_iterations(report: &IntervalReport<'_>, name: &str) -> u64 {
    let filter = [("scenario".to_owned(), name.to_owned())];
    match report.total.metric_value(Metric::Iterations, &filter) {
        Some(Value::Counter(c)) => c as u64,
        _ => 0,
    }
}

/// The progress figures of an interval: rates and p95 of the interval,
/// counts of the whole run so far.
pub fn progress_of(report: &IntervalReport<'_>, total: Duration) -> progress::Progress {
    let mut interval = Aggregate::default();
    let _ = interval.add_interval(report.snapshot);
    let secs = report.snapshot.duration.as_secs_f64();
    let count = |agg: &Aggregate, m: Metric| match agg.metric_value(m, &[]) {
        Some(Value::Counter(c)) => c,
        _ => 0.0,
    };
    let reqs_now = count(&interval, Metric::HttpReqs);
    let errors = match report.total.metric_value(Metric::HttpReqFailed, &[]) {
        Some(Value::Rate { trues, .. }) => trues,
        _ => 0,
    };
    progress::Progress {
        scenarios: Vec::new(),
        elapsed: report.elapsed,
        total,
        vus: report.vus,
        vus_max: report.vus_max,
        iterations: count(report.total, Metric::Iterations) as u64,
        rps: if secs > 0.0 { reqs_now / secs } else { 0.0 },
        p95_ms: match interval.metric_value(Metric::HttpReqDuration, &[]) {
            Some(Value::Trend(h)) if !h.is_empty() => Some(trend_percentile_ms(&h, 95.0)),
            _ => None,
        },
        errors,
        requests: count(report.total, Metric::HttpReqs) as u64,
        phase: None,
    }
}
