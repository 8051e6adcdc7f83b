//! The binary form of a [`Snapshot`], as agents exchange them.
//!
//! ```text
//! snapshot  = magic "VLYS" · version u8 (= 2)
//!             · varint start_unix_ms · varint duration_secs · varint duration_subsec_nanos
//!             · varint n_strings · n_strings × (varint len · UTF-8 bytes)
//!             · varint n_series  · n_series × series
//! series    = metric · varint n_tags
//!             · n_tags × (varint key_string · varint value_string) · value
//! metric    = u8 built-in id (see `metric_id`)
//!           | 0xFF · kind u8 (0 counter, 1 gauge, 2 rate, 3 trend)
//!             · unit u8 (0 default, 1 time, 2 data) · varint name_string
//! value     = counter: f64 LE | gauge: 3 × f64 LE (value, min, max)
//!           | rate: varint trues · varint total
//!           | trend: varint min_ns · varint max_ns · varint sum_ns (up to 128 bits)
//!                    · varint len · len bytes of HdrHistogram V2 + DEFLATE
//! ```
//!
//! Varints are unsigned LEB128. Tag strings are stored once in the string
//! table and referred to by index. Series and the tags within a series are
//! in strictly ascending order, so one snapshot has one encoding.
//!
//! A trend's exact minimum, maximum and sum (nanoseconds) travel before its
//! histogram of whole microseconds, and must fit it (see
//! [`Trend::from_parts`]). Version 1, without them, is still read: its
//! trends get statistics estimated from their buckets
//! ([`Trend::from_histogram`]), as every statistic was then. Any other
//! version is refused with its number.
//!
//! Decoding never panics and never trusts a length: every count is bounded
//! by the bytes that remain, each histogram is capped (see [`hdr`]), and
//! the memory all decoded histograms need together is bounded
//! ([`DEFAULT_HISTOGRAM_BUDGET`]). Errors carry the byte offset.

pub mod hdr;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use super::catalog::{Metric, MetricKind, Unit};
use super::snapshot::{SeriesKey, Snapshot};
use super::tags::TagSet;
use super::trend::Trend;
use super::value::Value;

const MAGIC: &[u8; 4] = b"VLYS";
/// Largest magnitude of a decoded counter or gauge (2^53: every integer
/// up to it is exact as an f64).
const MAX_NUMBER: f64 = 9_007_199_254_740_992.0;
/// The version this build writes.
const VERSION: u8 = 2;
/// The version before exact trend statistics, still read.
const VERSION_1: u8 = 1;

/// Default bound on the memory of all trend histograms of one decoded
/// snapshot (their counts arrays). A recorder at its default 5000 series,
/// every one a trend spanning 1 µs to a minute, needs about 700 MiB; this
/// admits that and refuses the many times more a hostile peer could ask
/// for with tiny histograms that claim wide ranges.
pub const DEFAULT_HISTOGRAM_BUDGET: usize = 1 << 30;

/// A snapshot could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid snapshot at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Where in the input the problem starts.
    pub offset: usize,
    pub reason: DecodeReason,
}

/// What was wrong with an encoded snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeReason {
    #[error("input ends inside {what} ({needed} more byte(s) needed)")]
    Truncated { what: &'static str, needed: usize },
    #[error("magic {found:02x?} is not a Volley snapshot's \"VLYS\"")]
    Magic { found: Vec<u8> },
    #[error(
        "version {found} is not supported (this build reads versions {VERSION_1} and {VERSION})"
    )]
    Version { found: u8 },
    #[error("{what} is not a valid varint (more than {bits} bits)")]
    Varint { what: &'static str, bits: u32 },
    #[error("{what} is {value}, but at most {limit} fit in the remaining input")]
    Length {
        what: &'static str,
        value: u64,
        limit: usize,
    },
    #[error("duration nanoseconds {value} are not below 1000000000")]
    Nanos { value: u64 },
    #[error("string #{index} is not valid UTF-8")]
    Utf8 { index: usize },
    #[error("unknown metric id {id} (expected 1..={}, or 255 with a valid custom metric kind, unit and name)", Metric::ALL.len())]
    Metric { id: u8 },
    #[error("string index {index} is out of range ({count} strings)")]
    StringIndex { index: u64, count: usize },
    #[error("tags of series {series} are not strictly ascending by key")]
    TagOrder { series: String },
    #[error("series {series} does not come strictly after the previous series")]
    SeriesOrder { series: String },
    #[error("{what} of series {series} is {value}, expected a number within ±2^53")]
    Number {
        what: &'static str,
        series: String,
        value: String,
    },
    #[error("rate of series {series} has {trues} trues out of {total} samples")]
    Rate {
        series: String,
        trues: u64,
        total: u64,
    },
    #[error("trend histogram of series {series}: {detail}")]
    Histogram { series: String, detail: String },
    #[error("series {series}: the trend's exact statistics do not fit its histogram: {detail}")]
    TrendStats { series: String, detail: String },
    #[error("trend histograms need more than the {budget} bytes allowed")]
    HistogramBudget { budget: usize },
    #[error("{extra} unexpected byte(s) after the last series")]
    Trailing { extra: usize },
}

