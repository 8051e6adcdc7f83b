//! The VU whose coroutine runs on this thread: what the pieces a worker's
//! VUs share (its runtime's interrupt handler, its module loader, the
//! natives of a realm) ask of the VU they are running for.
//!
//! A VU's coroutine makes itself current when it starts ([`enter`]);
//! [`suspend`](super::coroutine::suspend) takes it out of the slot for the
//! time the coroutine is suspended and puts it back when it is resumed, so
//! the slot names the running VU, or none between switches.

use std::cell::RefCell;
use std::rc::Rc;

use super::native::State;
use super::realm::Realm;

/// What the running VU tells the worker's shared pieces.
pub struct Running {
    /// Should the VU's JavaScript stop now (its iteration was cut, the run
    /// is over, init ran too long)?
    pub should_stop: Box<dyn Fn() -> bool>,
    /// The VU's state, which the realm's natives read and write.
    pub state: State,
    /// The realm the VU runs in, and its instance number there (what its
    /// modules' names end with).
    pub realm: Rc<Realm>,
    pub instance: u32,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Running>>> = const { RefCell::new(None) };
}

/// The running VU's entry in the slot, until dropped (at the end of its
/// coroutine).
pub struct Entered {
    /// What the slot held before (none, unless a coroutine runs inside
    /// another).
    outer: Option<Rc<Running>>,
}

/// Makes `running` the thread's running VU until the returned guard drops.
pub fn enter(running: Running) -> Entered {
    let outer = CURRENT.with(|c| c.borrow_mut().replace(Rc::new(running)));
    Entered { outer }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let outer = self.outer.take();
        CURRENT.with(|c| *c.borrow_mut() = outer);
    }
}

/// Takes the running VU out of the slot (its coroutine is switching away).
pub(super) fn take() -> Option<Rc<Running>> {
    CURRENT.with(|c| c.borrow_mut().take())
}

/// Puts a VU back in the slot (its coroutine was switched back to).
pub(super) fn restore(running: Option<Rc<Running>>) {
    CURRENT.with(|c| *c.borrow_mut() = running);
}

/// The running VU, if one runs.
pub fn running() -> Option<Rc<Running>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Should the running VU's JavaScript stop now? False when no VU runs.
pub fn should_stop() -> bool {
    running().is_some_and(|r| (r.should_stop)())
}

/// The running VU's state, if one runs.
pub fn state() -> Option<State> {
    CURRENT.with(|c| c.borrow().as_ref().map(|r| Rc::clone(&r.state)))
}
