//! Gossip seeds from the Kubernetes API: the addresses of the other agent
//! pods, for joining the fleet.
//!
//! Two ways to seed, and the agent may use both:
//!
//! - **The headless Service** (`volley-gossip`, `clusterIP: None`,
//!   `publishNotReadyAddresses: true`): its DNS name resolves to every agent
//!   pod, ready or not. This needs no API access at all; it is a plain DNS
//!   name, [`headless_service_seed`] builds it, and the gossip layer resolves
//!   it like any other seed. It is what `deploy/daemonset.yaml` puts in
//!   `VOLLEY_SEEDS`.
//! - **The DaemonSet's pods** ([`pod_seeds`]): a `list pods` by label in the
//!   agent's namespace, for clusters where the Service is missing or DNS is
//!   slow to publish new pods. Needs `list` on `pods` (granted by the Role).

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::error::{Call, KubeError, classify};

/// The label selector of the agent pods in `deploy/daemonset.yaml`.
pub const AGENT_POD_SELECTOR: &str =
    "app.kubernetes.io/name=volley,app.kubernetes.io/component=agent";

/// `SERVICE.NAMESPACE.svc:PORT`: the headless Service as a gossip seed.
/// The short `svc` form resolves through the pod's DNS search path, so it
/// works whatever the cluster domain is.
pub fn headless_service_seed(service: &str, namespace: &str, gossip_port: u16) -> String {
    format!("{service}.{namespace}.svc:{gossip_port}")
}

/// `ip:port` of every Running agent pod with an IP, except `self_ip`,
/// sorted. Pods being deleted are left out: their agents are draining.
pub async fn pod_seeds(
    client: Client,
    namespace: &str,
    label_selector: &str,
    gossip_port: u16,
    self_ip: Option<IpAddr>,
) -> Result<Vec<String>, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let list = pods
        .list(&ListParams::default().labels(label_selector))
        .await
        .map_err(|e| {
            classify(
                Call {
                    verb: "list",
                    resource: "pods",
                    name: "",
                    namespace: Some(namespace),
                },
                e,
            )
        })?;
    Ok(seeds_from_pods(&list.items, gossip_port, self_ip))
}

/// The pure part of [`pod_seeds`].
pub fn seeds_from_pods(pods: &[Pod], gossip_port: u16, self_ip: Option<IpAddr>) -> Vec<String> {
    let mut seeds: Vec<SocketAddr> = pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            if status.phase.as_deref() != Some("Running") {
                return None;
            }
            let text = status.pod_ip.as_deref()?;
            match text.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    tracing::debug!(pod = %pod.name_any(), pod_ip = text, "kube: pod IP is not an IP address; skipped as a seed");
                    None
                }
            }
        })
        .filter(|ip| Some(*ip) != self_ip)
        .map(|ip| SocketAddr::new(ip, gossip_port))
        .collect();
    seeds.sort();
    seeds.dedup();
    seeds.into_iter().map(|a| a.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, phase: &str, ip: Option<&str>, deleting: bool) -> Pod {
        let mut v = json!({
            "metadata": {"name": name},
            "status": {"phase": phase}
        });
        if let Some(ip) = ip {
            v["status"]["podIP"] = json!(ip);
        }
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(v).expect("test pod is valid")
    }

    #[test]
    fn running_pods_with_ips_except_self() {
        let pods = [
            pod("a", "Running", Some("10.0.0.12"), false),
            pod("b", "Running", Some("10.0.0.3"), false),
            pod("self", "Running", Some("10.0.0.7"), false),
            pod("pending", "Pending", Some("10.0.0.8"), false),
            pod("no-ip", "Running", None, false),
            pod("bad-ip", "Running", Some("not-an-ip"), false),
            pod("leaving", "Running", Some("10.0.0.9"), true),
            pod("v6", "Running", Some("fd00::5"), false),
        ];
        let self_ip = "10.0.0.7".parse().ok();
        assert_eq!(
            seeds_from_pods(&pods, 7946, self_ip),
            vec!["10.0.0.3:7946", "10.0.0.12:7946", "[fd00::5]:7946"]
        );
    }

    #[test]
    fn service_seed_needs_no_api() {
        assert_eq!(
            headless_service_seed("volley-gossip", "volley", 7946),
            "volley-gossip.volley.svc:7946"
        );
    }
}
