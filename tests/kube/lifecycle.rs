//! What CI and platform teams rely on in a `LoadTest`'s life, against the
//! fake API server: the `Complete`/`Succeeded`/`Failed` conditions as
//! `kubectl wait` reads them, an Event per phase, exit codes, explicit
//! re-runs with `spec.runId`, and `ttlSecondsAfterFinished`.
//!
//! The controller reads a wall clock the tests set by hand
//! ([`volley::kube::controller::WallClock`]), so transition times and TTLs
//! are exact and no test waits for real seconds.

use std::sync::{Arc, Mutex};

use http::Method;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use volley::api::ApiError;
use volley::kube::controller::WallClock;

use super::controller::{PLAN, config, loadtest, phase, phases, start, status};
use super::fake_agent::{FakeAgent, threshold};
use super::fake_api::{FakeApi, NAMESPACE};
use super::support::{Logs, eventually};

/// 2026-03-01T12:00:00Z, where every test's clock starts.
const T0: &str = "2026-03-01T12:00:00Z";

/// A wall clock the test moves by hand.
#[derive(Clone)]
struct Clock(Arc<Mutex<Timestamp>>);

impl Clock {
    fn new() -> Clock {
        Clock(Arc::new(Mutex::new(T0.parse().expect("T0 parses"))))
    }

