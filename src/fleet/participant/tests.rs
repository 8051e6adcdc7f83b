//! The participant alone, over the in-memory transport: a prepared test
//! that is never committed frees the agent, a sealed test's verdict and
//! summary land in the data directory (the origin's own replacing a partial
//! one, never the other way), the origin's intervals are kept for it, and
//! the survivor of a two-agent test takes it over partially.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::*;
use crate::clock::unix_ms_now;
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
    let bundle = PlanBundle::yaml("vus: 1\nduration: 1s\nflow:\n  - sleep: 100ms\n");
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

#[tokio::test(start_paused = true)]
async fn an_allocation_sent_again_after_a_lost_answer_is_not_applied_twice() {
    let p = participant(None);
    let start = unix_ms_now() + 60_000;
    assert!(matches!(
        p.handle(prepare("t-1", start)),
        Response::Prepared { .. }
    ));
    let next =
        Allocation::new(2, &[("a".into(), 1.0), ("b".into(), 2.0)]).expect("a valid allocation");
    let reallocate = |effective_unix_ms| Message::Reallocate {
        test_id: "t-1".into(),
        allocation: next.clone(),
        effective_unix_ms,
        extra_iterations: BTreeMap::new(),
    };
    let effective = || {
        lock(&p.active)
            .as_ref()
            .and_then(|a| a.realloc_tx.borrow().as_ref().map(|r| r.effective))
    };
    assert_eq!(p.handle(reallocate(start + 1_000)), Response::Ok);
    let first = effective().expect("the reallocation reached the engine's channel");
    // The origin did not hear the answer and sends the same revision again,
    // effective later: the share already switched, it must not switch again.
    assert_eq!(p.handle(reallocate(start + 2_000)), Response::Ok);
    assert_eq!(effective(), Some(first));
}

#[tokio::test]
async fn a_sealed_test_is_recorded_with_its_verdict_and_summary() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path()).expect("the store opens"));
    let p = participant(Some(store.clone()));
    let meta = sealed_meta("t-9", false);
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

/// Gossip as a test wants it: these members are live, at these QUIC addresses.
struct Gossip {
    live: BTreeMap<String, std::net::SocketAddr>,
    adopted: Mutex<Vec<String>>,
    /// Why the latest adopted test is partial.
    partial: Mutex<Option<String>>,
}

impl Succession for Gossip {
    fn member(&self, node: &str) -> Option<crate::fleet::selector::Candidate> {
        self.live
            .get(node)
            .map(|addr| crate::fleet::selector::Candidate {
                node_id: node.to_owned(),
                quic: *addr,
                capacity: 1.0,
                labels: BTreeMap::new(),
            })
    }

    fn adopt(&self, orphan: Orphan) {
        lock(&self.adopted).push(orphan.test_id);
        *lock(&self.partial) = orphan.partial;
    }
}

/// Agent `a` runs a 3 s share of test `t-s` coordinated by `b` (gone from gossip); `c` is
/// live in gossip and answers over QUIC only if `c_answers`. Returns what `a` did within 1.5 s:
/// (tests adopted, its coordinator then).
async fn orphaned_with_c(c_answers: bool) -> (Vec<String>, Option<String>) {
    let (adopted, coordinator, _) = orphaned(&["a", "b", "c"], c_answers).await;
    (adopted, coordinator)
}

