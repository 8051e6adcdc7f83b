//! Test plans: k6's option vocabulary in YAML or JSON, validated into a typed
//! [`Plan`].
//!
//! Two stages, as in ripgrep's flags: `raw` mirrors the file with serde
//! (`deny_unknown_fields`), `compile` turns it into [`Plan`], checking every
//! value and naming the field path of anything wrong
//! (`scenarios.main.stages[2].target`). Nothing after this module sees a raw
//! string. Parsing is pure; [`load_file`] is the one entry point that reads
//! files (the plan and its data file).
//!
//! - [`load`]: entry points ([`parse`], [`load_file`], [`from_url`]) and
//!   serde error reporting.
//! - `raw`: the serde mirror of the file.
//! - `compile`: raw → [`Plan`] (scenarios and shortcuts, flows, requests).
//! - [`duration`], `template_parse`, [`threshold_parse`], [`data`]: the
//!   value grammars and the data file; `depth`: a linear nesting check run
//!   before the YAML parser; [`alias`]: a bound on what aliases expand a
//!   YAML document to, also checked before it is parsed into values.
//! - [`dynamic`]: requests, checks and groups a script declares as it runs.
//! - [`net`]: TLS, DNS, source-address and proxy options.
//! - [`system_tags`]: which tags Volley sets on samples.
//! - [`egress`]: where requests may go (allow and deny lists of CIDRs
//!   and host patterns), checked at submit and by the client at connect.
//! - [`admission`]: what a plan asks for against what the machines that
//!   would run it can hold, checked before anything is allocated.
//! - [`error`][]: [`PlanError`].

pub mod admission;
pub mod alias;
pub mod at_rest;
mod compile;
pub mod data;
mod depth;
pub mod duration;
pub mod dynamic;
pub mod egress;
pub mod error;
pub mod load;
pub mod multipart;
pub mod net;
mod raw;
pub mod system_tags;
pub mod template;
mod template_parse;
pub mod threshold;
pub mod threshold_parse;
pub mod types;

#[cfg(test)]
mod tests;

pub use compile::{MAX_UPLOAD_BYTES, is_region_name, parse_trend_stats};
pub use data::{FileSource, FsFiles, Recorded};
pub use duration::{format_duration, format_go_duration, parse_duration, parse_stage};
pub use error::PlanError;
pub use load::{Format, HttpOverrides, LoadOptions, Overrides, from_url, load_file, parse};
pub use multipart::{FilePart, Multipart, PartValue};
pub use system_tags::{SystemTag, SystemTags};
pub use template::{Part, RenderContext, Template};
pub use threshold::{Aggregation, Op, Threshold};
pub use threshold_parse::parse_threshold;
pub use types::*;
