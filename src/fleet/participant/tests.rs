//! The participant alone, over the in-memory transport: a prepared test
//! that is never committed frees the agent, and a sealed test's verdict and
//! summary land in the data directory.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::*;
use crate::fleet::transport::{Limits, MemoryNetwork, handler_fn};

fn participant(store: Option<Arc<Store>>) -> Arc<Participant> {
    let network = MemoryNetwork::new();
    let handler = handler_fn(|_, _| async { Bytes::new() });
    let addr = "10.0.0.1:0".parse().expect("invariant: a valid address");
    let transport = network
        .bind(addr, "a", handler, Limits::default())
        .expect("binds on the memory network");
    Participant::new(
        "a".into(),
        Arc::new(transport),
        store,
        Duration::from_secs(2),
    )
}

fn prepare(test_id: &str, start_unix_ms: u64) -> Message {
    let bundle = PlanBundle {
        plan: "vus: 1\nduration: 1s\nflow:\n  - sleep: 100ms\n".into(),
        format: "yaml".into(),
        env: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    Message::Prepare {
        test_id: test_id.into(),
        name: "t".into(),
        origin: "o".into(),
        digest: bundle.digest(),
        bundle,
        allocation: Allocation::new(1, &[("a".into(), 1.0)]).expect("a valid allocation"),
        start_unix_ms,
        protocol: protocol::PROTOCOL_VERSION,
        origin_addr: "10.0.0.2:1".parse().expect("invariant: a valid address"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_prepared_test_never_committed_frees_the_agent_after_its_start() {
    let p = participant(None);
    let start = unix_ms_now() + 1_000;
    assert!(matches!(
        p.handle(prepare("t-1", start)),
        Response::Prepared { .. }
    ));
    assert_eq!(p.current().map(|(id, _)| id), Some("t-1".to_owned()));
    let mut activity = p.activity();
    // Paused time jumps to the expiry (start + 2 s) once nothing else is to be done.
    let freed = tokio::time::timeout(Duration::from_secs(10), async {
        while *activity.borrow_and_update() != Activity::Idle {
            activity.changed().await.expect("the participant lives");
        }
    })
    .await;
    assert!(freed.is_ok(), "still preparing 10 s after a start 1 s away");
    assert_eq!(p.current(), None);
    // Free for the next test.
    assert!(matches!(
        p.handle(prepare("t-2", unix_ms_now() + 1_000)),
        Response::Prepared { .. }
    ));
}

#[tokio::test]
async fn a_sealed_test_is_recorded_with_its_verdict_and_summary() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path()).expect("the store opens"));
    let p = participant(Some(store.clone()));
    let meta = TestMeta {
        id: "t-9".into(),
        name: "t".into(),
        origin: "o".into(),
        submitted_unix_ms: 1,
        started_unix_ms: Some(2),
        ended_unix_ms: Some(3),
        phase: TestPhase::Passed,
        allocation: serde_json::Value::Null,
        passed: Some(true),
        agents: vec!["a".into(), "o".into()],
    };
    let summary = serde_json::json!({"notes": []});
    let reply = p.handle(Message::Sealed {
        meta: meta.clone(),
        summary: summary.clone(),
        text: "all good".into(),
    });
    assert_eq!(reply, Response::Ok);
    assert_eq!(store.meta("t-9").expect("recorded"), meta);
    assert_eq!(
        store.summary("t-9").expect("readable"),
        Some((summary, "all good".to_owned()))
    );
}
