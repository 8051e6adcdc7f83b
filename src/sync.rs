//! Locks that outlive a panicked holder: the state behind them is plain
//! data that every writer leaves consistent, so a poisoned lock is used as
//! is rather than spreading the panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, whether or not a holder panicked.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
