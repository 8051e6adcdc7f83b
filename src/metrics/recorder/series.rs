//! Series resolution for the recorder, run on cache misses only: what the
//! recorder keeps from the plan, how tags are built (scenario tags, then
//! request tags, then system tags, then the extra tags), and how a new
//! series is admitted under the bound or folded into its overflow series.

use std::sync::Arc;

use super::{HttpKey, HttpSlots, PHASES, Recorder, Slot};
use crate::metrics::ErrorKind;
use crate::metrics::catalog::Metric;
use crate::metrics::snapshot::SeriesKey;
use crate::metrics::tags::{Interner, TagSet, key};
use crate::plan::dynamic::DynamicCatalog;
use crate::plan::{Plan, SystemTag, SystemTags};

/// What the recorder keeps from the plan, with strings interned.
#[derive(Debug)]
pub(super) struct PlanContext {
    pub(super) scenarios: Vec<ScenarioCtx>,
    requests: Vec<Option<RequestCtx>>,
    pub(super) checks: Vec<Option<CheckCtx>>,
    /// `(group path, scenario)` per group id.
    pub(super) groups: Vec<Option<(Arc<str>, usize)>>,
    /// Custom metric series by id: `(metric, scenario, group, own tags)`.
    pub(super) custom: Vec<Option<CustomCtx>>,
    /// Where ids past the plan's own come from (a script's requests,
    /// checks and groups); their entries are appended to the tables above
    /// on first sight.
    dynamic: Arc<DynamicCatalog>,
    /// `systemTags`: the system tags series carry.
    system: SystemTags,
}

#[derive(Debug)]
pub(super) struct ScenarioCtx {
    name: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
}

/// A custom metric series as the recorder keeps it.
#[derive(Debug, Clone)]
pub(super) struct CustomCtx {
    metric: Metric,
    scenario: usize,
    group: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
}

/// Where a check lives: its name, scenario index and group path.
#[derive(Debug, Clone)]
pub(super) struct CheckCtx {
    name: Arc<str>,
    scenario: usize,
    group: Arc<str>,
    /// A script's own tags on the check (`check(v, sets, tags)`).
    tags: Vec<(Arc<str>, Arc<str>)>,
}

#[derive(Debug)]
struct RequestCtx {
    scenario: usize,
    name: Arc<str>,
    /// The `url` tag: the URL template's source (a script's: its name).
    url: Arc<str>,
    method: Arc<str>,
    group: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
}

impl PlanContext {
    /// Copies what tagging needs; entries that point at a scenario the plan
    /// does not have are kept as `None` so their samples count as invalid.
    pub(super) fn new(plan: &Plan, interner: &mut Interner) -> PlanContext {
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
                    url: interner.intern(r.url.source()),
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
                    tags: Vec::new(),
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
            custom: Vec::new(),
            dynamic: Arc::clone(&plan.dynamic),
            system: plan.system_tags,
        }
    }

    /// Makes sure `requests[id]` exists if the catalog knows `id`.
    fn learn_request(&mut self, id: u32, interner: &mut Interner) {
        let i = id as usize;
        // Ids reach the recorder in any order: a slot below the length may
        // still be unlearned.
        if self.requests.get(i).is_some_and(Option::is_some) {
            return;
        }
        let Some(d) = self.dynamic.request(id) else {
            return;
        };
        let n = self.scenarios.len();
        if self.requests.len() <= i {
            self.requests.resize_with(i + 1, || None);
        }
        self.requests[i] = (d.scenario < n).then(|| RequestCtx {
            scenario: d.scenario,
            name: interner.intern(&d.name),
            url: interner.intern(&d.name),
            method: interner.intern(&d.method),
            group: interner.intern(&d.group),
            tags: d
                .tags
                .iter()
                .map(|(k, v)| (interner.intern(k), interner.intern(v)))
                .collect(),
        });
    }

    /// Makes sure `checks[id]` exists if the catalog knows `id`.
    fn learn_check(&mut self, id: usize, interner: &mut Interner) {
        if self.checks.get(id).is_some_and(Option::is_some) {
            return;
        }
        let Some((c, tags)) = u32::try_from(id).ok().and_then(|i| self.dynamic.check(i)) else {
            return;
        };
        let n = self.scenarios.len();
        if self.checks.len() <= id {
            self.checks.resize_with(id + 1, || None);
        }
        self.checks[id] = (c.scenario < n).then(|| CheckCtx {
            name: interner.intern(&c.name),
            scenario: c.scenario,
            group: interner.intern(&c.group),
            tags: tags
                .iter()
                .map(|(k, v)| (interner.intern(k), interner.intern(v)))
                .collect(),
        });
    }

    /// Makes sure `custom[id]` exists if the catalog knows `id` and its
    /// metric is registered.
    fn learn_custom(&mut self, id: usize, interner: &mut Interner) {
        if self.custom.get(id).is_some_and(Option::is_some) {
            return;
        }
        let Some((name, scenario, group, tags)) =
            u32::try_from(id).ok().and_then(|i| self.dynamic.series(i))
        else {
            return;
        };
        let Some(metric) = Metric::from_name(&name).filter(|m| m.is_custom()) else {
            return;
        };
        if self.custom.len() <= id {
            self.custom.resize_with(id + 1, || None);
        }
        self.custom[id] = (scenario < self.scenarios.len()).then(|| CustomCtx {
            metric,
            scenario,
            group: interner.intern(&group),
            tags: tags
                .iter()
                .map(|(k, v)| (interner.intern(k), interner.intern(v)))
                .collect(),
        });
    }

    /// Makes sure `groups[id]` exists if the catalog knows `id`.
    fn learn_group(&mut self, id: usize, interner: &mut Interner) {
        if self.groups.get(id).is_some_and(Option::is_some) {
            return;
        }
        let Some(g) = u32::try_from(id).ok().and_then(|i| self.dynamic.group(i)) else {
            return;
        };
        let n = self.scenarios.len();
        if self.groups.len() <= id {
            self.groups.resize_with(id + 1, || None);
        }
        self.groups[id] = (g.scenario < n).then(|| (interner.intern(&g.path), g.scenario));
    }
}

