//! Least privilege, proven against the fake API server: every test of the
//! agent's Kubernetes code runs under the RBAC rules of `deploy/rbac.yaml`
//! (a call they do not grant is 403, so a missing grant fails the test that
//! needs it), and this test walks every feature once and checks that each
//! grant is a call the agent made (so an excess grant fails here).
//! `.ci/k8s-check` holds the chart's rendered rules to the same set.

use serde_json::json;
use volley::kube::KubeContext;

use super::controller::{PLAN, config, config_in, loadtest, phase, start};
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

/// The chart's Role and ClusterRole rendered with `rbac.secretNames:
/// [target-api-keys, target-db]` (`chart/volley/ci/existing-secrets.yaml`;
/// `.ci/k8s-check` holds this file equal to the render).
const RENDERED_SECRET_NAMES: &str = include_str!("../k8s/rendered/rbac-secret-names.yaml");

#[tokio::test]
async fn resource_names_of_the_rendered_role_are_enforced_name_by_name() {
    let rbac = Rbac::from_yaml(RENDERED_SECRET_NAMES);
    let api = FakeApi::start_with_rbac(rbac.clone()).await;
    api.put_secret(NAMESPACE, "target-api-keys", &[("api-key", "k3y")]);
    api.put_secret(NAMESPACE, "target-db", &[("DB_PASSWORD", "pw")]);
    api.put_secret(NAMESPACE, "payroll", &[("token", "not-for-load-tests")]);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));

    // Both named Secrets are readable, by key and as a whole.
    let mut named = loadtest("named", PLAN);
    named["spec"]["envValueFrom"] =
        json!({"API_KEY": {"secretKeyRef": {"name": "target-api-keys", "key": "api-key"}}});
    named["spec"]["envFrom"] = json!([{"secretRef": {"name": "target-db"}}]);
    api.create_loadtest(NAMESPACE, named);
    phase(&api, "named", "Starting").await;
    let env = &agent.submits()[0].env;
    assert_eq!(
        (
            env.get("API_KEY").map(String::as_str),
            env.get("DB_PASSWORD").map(String::as_str)
        ),
        (Some("k3y"), Some("pw"))
    );

    // Any other Secret is refused by name, and the test says which.
    let mut other = loadtest("other", PLAN);
    other["spec"]["envValueFrom"] =
        json!({"TOKEN": {"secretKeyRef": {"name": "payroll", "key": "token"}}});
    api.create_loadtest(NAMESPACE, other);
    let s = phase(&api, "other", "Error").await;
    assert!(
        s["message"].as_str().is_some_and(|m| m.starts_with(
            "spec.envValueFrom.TOKEN.secretKeyRef.name: the agents' service account may not get \
             secrets \"payroll\""
        )),
        "{s}"
    );
    let refused: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.as_agent && r.status == 403)
        .map(|r| (r.path, r.name))
        .collect();
    assert_eq!(
        refused,
        [(
            "/api/v1/namespaces/volley/secrets/payroll".to_owned(),
            Some("payroll".to_owned())
        )]
    );
    // Every name the Role lists was needed: an excess name fails here.
    let used = api.agent_named_calls();
    let unused: Vec<_> = rbac.named_grants().difference(&used).cloned().collect();
    assert!(unused.is_empty(), "resourceNames never used: {unused:?}");
}

#[test]
fn resource_names_grant_only_calls_on_those_objects() {
    let rbac = Rbac::from_yaml(RENDERED_SECRET_NAMES);
    assert!(rbac.allows("", "secrets", "get", Some(NAMESPACE), Some("target-db")));
    assert!(!rbac.allows("", "secrets", "get", Some(NAMESPACE), Some("target-dbx")));
    // A list names no object, so a rule with resourceNames does not cover it.
    assert!(!rbac.allows("", "secrets", "list", Some(NAMESPACE), None));
    assert!(!rbac.allows("", "secrets", "get", Some(NAMESPACE), None));
    // Rules without resourceNames cover every object.
    assert!(rbac.allows("", "configmaps", "get", Some(NAMESPACE), Some("anything")));
    assert!(rbac.allows("", "nodes", "get", None, Some("worker-1")));
    assert!(!rbac.allows("", "configmaps", "get", None, Some("anything")));
}

