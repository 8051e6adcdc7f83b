//! Was the load generator itself the bottleneck? The question every team
//! asks after a surprising number: a generator out of CPU measures its own
//! queueing as the service's latency.
//!
//! Two signs, measured while the scenarios run (pure bookkeeping here; the
//! run feeds it):
//! - **CPU:** the process's CPU time over each interval, as a share of the
//!   CPUs it may use (affinity and cgroup quota: `available_parallelism`).
//! - **Scheduling lag:** a probe task asks to wake every [`PROBE_EVERY`];
//!   how late it wakes is how long any VU's ready work (a response that
//!   arrived) may have waited for a thread.
//!
//! A run was saturated when its CPU share stayed at or above
//! [`BUSY_SHARE`] for at least a quarter of its intervals (two at least),
//! or when the probe's 99th percentile lag reached [`LAG_LIMIT`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the warning starts, in a summary's notes (a fleet's names the
/// agent before it: `agent a-1: the load generator was saturated: …`).
pub const SATURATED: &str = "the load generator was saturated";

/// How often the lag probe asks to wake.
pub const PROBE_EVERY: Duration = Duration::from_millis(20);
/// CPU share of the allowed CPUs above which an interval counts as busy.
pub const BUSY_SHARE: f64 = 0.9;
/// Scheduling lag (99th percentile) from which latencies are distorted.
pub const LAG_LIMIT: Duration = Duration::from_millis(10);

/// Upper bounds of the lag buckets, in milliseconds (the last is open):
/// fine around [`LAG_LIMIT`], so the verdict errs by at most 2 ms.
const LAG_BOUNDS_MS: [u64; 16] = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50, 100, 500, 1000];

/// Lag probe samples by bucket, written by the probe task without a lock.
#[derive(Debug, Default)]
pub struct LagCounts {
    buckets: [AtomicU64; LAG_BOUNDS_MS.len() + 1],
    max_micros: AtomicU64,
    sum_micros: AtomicU64,
}

impl LagCounts {
    /// One wake-up, `late` past when it was asked for.
    pub fn record(&self, late: Duration) {
        let ms = late.as_millis();
        let i = LAG_BOUNDS_MS
            .iter()
            .position(|b| ms < u128::from(*b))
            .unwrap_or(LAG_BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Every wake-up so far as a Prometheus histogram (for `/metrics`).
    pub fn buckets(&self) -> crate::metrics::exposition::Buckets {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(LAG_BOUNDS_MS.len());
        for b in &self.buckets[..LAG_BOUNDS_MS.len()] {
            running += b.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        let count = running + self.buckets[LAG_BOUNDS_MS.len()].load(Ordering::Relaxed);
        crate::metrics::exposition::Buckets {
            // A wake-up counts under a bound when it was below it.
            bounds: LAG_BOUNDS_MS.iter().map(|ms| *ms as f64 / 1000.0).collect(),
            cumulative,
            count,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    /// Where the 99th percentile wake-up falls: at least the lower bound
    /// of its bucket, below its upper bound (the maximum past the last
    /// bucket); and the maximum.
    fn p99_and_max(&self) -> (Duration, Duration, Duration) {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let max = Duration::from_micros(self.max_micros.load(Ordering::Relaxed));
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return (Duration::ZERO, Duration::ZERO, max);
        }
        let rank = total - total / 100;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let upper = LAG_BOUNDS_MS
                    .get(i)
                    .map_or(max, |ms| Duration::from_millis(*ms));
                let lower = i
                    .checked_sub(1)
                    .and_then(|j| LAG_BOUNDS_MS.get(j))
                    .map_or(Duration::ZERO, |ms| Duration::from_millis(*ms));
                return (lower, upper.min(max), max);
            }
        }
        (max, max, max)
    }
}

/// The generator's load over a run.
#[derive(Debug)]
pub struct LoadMeter {
    cpus: f64,
    intervals: u32,
    busy: u32,
    cpu: Duration,
    wall: Duration,
}

/// A saturated run, as the summary tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Saturation {
    /// CPUs the process may use.
    pub cpus: f64,
    /// Its CPU time over the measured time, as a share of `cpus`.
    pub cpu_share: f64,
    /// Intervals at or above [`BUSY_SHARE`], of all measured.
    pub busy: u32,
    pub intervals: u32,
    /// The 99th percentile wake-up was this late, at most.
    pub lag_p99: Duration,
    pub lag_max: Duration,
}

impl LoadMeter {
    pub fn new(cpus: f64) -> LoadMeter {
        LoadMeter {
            cpus: cpus.max(1.0),
            intervals: 0,
            busy: 0,
            cpu: Duration::ZERO,
            wall: Duration::ZERO,
        }
    }

