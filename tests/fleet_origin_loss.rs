//! Fleet tests of an origin that dies, with real `volley agent` processes on loopback and SIGKILL:
//! its own share's intervals survive at its successor, the survivor of a two-agent fleet seals a
//! summary marked partial, and agents that had already finished their share when the origin
//! died are in the rebuilt summary; and when the origin was only cut off, its own summary replaces
//! the partial one. Each plan of a dead origin makes the summary's totals exact: every
//! `shared-iterations` iteration is counted once, whoever ran it.
//!
//! Each test takes about 15–20 s (a fleet to form, a 10 s plan, gossip noticing the death).

mod fleet;

use std::time::Duration;

use fleet::{
    Fleet, FleetOptions, instant_at, plans, results, shared_iterations_then_kill, target,
    unix_ms_now,
};
use volley::fleet::allocation::Allocation;

/// The rows of a summary's per-agent breakdown, by agent.
fn row(view: &volley::api::SummaryView, agent: &str) -> Option<u64> {
    results::requests_by_agent(&view.summary)
        .into_iter()
        .find(|(a, _)| a == agent)
        .map(|(_, n)| n)
}

/// 3 agents share 600 requests to `/delay/100` (2 VUs each, about 10 s); the origin (agent-0)
/// is SIGKILLed at 3.5 s. agent-1, its successor, had kept every interval of agent-0's share as
/// it was produced: the summary has agent-0's row (what agent-1 kept of it), and the survivors
/// ran the rest of its iterations, so the summary counts exactly 600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_origins_own_intervals_are_in_the_successors_summary() {
    const ITERATIONS: u64 = 600;
    let (fleet, target, accepted) = shared_iterations_then_kill(3, 6, ITERATIONS, 3_500, 0).await;

    let view = fleet
        .wait_summary(1, &accepted.id, Duration::from_secs(40))
        .await
        .expect("agent-1 takes the test over and seals it");
    let notes = &view.summary.notes;
    eprintln!(
        "by agent {:?}; target served {}; notes: {notes:?}",
        results::requests_by_agent(&view.summary),
        target.stats.requests()
    );
    assert!(
        notes.iter().any(
            |n| n.starts_with("origin agent-0 was lost; agent-1 took the test over")
                && n.contains("interval(s) of its own share it had kept at agent-1")
        ),
        "the takeover and agent-0's kept intervals are in the notes: {notes:?}"
    );
    let kept = results::requests(
        &results::totals_of(&fleet.agents[1], &accepted.id, "agent-0")
            .expect("agent-1 kept agent-0's intervals"),
    );
    assert!(kept > 0, "agent-1 kept requests of agent-0's share");
    assert_eq!(
        row(&view, "agent-0"),
        Some(kept),
        "agent-0's row is what agent-1 kept of it\n{}",
        view.text
    );
    for i in [1, 2] {
        let agent = &fleet.agents[i];
        let own = results::requests(
            &results::totals(agent, &accepted.id).expect("the agent kept its intervals"),
        );
        assert_eq!(row(&view, &agent.id), Some(own), "{}'s row", agent.id);
    }
    assert_eq!(
        results::summary_counter(&view.summary, "iterations"),
        Some(ITERATIONS),
        "every iteration is counted once\n{}",
        view.text
    );
    assert_eq!(results::total_requests(&view.summary), ITERATIONS);
    assert!(!view.summary.notes.iter().any(|n| n.starts_with("partial")));
}

