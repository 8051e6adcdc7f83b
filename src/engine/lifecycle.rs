//! A plan document's `setup` and `teardown` flows: each runs once, as VU
//! 0, with its requests, checks and custom metrics recorded like any other
//! (tagged with the first scenario and the group `::setup` or
//! `::teardown`, as k6 tags them).
//!
//! Setup's checks are its assertions: the first that fails stops setup
//! and the test before any VU starts (k6 ends a test whose `setup()`
//! throws, exit 107). A failed request is data like anywhere else: it
//! stops nothing unless a check says so (a check on a request that got no
//! response fails). What setup captured becomes every VU's starting
//! variables, read-only (no flow may capture into them); on a fleet it
//! travels by name ([`SetupValues`]) from the agent that ran setup.
//! Teardown runs once every scenario ended, after an abort too, with
//! setup's values; its checks are data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::http::HttpClientConfig;
use super::sink::SinkHandle;
use super::vu::{Shared, Vu};
use crate::plan::Plan;

/// Setup's captured variables by name, as they travel to a fleet's agents.
pub type SetupValues = BTreeMap<String, String>;

/// Why a lifecycle flow could not run or stopped the test.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Setup(#[from] SetupFailed),
}

/// Why setup stopped the test.
#[derive(Debug, thiserror::Error)]
#[error("setup failed: check \"{check}\" did not pass; no VU was started")]
pub struct SetupFailed {
    pub check: String,
}

/// Runs `setup` when the plan has one and keeps what it captured for the
/// VUs (in `shared`); returns it by name.
pub async fn setup(shared: &Shared, sink: &SinkHandle) -> Result<SetupValues, SetupFailed> {
    if shared.program.setup.is_empty() {
        return Ok(SetupValues::new());
    }
    let mut vu = Vu::new(0, shared, sink.sink());
    let failed = vu.lifecycle(shared, true).await;
    vu.close();
    if let Some(id) = failed {
        let check = shared
            .plan
            .checks
            .get(id.0 as usize)
            .map_or_else(|| format!("#{}", id.0), |c| c.name.clone());
        return Err(SetupFailed { check });
    }
    let values = vu.setup_values(&shared.plan.setup_vars);
    let by_name = to_names(shared, &values);
    let _ = shared.setup_values.set(values);
    Ok(by_name)
}

/// Takes setup's values from another agent: every VU starts with them.
pub fn adopt(shared: &Shared, values: &SetupValues) {
    let plan = &shared.plan;
    let mut vars = vec![None; plan.vars.len()];
    for slot in &plan.setup_vars {
        let i = usize::from(slot.0);
        if let (Some(name), Some(v)) = (plan.vars.get(i), vars.get_mut(i)) {
            *v = values.get(name).cloned();
        }
    }
    let _ = shared.setup_values.set(vars);
}

/// Runs `teardown` when the plan has one (with setup's values).
pub async fn teardown(shared: &Shared, sink: SinkHandle) {
    if shared.program.teardown.is_empty() {
        return;
    }
    let mut vu = Vu::new(0, shared, sink.sink());
    drop(sink);
    vu.lifecycle(shared, false).await;
    vu.close();
}

fn to_names(shared: &Shared, values: &[Option<String>]) -> SetupValues {
    shared
        .plan
        .setup_vars
        .iter()
        .filter_map(|slot| {
            let i = usize::from(slot.0);
            Some((shared.plan.vars.get(i)?.clone(), values.get(i)?.clone()?))
        })
        .collect()
}

/// A run of one lifecycle flow outside any test run (the agent that
/// accepted a fleet test): its samples are dropped, as a script's
/// `setup()` and `teardown()` requests on a fleet are.
fn one_off(plan: Arc<Plan>) -> Result<(Shared, SinkHandle), LifecycleError> {
    let http =
        HttpClientConfig::new(&plan.http).map_err(|e| LifecycleError::Http(e.to_string()))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let sink = SinkHandle::new(tx, Arc::new(AtomicU64::new(0)));
    Ok((Shared::new(plan, http, None), sink))
}

/// Runs `setup` once for a fleet test; its values travel to every agent.
pub async fn setup_once(plan: Arc<Plan>) -> Result<SetupValues, LifecycleError> {
    let (shared, sink) = one_off(plan)?;
    Ok(setup(&shared, &sink).await?)
}

/// Runs `teardown` once for a fleet test, with setup's values.
pub async fn teardown_once(plan: Arc<Plan>, values: &SetupValues) -> Result<(), LifecycleError> {
    let (shared, sink) = one_off(plan)?;
    adopt(&shared, values);
    teardown(&shared, sink).await;
    Ok(())
}
