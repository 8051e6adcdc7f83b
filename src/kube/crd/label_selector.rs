//! `spec.selector`: a Kubernetes label selector (`matchLabels`,
//! `matchExpressions`) over agent labels, and its translation into the
//! fleet's requirements ([`crate::fleet::selector`]) with errors that name
//! the field path and value.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CrdError;
use crate::fleet::selector::{self, Operator, Requirement, SelectorError};

/// A Kubernetes label selector over agent labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels an agent must carry with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements an agent's labels must all meet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub match_expressions: Vec<LabelSelectorRequirement>,
    /// Keys that are neither: the agent refuses them rather than select
    /// every agent (an API server that enforces the schema prunes them).
    #[serde(flatten, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// One set-based requirement, as in Kubernetes' `LabelSelectorRequirement`.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
        "message": "operators In and NotIn need at least one value; Exists and DoesNotExist take none"
    }
]))]
pub struct LabelSelectorRequirement {
    /// The agent label the requirement is about.
    #[schemars(length(min = 1))]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[schemars(extend("enum" = ["In", "NotIn", "Exists", "DoesNotExist"]))]
    pub operator: String,
    /// The values of `In` and `NotIn`; none for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub values: Vec<String>,
}

// === impl LabelSelector ===

impl LabelSelector {
    /// Selects every agent.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty() && self.unknown.is_empty()
    }

    /// The `matchExpressions` as the fleet evaluates them, or the first
    /// problem with the selector, naming its field path and value.
    pub fn requirements(&self) -> Result<Vec<Requirement>, CrdError> {
        const PATH: &str = "spec.selector.matchExpressions";
        if let Some((key, value)) = self.unknown.iter().next() {
            return Err(CrdError::Selector(SelectorError {
                field: format!("spec.selector.{key}"),
                problem: format!(
                    "got {value}, expected only matchLabels and matchExpressions (agent labels \
                     go under matchLabels: {{{key}: {value}}})"
                ),
            }));
        }
        for (key, value) in &self.match_labels {
            let probe = [Requirement {
                key: key.clone(),
                operator: Operator::In,
                values: vec![value.clone()],
            }];
            selector::check(&probe, "spec.selector.matchLabels").map_err(|e| {
                let field = if e.field.ends_with(".key") {
                    "spec.selector.matchLabels".to_owned()
                } else {
                    format!("spec.selector.matchLabels.{key}")
                };
                SelectorError { field, ..e }
            })?;
        }
        let mut reqs = Vec::with_capacity(self.match_expressions.len());
        for (i, r) in self.match_expressions.iter().enumerate() {
            let operator = Operator::parse(&r.operator).ok_or_else(|| SelectorError {
                field: format!("{PATH}[{i}].operator"),
                problem: format!("got {:?}, expected one of {}", r.operator, Operator::NAMES),
            })?;
            reqs.push(Requirement {
                key: r.key.clone(),
                operator,
                values: r.values.clone(),
            });
        }
        selector::check(&reqs, PATH)?;
        Ok(reqs)
    }
}
