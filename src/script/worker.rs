//! The QuickJS runtime a script worker thread's VUs share: one heap, one
//! memory ceiling, one interrupt handler and one module loader for every
//! VU on the thread. Each VU has its own context in it, on its own
//! coroutine (see [`execution`](super::execution) for how several
//! coroutines stay suspended in one runtime).

use std::cell::Cell;
use std::sync::Arc;

use rquickjs::{Context, Runtime};

use super::error::ScriptError;
use super::modules::ScriptModules;
use super::sources::Sources;

/// QuickJS's stack limit, measured from the top of each VU's coroutine
/// stack ([`COROUTINE_STACK`](super::vu::COROUTINE_STACK) leaves room
/// below it for the natives and the switch).
pub const JS_STACK_LIMIT: usize = 768 * 1024;
/// Memory the runtime may allocate with no VU in it: enough for an
/// iteration's working set, low enough that one allocating without bound
/// fails with "out of memory" well before the machine runs out.
pub const MEMORY_BASE: usize = 256 * 1024 * 1024;
/// What each VU the runtime hosts adds to its ceiling.
pub const MEMORY_PER_VU: usize = 2 * 1024 * 1024;

/// The runtime of one script worker thread.
pub struct WorkerRuntime {
    rt: Runtime,
    /// VUs with a context in the runtime now (they raise its ceiling).
    vus: Cell<usize>,
}

impl WorkerRuntime {
    /// A runtime whose module loader reads `sources`, with the stack limit
    /// and the ceiling of an empty worker.
    pub fn new(sources: &Arc<Sources>) -> Result<WorkerRuntime, ScriptError> {
        let rt = Runtime::new().map_err(|e| ScriptError::Runtime(e.to_string()))?;
        rt.set_max_stack_size(JS_STACK_LIMIT);
        rt.set_memory_limit(MEMORY_BASE);
        let modules = || ScriptModules {
            sources: Arc::clone(sources),
        };
        rt.set_loader(modules(), modules());
        Ok(WorkerRuntime {
            rt,
            vus: Cell::new(0),
        })
    }

    /// A new VU's context (all of JavaScript's intrinsics), and its share
    /// of the memory ceiling until the returned guard drops.
    pub fn context(&self) -> Result<(Context, Hosted<'_>), ScriptError> {
        let ctx = Context::full(&self.rt).map_err(|e| ScriptError::Runtime(e.to_string()))?;
        self.vus.set(self.vus.get() + 1);
        self.set_ceiling();
        Ok((ctx, Hosted(self)))
    }

    fn set_ceiling(&self) {
        let ceiling = MEMORY_BASE.saturating_add(MEMORY_PER_VU.saturating_mul(self.vus.get()));
        self.rt.set_memory_limit(ceiling);
    }
}

/// A VU's share of its worker runtime's memory ceiling.
pub struct Hosted<'a>(&'a WorkerRuntime);

impl Drop for Hosted<'_> {
    fn drop(&mut self) {
        let w = self.0;
        w.vus.set(w.vus.get().saturating_sub(1));
        w.set_ceiling();
    }
}
