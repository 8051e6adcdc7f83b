//! The agent's RBAC rules, as the fake API server enforces them: a Role's
//! rules grant namespaced resources in the Role's own namespace (where its
//! RoleBinding lives), a ClusterRole's grant any (its binding is
//! cluster-wide); a rule with `resourceNames` grants only calls on those
//! objects by name (a list, a create or another name is refused, as on a
//! cluster). Read from the shipped or rendered manifests, so a call the code
//! makes without a grant fails a test with 403.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// `(API group, resource, verb)`.
pub type Grant = (String, String, String);

/// Which objects a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// Every object (a rule without `resourceNames`).
    All,
    /// Only these, by name.
    Only(BTreeSet<String>),
}

/// The grants of one service account.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    /// From Roles, by the Role's namespace: namespaced resources there only.
    namespaced: BTreeMap<String, BTreeMap<Grant, Names>>,
    /// From ClusterRoles.
    cluster: BTreeMap<Grant, Names>,
}

/// Adds a rule's grant: `All` absorbs names, names add up.
fn merge(into: &mut BTreeMap<Grant, Names>, grant: Grant, names: Names) {
    let merged = match (into.remove(&grant), names) {
        (None, n) => n,
        (Some(Names::All), _) | (_, Names::All) => Names::All,
        (Some(Names::Only(mut a)), Names::Only(b)) => {
            a.extend(b);
            Names::Only(a)
        }
    };
    into.insert(grant, merged);
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
                Some("Role") => {
                    let ns = obj["metadata"]["namespace"]
                        .as_str()
                        .expect("a Role names its namespace");
                    rbac.namespaced.entry(ns.to_owned()).or_default()
                }
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
                let names = match rule.get("resourceNames") {
                    None => Names::All,
                    Some(_) => Names::Only(strings("resourceNames").into_iter().collect()),
                };
                for group in strings("apiGroups") {
                    for resource in strings("resources") {
                        for verb in strings("verbs") {
                            let grant = (group.clone(), resource.clone(), verb);
                            merge(into, grant, names.clone());
                        }
                    }
                }
            }
        }
        rbac
    }

    /// Whether `verb` on `group`/`resource` is granted for the object
    /// `name` (`None`: a call on no single object, such as a list or a
    /// create); `namespace` for a call inside one (where that namespace's
    /// Roles count).
    pub fn allows(
        &self,
        group: &str,
        resource: &str,
        verb: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        let grant = (group.to_string(), resource.to_string(), verb.to_string());
        let covers = |names: &Names| match (names, name) {
            (Names::All, _) => true,
            (Names::Only(only), Some(name)) => only.contains(name),
            (Names::Only(_), None) => false,
        };
        self.cluster.get(&grant).is_some_and(covers)
            || namespace
                .and_then(|ns| self.namespaced.get(ns))
                .and_then(|grants| grants.get(&grant))
                .is_some_and(covers)
    }

    /// Every grant, cluster-wide and namespaced.
    pub fn grants(&self) -> BTreeSet<Grant> {
        self.cluster
            .keys()
            .chain(self.namespaced.values().flat_map(BTreeMap::keys))
            .cloned()
            .collect()
    }

    /// The grants limited to `resourceNames`, one entry per name.
    pub fn named_grants(&self) -> BTreeSet<(Grant, String)> {
        self.cluster
            .iter()
            .chain(self.namespaced.values().flatten())
            .filter_map(|(grant, names)| match names {
                Names::All => None,
                Names::Only(only) => Some(only.iter().map(|n| (grant.clone(), n.clone()))),
            })
            .flatten()
            .collect()
    }
}
