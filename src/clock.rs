//! Wall-clock time as the fleet shares it (Unix milliseconds and their
//! monotonic instants), and sleeping until an instant more precisely than
//! tokio's timer allows.
//!
//! tokio's timer wheel ticks in whole milliseconds and rounds deadlines up,
//! so a plain `sleep_until` wakes up to a millisecond late, more on a busy
//! runtime. Where that error is the thing being measured (the fleet's start
//! barrier, `volley target`'s `/delay/MS`), the last stretch before the
//! deadline is spent yielding to the scheduler instead of sleeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{Instant, sleep_until};

/// Wall-clock milliseconds since the Unix epoch (0 before it).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Wall-clock microseconds since the Unix epoch (0 before it).
pub fn unix_us_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The monotonic instant matching a wall-clock time (ms since the epoch);
/// now if that time is further back than the monotonic clock goes.
pub fn instant_at_unix_ms(ms: u64) -> Instant {
    let target = UNIX_EPOCH + Duration::from_millis(ms);
    let now_sys = SystemTime::now();
    let now = Instant::now();
    match target.duration_since(now_sys) {
        Ok(ahead) => now + ahead,
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    }
}

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
