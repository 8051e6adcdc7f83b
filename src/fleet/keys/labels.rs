//! Operator labels of a node, gossiped under [`LABELS`] as `k=v,k=v`.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::fmt;

use super::{KeyError, LABELS, MAX_LABELS_BYTES};

/// Operator labels of a node (zone, instance type, …), gossiped under
/// [`LABELS`] as `k=v,k=v` in key order. Always valid: every way to build one
/// checks keys and values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels(BTreeMap::new())
    }

    /// Parses `k=v,k=v` (the empty string is no labels).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.len() > MAX_LABELS_BYTES {
            return Err(KeyError::invalid(
                LABELS,
                text,
                format!("at most {MAX_LABELS_BYTES} bytes of `k=v,k=v`"),
            ));
        }
        let mut labels = Labels::new();
        if text.is_empty() {
            return Ok(labels);
        }
        for pair in text.split(',') {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(KeyError::invalid(
                    LABELS,
                    text,
                    format!("`k=v,k=v`, but item {pair:?} has no `=`"),
                ));
            };
            if labels.0.contains_key(key) {
                return Err(KeyError::invalid(
                    LABELS,
                    text,
                    format!("each label key once, but {key:?} repeats"),
                ));
            }
            labels.insert(key, value)?;
        }
        Ok(labels)
    }

    /// Adds or replaces one label. Keys match `[a-z0-9._/-]+`; values may be
    /// empty but contain no `,`, `=` or control character.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), KeyError> {
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'/' | b'-'));
        if !key_ok {
            return Err(KeyError::invalid(
                LABELS,
                key,
                "label keys matching [a-z0-9._/-]+ (e.g. `zone` or `topology.kubernetes.io/zone`)",
            ));
        }
        if value
            .chars()
            .any(|c| c == ',' || c == '=' || c.is_control())
        {
            return Err(KeyError::invalid(
                LABELS,
                value,
                format!("a value for label {key:?} without `,`, `=` or control characters"),
            ));
        }
        let mut next = self.0.clone();
        next.insert(key.to_owned(), value.to_owned());
        let encoded_len = encoded_labels_len(&next);
        if encoded_len > MAX_LABELS_BYTES {
            return Err(KeyError::invalid(
                LABELS,
                value,
                format!(
                    "labels of at most {MAX_LABELS_BYTES} bytes in all, this one makes {encoded_len}"
                ),
            ));
        }
        self.0 = next;
        Ok(())
    }

    /// The value of one label.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Labels in key order.
    pub fn iter(&self) -> btree_map::Iter<'_, String, String> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All labels as a map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

fn encoded_labels_len(labels: &BTreeMap<String, String>) -> usize {
    let pairs: usize = labels.iter().map(|(k, v)| k.len() + 1 + v.len()).sum();
    pairs + labels.len().saturating_sub(1)
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (key, value)) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}
