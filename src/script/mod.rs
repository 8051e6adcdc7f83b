//! k6 scripts: an embedded JavaScript runtime (QuickJS through `rquickjs`)
//! with k6's modules, so `volley run script.js` runs k6 scripts unmodified.
//!
//! # How a script runs
//!
//! - [`load()`]: the init context is evaluated once (a `__VU = 0` runtime)
//!   to read `options` and the exported names; [`options`] turns them into
//!   the same typed [`Plan`](crate::plan::Plan) a YAML plan gives.
//!   [`sources`] reads modules and opened files once per process.
//! - The VUs of a worker thread share one QuickJS runtime ([`worker`]) and,
//!   in groups of up to 256, one context ([`realm`]): its built-ins, the
//!   natives and k6's modules once. Each VU has its own instance of the
//!   script's modules ([`instance`]: compiled once per realm, instantiated
//!   per VU sharing the bytecode), so module-level state is per VU as in
//!   k6, where each VU has a Sobek runtime of its own. Each VU runs on a
//!   stackful coroutine ([`vu`], [`coroutine`]): when the script calls
//!   `http.get` or `sleep`, the native function suspends the coroutine and
//!   hands the request to the async driver ([`driver`]), which runs it on
//!   the VU's own HTTP client and resumes the coroutine with the response.
//!   The script sees a synchronous call; the thread runs other VUs
//!   meanwhile.
//! - VU coroutines live on script worker threads (a current-thread tokio
//!   runtime each); the engine's executors hold a [`driver::ScriptVu`]
//!   handle and ask it for one iteration at a time.
//! - [`native`]: the functions behind k6's modules (`__volley.*`); the
//!   modules themselves are small ES modules in `js/` ([`modules`]).
//!
//! # Bounds
//!
//! Every runtime has a memory limit and a stack limit; init has a time
//! limit, and an iteration can be interrupted (graceful stop, abort) even
//! inside a loop that never calls out (QuickJS's interrupt handler). An
//! exception ends its iteration only; errors are counted by message.

pub mod bundle;
pub mod coroutine;
pub mod current;
pub mod driver;
pub mod error;
pub mod execution;
pub mod fleet;
pub mod host;
pub mod instance;
pub mod lifecycle;
pub mod load;
pub mod modules;
pub mod native;
pub mod options;
pub mod realm;
pub mod sources;
pub mod vu;
pub mod worker;

pub use driver::{ScriptVu, Workers};

/// What the engine needs to run a script's VUs.
#[derive(Debug)]
pub struct ScriptRun {
    pub host: std::sync::Arc<Host>,
    pub workers: Workers,
    /// VUs initialised before the start, by VU id, until an executor takes
    /// them (see [`ScriptRun::take`]).
    pub prewarmed: std::sync::Mutex<std::collections::HashMap<u64, ScriptVu>>,
}

impl ScriptRun {
    pub fn new(host: std::sync::Arc<Host>, workers: Workers) -> ScriptRun {
        ScriptRun {
            host,
            workers,
            prewarmed: std::sync::Mutex::default(),
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, ScriptVu>> {
        self.prewarmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The VU initialised before the start for `id`, if there is one.
    pub fn take(&self, id: u64) -> Option<ScriptVu> {
        self.pool().remove(&id)
    }

    /// Keeps an initialised VU for the executor that will ask for `id`.
    pub fn keep(&self, id: u64, vu: ScriptVu) {
        self.pool().insert(id, vu);
    }

    /// Drops the VUs no executor took (their runtimes close; their sample
    /// channels with them, which the recorder waits for).
    pub fn release_unused(&self) {
        self.pool().clear();
    }
}
pub use error::ScriptError;
pub use host::{Host, Script};
pub use load::load;

/// Is `path` a script (by its extension) rather than a plan document?
pub fn is_script(path: &std::path::Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("js" | "mjs" | "cjs")
    )
}
