//! Sleeping until an instant more precisely than tokio's timer allows.
//!
//! tokio's timer wheel ticks in whole milliseconds and rounds deadlines up,
//! so a plain `sleep_until` wakes up to a millisecond late, more on a busy
//! runtime. Where that error is the thing being measured (the fleet's start
//! barrier, `volley target`'s `/delay/MS`), the last stretch before the
//! deadline is spent yielding to the scheduler instead of sleeping.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

/// Sleeps on the timer until `spin` before `at`, then yields until `at`.
///
/// The task stays runnable during the final `spin`, so other tasks still
/// run but the worker thread does not idle: keep `spin` short (one or two
/// timer ticks) and use this only where sub-millisecond precision matters.
pub async fn sleep_until_precise(at: Instant, spin: Duration) {
    if let Some(early) = at.checked_sub(spin) {
        sleep_until(early).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_wakes_early() {
        for ms in [0u64, 1, 3, 10] {
            let at = Instant::now() + Duration::from_millis(ms);
            sleep_until_precise(at, Duration::from_millis(1)).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
        }
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_returns_at_once() {
        let at = Instant::now();
        sleep_until_precise(at, Duration::from_millis(2)).await;
        assert!(Instant::now() >= at);
    }
}
