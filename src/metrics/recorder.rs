//! The recorder: expands compact samples into k6's tagged series and
//! records them, one interval at a time.
//!
//! One recorder runs on one task (it is not shared): VUs send it batches of
//! [`Sample`]s, it records them into the current interval, and once a
//! second [`Recorder::take_interval`] drains that interval into a
//! [`Snapshot`].
//!
//! Tags are built once per distinct combination, never per sample: the
//! recorder caches, for each `(request, status, error, expected)`, the ids
//! of the series every HTTP metric of that combination goes to, and the
//! same for checks, groups and scenarios by their plan index. Recording a
//! sample into series it has seen is a cache lookup and a few counter and
//! histogram updates, with no allocation.
//!
//! Tag precedence, lowest first: scenario tags, request tags, system tags
//! (`scenario`, `name`, `method`, `status`, `group`, `expected_response`,
//! `error`, `check`), then the recorder's extra tags (`agent`, ...), which
//! nothing in a plan can override.
//!
//! Series cardinality is bounded (see [`RecorderOptions::max_series`]): a
//! sample that would need a new series past the bound is folded into its
//! metric's overflow series `{overflow:true, scenario:NAME}` and counted.
//! As in k6, interrupted iterations record neither `iterations` nor
//! `iteration_duration`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::catalog::{Metric, MetricKind};
use super::sample::{ErrorKind, HttpSample, Sample};
use super::snapshot::{SeriesKey, Snapshot};
use super::tags::Interner;
use super::trend::Trend;
use super::value::Value;
use crate::plan::Plan;
use series::PlanContext;

mod series;

/// Metrics that carry a `scenario` tag and so may need an overflow series:
/// every metric but the untagged `vus` and `vus_max`.
const SCENARIO_METRICS: usize = Metric::ALL.len() - 2;

/// Highest accepted `max_series`: far beyond any useful bound, and low
/// enough that series ids always fit a `u32`.
const MAX_SERIES_CEILING: usize = 1 << 24;

/// How the recorder bounds and labels its series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderOptions {
    /// Most series the recorder ever holds. Part of it is reserved for the
    /// overflow series (one per metric and scenario), so a plan with many
    /// scenarios gets the bound raised to at least that reserve plus the
    /// two VU gauges. Values above 2^24 are lowered to it.
    pub max_series: usize,
    /// Tags added to every series (`agent:ID` in a fleet), over any tag of
    /// the same key from the plan.
    pub extra_tags: Vec<(String, String)>,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            max_series: 5000,
            extra_tags: Vec::new(),
        }
    }
}

/// Expands samples into series and records one interval at a time.
#[derive(Debug)]
pub struct Recorder {
    ctx: PlanContext,
    interner: Interner,
    extra: Vec<(Arc<str>, Arc<str>)>,
    /// Every series ever created, by id. Ids are stable for the recorder's
    /// life, which is what lets the caches hold them.
    keys: Vec<SeriesKey>,
    /// This interval's value of each series. A series that saw data last
    /// interval keeps an emptied value (its histogram already sized) so the
    /// next sample does not allocate; one idle for a whole interval is
    /// dropped to `None`.
    values: Vec<Option<Value>>,
    /// Whether each series saw data this interval.
    touched: Vec<bool>,
    /// Ids touched this interval, in first-touch order.
    dirty: Vec<u32>,
    /// Ids touched in the previous interval (their values were emptied).
    prepared: Vec<u32>,
    ids: HashMap<SeriesKey, u32>,
    /// Overflow series by (metric, scenario index).
    overflow_ids: HashMap<(Metric, usize), u32>,
    /// Total bound on `keys.len()`.
    max_series: usize,
    /// Bound on series that are not overflow series.
    regular_limit: usize,
    num_regular: usize,
    overflowed: u64,
    invalid: u64,
    http_cache: HashMap<HttpKey, HttpSlots>,
    check_cache: Vec<Option<Slot>>,
    group_cache: Vec<Option<Slot>>,
    /// Custom metric series by catalog id.
    custom_cache: Vec<Option<(Slot, Metric)>>,
    /// Per scenario: `[iterations, iteration_duration]`.
    iteration_cache: Vec<Option<[Slot; 2]>>,
    dropped_cache: Vec<Option<Slot>>,
    intended_wait_cache: Vec<Option<Slot>>,
    vus: u32,
    vus_max: u32,
    /// Per-sample values kept for outputs that write every sample (k6's
    /// JSON and CSV), when [`Recorder::capture_points`] asked for them.
    points: Option<Vec<Point>>,
}