/// The stable wire id of a metric (independent of the enum's order).
fn metric_id(m: Metric) -> u8 {
    match m {
        Metric::HttpReqs => 1,
        Metric::HttpReqDuration => 2,
        Metric::HttpReqBlocked => 3,
        Metric::HttpReqConnecting => 4,
        Metric::HttpReqTlsHandshaking => 5,
        Metric::HttpReqSending => 6,
        Metric::HttpReqWaiting => 7,
        Metric::HttpReqReceiving => 8,
        Metric::HttpReqFailed => 9,
        Metric::HttpReqDurationIntended => 10,
        Metric::IterationDuration => 11,
        Metric::Iterations => 12,
        Metric::DroppedIterations => 13,
        Metric::DataSent => 14,
        Metric::DataReceived => 15,
        Metric::Vus => 16,
        Metric::VusMax => 17,
        Metric::Checks => 18,
        Metric::GroupDuration => 19,
        // Custom metrics are written by name (`CUSTOM_METRIC`).
        Metric::Custom(_) => CUSTOM_METRIC,
    }
}

/// The metric byte that announces a custom metric (kind, unit, name).
const CUSTOM_METRIC: u8 = 0xFF;

fn kind_id(k: MetricKind) -> u8 {
    match k {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Rate => 2,
        MetricKind::Trend => 3,
    }
}

fn unit_id(u: Unit) -> u8 {
    match u {
        Unit::Default => 0,
        Unit::Time => 1,
        Unit::Data => 2,
    }
}

fn metric_from_id(id: u8) -> Option<Metric> {
    Metric::ALL.into_iter().find(|m| metric_id(*m) == id)
}

