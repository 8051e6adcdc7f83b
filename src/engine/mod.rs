//! The engine: runs a plan (or this machine's share of it) with VUs as
//! lightweight tasks on one tokio runtime.
//!
//! - [`mod@run`]: the top level: scenarios, the recorder loop, thresholds.
//! - [`executor`]: k6's six executors; [`schedule`]: ramping VU steps;
//!   [`planned`]: the VUs a plan needs at once, k6's `vus_max` (both pure).
//! - [`vu`]: one virtual user and its iteration loop; [`lifecycle`]: a
//!   plan's `setup` and `teardown` flows; [`check`]: checks and
//!   captures; [`program`]: flows flattened into ops.
//! - [`sink`]: lock-free sample batches from VUs to the recorder.
//! - [`saturation`]: was the generator itself the bottleneck (pure).
//! - [`http`]: the HTTP/1.1 and HTTP/2 client every VU owns.

pub mod check;
pub mod executor;
pub mod http;
pub mod lifecycle;
pub mod planned;
pub mod program;
pub mod run;
pub mod saturation;
pub mod schedule;
pub mod sink;
pub mod vu;

pub use executor::{Realloc, precise_sleep_until};
pub use run::{
    EndReason, IntervalReport, NoObserver, Observer, PointBatch, RunOptions, RunResult, run,
};
