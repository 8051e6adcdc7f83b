//! The fleet: how Volley agents find each other and what they tell each
//! other by gossip.
//!
//! - [`keys`]: every gossip key and the typed [`keys::MemberInfo`] they encode.
//! - [`membership`]: chitchat wrapper; publishes our keys, gives a
//!   deduplicated view of live members.
//! - [`capacity`]: what this node can give (cgroup quotas, affinity, memory).
//!
//! Gossip carries small control state only; plans, commands and results
//! travel over QUIC.

pub mod capacity;
pub mod keys;
pub mod membership;
