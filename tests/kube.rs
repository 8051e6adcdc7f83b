//! The Kubernetes integration (`volley::kube`) against a fake API server on
//! loopback (`tests/kube/fake_api.rs`): node identity, seeds, and the
//! LoadTest controller. No real cluster is involved.

#[path = "kube/fake_api.rs"]
mod fake_api;

use std::time::Duration;

use fake_api::{FakeApi, NAMESPACE};
use serde_json::json;
use volley::kube::KubeContext;

#[tokio::test]
async fn node_labels_and_allocatable_end_to_end() {
    let api = FakeApi::start().await;
    api.put_node(json!({
        "metadata": {"name": "worker-1", "labels": {
            "topology.kubernetes.io/region": "eu-west-1",
            "topology.kubernetes.io/zone": "eu-west-1b",
            "volley.dev/pool": "load",
            "kubernetes.io/os": "linux",
        }},
        "status": {"allocatable": {"cpu": "3920m", "memory": "27Gi", "pods": "110"}}
    }));
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    let id = ctx.node_identity("worker-1").await.expect("node readable");
    assert_eq!(id.region.as_deref(), Some("eu-west-1"));
    assert_eq!(id.zone.as_deref(), Some("eu-west-1b"));
    assert_eq!(id.labels.get("pool").map(String::as_str), Some("load"));
    assert!(!id.labels.contains_key("kubernetes.io/os"));
    assert_eq!(id.cpu, Some(3.92));
    assert_eq!(id.memory, Some(27 * 1024 * 1024 * 1024));
    let _ = Duration::ZERO;
}
