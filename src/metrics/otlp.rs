//! OTLP metrics (`ExportMetricsServiceRequest`, protobuf) from Volley's
//! interval snapshots, as k6's `opentelemetry` output shapes them.
//!
//! k6 feeds its samples into the OpenTelemetry Go SDK with its defaults:
//! cumulative temporality, instrumentation scope `k6`, and per k6 type
//! - counter → a monotonic `Sum` of doubles,
//! - gauge → a `Gauge` (the last value),
//! - rate → two monotonic integer `Sum`s, `NAME.occurred` (non-zero
//!   samples) and `NAME.total` (all samples),
//! - trend → a `Histogram` with the SDK's default explicit bounds
//!   ([`BOUNDS`], in the metric's unit: ms for times),
//!
//! named `PREFIX` + k6's name, unit `ms` for times and `By` for data, a
//! series' tags as string attributes, `service.name` and `service.version`
//! on the resource. [`Cumulative`] does the same from interval snapshots:
//! it adds each interval into a running total per series and encodes all
//! of them, so totals, counts, sums, minimums and maximums are exact. The
//! bucket counts come from the interval's HDR histogram: a sample within
//! the histogram's resolution of a bound (0.1 %, a few microseconds at the
//! millisecond bounds) may be counted in the neighbouring bucket.
//!
//! Pure: the output (`outputs::otel`) sends the bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::catalog::{MetricKind, Unit};
use super::protobuf::Writer;
use super::snapshot::{SeriesKey, Snapshot};
use super::value::Value;

/// The OpenTelemetry SDK's default histogram bounds (ms for times).
pub const BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// `AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

/// The instrumentation scope k6 names its meter with.
pub const SCOPE: &str = "k6";

/// A series' running total since the first interval.
#[derive(Debug, Clone, PartialEq)]
enum Total {
    Counter(f64),
    Gauge(f64),
    Rate {
        trues: u64,
        total: u64,
    },
    Histogram {
        buckets: [u64; BOUNDS.len() + 1],
        count: u64,
        sum_ns: u128,
        min_ns: u64,
        max_ns: u64,
    },
}

impl Total {
    fn add(&mut self, value: &Value) {
        match (self, value) {
            (Total::Counter(t), Value::Counter(c)) => *t += c,
            (Total::Gauge(g), Value::Gauge { value, .. }) => *g = *value,
            (Total::Rate { trues, total }, Value::Rate { trues: t, total: n }) => {
                *trues += t;
                *total += n;
            }
            (
                Total::Histogram {
                    buckets,
                    count,
                    sum_ns,
                    min_ns,
                    max_ns,
                },
                Value::Trend(trend),
            ) => {
                if trend.is_empty() {
                    return;
                }
                let hist = trend.histogram();
                for v in hist.iter_recorded() {
                    // Whole microseconds: the bucket's lowest value against
                    // the bound in microseconds.
                    let low = hist.lowest_equivalent(v.value_iterated_to());
                    let i = BOUNDS
                        .iter()
                        .position(|b| low as f64 <= b * 1000.0)
                        .unwrap_or(BOUNDS.len());
                    buckets[i] += v.count_at_value();
                }
                if *count == 0 {
                    *min_ns = trend.min_ns();
                    *max_ns = trend.max_ns();
                } else {
                    *min_ns = (*min_ns).min(trend.min_ns());
                    *max_ns = (*max_ns).max(trend.max_ns());
                }
                *count += trend.count();
                *sum_ns = sum_ns.saturating_add(trend.sum_ns());
            }
            // A series' metric decides its kind: never reached.
            _ => {}
        }
    }

    fn of(kind: MetricKind) -> Total {
        match kind {
            MetricKind::Counter => Total::Counter(0.0),
            MetricKind::Gauge => Total::Gauge(0.0),
            MetricKind::Rate => Total::Rate { trues: 0, total: 0 },
            MetricKind::Trend => Total::Histogram {
                buckets: [0; BOUNDS.len() + 1],
                count: 0,
                sum_ns: 0,
                min_ns: 0,
                max_ns: 0,
            },
        }
    }
}

