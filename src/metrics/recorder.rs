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

use super::catalog::Metric;
use super::sample::{ErrorKind, HttpSample, Sample};
use super::snapshot::{SeriesKey, Snapshot};
use super::tags::{Interner, TagSet, key};
use super::value::{Value, duration_to_us, new_trend, record_us};
use crate::plan::Plan;

/// Metrics that carry a `scenario` tag and so may need an overflow series:
/// every metric but the untagged `vus` and `vus_max`.
const SCENARIO_METRICS: usize = Metric::ALL.len() - 2;

/// How the recorder bounds and labels its series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderOptions {
    /// Most series the recorder ever holds. Part of it is reserved for the
    /// overflow series (one per metric and scenario), so a plan with many
    /// scenarios gets the bound raised to at least that reserve plus the
    /// two VU gauges.
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
    /// Per scenario: `[iterations, iteration_duration]`.
    iteration_cache: Vec<Option<[Slot; 2]>>,
    dropped_cache: Vec<Option<Slot>>,
    intended_wait_cache: Vec<Option<Slot>>,
    vus: u32,
    vus_max: u32,
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
    expected: bool,
}

/// The series of every HTTP metric for one [`HttpKey`].
#[derive(Debug, Clone, Copy)]
struct HttpSlots {
    reqs: u32,
    /// `http_req_duration` and the six phase trends, in [`PHASES`] order.
    trends: [u32; 7],
    failed: u32,
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

/// What the recorder keeps from the plan, with strings interned.
#[derive(Debug)]
struct PlanContext {
    scenarios: Vec<ScenarioCtx>,
    requests: Vec<Option<RequestCtx>>,
    checks: Vec<Option<CheckCtx>>,
    /// `(group path, scenario)` per group id.
    groups: Vec<Option<(Arc<str>, usize)>>,
}

#[derive(Debug)]
struct ScenarioCtx {
    name: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
}

/// Where a check lives: its name, scenario index and group path.
#[derive(Debug, Clone)]
struct CheckCtx {
    name: Arc<str>,
    scenario: usize,
    group: Arc<str>,
}

#[derive(Debug)]
struct RequestCtx {
    scenario: usize,
    name: Arc<str>,
    method: Arc<str>,
    group: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
}

impl PlanContext {
    /// Copies what tagging needs; entries that point at a scenario the plan
    /// does not have are kept as `None` so their samples count as invalid.
    fn new(plan: &Plan, interner: &mut Interner) -> PlanContext {
        fn pairs(tags: &[(String, String)], i: &mut Interner) -> Vec<(Arc<str>, Arc<str>)> {
            tags.iter()
                .map(|(k, v)| (i.intern(k), i.intern(v)))
                .collect()
        }
        let scenarios: Vec<ScenarioCtx> = plan
            .scenarios
            .iter()
            .map(|s| ScenarioCtx {
                name: interner.intern(&s.name),
                tags: pairs(&s.tags, interner),
            })
            .collect();
        let n = scenarios.len();
        let requests = plan
            .requests
            .iter()
            .map(|r| {
                (r.scenario < n).then(|| RequestCtx {
                    scenario: r.scenario,
                    name: interner.intern(&r.name),
                    method: interner.intern(r.method.as_str()),
                    group: interner.intern(&r.group),
                    tags: pairs(&r.tags, interner),
                })
            })
            .collect();
        let checks = plan
            .checks
            .iter()
            .map(|c| {
                (c.scenario < n).then(|| CheckCtx {
                    name: interner.intern(&c.name),
                    scenario: c.scenario,
                    group: interner.intern(&c.group),
                })
            })
            .collect();
        let groups = plan
            .groups
            .iter()
            .map(|g| (g.scenario < n).then(|| (interner.intern(&g.path), g.scenario)))
            .collect();
        PlanContext {
            scenarios,
            requests,
            checks,
            groups,
        }
    }
}

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
        let max_series = opts.max_series.max(reserve + 2);
        let n_scenarios = ctx.scenarios.len();
        let mut rec = Recorder {
            check_cache: vec![None; ctx.checks.len()],
            group_cache: vec![None; ctx.groups.len()],
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
        };
        // The VU gauges exist from the start so they can never overflow.
        let gauge_tags = rec.tags(&[], &[], &[]);
        rec.vus = rec.create(SeriesKey::new(Metric::Vus, gauge_tags.clone()));
        rec.vus_max = rec.create(SeriesKey::new(Metric::VusMax, gauge_tags));
        rec.num_regular = 2;
        rec
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
        for id in std::mem::take(&mut self.prepared) {
            if !self.touched[id as usize] {
                self.values[id as usize] = None;
            }
        }
        let mut series = Vec::with_capacity(self.dirty.len());
        for &id in &self.dirty {
            let i = id as usize;
            self.touched[i] = false;
            let Some(value) = self.values[i].as_mut() else {
                continue;
            };
            let emptied = match value {
                Value::Trend(h) => {
                    let mut fresh = hdrhistogram::Histogram::new_from(h);
                    fresh.auto(true);
                    Some(Value::Trend(Box::new(fresh)))
                }
                Value::Counter(_) => Some(Value::Counter(0.0)),
                Value::Rate { .. } => Some(Value::Rate { trues: 0, total: 0 }),
                Value::Gauge { .. } => None,
            };
            let taken = match emptied {
                Some(e) => std::mem::replace(value, e),
                None => match self.values[i].take() {
                    Some(v) => v,
                    None => continue,
                },
            };
            series.push((self.keys[i].clone(), taken));
        }
        self.prepared = std::mem::take(&mut self.dirty);
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
        };
        let slots = match self.http_cache.get(&k) {
            Some(slots) => *slots,
            None => match self.http_slots(k) {
                Some(slots) => {
                    if self.http_cache.len() < HTTP_CACHE_FACTOR * self.max_series {
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
            t.duration(),
            t.blocked,
            t.connecting,
            t.tls_handshaking,
            t.sending,
            t.waiting,
            t.receiving,
        ];
        self.bump(slots.reqs, |v| add_counter_value(v, 1.0));
        for (id, d) in slots.trends.into_iter().zip(phases) {
            self.bump(id, |v| add_trend_value(v, d));
        }
        self.bump(slots.failed, |v| add_rate_value(v, !h.expected));
        self.bump(slots.sent, |v| add_counter_value(v, h.bytes_sent as f64));
        self.bump(slots.received, |v| {
            add_counter_value(v, h.bytes_received as f64)
        });
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
    }

    fn add_rate(&mut self, slot: Slot, ok: bool) {
        self.count_folded(slot);
        self.bump(slot.id, |v| add_rate_value(v, ok));
    }

    fn add_trend(&mut self, slot: Slot, d: Duration) {
        self.count_folded(slot);
        self.bump(slot.id, |v| add_trend_value(v, d));
    }

    fn set_gauge(&mut self, id: u32, x: f64) {
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

    // === series resolution (cache misses only) ===

    /// Builds a tag set from scenario tags, then `own` tags, then system
    /// tags, then the extra tags (later wins).
    fn tags(
        &self,
        scenario_tags: &[(Arc<str>, Arc<str>)],
        own: &[(Arc<str>, Arc<str>)],
        system: &[(Arc<str>, Arc<str>)],
    ) -> TagSet {
        let mut t = TagSet::new();
        for (k, v) in scenario_tags
            .iter()
            .chain(own)
            .chain(system)
            .chain(&self.extra)
        {
            t.insert(Arc::clone(k), Arc::clone(v));
        }
        t
    }

    fn pair(&mut self, k: &'static str, v: &str) -> (Arc<str>, Arc<str>) {
        (self.interner.intern(k), self.interner.intern(v))
    }

    fn create(&mut self, key: SeriesKey) -> u32 {
        let id = u32::try_from(self.keys.len())
            .expect("invariant: series are bounded far below u32::MAX");
        self.ids.insert(key.clone(), id);
        self.keys.push(key);
        self.values.push(None);
        self.touched.push(false);
        id
    }

    /// The series of `metric` with `tags`, created if the bound allows,
    /// else the metric's overflow series for `scenario`.
    fn resolve(&mut self, metric: Metric, tags: TagSet, scenario: usize) -> Slot {
        self.resolve_all(vec![SeriesKey::new(metric, tags)], scenario)[0]
    }

    /// Resolves series that belong together (the per-status HTTP metrics of
    /// one combination) all or nothing: either every missing one fits under
    /// the bound and is created, or every missing one is folded, so the
    /// counts of related series always agree.
    fn resolve_all(&mut self, keys: Vec<SeriesKey>, scenario: usize) -> Vec<Slot> {
        let missing = keys.iter().filter(|k| !self.ids.contains_key(*k)).count();
        let fits = self.num_regular + missing <= self.regular_limit;
        keys.into_iter()
            .map(|key| {
                if let Some(&id) = self.ids.get(&key) {
                    Slot { id, folded: false }
                } else if fits {
                    self.num_regular += 1;
                    Slot {
                        id: self.create(key),
                        folded: false,
                    }
                } else {
                    self.overflow_slot(key.metric, scenario)
                }
            })
            .collect()
    }

    /// The overflow series of `metric` in `scenario`, created on first use
    /// (its room is reserved, so it never breaks the bound).
    fn overflow_slot(&mut self, metric: Metric, scenario: usize) -> Slot {
        if let Some(&id) = self.overflow_ids.get(&(metric, scenario)) {
            return Slot { id, folded: true };
        }
        let name = Arc::clone(&self.ctx.scenarios[scenario].name);
        let system = [
            self.pair(key::OVERFLOW, "true"),
            (self.interner.intern(key::SCENARIO), name),
        ];
        let tags = self.tags(&[], &[], &system);
        let id = self.create(SeriesKey::new(metric, tags));
        self.overflow_ids.insert((metric, scenario), id);
        Slot { id, folded: true }
    }

    /// System tags of an HTTP sample (without `error` when it succeeded).
    fn http_system_tags(&mut self, k: HttpKey, r: &RequestCtxRef) -> Vec<(Arc<str>, Arc<str>)> {
        let mut system = vec![
            (
                self.interner.intern(key::SCENARIO),
                Arc::clone(&r.scenario_name),
            ),
            (self.interner.intern(key::NAME), Arc::clone(&r.name)),
            (self.interner.intern(key::METHOD), Arc::clone(&r.method)),
            self.pair(key::STATUS, &k.status.to_string()),
            (self.interner.intern(key::GROUP), Arc::clone(&r.group)),
            self.pair(
                key::EXPECTED_RESPONSE,
                if k.expected { "true" } else { "false" },
            ),
        ];
        if let Some(e) = k.error {
            system.push(self.pair(key::ERROR, e.name()));
        }
        system
    }

    fn request_ref(&self, request: u32) -> Option<RequestCtxRef> {
        let r = self.ctx.requests.get(request as usize)?.as_ref()?;
        let s = &self.ctx.scenarios[r.scenario];
        Some(RequestCtxRef {
            scenario: r.scenario,
            scenario_name: Arc::clone(&s.name),
            scenario_tags: s.tags.clone(),
            name: Arc::clone(&r.name),
            method: Arc::clone(&r.method),
            group: Arc::clone(&r.group),
            tags: r.tags.clone(),
        })
    }

    fn http_slots(&mut self, k: HttpKey) -> Option<HttpSlots> {
        let r = self.request_ref(k.request)?;
        let system = self.http_system_tags(k, &r);
        let tags = self.tags(&r.scenario_tags, &r.tags, &system);
        let data_system = [
            (
                self.interner.intern(key::SCENARIO),
                Arc::clone(&r.scenario_name),
            ),
            (self.interner.intern(key::GROUP), Arc::clone(&r.group)),
        ];
        let data_tags = self.tags(&r.scenario_tags, &[], &data_system);
        // Everything that splits by status resolves as one unit; the data
        // counters (shared by every status) as another.
        let per_status: Vec<SeriesKey> = [Metric::HttpReqs, Metric::HttpReqFailed]
            .into_iter()
            .chain(PHASES)
            .map(|m| SeriesKey::new(m, tags.clone()))
            .collect();
        let s = self.resolve_all(per_status, r.scenario);
        let data = [Metric::DataSent, Metric::DataReceived]
            .map(|m| SeriesKey::new(m, data_tags.clone()))
            .to_vec();
        let d = self.resolve_all(data, r.scenario);
        let folded = s.iter().chain(&d).any(|slot| slot.folded);
        let mut trends = [0; 7];
        for (id, slot) in trends.iter_mut().zip(&s[2..]) {
            *id = slot.id;
        }
        let (reqs, failed, sent, received) = (s[0].id, s[1].id, d[0].id, d[1].id);
        Some(HttpSlots {
            reqs,
            trends,
            failed,
            sent,
            received,
            intended: None,
            folded,
        })
    }

    /// Resolves the `http_req_duration_intended` series of a combination
    /// and stores it in the cache entry.
    fn intended_slot(&mut self, k: HttpKey) -> Option<Slot> {
        let r = self.request_ref(k.request)?;
        let system = self.http_system_tags(k, &r);
        let tags = self.tags(&r.scenario_tags, &r.tags, &system);
        let slot = self.resolve(Metric::HttpReqDurationIntended, tags, r.scenario);
        if let Some(entry) = self.http_cache.get_mut(&k) {
            entry.intended = Some(slot.id);
            entry.folded |= slot.folded;
        }
        Some(slot)
    }

    /// A scenario-scoped series: scenario tags, `scenario`, then `system`.
    fn scenario_series(
        &mut self,
        metric: Metric,
        scenario: usize,
        system: &[(&'static str, Arc<str>)],
    ) -> Slot {
        let s = &self.ctx.scenarios[scenario];
        let (name, scenario_tags) = (Arc::clone(&s.name), s.tags.clone());
        let mut sys = vec![(self.interner.intern(key::SCENARIO), name)];
        for (k, v) in system {
            sys.push((self.interner.intern(k), Arc::clone(v)));
        }
        let tags = self.tags(&scenario_tags, &[], &sys);
        self.resolve(metric, tags, scenario)
    }

    fn check_slot(&mut self, check: usize) -> Option<Slot> {
        if let Some(Some(slot)) = self.check_cache.get(check) {
            return Some(*slot);
        }
        let c = self.ctx.checks.get(check)?.clone()?;
        let slot = self.scenario_series(
            Metric::Checks,
            c.scenario,
            &[(key::CHECK, c.name), (key::GROUP, c.group)],
        );
        self.check_cache[check] = Some(slot);
        Some(slot)
    }

    fn group_slot(&mut self, group: usize) -> Option<Slot> {
        if let Some(Some(slot)) = self.group_cache.get(group) {
            return Some(*slot);
        }
        let (path, scenario) = self.ctx.groups.get(group)?.clone()?;
        let slot = self.scenario_series(Metric::GroupDuration, scenario, &[(key::GROUP, path)]);
        self.group_cache[group] = Some(slot);
        Some(slot)
    }

    fn iteration_slots(&mut self, scenario: usize) -> Option<[Slot; 2]> {
        match self.iteration_cache.get(scenario)? {
            Some(slots) => Some(*slots),
            None => {
                let slots = [
                    self.scenario_series(Metric::Iterations, scenario, &[]),
                    self.scenario_series(Metric::IterationDuration, scenario, &[]),
                ];
                self.iteration_cache[scenario] = Some(slots);
                Some(slots)
            }
        }
    }

    fn dropped_slot(&mut self, scenario: usize) -> Option<Slot> {
        match self.dropped_cache.get(scenario)? {
            Some(slot) => Some(*slot),
            None => {
                let slot = self.scenario_series(Metric::DroppedIterations, scenario, &[]);
                self.dropped_cache[scenario] = Some(slot);
                Some(slot)
            }
        }
    }

    fn intended_wait_slot(&mut self, scenario: usize) -> Option<Slot> {
        match self.intended_wait_cache.get(scenario)? {
            Some(slot) => Some(*slot),
            None => {
                let yes = self.interner.intern("true");
                let slot = self.scenario_series(
                    Metric::HttpReqDurationIntended,
                    scenario,
                    &[(key::DROPPED, yes)],
                );
                self.intended_wait_cache[scenario] = Some(slot);
                Some(slot)
            }
        }
    }
}

/// The request's tagging context, copied out so the recorder can be
/// borrowed mutably while building tags.
struct RequestCtxRef {
    scenario: usize,
    scenario_name: Arc<str>,
    scenario_tags: Vec<(Arc<str>, Arc<str>)>,
    name: Arc<str>,
    method: Arc<str>,
    group: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
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
        Some(Value::Trend(h)) => record_us(h, duration_to_us(d)),
        _ => {
            let mut h = new_trend();
            record_us(&mut h, duration_to_us(d));
            *v = Some(Value::Trend(Box::new(h)));
        }
    }
}

#[cfg(test)]
mod tests;
