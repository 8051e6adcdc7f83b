//! What every runtime of one script run shares: module sources and opened
//! files (read once per process), `__ENV`, SharedArray contents, the error
//! tally, the abort flag and the setup data.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio_util::sync::CancellationToken;

use super::error::ScriptError;
use super::sources::Sources;

/// Distinct exception messages kept in the tally; the rest are counted
/// under one "(other errors)" line.
const MAX_ERROR_KINDS: usize = 100;
/// Longest exception message kept (in characters).
const MAX_ERROR_CHARS: usize = 500;
use crate::plan::Plan;

/// A script as loaded: its path, its exports and its `options`.
#[derive(Debug, Clone)]
pub struct Script {
    /// Absolute path of the main module (the module name QuickJS sees).
    pub path: PathBuf,
    pub exports: Vec<String>,
    /// `options` as JSON (`{}` when the script exports none).
    pub options: serde_json::Value,
    /// `__ENV`: the process environment, then `-e` values over it.
    pub env: BTreeMap<String, String>,
    pub sources: Arc<Sources>,
}

/// Everything the runtimes of one run share.
#[derive(Debug)]
pub struct Host {
    /// Shared by every VU of the run (never copied per VU).
    pub script: Arc<Script>,
    pub plan: Arc<Plan>,
    /// `setup()`'s result as JSON, once it ran.
    pub setup_data: OnceLock<Option<String>>,
    shared_arrays: Mutex<HashMap<String, Arc<str>>>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// `exec.test.abort()` was called: its message.
    abort: Mutex<Option<String>>,
    /// `exec.test.fail()` was called.
    failed: AtomicBool,
    /// `teardown()` threw or timed out.
    teardown_error: Mutex<Option<ScriptError>>,
    /// A VU's init failed: the run stops with k6's code for it.
    init_error: Mutex<Option<ScriptError>>,
    /// Iterations started so far, per scenario (`exec.scenario.iterationInTest`).
    scenario_iterations: Vec<std::sync::atomic::AtomicU64>,
    /// Cancelled to stop the whole run (an abort).
    pub stop: CancellationToken,
    /// When the test started (for `exec.instance.currentTestRunDuration`).
    pub started: std::time::Instant,
    /// Milliseconds after `started` past which no JavaScript of this run
    /// may go on (`u64::MAX`: none yet).
    deadline_ms: std::sync::atomic::AtomicU64,
    /// The default text summary, for `textSummary()` in `handleSummary`.
    summary_text: OnceLock<String>,
    /// When the load started (after init and setup).
    load_started: OnceLock<std::time::Instant>,
    /// One agent's share of a fleet test: `setup()` ran elsewhere (its
    /// data is given) and `teardown()` runs elsewhere.
    pub lifecycle_elsewhere: bool,
    /// Iterations this instance ended, whole and cut
    /// (`exec.instance.iterationsCompleted`, `.iterationsInterrupted`).
    iterations_ended: [std::sync::atomic::AtomicU64; 2],
    /// The run's live VU counts, once the load starts
    /// (`exec.instance.vusActive`, `.vusInitialized`).
    vu_gauges: OnceLock<Arc<crate::engine::executor::VuGauges>>,
}

impl Host {
    pub fn new(script: Script, plan: Arc<Plan>, stop: CancellationToken) -> Host {
        let scenario_iterations = plan
            .scenarios
            .iter()
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect();
        Host {
            script: Arc::new(script),
            plan,
            setup_data: OnceLock::new(),
            shared_arrays: Mutex::default(),
            errors: Mutex::default(),
            abort: Mutex::default(),
            failed: AtomicBool::new(false),
            teardown_error: Mutex::default(),
            lifecycle_elsewhere: false,
            init_error: Mutex::default(),
            scenario_iterations,
            stop,
            started: std::time::Instant::now(),
            deadline_ms: std::sync::atomic::AtomicU64::new(u64::MAX),
            summary_text: OnceLock::new(),
            load_started: OnceLock::new(),
            iterations_ended: Default::default(),
            vu_gauges: OnceLock::new(),
        }
    }

