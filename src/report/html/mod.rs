//! Pictures of a test: the one-file HTML report (`--report FILE.html`),
//! the live dashboard of a local run (`--dashboard`) and the agent's `/ui`
//! share one page style and one chart script.
//!
//! - [`timeline`]: the run's interval snapshots folded into points (req/s,
//!   VUs, latency percentiles from merged histograms, failures), bounded.
//! - [`model`]: the serializable view of a test the pages render
//!   ([`ReportData`]): header, time series, thresholds, checks, the metric
//!   table, scenarios, a fleet's breakdown, agents, start spread and
//!   incidents.
//! - [`render`]: the pages as strings, assets inlined (`assets/`), data
//!   embedded as JSON that cannot break out of its `<script>` element.
//!
//! Pure: the files, the dashboard's server and the API route are the
//! callers' (`cli::report_out`, `api::dashboard`, `api::routes`).

pub mod model;
pub mod render;
pub mod timeline;

pub use model::{AgentRow, FleetData, Meta, ReportData, SummaryData};
pub use render::{PageConfig, json_in_script, report_page, ui_page};
pub use timeline::{Point, Timeline};