impl Recorder {
    /// Builds a tag set from scenario tags, then `own` tags, then system
    /// tags, then the extra tags (later wins).
    pub(super) fn tags(
        &self,
        scenario_tags: &[(Arc<str>, Arc<str>)],
        own: &[(Arc<str>, Arc<str>)],
        system: &[(Arc<str>, Arc<str>)],
    ) -> TagSet {
        let mut t = TagSet::new();
        let enabled = |k: &str| SystemTag::from_name(k).is_none_or(|tag| self.ctx.system.has(tag));
        let system = system.iter().filter(|(k, _)| enabled(k));
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

    pub(super) fn create(&mut self, key: SeriesKey) -> u32 {
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
            (self.interner.intern(key::URL), Arc::clone(&r.url)),
        ];
        if let Some(expected) = k.expected {
            system.push(self.pair(
                key::EXPECTED_RESPONSE,
                if expected { "true" } else { "false" },
            ));
        }
        if let Some(e) = k.error {
            system.push(self.pair(key::ERROR, e.name()));
        }
        let code = ErrorKind::k6_code(k.error, k.status);
        if code != 0 {
            system.push(self.pair(key::ERROR_CODE, &code.to_string()));
        }
        let proto = match k.proto {
            20 => "HTTP/2.0",
            11 => "HTTP/1.1",
            10 => "HTTP/1.0",
            _ => "",
        };
        if !proto.is_empty() {
            system.push(self.pair(key::PROTO, proto));
        }
        match k.tls {
            13 => system.push(self.pair(key::TLS_VERSION, "tls1.3")),
            12 => system.push(self.pair(key::TLS_VERSION, "tls1.2")),
            _ => {}
        }
        system
    }

    fn request_ref(&mut self, request: u32) -> Option<RequestCtxRef> {
        self.ctx.learn_request(request, &mut self.interner);
        let r = self.ctx.requests.get(request as usize)?.as_ref()?;
        let s = &self.ctx.scenarios[r.scenario];
        Some(RequestCtxRef {
            scenario: r.scenario,
            scenario_name: Arc::clone(&s.name),
            scenario_tags: s.tags.clone(),
            name: Arc::clone(&r.name),
            url: Arc::clone(&r.url),
            method: Arc::clone(&r.method),
            group: Arc::clone(&r.group),
            tags: r.tags.clone(),
        })
    }

