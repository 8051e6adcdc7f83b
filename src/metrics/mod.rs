//! Metrics: k6's built-in metrics recorded into exact HDR histograms,
//! interval snapshots in a compact wire form, merging, thresholds and the
//! summary data model. Pure: no tokio, no sockets.

pub mod aggregate;
pub mod catalog;
pub mod json_out;
pub mod judge;
pub mod recorder;
pub mod sample;
pub mod snapshot;
pub mod summary;
pub mod summary_build;
pub mod tags;
pub mod value;
pub mod wire;

pub use aggregate::Aggregate;
pub use catalog::{Metric, MetricKind, Section, Unit};
pub use recorder::{Recorder, RecorderOptions};
pub use sample::{ErrorKind, HttpSample, Sample, Timings};
pub use snapshot::{SeriesKey, Snapshot};
pub use summary::{
    Breakdown, CheckSummary, MetricSummary, MetricValues, Summary, ThresholdOutcome,
};
pub use tags::TagSet;
pub use value::{MergeError, Value};
pub use wire::{DecodeError, DecodeReason};

#[cfg(test)]
mod tests;