/// 2 agents share 400 requests to `/delay/100` (2 VUs each, about 10 s); the origin (agent-0)
/// is SIGKILLed at 3.5 s. agent-1 has no majority to prove it dead, yet it runs the rest of the
/// test (agent-0's unfinished iterations too) and seals a summary marked partial, which counts
/// exactly 400 requests (agent-0's through the intervals agent-1 kept of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survivor_of_a_two_agent_fleet_seals_a_partial_summary() {
    const ITERATIONS: u64 = 400;
    let (fleet, target, accepted) = shared_iterations_then_kill(2, 4, ITERATIONS, 3_500, 0).await;

    let view = fleet
        .wait_summary(1, &accepted.id, Duration::from_secs(40))
        .await
        .expect("agent-1 seals a summary on its own");
    let notes = &view.summary.notes;
    eprintln!(
        "by agent {:?}; target served {}; notes: {notes:?}\n{}",
        results::requests_by_agent(&view.summary),
        target.stats.requests(),
        view.text
    );
    let why = "partial summary: origin agent-0 was lost and only 1 of the test's 2 agents were \
               live, no majority to prove it dead (a network partition looks the same)";
    assert!(
        notes.iter().any(|n| n.starts_with(why)),
        "the summary says it is partial and why: {notes:?}"
    );
    assert!(
        view.text.contains("PARTIAL"),
        "the text summary says it is partial:\n{}",
        view.text
    );
    let test = fleet
        .client(1)
        .get_test(&accepted.id)
        .await
        .expect("agent-1 answers for the test");
    assert!(
        test.brief.partial,
        "the test view is marked partial: {test:?}"
    );
    assert!(
        test.incidents.iter().any(|i| i.starts_with(why)),
        "{:?}",
        test.incidents
    );
    let listed = fleet
        .client(1)
        .list_local_tests()
        .await
        .expect("agent-1 lists its tests");
    assert!(
        listed.iter().any(|t| t.id == accepted.id && t.partial),
        "agent-1's history marks it partial: {listed:?}"
    );
    assert_eq!(
        results::summary_counter(&view.summary, "iterations"),
        Some(ITERATIONS),
        "every iteration is counted once\n{}",
        view.text
    );
    let kept = results::requests(
        &results::totals_of(&fleet.agents[1], &accepted.id, "agent-0")
            .expect("agent-1 kept agent-0's intervals"),
    );
    assert!(kept > 0, "agent-1 kept requests of agent-0's share");
    assert_eq!(row(&view, "agent-0"), Some(kept));
    assert_eq!(results::total_requests(&view.summary), ITERATIONS);
}

/// Two scenarios on 3 agents: `quick` shares 30 requests (10 per agent, done within a second),
/// `long` is one VU sleeping 8 s, on the origin. The other two agents send their final `Done`
/// and go idle; then the origin is SIGKILLed. The lowest of them takes the test over, both send
/// their kept intervals again, and the summary counts all 30 requests: the idle agents' and
/// those the origin had kept at its successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_that_finished_before_the_origin_died_are_in_the_rebuilt_summary() {
    const ITERATIONS: u64 = 30;
    let target = target().await;
    let mut fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    // The agent whose segment holds the single VU of `long` is made the origin.
    let ids: Vec<String> = fleet.agents.iter().map(|a| a.id.clone()).collect();
    let weights: Vec<(String, f64)> = ids.iter().map(|id| (id.clone(), 1.0)).collect();
    let allocation = Allocation::new(1, &weights).expect("a valid allocation");
    let origin = ids
        .iter()
        .position(|id| {
            allocation
                .tuple_for(id)
                .ok()
                .flatten()
                .is_some_and(|t| t.scale(1) == 1)
        })
        .expect("one agent runs the single VU");
    let successor = (0..ids.len())
        .filter(|i| *i != origin)
        .min_by_key(|i| ids[*i].clone())
        .expect("another agent");
    let plan = format!(
        r#"summaryTrendStats: [med, "p(95)", "p(99)"]
scenarios:
  quick:
    executor: shared-iterations
    vus: 3
    iterations: {ITERATIONS}
    maxDuration: 20s
    flow:
      - get: http://{target}/
  long:
    executor: per-vu-iterations
    vus: 1
    iterations: 1
    maxDuration: 20s
    flow:
      - sleep: 8000ms
"#,
        target = target.addr
    );
    let accepted = fleet
        .client(origin)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    fleet
        .wait_for(
            "the other agents finished their share",
            Duration::from_secs(15),
            || {
                let client = fleet.client(origin);
                let (id, me) = (accepted.id.clone(), ids[origin].clone());
                async move {
                    let view = client.get_test(&id).await.map_err(|e| e.to_string())?;
                    let others_done = view
                        .agent_states
                        .iter()
                        .filter(|a| a.agent != me)
                        .all(|a| a.state == "done");
                    if others_done && view.agent_states.len() == 3 {
                        Ok(Some(()))
                    } else {
                        Err(format!("{:?}", view.agent_states))
                    }
                }
            },
        )
        .await
        .expect("the quick scenario ends on the other agents");
    // The origin's own intervals with its quick requests are out: the origin counts all of the
    // quick scenario's requests, and its successor kept as many of the origin's share as the
    // origin's own row shows (each interval is mirrored there as it is produced). A fixed wait
    // was no proof on a busy machine.
    let origin_id = ids[origin].clone();
    fleet
        .wait_for(
            "the successor kept the origin's quick requests",
            Duration::from_secs(15),
            || {
                let client = fleet.client(origin);
                let id = accepted.id.clone();
                let origin_id = origin_id.clone();
                let kept = results::totals_of(&fleet.agents[successor], &id, &origin_id)
                    .map(|t| results::requests(&t));
                async move {
                    let view = client.get_test(&id).await.map_err(|e| e.to_string())?;
                    let all: u64 = view.agent_states.iter().map(|a| a.requests).sum();
                    let own = view
                        .agent_states
                        .iter()
                        .find(|a| a.agent == origin_id)
                        .map_or(0, |a| a.requests);
                    match kept {
                        Ok(kept) if all == ITERATIONS && own > 0 && kept == own => Ok(Some(())),
                        kept => Err(format!(
                            "{all} of {ITERATIONS} requests counted, {own} by the origin; its \
                             successor kept {kept:?}"
                        )),
                    }
                }
            },
        )
        .await
        .expect("the origin's quick requests reach its successor");
    assert!(
        unix_ms_now() < accepted.start_unix_ms + 7_000,
        "the origin must die while its 8 s VU still runs; this machine took until {} ms after \
         the start to get here",
        unix_ms_now() - accepted.start_unix_ms
    );
    let served_before = target.stats.requests();
    fleet.kill(origin).await;

    let view = fleet
        .wait_summary(successor, &accepted.id, Duration::from_secs(40))
        .await
        .expect("the successor takes the test over and seals it");
    let notes = &view.summary.notes;
    eprintln!(
        "origin {}, successor {}; by agent {:?}; notes: {notes:?}",
        ids[origin],
        ids[successor],
        results::requests_by_agent(&view.summary)
    );
    assert_eq!(
        served_before, ITERATIONS,
        "the target served the quick scenario"
    );
    assert!(
        notes.iter().any(|n| n.starts_with(&format!(
            "origin {} was lost; {} took the test over",
            ids[origin], ids[successor]
        ))),
        "the takeover is in the notes: {notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("scenario long: 1 iterations of")
                && n.contains("nobody was left to run them")),
        "the origin's unfinished iteration goes to no finished agent: {notes:?}"
    );
    for (i, agent) in fleet.agents.iter().enumerate() {
        if i == origin {
            continue;
        }
        let own = results::requests(
            &results::totals(agent, &accepted.id).expect("the agent kept its intervals"),
        );
        assert!(own > 0, "{} ran part of the quick scenario", agent.id);
        assert_eq!(
            row(&view, &agent.id),
            Some(own),
            "{}, idle when the origin died, is in the summary\n{}",
            agent.id,
            view.text
        );
    }
    assert_eq!(
        results::total_requests(&view.summary),
        ITERATIONS,
        "every request of the quick scenario is counted, the dead origin's too\n{}",
        view.text
    );
    assert_eq!(
        results::summary_count(&view.summary, "http_req_duration"),
        Some(ITERATIONS)
    );
}

