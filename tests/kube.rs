//! The Kubernetes integration (`volley::kube`) against a FAKE API server on
//! loopback (`tests/kube/fake_api/`), never a real cluster: node
//! identity, pod seeds, RBAC refusals here; the `LoadTest` controller in
//! `tests/kube/controller.rs` (conditions, Events, re-runs and TTLs in
//! `tests/kube/lifecycle.rs`, env values from Secrets in
//! `tests/kube/secrets.rs`, least privilege in `tests/kube/rbac.rs` (Roles
//! scoped to their namespace, `watchNamespaces` served under the rendered Roles), agent
//! selection by `matchExpressions` on a real in-process fleet in
//! `tests/kube/selection.rs`); the fake's own API semantics in
//! `tests/kube/conformance.rs`.

#[path = "kube/conformance.rs"]
mod conformance;
#[path = "kube/controller.rs"]
mod controller;
#[path = "kube/fake_agent.rs"]
mod fake_agent;
#[path = "kube/fake_api/mod.rs"]
mod fake_api;
#[path = "kube/lifecycle.rs"]
mod lifecycle;
#[path = "kube/rbac.rs"]
mod rbac;
#[path = "kube/secrets.rs"]
mod secrets;
#[path = "kube/selection.rs"]
mod selection;
#[path = "kube/support.rs"]
mod support;

use std::sync::Arc;

use fake_agent::FakeAgent;
use fake_api::{FakeApi, NAMESPACE};
use serde_json::json;
use support::{Logs, within};
use volley::kube::seeds::AGENT_POD_SELECTOR;
use volley::kube::{ControllerConfig, ControllerExit, KubeContext};

fn worker_node() -> serde_json::Value {
    json!({
        "metadata": {"name": "worker-1", "labels": {
            "topology.kubernetes.io/region": "eu-west-1",
            "topology.kubernetes.io/zone": "eu-west-1b",
            "volley.dev/pool": "load",
            "kubernetes.io/os": "linux",
        }},
        "status": {"allocatable": {"cpu": "3920m", "memory": "27Gi", "pods": "110"}}
    })
}

#[tokio::test]
async fn node_labels_and_allocatable_end_to_end() {
    let api = FakeApi::start().await;
    api.put_node(worker_node());
    let ctx = KubeContext::new(api.client(), NAMESPACE);

    let id = ctx.node_identity("worker-1").await.expect("node readable");
    assert_eq!(id.name, "worker-1");
    assert_eq!(id.region.as_deref(), Some("eu-west-1"));
    assert_eq!(id.zone.as_deref(), Some("eu-west-1b"));
    let labels: Vec<(&str, &str)> = id
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("pool", "load"),
            ("region", "eu-west-1"),
            ("zone", "eu-west-1b")
        ]
    );
    assert_eq!(id.cpu, Some(3.92));
    assert_eq!(id.memory, Some(27 * 1024 * 1024 * 1024));
    assert_eq!(id.capacity_bound(), Some(3.92));
    assert_eq!(api.count(&http::Method::GET, "/api/v1/nodes/worker-1"), 1);
}

#[tokio::test]
async fn node_without_region_labels_or_status_is_fine() {
    let api = FakeApi::start().await;
    api.put_node(json!({"metadata": {"name": "plain"}}));
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    let id = ctx.node_identity("plain").await.expect("node readable");
    assert_eq!(
        (id.region, id.zone, id.cpu, id.memory),
        (None, None, None, None)
    );
    assert!(id.labels.is_empty());
    // A node that does not exist is no identity, and no crash.
    assert!(ctx.node_identity("missing").await.is_none());
}

