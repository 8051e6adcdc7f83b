//! The engine: everything that runs a plan on one machine.

pub mod http;
