//! Several coroutines suspended inside JavaScript of one QuickJS runtime.
//!
//! QuickJS keeps the running execution's frame chain
//! (`rt->current_stack_frame`, frames that live on the C stack), its stack
//! bounds and its pending jobs in the *runtime*. With two coroutines
//! suspended in one runtime, the second one's bottom frame would link to a
//! frame on the first one's stack (a backtrace would walk a dangling
//! pointer once that coroutine is gone), the stack check would measure the
//! wrong stack, and one VU would run another's promise jobs.
//!
//! So a coroutine [`Execution::enter`]s its runtime before running any
//! JavaScript: its stack bounds are measured from there and its state
//! starts empty. [`park`] swaps the state out of the runtime before every
//! switch away from the coroutine and [`unpark`] swaps it back after the
//! switch back (`JS_SwapExecutionState`, Volley's patch to QuickJS:
//! `vendor/rquickjs-sys/PATCHES.md`). Between switches the runtime holds no
//! coroutine's frames or jobs.
//!
//! This is the one module with `unsafe` code: the patch's C function, and a
//! `Ctx` made without rquickjs's runtime lock ([`with_context`]).
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{c_int, c_void};

use rquickjs::{Context, Ctx, qjs};

/// What QuickJS keeps of a running execution in its runtime: the C struct
/// `JSExecutionState` of Volley's patch. Zeroed, it is an empty state. It
/// must not move once swapped (its job list links to it), so it lives in a
/// box for its whole life.
#[repr(C)]
struct ExecutionState {
    /// `JSStackFrame *`: the chain of running frames.
    stack_frame: *mut c_void,
    stack_top: usize,
    stack_limit: usize,
    /// A `struct list_head` (prev, next): pending jobs.
    job_list: [*mut c_void; 2],
}

impl ExecutionState {
    const EMPTY: ExecutionState = ExecutionState {
        stack_frame: std::ptr::null_mut(),
        stack_top: 0,
        stack_limit: 0,
        job_list: [std::ptr::null_mut(); 2],
    };

    /// No frames and no pending jobs (an empty list links to itself).
    fn is_idle(&self) -> bool {
        let head = std::ptr::from_ref(&self.job_list)
            .cast::<c_void>()
            .cast_mut();
        self.stack_frame.is_null() && (self.job_list[1].is_null() || self.job_list[1] == head)
    }
}

unsafe extern "C" {
    /// Exchanges the runtime's execution state with `*state` (Volley's
    /// patch to QuickJS).
    fn JS_SwapExecutionState(rt: *mut qjs::JSRuntime, state: *mut ExecutionState);
}

/// The execution a coroutine entered: its context, runtime, and where its
/// state is kept while it is suspended.
#[derive(Clone, Copy)]
struct Running {
    ctx: *mut qjs::JSContext,
    rt: *mut qjs::JSRuntime,
    state: *mut ExecutionState,
}

thread_local! {
    /// The execution of the coroutine running on this thread, if it
    /// entered one.
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
}

/// A coroutine's own execution in a QuickJS runtime, from
/// [`Execution::enter`] until dropped: its frames, its stack bounds
/// (measured from where it entered) and its pending jobs. Dropped on the
/// coroutine, with no JavaScript of it running; the jobs still pending run
/// then (no job outlives its coroutine: it would run on another).
pub struct Execution<'js> {
    /// Kept so the context outlives the execution.
    ctx: Ctx<'js>,
    running: Running,
    /// The execution this one displaced on the thread (none, unless a
    /// coroutine is run from inside another).
    outer: Option<Running>,
}

impl<'js> Execution<'js> {
    /// Makes the calling coroutine the runtime's running execution, with an
    /// empty state and QuickJS's stack limit measured from here: call it at
    /// the top of the coroutine, before any JavaScript runs on it.
    pub fn enter(ctx: &Ctx<'js>) -> Execution<'js> {
        let raw = ctx.as_raw().as_ptr();
        // SAFETY: `raw` is a live context (kept alive by the clone of `ctx`
        // below); the state is boxed (it must not move) and freed in
        // `drop`, once it is swapped out for good.
        let running = unsafe {
            let rt = qjs::JS_GetRuntime(raw);
            let state = Box::into_raw(Box::new(ExecutionState::EMPTY));
            JS_SwapExecutionState(rt, state);
            qjs::JS_UpdateStackTop(rt);
            Running {
                ctx: raw,
                rt,
                state,
            }
        };
        let outer = RUNNING.replace(Some(running));
        Execution {
            ctx: ctx.clone(),
            running,
            outer,
        }
    }
}

impl Drop for Execution<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            while self.ctx.execute_pending_job() {}
        }
        let Running { rt, state, .. } = self.running;
        // SAFETY: the coroutine is running (it drops this), so the runtime
        // holds its state and `state` the one it displaced; `state` is
        // from `Box::into_raw` in `enter`.
        unsafe {
            JS_SwapExecutionState(rt, state);
            if !(*state).is_idle() {
                // Frames or jobs left behind (a bug): give them back to the
                // runtime, which frees jobs with itself, rather than leave
                // them linked to freed memory.
                debug_assert!(
                    std::thread::panicking(),
                    "a coroutine left JavaScript running or jobs pending"
                );
                JS_SwapExecutionState(rt, state);
            }
            if (*state).is_idle() {
                drop(Box::from_raw(state));
            }
        }
        RUNNING.set(self.outer);
    }
}

