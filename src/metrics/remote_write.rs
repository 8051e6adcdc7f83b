//! `--out experimental-prometheus-rw`: a run's series as Prometheus remote
//! write 1.0 samples, with k6's names (pure; the HTTP side lives in
//! `outputs::prometheus_rw`). This module owns the `snap` crate.
//!
//! # What is sent
//!
//! Per-interval aggregates, never a sample per request: the output folds
//! each interval [`Snapshot`] into its own running total, and every push
//! sends one sample per series that saw data since the last push, whatever
//! the request rate. Values are cumulative over the run, as k6 sends them:
//!
//! | k6 type | series | value |
//! |---|---|---|
//! | counter | `k6_<name>_total` | the sum since the start |
//! | gauge | `k6_<name>` | the last value |
//! | rate | `k6_<name>_rate` | trues / samples since the start |
//! | trend | `k6_<name>_<stat>` per stat (`p99`, `min`, `max`, `avg`, `med`, `count`, `sum`) | the statistic over every sample since the start |
//!
//! With native histograms (`K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM`),
//! a trend is one series instead, `k6_<name>_seconds` (`_bytes` for data,
//! no suffix otherwise), a Prometheus native histogram (schema 3: buckets
//! 2^(1/8), about 9 %, apart) of every sample since the start, built from
//! the HDR histogram: each HDR bucket's samples go to the native bucket
//! holding its highest value; `count` and `sum` are exact.
//!
//! Time trends are sent in seconds, as k6 does (`k6_http_req_duration_p99`
//! of 0.25 is 250 ms); `count` is a plain number (k6 1.x divides it by
//! 1000 too, which no one wants). Percentiles come from the run's merged
//! HDR histogram (see [`super::trend`] for their precision); `min`, `max`,
//! `avg` and `sum` are exact. Labels are the series' tags (empty values
//! left out, names made valid Prometheus label names), `__name__` first
//! once sorted.

pub mod proto;

use std::collections::BTreeSet;

use self::proto::{NativeHistogram, TimeSeries};
use super::aggregate::Aggregate;
use super::catalog::Unit;
use super::snapshot::{SeriesKey, Snapshot};
use super::value::Value;

/// Prometheus' stale marker: a NaN with this exact bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Native histograms' schema: buckets 2^(2^-3) apart, as k6's (a bucket
/// factor of 1.1 gives schema 3).
const NATIVE_SCHEMA: i32 = 3;
/// Prometheus' default zero bucket width (2^-128).
const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// One statistic sent for every trend.
#[derive(Debug, Clone, PartialEq)]
pub enum TrendStat {
    Min,
    Max,
    Avg,
    Med,
    Count,
    Sum,
    /// `p(N)`: N in [0, 100] and the name's suffix (`p99`, `p999`).
    Percentile(f64, String),
}

impl TrendStat {
    /// `K6_PROMETHEUS_RW_TREND_STATS`: a comma-separated list of `min`,
    /// `max`, `avg`, `med`, `count`, `sum`, `p(N)`.
    pub fn parse_list(text: &str) -> Result<Vec<TrendStat>, String> {
        let mut out: Vec<TrendStat> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let stat = TrendStat::parse(item)?;
            if !out.iter().any(|s| s.suffix() == stat.suffix()) {
                out.push(stat);
            }
        }
        if out.is_empty() {
            return Err("no statistic; expected e.g. p(99) or min,max,avg,p(95)".into());
        }
        Ok(out)
    }

    fn parse(item: &str) -> Result<TrendStat, String> {
        Ok(match item {
            "min" => TrendStat::Min,
            "max" => TrendStat::Max,
            "avg" => TrendStat::Avg,
            "med" => TrendStat::Med,
            "count" => TrendStat::Count,
            "sum" => TrendStat::Sum,
            _ => {
                let inner = item
                    .strip_prefix("p(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        format!(
                            "{item:?} is not a statistic; expected min, max, avg, med, count, \
                             sum or p(N) with N from 0 to 100"
                        )
                    })?;
                let p: f64 = inner
                    .parse()
                    .ok()
                    .filter(|p: &f64| (0.0..=100.0).contains(p))
                    .ok_or_else(|| format!("{item:?}: expected p(N) with N from 0 to 100"))?;
                // k6's series name: the number without its dot (p(99.9)
                // is p999, p(0.95) is p095).
                TrendStat::Percentile(p, format!("p{}", inner.replace('.', "")))
            }
        })
    }

    /// The name's suffix: `k6_http_req_duration_<suffix>`.
    pub fn suffix(&self) -> &str {
        match self {
            TrendStat::Min => "min",
            TrendStat::Max => "max",
            TrendStat::Avg => "avg",
            TrendStat::Med => "med",
            TrendStat::Count => "count",
            TrendStat::Sum => "sum",
            TrendStat::Percentile(_, s) => s,
        }
    }

    /// The statistic in the trend's own unit (ms for time trends), except
    /// `count`.
    fn value_ms(&self, t: &super::Trend) -> f64 {
        match self {
            TrendStat::Min => t.min_ms(),
            TrendStat::Max => t.max_ms(),
            TrendStat::Avg => t.avg_ms(),
            TrendStat::Med => t.percentile_ms(50.0),
            TrendStat::Count => t.count() as f64,
            TrendStat::Sum => t.sum_ns() as f64 / 1e6,
            TrendStat::Percentile(p, _) => t.percentile_ms(*p),
        }
    }
}