    pub(super) fn http_slots(&mut self, k: HttpKey) -> Option<HttpSlots> {
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
        // `http_req_failed` only for a sample the response callback judged.
        let failed = k.expected.map(|_| Metric::HttpReqFailed);
        let per_status: Vec<SeriesKey> = [Metric::HttpReqs]
            .into_iter()
            .chain(PHASES)
            .chain(failed)
            .map(|m| SeriesKey::new(m, tags.clone()))
            .collect();
        let s = self.resolve_all(per_status, r.scenario);
        let data = [Metric::DataSent, Metric::DataReceived]
            .map(|m| SeriesKey::new(m, data_tags.clone()))
            .to_vec();
        let d = self.resolve_all(data, r.scenario);
        let folded = s.iter().chain(&d).any(|slot| slot.folded);
        let mut trends = [0; 7];
        for (id, slot) in trends.iter_mut().zip(&s[1..]) {
            *id = slot.id;
        }
        let failed = s.get(1 + PHASES.len()).map(|slot| slot.id);
        let (reqs, sent, received) = (s[0].id, d[0].id, d[1].id);
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
    pub(super) fn intended_slot(&mut self, k: HttpKey) -> Option<Slot> {
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
        self.scenario_series_tagged(metric, scenario, &[], system)
    }

    /// As [`Self::scenario_series`], with the sample's own tags under the
    /// system tags.
    fn scenario_series_tagged(
        &mut self,
        metric: Metric,
        scenario: usize,
        own: &[(Arc<str>, Arc<str>)],
        system: &[(&'static str, Arc<str>)],
    ) -> Slot {
        let s = &self.ctx.scenarios[scenario];
        let (name, scenario_tags) = (Arc::clone(&s.name), s.tags.clone());
        let mut sys = vec![(self.interner.intern(key::SCENARIO), name)];
        for (k, v) in system {
            sys.push((self.interner.intern(k), Arc::clone(v)));
        }
        let tags = self.tags(&scenario_tags, own, &sys);
        self.resolve(metric, tags, scenario)
    }

    pub(super) fn check_slot(&mut self, check: usize) -> Option<Slot> {
        if let Some(Some(slot)) = self.check_cache.get(check) {
            return Some(*slot);
        }
        self.ctx.learn_check(check, &mut self.interner);
        let c = self.ctx.checks.get(check)?.clone()?;
        if self.check_cache.len() <= check {
            self.check_cache.resize(check + 1, None);
        }
        let slot = self.scenario_series_tagged(
            Metric::Checks,
            c.scenario,
            &c.tags,
            &[(key::CHECK, c.name), (key::GROUP, c.group)],
        );
        self.check_cache[check] = Some(slot);
        Some(slot)
    }

    /// The slot of a custom metric series, and its metric.
    pub(super) fn custom_slot(&mut self, series: usize) -> Option<(Slot, Metric)> {
        if let Some(Some(slot)) = self.custom_cache.get(series) {
            return Some(*slot);
        }
        self.ctx.learn_custom(series, &mut self.interner);
        let c = self.ctx.custom.get(series)?.clone()?;
        if self.custom_cache.len() <= series {
            self.custom_cache.resize(series + 1, None);
        }
        let slot =
            self.scenario_series_tagged(c.metric, c.scenario, &c.tags, &[(key::GROUP, c.group)]);
        self.custom_cache[series] = Some((slot, c.metric));
        Some((slot, c.metric))
    }

    pub(super) fn group_slot(&mut self, group: usize) -> Option<Slot> {
        if let Some(Some(slot)) = self.group_cache.get(group) {
            return Some(*slot);
        }
        self.ctx.learn_group(group, &mut self.interner);
        let (path, scenario) = self.ctx.groups.get(group)?.clone()?;
        if self.group_cache.len() <= group {
            self.group_cache.resize(group + 1, None);
        }
        let slot = self.scenario_series(Metric::GroupDuration, scenario, &[(key::GROUP, path)]);
        self.group_cache[group] = Some(slot);
        Some(slot)
    }

    pub(super) fn iteration_slots(&mut self, scenario: usize) -> Option<[Slot; 2]> {
        match self.iteration_cache.get(scenario)? {
            Some(slots) => Some(*slots),
            None => {
                // k6 tags iterations with the group they end in: the
                // root, `""`.
                let root = [(key::GROUP, self.interner.intern(""))];
                let slots = [
                    self.scenario_series(Metric::Iterations, scenario, &root),
                    self.scenario_series(Metric::IterationDuration, scenario, &root),
                ];
                self.iteration_cache[scenario] = Some(slots);
                Some(slots)
            }
        }
    }

    pub(super) fn dropped_slot(&mut self, scenario: usize) -> Option<Slot> {
        match self.dropped_cache.get(scenario)? {
            Some(slot) => Some(*slot),
            None => {
                let slot = self.scenario_series(Metric::DroppedIterations, scenario, &[]);
                self.dropped_cache[scenario] = Some(slot);
                Some(slot)
            }
        }
    }

    pub(super) fn intended_wait_slot(&mut self, scenario: usize) -> Option<Slot> {
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
    url: Arc<str>,
    method: Arc<str>,
    group: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
}
