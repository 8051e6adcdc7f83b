//! Metrics: k6's built-in metrics recorded into exact HDR histograms,
//! interval snapshots in a compact wire form, merging, thresholds and the
//! summary data model. Pure: no tokio, no sockets.

pub mod catalog;
pub mod sample;
pub mod summary;

pub use catalog::{Metric, MetricKind, Section, Unit};
pub use sample::{ErrorKind, HttpSample, Sample, Timings};
pub use summary::{Breakdown, CheckSummary, MetricSummary, MetricValues, Summary, ThresholdOutcome};