/// A remote-write body ready to be sent.
#[derive(Debug, Clone)]
pub struct Push {
    /// The `WriteRequest`, snappy block-compressed.
    pub body: Vec<u8>,
    /// Samples in it.
    pub samples: u64,
}

/// The running state of one remote-write output.
pub struct RemoteWrite {
    stats: Vec<TrendStat>,
    /// Trends as native histograms instead of `stats`.
    native: bool,
    total: Aggregate,
    /// Series that saw data since the last push.
    touched: BTreeSet<SeriesKey>,
    /// Every series ever sent (for stale markers).
    sent: BTreeSet<SeriesKey>,
    /// End of the last interval folded in, Unix ms.
    latest_ms: i64,
    /// Timestamp of the last push, so the next is later.
    last_push_ms: i64,
    /// Intervals the total could not take (a histogram that cannot grow).
    pub merge_errors: u64,
}

impl RemoteWrite {
    pub fn new(stats: Vec<TrendStat>) -> RemoteWrite {
        RemoteWrite {
            stats,
            native: false,
            total: Aggregate::default(),
            touched: BTreeSet::new(),
            sent: BTreeSet::new(),
            latest_ms: 0,
            last_push_ms: i64::MIN,
            merge_errors: 0,
        }
    }

    /// Trends as native histograms (k6's `trendAsNativeHistogram`).
    pub fn with_native_histograms(mut self) -> RemoteWrite {
        self.native = true;
        self
    }

    /// Folds in the next interval.
    pub fn add_interval(&mut self, s: &Snapshot) {
        if self.total.add_interval(s).is_err() {
            self.merge_errors += 1;
        }
        for (key, _) in &s.series {
            self.touched.insert(key.clone());
        }
        self.latest_ms = self
            .latest_ms
            .max(i64::try_from(s.end_unix_ms()).unwrap_or(i64::MAX));
    }

    /// Whether a push would send anything.
    pub fn has_news(&self) -> bool {
        !self.touched.is_empty()
    }

    fn next_timestamp(&mut self) -> i64 {
        let ts = self.latest_ms.max(self.last_push_ms.saturating_add(1));
        self.last_push_ms = ts;
        ts
    }

    /// The series touched since the last push, at their running values.
    pub fn take_push(&mut self) -> Option<Push> {
        if self.touched.is_empty() {
            return None;
        }
        let ts = self.next_timestamp();
        let touched = std::mem::take(&mut self.touched);
        let mut series = Vec::new();
        for (key, value) in self.total.series().filter(|(k, _)| touched.contains(*k)) {
            if let (true, Value::Trend(t)) = (self.native, value) {
                series.push(TimeSeries {
                    labels: labels(&native_name(key), key),
                    samples: Vec::new(),
                    histograms: vec![native_histogram(t, key.metric.unit(), ts)],
                });
                continue;
            }
            for (name, v) in self.values(key, value) {
                series.push(TimeSeries {
                    labels: labels(&name, key),
                    samples: vec![(v, ts)],
                    histograms: Vec::new(),
                });
            }
        }
        self.sent.extend(touched);
        Some(encode(&series))
    }

