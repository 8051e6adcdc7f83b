//! Interval snapshots: what one source recorded over one interval, as a
//! sorted list of series. The unit the engine folds into its running total
//! and the fleet ships between agents (wire form in [`super::wire`]).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::catalog::Metric;
use super::tags::TagSet;
use super::value::{MergeError, Value};

/// Names one series: a metric and its tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub metric: Metric,
    pub tags: TagSet,
}

impl SeriesKey {
    pub fn new(metric: Metric, tags: TagSet) -> SeriesKey {
        SeriesKey { metric, tags }
    }
}

/// `http_req_duration{status:200}`, or the bare name without tags.
impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric.name())?;
        if !self.tags.is_empty() {
            write!(f, "{}", self.tags)?;
        }
        Ok(())
    }
}

/// What one source recorded over one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Start of the interval, Unix milliseconds (wall clock: the only time
    /// two agents share).
    pub start_unix_ms: u64,
    pub duration: Duration,
    /// Series that saw data in the interval, strictly ascending by key.
    /// Each value is of its metric's kind.
    pub series: Vec<(SeriesKey, Value)>,
}

impl Snapshot {
    /// A snapshot with no series.
    pub fn empty(start_unix_ms: u64, duration: Duration) -> Snapshot {
        Snapshot {
            start_unix_ms,
            duration,
            series: Vec::new(),
        }
    }

    /// End of the interval in Unix milliseconds (rounded up to the next
    /// millisecond when the duration has a fraction of one).
    pub fn end_unix_ms(&self) -> u64 {
        let ms = self.duration.as_nanos().div_ceil(1_000_000);
        self.start_unix_ms
            .saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// The value of one series, if it saw data.
    pub fn get(&self, key: &SeriesKey) -> Option<&Value> {
        self.series
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| &self.series[i].1)
    }

    /// Checks the invariants every snapshot from a recorder or the decoder
    /// holds: keys strictly ascending, each value of its metric's kind.
    pub fn validate(&self) -> Result<(), MergeError> {
        for (i, (key, value)) in self.series.iter().enumerate() {
            if value.kind() != key.metric.kind() {
                return Err(MergeError::KindMismatch {
                    left: key.metric.kind(),
                    right: value.kind(),
                }
                .in_series(key.to_string()));
            }
            if i > 0 && self.series[i - 1].0 >= *key {
                return Err(MergeError::Unsorted {
                    series: key.to_string(),
                });
            }
        }
        Ok(())
    }

    /// This snapshot with `extra` tags set on every series (what a fleet
    /// test's outputs add: `testid`, `region`, `agent`): keys sorted again,
    /// and series that come to share a key (a tag overwritten) merged.
    pub fn with_tags(&self, extra: &[(&str, &str)]) -> Snapshot {
        let mut series: Vec<(SeriesKey, Value)> = self
            .series
            .iter()
            .map(|(key, value)| {
                let mut key = key.clone();
                for (k, v) in extra {
                    key.tags.insert(Arc::from(*k), Arc::from(*v));
                }
                (key, value.clone())
            })
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(SeriesKey, Value)> = Vec::with_capacity(series.len());
        for (key, value) in series {
            match merged.last_mut() {
                // Same metric, so same kind: only a histogram that cannot
                // grow fails, and then the first source's value stands.
                Some((last, acc)) if *last == key => {
                    let _ = acc.merge_sources(&value);
                }
                _ => merged.push((key, value)),
            }
        }
        Snapshot {
            start_unix_ms: self.start_unix_ms,
            duration: self.duration,
            series: merged,
        }
    }