/// One sample's value in one series, in the unit k6 writes it: counts,
/// bytes, 0 or 1 for rates, milliseconds for time trends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The series' id: [`Recorder::keys_from`] names it.
    pub series: u32,
    pub value: f64,
}

/// A series id and whether it is an overflow series (samples recorded
/// into it count as overflowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    id: u32,
    folded: bool,
}

/// What distinguishes the tags of two HTTP samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HttpKey {
    request: u32,
    status: u16,
    error: Option<ErrorKind>,
    expected: Option<bool>,
    /// For the `proto` and `tls_version` tags (see [`HttpSample`]).
    proto: u8,
    tls: u8,
}

/// The series of every HTTP metric for one [`HttpKey`].
#[derive(Debug, Clone, Copy)]
struct HttpSlots {
    reqs: u32,
    /// `http_req_duration` and the six phase trends, in [`PHASES`] order.
    trends: [u32; 7],
    /// `None` for samples no response callback judged.
    failed: Option<u32>,
    sent: u32,
    received: u32,
    /// Created on the first sample that has an intended time.
    intended: Option<u32>,
    /// Any of the above is an overflow series.
    folded: bool,
}

/// The trend metrics of an HTTP sample, in [`HttpSlots::trends`] order.
const PHASES: [Metric; 7] = [
    Metric::HttpReqDuration,
    Metric::HttpReqBlocked,
    Metric::HttpReqConnecting,
    Metric::HttpReqTlsHandshaking,
    Metric::HttpReqSending,
    Metric::HttpReqWaiting,
    Metric::HttpReqReceiving,
];

/// Bound on cached HTTP combinations, as a multiple of `max_series`; past
/// it new combinations are resolved on every sample instead of cached.
const HTTP_CACHE_FACTOR: usize = 4;

impl Recorder {
    pub fn new(plan: &Plan, opts: RecorderOptions) -> Recorder {
        let mut interner = Interner::new();
        let ctx = PlanContext::new(plan, &mut interner);
        let extra = opts
            .extra_tags
            .iter()
            .map(|(k, v)| (interner.intern(k), interner.intern(v)))
            .collect();
        let reserve = SCENARIO_METRICS * ctx.scenarios.len();
        let max_series = opts
            .max_series
            .clamp(reserve + 2, MAX_SERIES_CEILING.max(reserve + 2));
        let n_scenarios = ctx.scenarios.len();
        let mut rec = Recorder {
            check_cache: vec![None; ctx.checks.len()],
            group_cache: vec![None; ctx.groups.len()],
            custom_cache: Vec::new(),
            iteration_cache: vec![None; n_scenarios],
            dropped_cache: vec![None; n_scenarios],
            intended_wait_cache: vec![None; n_scenarios],
            ctx,
            interner,
            extra,
            keys: Vec::new(),
            values: Vec::new(),
            touched: Vec::new(),
            dirty: Vec::new(),
            prepared: Vec::new(),
            ids: HashMap::new(),
            overflow_ids: HashMap::new(),
            max_series,
            regular_limit: max_series - reserve,
            num_regular: 0,
            overflowed: 0,
            invalid: 0,
            http_cache: HashMap::new(),
            vus: 0,
            vus_max: 0,
            points: None,
        };
        // The VU gauges exist from the start so they can never overflow.
        let gauge_tags = rec.tags(&[], &[], &[]);
        rec.vus = rec.create(SeriesKey::new(Metric::Vus, gauge_tags.clone()));
        rec.vus_max = rec.create(SeriesKey::new(Metric::VusMax, gauge_tags));
        rec.num_regular = 2;
        rec
    }

    /// From now on, keeps every value recorded as a [`Point`] until
    /// [`Recorder::take_points`] takes them (costs nothing when not asked).
    pub fn capture_points(&mut self) {
        self.points.get_or_insert_with(Vec::new);
    }