    fn wall(&self) -> WallClock {
        let now = self.0.clone();
        WallClock::new(move || *now.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn advance(&self, secs: i64) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now = now
            .checked_add(SignedDuration::from_secs(secs))
            .expect("in range");
    }
}

/// kubectl's `wait --for=condition=TYPE` test (kubectl/pkg/cmd/wait,
/// `checkCondition`): the condition of that type (case-insensitive) is
/// `True`, and neither its `observedGeneration` nor the status's is older
/// than `metadata.generation`.
fn kubectl_wait_satisfied(obj: &Value, type_: &str) -> bool {
    let Some(conditions) = obj["status"]["conditions"].as_array() else {
        return false;
    };
    let generation = obj["metadata"]["generation"].as_i64();
    for c in conditions {
        if !c["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(type_))
        {
            continue;
        }
        let observed = c["observedGeneration"]
            .as_i64()
            .or_else(|| obj["status"]["observedGeneration"].as_i64());
        if let (Some(g), Some(o)) = (generation, observed)
            && o < g
        {
            return false;
        }
        return c["status"] == "True";
    }
    false
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn reasons(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_passed_test_sets_conditions_events_and_exit_code() {
    let api = FakeApi::start().await;
    let clock = Clock::new();
    api.create_loadtest(NAMESPACE, loadtest("ok", PLAN));
    let agent = FakeAgent::new("node-a");
    let mut cfg = config("node-a");
    cfg.clock = clock.wall();
    let _c = start(&api, agent.clone(), cfg);

    let s = phase(&api, "ok", "Starting").await;
    for (type_, want) in [
        ("Complete", "False"),
        ("Succeeded", "Unknown"),
        ("Failed", "False"),
    ] {
        assert_eq!(
            condition(&s, type_)["status"],
            want,
            "{type_} while starting: {s}"
        );
    }
    assert_eq!(condition(&s, "Complete")["reason"], "Starting");
    let obj = api.loadtest(NAMESPACE, "ok").expect("exists");
    assert!(!kubectl_wait_satisfied(&obj, "Complete"));

    agent.set_running("t-1", 10.0, 5.0);
    phase(&api, "ok", "Running").await;
    clock.advance(90);
    agent.finish(
        "t-1",
        100,
        vec![threshold("http_req_duration", "p(95)<300", true, 12.0)],
    );
    let s = phase(&api, "ok", "Passed").await;

    let done = "2026-03-01T12:01:30Z";
    assert_eq!(s["completionTime"], done);
    assert_eq!(s["exitCode"], 0);
    for (type_, want, reason) in [
        ("Complete", "True", "Passed"),
        ("Succeeded", "True", "Passed"),
        ("Failed", "False", "Passed"),
    ] {
        let c = condition(&s, type_);
        assert_eq!(c["status"], want, "{type_}: {s}");
        assert_eq!(c["reason"], reason, "{type_}");
        assert_eq!(c["observedGeneration"], 1, "{type_}");
        assert_eq!(c["message"], "test t-1 passed", "{type_}");
    }
    // Failed was already False: it keeps the time it became so.
    assert_eq!(condition(&s, "Complete")["lastTransitionTime"], done);
    assert_eq!(condition(&s, "Failed")["lastTransitionTime"], T0);
    let obj = api.loadtest(NAMESPACE, "ok").expect("exists");
    assert!(kubectl_wait_satisfied(&obj, "Complete"));
    assert!(kubectl_wait_satisfied(&obj, "Succeeded"));
    assert!(!kubectl_wait_satisfied(&obj, "Failed"));

    // One Event per phase, about this object, by the agent that ran it.
    let events = eventually("the Passed event", || {
        let events = api.events_about(NAMESPACE, "ok");
        (events.len() == 4).then_some(events)
    })
    .await;
    let normal = |r: &str| ("Normal".to_string(), r.to_string());
    assert_eq!(
        reasons(&events),
        [
            normal("Claimed"),
            normal("Starting"),
            normal("Running"),
            normal("Passed")
        ]
    );
    let last = &events[3];
    assert_eq!(last["regarding"]["kind"], "LoadTest");
    assert_eq!(last["regarding"]["apiVersion"], "volley.dev/v1alpha1");
    assert_eq!(last["regarding"]["uid"], obj["metadata"]["uid"]);
    assert_eq!(
        last["reportingController"],
        "volley.dev/loadtest-controller"
    );
    assert_eq!(last["reportingInstance"], "node-a");
    assert_eq!(last["note"], "test t-1 passed");
    assert_eq!(
        phases(&api, "ok"),
        ["Claimed", "Starting", "Running", "Passed"]
    );
}

#[tokio::test]
async fn failed_thresholds_make_failed_true_with_a_warning_and_exit_99() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("slow", PLAN));
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "slow", "Starting").await;
    agent.finish(
        "t-1",
        50,
        vec![threshold("http_req_duration", "p(95)<10", false, 12.3)],
    );
    let s = phase(&api, "slow", "Failed").await;
    assert_eq!(s["exitCode"], 99);
    assert_eq!(condition(&s, "Failed")["status"], "True");
    assert_eq!(condition(&s, "Failed")["reason"], "ThresholdsFailed");
    assert_eq!(condition(&s, "Succeeded")["status"], "False");
    let obj = api.loadtest(NAMESPACE, "slow").expect("exists");
    assert!(
        kubectl_wait_satisfied(&obj, "Complete"),
        "Complete returns on a failure too"
    );
    assert!(kubectl_wait_satisfied(&obj, "Failed"));
    let events = eventually("the ThresholdsFailed event", || {
        let events = api.events_about(NAMESPACE, "slow");
        events
            .iter()
            .any(|e| e["reason"] == "ThresholdsFailed")
            .then_some(events)
    })
    .await;
    let failed = events
        .iter()
        .find(|e| e["reason"] == "ThresholdsFailed")
        .expect("found");
    assert_eq!(failed["type"], "Warning");
}

#[tokio::test]
async fn errors_carry_a_reason_and_exit_code() {
    let api = FakeApi::start().await;
    let mut missing = loadtest("no-cm", PLAN);
    missing["spec"] = json!({"planFrom": {"configMapKeyRef": {"name": "absent", "key": "a"}}});
    api.create_loadtest(NAMESPACE, missing);
    let mut empty = loadtest("empty", PLAN);
    empty["spec"] = json!({"minAgents": 1});
    api.create_loadtest(NAMESPACE, empty);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));

    let s = phase(&api, "no-cm", "Error").await;
    assert_eq!(condition(&s, "Failed")["status"], "True");
    assert_eq!(condition(&s, "Failed")["reason"], "ReferenceNotFound");
    assert!(
        condition(&s, "Failed")["message"]
            .as_str()
            .is_some_and(|m| m.contains("ConfigMap \"absent\" not found")),
        "{s}"
    );
    assert_eq!(s["exitCode"], 1);
    let s = phase(&api, "empty", "Error").await;
    assert_eq!(condition(&s, "Complete")["reason"], "InvalidSpec");
    assert_eq!(s["exitCode"], 104);
    eventually("a warning Event naming the missing ConfigMap", || {
        api.events_about(NAMESPACE, "no-cm")
            .iter()
            .any(|e| {
                e["type"] == "Warning"
                    && e["reason"] == "ReferenceNotFound"
                    && e["note"].as_str().is_some_and(|n| n.contains("absent"))
            })
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_plan_the_fleet_refuses_is_submit_refused_with_exit_104() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("bad", PLAN));
    let agent = FakeAgent::new("node-a");
    agent.fail_submits(ApiError::BadRequest {
        message: "scenarios.main.vus: expected a positive integer, got -1".into(),
    });
    let _c = start(&api, agent.clone(), config("node-a"));
    let s = phase(&api, "bad", "Error").await;
    assert_eq!(condition(&s, "Complete")["reason"], "SubmitRefused");
    assert_eq!(s["exitCode"], 104);
}

