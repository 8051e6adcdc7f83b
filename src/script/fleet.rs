//! A script on a fleet: `setup()` runs once, on the agent that accepted the
//! test, before the barrier (its result travels to every agent in the
//! bundle); each agent's VUs then start with that data; `teardown(data)`
//! runs once on the same agent after the test ended everywhere.
//!
//! Requests made by `setup()` and `teardown()` on a fleet are sent but not
//! part of the fleet's merged results.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio_util::sync::CancellationToken;

use super::error::ScriptError;
use super::{Host, Script, ScriptRun, Workers};
use crate::engine::http::HttpClientConfig;
use crate::engine::sink::SinkHandle;
use crate::plan::Plan;

/// A one-off run for a lifecycle function: one worker thread, samples
/// dropped.
fn lifecycle_run(
    script: Script,
    plan: Arc<Plan>,
) -> Result<(Arc<ScriptRun>, Arc<HttpClientConfig>, SinkHandle), ScriptError> {
    let http =
        HttpClientConfig::new(&plan.http).map_err(|e| ScriptError::Runtime(e.to_string()))?;
    let workers = Workers::start(1)
        .map_err(|e| ScriptError::Runtime(format!("cannot start a script worker: {e}")))?;
    let host = Host::new(script, plan, CancellationToken::new());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Drained and dropped: these samples are not part of the fleet's results.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let sink = SinkHandle::new(tx, Arc::new(AtomicU64::new(0)));
    Ok((
        Arc::new(ScriptRun::new(Arc::new(host), workers)),
        Arc::new(http),
        sink,
    ))
}

/// Runs `setup()` once if the script exports it; its JSON result.
pub async fn setup(script: Script, plan: Arc<Plan>) -> Result<Option<String>, ScriptError> {
    if !script.exports.iter().any(|e| e == "setup") {
        return Ok(None);
    }
    let (run, http, sink) = lifecycle_run(script, plan)?;
    super::lifecycle::setup(&run, &http, &sink).await?;
    Ok(run.host.setup_data.get().cloned().flatten())
}

/// Runs `teardown(data)` once if the script exports it; an error is
/// returned for the test's incidents.
pub async fn teardown(
    script: Script,
    plan: Arc<Plan>,
    data: Option<String>,
) -> Result<(), ScriptError> {
    if !script.exports.iter().any(|e| e == "teardown") {
        return Ok(());
    }
    let (run, http, sink) = lifecycle_run(script, plan)?;
    let _ = run.host.setup_data.set(data);
    super::lifecycle::teardown(Arc::clone(&run), http, sink).await;
    match run.host.take_teardown_error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The run of one agent's share: the setup data from the bundle, no
/// `setup()` or `teardown()` of its own.
pub fn share_run(
    script: Script,
    plan: Arc<Plan>,
    stop: CancellationToken,
    setup_data: Option<String>,
) -> std::io::Result<Arc<ScriptRun>> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = Workers::start(cpus)?;
    let mut host = Host::new(script, plan, stop);
    host.lifecycle_elsewhere = true;
    let _ = host.setup_data.set(setup_data);
    Ok(Arc::new(ScriptRun::new(Arc::new(host), workers)))
}
