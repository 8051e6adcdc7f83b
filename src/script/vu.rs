//! One VU on its own coroutine.
//!
//! The coroutine gets its worker's runtime with its first resume, joins the
//! worker's open realm (a context it shares with other VUs, see
//! [`super::realm`]), enters it (its QuickJS stack limit measured from the
//! coroutine's stack, see [`super::execution`]), evaluates its own instance
//! of the script's main module (the init context), then waits for commands (see [`super::coroutine`]): run
//! the exported function once, run a lifecycle function, or close. A
//! coroutine is always run to its end (the driver sends `Stop`), never
//! dropped while suspended inside JavaScript.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rquickjs::{CatchResultExt, CaughtError, Ctx, Function, Object, Value};
use tokio::time::Instant;

pub use super::coroutine::{
    HttpCall, IterCmd, PREEMPT_AFTER, Resume, VuCoroutine, Yield, mark_resumed, suspend,
};
use super::coroutine::{interrupt, started};
use super::current;
use super::error::ScriptError;
pub use super::error::describe;
use super::execution::{self, Execution, with_context};
use super::host::{Host, Script};
use super::instance;
use super::native::{Stage, VuState, record};
use super::realm::{Realm, instance_name};
use crate::engine::sink::SampleSink;
use crate::metrics::Sample;

/// Coroutine stack size, in bytes. QuickJS's limit
/// ([`JS_STACK_LIMIT`](super::worker::JS_STACK_LIMIT)) is measured from
/// the coroutine's top and leaves room below it for natives and the
/// switch, so deep recursion ends in a `RangeError`, not on the guard page.
pub const COROUTINE_STACK: usize = 1024 * 1024;
/// Longest the init context may run.
pub const INIT_TIME_LIMIT: Duration = Duration::from_secs(60);

/// What a coroutine needs to build its VU.
pub struct Spawn {
    pub script: Arc<Script>,
    pub host: Option<Arc<Host>>,
    pub stage: Stage,
    pub vu: u64,
    pub sink: Option<SampleSink>,
    /// Set from outside to interrupt running JavaScript (graceful stop).
    pub interrupt: Arc<AtomicBool>,
}

/// A coroutine running `f`, with the stack VUs have.
pub fn coroutine(f: impl FnOnce() -> Yield + Send + 'static) -> VuCoroutine {
    generator::Gn::<Resume>::new_opt(COROUTINE_STACK / std::mem::size_of::<usize>(), f)
}

/// Starts a VU's coroutine; the first resume (`Start`, with the worker's
/// runtime) runs init.
pub fn spawn(s: Spawn) -> VuCoroutine {
    coroutine(move || body(s))
}

/// The state of VU `vu` at init (with `sink`, if any), in `realm`.
pub(super) fn vu_state(s: &mut Spawn, realm: &Realm) -> Rc<RefCell<VuState>> {
    let script_dir = s
        .script
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    Rc::new(RefCell::new(VuState::new(
        Stage::Init,
        s.vu,
        Arc::clone(&s.script.sources),
        script_dir,
        s.host.clone(),
        s.sink.take(),
        Rc::clone(&realm.jars),
    )))
}

/// Enters the worker's runtime on this coroutine: its execution state,
/// the VU as the thread's current one (what stops it, its state, its
/// realm and instance there), the runtime's interrupt handler. JavaScript
/// may run until the guards drop.
pub(super) fn enter<'js>(
    ctx: &Ctx<'js>,
    running: current::Running,
) -> (Execution<'js>, current::Entered) {
    let current = current::enter(running);
    let execution = Execution::enter(ctx);
    execution::set_interrupt_handler(ctx, interrupt);
    // Returned first, so dropped first: the VU is still current while its
    // last jobs run.
    (execution, current)
}

