//! The Volley fleet: how agents on different load nodes trust and talk to each other.
//!
//! - [`ca`]: the fleet certificate authority, per-agent identities (certificate + key) and the trust
//!   bundle every agent verifies its peers against.
//! - [`transport`]: the request/response message transport between agents (QUIC with mutual TLS,
//!   plus an in-memory implementation for testing fleet logic), and clock-offset measurement.

pub mod ca;
pub mod transport;