    /// The points recorded since the last call, in recording order.
    pub fn take_points(&mut self) -> Vec<Point> {
        self.points.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The keys of series `from..`: ids are stable and only grow, so a
    /// consumer of points mirrors the key list by asking for what is new.
    pub fn keys_from(&self, from: usize) -> &[SeriesKey] {
        self.keys.get(from..).unwrap_or(&[])
    }

    /// Records one sample into the current interval.
    pub fn record(&mut self, s: &Sample) {
        match *s {
            Sample::Http(ref h) => self.record_http(h),
            Sample::Check { check, ok } => match self.check_slot(check.0 as usize) {
                Some(slot) => self.add_rate(slot, ok),
                None => self.invalid += 1,
            },
            Sample::Iteration {
                scenario,
                duration,
                interrupted,
            } => {
                if interrupted {
                    return;
                }
                match self.iteration_slots(usize::from(scenario)) {
                    Some([count, time]) => {
                        self.add_counter(count, 1.0);
                        self.add_trend(time, duration);
                    }
                    None => self.invalid += 1,
                }
            }
            Sample::Group { group, duration } => match self.group_slot(group.0 as usize) {
                Some(slot) => self.add_trend(slot, duration),
                None => self.invalid += 1,
            },
            Sample::Dropped { scenario, count } => match self.dropped_slot(usize::from(scenario)) {
                Some(slot) => self.add_counter(slot, f64::from(count)),
                None => self.invalid += 1,
            },
            Sample::IntendedWait { scenario, wait } => {
                match self.intended_wait_slot(usize::from(scenario)) {
                    Some(slot) => self.add_trend(slot, wait),
                    None => self.invalid += 1,
                }
            }
            Sample::Vus { active, max } => {
                self.set_gauge(self.vus, active as f64);
                self.set_gauge(self.vus_max, max as f64);
            }
            Sample::Custom { series, value } => self.record_custom(series, value),
        }
    }

    fn record_custom(&mut self, series: u32, value: f64) {
        match self.custom_slot(series as usize) {
            Some((slot, metric)) if value.is_finite() => match metric.kind() {
                MetricKind::Counter => self.add_counter(slot, value),
                MetricKind::Gauge => {
                    self.count_folded(slot);
                    self.set_gauge(slot.id, value);
                }
                MetricKind::Rate => self.add_rate(slot, value != 0.0),
                // Kept as nanoseconds of "ms": min, max and avg are exact
                // to 1 ns (six decimals), percentiles to 1 µs and 0.1 %;
                // negatives are 0.
                MetricKind::Trend => {
                    let d = Duration::try_from_secs_f64(value.max(0.0) / 1000.0)
                        .unwrap_or(Duration::MAX);
                    self.count_folded(slot);
                    self.bump(slot.id, |v| add_trend_value(v, d));
                    // The value as the script gave it, in its own unit.
                    self.point(slot.id, value);
                }
            },
            _ => self.invalid += 1,
        }
    }

    /// Records a batch, in order.
    pub fn record_all(&mut self, samples: &[Sample]) {
        for s in samples {
            self.record(s);
        }
    }

    /// Ends the current interval: returns every series that saw data since
    /// the last call (sorted by key) and starts a new, empty interval.
    pub fn take_interval(&mut self, start_unix_ms: u64, duration: Duration) -> Snapshot {
        // Series idle for a whole interval give their emptied values back.
        for &id in &self.prepared {
            if !self.touched[id as usize] {
                self.values[id as usize] = None;
            }
        }
        let mut series = Vec::with_capacity(self.dirty.len());
        for &id in &self.dirty {
            let i = id as usize;
            self.touched[i] = false;
            let Some(value) = self.values[i].take() else {
                continue;
            };
            // Leave an empty value of the same shape, so that the next
            // interval's first sample neither allocates nor resizes.
            self.values[i] = match &value {
                Value::Trend(t) => Some(Value::Trend(Box::new(t.emptied()))),
                Value::Counter(_) => Some(Value::Counter(0.0)),
                Value::Rate { .. } => Some(Value::Rate { trues: 0, total: 0 }),
                Value::Gauge { .. } => None,
            };
            series.push((self.keys[i].clone(), value));
        }
        // Reuse both id buffers: no allocation for them on the hot path.
        std::mem::swap(&mut self.prepared, &mut self.dirty);
        self.dirty.clear();
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            start_unix_ms,
            duration,
            series,
        }
    }

    /// Series created so far (overflow series included).
    pub fn num_series(&self) -> usize {
        self.keys.len()
    }

    /// The bound `num_series` never exceeds (the option, raised to the
    /// overflow reserve when that is larger).
    pub fn max_series(&self) -> usize {
        self.max_series
    }

    /// Samples folded into overflow series because of the series bound.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Samples dropped because they named a request, check, group or
    /// scenario the plan does not have (an engine bug, never user input).
    pub fn invalid_samples(&self) -> u64 {
        self.invalid
    }

    // === recording ===

