//! `--out volley-json=FILE`: Volley's own per-interval aggregate lines
//! (one JSON object per series per interval, `metrics::json_out`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;

use crate::metrics::{Snapshot, json_out};

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

    /// Writes out what is buffered.
    fn flush(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("--out volley-json: cannot write {}", self.path))
    }
}

impl super::IntervalOutput for JsonLines {
    fn write(&mut self, snapshot: &Snapshot, tags: &[(&str, &str)]) {
        if self.failed {
            return;
        }
        for mut line in json_out::interval_lines(snapshot) {
            if let Some(own) = line["tags"].as_object_mut() {
                for &(k, v) in tags {
                    own.entry(k).or_insert_with(|| v.into());
                }
            }
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

    fn finish(mut self: Box<Self>) -> Vec<String> {
        match self.flush() {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("{e:#}")],
        }
    }
}
