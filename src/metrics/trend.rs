//! One trend's samples: an HDR histogram of whole microseconds for the
//! percentiles, and beside it the exact minimum, maximum and sum in
//! nanoseconds.
//!
//! # Why this layout
//!
//! The histogram keeps memory bounded by the range of values, not by their
//! number, and merges exactly (adding histograms of several agents or
//! intervals gives the histogram of every sample). Its buckets are 1 µs
//! wide up to 2.048 ms and 0.1 % of the value above, so a statistic read
//! from it is a bucket's edge, not a sample: a 1 s sleep read 999.936 ms as
//! its minimum. The three exact numbers fix what a bucket cannot: `min`,
//! `max` and `avg` are the samples' own, to the nanosecond the clock gave,
//! and they merge exactly too (min of mins, max of maxes, sum of sums).
//!
//! Recording nanoseconds in the histogram instead would make its
//! percentiles sub-microsecond, but a histogram spans about ten more
//! powers of two (1 ns .. 1 µs) for the same top value: 2.2x the memory for
//! a trend reaching 100 ms, measured in `benches/metrics.rs` (144 KiB
//! against 64 KiB), for every series of every interval, while the three
//! exact numbers cost 32 bytes and about a nanosecond per sample.
//!
//! # Percentiles
//!
//! The histogram holds each sample rounded up to a whole microsecond. A
//! percentile is the highest value of the bucket that holds the sample at
//! its rank (hdrhistogram's `value_at_quantile`: the sample at rank
//! `ceil(p/100 · count)`), clamped into `[min, max]`; `p(0)` is the minimum.
//! A bucket is at most 1 part in 1024 of its values wide (three significant
//! digits), so a reported percentile is never below the sample at its rank
//! and at most `0.1 % + 1 µs` above it, and `p(100)` is the maximum. k6
//! sorts every sample and interpolates between the two nearest ranks, so on
//! very few samples the two can also differ by the gap between
//! neighbours.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::value::MergeError;

/// Significant decimal digits of every trend histogram.
pub const TREND_SIGFIG: u8 = 3;

/// Largest duration a trend records, in microseconds (2^40 µs, about 12.7
/// days). Longer durations are clamped to it; no plan runs that long.
pub const TREND_MAX_US: u64 = 1 << 40;

/// [`TREND_MAX_US`] in nanoseconds: the largest exact value kept.
pub const TREND_MAX_NS: u64 = TREND_MAX_US * 1000;

/// A distribution of durations (or, for custom trends, of values in their
/// unit, kept as if they were milliseconds).
#[derive(Debug, Clone)]
pub struct Trend {
    /// Whole microseconds, for percentiles.
    hist: Histogram<u64>,
    /// Smallest and largest sample in nanoseconds; 0 when empty.
    min_ns: u64,
    max_ns: u64,
    /// Every sample added up, in nanoseconds (for the exact average).
    sum_ns: u128,
}

/// Exact statistics that do not fit the histogram they came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent(pub String);

/// A new, empty histogram: 1 µs resolution at the low end, growing on
/// demand.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, TREND_SIGFIG)
        .expect("invariant: bounds 1..2 with 3 significant digits are valid");
    h.auto(true);
    h
}

/// A duration in nanoseconds, clamped to [`TREND_MAX_NS`].
pub fn duration_to_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos())
        .unwrap_or(u64::MAX)
        .min(TREND_MAX_NS)
}

/// Nanoseconds as the whole microseconds the histogram holds, rounded up
/// so that a bucket's highest value is never below a sample in it; only a
/// real zero is 0 (k6 shows reused connections as `http_req_connecting` =
/// 0s, and so does Volley).
fn ns_to_us(ns: u64) -> u64 {
    ns.div_ceil(1000).min(TREND_MAX_US)
}

fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Records one microsecond value into a histogram.
fn record_us(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        // Only reachable when the histogram cannot grow (auto-resize off or
        // an address-space limit): keep the sample, clamped to the range.
        h.saturating_record(us);
    }
}

impl Default for Trend {
    fn default() -> Self {
        Trend::new()
    }
}

impl Trend {
    /// An empty trend.
    pub fn new() -> Trend {
        Trend {
            hist: new_histogram(),
            min_ns: 0,
            max_ns: 0,
            sum_ns: 0,
        }
    }

    /// A trend holding one duration.
    pub fn of(d: Duration) -> Trend {
        let mut t = Trend::new();
        t.record(d);
        t
    }

    /// An empty trend whose histogram is already as large as this one's,
    /// so that refilling it neither allocates nor resizes.
    pub fn emptied(&self) -> Trend {
        let mut hist = Histogram::new_from(&self.hist);
        hist.auto(true);
        Trend {
            hist,
            ..Trend::new()
        }
    }

    /// Adds one duration (clamped to [`TREND_MAX_NS`]).
    pub fn record(&mut self, d: Duration) {
        self.record_ns(duration_to_ns(d));
    }

    /// Adds one value in nanoseconds (clamped to [`TREND_MAX_NS`]).
    pub fn record_ns(&mut self, ns: u64) {
        let ns = ns.min(TREND_MAX_NS);
        if self.hist.is_empty() {
            self.min_ns = ns;
            self.max_ns = ns;
        } else {
            self.min_ns = self.min_ns.min(ns);
            self.max_ns = self.max_ns.max(ns);
        }
        self.sum_ns = self.sum_ns.saturating_add(u128::from(ns));
        record_us(&mut self.hist, ns_to_us(ns));
    }

