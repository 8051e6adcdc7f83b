//! Test plans: k6's option vocabulary in YAML or JSON, validated into a typed
//! [`Plan`].
//!
//! Two stages, as in ripgrep's flags: `raw` mirrors the file with serde
//! (`deny_unknown_fields`), `compile` turns it into [`Plan`], checking every
//! value and naming the field path of anything wrong
//! (`scenarios.main.stages[2].target`). Nothing after this module sees a raw
//! string. Parsing is pure; [`load_file`] is the one entry point that reads
//! files (the plan and its data file).

pub mod template;
pub mod threshold;
pub mod types;

pub use template::{Part, RenderContext, Template};
pub use threshold::{Aggregation, Op, Threshold};
pub use types::*;
