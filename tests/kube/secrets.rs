//! `spec.envValueFrom` and `spec.envFrom` against the fake API server: the
//! controller reads Secret and ConfigMap keys when a test starts, hands the
//! values to the fleet, and never writes them to the status, the Events or
//! the logs; a missing object or key fails the test with a reason and the
//! field path.

use serde_json::{Value, json};

use super::controller::{PLAN, config, loadtest, phase, start};
use super::fake_agent::FakeAgent;
use super::fake_api::{FakeApi, NAMESPACE};
use super::support::{Logs, eventually};

const API_KEY: &str = "s3cr3t-api-key-4f9a";
const DB_PASSWORD: &str = "hunter2-db-pass-77c1";

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn env_values_from_secrets_and_configmaps_reach_the_fleet_and_nothing_else() {
    let (logs, _guard) = Logs::capture();
    let api = FakeApi::start().await;
    api.put_secret(
        NAMESPACE,
        "target-creds",
        &[("api-key", API_KEY), ("user", "loadbot")],
    );
    api.put_secret(NAMESPACE, "db", &[("password", DB_PASSWORD)]);
    api.put_configmap(
        NAMESPACE,
        json!({"metadata": {"name": "target"}, "data": {"URL": "http://svc:8080", "REGION": "eu"}}),
    );
    let mut lt = loadtest("secret-env", PLAN);
    lt["spec"]["env"] = json!({"REGION": "us", "MODE": "smoke"});
    lt["spec"]["envValueFrom"] = json!({
        "API_KEY": {"secretKeyRef": {"name": "target-creds", "key": "api-key"}},
        "USER": {"secretKeyRef": {"name": "target-creds", "key": "user"}},
        "OPTIONAL": {"secretKeyRef": {"name": "absent", "key": "x", "optional": true}},
    });
    lt["spec"]["envFrom"] = json!([
        {"configMapRef": {"name": "target"}},
        {"secretRef": {"name": "db"}, "prefix": "DB_"},
        {"secretRef": {"name": "not-there", "optional": true}},
    ]);
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "secret-env", "Starting").await;

    let submits = agent.submits();
    let env: Vec<(&str, &str)> = submits[0]
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("API_KEY", API_KEY),
            ("DB_password", DB_PASSWORD),
            ("MODE", "smoke"),
            // spec.env wins over envFrom.
            ("REGION", "us"),
            ("URL", "http://svc:8080"),
            ("USER", "loadbot"),
        ]
    );
    // Each object was read once.
    let reads = |path: &str| api.count(&http::Method::GET, path);
    assert_eq!(reads("/secrets/target-creds"), 1);

    // Never in the status (any version), the Events or the logs.
    agent.finish("t-1", 10, vec![]);
    phase(&api, "secret-env", "Passed").await;
    let events = eventually("the Passed event", || {
        let events = api.events_about(NAMESPACE, "secret-env");
        events
            .iter()
            .any(|e| e["reason"] == "Passed")
            .then_some(events)
    })
    .await;
    let stored = serde_json::to_string(&api.versions(NAMESPACE, "secret-env")).expect("json");
    let written = serde_json::to_string(&events).expect("json");
    for secret in [API_KEY, DB_PASSWORD] {
        assert!(
            !stored.contains(secret),
            "a secret value in a stored version"
        );
        assert!(!written.contains(secret), "a secret value in an Event");
        assert!(
            logs.lines_with(secret).is_empty(),
            "a secret value in the logs"
        );
    }
}

#[tokio::test]
async fn a_missing_secret_or_key_fails_with_the_field_path_and_a_reason() {
    let api = FakeApi::start().await;
    api.put_secret(
        NAMESPACE,
        "target-creds",
        &[("api-key", API_KEY), ("user", "loadbot")],
    );
    let mut no_key = loadtest("no-key", PLAN);
    no_key["spec"]["envValueFrom"] =
        json!({"API_KEY": {"secretKeyRef": {"name": "target-creds", "key": "token"}}});
    api.create_loadtest(NAMESPACE, no_key);
    let mut no_secret = loadtest("no-secret", PLAN);
    no_secret["spec"]["envFrom"] = json!([{"secretRef": {"name": "vault"}}]);
    api.create_loadtest(NAMESPACE, no_secret);
    let mut both = loadtest("both", PLAN);
    both["spec"]["env"] = json!({"API_KEY": "literal"});
    both["spec"]["envValueFrom"] =
        json!({"API_KEY": {"secretKeyRef": {"name": "target-creds", "key": "api-key"}}});
    api.create_loadtest(NAMESPACE, both);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));

    let s = phase(&api, "no-key", "Error").await;
    assert_eq!(
        s["message"],
        "spec.envValueFrom.API_KEY.secretKeyRef.key: Secret \"target-creds\" has no key \"token\" \
         (its keys: api-key, user)"
    );
    assert_eq!(condition(&s, "Failed")["reason"], "ReferenceNotFound");
    assert_eq!(condition(&s, "Complete")["status"], "True");
    let s = phase(&api, "no-secret", "Error").await;
    assert_eq!(
        s["message"],
        "spec.envFrom[0].secretRef.name: Secret \"vault\" not found in namespace \"volley\"; it \
         must be in the LoadTest's own namespace (or mark the reference optional: true)"
    );
    assert_eq!(condition(&s, "Failed")["reason"], "ReferenceNotFound");
    let s = phase(&api, "both", "Error").await;
    assert_eq!(
        s["message"],
        "spec.envValueFrom.API_KEY: also set in spec.env; keep one of the two"
    );
    assert_eq!(condition(&s, "Failed")["reason"], "InvalidSpec");
    assert!(
        agent.submits().is_empty(),
        "nothing is submitted without its env"
    );
}

#[tokio::test]
async fn secrets_the_agents_may_not_read_fail_with_reference_forbidden() {
    let (logs, _guard) = Logs::capture();
    let api = FakeApi::start().await;
    api.forbid("get", "secrets");
    let mut lt = loadtest("locked", PLAN);
    lt["spec"]["envValueFrom"] =
        json!({"API_KEY": {"secretKeyRef": {"name": "target-creds", "key": "api-key"}}});
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    let s = phase(&api, "locked", "Error").await;
    assert_eq!(condition(&s, "Failed")["reason"], "ReferenceForbidden");
    assert!(
        s["message"].as_str().is_some_and(|m| m.starts_with(
            "spec.envValueFrom.API_KEY.secretKeyRef.name: the agents' service account may not get secrets"
        )),
        "{s}"
    );
    assert_eq!(
        logs.lines_with(
            "may not get secrets (403); running without env values from Secrets and ConfigMaps"
        )
        .len(),
        1
    );
}
