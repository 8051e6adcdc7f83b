//! The protocol between a VU's coroutine and its async driver: what the
//! coroutine asks for ([`Yield`]), what it is resumed with ([`Resume`]),
//! and the one way JavaScript code on the coroutine gets there
//! ([`suspend`]).
//!
//! A native that must wait (`http.get`, `sleep`) calls [`suspend`], which
//! switches back to the driver with what to do and returns what the driver
//! resumes it with. JavaScript that runs [`PREEMPT_AFTER`] without waiting
//! is suspended from QuickJS's interrupt handler (`preempt_if_due`) so
//! that the thread's other VUs and timers get a turn.
//!
//! A coroutine that runs JavaScript enters its runtime first
//! ([`execution`]) and makes its VU the thread's current
//! one ([`current`]); [`suspend`] takes both out for the
//! time it is suspended.

use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use super::error::ScriptError;
use super::worker::WorkerRuntime;
use super::{current, execution};
use crate::engine::http::Response;

/// A request the script made, for the driver to send.
pub struct HttpCall {
    pub method: http::Method,
    pub url: String,
    pub headers: Vec<(http::HeaderName, String)>,
    pub body: bytes::Bytes,
    pub timeout: Duration,
    pub keep_body: bool,
}

/// One iteration to run.
#[derive(Debug, Clone)]
pub struct IterCmd {
    pub scenario: usize,
    pub exec: String,
    pub iter_in_scenario: u64,
    pub intended: Option<Instant>,
}

/// What the driver sends into the coroutine.
pub enum Resume {
    /// The first resume: the worker's runtime to run in.
    Start(Rc<WorkerRuntime>),
    Iterate(IterCmd),
    /// Run `setup()`, `teardown()` or `handleSummary(data)` (the name)
    /// once, with this JSON argument (else setup's data, for teardown).
    Lifecycle(&'static str, Option<String>),
    Http(Box<Response>),
    /// The responses of an `http.batch`, in the order asked.
    Batch(Vec<Response>),
    Slept,
    /// Go on after a preemption.
    Continue,
    /// Stop: end the current iteration, or close the runtime.
    Stop,
}

/// What the coroutine asks of the driver.
pub enum Yield {
    /// Init finished (or failed, with the message).
    Ready(Result<(), ScriptError>),
    Http(Box<HttpCall>),
    /// Requests to send in parallel (`http.batch`).
    Batch(Vec<HttpCall>),
    Sleep(Duration),
    /// The iteration ended; false when it was interrupted.
    Done(bool),
    /// A lifecycle function ended: its JSON result, or the error.
    LifecycleDone(Result<Option<String>, ScriptError>),
    /// JavaScript ran for [`PREEMPT_AFTER`] without waiting on anything:
    /// the thread's other VUs and timers get a turn.
    Preempted,
    Closed,
}

/// How long JavaScript may run before it gives its thread back (a busy
/// loop would otherwise starve the thread's other VUs and timers: on one
/// CPU, the engine's own).
pub const PREEMPT_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

thread_local! {
    /// When the coroutine running on this thread was last resumed.
    static RESUMED_AT: std::cell::Cell<Option<std::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// Notes that a coroutine is being resumed on this thread now.
pub fn mark_resumed() {
    RESUMED_AT.with(|r| r.set(Some(std::time::Instant::now())));
}

/// Called from QuickJS's interrupt handler: gives the thread back when the
/// running coroutine has had it for too long. False when the driver says
/// to stop.
fn preempt_if_due() -> bool {
    let due = RESUMED_AT.with(|r| r.get().is_some_and(|t| t.elapsed() >= PREEMPT_AFTER));
    if !due {
        return true;
    }
    matches!(suspend(Yield::Preempted), Resume::Continue)
}

/// The interrupt handler of every worker runtime: true (interrupt) when
/// the running VU should stop; otherwise gives the thread back if the VU
/// has had it for too long.
pub(super) fn interrupt() -> bool {
    current::should_stop() || !preempt_if_due()
}

/// Switches to the driver with `y`; returns what it resumes with. The
/// coroutine's execution state leaves the runtime for the time it is
/// suspended (see [`execution`]).
#[allow(deprecated)] // The free `yield_` is the one way a native reaches its coroutine.
pub fn suspend(y: Yield) -> Resume {
    let running = current::take();
    let parked = execution::park();
    let resumed = generator::yield_::<Resume, Yield>(y).unwrap_or(Resume::Stop);
    execution::unpark(parked);
    current::restore(running);
    resumed
}

/// What the first resume (`Start`) brought a coroutine; called at its top.
#[allow(deprecated)] // As `yield_`: the free function is the coroutine's one way in.
pub fn started() -> Option<Rc<WorkerRuntime>> {
    match generator::get_yield::<Resume>() {
        Some(Resume::Start(worker)) => Some(worker),
        _ => None,
    }
}

/// Resumes `co` with `r`, noting when (for its preemption); what it asks
/// next, or `None` once it ended.
pub fn resume(co: &mut VuCoroutine, r: Resume) -> Option<Yield> {
    mark_resumed();
    co.raw_send(Some(r))
}

/// A suspended coroutine running one VU.
pub type VuCoroutine = generator::Generator<'static, Resume, Yield>;
