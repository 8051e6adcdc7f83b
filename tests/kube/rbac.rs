//! Least privilege, proven against the fake API server: every test of the
//! agent's Kubernetes code runs under the RBAC rules of `deploy/rbac.yaml`
//! (a call they do not grant is 403, so a missing grant fails the test that
//! needs it), and this test walks every feature once and checks that each
//! grant is a call the agent made (so an excess grant fails here).
//! `.ci/k8s-check` holds the chart's rendered rules to the same set.

use serde_json::json;
use volley::kube::KubeContext;

use super::controller::{PLAN, config, loadtest, phase, start};
use super::fake_agent::FakeAgent;
use super::fake_api::{FakeApi, NAMESPACE, Rbac};
use super::support::eventually;

#[tokio::test]
async fn every_grant_of_deploy_rbac_is_a_call_the_agent_makes() {
    let api = FakeApi::start().await;
    api.put_node(json!({"metadata": {"name": "worker-1"}}));
    api.put_pod(
        NAMESPACE,
        json!({
            "metadata": {"name": "agent-b", "labels": {
                "app.kubernetes.io/name": "volley", "app.kubernetes.io/component": "agent"}},
            "status": {"phase": "Running", "podIP": "10.1.0.6"}
        }),
    );
    api.put_configmap(
        NAMESPACE,
        json!({"metadata": {"name": "plans"}, "data": {"smoke.yaml": PLAN}}),
    );
    api.put_secret(NAMESPACE, "creds", &[("token", "t0k3n")]);

    // Node identity and pod seeds.
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    assert!(ctx.node_identity("worker-1").await.is_some());
    assert_eq!(
        ctx.pod_seeds(volley::kube::seeds::AGENT_POD_SELECTOR, 7946, None)
            .await,
        ["10.1.0.6:7946"]
    );

    // A test from a ConfigMap with a Secret env value, deleted by its TTL.
    let mut short = loadtest("short", PLAN);
    short["spec"] = json!({
        "planFrom": {"configMapKeyRef": {"name": "plans", "key": "smoke.yaml"}},
        "envValueFrom": {"TOKEN": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        "ttlSecondsAfterFinished": 0,
    });
    api.create_loadtest(NAMESPACE, short);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "short", "Starting").await;
    agent.finish("t-1", 10, vec![]);
    eventually("the expired test to be deleted", || {
        api.loadtest(NAMESPACE, "short").is_none().then_some(())
    })
    .await;

    // A test run twice: the second Claimed Event patches the first.
    let mut twice = loadtest("twice", PLAN);
    twice["spec"]["runId"] = json!("1");
    api.create_loadtest(NAMESPACE, twice);
    phase(&api, "twice", "Starting").await;
    agent.finish("t-2", 10, vec![]);
    phase(&api, "twice", "Passed").await;
    let mut spec = api.loadtest(NAMESPACE, "twice").expect("exists")["spec"].clone();
    spec["runId"] = json!("2");
    api.set_spec(NAMESPACE, "twice", spec);
    eventually(
        "the rerun's Claimed Event to be a patch of the first",
        || {
            api.requests()
                .iter()
                .any(|r| {
                    r.as_agent && r.method == http::Method::PATCH && r.path.contains("/events/")
                })
                .then_some(())
        },
    )
    .await;

    let forbidden: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.as_agent && r.status == 403)
        .map(|r| (r.method, r.path, r.grant))
        .collect();
    assert!(
        forbidden.is_empty(),
        "calls deploy/rbac.yaml does not grant: {forbidden:?}"
    );
    let granted = Rbac::deploy().grants();
    let used = api.agent_calls();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(unused.is_empty(), "grants the agent never used: {unused:?}");
    let ungranted: Vec<_> = used.difference(&granted).collect();
    assert!(
        ungranted.is_empty(),
        "calls beyond the grants: {ungranted:?}"
    );
}

#[tokio::test]
async fn a_call_the_rules_do_not_grant_is_refused_as_on_a_cluster() {
    let api = FakeApi::start().await;
    api.put_node(json!({"metadata": {"name": "worker-1"}}));
    let agent: kube::Api<volley::kube::crd::LoadTest> =
        kube::Api::namespaced(api.client(), NAMESPACE);
    // The agent never reads a single LoadTest: deploy/rbac.yaml grants no get.
    let err = agent
        .get("anything")
        .await
        .expect_err("no get on loadtests");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );
    // An admin may.
    let admin: kube::Api<volley::kube::crd::LoadTest> =
        kube::Api::namespaced(api.admin_client(), NAMESPACE);
    let err = admin.get("anything").await.expect_err("not found");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err}"
    );
}
