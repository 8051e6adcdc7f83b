//! Reporting: turns a [`Summary`](crate::metrics::Summary) into what users
//! read and what tools parse. Pure functions, no I/O.
//!
//! - [`export`]: k6's `--summary-export` JSON, key for key, so that tools
//!   written for k6 read Volley's results unchanged.
//! - [`format`]: k6's number, duration, byte and percent formatting.

mod ansi;
pub mod export;
pub mod format;
mod lookup;
mod md5;

pub use export::{ExportContext, k6_summary_export};
