//! `--out volley-json=FILE`: Volley's own per-interval aggregate lines
//! (one JSON object per series per interval, `metrics::json_out`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;

use crate::engine::IntervalReport;
use crate::metrics::json_out;

/// `--out volley-json=FILE`: one JSON object per series per interval.
pub struct JsonLines {
    out: BufWriter<File>,
    path: String,
    failed: bool,
}

impl JsonLines {
    pub fn create(path: &Path) -> anyhow::Result<JsonLines> {
        let file = File::create(path)
            .with_context(|| format!("--out volley-json: cannot create {}", path.display()))?;
        Ok(JsonLines {
            out: BufWriter::new(file),
            path: path.display().to_string(),
            failed: false,
        })
    }

    pub fn write(&mut self, report: &IntervalReport<'_>) {
        if self.failed {
            return;
        }
        for line in json_out::interval_lines(report.snapshot) {
            if serde_json::to_writer(&mut self.out, &line).is_err()
                || self.out.write_all(b"\n").is_err()
            {
                eprintln!(
                    "warning: --out volley-json: cannot write {}; no more lines",
                    self.path
                );
                self.failed = true;
                return;
            }
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("--out volley-json: cannot write {}", self.path))
    }
}