    /// A stale marker for every series ever sent (k6's
    /// `K6_PROMETHEUS_RW_STALE_MARKERS`), after the last push.
    pub fn stale_markers(&mut self) -> Option<Push> {
        if self.sent.is_empty() {
            return None;
        }
        let ts = self.next_timestamp();
        let mut series = Vec::new();
        for (key, value) in self.total.series().filter(|(k, _)| self.sent.contains(*k)) {
            let names = match value {
                Value::Trend(_) if self.native => vec![native_name(key)],
                _ => self
                    .values(key, value)
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect(),
            };
            for name in names {
                series.push(TimeSeries {
                    labels: labels(&name, key),
                    samples: vec![(f64::from_bits(STALE_NAN), ts)],
                    histograms: Vec::new(),
                });
            }
        }
        Some(encode(&series))
    }

    /// Names and values of one series' samples.
    fn values(&self, key: &SeriesKey, value: &Value) -> Vec<(String, f64)> {
        let base = format!("k6_{}", metric_name(key.metric.name()));
        let seconds = key.metric.unit() == Unit::Time;
        match value {
            Value::Counter(c) => vec![(format!("{base}_total"), *c)],
            Value::Gauge { value, .. } => vec![(base, *value)],
            Value::Rate { trues, total } => {
                let rate = if *total == 0 {
                    0.0
                } else {
                    *trues as f64 / *total as f64
                };
                vec![(format!("{base}_rate"), rate)]
            }
            Value::Trend(t) => self
                .stats
                .iter()
                .map(|stat| {
                    let v = stat.value_ms(t);
                    let v = if seconds && *stat != TrendStat::Count {
                        v / 1000.0
                    } else {
                        v
                    };
                    (format!("{base}_{}", stat.suffix()), v)
                })
                .collect(),
        }
    }
}

/// `k6_<name>_seconds` (time), `_bytes` (data), or bare.
fn native_name(key: &SeriesKey) -> String {
    let base = format!("k6_{}", metric_name(key.metric.name()));
    match key.metric.unit() {
        Unit::Time => format!("{base}_seconds"),
        Unit::Data => format!("{base}_bytes"),
        Unit::Default => base,
    }
}

/// A trend as a native histogram: every HDR bucket's samples in the
/// native bucket that holds the HDR bucket's highest value.
pub fn native_histogram(t: &super::Trend, unit: Unit, timestamp: i64) -> NativeHistogram {
    // The histogram holds whole microseconds of the trend's unit-as-ms.
    let scale = if unit == Unit::Time { 1e-6 } else { 1e-3 };
    let mut zero_count = 0;
    let mut buckets: std::collections::BTreeMap<i32, u64> = std::collections::BTreeMap::new();
    let h = t.histogram();
    for v in h.iter_recorded() {
        let top = h.highest_equivalent(v.value_iterated_to()) as f64 * scale;
        if top <= ZERO_THRESHOLD {
            zero_count += v.count_at_value();
            continue;
        }
        // Bucket i holds (2^((i-1)/8), 2^(i/8)].
        let i = (top.log2() * f64::from(1 << NATIVE_SCHEMA)).ceil() as i32;
        *buckets.entry(i).or_default() += v.count_at_value();
    }
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let (mut next, mut last_count) = (None::<i32>, 0i64);
    for (i, n) in buckets {
        match next {
            Some(expected) if expected == i => {
                if let Some(span) = spans.last_mut() {
                    span.1 += 1;
                }
            }
            Some(expected) => spans.push((i - expected, 1)),
            None => spans.push((i, 1)),
        }
        next = Some(i + 1);
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        deltas.push(n - last_count);
        last_count = n;
    }
    let factor = if unit == Unit::Time { 1e-9 } else { 1e-6 };
    NativeHistogram {
        count: t.count(),
        sum: t.sum_ns() as f64 * factor,
        schema: NATIVE_SCHEMA,
        zero_threshold: ZERO_THRESHOLD,
        zero_count,
        positive_spans: spans,
        positive_deltas: deltas,
        timestamp,
    }
}

fn encode(series: &[TimeSeries]) -> Push {
    let raw = proto::write_request(series);
    let body = snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("invariant: snappy compresses any buffer below 4 GiB");
    Push {
        body,
        samples: series.len() as u64,
    }
}

/// Sorted labels: `__name__` and the tags with a value.
fn labels(name: &str, key: &SeriesKey) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![("__name__".into(), name.to_owned())];
    for (k, v) in key.tags.iter() {
        if v.is_empty() {
            continue;
        }
        let k = label_name(k);
        // Names starting with `__` are Prometheus' own.
        if k.starts_with("__") || out.iter().any(|(n, _)| *n == k) {
            continue;
        }
        out.push((k, v.to_owned()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters as `_`.
pub fn label_name(tag: &str) -> String {
    let mut s: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// A valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters as `_`.
pub fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