    /// Counts an iteration that ended, whole or cut.
    pub fn iteration_ended(&self, interrupted: bool) {
        self.iterations_ended[usize::from(interrupted)]
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Gives `exec.instance` the run's live VU counts.
    pub fn watch_vus(&self, gauges: Arc<crate::engine::executor::VuGauges>) {
        let _ = self.vu_gauges.set(gauges);
    }

    /// `exec.instance`: (iterations completed, interrupted, VUs active,
    /// VUs initialised) of this instance now.
    pub fn instance_counts(&self) -> (u64, u64, u64, u64) {
        let ended = |i: usize| self.iterations_ended[i].load(std::sync::atomic::Ordering::Relaxed);
        let (active, initialised) = self.vu_gauges.get().map_or((0, 0), |g| g.read());
        (ended(0), ended(1), active, initialised)
    }

    /// Notes that the load starts now (`exec.instance.currentTestRunDuration`
    /// counts from here).
    pub fn mark_load_started(&self) {
        let _ = self.load_started.set(std::time::Instant::now());
    }

    /// Time since the load started (zero before).
    pub fn test_run_duration(&self) -> std::time::Duration {
        self.load_started
            .get()
            .map_or(std::time::Duration::ZERO, |t| t.elapsed())
    }

    /// Keeps the default summary for `textSummary()`.
    pub fn set_summary_text(&self, text: &str) {
        let _ = self.summary_text.set(text.to_string());
    }

    /// The default summary, once the run is over.
    pub fn summary_text(&self) -> Option<&str> {
        self.summary_text.get().map(String::as_str)
    }

    /// From now on, JavaScript of this run stops `after` from now.
    pub fn set_deadline(&self, after: std::time::Duration) {
        let at = self.started.elapsed().saturating_add(after);
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        self.deadline_ms.store(ms, Ordering::Relaxed);
    }

    /// Is the run past its deadline?
    pub fn past_deadline(&self) -> bool {
        let ms = self.deadline_ms.load(Ordering::Relaxed);
        ms != u64::MAX && self.started.elapsed().as_millis() > u128::from(ms)
    }

    /// A SharedArray's JSON, built by `build` the first time `name` is asked for.
    pub fn shared_array(
        &self,
        name: &str,
        build: impl FnOnce() -> Result<String, String>,
    ) -> Result<Arc<str>, String> {
        if let Some(s) = self.lock_arrays().get(name) {
            return Ok(Arc::clone(s));
        }
        // Built outside the lock: the builder runs JavaScript.
        let text: Arc<str> = Arc::from(build()?);
        Ok(Arc::clone(
            self.lock_arrays().entry(name.to_string()).or_insert(text),
        ))
    }

    fn lock_arrays(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<str>>> {
        self.shared_arrays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an exception that ended an iteration. True the first time
    /// this message is seen (the caller logs it once).
    pub fn record_error(&self, message: &str) -> bool {
        // A message may hold a whole response body: keep its start.
        let message = match message.char_indices().nth(MAX_ERROR_CHARS) {
            Some((at, _)) => &message[..at],
            None => message,
        };
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = errors.get_mut(message) {
            *n += 1;
            return false;
        }
        let key = if errors.len() >= MAX_ERROR_KINDS {
            "(other errors)".to_string()
        } else {
            message.to_string()
        };
        *errors.entry(key).or_default() += 1;
        true
    }

    /// Exceptions by message with their counts, most frequent first.
    pub fn errors(&self) -> Vec<(String, u64)> {
        let errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<(String, u64)> = errors.iter().map(|(k, v)| (k.clone(), *v)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list
    }

    pub fn abort(&self, message: String) {
        let mut abort = self.abort.lock().unwrap_or_else(PoisonError::into_inner);
        if abort.is_none() {
            *abort = Some(message);
        }
        self.stop.cancel();
    }

    /// The abort message, if the script aborted the test.
    pub fn aborted(&self) -> Option<String> {
        self.abort
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The next iteration number of `scenario`, unique in this process.
    pub fn next_iteration(&self, scenario: usize) -> u64 {
        self.scenario_iterations
            .get(scenario)
            .map_or(0, |n| n.fetch_add(1, Ordering::Relaxed))
    }

    /// A VU's init failed: keeps the first error and stops the run.
    pub fn fail_init(&self, e: ScriptError) {
        let mut slot = self
            .init_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            eprintln!("ERROR: {e}");
            *slot = Some(e);
        }
        self.stop.cancel();
    }

    /// The exit code of a failed VU init, if one failed.
    pub fn init_exit_code(&self) -> Option<u8> {
        self.init_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(ScriptError::exit_code)
    }

    pub fn set_teardown_error(&self, e: ScriptError) {
        *self
            .teardown_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e);
    }

    /// The error `teardown()` ended with, taken.
    pub fn take_teardown_error(&self) -> Option<ScriptError> {
        self.teardown_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The exit code `teardown()` asks for, if it failed.
    pub fn teardown_exit_code(&self) -> Option<u8> {
        self.teardown_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(ScriptError::exit_code)
    }

    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}
