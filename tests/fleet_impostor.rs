//! The impostor scenario with real `volley agent` processes on loopback: a process with another
//! CA (so another gossip key) joins gossip under an existing agent's node id with a far larger
//! capacity. Before gossip was authenticated it displaced the real agent (the fleet showed the
//! impostor's capacity and QUIC address, and the next test ran without the real agent); now its
//! datagrams are dropped and counted, and garbage on the gossip port is summarised in the log,
//! never logged packet by packet. An insider holding the fleet's key that points its entry at
//! another agent's QUIC endpoint is caught there: the endpoint answers with its own incarnation.
//! Each test takes 5–15 s.

mod fleet;

use std::time::Duration;

use fleet::{Fleet, FleetOptions, plans, results, target};
use volley::api::SubmitRequest;

/// The value of the sample `name{labels}` in Prometheus text, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_with_another_ca_cannot_displace_an_agent() {
    let target = target().await;
    let fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    let real = &fleet.agents[1];
    let impostor = fleet
        .spawn_impostor("agent-1", 100.0)
        .await
        .expect("the impostor starts");
    assert_ne!(impostor.quic, real.quic);

    // The impostor gossips with agent-0 (its seed) every 100 ms: its datagrams are dropped for
    // their tag and counted.
    let client = fleet.client(0);
    let rejected = fleet
        .wait_for(
            "agent-0 counts the impostor's datagrams as bad_tag",
            Duration::from_secs(15),
            || async {
                let text = client.metrics().await.map_err(|e| e.to_string())?;
                let bad_tag = sample(
                    &text,
                    "volley_gossip_rejected_packets_total{reason=\"bad_tag\"}",
                )
                .unwrap_or(0.0);
                if bad_tag >= 20.0 {
                    Ok(Some(bad_tag))
                } else {
                    Err(format!("bad_tag {bad_tag}"))
                }
            },
        )
        .await
        .expect("the counter moves");
    eprintln!("agent-0 dropped {rejected} datagrams of the impostor");

    // Every agent still sees the real agent-1: its capacity, its QUIC address, verified.
    for i in 0..fleet.len() {
        let members = fleet.client(i).members().await.expect("members answer");
        let ids: Vec<&str> = members.iter().map(|m| m.node_id.as_str()).collect();
        assert_eq!(ids, ["agent-0", "agent-1", "agent-2"], "agent-{i}");
        let one = &members[1];
        assert_eq!(one.capacity, 1.0, "agent-{i} sees {one:?}");
        assert_eq!(one.quic_addr, Some(real.quic), "agent-{i} sees {one:?}");
        assert!(
            members.iter().all(|m| m.capacity < 100.0),
            "agent-{i}: {members:?}"
        );
    }
    // The impostor learned nothing of the fleet.
    let alone = fleet
        .client_with(0, None)
        .for_agent(&format!("http://{}", impostor.api))
        .expect("client")
        .members()
        .await
        .expect("the impostor's members");
    assert_eq!(alone.len(), 1, "{alone:?}");

    // The next test runs on all three real agents, agent-1 included, with its real capacity.
    let plan = plans::arrival_rate(target.addr, 60, Duration::from_secs(1), "/");
    let request = SubmitRequest {
        min_agents: Some(3),
        ..plans::submit(plan)
    };
    let accepted = fleet
        .client(0)
        .submit(&request)
        .await
        .expect("the fleet accepts the test");
    let agents: Vec<(&str, f64)> = accepted
        .allocation
        .iter()
        .map(|a| (a.agent.as_str(), a.weight))
        .collect();
    assert_eq!(
        agents,
        [("agent-0", 1.0), ("agent-1", 1.0), ("agent-2", 1.0)]
    );
    let summary = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(30))
        .await
        .expect("the test seals");
    let by_agent = results::requests_by_agent(&summary.summary);
    assert!(
        by_agent.iter().any(|(a, n)| a == "agent-1" && *n > 0),
        "agent-1 sent load: {by_agent:?}"
    );
    assert!(
        results::requests(&results::totals(real, &accepted.id).expect("agent-1's results")) > 0,
        "agent-1 kept its own intervals"
    );

    // Garbage on agent-2's gossip port: counted, summarised, never one line per packet.
    let garbage = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    // Sent in bursts the socket buffer holds, each counted before the next (a kernel drop
    // would be no test of the agent).
    const BURSTS: u32 = 10;
    const BURST: u32 = 50;
    let client = fleet.client(2);
    for burst in 0..BURSTS {
        for i in 0..BURST {
            let junk = format!("junk datagram {burst}/{i} {}", "x".repeat((i * 5) as usize));
            garbage
                .send_to(junk.as_bytes(), fleet.agents[2].gossip)
                .await
                .expect("send");
        }
        let sent = f64::from((burst + 1) * BURST);
        fleet
            .wait_for(
                "agent-2 counts the garbage as malformed",
                Duration::from_secs(10),
                || async {
                    let text = client.metrics().await.map_err(|e| e.to_string())?;
                    let malformed = sample(
                        &text,
                        "volley_gossip_rejected_packets_total{reason=\"malformed\"}",
                    )
                    .unwrap_or(0.0);
                    if malformed >= sent {
                        Ok(Some(()))
                    } else {
                        Err(format!("malformed {malformed} of {sent}"))
                    }
                },
            )
            .await
            .expect("the garbage is counted");
    }
    let log = fleet.agents[2].log_text();
    let drop_lines = log
        .lines()
        .filter(|l| l.contains("gossip datagram"))
        .count();
    assert!(
        drop_lines <= 2,
        "at most one summary per 10 s, got {drop_lines}:\n{log}"
    );
    assert!(
        !log.contains("invalid-chitchat-payload"),
        "no line per packet:\n{log}"
    );
    assert!(
        log.lines().count() < 50,
        "the log stays short ({} lines):\n{log}",
        log.lines().count()
    );
    drop(impostor);
}