#[tokio::test]
async fn a_new_run_id_runs_again_and_the_old_verdict_never_answers_for_it() {
    let api = FakeApi::start().await;
    let mut lt = loadtest("ci", PLAN);
    lt["spec"]["runId"] = json!("pipeline-1");
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "ci", "Starting").await;
    agent.finish("t-1", 10, vec![]);
    let s = phase(&api, "ci", "Passed").await;
    assert_eq!(s["runId"], "pipeline-1");

    // Re-applying the same object changes nothing: no new generation, no
    // new run, and the verdict says which run it belongs to.
    let spec = api.loadtest(NAMESPACE, "ci").expect("exists")["spec"].clone();
    api.set_spec(NAMESPACE, "ci", spec.clone());
    let same = api.loadtest(NAMESPACE, "ci").expect("exists");
    assert_eq!(same["metadata"]["generation"], 1);
    assert_eq!(same["status"]["runId"], "pipeline-1");

    // A new runId is a new generation: at once, before any agent looks,
    // kubectl wait no longer takes the old verdict.
    let mut next = spec;
    next["runId"] = json!("pipeline-2");
    api.set_spec(NAMESPACE, "ci", next);
    let stale = api.loadtest(NAMESPACE, "ci").expect("exists");
    assert_eq!(stale["metadata"]["generation"], 2);
    assert_eq!(stale["status"]["phase"], "Passed", "not yet claimed again");
    assert!(!kubectl_wait_satisfied(&stale, "Complete"));
    assert!(!kubectl_wait_satisfied(&stale, "Succeeded"));

    let s = eventually("the second run to start", || {
        let s = status(&api, "ci");
        (s["runId"] == "pipeline-2" && s["phase"] == "Starting").then_some(s)
    })
    .await;
    assert_eq!(s["testId"], "t-2");
    assert!(
        s.get("exitCode").is_none(),
        "the old verdict is cleared: {s}"
    );
    assert!(s.get("completionTime").is_none(), "{s}");
    agent.finish(
        "t-2",
        10,
        vec![threshold("checks", "rate>0.99", false, 0.5)],
    );
    let s = phase(&api, "ci", "Failed").await;
    assert_eq!(s["runId"], "pipeline-2");
    assert_eq!(s["observedGeneration"], 2);
    let obj = api.loadtest(NAMESPACE, "ci").expect("exists");
    assert!(kubectl_wait_satisfied(&obj, "Complete"));
    assert!(kubectl_wait_satisfied(&obj, "Failed"));
    assert_eq!(agent.submits().len(), 2, "one submit per run");
}