fn body(mut s: Spawn) -> Yield {
    let Some(worker) = started() else {
        return Yield::Closed;
    };
    let (realm, instance, _hosted) = match worker.join() {
        Ok(c) => c,
        Err(e) => {
            let _ = suspend(Yield::Ready(Err(e)));
            return Yield::Closed;
        }
    };
    let state = vu_state(&mut s, &realm);
    let init_deadline = std::time::Instant::now() + INIT_TIME_LIMIT;
    let in_init = Arc::new(AtomicBool::new(true));
    // Checked by QuickJS every few thousand instructions, so even a loop
    // that never calls out stops: when the executor cut the iteration,
    // when the run was stopped (VUs only: teardown still runs after an
    // abort), at the host's deadline (no zombie load, even when a busy
    // loop starves the thread's timers), or when init runs too long.
    let should_stop = {
        let interrupt = Arc::clone(&s.interrupt);
        let in_init = Arc::clone(&in_init);
        let host = s.host.clone();
        let is_vu = s.stage == Stage::Vu;
        Box::new(move || {
            interrupt.load(Ordering::Relaxed)
                || (in_init.load(Ordering::Relaxed) && std::time::Instant::now() > init_deadline)
                || host
                    .as_ref()
                    .is_some_and(|h| h.past_deadline() || (is_vu && h.stop.is_cancelled()))
        })
    };
    let running = current::Running {
        should_stop,
        state: Rc::clone(&state),
        realm: Rc::clone(&realm),
        instance,
    };
    with_context(realm.context(), |ctx| {
        let _entered = enter(&ctx, running);
        let module = match init(&ctx, &state, &s.script, instance) {
            Ok(m) => m,
            Err(e) => {
                let _ = suspend(Yield::Ready(Err(e)));
                return;
            }
        };
        in_init.store(false, Ordering::Relaxed);
        state.borrow_mut().stage = s.stage;
        let mut next = suspend(Yield::Ready(Ok(())));
        let mut data: Option<Value<'_>> = None;
        let mut reuse = Reuse::new(module.clone());
        let mut data_parsed = false;
        loop {
            match next {
                Resume::Iterate(cmd) => {
                    if !data_parsed {
                        data_parsed = true;
                        data = setup_data(&ctx, s.host.as_deref());
                    }
                    let ok = match &mut reuse {
                        Ok(reuse) => iterate(
                            &ctx,
                            reuse,
                            &state,
                            &cmd,
                            data.clone(),
                            s.host.as_deref(),
                            &s.interrupt,
                        ),
                        Err(_) => false,
                    };
                    s.interrupt.store(false, Ordering::Relaxed);
                    next = suspend(Yield::Done(ok));
                }
                Resume::Lifecycle(name, json) => {
                    let arg = match (&json, name) {
                        (Some(j), _) => ctx.json_parse(j.as_str()).ok(),
                        (None, "teardown") => setup_data(&ctx, s.host.as_deref()),
                        (None, _) => None,
                    };
                    let r = lifecycle(&ctx, &module, &state, name, arg);
                    next = suspend(Yield::LifecycleDone(r));
                }
                Resume::Stop => break,
                _ => next = suspend(Yield::Done(false)),
            }
        }
    });
    // The VU's context stays in the worker's runtime until QuickJS
    // collects its cycles (its natives hold the state): the sample sink
    // closes now, so the recorder does not wait for that.
    let sink = state.borrow_mut().sink.take();
    if let Some(mut sink) = sink {
        sink.flush();
    }
    Yield::Closed
}

/// Evaluates the VU's own instance (number `instance` in its realm) of the
/// main module; returns its namespace. The VU must be current.
pub(super) fn init<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<VuState>>,
    script: &Script,
    instance: u32,
) -> Result<Object<'js>, ScriptError> {
    let fail = |e: CaughtError<'_>| ScriptError::Init(describe(&e));
    let realm = current::running()
        .map(|r| Rc::clone(&r.realm))
        .ok_or_else(|| ScriptError::Init("the VU is not running".into()))?;
    realm.prepare(ctx)?;
    realm
        .env(ctx, &script.env)
        .and_then(|env| record::create(ctx, state, env))
        .catch(ctx)
        .map_err(fail)?;
    let name = script.path.to_string_lossy().into_owned();
    let template = realm
        .template(ctx, &name, || script.sources.module(&script.path))
        .catch(ctx)
        .map_err(fail)?;
    let declared = instance::instantiate(ctx, template, &instance_name(&name, instance))
        .catch(ctx)
        .map_err(fail)?;
    let (module, promise) = declared.eval().catch(ctx).map_err(fail)?;
    promise.finish::<()>().catch(ctx).map_err(fail)?;
    // As k6, whose event loop settles init before the first iteration:
    // promise reactions init queued run now.
    while ctx.execute_pending_job() {}
    module.namespace().catch(ctx).map_err(fail)
}

fn setup_data<'js>(ctx: &Ctx<'js>, host: Option<&Host>) -> Option<Value<'js>> {
    let json = host?.setup_data.get()?.as_ref()?;
    ctx.json_parse(json.as_str()).ok()
}

/// What iterations reuse: the functions already looked up by name.
struct Reuse<'js> {
    /// The main module's namespace (its exports).
    module: Object<'js>,
    /// The scenario whose `env` is in `__ENV`.
    scenario: Option<usize>,
    functions: Vec<(String, Function<'js>)>,
}