#[tokio::test]
async fn seeds_from_running_agent_pods() {
    let api = FakeApi::start().await;
    let agent_labels = json!({
        "app.kubernetes.io/name": "volley",
        "app.kubernetes.io/component": "agent",
    });
    let pod = |name: &str, phase: &str, ip: Option<&str>, labels: &serde_json::Value| {
        let mut p = json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"phase": phase}
        });
        if let Some(ip) = ip {
            p["status"]["podIP"] = json!(ip);
        }
        p
    };
    api.put_pod(
        NAMESPACE,
        pod("agent-a", "Running", Some("10.1.0.5"), &agent_labels),
    );
    api.put_pod(
        NAMESPACE,
        pod("agent-b", "Running", Some("10.1.0.6"), &agent_labels),
    );
    api.put_pod(
        NAMESPACE,
        pod("agent-self", "Running", Some("10.1.0.7"), &agent_labels),
    );
    api.put_pod(NAMESPACE, pod("agent-new", "Pending", None, &agent_labels));
    api.put_pod(
        NAMESPACE,
        pod(
            "target",
            "Running",
            Some("10.1.0.9"),
            &json!({"app": "target"}),
        ),
    );
    api.put_pod(
        "elsewhere",
        pod("agent-x", "Running", Some("10.2.0.1"), &agent_labels),
    );

    let ctx = KubeContext::new(api.client(), NAMESPACE);
    let seeds = ctx
        .pod_seeds(AGENT_POD_SELECTOR, 7946, "10.1.0.7".parse().ok())
        .await;
    assert_eq!(seeds, ["10.1.0.5:7946", "10.1.0.6:7946"]);
    let list = api
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/namespaces/volley/pods")
        .expect("a pod list request");
    assert!(
        list.query
            .contains("labelSelector=app.kubernetes.io%2Fname%3Dvolley"),
        "{}",
        list.query
    );
}

#[tokio::test]
async fn rbac_refusal_on_loadtests_stops_the_controller_with_one_log_line() {
    let (logs, _guard) = Logs::capture();
    let api = FakeApi::start().await;
    api.put_node(worker_node());
    api.forbid("*", "loadtests");
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    let alive = Arc::new(|_: &str| true);

    for _ in 0..2 {
        let handle = ctx.spawn_controller_with(
            ControllerConfig::new(NAMESPACE, "node-a"),
            FakeAgent::new("node-a"),
            alive.clone(),
        );
        let exit = within("the controller to stop", handle)
            .await
            .expect("controller task ends normally");
        assert_eq!(
            exit,
            ControllerExit::Forbidden {
                verb: "list",
                resource: "loadtests"
            }
        );
    }
    let line = "kube: the service account may not list loadtests (403); running without the LoadTest controller";
    assert_eq!(logs.lines_with(line).len(), 1, "one line for the refusal");

    // The rest of the integration keeps working.
    let id = ctx
        .node_identity("worker-1")
        .await
        .expect("nodes still readable");
    assert_eq!(id.region.as_deref(), Some("eu-west-1"));
}

#[tokio::test]
async fn rbac_refusal_on_status_writes_stops_the_controller() {
    let (logs, _guard) = Logs::capture();
    let api = FakeApi::start().await;
    api.forbid("update", "loadtests/status");
    api.create_loadtest(NAMESPACE, controller::loadtest("smoke", controller::PLAN));
    let agent = FakeAgent::new("node-a");
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    let handle = ctx.spawn_controller_with(
        ControllerConfig::new(NAMESPACE, "node-a"),
        agent.clone(),
        Arc::new(|_: &str| true),
    );
    let exit = within("the controller to stop", handle)
        .await
        .expect("controller task ends normally");
    assert_eq!(
        exit,
        ControllerExit::Forbidden {
            verb: "update",
            resource: "loadtests/status"
        }
    );
    assert!(agent.submits().is_empty(), "nothing runs without a claim");
    let line = "may not update loadtests/status (403); running without the LoadTest controller";
    assert_eq!(logs.lines_with(line).len(), 1);
}

#[tokio::test]
async fn rbac_refusal_on_nodes_and_pods_is_logged_once_each() {
    let (logs, _guard) = Logs::capture();
    let api = FakeApi::start().await;
    api.put_node(worker_node());
    api.forbid("get", "nodes");
    api.forbid("list", "pods");
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    for _ in 0..3 {
        assert!(ctx.node_identity("worker-1").await.is_none());
        assert!(
            ctx.pod_seeds(AGENT_POD_SELECTOR, 7946, None)
                .await
                .is_empty()
        );
    }
    assert_eq!(
        logs.lines_with("kube: the service account may not get nodes (403); running without node labels and capacity").len(),
        1
    );
    assert_eq!(
        logs.lines_with(
            "kube: the service account may not list pods (403); running without pod seeds"
        )
        .len(),
        1
    );
}
