//! Which agents take part in a test: set-based label requirements
//! (`matchExpressions`, as in a Kubernetes label selector) on top of the
//! equality `selector` map.
//!
//! Pure: no I/O. The operators mean what they mean in Kubernetes: `In` (the
//! label is set to one of the values), `NotIn` (the label is unset or set to
//! none of them), `Exists` (set, whatever its value) and `DoesNotExist`
//! (unset). Every requirement must hold. [`check`] refuses what Kubernetes
//! refuses (values with `Exists`, none with `In`), naming the field path.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A live member a test may run on: what the origin needs to give it a
/// share (and a successor to take over).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub node_id: String,
    pub quic: SocketAddr,
    pub capacity: f64,
    pub labels: BTreeMap<String, String>,
}

/// How a requirement compares an agent's label with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    /// The label is set to one of the values.
    In,
    /// The label is unset, or set to none of the values.
    NotIn,
    /// The label is set.
    Exists,
    /// The label is unset.
    DoesNotExist,
}

/// One set-based requirement on an agent label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The label key (`region`, `pool`, or `agent` for the node id).
    pub key: String,
    /// How the label is compared.
    pub operator: Operator,
    /// The values of `In` and `NotIn`; empty for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A requirement that cannot be evaluated as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SelectorError {
    /// The field path, e.g. `spec.selector.matchExpressions[1].values`.
    pub field: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

/// Longest label value an agent can carry (Kubernetes' limit).
const MAX_VALUE: usize = 63;
/// Longest key: a DNS subdomain prefix, `/` and a 63-character name.
const MAX_KEY: usize = 253 + 1 + 63;

// === impl Operator ===

impl Operator {
    /// Every operator's name, for errors.
    pub const NAMES: &'static str = "In, NotIn, Exists, DoesNotExist";

    /// The operator named `name` (exactly, as Kubernetes spells it).
    pub fn parse(name: &str) -> Option<Operator> {
        match name {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            _ => None,
        }
    }
}

// === impl Requirement ===

impl Requirement {
    /// Whether an agent whose label `key` is `value` (`None`: unset) meets it.
    pub fn holds(&self, value: Option<&str>) -> bool {
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => !value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    /// The Kubernetes string form: `region in (eu,us)`, `gpu`, `!gpu`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.values.join(",");
        match self.operator {
            Operator::In => write!(f, "{} in ({values})", self.key),
            Operator::NotIn => write!(f, "{} notin ({values})", self.key),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// Whether an agent with `labels` and node id `node_id` meets every
/// equality pair of `labels_wanted` and every requirement. The key `agent`
/// also matches the node id, so `agent In (a, b)` picks agents by id.
pub fn selects(
    labels_wanted: &BTreeMap<String, String>,
    requirements: &[Requirement],
    labels: &BTreeMap<String, String>,
    node_id: &str,
) -> bool {
    let equal = labels_wanted
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v) || (k == "agent" && node_id == v));
    equal
        && requirements.iter().all(|r| {
            let value = labels
                .get(&r.key)
                .map(String::as_str)
                .or_else(|| (r.key == "agent").then_some(node_id));
            r.holds(value)
        })
}

/// The whole selection in the Kubernetes string form
/// (`pool=load,region in (eu,us),!gpu`), `everything` when empty.
pub fn describe(labels_wanted: &BTreeMap<String, String>, requirements: &[Requirement]) -> String {
    let parts: Vec<String> = labels_wanted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(requirements.iter().map(ToString::to_string))
        .collect();
    if parts.is_empty() {
        "everything".to_owned()
    } else {
        parts.join(",")
    }
}

/// Checks each requirement; `path` is the field holding the list
/// (`spec.selector.matchExpressions`), errors name the item and its field.
pub fn check(requirements: &[Requirement], path: &str) -> Result<(), SelectorError> {
    for (i, r) in requirements.iter().enumerate() {
        let at = |field: &str, problem: String| SelectorError {
            field: format!("{path}[{i}].{field}"),
            problem,
        };
        if let Some(problem) = key_problem(&r.key) {
            return Err(at("key", format!("got {:?}, expected {problem}", r.key)));
        }
        match r.operator {
            Operator::In | Operator::NotIn if r.values.is_empty() => {
                return Err(at(
                    "values",
                    format!(
                        "is empty, expected at least one value with operator {:?}",
                        r.operator
                    ),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
                return Err(at(
                    "values",
                    format!(
                        "got {:?}, expected none with operator {:?} (it looks at the key only)",
                        r.values, r.operator
                    ),
                ));
            }
            _ => {}
        }
        for (j, v) in r.values.iter().enumerate() {
            if let Some(problem) = value_problem(v) {
                return Err(at(
                    &format!("values[{j}]"),
                    format!("got {v:?}, expected {problem}"),
                ));
            }
        }
    }
    Ok(())
}

/// Why `key` cannot be an agent label key, if it cannot.
fn key_problem(key: &str) -> Option<&'static str> {
    let chars_ok = key.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'/' | b'-')
    });
    if key.is_empty() || key.len() > MAX_KEY || !chars_ok {
        Some(
            "a label key of a-z, 0-9, '.', '_', '/' and '-' (like region or \
             topology.kubernetes.io/zone)",
        )
    } else {
        None
    }
}

