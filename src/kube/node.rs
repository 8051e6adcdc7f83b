//! The agent's own Node: topology labels that become agent labels, and the
//! allocatable CPU and memory that bound its capacity.
//!
//! The node name comes from the downward API (`NODE_NAME` from
//! `spec.nodeName`); Nodes are cluster-scoped, so reading one needs the
//! ClusterRole in `deploy/rbac.yaml`. Everything here is optional: a node
//! without region labels, or a cluster that refuses the read, leaves the
//! agent with the labels and capacity it was configured with.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::error::{Call, KubeError, classify};
use super::quantity::{QuantityError, parse_cpu, parse_memory};

/// The well-known region label cloud providers set on nodes.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// The well-known zone label.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Pre-1.17 region label, still set by some older node images.
const LEGACY_REGION_LABEL: &str = "failure-domain.beta.kubernetes.io/region";
/// Pre-1.17 zone label.
const LEGACY_ZONE_LABEL: &str = "failure-domain.beta.kubernetes.io/zone";
/// Node labels under this prefix become agent labels without it:
/// `volley.dev/pool=load` on the node gives the agent `pool=load`, the
/// same key a `LoadTest` selector or `VOLLEY_LABELS` uses.
pub const VOLLEY_LABEL_PREFIX: &str = "volley.dev/";

/// What the agent learns from its Node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeIdentity {
    /// The Node's name (also the agent's node id in the fleet).
    pub name: String,
    /// `topology.kubernetes.io/region`, when the node has it.
    pub region: Option<String>,
    /// `topology.kubernetes.io/zone`, when the node has it.
    pub zone: Option<String>,
    /// Agent labels derived from the node: `region`, `zone`, and every
    /// `volley.dev/<key>` label as `<key>`. Other node labels are left out:
    /// they are many, and tests should not select on incidental ones.
    pub labels: BTreeMap<String, String>,
    /// Allocatable CPU in cores (`status.allocatable.cpu`), the upper bound
    /// of the agent's capacity weight.
    pub cpu: Option<f64>,
    /// Allocatable memory in bytes (`status.allocatable.memory`).
    pub memory: Option<u64>,
    /// Allocatable values that could not be read; the matching field is
    /// `None`. Kept so the caller can log them instead of failing.
    pub problems: Vec<NodeProblem>,
}

/// An allocatable value of the Node that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} of node/{node}: {source}")]
pub struct NodeProblem {
    /// The node's name.
    pub node: String,
    /// The field path, `status.allocatable.cpu`.
    pub field: &'static str,
    #[source]
    pub source: QuantityError,
}