    /// Adds every sample of `other` (another agent, a later interval).
    /// Nothing changes when the histograms cannot be added.
    pub fn add(&mut self, other: &Trend) -> Result<(), MergeError> {
        if other.hist.is_empty() {
            return Ok(());
        }
        let was_empty = self.hist.is_empty();
        // Histograms built elsewhere may have auto-resize off; ours must be
        // able to grow to the other's range.
        self.hist.auto(true);
        self.hist
            .add(&other.hist)
            .map_err(|e| MergeError::Histogram {
                reason: e.to_string(),
            })?;
        if was_empty {
            self.min_ns = other.min_ns;
            self.max_ns = other.max_ns;
        } else {
            self.min_ns = self.min_ns.min(other.min_ns);
            self.max_ns = self.max_ns.max(other.max_ns);
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        Ok(())
    }

    /// A trend from a histogram alone (a version 1 snapshot, which had no
    /// exact statistics): min, max and sum are estimated from its buckets,
    /// as every statistic was before they were tracked.
    pub fn from_histogram(mut hist: Histogram<u64>) -> Trend {
        hist.auto(true);
        if hist.is_empty() {
            return Trend {
                hist,
                ..Trend::new()
            };
        }
        let us_to_ns = |us: u64| us.min(TREND_MAX_US) * 1000;
        let min_ns = us_to_ns(hist.lowest_equivalent(hist.min()));
        let max_ns = us_to_ns(hist.max()).max(min_ns);
        let count = u128::from(hist.len());
        let mean_ns = (hist.mean() * 1000.0).max(0.0) as u128;
        let sum_ns =
            (mean_ns * count).clamp(u128::from(min_ns) * count, u128::from(max_ns) * count);
        Trend {
            hist,
            min_ns,
            max_ns,
            sum_ns,
        }
    }

    /// A trend from a histogram and exact statistics that came from outside
    /// (a decoded snapshot); refused unless they could have been recorded
    /// together: min ≤ max, both within the histogram's first and last
    /// bucket, the sum between count·min and count·max, all zero when
    /// empty.
    pub fn from_parts(
        mut hist: Histogram<u64>,
        min_ns: u64,
        max_ns: u64,
        sum_ns: u128,
    ) -> Result<Trend, Inconsistent> {
        hist.auto(true);
        if hist.is_empty() {
            if (min_ns, max_ns, sum_ns) != (0, 0, 0) {
                return Err(Inconsistent(format!(
                    "an empty histogram with min {min_ns} ns, max {max_ns} ns, sum {sum_ns} ns (all must be 0)"
                )));
            }
            return Ok(Trend {
                hist,
                ..Trend::new()
            });
        }
        if min_ns > max_ns || max_ns > TREND_MAX_NS {
            return Err(Inconsistent(format!(
                "min {min_ns} ns and max {max_ns} ns, expected min <= max <= {TREND_MAX_NS}"
            )));
        }
        if !hist.equivalent(ns_to_us(min_ns), hist.min())
            || !hist.equivalent(ns_to_us(max_ns), hist.max())
        {
            return Err(Inconsistent(format!(
                "min {min_ns} ns and max {max_ns} ns are outside the histogram's range {}..{} µs",
                hist.min(),
                hist.max()
            )));
        }
        let count = u128::from(hist.len());
        let (low, high) = (
            u128::from(min_ns).saturating_mul(count),
            u128::from(max_ns).saturating_mul(count),
        );
        if sum_ns < low || sum_ns > high {
            return Err(Inconsistent(format!(
                "sum {sum_ns} ns is outside count x min .. count x max ({low}..{high})"
            )));
        }
        Ok(Trend {
            hist,
            min_ns,
            max_ns,
            sum_ns,
        })
    }

    /// The histogram of whole microseconds.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// How many samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Smallest sample in nanoseconds (0 when empty).
    pub fn min_ns(&self) -> u64 {
        self.min_ns
    }

    /// Largest sample in nanoseconds (0 when empty).
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// Sum of every sample in nanoseconds.
    pub fn sum_ns(&self) -> u128 {
        self.sum_ns
    }

    /// Smallest sample in milliseconds, exact (0 when empty).
    pub fn min_ms(&self) -> f64 {
        ns_to_ms(self.min_ns)
    }

    /// Largest sample in milliseconds, exact (0 when empty).
    pub fn max_ms(&self) -> f64 {
        ns_to_ms(self.max_ns)
    }

    /// Mean in milliseconds, from the exact sum (0 when empty).
    pub fn avg_ms(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum_ns as f64 / n as f64 / 1e6,
        }
    }

    /// `p(N)` in milliseconds, N in [0, 100] (clamped): the highest value of
    /// the bucket holding it, clamped into [min, max] (0 when empty).
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let q = (percentile / 100.0).clamp(0.0, 1.0);
        if q == 0.0 {
            return self.min_ms();
        }
        let ns = self.hist.value_at_quantile(q).saturating_mul(1000);
        ns_to_ms(ns.clamp(self.min_ns, self.max_ns))
    }
}

/// Equal when they hold the same samples: the same exact statistics and the
/// same recorded (value, count) buckets, whatever the size of their counts
/// arrays (which depends on the order in which a histogram grew).
impl PartialEq for Trend {
    fn eq(&self, other: &Trend) -> bool {
        self.min_ns == other.min_ns
            && self.max_ns == other.max_ns
            && self.sum_ns == other.sum_ns
            && histograms_equal(&self.hist, &other.hist)
    }
}

/// True when two histograms hold the same samples at the same precision.
pub fn histograms_equal(a: &Histogram<u64>, b: &Histogram<u64>) -> bool {
    let buckets = |h: &Histogram<u64>| {
        h.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect::<Vec<_>>()
    };
    a.low() == b.low() && a.sigfig() == b.sigfig() && a.len() == b.len() && buckets(a) == buckets(b)
}

#[cfg(test)]
mod tests;
