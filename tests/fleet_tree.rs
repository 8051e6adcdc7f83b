//! Tree merging with real `volley agent` processes on loopback: with the
//! origin's fan-out set to 2 (`VOLLEY_MERGE_FANOUT`), five agents make a
//! tree in which agent-1 relays for agent-3 and agent-4 (the origin,
//! agent-0, receives and is left out of the tree; agent-1 and agent-2
//! send to it). The merged summary stays exact, and when the relay is
//! killed its children's intervals still reach the origin.

mod fleet;

use std::time::Duration;

use fleet::{Fleet, FleetOptions, instant_at, plans, results, target};

const ITERATIONS: u64 = 300;

fn fanout_2() -> FleetOptions {
    FleetOptions {
        agent_env: vec![(0, "VOLLEY_MERGE_FANOUT".into(), "2".into())],
        ..FleetOptions::default()
    }
}

/// Which relay brought each agent's latest interval, from the test view.
async fn relayed_by(fleet: &Fleet, id: &str) -> Vec<(String, Option<String>)> {
    let view = fleet.client(0).get_test(id).await.expect("the test view");
    view.agent_states
        .iter()
        .map(|a| (a.agent.clone(), a.relayed_by.clone()))
        .collect()
}

/// `shared-iterations`: 300 requests by 10 VUs over 5 agents, each
/// request 50 ms, about 2 s: the summary counts exactly 300, the agents'
/// rows add up to 300, and agent-3's and agent-4's results came through
/// agent-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_2_relays_merge_five_agents_exactly() {
    let target = target().await;
    let fleet = Fleet::start(5, fanout_2()).await.expect("fleet forms");
    let plan = plans::shared_iterations(target.addr, 10, ITERATIONS, "/delay/50");
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(40))
        .await
        .expect("the test seals");
    let relays = relayed_by(&fleet, &accepted.id).await;
    eprintln!(
        "relayed by: {relays:?}\nby agent: {:?}\nnotes: {:?}",
        results::requests_by_agent(&view.summary),
        view.summary.notes
    );
    let via = |agent: &str| {
        relays
            .iter()
            .find(|(a, _)| a == agent)
            .and_then(|(_, r)| r.clone())
    };
    for child in ["agent-1", "agent-3", "agent-4"] {
        assert_eq!(via(child).as_deref(), Some("agent-1"), "{relays:?}");
    }
    assert_eq!(via("agent-0"), None, "the origin's own results: {relays:?}");
    assert_eq!(via("agent-2"), None, "a root without children: {relays:?}");

    assert_eq!(
        results::summary_count(&view.summary, "http_req_duration"),
        Some(ITERATIONS),
        "{}",
        view.text
    );
    let by_agent = results::requests_by_agent(&view.summary);
    assert_eq!(by_agent.len(), 5, "{by_agent:?}");
    assert_eq!(
        by_agent.iter().map(|(_, n)| n).sum::<u64>(),
        ITERATIONS,
        "{by_agent:?}"
    );
    for (i, agent) in fleet.agents.iter().enumerate() {
        let stored = results::totals(agent, &accepted.id).expect("stored intervals read back");
        let row = by_agent.iter().find(|(a, _)| *a == format!("agent-{i}"));
        assert_eq!(
            row.map(|(_, n)| *n),
            Some(results::requests(&stored)),
            "agent-{i}'s row equals what it recorded: {by_agent:?}"
        );
    }
    assert_eq!(target.stats.requests(), ITERATIONS);
    assert!(
        !view.summary.notes.iter().any(|n| n.contains("missing")),
        "{:?}",
        view.summary.notes
    );
}

/// The relay (agent-1) is SIGKILLed 2 s in: agent-3 and agent-4 skip it
/// and send to the origin themselves, so none of their intervals is
/// missing and their latest ones came straight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relays_children_send_to_the_origin() {
    let target = target().await;
    let mut fleet = Fleet::start(5, fanout_2()).await.expect("fleet forms");
    let plan = plans::shared_iterations(target.addr, 10, ITERATIONS, "/delay/100");
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    tokio::time::sleep_until(instant_at(accepted.start_unix_ms + 1_500)).await;
    let before = fleet
        .wait_for(
            "agent-1 relays for agent-3 and agent-4",
            Duration::from_secs(10),
            || async {
                let relays = relayed_by(&fleet, &accepted.id).await;
                let via_1 = |child: &str| {
                    relays
                        .iter()
                        .any(|(a, r)| a == child && r.as_deref() == Some("agent-1"))
                };
                Ok((via_1("agent-3") && via_1("agent-4")).then_some(relays))
            },
        )
        .await
        .expect("the tree is used before the kill");
    fleet.kill(1).await;
    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(60))
        .await
        .expect("the test seals without agent-1");
    let after = relayed_by(&fleet, &accepted.id).await;
    eprintln!(
        "before the kill {before:?}\nat the end {after:?}\nby agent {:?}\nnotes: {:?}",
        results::requests_by_agent(&view.summary),
        view.summary.notes
    );
    for child in ["agent-3", "agent-4"] {
        let now = after
            .iter()
            .find(|(a, _)| a == child)
            .and_then(|(_, r)| r.clone());
        assert_eq!(
            now, None,
            "{child}'s latest interval came straight: {after:?}"
        );
        assert!(
            !view
                .summary
                .notes
                .iter()
                .any(|n| n.starts_with(&format!("agent {child}:")) && n.contains("missing")),
            "none of {child}'s intervals is missing: {:?}",
            view.summary.notes
        );
        let sent = results::requests_by_agent(&view.summary)
            .into_iter()
            .find(|(a, _)| a == child)
            .map_or(0, |(_, n)| n);
        let stored = results::requests(
            &results::totals(&fleet.agents[child_index(child)], &accepted.id)
                .expect("its stored intervals"),
        );
        assert_eq!(sent, stored, "the summary has every request {child} stored");
    }
    // Every iteration ran (agent-1's unreported ones were taken over).
    assert!(target.stats.requests() >= ITERATIONS);
}

fn child_index(agent: &str) -> usize {
    agent.trim_start_matches("agent-").parse().expect("agent-N")
}
