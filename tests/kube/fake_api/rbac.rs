//! The agent's RBAC rules, as the fake API server enforces them: a Role's
//! rules grant namespaced resources, a ClusterRole's grant any (its binding
//! is cluster-wide). Read from the shipped manifests, so a call the code
//! makes without a grant fails a test with 403, as on a cluster.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// `(API group, resource, verb)`.
pub type Grant = (String, String, String);

/// The grants of one service account.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    /// From Roles: namespaced resources only.
    namespaced: BTreeSet<Grant>,
    /// From ClusterRoles.
    cluster: BTreeSet<Grant>,
}

impl Rbac {
    /// The rules of `deploy/rbac.yaml`.
    pub fn deploy() -> Rbac {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Rbac::from_yaml(&text)
    }

    /// The rules of the Roles and ClusterRoles in a multi-document YAML.
    pub fn from_yaml(text: &str) -> Rbac {
        let mut rbac = Rbac::default();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let obj: Value = serde::Deserialize::deserialize(doc).expect("RBAC YAML parses");
            let into = match obj["kind"].as_str() {
                Some("Role") => &mut rbac.namespaced,
                Some("ClusterRole") => &mut rbac.cluster,
                _ => continue,
            };
            for rule in obj["rules"].as_array().into_iter().flatten() {
                let strings = |field: &str| -> Vec<String> {
                    rule[field]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                };
                assert!(
                    rule.get("resourceNames").is_none(),
                    "resourceNames are not enforced by the fake"
                );
                for group in strings("apiGroups") {
                    for resource in strings("resources") {
                        for verb in strings("verbs") {
                            into.insert((group.clone(), resource.clone(), verb));
                        }
                    }
                }
            }
        }
        rbac
    }

    /// Whether `verb` on `group`/`resource` is granted; `namespaced` for a
    /// call inside a namespace (where Roles count).
    pub fn allows(&self, group: &str, resource: &str, verb: &str, namespaced: bool) -> bool {
        let grant = (group.to_string(), resource.to_string(), verb.to_string());
        self.cluster.contains(&grant) || (namespaced && self.namespaced.contains(&grant))
    }

    /// Every grant, cluster-wide and namespaced.
    pub fn grants(&self) -> BTreeSet<Grant> {
        self.cluster.union(&self.namespaced).cloned().collect()
    }
}