/// An insider (the fleet's CA, so the fleet's gossip key) gossips as agent-1 with a newer
/// generation and 100 times its capacity, pointing its QUIC address at the real agent-1. The
/// newer generation would win the view; the identity check asks the endpoint, which answers
/// with the real incarnation: the entry is rejected (shown as `superseded`), the real agent-1
/// shows again and takes part with its own capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insider_pointing_at_another_agents_endpoint_is_rejected() {
    let target = target().await;
    let fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    let real_quic = fleet.agents[1].quic;
    let insider = fleet
        .spawn_insider("agent-1", 100.0, real_quic)
        .await
        .expect("the insider starts");

    let client = fleet.client(0);
    let rejected = fleet
        .wait_for(
            "agent-0 rejects the insider's entry and shows the real agent-1",
            Duration::from_secs(20),
            || async {
                let members = client.members().await.map_err(|e| e.to_string())?;
                let rows: Vec<(String, String, f64)> = members
                    .iter()
                    .map(|m| (m.node_id.clone(), m.identity.clone(), m.capacity))
                    .collect();
                let real = members
                    .iter()
                    .any(|m| m.node_id == "agent-1" && m.capacity == 1.0 && m.state == "idle");
                let shown = members
                    .iter()
                    .find(|m| m.node_id == "agent-1" && m.identity == "superseded");
                match shown {
                    Some(row) if real && members.iter().all(|m| m.capacity < 100.0) => {
                        Ok(Some(row.clone()))
                    }
                    _ => Err(format!("{rows:?}")),
                }
            },
        )
        .await
        .expect("the insider is caught");
    assert_eq!(rejected.state, "rejected");
    assert!(
        rejected
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("runs incarnation")),
        "{rejected:?}"
    );

    let plan = plans::arrival_rate(target.addr, 60, Duration::from_secs(1), "/");
    let accepted = fleet
        .client(0)
        .submit(&SubmitRequest {
            min_agents: Some(3),
            ..plans::submit(plan)
        })
        .await
        .expect("the fleet accepts the test");
    let weights: Vec<(&str, f64)> = accepted
        .allocation
        .iter()
        .map(|a| (a.agent.as_str(), a.weight))
        .collect();
    assert_eq!(
        weights,
        [("agent-0", 1.0), ("agent-1", 1.0), ("agent-2", 1.0)]
    );
    fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(30))
        .await
        .expect("the test seals");
    drop(insider);
}
