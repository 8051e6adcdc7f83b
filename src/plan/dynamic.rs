//! Requests, checks and groups that a script declares while it runs.
//!
//! A plan document lists every request, check and group up front, so samples
//! name them by index ([`RequestId`], [`CheckId`], [`GroupId`]) and the
//! recorder expands the index into tags. A script only knows them when it
//! runs (`http.get(url)`, `check(res, {...})`, `group(name, fn)`), so the
//! plan carries this catalog: an append-only table per kind whose ids
//! continue the plan's own numbering. A VU registers a descriptor once (it
//! caches the id), the recorder looks an id up once (it caches the series):
//! the lock here is taken on first sight of a combination, never per sample.
//!
//! The tables are bounded ([`MAX_ENTRIES`]): past the bound, a script that
//! makes a new name per request (a URL with an id in it and no `name` tag)
//! gets a catch-all entry per scenario (tagged `overflow:true`), so its
//! samples still count; the recorder's own series bound keeps memory flat
//! either way.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::types::{CheckId, CheckInfo, GroupId, GroupInfo, RequestId};

/// Most descriptors of one kind a run may declare.
pub const MAX_ENTRIES: usize = 100_000;

/// What tags a script's request carries (the recorder adds `status`,
/// `expected_response` and `error` per sample).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestDesc {
    pub scenario: usize,
    /// The `name` tag: the URL unless the script sets `tags.name`.
    pub name: String,
    pub method: String,
    /// The group path (`::outer::inner`, or empty).
    pub group: String,
    /// The script's own tags (`params.tags`), sorted by key.
    pub tags: Vec<(String, String)>,
}

/// Runtime-declared descriptors, with ids after the plan's.
#[derive(Debug, Default)]
pub struct DynamicCatalog {
    bases: [u32; 3],
    tables: Mutex<Tables>,
}

/// A named thing in a scenario and group with a script's tags: a check
/// (by its name) or a custom metric series (by the metric's name).
pub type TaggedKey = (String, usize, String, Vec<(String, String)>);

#[derive(Debug, Default)]
struct Tables {
    requests: Table<RequestDesc>,
    /// `(name, scenario, group, tags)`.
    checks: Table<TaggedKey>,
    groups: Table<(String, usize)>,
    /// Custom metric series: `(metric name, scenario, group, tags)`.
    series: Table<TaggedKey>,
}

