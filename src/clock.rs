//! Wall-clock time as the fleet shares it (Unix milliseconds and their
//! monotonic instants), and sleeping until an instant more precisely than
//! tokio's timer allows.
//!
//! tokio's timer wheel ticks in whole milliseconds and rounds deadlines up,
//! so a plain `sleep_until` wakes up to a millisecond late, more on a busy
//! runtime. Where that error is the thing being measured (the fleet's start
//! barrier, `volley target`'s `/delay/MS`), the last stretch before the
//! deadline is spent yielding to the scheduler instead of sleeping.
//!
//! Coordination reads the wall clock through a [`WallClock`]: the system's
//! on every agent, a simulated one (tokio's clock, paused in tests, plus a
//! fixed skew) in the fleet simulator.

use std::sync::Arc;
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

/// The wall clock one agent reads: the system's, or a simulated one.
#[derive(Debug, Clone, Default)]
pub struct WallClock {
    simulated: Option<Arc<Simulated>>,
}

/// A wall clock that runs with tokio's clock from a chosen epoch, off by a
/// fixed skew.
#[derive(Debug)]
struct Simulated {
    /// Unix microseconds (of the true clock) at `base`.
    epoch_us: i128,
    base: Instant,
    /// This clock minus the true one, in microseconds.
    skew_us: i128,
}

impl WallClock {
    /// The system's clock.
    pub fn system() -> WallClock {
        WallClock::default()
    }

    /// A clock that reads `epoch_unix_ms + skew` now and runs with tokio's
    /// clock (so with paused time it only moves when tokio's does).
    pub fn simulated(epoch_unix_ms: u64, skew: std::time::Duration, ahead: bool) -> WallClock {
        let skew_us = i128::try_from(skew.as_micros()).unwrap_or(i128::MAX / 4);
        WallClock {
            simulated: Some(Arc::new(Simulated {
                epoch_us: i128::from(epoch_unix_ms) * 1000,
                base: Instant::now(),
                skew_us: if ahead { skew_us } else { -skew_us },
            })),
        }
    }

    /// Nanoseconds since the Unix epoch (negative before it).
    pub fn now_ns(&self) -> i128 {
        match &self.simulated {
            None => match SystemTime::now().duration_since(UNIX_EPOCH) {
                Ok(since) => since.as_nanos() as i128,
                Err(before) => -(before.duration().as_nanos() as i128),
            },
            Some(s) => {
                let run = Instant::now().saturating_duration_since(s.base);
                (s.epoch_us + s.skew_us) * 1000 + run.as_nanos() as i128
            }
        }
    }

    /// Unix milliseconds now (0 before the epoch).
    pub fn unix_ms(&self) -> u64 {
        u64::try_from(self.now_ns().max(0) / 1_000_000).unwrap_or(u64::MAX)
    }

    /// Unix microseconds now (0 before the epoch).
    pub fn unix_us(&self) -> u64 {
        u64::try_from(self.now_ns().max(0) / 1_000).unwrap_or(u64::MAX)
    }

    /// The monotonic instant at which this clock reads `ms`; now if that is
    /// further back than the monotonic clock goes.
    pub fn instant_at(&self, ms: u64) -> Instant {
        if self.simulated.is_none() {
            return instant_at_unix_ms(ms);
        }
        let now = Instant::now();
        let ahead_ns = i128::from(ms) * 1_000_000 - self.now_ns();
        if ahead_ns >= 0 {
            now + Duration::from_nanos(u64::try_from(ahead_ns).unwrap_or(u64::MAX))
        } else {
            let behind = Duration::from_nanos(u64::try_from(-ahead_ns).unwrap_or(u64::MAX));
            now.checked_sub(behind).unwrap_or(now)
        }
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
    let mut last = Instant::now();
    while last < at {
        tokio::task::yield_now().await;
        let now = Instant::now();
        if now == last {
            // A paused clock (tests, the fleet simulator): only the timer
            // moves it, and a task that keeps yielding would hold it still.
            sleep_until(at).await;
            return;
        }
        last = now;
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

    #[tokio::test(start_paused = true)]
    async fn a_simulated_clock_runs_with_tokio_and_keeps_its_skew() {
        let behind = WallClock::simulated(1_000_000, Duration::from_millis(40), false);
        let ahead = WallClock::simulated(1_000_000, Duration::from_millis(40), true);
        assert_eq!(behind.unix_ms(), 999_960);
        assert_eq!(ahead.unix_ms(), 1_000_040);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(behind.unix_ms(), 1_001_460);
        assert_eq!(ahead.unix_us(), 1_001_540_000);
        // The same wall-clock instant is 80 ms later on the clock behind.
        let at = 1_002_000;
        assert_eq!(
            behind.instant_at(at) - ahead.instant_at(at),
            Duration::from_millis(80)
        );
        let start = Instant::now();
        assert_eq!(ahead.instant_at(1_001_540), start);
        assert!(ahead.instant_at(1_000_000) <= start);
    }

    #[tokio::test]
    async fn the_system_clock_is_the_default() {
        let clock = WallClock::default();
        let (before, read, after) = (unix_ms_now(), clock.unix_ms(), unix_ms_now());
        assert!(before <= read && read <= after);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_is_slept_to_rather_than_spun_on() {
        let at = Instant::now() + Duration::from_millis(5);
        sleep_until_precise(at, Duration::from_millis(2)).await;
        assert_eq!(Instant::now(), at);
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_returns_at_once() {
        let at = Instant::now();
        sleep_until_precise(at, Duration::from_millis(2)).await;
        assert!(Instant::now() >= at);
    }
}
