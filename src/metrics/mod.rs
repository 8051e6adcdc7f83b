//! Metrics: k6's built-in metrics recorded into HDR histograms with exact
//! min, max and sum beside them,
//! interval snapshots in a compact wire form, merging, thresholds and the
//! summary data model. Pure: no tokio, no sockets.
//!
//! # Flow
//!
//! VUs report compact [`Sample`]s; one [`Recorder`] expands them into
//! tagged series and, every second, drains an interval [`Snapshot`]. The
//! fleet ships snapshots in their binary form ([`wire`]) and merges those
//! of the same interval ([`Snapshot::merge_sources`]); the engine folds
//! each interval into the running [`Aggregate`], which thresholds
//! ([`judge`]) and the end-of-test [`Summary`] read.
//!
//! # Files
//!
//! - `sample`, `summary`: shared contracts (what VUs report, the summary
//!   data model); `catalog` (the metric names and types) is the top-level
//!   [`crate::catalog`], re-exported here, so `plan` can name metrics
//!   without depending on this module.
//! - `tags`: sorted tag sets and the string interner.
//! - `value`: one series' value and the two merge rules.
//! - `trend`: a trend's histogram and exact statistics, percentiles.
//! - `recorder`: sample expansion, series caches, the cardinality bound.
//! - `snapshot`, `wire`: interval snapshots and their binary form.
//! - `aggregate`: running totals, submetric queries, trend statistics.
//! - `judge`: threshold evaluation and abort decisions.
//! - `summary_build`: `Summary::build`.
//! - `json_out`: `--out volley-json` interval lines.
//! - `points`: per-sample outputs (`--out json`, `--out csv`) in k6's formats.
//! - `exposition`: an agent's share for `/metrics` (totals per scenario,
//!   latency buckets from the HDR histogram).
//! - `remote_write`: `--out experimental-prometheus-rw` samples (k6's names,
//!   per-interval aggregates) and their protobuf, snappy-compressed.
//! - `otlp`, `protobuf`: OTLP metrics (`--out opentelemetry`) from interval
//!   snapshots, and the small protobuf writer they and `remote_write` are
//!   encoded with.

pub mod aggregate;
pub use crate::catalog;
pub mod exposition;
pub mod json_out;
pub mod judge;
pub mod matrix;
pub mod otlp;
pub mod points;
pub mod protobuf;
pub mod recorder;
pub mod remote_write;
pub mod sample;
pub mod snapshot;
pub mod summary;
pub mod summary_build;
pub mod tags;
pub mod trend;
pub mod value;
pub mod wire;

pub use aggregate::Aggregate;
pub use catalog::{Metric, MetricKind, Section, Unit};
pub use recorder::{Point, Recorder, RecorderOptions};
pub use sample::{ErrorKind, HttpSample, Sample, Timings};
pub use snapshot::{SeriesKey, Snapshot};
pub use summary::{
    Breakdown, CheckSummary, MatrixCell, MetricSummary, MetricValues, ScopeKind, Summary,
    SummaryScope, ThresholdOutcome,
};
pub use tags::TagSet;
pub use trend::Trend;
pub use value::{MergeError, Value};
pub use wire::{DecodeError, DecodeReason};

#[cfg(test)]
mod tests;