/// The chart's Roles with `watchNamespaces: [team-a, team-b, volley]`
/// (`chart/volley/ci/crds-managed.yaml`; `.ci/k8s-check` holds this file
/// equal to the render): a Role and RoleBinding in each watched namespace.
const RENDERED_WATCH_NAMESPACES: &str = include_str!("../k8s/rendered/rbac-watch-namespaces.yaml");

/// One controller per served namespace, as the agent starts them, each
/// under the Role of its own namespace: a LoadTest in a watched namespace
/// runs with its plan and Secret read there; the agent makes no call a
/// Role does not grant; a namespace it was not given grants nothing.
#[tokio::test]
async fn watched_namespaces_are_served_under_their_own_roles() {
    let rbac = Rbac::from_yaml(RENDERED_WATCH_NAMESPACES);
    let api = FakeApi::start_with_rbac(rbac.clone()).await;
    api.put_configmap(
        "team-a",
        json!({"metadata": {"name": "plans"}, "data": {"smoke.yaml": PLAN}}),
    );
    api.put_secret("team-a", "creds", &[("token", "team-a-token")]);
    let agent = FakeAgent::new("node-a");
    let _controllers: Vec<_> = [NAMESPACE, "team-a", "team-b"]
        .into_iter()
        .map(|ns| start(&api, agent.clone(), config_in(ns, "node-a")))
        .collect();

    let mut a = loadtest("from-team-a", PLAN);
    a["spec"] = json!({
        "planFrom": {"configMapKeyRef": {"name": "plans", "key": "smoke.yaml"}},
        "envValueFrom": {"TOKEN": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    });
    api.create_loadtest("team-a", a);
    api.create_loadtest("team-c", loadtest("not-watched", PLAN));
    let s = eventually("the team-a test to start", || {
        let s = api
            .loadtest("team-a", "from-team-a")
            .map(|lt| lt["status"].clone())
            .unwrap_or_default();
        (s["phase"] == "Starting").then_some(s)
    })
    .await;
    assert_eq!(s["phase"], "Starting", "{s}");
    let submits = agent.submits();
    assert_eq!(submits.len(), 1, "only the watched namespace's test ran");
    assert_eq!(
        submits[0].env.get("TOKEN").map(String::as_str),
        Some("team-a-token")
    );
    assert_eq!(
        api.loadtest("team-c", "not-watched")
            .map(|lt| lt["status"].clone()),
        Some(serde_json::Value::Null),
        "an unwatched namespace is left alone"
    );
    let refused: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.as_agent && r.status == 403)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(refused.is_empty(), "calls no Role grants: {refused:?}");
    assert!(
        api.requests()
            .iter()
            .any(|r| r.as_agent && r.path.contains("/namespaces/team-b/loadtests")),
        "team-b is watched too"
    );

    // Roles count in their own namespace only.
    for ns in [NAMESPACE, "team-a", "team-b"] {
        assert!(
            rbac.allows("volley.dev", "loadtests", "watch", Some(ns), None),
            "{ns}"
        );
    }
    assert!(!rbac.allows("volley.dev", "loadtests", "watch", Some("team-c"), None));
    assert!(!rbac.allows("", "secrets", "get", Some("team-c"), Some("creds")));
    // Gossip seeds are listed in the release's namespace only.
    assert!(rbac.allows("", "pods", "list", Some(NAMESPACE), None));
    assert!(!rbac.allows("", "pods", "list", Some("team-a"), None));
    let _stray = start(&api, agent.clone(), config_in("team-c", "node-a"));
    eventually(
        "a controller in an unwatched namespace to be refused",
        || {
            api.requests()
                .into_iter()
                .any(|r| r.as_agent && r.status == 403 && r.path.contains("/namespaces/team-c/"))
                .then_some(())
        },
    )
    .await;
}
