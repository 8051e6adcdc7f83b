//! The Volley fleet: how agents on different load nodes find, trust and
//! talk to each other, and how a test is split, started together and merged.
//!
//! - [`keys`]: every gossip key and the typed [`keys::MemberInfo`] they encode.
//! - [`membership`]: the chitchat wrapper; publishes our keys and gives a
//!   deduplicated view of live members. Gossip carries small control state
//!   only; plans, commands and results travel over QUIC.
//! - [`capacity`]: what this node can give (cgroup quotas, affinity, memory).
//! - [`ca`]: the fleet certificate authority, per-agent identities and the
//!   trust bundle every agent verifies its peers against.
//! - [`identity`]: binding a gossip entry to the certificate that answers
//!   for it (impostors are left out of the view and of tests).
//! - [`transport`]: request/response messaging between agents (QUIC with
//!   mutual TLS, and an in-memory twin), and clock-offset measurement.
//! - [`selector`]: which agents a test selects (labels and `matchExpressions`).
//! - [`allocation`]: capacity-weighted execution segments per agent.
//! - [`protocol`]: the messages agents exchange about a test.
//! - [`origin`]: the agent that accepted a test coordinates it.
//! - [`participant`]: every agent's side of a test it runs a share of.
//! - [`merge`]: the origin's exact merge of per-agent intervals.
//! - [`service`]: the coordination service: one agent's part in fleet
//!   tests (submit policy, trust, routing, aborts, succession) behind one
//!   interface, over a [`membership::Roster`] and a [`transport::Transport`].
//! - [`store`]: the data directory (history, bundles, intervals, summaries).
//! - [`redact`]: what of a bundle is kept at rest (no secret values).

pub mod allocation;
pub mod ca;
pub mod capacity;
pub mod identity;
pub mod keys;
pub mod membership;
pub mod merge;
pub mod origin;
pub mod participant;
pub mod protocol;
pub mod redact;
pub mod selector;
pub mod service;
#[cfg(test)]
mod sim;
pub mod store;
pub mod transport;