/// Split brain in a two-agent fleet: the origin (agent-0) is SIGSTOPped, not dead. agent-1 takes
/// the test over and seals a partial summary; once agent-0 is resumed and seals its own, that one
/// replaces the partial one on agent-1 (its history, its test view and its summary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origins_own_summary_replaces_a_partial_one_after_a_partition() {
    let target = target().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan = plans::constant_vus(
        target.addr,
        2,
        Duration::from_secs(5),
        Duration::from_millis(100),
    );
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    tokio::time::sleep_until(instant_at(accepted.start_unix_ms + 1_500)).await;
    fleet.pause(0).expect("SIGSTOP agent-0");
    let partial = fleet
        .wait_summary(1, &accepted.id, Duration::from_secs(30))
        .await;
    fleet.resume(0).expect("SIGCONT agent-0");
    let partial = partial.expect("agent-1 seals a summary on its own");
    assert!(
        partial.text.contains("PARTIAL"),
        "agent-1's summary is partial:\n{}",
        partial.text
    );

    let replaced = fleet
        .wait_for(
            "agent-0's own summary replaces the partial one on agent-1",
            Duration::from_secs(40),
            || {
                let client = fleet.client(1);
                let id = accepted.id.clone();
                async move {
                    let view = client.get_test(&id).await.map_err(|e| e.to_string())?;
                    if view.brief.partial || view.brief.origin != "agent-0" {
                        return Err(format!("{:?}", view.brief));
                    }
                    let summary = client.get_summary(&id).await.map_err(|e| e.to_string())?;
                    Ok(Some((view, summary)))
                }
            },
        )
        .await
        .expect("the origin's summary wins");
    let (view, summary) = replaced;
    eprintln!("{:?}\n{}", view.brief, summary.text);
    assert!(!summary.text.contains("PARTIAL"), "{}", summary.text);
    assert!(
        !summary
            .summary
            .notes
            .iter()
            .any(|n| n.starts_with("partial summary")),
        "{:?}",
        summary.summary.notes
    );
    let listed = fleet
        .client(1)
        .list_local_tests()
        .await
        .expect("agent-1 lists its tests");
    let brief = listed
        .iter()
        .find(|t| t.id == accepted.id)
        .expect("agent-1's history has the test");
    assert!(!brief.partial && brief.origin == "agent-0", "{brief:?}");
}
