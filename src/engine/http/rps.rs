//! `rps` / `--rps`: a cap on the requests per second all VUs of this
//! process send together, as k6's (a token bucket holding one token):
//! each request takes the next free slot, `1/rps` after the one before,
//! and waits for it. The wait comes before the request starts, so it is
//! in `iteration_duration` but in no `http_req_*` timing. On a fleet each
//! agent gets the cap times its share of the load.
//!
//! Lock-free: a slot is claimed with one compare-and-swap on the next free
//! slot's time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The shared slot clock of one run.
#[derive(Debug)]
pub struct RpsLimiter {
    origin: Instant,
    /// Nanoseconds between two requests.
    interval: u64,
    /// Nanoseconds after `origin` of the next free slot.
    next: AtomicU64,
}

impl RpsLimiter {
    /// A limiter for `rps` requests per second; `None` when `rps` is not
    /// a positive finite number (no cap).
    pub fn new(rps: f64) -> Option<RpsLimiter> {
        if !(rps.is_finite() && rps > 0.0) {
            return None;
        }
        let interval = (1e9 / rps).round().clamp(1.0, u64::MAX as f64) as u64;
        Some(RpsLimiter {
            origin: Instant::now(),
            interval,
            next: AtomicU64::new(0),
        })
    }

    /// Requests per second this limiter lets through.
    pub fn rate(&self) -> f64 {
        1e9 / self.interval as f64
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut next = self.next.load(Ordering::Relaxed);
        let slot = loop {
            let slot = next.max(now);
            match self.next.compare_exchange_weak(
                next,
                slot.saturating_add(self.interval),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break slot,
                Err(current) => next = current,
            }
        };
        if slot > now {
            tokio::time::sleep_until(self.origin + Duration::from_nanos(slot)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn only_positive_rates_limit() {
        assert!(RpsLimiter::new(0.0).is_none());
        assert!(RpsLimiter::new(-1.0).is_none());
        assert!(RpsLimiter::new(f64::NAN).is_none());
        assert_eq!(RpsLimiter::new(250.0).map(|l| l.interval), Some(4_000_000));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_from_many_tasks_are_spaced_by_the_interval() {
        let limiter = Arc::new(RpsLimiter::new(100.0).unwrap());
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let l = Arc::clone(&limiter);
                tokio::spawn(async move {
                    let mut at = Vec::new();
                    for _ in 0..25 {
                        l.wait().await;
                        at.push(start.elapsed());
                    }
                    at
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        assert_eq!(all.len(), 100);
        // The first goes at once; each later one 10 ms after the one before.
        assert_eq!(all[0], Duration::ZERO);
        for pair in all.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(10), "{all:?}");
        }
        assert_eq!(all[99], Duration::from_millis(990));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_does_not_save_up_a_burst() {
        let limiter = RpsLimiter::new(10.0).unwrap();
        limiter.wait().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        limiter.wait().await;
        limiter.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }
}