    fn record_http(&mut self, h: &HttpSample) {
        let k = HttpKey {
            request: h.request.0,
            status: h.status,
            error: h.error,
            expected: h.expected,
            proto: h.proto,
            tls: h.tls,
        };
        let slots = match self.http_cache.get(&k) {
            Some(slots) => *slots,
            None => match self.http_slots(k) {
                Some(slots) => {
                    if self.http_cache.len() < HTTP_CACHE_FACTOR.saturating_mul(self.max_series) {
                        self.http_cache.insert(k, slots);
                    }
                    slots
                }
                None => {
                    self.invalid += 1;
                    return;
                }
            },
        };
        if slots.folded {
            self.overflowed += 1;
        }
        let t = &h.timings;
        let phases = [
            // `Timings::duration`, saturating: no timing may panic here.
            t.sending
                .saturating_add(t.waiting)
                .saturating_add(t.receiving),
            t.blocked,
            t.connecting,
            t.tls_handshaking,
            t.sending,
            t.waiting,
            t.receiving,
        ];
        self.bump(slots.reqs, |v| add_counter_value(v, 1.0));
        self.point(slots.reqs, 1.0);
        for (id, d) in slots.trends.into_iter().zip(phases) {
            self.bump(id, |v| add_trend_value(v, d));
            self.point(id, millis(d));
        }
        if let (Some(failed), Some(expected)) = (slots.failed, h.expected) {
            self.bump(failed, |v| add_rate_value(v, !expected));
            self.point(failed, f64::from(u8::from(!expected)));
        }
        self.bump(slots.sent, |v| add_counter_value(v, h.bytes_sent as f64));
        self.point(slots.sent, h.bytes_sent as f64);
        self.bump(slots.received, |v| {
            add_counter_value(v, h.bytes_received as f64)
        });
        self.point(slots.received, h.bytes_received as f64);
        if let Some(intended) = h.intended {
            let id = match slots.intended {
                Some(id) => id,
                None => match self.intended_slot(k) {
                    Some(slot) => {
                        // Folded only now: this sample was not counted above.
                        if slot.folded && !slots.folded {
                            self.overflowed += 1;
                        }
                        slot.id
                    }
                    None => return,
                },
            };
            self.bump(id, |v| add_trend_value(v, intended));
            self.point(id, millis(intended));
        }
    }

    /// Keeps a point when points are captured.
    fn point(&mut self, id: u32, value: f64) {
        if let Some(points) = &mut self.points {
            points.push(Point { series: id, value });
        }
    }

    /// Marks a series touched and updates its value.
    fn bump(&mut self, id: u32, f: impl FnOnce(&mut Option<Value>)) {
        let i = id as usize;
        if !self.touched[i] {
            self.touched[i] = true;
            self.dirty.push(id);
        }
        f(&mut self.values[i]);
    }

    fn add_counter(&mut self, slot: Slot, n: f64) {
        self.count_folded(slot);
        self.bump(slot.id, |v| add_counter_value(v, n));
        self.point(slot.id, n);
    }

    fn add_rate(&mut self, slot: Slot, ok: bool) {
        self.count_folded(slot);
        self.bump(slot.id, |v| add_rate_value(v, ok));
        self.point(slot.id, f64::from(u8::from(ok)));
    }

    fn add_trend(&mut self, slot: Slot, d: Duration) {
        self.count_folded(slot);
        self.bump(slot.id, |v| add_trend_value(v, d));
        self.point(slot.id, millis(d));
    }

    fn set_gauge(&mut self, id: u32, x: f64) {
        self.point(id, x);
        self.bump(id, |v| match v {
            Some(Value::Gauge { value, min, max }) => {
                *value = x;
                *min = min.min(x);
                *max = max.max(x);
            }
            _ => *v = Some(Value::gauge_of(x)),
        });
    }

    fn count_folded(&mut self, slot: Slot) {
        if slot.folded {
            self.overflowed += 1;
        }
    }
}

/// A duration as k6 writes time values: milliseconds with their fraction.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn add_counter_value(v: &mut Option<Value>, n: f64) {
    match v {
        Some(Value::Counter(c)) => *c += n,
        _ => *v = Some(Value::Counter(n)),
    }
}

fn add_rate_value(v: &mut Option<Value>, ok: bool) {
    match v {
        Some(Value::Rate { trues, total }) => {
            *trues += u64::from(ok);
            *total += 1;
        }
        _ => *v = Some(Value::rate_of(ok)),
    }
}

fn add_trend_value(v: &mut Option<Value>, d: Duration) {
    match v {
        Some(Value::Trend(t)) => t.record(d),
        _ => *v = Some(Value::Trend(Box::new(Trend::of(d)))),
    }
}

#[cfg(test)]
mod tests;
