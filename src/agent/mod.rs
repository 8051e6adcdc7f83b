//! The Volley agent: the long-lived process on each load node that joins the fleet, serves the API
//! and runs its share of every test. [`config`] turns flags and `VOLLEY_*` environment variables
//! into validated [`config::AgentSettings`] before anything is bound; [`node`] binds and wires
//! them; test coordination itself is [`crate::fleet::service`]'s.

pub mod config;
pub mod core;
mod listing;
pub mod node;
mod outputs;
mod renew;
pub mod views;

pub use node::{AgentError, RunningAgent, start};