/// As [`orphaned_with_c`], the test's agents being `agents`; also why the adopted test is
/// partial.
async fn orphaned(
    agents: &[&str],
    c_answers: bool,
) -> (Vec<String>, Option<String>, Option<String>) {
    let network = MemoryNetwork::new();
    let quiet = || handler_fn(|_, _| async { Bytes::new() });
    let a = network
        .bind(
            "10.0.0.1:0".parse().expect("an address"),
            "a",
            quiet(),
            Limits::default(),
        )
        .expect("a binds");
    let c_addr: std::net::SocketAddr = "10.0.0.3:7000".parse().expect("an address");
    let _c = c_answers.then(|| {
        network
            .bind(c_addr, "c", quiet(), Limits::default())
            .expect("c binds")
    });
    let a_addr = a.local_addr();
    let p = Participant::new("a".into(), Arc::new(a), None, Duration::from_secs(30));
    let gossip = Arc::new(Gossip {
        live: BTreeMap::from([("a".to_owned(), a_addr), ("c".to_owned(), c_addr)]),
        adopted: Mutex::new(Vec::new()),
        partial: Mutex::new(None),
    });
    p.set_succession(gossip.clone());
    let weights: Vec<(String, f64)> = agents.iter().map(|a| ((*a).to_owned(), 1.0)).collect();
    let allocation = Allocation::new(1, &weights).expect("a valid allocation");
    let bundle = PlanBundle::yaml("vus: 1\nduration: 3s\nflow:\n  - sleep: 100ms\n");
    let start = unix_ms_now() + 200;
    let prepared = p.handle(Message::Prepare {
        test_id: "t-s".into(),
        name: "t".into(),
        origin: "b".into(),
        digest: bundle.digest(),
        bundle,
        allocation: allocation.clone(),
        start_unix_ms: start,
        protocol: protocol::PROTOCOL_VERSION,
        origin_addr: "10.0.0.2:7000".parse().expect("an address"),
    });
    assert!(
        matches!(prepared, Response::Prepared { .. }),
        "{prepared:?}"
    );
    let committed = p.handle(Message::Commit {
        test_id: "t-s".into(),
        allocation,
        start_unix_ms: start,
        merge: None,
    });
    assert_eq!(committed, Response::Ok);
    // Until a redirects its results (it adopts first), or for 1.5 s (six looks at its
    // coordinator) when it does not.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1_500);
    let coordinator = loop {
        let coordinator = p.current().map(|(_, c)| c);
        if coordinator.as_deref() != Some("b") || tokio::time::Instant::now() >= deadline {
            break coordinator;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    p.stop_all("the test is over");
    let adopted = lock(&gossip.adopted).clone();
    let partial = lock(&gossip.partial).clone();
    (adopted, coordinator, partial)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survivor_of_a_two_agent_test_takes_it_over_partially() {
    let (adopted, coordinator, partial) = orphaned(&["a", "b"], false).await;
    assert_eq!(adopted, vec!["t-s".to_owned()]);
    assert_eq!(coordinator.as_deref(), Some("a"));
    let partial = partial.expect("the takeover is partial");
    assert!(
        partial.starts_with("partial summary: origin b was lost") && partial.contains("1 of"),
        "{partial}"
    );
    // Three agents with a majority answering: a full takeover, not partial.
    let (adopted, _, partial) = orphaned(&["a", "b", "c"], true).await;
    assert_eq!(adopted, vec!["t-s".to_owned()]);
    assert_eq!(partial, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_that_gossip_counts_in_a_majority_adopts_only_if_the_majority_answers() {
    // c is live in gossip but does not answer (stopped, partitioned): a is alone, stays put.
    let (adopted, coordinator) = orphaned_with_c(false).await;
    assert!(adopted.is_empty(), "a adopted {adopted:?} on its own");
    assert_eq!(coordinator.as_deref(), Some("b"));
    // c answers: two of three, a takes over and sends its results to itself.
    let (adopted, coordinator) = orphaned_with_c(true).await;
    assert_eq!(adopted, vec!["t-s".to_owned()]);
    assert_eq!(coordinator.as_deref(), Some("a"));
}

fn sealed_meta(id: &str, partial: bool) -> TestMeta {
    TestMeta {
        id: id.into(),
        name: "t".into(),
        origin: if partial { "a" } else { "o" }.into(),
        submitted_unix_ms: 1,
        started_unix_ms: Some(2),
        ended_unix_ms: Some(3),
        phase: TestPhase::Passed,
        allocation: serde_json::Value::Null,
        passed: Some(true),
        agents: vec!["a".into(), "o".into()],
        deadline_unix_ms: None,
        note: None,
        partial,
    }
}

fn seal(p: &Arc<Participant>, meta: &TestMeta, text: &str) -> Response {
    p.handle(Message::Sealed {
        meta: meta.clone(),
        summary: serde_json::json!({ "text": text }),
        text: text.into(),
    })
}

#[test]
fn the_origins_summary_wins_over_a_partial_one() {
    let (real, partial) = (sealed_meta("t", false), sealed_meta("t", true));
    assert_eq!(seal_rule(None, false, &partial), SealRule::Record);
    assert_eq!(seal_rule(Some(&real), false, &partial), SealRule::Record);
    assert_eq!(seal_rule(Some(&partial), true, &real), SealRule::Replace);
    assert_eq!(seal_rule(Some(&real), true, &partial), SealRule::Keep);
    assert_eq!(seal_rule(Some(&real), true, &real), SealRule::Record);
}

#[tokio::test]
async fn a_partial_summary_gives_way_to_the_origins_and_never_replaces_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path()).expect("the store opens"));
    let p = participant(Some(store.clone()));
    // The survivor's partial summary first, then the origin's own.
    assert_eq!(seal(&p, &sealed_meta("t-1", true), "partial"), Response::Ok);
    assert!(store.meta("t-1").expect("recorded").partial);
    assert_eq!(seal(&p, &sealed_meta("t-1", false), "origin"), Response::Ok);
    assert_eq!(
        store.meta("t-1").expect("recorded"),
        sealed_meta("t-1", false)
    );
    let (_, text) = store.summary("t-1").expect("readable").expect("sealed");
    assert_eq!(text, "origin");
    // The origin's first: a partial one arriving later changes nothing.
    assert_eq!(seal(&p, &sealed_meta("t-2", false), "origin"), Response::Ok);
    assert_eq!(seal(&p, &sealed_meta("t-2", true), "partial"), Response::Ok);
    assert!(!store.meta("t-2").expect("recorded").partial);
    let (_, text) = store.summary("t-2").expect("readable").expect("sealed");
    assert_eq!(text, "origin");
}

#[tokio::test]
async fn the_origins_intervals_are_kept_for_it_and_nobody_elses() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path()).expect("the store opens"));
    let p = participant(Some(store.clone()));
    let mut meta = sealed_meta("t-k", false);
    meta.phase = TestPhase::Running;
    store.create_test(&meta).expect("recorded");
    let keep = |agent: &str, seq| Message::Keep {
        test_id: "t-k".into(),
        agent: agent.into(),
        seq,
    };
    assert_eq!(
        p.keep(keep("o", 0), Bytes::from_static(b"zero")).await,
        Response::Ok
    );
    assert_eq!(
        p.keep(keep("o", 1), Bytes::from_static(b"one")).await,
        Response::Ok
    );
    // Not an agent of the test, or this agent itself: refused.
    for agent in ["x", "a"] {
        let reply = p.keep(keep(agent, 0), Bytes::from_static(b"no")).await;
        assert!(
            matches!(&reply, Response::Error { message } if message.contains(agent)),
            "{reply:?}"
        );
    }
    let kept = store.read_intervals("t-k", "o").expect("readable");
    assert_eq!(kept, vec![(0, b"zero".to_vec()), (1, b"one".to_vec())]);
    assert!(
        store
            .read_intervals("t-k", "x")
            .expect("readable")
            .is_empty()
    );
    // An unknown test is refused with its name.
    let reply = p
        .keep(
            Message::Keep {
                test_id: "t-unknown".into(),
                agent: "o".into(),
                seq: 0,
            },
            Bytes::new(),
        )
        .await;
    assert!(matches!(reply, Response::Error { .. }), "{reply:?}");
}
