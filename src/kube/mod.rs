//! Kubernetes integration: the agent's node identity, gossip seeds from the
//! API, and the `LoadTest` custom resource that agents watch and report
//! into.
//!
//! All of it is optional at run time. [`connect`] finds the in-cluster
//! configuration or quietly turns the integration off (`VOLLEY_KUBE=auto`
//! outside a cluster); the agent works the same without it, minus these
//! features. An RBAC refusal (403) of any call logs one line naming the verb,
//! the resource and the feature that goes without, and the rest keeps
//! working.
//!
//! kube-rs and k8s-openapi are used only under this module, so the rest of
//! Volley stays free of the Kubernetes API types.
//!
//! Tested against a fake API server on loopback (`tests/kube/fake_api/`),
//! not against a real cluster.

pub mod controller;
pub mod crd;
pub mod error;
pub mod node;
pub mod quantity;
pub mod seeds;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use kube::Client;
use tokio::task::JoinHandle;

pub use controller::{ControllerConfig, ControllerExit, IsAlive, spawn_controller};
pub use error::{KubeError, Refusals};
pub use node::NodeIdentity;

use crate::api::Agent;

/// Whether the agent uses the Kubernetes API (`VOLLEY_KUBE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubeMode {
    /// Use it when running in a pod, stay quiet otherwise.
    #[default]
    Auto,
    /// Never use it.
    Off,
    /// Require it: no in-cluster configuration is an error.
    On,
}

/// `VOLLEY_KUBE` holds something other than `auto`, `on` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VOLLEY_KUBE: got {value:?}, expected one of auto, on, off")]
pub struct KubeModeError {
    pub value: String,
}

impl FromStr for KubeMode {
    type Err = KubeModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(KubeMode::Auto),
            "off" | "false" | "0" => Ok(KubeMode::Off),
            "on" | "true" | "1" => Ok(KubeMode::On),
            _ => Err(KubeModeError {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for KubeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KubeMode::Auto => "auto",
            KubeMode::Off => "off",
            KubeMode::On => "on",
        })
    }
}

/// A connection to the API server and what the agent learned about its
/// permissions so far.
#[derive(Clone)]
pub struct KubeContext {
    /// The client, with the pod's service account credentials.
    client: Client,
    /// The agent's own namespace: where its pods, `LoadTest`s and plan
    /// ConfigMaps live.
    namespace: String,
    /// Refusals already logged, shared by every feature.
    refusals: Arc<Refusals>,
}

impl fmt::Debug for KubeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeContext")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Connects according to `mode`: `Ok(None)` when the integration is off
/// (`Off`, or `Auto` outside a cluster), an error only when `On` and there
/// is no in-cluster configuration. Async because the client spawns its
/// request buffer on the current tokio runtime.
pub async fn connect(mode: KubeMode) -> Result<Option<KubeContext>, KubeError> {
    if mode == KubeMode::Off {
        tracing::debug!("kube: integration off (VOLLEY_KUBE=off)");
        return Ok(None);
    }
    let config = match kube::Config::incluster() {
        Ok(config) => config,
        Err(source) if mode == KubeMode::Auto => {
            tracing::debug!("kube: not running in a pod ({source}); integration off");
            return Ok(None);
        }
        Err(source) => return Err(KubeError::NoConfig { source }),
    };
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| KubeError::Client {
        source: Box::new(e),
    })?;
    tracing::info!(namespace = %namespace, "kube: connected to the in-cluster API server");
    Ok(Some(KubeContext::new(client, namespace)))
}

