//! `setup()` and `teardown()`: each runs once, in a runtime of its own
//! (`__VU = 0`), with its requests recorded like any other.

use std::sync::Arc;
use std::time::Duration;

use super::ScriptRun;
use super::driver::ScriptVu;
use super::error::ScriptError;
use super::native::Stage;
use crate::engine::http::HttpClientConfig;
use crate::engine::sink::SinkHandle;

/// Room past a stage's own limit before its JavaScript is interrupted.
const RUN_SLACK: Duration = Duration::from_secs(5);

/// k6's default `setupTimeout` and `teardownTimeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn timeout_of(run: &ScriptRun, key: &str) -> Duration {
    run.host
        .script
        .options
        .get(key)
        .and_then(|v| match v {
            serde_json::Value::String(s) => crate::plan::parse_duration(s).ok(),
            serde_json::Value::Number(n) => n
                .as_f64()
                .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok()),
            _ => None,
        })
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Initialises, before the start, the VUs this instance's executors will
/// ask for first (as k6 does), and waits for their init contexts: one that
/// fails stops the run before any load (exit 107). `scenarios` gives each
/// scenario's first VU id (before the `tuple` striping) and its initial VU
/// count.
pub async fn prewarm(
    run: &ScriptRun,
    http: &Arc<HttpClientConfig>,
    sink: &SinkHandle,
    tuple: &crate::segment::ExecutionTuple,
    scenarios: &[(u64, u64)],
) -> Result<(), ScriptError> {
    let mut ids = Vec::new();
    for &(offset, initial) in scenarios {
        for local in 0..tuple.scale(initial) {
            ids.push(offset + tuple.local_to_global(local) + 1);
        }
    }
    let mut vus: Vec<(u64, ScriptVu)> = ids
        .into_iter()
        .map(|id| {
            let vu = ScriptVu::spawn(
                &run.workers,
                Arc::clone(&run.host),
                Arc::clone(http),
                id,
                sink.sink(),
                Stage::Vu,
            );
            (id, vu)
        })
        .collect();
    for (_, vu) in &mut vus {
        vu.ready().await?;
    }
    for (id, vu) in vus {
        run.keep(id, vu);
    }
    Ok(())
}

/// Runs `setup()` if the script exports it and keeps its data for the VUs.
pub async fn setup(
    run: &ScriptRun,
    http: &Arc<HttpClientConfig>,
    sink: &SinkHandle,
) -> Result<(), ScriptError> {
    // After setup, the run's JavaScript ends at the latest when the plan's
    // hard end and teardown's own time are over.
    let arm_run_deadline = || {
        let host = &run.host;
        host.mark_load_started();
        host.set_deadline(
            host.plan.max_duration() + RUN_SLACK + timeout_of(run, "teardownTimeout"),
        );
    };
    if run.host.lifecycle_elsewhere || !run.host.script.exports.iter().any(|e| e == "setup") {
        // A fleet share's data came with the test (already set).
        let _ = run.host.setup_data.set(None);
        arm_run_deadline();
        return Ok(());
    }
    let limit = timeout_of(run, "setupTimeout");
    // Past this even a setup() that never yields is interrupted.
    run.host.set_deadline(limit + RUN_SLACK);
    let mut vu = ScriptVu::spawn(
        &run.workers,
        Arc::clone(&run.host),
        Arc::clone(http),
        0,
        sink.sink(),
        Stage::Setup,
    );
    let data = match tokio::time::timeout(limit, vu.lifecycle("setup", None)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(ScriptError::Timeout {
                stage: "setup",
                secs: limit.as_secs(),
            });
        }
    };
    let _ = run.host.setup_data.set(data);
    arm_run_deadline();
    Ok(())
}

/// Runs `teardown(data)` if the script exports it; an error is kept on the
/// host for the exit code.
pub async fn teardown(run: Arc<ScriptRun>, http: Arc<HttpClientConfig>, sink: SinkHandle) {
    if run.host.lifecycle_elsewhere || !run.host.script.exports.iter().any(|e| e == "teardown") {
        return;
    }
    let limit = timeout_of(&run, "teardownTimeout");
    let mut vu = ScriptVu::spawn(
        &run.workers,
        Arc::clone(&run.host),
        http,
        0,
        sink.sink(),
        Stage::Teardown,
    );
    drop(sink);
    let result = match tokio::time::timeout(limit, vu.lifecycle("teardown", None)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ScriptError::Timeout {
            stage: "teardown",
            secs: limit.as_secs(),
        }),
    };
    if let Err(e) = result {
        eprintln!("ERROR: {e}");
        run.host.set_teardown_error(e);
    }
}