/// What the resource and names say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    pub service_name: String,
    pub service_version: String,
    /// Put before every metric's name (`K6_OTEL_METRIC_PREFIX`).
    pub metric_prefix: String,
}

/// Every series' running total, encoded on demand.
#[derive(Debug)]
pub struct Cumulative {
    naming: Naming,
    /// Start of the first interval (the run), Unix ns.
    start_unix_ns: Option<u64>,
    /// End of the latest interval, Unix ns.
    end_unix_ns: u64,
    /// Sorted by metric, then tags (the extra tags included): one OTLP
    /// metric per run of a metric.
    totals: BTreeMap<SeriesKey, Total>,
    /// Intervals added since the last encoding.
    fresh: bool,
}

impl Cumulative {
    pub fn new(naming: Naming) -> Cumulative {
        Cumulative {
            naming,
            start_unix_ns: None,
            end_unix_ns: 0,
            totals: BTreeMap::new(),
            fresh: false,
        }
    }

    /// Adds an interval; `extra` tags go on every data point and name
    /// series apart (a fleet test's id; its agent or region, when each has
    /// its own series).
    pub fn add(&mut self, snapshot: &Snapshot, extra: &[(&str, &str)]) {
        let start = snapshot.start_unix_ms.saturating_mul(1_000_000);
        self.start_unix_ns = Some(self.start_unix_ns.map_or(start, |s| s.min(start)));
        self.end_unix_ns = self
            .end_unix_ns
            .max(snapshot.end_unix_ms().saturating_mul(1_000_000));
        for (key, value) in &snapshot.series {
            if value.kind() != key.metric.kind() {
                continue;
            }
            let mut key = key.clone();
            for (k, v) in extra {
                key.tags.insert(Arc::from(*k), Arc::from(*v));
            }
            let kind = key.metric.kind();
            self.totals
                .entry(key)
                .or_insert_with(|| Total::of(kind))
                .add(value);
        }
        self.fresh = true;
    }

    /// End of the latest interval added, Unix ns (0 before any).
    pub fn end_unix_ns(&self) -> u64 {
        self.end_unix_ns
    }

    /// Start of the first interval added, Unix ns (0 before any).
    pub fn start_unix_ns(&self) -> u64 {
        self.start_unix_ns.unwrap_or(0)
    }

    /// Whether intervals were added since the last [`Cumulative::encode`].
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Every series' total so far, as `ExportMetricsServiceRequest`s of
    /// at most `max_series` series each (a metric's series may be split
    /// between two), with the data points each holds.
    pub fn encode(&mut self, max_series: usize) -> Vec<(Vec<u8>, u64)> {
        self.fresh = false;
        let entries: Vec<(&SeriesKey, &Total)> = self.totals.iter().collect();
        entries
            .chunks(max_series.max(1))
            .map(|chunk| {
                let points = chunk
                    .iter()
                    .map(|(_, t)| match t {
                        Total::Rate { .. } => 2,
                        _ => 1,
                    })
                    .sum();
                (self.request(chunk), points)
            })
            .collect()
    }