impl<'js> Reuse<'js> {
    fn new(module: Object<'js>) -> rquickjs::Result<Reuse<'js>> {
        Ok(Reuse {
            module,
            scenario: None,
            functions: Vec::new(),
        })
    }

    fn function(&mut self, name: &str) -> rquickjs::Result<Function<'js>> {
        if let Some((_, f)) = self.functions.iter().find(|(n, _)| n == name) {
            return Ok(f.clone());
        }
        let f: Function<'js> = self.module.get(name)?;
        self.functions.push((name.to_string(), f.clone()));
        Ok(f)
    }
}

/// Runs the exported function once; false when it was interrupted.
fn iterate<'js>(
    ctx: &Ctx<'js>,
    reuse: &mut Reuse<'js>,
    state: &Rc<RefCell<VuState>>,
    cmd: &IterCmd,
    data: Option<Value<'js>>,
    host: Option<&Host>,
    interrupt: &AtomicBool,
) -> bool {
    let started = Instant::now();
    {
        let mut st = state.borrow_mut();
        st.scenario = cmd.scenario;
        st.iter_in_scenario = cmd.iter_in_scenario;
        st.iteration_in_test = host.map_or(0, |h| h.next_iteration(cmd.scenario));
        st.intended = cmd.intended;
        st.stopping = false;
        st.group.clear();
        st.group_starts.clear();
        if !host.is_some_and(|h| h.plan.http.no_cookies_reset) {
            st.jar.clear();
        }
    }
    if reuse.scenario != Some(cmd.scenario) {
        reuse.scenario = Some(cmd.scenario);
        scenario_env(ctx, state, host, cmd.scenario);
    }
    let result = match reuse.function(&cmd.exec) {
        Ok(f) => match data {
            Some(d) => f.call::<_, Value>((d,)).catch(ctx),
            None => f.call::<_, Value>(()).catch(ctx),
        }
        .and_then(|v| settle(ctx, v)),
        Err(e) => Err(CaughtError::Error(e)),
    };
    // Microtasks the iteration queued run before it counts as done.
    while ctx.execute_pending_job() {}
    if result.is_err() {
        // A failed or cut iteration leaves no timer to the next one.
        clear_timers(ctx);
    }
    // Described before the state is borrowed: reading an error's message
    // may run the script's code.
    let message = result.as_ref().err().map(describe);
    let mut st = state.borrow_mut();
    st.iter += 1;
    // Cut short by the driver (a native saw Stop), by the executor (the
    // interrupt flag), or by the run's end (abort, deadline); the
    // iteration that called exec.test.abort() counts, as in k6.
    let cut = st.stopping || interrupt.load(Ordering::Relaxed);
    let run_over =
        host.is_some_and(|h| h.past_deadline() || (h.stop.is_cancelled() && h.aborted().is_none()));
    let interrupted = (!st.aborting && cut) || run_over;
    if let Some(message) = message
        && !interrupted
        && let Some(host) = host
        && host.aborted().is_none()
        && host.record_error(&message)
    {
        eprintln!(
            "ERROR: {message} (VU {}; later occurrences are counted in the summary)",
            st.vu
        );
    }
    while let Some((_, len)) = st.group_starts.pop() {
        st.group.truncate(len);
    }
    if let Some(host) = host {
        host.iteration_ended(interrupted);
    }
    if !interrupted {
        let scenario = u16::try_from(cmd.scenario).unwrap_or(u16::MAX);
        if let Some(sink) = &mut st.sink {
            sink.push(Sample::Iteration {
                scenario,
                duration: started.elapsed(),
                interrupted: false,
            });
            sink.flush_if_stale();
        }
    }
    !interrupted
}

/// Waits for a returned promise (an `async` function) to settle; other
/// values pass through. Nothing a script awaits depends on the driver
/// (natives are synchronous), so the jobs queue settles it.
fn settle<'js>(ctx: &Ctx<'js>, v: Value<'js>) -> Result<Value<'js>, CaughtError<'js>> {
    // The function's promises and timers run to their end (k6's event
    // loop): jobs first, then the next due timer, until neither is left.
    let step = ctx.globals().get::<_, Function>("__volley_loopStep").ok();
    loop {
        while ctx.execute_pending_job() {}
        let Some(step) = &step else { break };
        match step.call::<_, bool>(()).catch(ctx) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(e),
        }
    }
    while ctx.execute_pending_job() {}
    match v.as_promise() {
        Some(p) => p.finish::<Value>().catch(ctx),
        None => Ok(v),
    }
}