    /// Combines `other`, the same interval from another source: the union
    /// of the series, values merged with [`Value::merge_sources`]; the
    /// interval widens to cover both. Both snapshots must pass
    /// [`Snapshot::validate`], else `self` is left unchanged. A histogram
    /// that cannot grow (an address-space limit, not reachable on 64-bit
    /// targets) is reported after everything else was merged.
    pub fn merge_sources(&mut self, other: &Snapshot) -> Result<(), MergeError> {
        self.validate()?;
        other.validate()?;
        let end = self.end_unix_ms().max(other.end_unix_ms());
        let start = self.start_unix_ms.min(other.start_unix_ms);
        let mut merged = Vec::with_capacity(self.series.len().max(other.series.len()));
        let mut mine = std::mem::take(&mut self.series).into_iter().peekable();
        let mut theirs = other.series.iter().peekable();
        let mut first_err = None;
        loop {
            let order = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            match order {
                Ordering::Less => merged.extend(mine.next()),
                Ordering::Greater => merged.extend(theirs.next().cloned()),
                Ordering::Equal => {
                    let (key, mut value) = mine.next().expect("invariant: peeked");
                    let (_, other_value) = theirs.next().expect("invariant: peeked");
                    // Kinds were checked above, so only a histogram that
                    // cannot grow fails here: report it, merge the rest.
                    if let Err(e) = value.merge_sources(other_value) {
                        first_err.get_or_insert(e.in_series(key.to_string()));
                    }
                    merged.push((key, value));
                }
            }
        }
        self.series = merged;
        self.start_unix_ms = start;
        self.duration = Duration::from_millis(end - start);
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::value::Value;

    fn key(metric: Metric, tags: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(metric, TagSet::from_pairs(tags.iter().copied()))
    }

    fn snap(start: u64, ms: u64, series: Vec<(SeriesKey, Value)>) -> Snapshot {
        let mut s = Snapshot {
            start_unix_ms: start,
            duration: Duration::from_millis(ms),
            series,
        };
        s.series.sort_by(|a, b| a.0.cmp(&b.0));
        s
    }

    #[test]
    fn display_of_keys() {
        assert_eq!(key(Metric::Vus, &[]).to_string(), "vus");
        assert_eq!(
            key(Metric::HttpReqs, &[("status", "200"), ("name", "x")]).to_string(),
            "http_reqs{name:x,status:200}"
        );
    }

    #[test]
    fn merge_is_a_union_with_merged_values_and_a_wider_window() {
        let a = snap(
            1000,
            1000,
            vec![
                (
                    key(Metric::HttpReqs, &[("agent", "a")]),
                    Value::Counter(3.0),
                ),
                (key(Metric::Vus, &[]), Value::gauge_of(2.0)),
            ],
        );
        let b = snap(
            1500,
            1000,
            vec![
                (
                    key(Metric::HttpReqs, &[("agent", "b")]),
                    Value::Counter(4.0),
                ),
                (key(Metric::Vus, &[]), Value::gauge_of(5.0)),
            ],
        );
        let mut m = a.clone();
        m.merge_sources(&b).expect("valid snapshots");
        assert_eq!(m.start_unix_ms, 1000);
        assert_eq!(m.duration, Duration::from_millis(1500));
        assert_eq!(m.series.len(), 3);
        assert_eq!(m.get(&key(Metric::Vus, &[])), Some(&Value::gauge_of(7.0)));
        assert_eq!(
            m.get(&key(Metric::HttpReqs, &[("agent", "b")])),
            Some(&Value::Counter(4.0))
        );
        m.validate().expect("merge keeps the invariants");
    }

    #[test]
    fn merge_refuses_invalid_snapshots_and_leaves_self_alone() {
        let good = snap(
            0,
            1000,
            vec![(key(Metric::HttpReqs, &[]), Value::Counter(1.0))],
        );
        let wrong_kind = snap(
            0,
            1000,
            vec![(key(Metric::HttpReqs, &[]), Value::rate_of(true))],
        );
        let mut m = good.clone();
        let err = m.merge_sources(&wrong_kind).expect_err("kind mismatch");
        assert!(err.to_string().contains("http_reqs"), "{err}");
        assert_eq!(m, good);

        let unsorted = Snapshot {
            start_unix_ms: 0,
            duration: Duration::from_secs(1),
            series: vec![
                (key(Metric::Vus, &[]), Value::gauge_of(1.0)),
                (key(Metric::HttpReqs, &[]), Value::Counter(1.0)),
            ],
        };
        let err = m.merge_sources(&unsorted).expect_err("unsorted");
        assert!(matches!(err, MergeError::Unsorted { .. }), "{err}");
        assert_eq!(m, good);
    }

    #[test]
    fn end_rounds_partial_milliseconds_up() {
        let s = Snapshot::empty(10, Duration::from_micros(1500));
        assert_eq!(s.end_unix_ms(), 12);
        assert_eq!(
            Snapshot::empty(u64::MAX - 1, Duration::from_secs(5)).end_unix_ms(),
            u64::MAX
        );
    }

    #[test]
    fn tags_are_added_to_every_series_and_collisions_merge() {
        let mut s = Snapshot::empty(1_000, Duration::from_secs(1));
        s.series = vec![
            (
                key(Metric::HttpReqs, &[("agent", "a-1")]),
                Value::Counter(2.0),
            ),
            (
                key(Metric::HttpReqs, &[("status", "200")]),
                Value::Counter(3.0),
            ),
        ];
        let t = s.with_tags(&[("testid", "t-1")]);
        assert_eq!(
            t.series,
            vec![
                (
                    key(Metric::HttpReqs, &[("agent", "a-1"), ("testid", "t-1")]),
                    Value::Counter(2.0)
                ),
                (
                    key(Metric::HttpReqs, &[("status", "200"), ("testid", "t-1")]),
                    Value::Counter(3.0)
                ),
            ]
        );
        assert!(t.validate().is_ok());
        // Overwriting `agent` makes the two series one: their values add.
        let mut s = Snapshot::empty(1_000, Duration::from_secs(1));
        s.series = vec![
            (
                key(Metric::HttpReqs, &[("agent", "a-1")]),
                Value::Counter(2.0),
            ),
            (
                key(Metric::HttpReqs, &[("agent", "a-2")]),
                Value::Counter(3.0),
            ),
        ];
        let t = s.with_tags(&[("agent", "fleet")]);
        assert_eq!(
            t.series,
            vec![(
                key(Metric::HttpReqs, &[("agent", "fleet")]),
                Value::Counter(5.0)
            )]
        );
    }
}
