//! What a local run shows while it goes: the live progress line on a
//! terminal and `--out json=FILE` interval lines.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::engine::{IntervalReport, Observer};
use crate::metrics::aggregate::{Aggregate, trend_percentile_ms};
use crate::metrics::value::Value;
use crate::metrics::{Metric, json_out};
use crate::report::progress;

/// `--out json=FILE`: one JSON object per series per interval.
pub struct JsonLines {
    out: BufWriter<File>,
    path: String,
    failed: bool,
}

impl JsonLines {
    pub fn create(path: &Path) -> anyhow::Result<JsonLines> {
        let file = File::create(path)
            .with_context(|| format!("--out json: cannot create {}", path.display()))?;
        Ok(JsonLines {
            out: BufWriter::new(file),
            path: path.display().to_string(),
            failed: false,
        })
    }

    fn write(&mut self, report: &IntervalReport<'_>) {
        if self.failed {
            return;
        }
        for line in json_out::interval_lines(report.snapshot) {
            if serde_json::to_writer(&mut self.out, &line).is_err() || self.out.write_all(b"\n").is_err() {
                eprintln!("warning: --out json: cannot write {}; no more lines", self.path);
                self.failed = true;
                return;
            }
        }
    }
}

/// The console observer of a local run.
pub struct Console {
    total: Duration,
    show: bool,
    color: bool,
    json: Option<JsonLines>,
    drew: bool,
}

impl Console {
    pub fn new(total: Duration, show: bool, color: bool, json: Option<JsonLines>) -> Console {
        Console {
            total,
            show: show && std::io::stderr().is_terminal(),
            color,
            json,
            drew: false,
        }
    }

    /// Ends the progress line and flushes outputs.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if self.drew {
            eprintln!();
        }
        if let Some(j) = &mut self.json {
            j.out.flush().with_context(|| format!("--out json: cannot write {}", j.path))?;
        }
        Ok(())
    }
}

impl Observer for Console {
    fn on_interval(&mut self, report: &IntervalReport<'_>) {
        if let Some(j) = &mut self.json {
            j.write(report);
        }
        if !self.show {
            return;
        }
        let line = progress::line(&progress_of(report, self.total), self.color);
        eprint!("\r{line}\x1b[K");
        self.drew = true;
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
