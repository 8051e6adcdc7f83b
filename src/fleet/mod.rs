//! The Volley fleet: agents on different load nodes running one test.
//!
//! - [`merge`]: the origin's merge of every agent's interval snapshots into
//!   the live fleet view, the fleet-wide totals and the per-source breakdown.
//! - [`store`]: the data directory: test history, the plan bundle, each
//!   agent's intervals until the summary is sealed, and the sealed summary.

pub mod store;
