//! The Volley fleet: how agents on different load nodes trust and talk to each other, and how
//! one test's results come together.
//!
//! - [`ca`]: the fleet certificate authority, per-agent identities (certificate + key) and the trust
//!   bundle every agent verifies its peers against.
//! - [`transport`]: the request/response message transport between agents (QUIC with mutual TLS,
//!   plus an in-memory implementation for testing fleet logic), and clock-offset measurement.
//! - [`merge`]: the origin's merge of every agent's interval snapshots into the live fleet view,
//!   the fleet-wide totals and the per-source breakdown.
//! - [`store`]: the data directory: test history, the plan bundle, each agent's intervals until
//!   the summary is sealed, and the sealed summary.

pub mod ca;
pub mod merge;
pub mod store;
pub mod transport;
