//! Tests that span the metrics modules, and the fixture they share.

pub(crate) mod fixture;
mod props;
