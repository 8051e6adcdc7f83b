//! Volley: distributed HTTP load testing.
//!
//! # Layout
//!
//! - [`catalog`]: the metrics k6 and Volley know, and a script's custom
//!   ones: what plans name and metrics record. Pure.
//! - [`plan`]: k6-style plans (YAML/JSON) validated into a typed `Plan`. Pure.
//! - [`segment`]: k6 execution segments: deterministic weighted shares of
//!   VUs, iterations and arrival schedules. Pure.
//! - [`metrics`]: built-in metrics, HDR recording, snapshots, merge,
//!   thresholds, the summary model. Pure.
//! - [`engine`]: executors, VUs and the HTTP client that run a plan on one
//!   machine.
//! - [`report`]: the k6-style text summary, the JSON export, live progress.
//! - [`outputs`]: `--out`: k6's JSON and CSV, InfluxDB, per-interval lines;
//!   written by a local run and by a fleet test's origin.
//! - [`script`]: k6 scripts: an embedded JavaScript runtime with k6's
//!   modules, VUs on coroutines.
//! - [`target`]: the built-in HTTP target used by the quickstart and tests.
//! - [`cli`]: the `volley` command line.
//! - [`clock`]: wall-clock time as the fleet shares it; sleeping to an
//!   instant with sub-millisecond precision.
//! - [`relay`]: `volley relay`, a TCP/UDP forwarder that adds delay and
//!   jitter (emulated links between regions).
//!
//! Dependencies point one way: `cli → engine → {plan, metrics, segment}`,
//! `metrics → plan → catalog`.
// `unsafe` only in `script::execution` (QuickJS's execution state across
// coroutine switches), which allows it for itself.
#![deny(unsafe_code)]

pub mod agent;
pub mod api;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod escape;
pub mod fleet;
#[doc(hidden)]
pub mod hostile;
pub mod kube;
pub mod metrics;
pub mod os;
pub mod outputs;
pub mod plan;
pub mod relay;
pub mod report;
pub mod script;
pub mod segment;
pub mod sync;
pub mod target;
