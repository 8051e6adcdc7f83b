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
pub mod progress;
mod table;
pub mod text;

/// Hex MD5 of `data` (k6's ids for groups and checks; `k6/crypto`).
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub use export::{ExportContext, k6_summary_export};
pub use progress::{Progress, ScenarioProgress};
pub use text::{TextOptions, render};

#[cfg(test)]
mod tests {
    #[test]
    fn md5_ids_are_k6s() {
        // k6's summary export names the root group by the MD5 of "".
        assert_eq!(super::md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            super::md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }
}
