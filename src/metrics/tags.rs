//! Tag sets: the `k:v` labels that, with a metric, name one series.
//!
//! A [`TagSet`] is a small list of `(key, value)` pairs kept sorted by key
//! with unique keys, so that two sets with the same tags compare, hash and
//! order equal whatever order they were built in. Keys and values are shared
//! `Arc<str>`s: the recorder interns them ([`Interner`]), so thousands of
//! series that all carry `scenario:main` hold one allocation of `main`.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// Names of the tags Volley sets itself: k6's system tags, plus `overflow`
/// (series folded by the cardinality bound) and `dropped` (intended-time
/// waits of iterations that could not start on time).
pub mod key {
    pub const SCENARIO: &str = "scenario";
    pub const NAME: &str = "name";
    pub const METHOD: &str = "method";
    pub const STATUS: &str = "status";
    pub const GROUP: &str = "group";
    pub const EXPECTED_RESPONSE: &str = "expected_response";
    pub const ERROR: &str = "error";
    pub const CHECK: &str = "check";
    pub const URL: &str = "url";
    pub const PROTO: &str = "proto";
    pub const TLS_VERSION: &str = "tls_version";
    pub const ERROR_CODE: &str = "error_code";
    pub const OVERFLOW: &str = "overflow";
    pub const DROPPED: &str = "dropped";
}

/// A sorted set of tags with unique keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagSet {
    /// Sorted by key, keys unique. Kept as a vector: series carry a handful
    /// of tags, and a linear scan beats any map at that size.
    pairs: Vec<(Arc<str>, Arc<str>)>,
}

impl TagSet {
    /// The empty set.
    pub fn new() -> TagSet {
        TagSet::default()
    }

    /// Builds a set from pairs in any order; when a key repeats, the last
    /// pair wins (so callers list tags from lowest to highest precedence).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> TagSet
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut set = TagSet::new();
        for (k, v) in pairs {
            set.insert(Arc::from(k.as_ref()), Arc::from(v.as_ref()));
        }
        set
    }

    /// Builds a set from pairs that must already be strictly ascending by
    /// key (the canonical wire form). Returns `None` otherwise.
    pub fn from_sorted(pairs: Vec<(Arc<str>, Arc<str>)>) -> Option<TagSet> {
        let ascending = pairs.windows(2).all(|w| w[0].0 < w[1].0);
        ascending.then_some(TagSet { pairs })
    }

    /// Sets `key` to `value`, replacing any previous value of `key`.
    pub fn insert(&mut self, key: Arc<str>, value: Arc<str>) {
        match self.pairs.binary_search_by(|(k, _)| (**k).cmp(&*key)) {
            Ok(i) => self.pairs[i].1 = value,
            Err(i) => self.pairs.insert(i, (key, value)),
        }
    }

    /// The value of `key`, if the set has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.pairs[i].1)
    }

    /// True when every `(key, value)` of `filter` is in this set (a
    /// superset match, as k6 selects the series of a submetric). An empty
    /// filter matches every set.
    pub fn matches(&self, filter: &[(String, String)]) -> bool {
        filter.iter().all(|(k, v)| self.get(k) == Some(v.as_str()))
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The shared pairs in key order, for encoders that intern them.
    pub fn pairs(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.pairs
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// `{k:v,k2:v2}`, k6's submetric spelling; `{}` when empty.
impl fmt::Display for TagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}:{v}")?;
        }
        f.write_str("}")
    }
}

/// Shares one `Arc<str>` per distinct string. Only the recorder and the
/// decoder use it, both single-threaded, and both only on a cache miss.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
}

impl Interner {
    pub fn new() -> Interner {
        Interner::default()
    }

    /// The shared copy of `s`, allocating it the first time only.
    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.strings.get(s) {
            return Arc::clone(found);
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&shared));
        shared
    }

    /// Number of distinct strings held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn order_of_construction_does_not_matter() {
        let a = TagSet::from_pairs([("b", "2"), ("a", "1")]);
        let b = TagSet::from_pairs([("a", "1"), ("b", "2")]);
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "{a:1,b:2}");
        assert_eq!(TagSet::new().to_string(), "{}");
    }

    #[test]
    fn last_pair_wins_on_repeated_keys() {
        let t = TagSet::from_pairs([("k", "low"), ("x", "1"), ("k", "high")]);
        assert_eq!(t.get("k"), Some("high"));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn get_finds_present_keys_only() {
        let t = TagSet::from_pairs([("status", "200"), ("group", "")]);
        assert_eq!(t.get("status"), Some("200"));
        assert_eq!(t.get("group"), Some(""));
        assert_eq!(t.get("method"), None);
    }

    #[test]
    fn matches_is_a_superset_test() {
        let t = TagSet::from_pairs([("status", "200"), ("scenario", "main"), ("name", "home")]);
        assert!(t.matches(&[]));
        assert!(t.matches(&filter(&[("status", "200")])));
        assert!(t.matches(&filter(&[("scenario", "main"), ("status", "200")])));
        assert!(!t.matches(&filter(&[("status", "500")])));
        assert!(!t.matches(&filter(&[("status", "200"), ("method", "GET")])));
        // An empty value is a value: it does not match an absent tag.
        assert!(!t.matches(&filter(&[("error", "")])));
    }

    #[test]
    fn from_sorted_rejects_unsorted_or_duplicate_keys() {
        let p = |k: &str, v: &str| (Arc::<str>::from(k), Arc::<str>::from(v));
        assert!(TagSet::from_sorted(vec![p("a", "1"), p("b", "2")]).is_some());
        assert!(TagSet::from_sorted(vec![p("b", "1"), p("a", "2")]).is_none());
        assert!(TagSet::from_sorted(vec![p("a", "1"), p("a", "2")]).is_none());
        assert!(TagSet::from_sorted(vec![]).is_some());
    }

    #[test]
    fn ordering_is_by_pairs() {
        let a = TagSet::from_pairs([("a", "1")]);
        let b = TagSet::from_pairs([("a", "2")]);
        let c = TagSet::from_pairs([("a", "1"), ("b", "0")]);
        assert!(a < b);
        assert!(a < c);
    }

    #[test]
    fn interner_shares_strings() {
        let mut i = Interner::new();
        let x = i.intern("main");
        let y = i.intern("main");
        assert!(Arc::ptr_eq(&x, &y));
        assert_eq!(i.len(), 1);
        let z = i.intern("other");
        assert!(!Arc::ptr_eq(&x, &z));
        assert_eq!(i.len(), 2);
    }
}