/// Drops every pending timer (after an iteration or lifecycle function
/// that failed or was cut).
fn clear_timers(ctx: &Ctx<'_>) {
    if let Ok(clear) = ctx.globals().get::<_, Function>("__volley_timersClear") {
        let _ = clear.call::<_, ()>(());
    }
}

/// Puts the scenario's `env` into `__ENV` (VU code only, as in k6).
fn scenario_env(ctx: &Ctx<'_>, state: &Rc<RefCell<VuState>>, host: Option<&Host>, scenario: usize) {
    let Some(sc) = host.and_then(|h| h.plan.scenarios.get(scenario)) else {
        return;
    };
    if !sc.env.is_empty() {
        let _ = record::merge_env(ctx, state, &sc.env);
    }
}

/// Runs `setup` or `teardown` if the script exports it.
fn lifecycle<'js>(
    ctx: &Ctx<'js>,
    module: &Object<'js>,
    state: &Rc<RefCell<VuState>>,
    name: &'static str,
    arg: Option<Value<'js>>,
) -> Result<Option<String>, ScriptError> {
    {
        let mut st = state.borrow_mut();
        st.group = format!("::{name}");
        st.jar.clear();
    }
    let Ok(f) = module.get::<_, Function>(name) else {
        return Ok(None);
    };
    let result = match arg {
        Some(a) => f.call::<_, Value>((a,)).catch(ctx),
        None => f.call::<_, Value>(()).catch(ctx),
    }
    .and_then(|v| settle(ctx, v));
    while ctx.execute_pending_job() {}
    if result.is_err() {
        clear_timers(ctx);
    }
    if let Some(sink) = &mut state.borrow_mut().sink {
        sink.flush();
    }
    let value =
        result.map_err(|e| ScriptError::Lifecycle(format!("{name}(): {}", describe(&e))))?;
    if value.is_undefined() || (name == "handleSummary" && value.is_null()) {
        return Ok(None);
    }
    if name == "handleSummary" {
        return summary_outputs(ctx, value);
    }
    if let Some(path) = function_inside(ctx, &value) {
        return Err(ScriptError::SetupData(format!(
            "{path} is a function; setup() data must be JSON (plain objects, arrays, strings, numbers, booleans, null)"
        )));
    }
    match ctx.json_stringify(value).catch(ctx) {
        Ok(Some(s)) => s
            .to_string()
            .map(Some)
            .map_err(|e| ScriptError::SetupData(e.to_string())),
        Ok(None) => Ok(None),
        Err(e) => Err(ScriptError::SetupData(describe(&e))),
    }
}

/// `handleSummary`'s result as JSON `{key: string | {bytes: [..]}}`:
/// strings as they are, ArrayBuffers and typed arrays as byte lists.
fn summary_outputs<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Result<Option<String>, ScriptError> {
    const FLATTEN: &str = r#"(function (r) {
      if (r === null || typeof r !== 'object') throw new TypeError('handleSummary() must return an object of {name: content}');
      const out = {};
      for (const k of Object.keys(r)) {
        const v = r[k];
        if (v instanceof ArrayBuffer) out[k] = { bytes: Array.from(new Uint8Array(v)) };
        else if (ArrayBuffer.isView(v)) out[k] = { bytes: Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
        else out[k] = String(v);
      }
      return JSON.stringify(out);
    })"#;
    let flatten: Function<'js> = ctx
        .eval(FLATTEN)
        .map_err(|e| ScriptError::Runtime(e.to_string()))?;
    flatten
        .call::<_, String>((value,))
        .catch(ctx)
        .map(Some)
        .map_err(|e| ScriptError::Lifecycle(format!("handleSummary(): {}", describe(&e))))
}

/// Where a function sits inside `value` (`data.a.b[2]`), if anywhere: k6
/// refuses such setup data, where JSON would silently drop it.
fn function_inside<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Option<String> {
    const FIND: &str = r#"(function find(v, path, seen) {
      if (typeof v === 'function') return path;
      if (v === null || typeof v !== 'object' || seen.has(v)) return null;
      seen.add(v);
      for (const k of Object.keys(v)) {
        const p = find(v[k], Array.isArray(v) ? path + '[' + k + ']' : path + '.' + k, seen);
        if (p !== null) return p;
      }
      return null;
    })"#;
    let find: Function<'js> = ctx.eval(FIND).ok()?;
    let seen: Value<'js> = ctx.eval("new Set()").ok()?;
    find.call::<_, Option<String>>((value.clone(), "data", seen))
        .ok()
        .flatten()
}