impl KubeContext {
    /// A context over an existing client (tests, or a client built from a
    /// kubeconfig).
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        KubeContext {
            client,
            namespace: namespace.into(),
            refusals: Arc::new(Refusals::default()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The refusal log shared by every feature of this context.
    pub fn refusals(&self) -> &Arc<Refusals> {
        &self.refusals
    }

    /// The agent's Node identity, or `None` (logged) when it cannot be read.
    pub async fn node_identity(&self, node_name: &str) -> Option<NodeIdentity> {
        match node::fetch(self.client.clone(), node_name).await {
            Ok(identity) => {
                for problem in &identity.problems {
                    tracing::warn!("kube: {problem}; ignoring that value");
                }
                tracing::info!(
                    node = %identity.name,
                    region = identity.region.as_deref().unwrap_or("-"),
                    zone = identity.zone.as_deref().unwrap_or("-"),
                    cpu = ?identity.cpu,
                    memory = ?identity.memory,
                    "kube: read the agent's node"
                );
                Some(identity)
            }
            Err(err) => {
                if !self
                    .refusals
                    .report_if_forbidden(&err, "node labels and capacity")
                {
                    tracing::warn!(
                        "kube: cannot read node {node_name:?}: {err}; running without node labels and capacity"
                    );
                }
                None
            }
        }
    }

    /// Starts the `LoadTest` controller in this context's namespace with
    /// the default [`ControllerConfig`] (see [`controller`]), for the fleet
    /// `cluster_id` (`spec.fleet`).
    pub fn spawn_controller(
        &self,
        agent: Arc<dyn Agent>,
        node_id: &str,
        cluster_id: &str,
        is_alive: IsAlive,
    ) -> JoinHandle<ControllerExit> {
        let mut config = ControllerConfig::new(&self.namespace, node_id);
        config.fleet = Some(cluster_id.to_string());
        self.spawn_controller_with(config, agent, is_alive)
    }

    /// Starts the controller with explicit settings; `config.namespace` is
    /// where it watches.
    pub fn spawn_controller_with(
        &self,
        config: ControllerConfig,
        agent: Arc<dyn Agent>,
        is_alive: IsAlive,
    ) -> JoinHandle<ControllerExit> {
        spawn_controller(
            self.client.clone(),
            config,
            agent,
            is_alive,
            self.refusals.clone(),
        )
    }

    /// Gossip seeds from the agent pods (see [`seeds`]); empty (logged) when
    /// the pods cannot be listed.
    pub async fn pod_seeds(
        &self,
        label_selector: &str,
        gossip_port: u16,
        self_ip: Option<IpAddr>,
    ) -> Vec<String> {
        match seeds::pod_seeds(
            self.client.clone(),
            &self.namespace,
            label_selector,
            gossip_port,
            self_ip,
        )
        .await
        {
            Ok(seeds) => seeds,
            Err(err) => {
                if !self
                    .refusals
                    .report_if_forbidden(&err, "pod seeds (the headless Service seed still works)")
                {
                    tracing::warn!("kube: cannot list agent pods for seeds: {err}");
                }
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!("auto".parse(), Ok(KubeMode::Auto));
        assert_eq!(" ON ".parse(), Ok(KubeMode::On));
        assert_eq!("off".parse(), Ok(KubeMode::Off));
        let err = "sometimes".parse::<KubeMode>().expect_err("not a mode");
        assert_eq!(
            err.to_string(),
            "VOLLEY_KUBE: got \"sometimes\", expected one of auto, on, off"
        );
        for mode in [KubeMode::Auto, KubeMode::On, KubeMode::Off] {
            assert_eq!(mode.to_string().parse(), Ok(mode));
        }
    }

    #[tokio::test]
    async fn off_never_connects() {
        assert!(matches!(connect(KubeMode::Off).await, Ok(None)));
    }

    #[tokio::test]
    async fn auto_outside_a_pod_is_quietly_off_and_on_is_an_error() {
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return; // inside a pod: the in-cluster configuration exists
        }
        assert!(matches!(connect(KubeMode::Auto).await, Ok(None)));
        let err = connect(KubeMode::On).await.expect_err("no cluster here");
        assert!(err.to_string().contains("VOLLEY_KUBE=off"), "{err}");
    }
}
