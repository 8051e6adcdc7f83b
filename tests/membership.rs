//! Fleet membership (`volley::fleet::membership`) end to end: scenarios over
//! chitchat's in-process transport on paused time (join, keys, deletion,
//! failure detection, restarts, partitions, incompatible and misbehaving
//! peers, the watch channel, start-up validation), and three agents over
//! real UDP on 127.0.0.1 with OS-chosen ports.

#[path = "membership/sim.rs"]
mod sim;
#[path = "membership/udp.rs"]
mod udp;

use std::time::Duration;

use tokio::time::timeout;
use volley::fleet::keys::{self, AgentState, Announcement, KeyError, PROTOCOL_VERSION};
use volley::fleet::membership::{FailureDetection, Member, Membership, MembershipError};

use sim::{Check, Op, Simulator};

const SOON: Duration = Duration::from_secs(5);

fn state_is_running(member: &Member) -> bool {
    member.usable().is_some_and(|info| {
        info.state == AgentState::Running && info.test.as_deref() == Some("t-1")
    })
}

#[tokio::test(start_paused = true)]
async fn nodes_join_and_see_each_others_keys() {
    let mut sim = Simulator::fast();
    let took = sim
        .run(vec![
            Op::Start("a", &[]),
            Op::Start("b", &["a"]),
            Op::Start("c", &["a"]),
            Op::Expect("a", Check::Members(&["a", "b", "c"]), SOON),
            Op::Expect("b", Check::Members(&["a", "b", "c"]), SOON),
            Op::Expect("c", Check::Members(&["a", "b", "c"]), SOON),
            Op::Expect(
                "c",
                Check::Member("b", "b's keys decoded", |m| {
                    m.usable().is_some_and(|info| {
                        info.api.to_string() == "10.0.0.2:7281"
                            && info.quic.to_string() == "10.0.0.2:7282"
                            && info.capacity == 2.0
                            && info.state == AgentState::Idle
                    })
                }),
                SOON,
            ),
            Op::Expect("a", Check::Dead(&[]), SOON),
        ])
        .await;
    assert!(
        took[3] < Duration::from_secs(2),
        "full membership in {:?}",
        took[3]
    );

    let members = sim.agent("b").members().await;
    let flags: Vec<(&str, bool, bool)> = members
        .iter()
        .map(|m| (m.node_id.as_str(), m.is_self, m.compatible))
        .collect();
    assert_eq!(
        flags,
        [("a", false, true), ("b", true, true), ("c", false, true)]
    );
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn published_changes_and_deletions_propagate() {
    let mut sim = Simulator::fast();
    sim.run(vec![
        Op::Start("a", &[]),
        Op::Start("b", &["a"]),
        Op::Expect("a", Check::Members(&["a", "b"]), SOON),
        Op::Publish("b", |info| {
            info.state = AgentState::Running;
            info.test = Some("t-1".to_owned());
            info.phase = Some("steady".to_owned());
        }),
        Op::Expect(
            "a",
            Check::Member("b", "running t-1", state_is_running),
            SOON,
        ),
        Op::Publish("b", |info| {
            info.state = AgentState::Idle;
            info.test = None;
            info.phase = None;
        }),
        Op::Expect(
            "a",
            Check::Member("b", "idle, test and phase deleted", |m| {
                m.usable().is_some_and(|info| {
                    info.state == AgentState::Idle && info.test.is_none() && info.phase.is_none()
                })
            }),
            SOON,
        ),
    ])
    .await;

    let announcement = Announcement {
        id: "t-2".to_owned(),
        digest: "sha256:abcdef".to_owned(),
        origin: "b".to_owned(),
        start_ms: 1_700_000_000_000,
        rev: 1,
    };
    sim.agent("b")
        .announce(Some(&announcement))
        .await
        .expect("announce");
    assert_eq!(
        sim.agent("b").info().await.announcement.as_ref(),
        Some(&announcement)
    );
    sim.run(vec![Op::Expect(
        "a",
        Check::Member("b", "announcement t-2 rev 1", |m| {
            m.usable()
                .and_then(|info| info.announcement.as_ref())
                .is_some_and(|a| a.id == "t-2" && a.rev == 1 && a.origin == "b")
        }),
        SOON,
    )])
    .await;
    sim.agent("b").announce(None).await.expect("withdraw");
    sim.run(vec![Op::Expect(
        "a",
        Check::Member("b", "announcement withdrawn", |m| {
            m.usable().is_some_and(|info| info.announcement.is_none())
        }),
        SOON,
    )])
    .await;
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_updates_are_refused_and_publish_nothing() {
    let mut sim = Simulator::fast();
    sim.run(vec![Op::Start("a", &[])]).await;
    let a = sim.agent("a");
    let before = a.info().await;

    let error = a
        .publish(|info| info.phase = Some("x".repeat(keys::MAX_PHASE_CHARS + 1)))
        .await
        .expect_err("phase too long");
    assert!(
        matches!(&error, MembershipError::OwnInfo(e) if e.key() == keys::PHASE),
        "{error}"
    );

    let error = a
        .publish(|info| info.node_id = "z".to_owned())
        .await
        .expect_err("identity");
    assert!(
        matches!(
            &error,
            MembershipError::Identity {
                field: "node_id",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("restart the agent"), "{error}");

    let error = a
        .publish(|info| info.generation += 1)
        .await
        .expect_err("identity");
    assert!(
        matches!(
            &error,
            MembershipError::Identity {
                field: "generation",
                ..
            }
        ),
        "{error}"
    );

    let error = a
        .publish(|info| info.proto += 1)
        .await
        .expect_err("protocol is fixed");
    assert!(
        matches!(&error, MembershipError::Identity { field: "proto", .. }),
        "{error}"
    );

    assert_eq!(a.info().await, before);
    let own = a.members().await;
    assert_eq!(own.len(), 1);
    assert_eq!(
        own[0].info.as_ref().ok(),
        Some(&before),
        "nothing was published"
    );
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stopped_node_is_declared_dead() {
    let mut sim = Simulator::fast();
    let took = sim
        .run(vec![
            Op::Start("a", &[]),
            Op::Start("b", &["a"]),
            Op::Start("c", &["a"]),
            Op::Expect("a", Check::Members(&["a", "b", "c"]), SOON),
            Op::Expect("b", Check::Members(&["a", "b", "c"]), SOON),
            Op::Hold(
                "a",
                Check::Members(&["a", "b", "c"]),
                Duration::from_secs(3),
            ),
            Op::Stop("c"),
            Op::Expect("a", Check::Dead(&["c"]), SOON),
            Op::Expect("b", Check::Dead(&["c"]), SOON),
            Op::Expect("a", Check::Members(&["a", "b"]), SOON),
        ])
        .await;
    // 100 ms rounds: dead in well under 2 s.
    assert!(
        took[7] < Duration::from_secs(2),
        "declared dead after {:?}",
        took[7]
    );
    sim.shutdown().await;
}

/// Measures the default settings (500 ms rounds): the brief for a load
/// fleet is a stopped agent declared dead in about 2–3 s, with no false
/// deaths in steady state.
#[tokio::test(start_paused = true)]
async fn default_detection_declares_dead_within_three_seconds() {
    let mut sim = Simulator::new(Duration::from_millis(500), FailureDetection::default());
    let mut detected = Vec::new();
    let took = sim
        .run(vec![
            Op::Start("a", &[]),
            Op::Start("b", &["a"]),
            Op::Start("c", &["a"]),
            Op::Start("d", &["a"]),
            Op::Expect("a", Check::Members(&["a", "b", "c", "d"]), SOON),
            Op::Expect("d", Check::Members(&["a", "b", "c", "d"]), SOON),
            Op::Hold(
                "a",
                Check::Members(&["a", "b", "c", "d"]),
                Duration::from_secs(20),
            ),
            Op::Stop("d"),
            Op::Expect("a", Check::Dead(&["d"]), Duration::from_secs(10)),
        ])
        .await;
    detected.push(took[8]);
    let took = sim
        .run(vec![
            Op::Expect("b", Check::Members(&["a", "b", "c"]), SOON),
            Op::Hold(
                "b",
                Check::Members(&["a", "b", "c"]),
                Duration::from_secs(10),
            ),
            Op::Stop("c"),
            Op::Expect("b", Check::Dead(&["c", "d"]), Duration::from_secs(10)),
        ])
        .await;
    detected.push(took[3]);
    println!("default failure detection: declared dead after {detected:?}");
    for elapsed in detected {
        assert!(
            elapsed >= Duration::from_secs(1) && elapsed <= Duration::from_millis(3500),
            "declared dead after {elapsed:?}, expected about 2–3 s"
        );
    }
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restart_with_a_new_generation_is_deduplicated() {
    let mut sim = Simulator::fast();
    sim.run(vec![
        Op::Start("a", &[]),
        Op::Start("b", &["a"]),
        Op::Start("c", &["a"]),
        Op::Expect("a", Check::Members(&["a", "b", "c"]), SOON),
        Op::Stop("b"),
        Op::Start("b", &["a"]),
        // The new incarnation replaces the old one before the old one is
        // declared dead (that takes about 1 s here).
        Op::Expect("a", Check::Newest("b"), Duration::from_millis(800)),
        Op::Expect("c", Check::Newest("b"), SOON),
        // …and stays the only one, never listed as dead, while the old
        // incarnation is declared dead behind the scenes.
        Op::Hold("a", Check::Newest("b"), Duration::from_secs(5)),
        Op::Hold(
            "a",
            Check::Members(&["a", "b", "c"]),
            Duration::from_secs(1),
        ),
        Op::Hold("c", Check::Dead(&[]), Duration::from_secs(1)),
    ])
    .await;
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn partition_splits_the_view_and_heals() {
    let mut sim = Simulator::fast();
    sim.run(vec![
        Op::Start("a", &[]),
        Op::Start("b", &["a"]),
        Op::Start("c", &["a"]),
        Op::Start("d", &["a"]),
        Op::Expect("a", Check::Members(&["a", "b", "c", "d"]), SOON),
        Op::Expect("d", Check::Members(&["a", "b", "c", "d"]), SOON),
        Op::Cut("a", "c"),
        Op::Cut("a", "d"),
        Op::Cut("b", "c"),
        Op::Cut("b", "d"),
        Op::Expect("a", Check::Members(&["a", "b"]), SOON),
        Op::Expect("a", Check::Dead(&["c", "d"]), SOON),
        Op::Expect("c", Check::Members(&["c", "d"]), SOON),
        Op::Expect("d", Check::Dead(&["a", "b"]), SOON),
        Op::Hold("b", Check::Members(&["a", "b"]), Duration::from_secs(2)),
        Op::Heal("a", "c"),
        Op::Heal("a", "d"),
        Op::Heal("b", "c"),
        Op::Heal("b", "d"),
        Op::Expect(
            "a",
            Check::Members(&["a", "b", "c", "d"]),
            Duration::from_secs(10),
        ),
        Op::Expect(
            "c",
            Check::Members(&["a", "b", "c", "d"]),
            Duration::from_secs(10),
        ),
        Op::Expect("a", Check::Dead(&[]), SOON),
        Op::Expect("d", Check::Dead(&[]), SOON),
    ])
    .await;
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn protocol_mismatch_is_visible_as_incompatible() {
    let mut sim = Simulator::fast();
    sim.run(vec![
        Op::Start("a", &[]),
        Op::StartWith("b", &["a"], |info| info.proto = PROTOCOL_VERSION + 1),
        Op::Expect("a", Check::Members(&["a", "b"]), SOON),
        Op::Expect(
            "a",
            Check::Member("b", "b incompatible, its info still shown", |m| {
                !m.compatible
                    && m.info
                        .as_ref()
                        .is_ok_and(|info| info.proto == PROTOCOL_VERSION + 1)
                    && m.usable().is_none()
            }),
            SOON,
        ),
        Op::Expect(
            "b",
            Check::Member("a", "b finds a incompatible too", |m| !m.compatible),
            SOON,
        ),
        Op::Expect(
            "a",
            Check::Member("a", "a compatible with itself", |m| {
                m.compatible && m.is_self
            }),
            SOON,
        ),
    ])
    .await;
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn garbage_from_a_peer_is_reported_not_fatal() {
    let mut sim = Simulator::fast();
    let mut kv = sim.info("x", 99).to_kv();
    for (key, value) in &mut kv {
        if key == keys::CAPACITY {
            *value = "lots".to_owned();
        }
        if key == keys::STATE {
            *value = "\u{0}".repeat(20_000);
        }
    }
    kv.push((keys::ANNOUNCE.to_owned(), "{\"id\":[[[[[[".to_owned()));
    kv.push(("unrelated.key".to_owned(), "ignored".to_owned()));
    sim.run(vec![
        Op::Start("a", &[]),
        Op::Start("b", &["a"]),
        Op::StartRaw("x", &["a"], kv),
        Op::Expect("a", Check::Members(&["a", "b", "x"]), SOON),
        Op::Expect("a", Check::Member("x", "bad capacity reported", |m| {
            m.compatible
                && matches!(&m.info, Err(KeyError::Invalid { key, value, .. }) if *key == keys::CAPACITY && value == "lots")
        }), SOON),
        Op::Expect("b", Check::Member("a", "others unaffected", |m| m.usable().is_some()), SOON),
        Op::SetRaw("x", keys::CAPACITY, "3".to_owned()),
        Op::Expect("a", Check::Member("x", "next problem: the state", |m| {
            matches!(&m.info, Err(KeyError::Invalid { key, value, .. }) if *key == keys::STATE && value.len() < 200)
        }), SOON),
        Op::SetRaw("x", keys::STATE, "draining".to_owned()),
        Op::Expect("a", Check::Member("x", "next problem: the announcement", |m| {
            matches!(&m.info, Err(KeyError::Invalid { key, .. }) if *key == keys::ANNOUNCE)
        }), SOON),
        Op::SetRaw("x", keys::ANNOUNCE, r#"{"id":"t","digest":"d","origin":"x","start_ms":1,"rev":0}"#.to_owned()),
        Op::Expect("a", Check::Member("x", "usable once fixed", |m| {
            m.usable().is_some_and(|info| info.capacity == 3.0 && info.state == AgentState::Draining)
        }), SOON),
        Op::SetRaw("x", keys::PROTO, "not-a-number".to_owned()),
        Op::Expect("a", Check::Member("x", "unreadable protocol is incompatible", |m| !m.compatible)
            , SOON),
    ])
    .await;
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watch_follows_joins_changes_and_departures() {
    let mut sim = Simulator::fast();
    sim.run(vec![Op::Start("a", &[])]).await;
    let mut view = sim.agent("a").watch();
    assert_eq!(view.borrow().len(), 1, "starts with self");
    assert!(view.borrow()[0].is_self);

    sim.run(vec![Op::Start("b", &["a"])]).await;
    timeout(SOON, view.wait_for(|members| members.len() == 2))
        .await
        .expect("b joins in time")
        .expect("watch open");

    sim.run(vec![Op::Publish("b", |info| {
        info.state = AgentState::Running;
        info.test = Some("t-1".to_owned());
    })])
    .await;
    timeout(
        SOON,
        view.wait_for(|members| members.iter().any(state_is_running)),
    )
    .await
    .expect("b's change arrives in time")
    .expect("watch open");

    // Nothing changes: no notification (heartbeats are not changes).
    view.borrow_and_update();
    let quiet = timeout(Duration::from_secs(2), view.changed()).await;
    assert!(quiet.is_err(), "no change was signalled without a change");

    sim.run(vec![Op::Stop("b")]).await;
    let after = timeout(SOON, view.wait_for(|members| members.len() == 1))
        .await
        .expect("b leaves in time")
        .expect("watch open")
        .clone();
    assert_eq!(after[0].node_id, "a");
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn start_refuses_bad_settings_before_gossiping() {
    let mut sim = Simulator::fast();
    let info = sim.info("a", 1);

    let mut config = sim.config("a", 1, &[]);
    config.seeds = vec!["gossip.example:seven".to_owned()];
    let error = Membership::start(config, &info, &sim.transport)
        .await
        .expect_err("bad seed");
    assert!(
        matches!(&error, MembershipError::Seed { seed, .. } if seed == "gossip.example:seven"),
        "{error}"
    );

    let config = sim.config("a", 2, &[]);
    let error = Membership::start(config, &info, &sim.transport)
        .await
        .expect_err("generation differs");
    assert!(
        matches!(
            &error,
            MembershipError::Identity {
                field: "generation",
                ..
            }
        ),
        "{error}"
    );

    let mut bad = info.clone();
    bad.capacity = 0.0;
    let error = Membership::start(sim.config("a", 1, &[]), &bad, &sim.transport)
        .await
        .expect_err("capacity 0");
    assert!(
        matches!(&error, MembershipError::OwnInfo(e) if e.key() == keys::CAPACITY),
        "{error}"
    );

    let first = Membership::start(sim.config("a", 1, &[]), &info, &sim.transport)
        .await
        .expect("first");
    let error = Membership::start(sim.config("a", 1, &[]), &info, &sim.transport)
        .await
        .expect_err("address taken");
    assert!(matches!(&error, MembershipError::Start { .. }), "{error}");
    assert!(error.to_string().contains("10.0.0.1:7280"), "{error}");
    first.shutdown().await;
}