#[derive(Debug)]
struct Table<T> {
    entries: Vec<T>,
    index: HashMap<T, u32>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Table<T> {
    /// The id of `key`; when the table is full, the id of `overflow` (a
    /// catch-all entry, added past the bound: callers make one per
    /// scenario at most).
    fn id(&mut self, base: u32, key: T, overflow: impl FnOnce() -> T) -> Option<u32> {
        if let Some(&id) = self.index.get(&key) {
            return Some(id);
        }
        let key = if self.entries.len() >= MAX_ENTRIES {
            let o = overflow();
            if let Some(&id) = self.index.get(&o) {
                return Some(id);
            }
            if self.entries.len() >= MAX_ENTRIES + MAX_OVERFLOW_ENTRIES {
                return None;
            }
            o
        } else {
            key
        };
        let id = base.checked_add(u32::try_from(self.entries.len()).ok()?)?;
        self.entries.push(key.clone());
        self.index.insert(key, id);
        Some(id)
    }

    fn get(&self, base: u32, id: u32) -> Option<&T> {
        self.entries
            .get(usize::try_from(id.checked_sub(base)?).ok()?)
    }
}

/// The id a sample uses when even the catch-all entries are exhausted: it
/// matches nothing, so the recorder counts the sample as invalid.
pub const UNKNOWN: u32 = u32::MAX;

/// Room for catch-all entries past [`MAX_ENTRIES`] (one per scenario, or
/// per metric and scenario).
const MAX_OVERFLOW_ENTRIES: usize = 10_000;

/// The name catch-all entries carry, with the tag `overflow:true`.
pub const OVERFLOW_NAME: &str = "(more distinct names than the catalog holds)";

fn overflow_tags() -> Vec<(String, String)> {
    vec![("overflow".to_string(), "true".to_string())]
}

impl DynamicCatalog {
    /// A catalog whose ids start after `requests`, `checks` and `groups`
    /// plan entries.
    pub fn after(requests: usize, checks: usize, groups: usize) -> DynamicCatalog {
        let base = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        DynamicCatalog {
            bases: [base(requests), base(checks), base(groups)],
            tables: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic elsewhere cannot leave a table half-written (each insert
        // is one push and one map insert), so a poisoned lock is still good.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn request_id(&self, desc: &RequestDesc) -> RequestId {
        let mut t = self.lock();
        match t.requests.index.get(desc) {
            Some(&id) => RequestId(id),
            None => RequestId(
                t.requests
                    .id(self.bases[0], desc.clone(), || RequestDesc {
                        scenario: desc.scenario,
                        name: OVERFLOW_NAME.to_string(),
                        method: "*".to_string(),
                        group: String::new(),
                        tags: overflow_tags(),
                    })
                    .unwrap_or(UNKNOWN),
            ),
        }
    }

    /// The id of a check by name, scenario, group path and the script's
    /// own tags (sorted by key).
    pub fn check_id(
        &self,
        name: &str,
        scenario: usize,
        group: &str,
        tags: &[(String, String)],
    ) -> CheckId {
        let key = (name.to_string(), scenario, group.to_string(), tags.to_vec());
        let overflow = || {
            (
                OVERFLOW_NAME.to_string(),
                scenario,
                String::new(),
                overflow_tags(),
            )
        };
        CheckId(
            self.lock()
                .checks
                .id(self.bases[1], key, overflow)
                .unwrap_or(UNKNOWN),
        )
    }

    pub fn group_id(&self, path: &str, scenario: usize) -> GroupId {
        let key = (path.to_string(), scenario);
        let overflow = || (format!("::{OVERFLOW_NAME}"), scenario);
        GroupId(
            self.lock()
                .groups
                .id(self.bases[2], key, overflow)
                .unwrap_or(UNKNOWN),
        )
    }

    /// The id of a custom metric's series (ids start at 0).
    pub fn series_id(
        &self,
        metric: &str,
        scenario: usize,
        group: &str,
        tags: &[(String, String)],
    ) -> u32 {
        let key = (
            metric.to_string(),
            scenario,
            group.to_string(),
            tags.to_vec(),
        );
        let overflow = || (metric.to_string(), scenario, String::new(), overflow_tags());
        self.lock().series.id(0, key, overflow).unwrap_or(UNKNOWN)
    }

    /// A custom metric series: metric name, scenario, group, tags.
    pub fn series(&self, id: u32) -> Option<TaggedKey> {
        self.lock().series.get(0, id).cloned()
    }

    pub fn request(&self, id: u32) -> Option<RequestDesc> {
        self.lock().requests.get(self.bases[0], id).cloned()
    }

    /// A check and the script's own tags on it.
    pub fn check(&self, id: u32) -> Option<(CheckInfo, Vec<(String, String)>)> {
        let t = self.lock();
        let (name, scenario, group, tags) = t.checks.get(self.bases[1], id)?;
        Some((
            CheckInfo {
                name: name.clone(),
                scenario: *scenario,
                group: group.clone(),
            },
            tags.clone(),
        ))
    }

    pub fn group(&self, id: u32) -> Option<GroupInfo> {
        let t = self.lock();
        let (path, scenario) = t.groups.get(self.bases[2], id)?;
        Some(GroupInfo {
            path: path.clone(),
            scenario: *scenario,
        })
    }

    /// Every check declared so far, in declaration order.
    pub fn checks(&self) -> Vec<CheckInfo> {
        let t = self.lock();
        t.checks
            .entries
            .iter()
            .map(|(name, scenario, group, _)| CheckInfo {
                name: name.clone(),
                scenario: *scenario,
                group: group.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: &str) -> RequestDesc {
        RequestDesc {
            scenario: 0,
            name: name.into(),
            method: "GET".into(),
            group: String::new(),
            tags: Vec::new(),
        }
    }

    #[test]
    fn ids_continue_the_plan_and_repeat_for_the_same_descriptor() {
        let c = DynamicCatalog::after(3, 2, 1);
        let a = c.request_id(&desc("a"));
        let b = c.request_id(&desc("b"));
        assert_eq!((a.0, b.0), (3, 4));
        assert_eq!(c.request_id(&desc("a")), a);
        assert_eq!(c.request(4).map(|d| d.name), Some("b".to_string()));
        assert_eq!(c.request(2), None, "plan ids are not the catalog's");
        assert_eq!(c.check_id("ok", 0, "", &[]).0, 2);
        assert_eq!(c.check_id("ok", 0, "::g", &[]).0, 3);
        let tagged = [("kind".to_string(), "api".to_string())];
        assert_eq!(c.check_id("ok", 0, "::g", &tagged).0, 4);
        assert_eq!(c.check(4).map(|(_, t)| t), Some(tagged.to_vec()));
        assert_eq!(c.group_id("::g", 0).0, 1);
        assert_eq!(c.checks().len(), 3);
        assert_eq!(c.series_id("login", 0, "", &[]), 0);
        assert_eq!(c.series_id("login", 0, "::g", &[]), 1);
        assert_eq!(c.series(1).map(|s| s.2), Some("::g".to_string()));
    }

    #[test]
    fn a_full_table_answers_one_catch_all_per_scenario() {
        let c = DynamicCatalog::after(0, 0, 0);
        for i in 0..MAX_ENTRIES {
            assert_ne!(c.check_id(&i.to_string(), 0, "", &[]).0, UNKNOWN);
        }
        let overflow = c.check_id("one more", 0, "", &[]);
        assert_ne!(overflow.0, UNKNOWN, "a catch-all, not a lost sample");
        assert_eq!(c.check_id("and another", 0, "", &[]), overflow);
        assert_eq!(
            c.check(overflow.0).map(|(i, _)| i.name),
            Some(OVERFLOW_NAME.to_string())
        );
        assert_eq!(c.check_id("0", 0, "", &[]).0, 0, "known ones still resolve");
    }
}
