//! Reporting: turns a [`Summary`](crate::metrics::Summary) into what users
//! read and what tools parse. Pure functions, no I/O.
//!
//! - [`text`]: the end-of-test summary in k6's layout (`█ THRESHOLDS`,
//!   `█ TOTAL RESULTS`, ...), plus Volley's errors, fleet breakdown and notes.
//! - [`export`]: k6's `--summary-export` JSON, key for key, so that tools
//!   written for k6 read Volley's results unchanged.
//! - [`handle_summary`]: the `data` a script's `handleSummary()` receives.
//! - [`junit`]: `--junit`'s JUnit XML (thresholds and checks as test cases).
//! - [`progress`]: the live progress shown while a test runs (terminal
//!   lines fitted to its width, or a plain line for logs).
//! - [`header`]: what will run, printed before the start (k6's execution
//!   description).
//! - [`format`](mod@format): k6's number, duration, byte and percent formatting.
//! - [`html`]: the HTML report, the live dashboard's page and the agent's
//!   `/ui` page.

mod ansi;
pub mod export;
pub mod format;
pub mod handle_summary;
pub mod header;
pub mod html;
pub mod junit;
mod lookup;
mod md5;
pub mod progress;
mod table;
pub mod text;

/// Hex MD5 of `data` (k6's ids for groups and checks; `k6/crypto`).
pub fn md5_hex(data: &[u8]) -> String {
    md5::hex_digest(data)
}

pub use export::{ExportContext, k6_summary_export};
pub use progress::{Progress, ScenarioProgress};
pub use text::{TextOptions, render};