    /// One interval of `wall` time in which the process used `cpu`.
    pub fn interval(&mut self, wall: Duration, cpu: Duration) {
        if wall.is_zero() {
            return;
        }
        self.intervals += 1;
        self.wall += wall;
        self.cpu += cpu;
        if cpu.as_secs_f64() >= BUSY_SHARE * self.cpus * wall.as_secs_f64() {
            self.busy += 1;
        }
    }

    /// The verdict: `Some` when the generator was saturated.
    pub fn verdict(&self, lags: &LagCounts) -> Option<Saturation> {
        let (p99_at_least, lag_p99, lag_max) = lags.p99_and_max();
        let busy_enough = self.busy >= 2 && self.busy * 4 >= self.intervals;
        if !busy_enough && p99_at_least < LAG_LIMIT {
            return None;
        }
        let cpu_share = if self.wall.is_zero() {
            0.0
        } else {
            self.cpu.as_secs_f64() / (self.wall.as_secs_f64() * self.cpus)
        };
        Some(Saturation {
            cpus: self.cpus,
            cpu_share,
            busy: self.busy,
            intervals: self.intervals,
            lag_p99,
            lag_max,
        })
    }
}

impl std::fmt::Display for Saturation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{SATURATED}: it used {:.0} % of its {} CPU(s) ({} of {} intervals at {:.0} % or more) and woke up to {:.1} ms late (99 % within {:.1} ms); latencies include time waiting for the generator, not only for the service. Use fewer VUs per machine, more machines, or more CPUs.",
            self.cpu_share * 100.0,
            self.cpus,
            self.busy,
            self.intervals,
            BUSY_SHARE * 100.0,
            self.lag_max.as_secs_f64() * 1000.0,
            self.lag_p99.as_secs_f64() * 1000.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_light_run_is_not_saturated() {
        let mut m = LoadMeter::new(2.0);
        let lags = LagCounts::default();
        for _ in 0..10 {
            m.interval(S, Duration::from_millis(300));
            lags.record(Duration::from_micros(300));
        }
        assert_eq!(m.verdict(&lags), None);
    }

    #[test]
    fn busy_cpus_for_a_quarter_of_the_run_saturate_it() {
        let mut m = LoadMeter::new(2.0);
        let lags = LagCounts::default();
        for i in 0..8 {
            let cpu = if i < 2 { 1900 } else { 200 };
            m.interval(S, Duration::from_millis(cpu));
        }
        let s = m.verdict(&lags).expect("saturated");
        assert_eq!((s.busy, s.intervals), (2, 8));
        assert!((s.cpu_share - 0.3125).abs() < 1e-9, "{s:?}");
        assert!(s.to_string().contains("2 of 8 intervals"), "{s}");
        // One busy interval is not enough.
        let mut m = LoadMeter::new(2.0);
        m.interval(S, Duration::from_millis(1900));
        m.interval(S, Duration::from_millis(100));
        assert_eq!(m.verdict(&lags), None);
    }

    #[test]
    fn a_late_scheduler_saturates_a_run_whatever_its_cpu() {
        let m = LoadMeter::new(4.0);
        let lags = LagCounts::default();
        for _ in 0..95 {
            lags.record(Duration::from_micros(500));
        }
        assert_eq!(m.verdict(&lags), None);
        for _ in 0..5 {
            lags.record(Duration::from_millis(9));
        }
        // The p99 wake-up is in [8, 10) ms: under the limit.
        assert_eq!(m.verdict(&lags), None);
        for _ in 0..5 {
            lags.record(Duration::from_millis(25));
        }
        let s = m.verdict(&lags).expect("saturated");
        assert_eq!(s.lag_p99, Duration::from_millis(25));
        assert_eq!(s.lag_max, Duration::from_millis(25));
    }

    #[test]
    fn lags_as_a_histogram() {
        let lags = LagCounts::default();
        lags.record(Duration::from_micros(300));
        lags.record(Duration::from_millis(9));
        lags.record(Duration::from_secs(2));
        let b = lags.buckets();
        assert_eq!(b.bounds.len(), b.cumulative.len());
        assert_eq!(b.bounds[0], 0.001);
        assert_eq!(b.cumulative[0], 1);
        assert_eq!(
            b.cumulative[b.bounds.iter().position(|x| *x == 0.01).expect("10 ms")],
            2
        );
        assert_eq!(*b.cumulative.last().expect("bounds"), 2);
        assert_eq!(b.count, 3);
        assert!((b.sum_seconds - 2.0093).abs() < 1e-9);
    }
}
