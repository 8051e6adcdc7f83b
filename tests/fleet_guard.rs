//! Fleet tests of what the fleet refuses, with real `volley agent` processes on loopback: a peer
//! certified by another CA, API calls without the token or with a wrong one, and bad input at the
//! API (an oversized plan, an unknown test, a submit while a test runs, a plan error), plans
//! beyond what the fleet can hold (refused at submit) and a test stopped by an agent's memory
//! ceiling. Each test takes 3–8 s.

mod fleet;

use std::time::Duration;

use fleet::{Fleet, FleetOptions, describe_members, plans, results, target};
use volley::api::{ClientError, SecretToken, SubmitRequest};

fn status(e: &ClientError) -> Option<u16> {
    e.status().map(|s| s.as_u16())
}

/// Waits until every agent of `fleet` shows as running test `id` to agent `i`.
async fn wait_busy(fleet: &Fleet, i: usize, id: &str) {
    let client = fleet.client(i);
    let n = fleet.len();
    fleet
        .wait_for(
            &format!("agent-{i} sees every agent busy with {id}"),
            Duration::from_secs(10),
            || async {
                let members = client.members().await.map_err(|e| e.to_string())?;
                let busy =
                    members.len() == n && members.iter().all(|m| m.test.as_deref() == Some(id));
                if busy {
                    Ok(Some(()))
                } else {
                    Err(describe_members(&members))
                }
            },
        )
        .await
        .expect("the fleet shows the test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_certified_by_another_ca_never_takes_part() {
    let target = target().await;
    // agent-3 joins gossip like the others but holds a certificate of another CA.
    let fleet = Fleet::start(
        4,
        FleetOptions {
            foreign_ca: vec![3],
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    let plan = plans::arrival_rate(target.addr, 100, Duration::from_secs(1), "/");
    let all = SubmitRequest {
        min_agents: Some(4),
        ..plans::submit(plan.clone())
    };

    // At once, agent-0 may not have met agent-3 over QUIC yet: then the test fails at prepare,
    // before its start; if it has, the submit is refused. Either way no load, and agent-3 named.
    match fleet.client(0).submit(&all).await {
        Err(e) => {
            eprintln!("minAgents 4, refusal already known: {e}");
            assert_eq!(status(&e), Some(422), "{e}");
            assert!(e.to_string().contains("agent-3"), "{e}");
        }
        Ok(accepted) => {
            let failed = fleet
                .wait_for("the test fails to start", Duration::from_secs(15), || {
                    let client = fleet.client(0);
                    let id = accepted.id.clone();
                    async move {
                        let view = client.get_test(&id).await.map_err(|e| e.to_string())?;
                        if view.brief.phase == "error" {
                            Ok(Some(view))
                        } else {
                            Err(format!("phase {}", view.brief.phase))
                        }
                    }
                })
                .await
                .expect("the test ends in error");
            eprintln!("minAgents 4, refused at prepare: {:?}", failed.incidents);
            let refused = failed
                .incidents
                .iter()
                .find(|i| i.starts_with("agent agent-3 was not ready"))
                .unwrap_or_else(|| panic!("an incident names agent-3: {:?}", failed.incidents));
            assert!(
                refused.contains("certificate"),
                "the incident says the handshake was refused: {refused}"
            );
            let no_summary = fleet
                .client(0)
                .get_summary(&accepted.id)
                .await
                .expect_err("a test that never started has no summary");
            assert_eq!(status(&no_summary), Some(409), "{no_summary}");
            fleet.wait_formed(4).await.expect("every agent idle again");
        }
    }
    assert_eq!(
        target.stats.requests(),
        0,
        "no load from a test that cannot start"
    );

    // Once agent-0 has met agent-3, it shows why in its member list and leaves it out up front.
    let client = fleet.client(0);
    let problem = fleet
        .wait_for(
            "agent-0 lists agent-3's refusal",
            Duration::from_secs(15),
            || async {
                let members = client.members().await.map_err(|e| e.to_string())?;
                let problem = members
                    .iter()
                    .find(|m| m.node_id == "agent-3")
                    .and_then(|m| m.problem.clone());
                match problem {
                    Some(p) if p.starts_with("mutual TLS refused") => Ok(Some(p)),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
        .expect("the refusal shows in /v1/members");
    eprintln!("agent-3 as agent-0 lists it: {problem}");
    assert!(problem.contains("certificate"), "{problem}");
    let refused = fleet
        .client(0)
        .submit(&all)
        .await
        .expect_err("four agents cannot take part");
    eprintln!("minAgents 4: {refused}");
    assert_eq!(status(&refused), Some(422), "{refused}");
    assert!(
        refused.to_string().contains("agent-3") && refused.to_string().contains("CA"),
        "the refusal names agent-3 and what to fix: {refused}"
    );

    // Without minAgents the test runs on the three agents of the fleet's CA only.
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    let allocated: Vec<&str> = accepted
        .allocation
        .iter()
        .map(|a| a.agent.as_str())
        .collect();
    assert_eq!(allocated, ["agent-0", "agent-1", "agent-2"]);
    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(20))
        .await
        .expect("the test seals");
    let by_agent = results::requests_by_agent(&view.summary);
    eprintln!("without minAgents: requests by agent {by_agent:?}");
    assert!(
        by_agent.iter().all(|(a, r)| a != "agent-3" && *r > 0),
        "only the fleet's agents sent load: {by_agent:?}"
    );
    assert!(
        results::intervals(&fleet.agents[3], &accepted.id).is_err()
            || results::intervals(&fleet.agents[3], &accepted.id).is_ok_and(|v| v.is_empty()),
        "agent-3 never recorded the test"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_need_the_token() {
    let target = target().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let request = plans::submit(plans::arrival_rate(
        target.addr,
        50,
        Duration::from_millis(500),
        "/",
    ));

    let none = fleet
        .client_with(1, None)
        .submit(&request)
        .await
        .expect_err("no token");
    let wrong = SecretToken::new("not-the-token").expect("a valid token text");
    let wrong = fleet
        .client_with(1, Some(wrong))
        .submit(&request)
        .await
        .expect_err("wrong token");
    eprintln!("without a token: {none}\nwith a wrong token: {wrong}");
    assert_eq!(status(&none), Some(401), "{none}");
    assert_eq!(status(&wrong), Some(401), "{wrong}");
    assert_eq!(target.stats.requests(), 0, "nothing ran");

    let accepted = fleet
        .client(1)
        .submit(&request)
        .await
        .expect("201 with the token");
    let view = fleet
        .wait_summary(1, &accepted.id, Duration::from_secs(20))
        .await
        .expect("the test seals");
    assert!(view.summary.breakdown.iter().any(|b| b.requests > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_status_and_a_message_to_act_on() {
    let target = target().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let client = fleet.client(1);

    // Larger than the 4 MiB body limit; the message names the limit and raises no false hope.
    let huge = format!("# {}\n", "x".repeat(4 * 1024 * 1024));
    let e = client
        .submit(&plans::submit(huge))
        .await
        .expect_err("oversized");
    eprintln!("oversized plan: {e}");
    assert_eq!(status(&e), Some(413), "{e}");
    assert!(
        e.to_string()
            .contains("4194304-byte limit (a fixed limit, no setting raises it)"),
        "{e}"
    );

    // A plan error names the field path and the value.
    let bad = format!(
        "scenarios:\n  broken:\n    executor: constant-vus\n    vus: 2\n    duration: 5 parsecs\n    \
         flow:\n      - get: http://{}/\n",
        target.addr
    );
    let e = client
        .submit(&plans::submit(bad))
        .await
        .expect_err("plan error");
    eprintln!("plan error: {e}");
    assert_eq!(status(&e), Some(400), "{e}");
    assert!(e.to_string().contains("scenarios.broken.duration"), "{e}");
    assert!(e.to_string().contains("5 parsecs"), "{e}");

    // A submit while a test runs names the busy agents.
    let running = fleet
        .client(0)
        .submit(&plans::submit(plans::constant_vus(
            target.addr,
            2,
            Duration::from_secs(20),
            Duration::from_millis(100),
        )))
        .await
        .expect("submit accepted");
    wait_busy(&fleet, 1, &running.id).await;
    let e = client
        .submit(&plans::submit(plans::arrival_rate(
            target.addr,
            10,
            Duration::from_secs(1),
            "/",
        )))
        .await
        .expect_err("busy");
    eprintln!("submit while busy: {e}");
    assert_eq!(status(&e), Some(409), "{e}");
    for agent in ["agent-0", "agent-1"] {
        assert!(
            e.to_string()
                .contains(&format!("{agent} runs test {}", running.id)),
            "{e}"
        );
    }

    // An unknown id is a 404 that names it and points at `volley tests`, listing no other id.
    let e = client.get_test("t-nope").await.expect_err("unknown id");
    eprintln!("unknown test: {e}");
    assert_eq!(status(&e), Some(404), "{e}");
    assert!(e.to_string().contains("t-nope"), "{e}");
    assert!(e.to_string().contains("volley tests"), "{e}");
    assert!(
        !e.to_string().contains(&running.id),
        "no known id is listed: {e}"
    );

    fleet
        .client(0)
        .abort(&running.id)
        .await
        .expect("the running test is aborted");
}

/// A plan asking for `rate` iterations a second (one VU to spare).
fn flood(target: std::net::SocketAddr, rate: &str) -> String {
    format!(
        "scenarios:\n  main:\n    executor: constant-arrival-rate\n    rate: {rate}\n    \
         duration: 5s\n    preAllocatedVUs: 10\n    maxVUs: 20\n    flow:\n      \
         - get: http://{target}/\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_beyond_the_fleets_limits_get_422_and_the_agent_keeps_its_memory() {
    let target = target().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let client = fleet.client(0);
    let agent = &fleet.agents[0];
    let before = agent.resident_bytes().expect("the agent's VmRSS");

    let absurd = [
        (
            flood(target.addr, "1000000000000"),
            "scenarios.main.rate",
            "VOLLEY_MAX_RATE",
        ),
        (
            format!(
                "vus: 1000000000\nduration: 5s\nflow:\n  - get: http://{}/\n",
                target.addr
            ),
            "vus",
            "VOLLEY_MAX_VUS",
        ),
    ];
    for (plan, field, knob) in absurd {
        let started = std::time::Instant::now();
        let e = client
            .submit(&plans::submit(plan))
            .await
            .expect_err("refused");
        let took = started.elapsed();
        eprintln!("refused in {took:?}: {e}");
        assert_eq!(status(&e), Some(422), "{e}");
        let message = e.to_string();
        assert!(message.contains(&format!("{field} asks for")), "{message}");
        assert!(
            message.contains("the limit for the 2 selected agents"),
            "{message}"
        );
        assert!(message.contains("2 agents ×"), "{message}");
        assert!(message.contains(knob), "{message}");
    }
    // Nothing was allocated for either: the resident memory did not move (allocator noise
    // aside), where the accepted plans used to grow it by gigabytes.
    let after = agent.resident_bytes().expect("the agent's VmRSS");
    eprintln!("agent-0 VmRSS: {before} bytes before, {after} after");
    assert!(
        after <= before + (16 << 20),
        "VmRSS grew from {before} to {after} bytes"
    );
    assert_eq!(target.stats.requests(), 0, "nothing ran");
    fleet.wait_formed(2).await.expect("both agents idle");

    // An ordinary plan still runs.
    let view = fleet
        .run_to_seal(
            0,
            &plans::submit(plans::arrival_rate(
                target.addr,
                50,
                Duration::from_secs(1),
                "/",
            )),
        )
        .await;
    assert!(
        results::requests_by_agent(&view.summary)
            .iter()
            .all(|(_, r)| *r > 0),
        "both agents sent load"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_past_its_memory_ceiling_stops_the_test_with_the_reason() {
    let target = target().await;
    // agent-1's ceiling is below what any process holds: its watchdog trips at the first look.
    let mut fleet = Fleet::start(
        2,
        FleetOptions {
            agent_env: vec![(1, "VOLLEY_MEMORY_CEILING".into(), "1Mi".into())],
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plans::constant_vus(
            target.addr,
            2,
            Duration::from_secs(30),
            Duration::from_millis(100),
        )))
        .await
        .expect("submit accepted");
    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(20))
        .await
        .expect("the test is stopped and sealed long before its 30 s");
    eprintln!("notes: {:?}", view.summary.notes);
    assert!(!view.passed, "a test stopped by a memory ceiling fails");
    let note = view
        .summary
        .notes
        .iter()
        .find(|n| n.contains("memory ceiling: agent agent-1 held"))
        .unwrap_or_else(|| panic!("a note gives the reason: {:?}", view.summary.notes));
    assert!(note.contains("VOLLEY_MEMORY_CEILING"), "{note}");
    let test = fleet
        .client(0)
        .get_test(&accepted.id)
        .await
        .expect("the test is known");
    assert_eq!(test.brief.phase, "failed");
    assert_eq!(test.brief.passed, Some(false));
    // Both agents are alive and idle again: the watchdog stopped the test, not the agent.
    fleet.wait_formed(2).await.expect("both agents idle");
    for agent in &mut fleet.agents {
        assert!(agent.is_running(), "{} is still running", agent.id);
    }
}
