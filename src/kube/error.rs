//! Errors of the Kubernetes integration, and the one-line-per-refusal
//! reporting of RBAC 403s.
//!
//! Every API call goes through [`classify`], which turns a `kube::Error`
//! into a [`KubeError`] naming the verb, the resource and the object, so a
//! log line says what the agent tried, not only what failed. A 403 becomes
//! [`KubeError::Forbidden`]: the feature that needed the call is switched
//! off and [`Refusals`] logs it once.

use std::collections::HashSet;
use std::sync::Mutex;

/// What went wrong talking to the Kubernetes API.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// RBAC refused the call: the service account lacks `verb` on `resource`.
    #[error("the service account may not {verb} {resource} (403): {message}")]
    Forbidden {
        /// `get`, `list`, `watch`, `update`, `patch`.
        verb: &'static str,
        /// `nodes`, `pods`, `configmaps`, `loadtests`, `loadtests/status`.
        resource: &'static str,
        /// The API server's own explanation.
        message: String,
    },
    /// The object does not exist.
    #[error("{resource} {name:?} not found{}", in_namespace(namespace))]
    NotFound {
        resource: &'static str,
        name: String,
        namespace: Option<String>,
    },
    /// Another writer changed the object since it was read (409 Conflict
    /// on a write that carried a `resourceVersion`).
    #[error("{resource} {name:?} changed since it was read (409 Conflict)")]
    Conflict {
        resource: &'static str,
        name: String,
    },
    /// Any other answer of the API server.
    #[error("{verb} {resource} {name:?}: the API server answered {code} {reason}: {message}")]
    Api {
        verb: &'static str,
        resource: &'static str,
        name: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// The request did not get an answer (connection, TLS, decoding).
    #[error("{verb} {resource} {name:?}: {source}")]
    Request {
        verb: &'static str,
        resource: &'static str,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// No Kubernetes configuration where one was required (`VOLLEY_KUBE=on`).
    #[error(
        "no in-cluster Kubernetes configuration ({source}); run inside a pod with a service \
         account, or set VOLLEY_KUBE=off"
    )]
    NoConfig {
        #[source]
        source: kube::config::InClusterError,
    },
    /// The client could not be built from the configuration.
    #[error("cannot build a Kubernetes client: {source}")]
    Client {
        #[source]
        source: Box<kube::Error>,
    },
}

fn in_namespace(namespace: &Option<String>) -> String {
    match namespace {
        Some(ns) => format!(" in namespace {ns:?}"),
        None => String::new(),
    }
}

impl KubeError {
    /// True for an RBAC refusal.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, KubeError::Forbidden { .. })
    }

    /// True for a 409 on a write guarded by a `resourceVersion`.
    pub fn is_conflict(&self) -> bool {
        matches!(self, KubeError::Conflict { .. })
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::NotFound { .. })
    }
}

/// The call that failed, for [`classify`].
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub verb: &'static str,
    pub resource: &'static str,
    /// Object name; empty for lists and watches.
    pub name: &'a str,
    /// Namespace, for namespaced resources.
    pub namespace: Option<&'a str>,
}

/// Names a `kube::Error` by the call that produced it.
pub fn classify(call: Call<'_>, err: kube::Error) -> KubeError {
    match err {
        kube::Error::Api(status) => {
            // kube's `is_forbidden` matches on the reason only; a proxy
            // may answer with a bare code, so check both.
            if status.code == 403 || status.is_forbidden() {
                KubeError::Forbidden {
                    verb: call.verb,
                    resource: call.resource,
                    message: status.message,
                }
            } else if status.code == 404 || status.is_not_found() {
                KubeError::NotFound {
                    resource: call.resource,
                    name: call.name.to_string(),
                    namespace: call.namespace.map(str::to_string),
                }
            } else if status.code == 409 || status.is_conflict() {
                KubeError::Conflict {
                    resource: call.resource,
                    name: call.name.to_string(),
                }
            } else {
                KubeError::Api {
                    verb: call.verb,
                    resource: call.resource,
                    name: call.name.to_string(),
                    code: status.code,
                    reason: status.reason,
                    message: status.message,
                }
            }
        }
        other => KubeError::Request {
            verb: call.verb,
            resource: call.resource,
            name: call.name.to_string(),
            source: Box::new(other),
        },
    }
}

/// Remembers which refusals were already logged, so each missing
/// permission costs one log line for the agent's whole life.
#[derive(Debug, Default)]
pub struct Refusals {
    logged: Mutex<HashSet<(&'static str, &'static str)>>,
}

impl Refusals {
    /// Logs `kube: the service account may not <verb> <resource> (403);
    /// running without <feature>` the first time this verb and resource are
    /// refused. Returns true when it logged.
    pub fn report(&self, verb: &'static str, resource: &'static str, feature: &str) -> bool {
        let first = self
            .logged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((verb, resource));
        if first {
            tracing::warn!(
                "kube: the service account may not {verb} {resource} (403); running without {feature}"
            );
        }
        first
    }

    /// Reports `err` if it is a refusal; true when it was one.
    pub fn report_if_forbidden(&self, err: &KubeError, feature: &str) -> bool {
        match err {
            KubeError::Forbidden { verb, resource, .. } => {
                self.report(verb, resource, feature);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn call() -> Call<'static> {
        Call {
            verb: "get",
            resource: "configmaps",
            name: "plans",
            namespace: Some("volley"),
        }
    }

    #[test]
    fn classifies_by_reason_or_code() {
        let forbidden = Status::failure("nope", "Forbidden").with_code(403);
        assert!(classify(call(), kube::Error::Api(forbidden.boxed())).is_forbidden());
        let bare = Status::failure("nope", "").with_code(403);
        assert!(classify(call(), kube::Error::Api(bare.boxed())).is_forbidden());
        let missing = Status::failure("gone", "NotFound").with_code(404);
        let err = classify(call(), kube::Error::Api(missing.boxed()));
        assert_eq!(
            err.to_string(),
            "configmaps \"plans\" not found in namespace \"volley\""
        );
        let conflict = Status::failure("changed", "Conflict").with_code(409);
        assert!(classify(call(), kube::Error::Api(conflict.boxed())).is_conflict());
        let other = Status::failure("slow down", "TooManyRequests").with_code(429);
        let err = classify(call(), kube::Error::Api(other.boxed()));
        assert!(
            err.to_string().contains("429 TooManyRequests: slow down"),
            "{err}"
        );
    }

    #[test]
    fn refusals_are_reported_once_per_verb_and_resource() {
        let r = Refusals::default();
        assert!(r.report("watch", "loadtests", "the LoadTest controller"));
        assert!(!r.report("watch", "loadtests", "the LoadTest controller"));
        assert!(r.report("get", "nodes", "node labels"));
        let err = KubeError::Forbidden {
            verb: "get",
            resource: "nodes",
            message: String::new(),
        };
        assert!(r.report_if_forbidden(&err, "node labels"));
        let err = KubeError::Conflict {
            resource: "loadtests/status",
            name: "x".into(),
        };
        assert!(!r.report_if_forbidden(&err, "x"));
    }
}