/// The running coroutine's execution, swapped out of its runtime: what
/// [`park`] returns and [`unpark`] takes back.
#[must_use]
pub struct Parked(Option<Running>);

/// Takes the running coroutine's execution state out of its runtime, just
/// before the coroutine switches away.
pub fn park() -> Parked {
    let running = RUNNING.take();
    if let Some(r) = running {
        // SAFETY: `r` is the execution this coroutine entered and has not
        // dropped (it would have cleared `RUNNING`): its context and state
        // are alive, and only this thread touches them.
        unsafe {
            debug_assert!(
                !qjs::JS_HasException(r.ctx),
                "invariant: no exception is pending across a switch"
            );
            JS_SwapExecutionState(r.rt, r.state);
        }
    }
    Parked(running)
}

/// Puts a coroutine's execution state back into its runtime, just after
/// the coroutine was switched back to.
pub fn unpark(parked: Parked) {
    if let Some(r) = parked.0 {
        // SAFETY: as in `park`; between switches the runtime holds no
        // coroutine's state, so this restores exactly what `park` took.
        unsafe { JS_SwapExecutionState(r.rt, r.state) };
    }
    RUNNING.set(parked.0);
}

/// Runs `f` on `context` without taking its runtime's lock: rquickjs's
/// `Context::with` holds the lock for the whole call, which a coroutine
/// suspended inside JavaScript would keep while the runtime's other
/// coroutines run (and they would find it taken).
pub fn with_context<R>(context: &Context, f: impl for<'js> FnOnce(Ctx<'js>) -> R) -> R {
    // SAFETY: the lock serialises a runtime's users. A runtime never leaves
    // its thread (`Runtime` is not `Send`), and the coroutines sharing it
    // take turns only at `suspend`, which swaps their execution state. The
    // `for<'js>` bound keeps values from outliving the borrow of `context`.
    let ctx = unsafe { Ctx::from_raw(context.as_raw()) };
    f(ctx)
}

/// Has QuickJS call `handler` every few thousand instructions of any
/// JavaScript in `ctx`'s runtime: true interrupts that JavaScript (an
/// uncatchable error). `handler` may suspend the running coroutine.
/// Installed directly rather than through rquickjs, whose handler is a
/// `FnMut` that would be borrowed again by the next coroutine while the
/// first is suspended inside it.
pub fn set_interrupt_handler(ctx: &Ctx<'_>, handler: fn() -> bool) {
    unsafe extern "C" fn trampoline(_rt: *mut qjs::JSRuntime, opaque: *mut c_void) -> c_int {
        // SAFETY: `opaque` is the `fn() -> bool` given below, cast to a
        // data pointer (the same size on every target Volley builds for).
        let handler = unsafe { std::mem::transmute::<*mut c_void, fn() -> bool>(opaque) };
        // A panic must not unwind into C: it interrupts instead.
        c_int::from(std::panic::catch_unwind(handler).unwrap_or(true))
    }
    // SAFETY: `ctx` is a live context; the function pointer lives forever.
    unsafe {
        qjs::JS_SetInterruptHandler(
            qjs::JS_GetRuntime(ctx.as_raw().as_ptr()),
            Some(trampoline),
            handler as *mut c_void,
        );
    }
}

#[cfg(test)]
mod tests {
    use rquickjs::{CatchResultExt, Function, Runtime};

    use super::*;
    use crate::script::coroutine::{Resume, VuCoroutine, Yield, suspend};

    /// Coroutine stack, in words, and QuickJS's stack limit within it.
    const STACK_WORDS: usize = 256 * 1024 / std::mem::size_of::<usize>();
    const JS_STACK_LIMIT: usize = 128 * 1024;

    /// A runtime with one context whose global `pause()` suspends the
    /// coroutine calling it, and the test's functions defined.
    fn runtime(functions: &str) -> (Runtime, Context) {
        let rt = Runtime::new().expect("a runtime");
        rt.set_max_stack_size(JS_STACK_LIMIT);
        let context = Context::full(&rt).expect("a context");
        with_context(&context, |ctx| {
            let pause = Function::new(ctx.clone(), || {
                let _ = suspend(Yield::Preempted);
            })
            .expect("the pause function");
            ctx.globals().set("pause", pause).expect("set pause");
            ctx.eval::<(), _>(functions)
                .catch(&ctx)
                .expect("the test's functions");
        });
        (rt, context)
    }