    /// One `ExportMetricsServiceRequest` of `entries`.
    fn request(&self, entries: &[(&SeriesKey, &Total)]) -> Vec<u8> {
        let start = self.start_unix_ns.unwrap_or(self.end_unix_ns);
        let time = self.end_unix_ns;
        let mut w = Writer::new();
        let rm = w.begin(1); // resource_metrics
        let res = w.begin(1); // resource
        attribute(&mut w, 1, "service.name", &self.naming.service_name);
        attribute(&mut w, 1, "service.version", &self.naming.service_version);
        w.end(res);
        let sm = w.begin(2); // scope_metrics
        let scope = w.begin(1);
        w.string(1, SCOPE);
        w.end(scope);
        for group in entries.chunk_by(|a, b| a.0.metric == b.0.metric) {
            let metric = group[0].0.metric;
            let name = format!("{}{}", self.naming.metric_prefix, metric.name());
            let unit = match metric.unit() {
                Unit::Time => "ms",
                Unit::Data => "By",
                Unit::Default => "",
            };
            match metric.kind() {
                MetricKind::Counter => {
                    self.sum(&mut w, &name, unit, group, start, time, |t| match t {
                        Total::Counter(c) => Number::Double(*c),
                        _ => Number::Double(0.0),
                    })
                }
                MetricKind::Rate => {
                    for (suffix, pick) in [(".occurred", true), (".total", false)] {
                        let name = format!("{name}{suffix}");
                        self.sum(&mut w, &name, "", group, start, time, |t| match t {
                            Total::Rate { trues, total } => {
                                Number::Int(if pick { *trues } else { *total })
                            }
                            _ => Number::Int(0),
                        });
                    }
                }
                MetricKind::Gauge => {
                    let m = w.begin(2);
                    w.string(1, &name);
                    if !unit.is_empty() {
                        w.string(3, unit);
                    }
                    let gauge = w.begin(5);
                    for (key, total) in group {
                        let value = match total {
                            Total::Gauge(g) => *g,
                            _ => 0.0,
                        };
                        let p = w.begin(1);
                        self.attributes(&mut w, 7, key);
                        w.fixed64(3, time);
                        w.double(4, value);
                        w.end(p);
                    }
                    w.end(gauge);
                    w.end(m);
                }
                MetricKind::Trend => {
                    let m = w.begin(2);
                    w.string(1, &name);
                    if !unit.is_empty() {
                        w.string(3, unit);
                    }
                    let h = w.begin(9);
                    for (key, total) in group {
                        let Total::Histogram {
                            buckets,
                            count,
                            sum_ns,
                            min_ns,
                            max_ns,
                        } = total
                        else {
                            continue;
                        };
                        let p = w.begin(1);
                        self.attributes(&mut w, 9, key);
                        w.fixed64(2, start);
                        w.fixed64(3, time);
                        w.fixed64(4, *count);
                        w.double(5, *sum_ns as f64 / 1e6);
                        w.packed_fixed64(6, buckets);
                        w.packed_double(7, &BOUNDS);
                        if *count > 0 {
                            w.double(11, *min_ns as f64 / 1e6);
                            w.double(12, *max_ns as f64 / 1e6);
                        }
                        w.end(p);
                    }
                    w.uint(2, CUMULATIVE);
                    w.end(h);
                    w.end(m);
                }
            }
        }
        w.end(sm);
        w.end(rm);
        w.into_bytes()
    }

    /// One monotonic cumulative `Sum` metric over a metric's series.
    #[allow(clippy::too_many_arguments)]
    fn sum(
        &self,
        w: &mut Writer,
        name: &str,
        unit: &str,
        group: &[(&SeriesKey, &Total)],
        start: u64,
        time: u64,
        value: impl Fn(&Total) -> Number,
    ) {
        let m = w.begin(2);
        w.string(1, name);
        if !unit.is_empty() {
            w.string(3, unit);
        }
        let sum = w.begin(7);
        for (key, total) in group {
            let p = w.begin(1);
            self.attributes(w, 7, key);
            w.fixed64(2, start);
            w.fixed64(3, time);
            match value(total) {
                Number::Double(d) => w.double(4, d),
                Number::Int(i) => w.sfixed64(6, i64::try_from(i).unwrap_or(i64::MAX)),
            }
            w.end(p);
        }
        w.uint(2, CUMULATIVE);
        w.uint(3, 1);
        w.end(sum);
        w.end(m);
    }

    /// A series' tags as string attributes in `field` (empty values left
    /// out, as k6 does).
    fn attributes(&self, w: &mut Writer, field: u32, key: &SeriesKey) {
        for (k, v) in key.tags.iter() {
            if !k.is_empty() && !v.is_empty() {
                attribute(w, field, k, v);
            }
        }
    }
}

enum Number {
    Double(f64),
    Int(u64),
}

/// A `KeyValue` with a string value.
fn attribute(w: &mut Writer, field: u32, key: &str, value: &str) {
    let kv = w.begin(field);
    w.string(1, key);
    let any = w.begin(2);
    w.string(1, value);
    w.end(any);
    w.end(kv);
}

#[cfg(test)]
mod tests;