impl NodeIdentity {
    /// Reads identity from a Node object. Missing labels, missing status
    /// and unreadable quantities are all fine: the fields stay `None`.
    pub fn from_node(node: &Node) -> NodeIdentity {
        let name = node.name_any();
        let node_labels = node.labels();
        let label = |primary: &str, legacy: &str| {
            node_labels
                .get(primary)
                .or_else(|| node_labels.get(legacy))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let region = label(REGION_LABEL, LEGACY_REGION_LABEL);
        let zone = label(ZONE_LABEL, LEGACY_ZONE_LABEL);

        let mut labels = BTreeMap::new();
        for (key, value) in node_labels {
            if let Some(short) = key.strip_prefix(VOLLEY_LABEL_PREFIX)
                && !short.is_empty()
            {
                labels.insert(short.to_string(), value.clone());
            }
        }
        // Topology wins over a `volley.dev/region` label: it is what the
        // cloud provider says about where the node really is.
        if let Some(r) = &region {
            labels.insert("region".to_string(), r.clone());
        }
        if let Some(z) = &zone {
            labels.insert("zone".to_string(), z.clone());
        }

        let mut problems = Vec::new();
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let quantity = |key: &str| allocatable.and_then(|a| a.get(key)).map(|q| q.0.as_str());
        let cpu = quantity("cpu").and_then(|text| match parse_cpu(text) {
            Ok(cores) => Some(cores),
            Err(source) => {
                problems.push(NodeProblem {
                    node: name.clone(),
                    field: "status.allocatable.cpu",
                    source,
                });
                None
            }
        });
        let memory = quantity("memory").and_then(|text| match parse_memory(text) {
            Ok(bytes) => Some(bytes),
            Err(source) => {
                problems.push(NodeProblem {
                    node: name.clone(),
                    field: "status.allocatable.memory",
                    source,
                });
                None
            }
        });

        NodeIdentity {
            name,
            region,
            zone,
            labels,
            cpu,
            memory,
            problems,
        }
    }

    /// The capacity weight the node allows: its allocatable CPU cores.
    /// A configured capacity above this would promise load the node cannot
    /// generate; the agent takes the smaller of the two.
    pub fn capacity_bound(&self) -> Option<f64> {
        self.cpu.filter(|c| *c > 0.0)
    }
}

/// Reads the Node named `name` (the agent's own, from `NODE_NAME`).
pub async fn fetch(client: Client, name: &str) -> Result<NodeIdentity, KubeError> {
    let nodes: Api<Node> = Api::all(client);
    let node = nodes.get(name).await.map_err(|e| {
        classify(
            Call {
                verb: "get",
                resource: "nodes",
                name,
                namespace: None,
            },
            e,
        )
    })?;
    Ok(NodeIdentity::from_node(&node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).expect("test node is valid")
    }

    #[test]
    fn labels_and_allocatable() {
        let n = node(json!({
            "metadata": {"name": "worker-1", "labels": {
                REGION_LABEL: "eu-west-1",
                ZONE_LABEL: "eu-west-1a",
                "volley.dev/pool": "load",
                "volley.dev/": "ignored",
                "kubernetes.io/hostname": "worker-1",
            }},
            "status": {"allocatable": {"cpu": "3920m", "memory": "27Gi", "pods": "110"}}
        }));
        let id = NodeIdentity::from_node(&n);
        assert_eq!(id.name, "worker-1");
        assert_eq!(id.region.as_deref(), Some("eu-west-1"));
        assert_eq!(id.zone.as_deref(), Some("eu-west-1a"));
        let want: BTreeMap<String, String> = [
            ("pool", "load"),
            ("region", "eu-west-1"),
            ("zone", "eu-west-1a"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(id.labels, want);
        assert_eq!(id.cpu, Some(3.92));
        assert_eq!(id.memory, Some(27 << 30));
        assert_eq!(id.capacity_bound(), Some(3.92));
        assert!(id.problems.is_empty());
    }

    #[test]
    fn bare_node_is_fine() {
        let id = NodeIdentity::from_node(&node(json!({"metadata": {"name": "bare"}})));
        assert_eq!(id.name, "bare");
        assert_eq!(id.region, None);
        assert_eq!(id.zone, None);
        assert!(id.labels.is_empty());
        assert_eq!(id.cpu, None);
        assert_eq!(id.memory, None);
        assert_eq!(id.capacity_bound(), None);
    }

    #[test]
    fn legacy_labels_and_blank_values() {
        let id = NodeIdentity::from_node(&node(json!({
            "metadata": {"name": "old", "labels": {
                LEGACY_REGION_LABEL: "us-east-1",
                ZONE_LABEL: "  ",
            }}
        })));
        assert_eq!(id.region.as_deref(), Some("us-east-1"));
        assert_eq!(id.zone, None, "a blank label is no zone");
        assert_eq!(
            id.labels.get("region").map(String::as_str),
            Some("us-east-1")
        );
        assert!(!id.labels.contains_key("zone"));
    }

    #[test]
    fn unreadable_quantities_are_reported_not_fatal() {
        let id = NodeIdentity::from_node(&node(json!({
            "metadata": {"name": "odd"},
            "status": {"allocatable": {"cpu": "four", "memory": "1Gi"}}
        })));
        assert_eq!(id.cpu, None);
        assert_eq!(id.memory, Some(1 << 30));
        assert_eq!(id.problems.len(), 1);
        let text = id.problems[0].to_string();
        assert!(
            text.contains("status.allocatable.cpu of node/odd") && text.contains("\"four\""),
            "{text}"
        );
    }
}