    thread_local! {
        /// The test's context, for its coroutines (a coroutine's closure
        /// must be `Send`; a context is not).
        static CONTEXT: std::cell::RefCell<Option<Context>> = const { std::cell::RefCell::new(None) };
    }

    /// A coroutine that evaluates `source` in `context`, pausing where it
    /// calls `pause()`; it ends with the result as a string.
    fn coroutine(context: &Context, source: &'static str) -> VuCoroutine {
        CONTEXT.with(|c| *c.borrow_mut() = Some(context.clone()));
        generator::Gn::<Resume>::new_opt(STACK_WORDS, move || {
            let context = CONTEXT
                .with(|c| c.borrow().clone())
                .expect("the test's context is set");
            let result = with_context(&context, |ctx| {
                let _execution = Execution::enter(&ctx);
                ctx.eval::<String, _>(source)
                    .catch(&ctx)
                    .map_err(|e| e.to_string())
            });
            Yield::LifecycleDone(Ok(Some(result.unwrap_or_else(|e| format!("threw {e}")))))
        })
    }

    /// Resumes `co` until it ends; its result.
    fn finish(co: &mut VuCoroutine) -> String {
        loop {
            match co.raw_send(Some(Resume::Continue)) {
                Some(Yield::LifecycleDone(Ok(Some(s)))) if co.is_done() => return s,
                Some(Yield::Preempted) => {}
                _ => panic!("the coroutine neither paused nor ended with a result"),
            }
        }
    }

    #[test]
    fn a_backtrace_names_only_its_own_coroutines_frames() {
        let (_rt, context) = runtime(
            "function aInner() { pause(); return new Error('a').stack; }\n\
             function aOuter() { return aInner(); }\n\
             function bInner() { pause(); return new Error('b').stack; }\n\
             function bOuter() { return bInner(); }\n",
        );
        let mut a = coroutine(&context, "aOuter()");
        let mut b = coroutine(&context, "bOuter()");
        // Both suspend inside JavaScript, b's frames above a's in time.
        assert!(matches!(
            a.raw_send(Some(Resume::Continue)),
            Some(Yield::Preempted)
        ));
        assert!(matches!(
            b.raw_send(Some(Resume::Continue)),
            Some(Yield::Preempted)
        ));
        // a finishes and its stack is freed while b is still suspended.
        let a_stack = finish(&mut a);
        drop(a);
        let b_stack = finish(&mut b);
        assert!(
            a_stack.contains("aInner") && a_stack.contains("aOuter"),
            "{a_stack}"
        );
        assert!(
            b_stack.contains("bInner") && b_stack.contains("bOuter"),
            "{b_stack}"
        );
        assert!(
            !b_stack.contains("aInner") && !b_stack.contains("aOuter"),
            "{b_stack}"
        );
        assert!(!a_stack.contains("bInner"), "{a_stack}");
    }

    #[test]
    fn recursion_that_pauses_meets_its_own_stack_limit() {
        // Each coroutine pauses every few levels while another one runs:
        // the limit each meets must be its own, measured from where it
        // entered (a limit measured from where it was resumed would creep
        // down its stack into the guard page).
        let (_rt, context) = runtime(
            "function deep() {\n\
               let depth = 0;\n\
               function down(n) { depth = n; if (n % 20 === 0) pause(); return 1 + down(n + 1); }\n\
               try { return 'no limit ' + down(0); } catch (e) { return String(e) + ' at ' + depth; }\n\
             }\n",
        );
        let depth = |r: &str| -> u32 {
            r.strip_prefix("RangeError: Maximum call stack size exceeded at ")
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("not a stack overflow: {r}"))
        };
        // Alone, a coroutine reaches the depth the limit allows.
        let mut alone = coroutine(&context, "deep()");
        assert!(matches!(
            alone.raw_send(Some(Resume::Continue)),
            Some(Yield::Preempted)
        ));
        let expected = depth(&finish(&mut alone));
        let mut cos: Vec<VuCoroutine> = (0..3).map(|_| coroutine(&context, "deep()")).collect();
        let mut results = vec![None; cos.len()];
        while results.iter().any(Option::is_none) {
            for (co, result) in cos.iter_mut().zip(results.iter_mut()) {
                if result.is_some() {
                    continue;
                }
                match co.raw_send(Some(Resume::Continue)) {
                    Some(Yield::Preempted) => {}
                    Some(Yield::LifecycleDone(Ok(Some(s)))) => *result = Some(s),
                    _ => panic!("the coroutine neither paused nor ended with a result"),
                }
            }
        }
        for r in results.into_iter().flatten() {
            // Taking turns, each still has its whole limit (with another's,
            // it would overflow at once, or run into its guard page).
            assert!(depth(&r).abs_diff(expected) <= 2, "{r}, alone {expected}");
        }
    }
}
