//! The QuickJS runtime a script worker thread's VUs share: one heap, one
//! memory ceiling, one interrupt handler and one module loader for every
//! VU on the thread. VUs join the thread's open [`Realm`] (a context
//! several VUs share, see [`realm`](super::realm)), each on its own
//! coroutine (see [`execution`](super::execution) for how several
//! coroutines stay suspended in one runtime).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::Runtime;

use super::error::ScriptError;
use super::modules::ScriptModules;
use super::realm::Realm;
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
    /// The realm new VUs join, until it has taken all it will (dropped
    /// before the runtime).
    open: RefCell<Option<Rc<Realm>>>,
    rt: Runtime,
    /// VUs in the runtime now (they raise its ceiling).
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
            open: RefCell::new(None),
            rt,
            vus: Cell::new(0),
        })
    }

    /// The realm a new VU joins, its instance number there, and its share
    /// of the memory ceiling until the returned guard drops.
    pub fn join(&self) -> Result<(Rc<Realm>, u32, Hosted<'_>), ScriptError> {
        let mut open = self.open.borrow_mut();
        let admitted = open.as_ref().and_then(|r| Some((Rc::clone(r), r.admit()?)));
        let (realm, instance) = match admitted {
            Some(a) => a,
            None => {
                let realm = Rc::new(Realm::new(&self.rt)?);
                let instance = realm
                    .admit()
                    .ok_or_else(|| ScriptError::Runtime("a new realm admits no VU".into()))?;
                *open = Some(Rc::clone(&realm));
                (realm, instance)
            }
        };
        self.vus.set(self.vus.get() + 1);
        self.set_ceiling();
        Ok((realm, instance, Hosted(self)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::realm::VUS_PER_REALM;

    #[test]
    fn a_full_realm_sends_the_next_vu_to_a_new_one() {
        let worker = WorkerRuntime::new(&Arc::new(Sources::default())).expect("a runtime");
        let mut joined = Vec::new();
        for i in 0..=VUS_PER_REALM {
            let (realm, instance, hosted) = worker.join().expect("a realm");
            assert_eq!(instance, i % VUS_PER_REALM);
            joined.push((realm, hosted));
        }
        let first = &joined[0].0;
        assert!(
            joined[..VUS_PER_REALM as usize]
                .iter()
                .all(|(r, _)| Rc::ptr_eq(r, first))
        );
        assert!(!Rc::ptr_eq(&joined[VUS_PER_REALM as usize].0, first));
        assert_eq!(worker.vus.get(), VUS_PER_REALM as usize + 1);
        drop(joined);
        assert_eq!(worker.vus.get(), 0);
    }
}