impl Snapshot {
    /// The binary form (see the module docs). Deterministic: equal
    /// snapshots in canonical order encode to equal bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut strings: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, u64> = HashMap::new();
        for (key, _) in &self.series {
            if let Metric::Custom(c) = key.metric {
                index.entry(c.name).or_insert_with(|| {
                    strings.push(c.name);
                    strings.len() as u64 - 1
                });
            }
            for (k, v) in key.tags.iter() {
                for s in [k, v] {
                    index.entry(s).or_insert_with(|| {
                        strings.push(s);
                        strings.len() as u64 - 1
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(64 + 32 * self.series.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_varint(&mut out, self.start_unix_ms);
        put_varint(&mut out, self.duration.as_secs());
        put_varint(&mut out, u64::from(self.duration.subsec_nanos()));
        put_varint(&mut out, strings.len() as u64);
        for s in &strings {
            put_varint(&mut out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        put_varint(&mut out, self.series.len() as u64);
        let mut hist = Vec::new();
        for (key, value) in &self.series {
            match key.metric {
                Metric::Custom(c) => {
                    out.push(CUSTOM_METRIC);
                    out.push(kind_id(c.kind));
                    out.push(unit_id(c.unit));
                    put_varint(&mut out, index[c.name]);
                }
                builtin => out.push(metric_id(builtin)),
            }
            put_varint(&mut out, key.tags.len() as u64);
            for (k, v) in key.tags.iter() {
                put_varint(&mut out, index[k]);
                put_varint(&mut out, index[v]);
            }
            match value {
                Value::Counter(c) => out.extend_from_slice(&c.to_le_bytes()),
                Value::Gauge { value, min, max } => {
                    for x in [value, min, max] {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
                Value::Rate { trues, total } => {
                    put_varint(&mut out, *trues);
                    put_varint(&mut out, *total);
                }
                Value::Trend(t) => {
                    put_varint(&mut out, t.min_ns());
                    put_varint(&mut out, t.max_ns());
                    put_varint128(&mut out, t.sum_ns());
                    hist.clear();
                    hdr::encode(t.histogram(), &mut hist);
                    put_varint(&mut out, hist.len() as u64);
                    out.extend_from_slice(&hist);
                }
            }
        }
        out
    }

    /// Reads the binary form, with the default histogram memory budget.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
        Snapshot::decode_with_budget(bytes, DEFAULT_HISTOGRAM_BUDGET)
    }

    /// Reads the binary form; the trend histograms together may need at
    /// most `histogram_budget` bytes of counts.
    pub fn decode_with_budget(
        bytes: &[u8],
        histogram_budget: usize,
    ) -> Result<Snapshot, DecodeError> {
        Decoder {
            r: Reader { buf: bytes, pos: 0 },
            budget: histogram_budget,
            used: 0,
            version: VERSION,
        }
        .snapshot()
    }
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    put_varint128(out, u128::from(v));
}

fn put_varint128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over the input that turns every short read into an error.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn fail<T>(&self, at: usize, reason: DecodeReason) -> Result<T, DecodeError> {
        Err(DecodeError { offset: at, reason })
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            let needed = n - self.remaining();
            return self.fail(self.pos, DecodeReason::Truncated { what, needed });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail(start, DecodeReason::Varint { what, bits: 64 })
    }

    /// A varint of up to 128 bits (a trend's sum of nanoseconds).
    fn varint128(&mut self, what: &'static str) -> Result<u128, DecodeError> {
        let start = self.pos;
        let mut value = 0u128;
        for shift in (0..128).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u128::from(byte & 0x7f);
            if shift == 126 && bits > 3 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail(start, DecodeReason::Varint { what, bits: 128 })
    }

    /// A count or length of items that each take at least `min_bytes`.
    fn len(&mut self, what: &'static str, min_bytes: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let value = self.varint(what)?;
        let limit = self.remaining() / min_bytes.max(1);
        match usize::try_from(value) {
            Ok(n) if n <= limit => Ok(n),
            _ => self.fail(at, DecodeReason::Length { what, value, limit }),
        }
    }
}

struct Decoder<'a> {
    r: Reader<'a>,
    budget: usize,
    used: usize,
    /// The input's version: 1 has no exact trend statistics.
    version: u8,
}

impl Decoder<'_> {
    fn snapshot(mut self) -> Result<Snapshot, DecodeError> {
        let magic = self.r.bytes(4, "the magic")?;
        if magic != MAGIC {
            return self.r.fail(
                0,
                DecodeReason::Magic {
                    found: magic.to_vec(),
                },
            );
        }
        let version = self.r.u8("the version")?;
        if version != VERSION && version != VERSION_1 {
            return self.r.fail(4, DecodeReason::Version { found: version });
        }
        self.version = version;
        let start_unix_ms = self.r.varint("the start time")?;
        let secs = self.r.varint("the duration")?;
        let at = self.r.pos;
        let nanos = self.r.varint("the duration")?;
        if nanos >= 1_000_000_000 {
            return self.r.fail(at, DecodeReason::Nanos { value: nanos });
        }
        let duration = Duration::new(secs, nanos as u32);
        let strings = self.strings()?;
        let n = self.r.len("the series count", 3)?;
        let mut series: Vec<(SeriesKey, Value)> = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.r.pos;
            let (key, value) = self.series(&strings)?;
            if let Some((prev, _)) = series.last()
                && *prev >= key
            {
                let series = key.to_string();
                return self.r.fail(at, DecodeReason::SeriesOrder { series });
            }
            series.push((key, value));
        }
        if self.r.remaining() > 0 {
            let extra = self.r.remaining();
            return self.r.fail(self.r.pos, DecodeReason::Trailing { extra });
        }
        Ok(Snapshot {
            start_unix_ms,
            duration,
            series,
        })
    }

    fn strings(&mut self) -> Result<Vec<Arc<str>>, DecodeError> {
        let n = self.r.len("the string count", 1)?;
        let mut strings = Vec::with_capacity(n);
        for index in 0..n {
            let len = self.r.len("a string length", 1)?;
            let at = self.r.pos;
            let bytes = self.r.bytes(len, "a string")?;
            match std::str::from_utf8(bytes) {
                Ok(s) => strings.push(Arc::from(s)),
                Err(_) => return self.r.fail(at, DecodeReason::Utf8 { index }),
            }
        }
        Ok(strings)
    }

    fn string(&mut self, strings: &[Arc<str>]) -> Result<Arc<str>, DecodeError> {
        let at = self.r.pos;
        let index = self.r.varint("a string index")?;
        match usize::try_from(index).ok().and_then(|i| strings.get(i)) {
            Some(s) => Ok(Arc::clone(s)),
            None => self.r.fail(
                at,
                DecodeReason::StringIndex {
                    index,
                    count: strings.len(),
                },
            ),
        }
    }

    fn series(&mut self, strings: &[Arc<str>]) -> Result<(SeriesKey, Value), DecodeError> {
        let at = self.r.pos;
        let id = self.r.u8("a metric id")?;
        let metric = if id == CUSTOM_METRIC {
            let kind = match self.r.u8("a custom metric kind")? {
                0 => MetricKind::Counter,
                1 => MetricKind::Gauge,
                2 => MetricKind::Rate,
                3 => MetricKind::Trend,
                _ => return self.r.fail(at, DecodeReason::Metric { id }),
            };
            let unit = match self.r.u8("a custom metric unit")? {
                0 => Unit::Default,
                1 => Unit::Time,
                2 => Unit::Data,
                _ => return self.r.fail(at, DecodeReason::Metric { id }),
            };
            let name = self.string(strings)?;
            match crate::metrics::catalog::custom(&name, kind, unit) {
                Ok(m) => m,
                Err(_) => return self.r.fail(at, DecodeReason::Metric { id }),
            }
        } else {
            let Some(metric) = metric_from_id(id) else {
                return self.r.fail(at, DecodeReason::Metric { id });
            };
            metric
        };
        let tags_at = self.r.pos;
        let n = self.r.len("a tag count", 2)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((self.string(strings)?, self.string(strings)?));
        }
        let Some(tags) = TagSet::from_sorted(pairs) else {
            let series = metric.name().to_string();
            return self.r.fail(tags_at, DecodeReason::TagOrder { series });
        };
        let key = SeriesKey::new(metric, tags);
        let value = self.value(&key)?;
        Ok((key, value))
    }

    fn value(&mut self, key: &SeriesKey) -> Result<Value, DecodeError> {
        let at = self.r.pos;
        // Bounded so that sums over any realistic number of agents and
        // intervals stay finite and exact.
        let finite = |this: &Self, what: &'static str, x: f64| {
            if x.abs() <= MAX_NUMBER {
                Ok(x)
            } else {
                let (series, value) = (key.to_string(), x.to_string());
                this.r.fail(
                    at,
                    DecodeReason::Number {
                        what,
                        series,
                        value,
                    },
                )
            }
        };
        match key.metric.kind() {
            MetricKind::Counter => {
                let c = self.r.f64("a counter")?;
                Ok(Value::Counter(finite(self, "the count", c)?))
            }
            MetricKind::Gauge => {
                let value = self.r.f64("a gauge")?;
                let min = self.r.f64("a gauge")?;
                let max = self.r.f64("a gauge")?;
                Ok(Value::Gauge {
                    value: finite(self, "the value", value)?,
                    min: finite(self, "the minimum", min)?,
                    max: finite(self, "the maximum", max)?,
                })
            }
            MetricKind::Rate => {
                let trues = self.r.varint("a rate")?;
                let total = self.r.varint("a rate")?;
                if trues > total {
                    let series = key.to_string();
                    return self.r.fail(
                        at,
                        DecodeReason::Rate {
                            series,
                            trues,
                            total,
                        },
                    );
                }
                Ok(Value::Rate { trues, total })
            }
            MetricKind::Trend => {
                let exact = if self.version == VERSION_1 {
                    None
                } else {
                    let min = self.r.varint("a trend's minimum")?;
                    let max = self.r.varint("a trend's maximum")?;
                    let sum = self.r.varint128("a trend's sum")?;
                    Some((min, max, sum))
                };
                let len = self.r.len("a histogram length", 1)?;
                let body_at = self.r.pos;
                let body = self.r.bytes(len, "a histogram")?;
                let h = match hdr::decode(body) {
                    Ok(h) => h,
                    Err(detail) => {
                        let series = key.to_string();
                        return self
                            .r
                            .fail(body_at, DecodeReason::Histogram { series, detail });
                    }
                };
                self.used = self
                    .used
                    .saturating_add(h.distinct_values().saturating_mul(size_of::<u64>()));
                if self.used > self.budget {
                    let budget = self.budget;
                    return self
                        .r
                        .fail(body_at, DecodeReason::HistogramBudget { budget });
                }
                let trend = match exact {
                    None => Trend::from_histogram(h),
                    Some((min, max, sum)) => match Trend::from_parts(h, min, max, sum) {
                        Ok(t) => t,
                        Err(e) => {
                            let series = key.to_string();
                            return self.r.fail(
                                at,
                                DecodeReason::TrendStats {
                                    series,
                                    detail: e.0,
                                },
                            );
                        }
                    },
                };
                Ok(Value::Trend(Box::new(trend)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