/// Why `value` cannot be an agent label value, if it cannot.
fn value_problem(value: &str) -> Option<&'static str> {
    let bad = value
        .chars()
        .any(|c| matches!(c, ',' | '=' | '(' | ')') || c.is_whitespace() || c.is_control());
    if value.len() > MAX_VALUE || bad {
        Some(
            "a label value of at most 63 characters without ',', '=', parentheses, spaces or \
             control characters",
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn operators_mean_what_they_mean_in_kubernetes() {
        let eu = labels(&[("region", "eu"), ("pool", "load")]);
        let us = labels(&[("region", "us")]);
        let none = labels(&[]);
        let cases = [
            (
                req("region", Operator::In, &["eu", "ap"]),
                [true, false, false],
            ),
            (req("region", Operator::NotIn, &["eu"]), [false, true, true]),
            (req("region", Operator::Exists, &[]), [true, true, false]),
            (
                req("region", Operator::DoesNotExist, &[]),
                [false, false, true],
            ),
            (req("pool", Operator::NotIn, &["load"]), [false, true, true]),
        ];
        for (r, want) in cases {
            let got = [&eu, &us, &none]
                .map(|l| selects(&BTreeMap::new(), std::slice::from_ref(&r), l, "n"));
            assert_eq!(got, want, "{r}");
        }
    }

    #[test]
    fn labels_and_expressions_must_all_hold_and_agent_is_the_node_id() {
        let l = labels(&[("region", "eu"), ("zone", "eu-a")]);
        let wanted = labels(&[("region", "eu")]);
        let zone = req("zone", Operator::In, &["eu-a", "eu-b"]);
        assert!(selects(&wanted, std::slice::from_ref(&zone), &l, "node-1"));
        let gpu = req("gpu", Operator::Exists, &[]);
        assert!(!selects(&wanted, &[zone.clone(), gpu], &l, "node-1"));
        let not_us = labels(&[("region", "us")]);
        assert!(!selects(&not_us, &[zone], &l, "node-1"));
        let by_id = req("agent", Operator::NotIn, &["node-1"]);
        assert!(!selects(
            &BTreeMap::new(),
            std::slice::from_ref(&by_id),
            &l,
            "node-1"
        ));
        assert!(selects(&BTreeMap::new(), &[by_id], &l, "node-2"));
        assert!(
            selects(&BTreeMap::new(), &[], &l, "node-2"),
            "empty selects all"
        );
    }

    #[test]
    fn described_in_the_kubernetes_string_form() {
        let reqs = [
            req("region", Operator::In, &["eu", "us"]),
            req("zone", Operator::NotIn, &["a"]),
            req("gpu", Operator::Exists, &[]),
            req("spot", Operator::DoesNotExist, &[]),
        ];
        assert_eq!(
            describe(&labels(&[("pool", "load")]), &reqs),
            "pool=load,region in (eu,us),zone notin (a),gpu,!spot"
        );
        assert_eq!(describe(&BTreeMap::new(), &[]), "everything");
    }

    #[test]
    fn errors_name_the_item_the_field_and_the_value() {
        let path = "spec.selector.matchExpressions";
        let cases = [
            (
                vec![
                    req("region", Operator::In, &["eu"]),
                    req("zone", Operator::Exists, &["a"]),
                ],
                "spec.selector.matchExpressions[1].values: got [\"a\"], expected none with \
                 operator Exists (it looks at the key only)",
            ),
            (
                vec![req("region", Operator::NotIn, &[])],
                "spec.selector.matchExpressions[0].values: is empty, expected at least one value \
                 with operator NotIn",
            ),
            (
                vec![req("Region Name", Operator::Exists, &[])],
                "spec.selector.matchExpressions[0].key: got \"Region Name\", expected a label key \
                 of a-z, 0-9, '.', '_', '/' and '-' (like region or topology.kubernetes.io/zone)",
            ),
            (
                vec![req("region", Operator::In, &["eu", "a,b"])],
                "spec.selector.matchExpressions[0].values[1]: got \"a,b\", expected a label value \
                 of at most 63 characters without ',', '=', parentheses, spaces or control \
                 characters",
            ),
        ];
        for (reqs, want) in cases {
            let err = check(&reqs, path).expect_err(want);
            assert_eq!(err.to_string(), want);
        }
        assert_eq!(check(&[req("agent", Operator::In, &["n-1"])], path), Ok(()));
    }

    #[test]
    fn operator_names_parse_exactly() {
        for (name, op) in [
            ("In", Operator::In),
            ("NotIn", Operator::NotIn),
            ("Exists", Operator::Exists),
            ("DoesNotExist", Operator::DoesNotExist),
        ] {
            assert_eq!(Operator::parse(name), Some(op));
            let json = serde_json::to_string(&op).expect("serializes");
            assert_eq!(json, format!("\"{name}\""));
        }
        assert_eq!(Operator::parse("in"), None);
        assert_eq!(Operator::parse("Exist"), None);
    }
}