#[tokio::test]
async fn finished_tests_are_deleted_ttl_seconds_after_completion_by_their_claimer() {
    let api = FakeApi::start().await;
    let clock = Clock::new();
    let mut lt = loadtest("short-lived", PLAN);
    lt["spec"]["ttlSecondsAfterFinished"] = json!(60);
    api.create_loadtest(NAMESPACE, lt);
    let a = FakeAgent::new("node-a");
    let mut cfg = config("node-a");
    cfg.clock = clock.wall();
    let _ca = start(&api, a.clone(), cfg);
    phase(&api, "short-lived", "Starting").await;
    // A second agent, alive, sees the same objects and the same clock: the
    // claimer alone deletes.
    let b = FakeAgent::new("node-b");
    let mut cfg = config("node-b");
    cfg.clock = clock.wall();
    let _cb = start(&api, b.clone(), cfg);

    a.finish("t-1", 10, vec![]);
    let s = phase(&api, "short-lived", "Passed").await;
    assert_eq!(s["completionTime"], T0);

    // 59 s later it is still there, after the controllers handled a newer
    // object (their rescans run in the same loop).
    clock.advance(59);
    api.create_loadtest(NAMESPACE, loadtest("marker", PLAN));
    phase(&api, "marker", "Starting").await;
    assert!(api.loadtest(NAMESPACE, "short-lived").is_some());

    clock.advance(1);
    eventually("the expired LoadTest to be deleted", || {
        api.loadtest(NAMESPACE, "short-lived")
            .is_none()
            .then_some(())
    })
    .await;
    let deletes: Vec<u16> = api
        .requests()
        .iter()
        .filter(|r| r.method == Method::DELETE && r.path.ends_with("/loadtests/short-lived"))
        .map(|r| r.status)
        .collect();
    assert_eq!(deletes, [200], "one delete, by the claimer");
    // The marker (no TTL) stays.
    assert!(api.loadtest(NAMESPACE, "marker").is_some());
}

#[tokio::test]
async fn a_refused_event_write_is_logged_once_and_the_test_goes_on() {
    let (logs, _guard) = Logs::capture();
    let api = FakeApi::start().await;
    api.forbid("create", "events");
    api.create_loadtest(NAMESPACE, loadtest("quiet", PLAN));
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "quiet", "Starting").await;
    agent.finish("t-1", 10, vec![]);
    let s = phase(&api, "quiet", "Passed").await;
    assert_eq!(condition(&s, "Complete")["status"], "True");
    assert!(api.events_about(NAMESPACE, "quiet").is_empty());
    let line = "kube: the service account may not create events (403); running without Events on LoadTests";
    assert_eq!(logs.lines_with(line).len(), 1, "one line for the refusal");
}

/// `spec.waitForAgents`: how long a test waits, Pending with a reason, for
/// enough agents (a node pool scaling up) before it ends in Error.
#[tokio::test]
async fn wait_for_agents_bounds_the_pending_time_per_test() {
    let api = FakeApi::start().await;
    let mut lt = loadtest("scale-up", PLAN);
    lt["spec"]["minAgents"] = json!(8);
    lt["spec"]["waitForAgents"] = json!("200ms");
    api.create_loadtest(NAMESPACE, lt);
    let mut bad = loadtest("bad-wait", PLAN);
    bad["spec"]["waitForAgents"] = json!("soon");
    api.create_loadtest(NAMESPACE, bad);
    let agent = FakeAgent::new("node-a");
    let reason = "minAgents is 8, but only 2 matching agents are ready (node-a, node-b)";
    agent.fail_submits(ApiError::Unprocessable {
        message: reason.into(),
    });
    // The agent's own default would wait a minute.
    let _c = start(&api, agent.clone(), config("node-a"));

    let s = phase(&api, "scale-up", "Error").await;
    assert_eq!(
        s["message"],
        format!("gave up after waiting 200ms: {reason}")
    );
    assert_eq!(condition(&s, "Failed")["reason"], "AgentsUnavailable");
    let pending = api
        .versions(NAMESPACE, "scale-up")
        .into_iter()
        .find(|v| v["status"]["phase"] == "Pending")
        .expect("a Pending version");
    assert_eq!(
        condition(&pending["status"], "Complete")["reason"],
        "WaitingForAgents"
    );
    assert!(
        pending["status"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("giving up after 200ms)")),
        "{pending}"
    );

    let s = phase(&api, "bad-wait", "Error").await;
    assert_eq!(condition(&s, "Failed")["reason"], "InvalidSpec");
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("spec.waitForAgents: got \"soon\", expected a duration")),
        "{s}"
    );
}
