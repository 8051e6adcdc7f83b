//! A run's outputs (`--out`): k6's per-sample JSON and CSV, InfluxDB,
//! Prometheus remote write, OpenTelemetry and Volley's per-interval
//! aggregate lines. `spec` parses what was asked for, `point_file` writes a
//! per-sample file from its own thread, `influxdb` pushes to InfluxDB 1.x
//! from its own thread, `prometheus_rw` pushes per-interval aggregates to a
//! remote-write endpoint, `otel` (settings in `otel_config`) pushes OTLP
//! metrics to an OpenTelemetry collector, each from its own thread
//! (`worker`);
//! `volley_json` writes the interval lines. The encoders are pure, in
//! `metrics::points`, `metrics::remote_write` and `metrics::otlp`.
//!
//! An output takes either every sample's points ([`PointOutput`]) or each
//! interval's aggregates ([`IntervalOutput`]); the latter is what a fleet's
//! origin can write too, from the merged intervals.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::{IntervalReport, PointBatch};
use crate::metrics::points::k6_csv::K6Csv;
use crate::metrics::points::k6_json::K6Json;
use crate::metrics::{Point, SeriesKey, Snapshot};
use crate::plan::Plan;

pub mod fleet;
pub mod influxdb;
pub mod otel;
pub mod otel_config;
pub mod point_file;
pub mod prometheus_rw;
pub mod push;
pub mod spec;
pub mod volley_json;
mod worker;

pub use spec::{KNOWN, OutputSpec};

use point_file::PointFile;
use volley_json::JsonLines;

/// k6 flushes its JSON output every 200 ms.
const JSON_FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Why an output's writer thread gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unjoined {
    /// It panicked.
    Failed,
    /// It was still running when the time was up (it is left behind).
    StillRunning,
}

/// Joins an output's writer thread once it ends, waiting at most `limit`
/// (the thread bounds its own last writes; this guards against one that
/// hangs regardless).
pub fn join_within<T>(thread: JoinHandle<T>, limit: Duration) -> Result<T, Unjoined> {
    let deadline = Instant::now() + limit;
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !thread.is_finished() {
        return Err(Unjoined::StillRunning);
    }
    thread.join().map_err(|_| Unjoined::Failed)
}

/// An output that takes every sample's points.
pub trait PointOutput: Send {
    /// Hands over a batch; never waits.
    fn send(&mut self, time_unix_ns: u128, new_keys: &[SeriesKey], points: &[Point]);

    /// Delivers what is queued (within the output's time limit) and
    /// closes; returns what the summary should say about lost points.
    fn finish(self: Box<Self>) -> Vec<String>;
}

/// An output that takes each interval's aggregates.
pub trait IntervalOutput: Send {
    /// Hands over an interval; `tags` are added to each of its series.
    /// Never waits for a backend.
    fn write(&mut self, snapshot: &Snapshot, tags: &[(&str, &str)]);

    /// Delivers what is queued (within the output's time limit) and
    /// closes; returns what the summary should say about lost points.
    fn finish(self: Box<Self>) -> Vec<String>;
}

/// Every output of a run.
#[derive(Default)]
pub struct Outputs {
    intervals: Vec<Box<dyn IntervalOutput>>,
    points: Vec<Box<dyn PointOutput>>,
}

impl Outputs {
    /// Parses the `--out` values (or `K6_OUT`) and opens every output, so
    /// that a bad value or an unwritable file stops the run before it
    /// starts.
    pub fn open(flags: &[String], plan: &Plan) -> anyhow::Result<Outputs> {
        let env = |k: &str| std::env::var(k).ok();
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let mut outputs = Outputs::default();
        for value in spec::requested(flags, &env) {
            let spec = spec::parse(&value, &env, &vars).map_err(anyhow::Error::msg)?;
            outputs.add(&spec, plan)?;
        }
        Ok(outputs)
    }

    /// The parsed outputs of the flags, for the header.
    pub fn describe(flags: &[String]) -> Vec<String> {
        let env = |k: &str| std::env::var(k).ok();
        let vars: Vec<(String, String)> = std::env::vars().collect();
        spec::requested(flags, &env)
            .iter()
            .filter_map(|v| spec::parse(v, &env, &vars).ok())
            .map(|s| s.describe())
            .collect()
    }

    fn add(&mut self, spec: &OutputSpec, plan: &Plan) -> anyhow::Result<()> {
        let label = spec.describe();
        match spec {
            OutputSpec::VolleyJson { path } => {
                self.intervals.push(Box::new(JsonLines::create(path)?));
            }
            OutputSpec::Json { dest } => self.points.push(Box::new(
                PointFile::open(
                    label,
                    dest,
                    Box::new(K6Json::new(&plan.thresholds)),
                    JSON_FLUSH_EVERY,
                )
                .map_err(anyhow::Error::msg)?,
            )),
            OutputSpec::Csv {
                dest,
                time_format,
                save_interval,
            } => self.points.push(Box::new(
                PointFile::open(
                    label,
                    dest,
                    Box::new(K6Csv::new(*time_format)),
                    *save_interval,
                )
                .map_err(anyhow::Error::msg)?,
            )),
            OutputSpec::Influx(config) => {
                let out = influxdb::InfluxOutput::start(label, config.clone(), None)
                    .map_err(anyhow::Error::msg)?;
                match config.layout {
                    influxdb::Layout::Intervals => self.intervals.push(Box::new(out)),
                    influxdb::Layout::Samples => self.points.push(Box::new(out)),
                }
            }
            OutputSpec::PromRw(config) => self.intervals.push(Box::new(
                prometheus_rw::PromRwOutput::start(label, config.clone(), None)
                    .map_err(anyhow::Error::msg)?,
            )),
            OutputSpec::Otel(config) => self.intervals.push(Box::new(
                otel::OtelOutput::start(label, config.clone(), None).map_err(anyhow::Error::msg)?,
            )),
        }
        Ok(())
    }

    pub fn wants_points(&self) -> bool {
        !self.points.is_empty()
    }

    pub fn on_interval(&mut self, report: &IntervalReport<'_>) {
        for out in &mut self.intervals {
            out.write(report.snapshot, &[]);
        }
    }

    pub fn on_points(&mut self, batch: &PointBatch<'_>) {
        for out in &mut self.points {
            out.send(batch.time_unix_ns, batch.new_keys, batch.points);
        }
    }

    /// Writes out what is queued (within a time limit per output) and
    /// closes every output. Returns the notes for the summary: points
    /// dropped or not written, and why.
    pub fn finish(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        for out in self.intervals.drain(..) {
            notes.extend(out.finish());
        }
        for out in self.points.drain(..) {
            notes.extend(out.finish());
        }
        notes
    }
}

#[cfg(test)]
mod join_tests {
    use super::*;

    #[test]
    fn a_writer_thread_is_joined_within_its_limit() {
        let limit = Duration::from_secs(5);
        assert_eq!(join_within(std::thread::spawn(|| 7), limit), Ok(7));
        let failed = std::thread::spawn(|| -> u8 { panic!("the writer failed") });
        assert_eq!(join_within(failed, limit), Err(Unjoined::Failed));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stuck = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(5)));
        assert_eq!(
            join_within(stuck, Duration::from_millis(20)).map(|_| ()),
            Err(Unjoined::StillRunning)
        );
        drop(tx);
    }
}
