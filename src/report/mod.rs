//! Reporting: turns a [`Summary`](crate::metrics::Summary) into what users
//! read and what tools parse. Pure functions, no I/O.
//!
//! - [`format`]: k6's number, duration, byte and percent formatting.

mod ansi;
pub mod format;
