//! Chaos on a five-agent fleet of real `volley agent` processes. While short tests run, agents
//! are SIGKILLed and restarted (a participant, then a test's origin), others SIGSTOPped for a few
//! seconds; all along, garbage is sprayed at every gossip port (random bytes, datagrams sealed
//! with another key, sealed with the fleet's key but stale, cut short, or authentic junk for
//! chitchat's decoder, each sent up to three times) and an impostor with another CA gossips
//! under an existing agent's node id. A last test must still run to its seal.
//!
//! Afterwards, each within a deadline: every agent process is alive and answers `/healthz`; the
//! target's request counter stops moving (no load left running); every test any agent lists is
//! in a terminal phase (passed, failed, aborted, error or interrupted) once its deadline passed;
//! the impostor was given no share and took part in nothing. About 60 s.

mod fleet;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet::{Fleet, FleetOptions, plans, target, unix_ms_now};
use tokio::time::Instant;
use volley::api::{SubmitRequest, SubmitResponse};
use volley::fleet::ca::FleetCa;
use volley::fleet::membership::GossipKey;
use volley::fleet::store::SEAL_MARGIN;

/// The longest any test here may run: its duration or `maxDuration` plus `gracefulStop`.
const LONGEST: Duration = Duration::from_secs(8);

/// `shared-iterations` within 4 s: bounded, unlike the harness's 30 s one.
fn shared_iterations(target: SocketAddr) -> String {
    format!(
        r#"scenarios:
  shared:
    executor: shared-iterations
    vus: 3
    iterations: 60
    maxDuration: 4s
    gracefulStop: 2s
    flow:
      - get: http://{target}/
"#
    )
}

/// The phases a test can no longer leave.
const TERMINAL: &[&str] = &["passed", "failed", "aborted", "error", "interrupted"];

/// Sprays garbage at the gossip ports in `targets` until `stop`; returns how many datagrams it
/// sent. Deterministic (a seeded PRNG) so a failure can be rerun alike.
fn spawn_garbage(
    targets: Arc<Mutex<Vec<SocketAddr>>>,
    fleet_key: GossipKey,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("a loopback UDP socket");
        let foreign =
            GossipKey::derive(b"not the fleet's secret, but long enough").expect("a long secret");
        let mut rng = fastrand::Rng::with_seed(0xc4a0_5eed);
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let addrs = targets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let to = addrs[rng.usize(..addrs.len())];
            let junk: Vec<u8> = (0..rng.usize(..1400)).map(|_| rng.u8(..)).collect();
            let mut datagram = Vec::new();
            match rng.u8(..5) {
                0 => datagram = junk,
                1 => foreign.seal(unix_ms_now(), &junk, &mut datagram),
                // Sealed with the fleet's key an hour ago: a replay from outside the window.
                2 => fleet_key.seal(unix_ms_now() - 3_600_000, &junk, &mut datagram),
                3 => {
                    fleet_key.seal(unix_ms_now(), &junk, &mut datagram);
                    datagram.truncate(rng.usize(..datagram.len()));
                }
                // Authentic junk: it reaches chitchat's decoder.
                _ => fleet_key.seal(unix_ms_now(), &junk, &mut datagram),
            }
            // Each datagram is replayed up to twice.
            for _ in 0..1 + rng.usize(..3) {
                let _ = socket.send_to(&datagram, to).await;
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        sent
    })
}

/// Submits `plan` to agent `i`, again while the fleet refuses it (an agent still busy with the
/// previous test answers 409), for up to 40 s.
async fn submit(fleet: &Fleet, i: usize, plan: String) -> SubmitResponse {
    let request = SubmitRequest {
        lead_time: Some("2s".into()),
        ..plans::submit(plan)
    };
    let client = fleet.client(i);
    fleet
        .wait_for(
            &format!("agent-{i} accepts a test"),
            Duration::from_secs(40),
            || async {
                client
                    .submit(&request)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string())
            },
        )
        .await
        .expect("the fleet accepts the test once its agents are free")
}

/// Sleeps until `unix_ms` plus `after`.
async fn sleep_past(unix_ms: u64, after: Duration) {
    tokio::time::sleep(Duration::from_millis(unix_ms.saturating_sub(unix_ms_now())) + after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaken_fleet_keeps_every_agent_up_and_leaves_no_load_or_test_under_way() {
    let started = Instant::now();
    let target = target().await;
    let mut fleet = Fleet::start(
        5,
        FleetOptions {
            orphan_timeout: Some(Duration::from_secs(2)),
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    let ca = FleetCa::load_from_dir(&fleet.dir().join("ca")).expect("the fleet CA");
    let fleet_key = GossipKey::derive(&ca.shared_secret()).expect("the fleet's gossip key");

    let gossip = Arc::new(Mutex::new(
        fleet.agents.iter().map(|a| a.gossip).collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let garbage = spawn_garbage(gossip.clone(), fleet_key, stop.clone());
    let impostor = fleet
        .spawn_impostor("agent-3", 100.0)
        .await
        .expect("the impostor starts");

    let mut accepted: Vec<SubmitResponse> = Vec::new();

    // A: 6 s on every agent. agent-2 is SIGKILLed 1.5 s in, agent-3 SIGSTOPped for 3 s from
    // 2.5 s in (its peers lose it, it loses them), agent-2 restarted with its data directory.
    let a = submit(
        &fleet,
        0,
        plans::constant_vus(
            target.addr,
            5,
            Duration::from_secs(6),
            Duration::from_millis(50),
        ),
    )
    .await;
    let a_start = a.start_unix_ms;
    accepted.push(a);
    sleep_past(a_start, Duration::from_millis(1500)).await;
    fleet.kill(2).await;
    sleep_past(a_start, Duration::from_millis(2500)).await;
    fleet.pause(3).expect("SIGSTOP agent-3");
    sleep_past(a_start, Duration::from_millis(5500)).await;
    fleet.resume(3).expect("SIGCONT agent-3");
    fleet.restart(2).await.expect("agent-2 restarts");
    // Gossip garbage follows it to its new port.
    gossip
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)[2] = fleet.agents[2].gossip;

    // B, once the fleet takes it: its origin (agent-1) is SIGKILLed 1 s in and restarted, and
    // agent-4 SIGSTOPped for 2 s.
    let b = submit(
        &fleet,
        1,
        plans::arrival_rate(target.addr, 40, Duration::from_secs(3), "/"),
    )
    .await;
    let b_start = b.start_unix_ms;
    accepted.push(b);
    sleep_past(b_start, Duration::from_millis(1000)).await;
    fleet.kill(1).await;
    fleet.pause(4).expect("SIGSTOP agent-4");
    sleep_past(b_start, Duration::from_millis(3000)).await;
    fleet.resume(4).expect("SIGCONT agent-4");
    fleet.restart(1).await.expect("agent-1 restarts");
    gossip
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)[1] = fleet.agents[1].gossip;

    // C, while garbage and the impostor go on: a shaken fleet still runs a test to its seal.
    let c = submit(&fleet, 4, shared_iterations(target.addr)).await;
    let c_id = c.id.clone();
    accepted.push(c);
    let sealed = fleet
        .wait_summary(4, &c_id, Duration::from_secs(40))
        .await
        .expect("the test after the chaos seals");
    stop.store(true, Ordering::Relaxed);
    let sprayed = garbage.await.expect("the garbage task ends");
    eprintln!(
        "chaos over after {:?}: {sprayed} garbage datagrams; the last test sealed, passed: {}",
        started.elapsed(),
        sealed.passed
    );

    // Every agent is alive and answers.
    for i in 0..fleet.len() {
        assert!(
            fleet.agents[i].is_running(),
            "agent-{i} died:\n{}",
            fleet.agents[i].log_tail()
        );
        let client = fleet.client(i);
        fleet
            .wait_for(
                &format!("agent-{i} answers /healthz"),
                Duration::from_secs(20),
                || async { client.healthz().await.map(Some).map_err(|e| e.to_string()) },
            )
            .await
            .expect("every agent answers");
    }

    for a in &accepted {
        let agents: Vec<&str> = a.allocation.iter().map(|e| e.agent.as_str()).collect();
        eprintln!("test {} ran on {agents:?}", a.id);
    }
    // The fleet is whole again: every agent sees all five, idle and usable.
    for i in 0..fleet.len() {
        let client = fleet.client(i);
        fleet
            .wait_for(
                &format!("agent-{i} sees five idle members"),
                Duration::from_secs(30),
                || async {
                    let members = client.members().await.map_err(|e| e.to_string())?;
                    let whole = members.len() == 5
                        && members.iter().all(|m| m.state == "idle" && m.compatible);
                    if whole {
                        Ok(Some(()))
                    } else {
                        let rows: Vec<String> = members
                            .iter()
                            .map(|m| {
                                format!(
                                    "{} gen {} {} {} {:?}",
                                    m.node_id, m.generation, m.state, m.identity, m.problem
                                )
                            })
                            .collect();
                        Err(rows.join("; "))
                    }
                },
            )
            .await
            .expect("every agent sees the whole fleet again");
    }

    // No load is left running: the target's counter comes to rest.
    let latest_end = accepted
        .iter()
        .map(|a| a.start_unix_ms + LONGEST.as_millis() as u64)
        .max()
        .unwrap_or(0);
    let stats = target.stats.clone();
    let mut last = (stats.requests(), Instant::now());
    let quiet_within =
        Duration::from_millis(latest_end.saturating_sub(unix_ms_now())) + Duration::from_secs(20);
    fleet
        .wait_for(
            "the target's request counter rests for 2 s",
            quiet_within,
            || {
                let now = stats.requests();
                let result = if now != last.0 {
                    last = (now, Instant::now());
                    Err(format!("{now} requests, still growing"))
                } else if last.1.elapsed() >= Duration::from_secs(2) {
                    Ok(Some(()))
                } else {
                    Ok(None)
                };
                async move { result }
            },
        )
        .await
        .expect("no load left running");

    // Every test any agent lists is over, once the last deadline passed.
    let deadline = accepted
        .iter()
        .map(|a| a.start_unix_ms + (LONGEST + SEAL_MARGIN).as_millis() as u64)
        .max()
        .unwrap_or(0);
    let within =
        Duration::from_millis(deadline.saturating_sub(unix_ms_now())) + Duration::from_secs(20);
    for i in 0..fleet.len() {
        let client = fleet.client(i);
        let phases = fleet
            .wait_for(
                &format!("agent-{i} lists every test in a terminal phase"),
                within,
                || async {
                    let tests = client.list_local_tests().await.map_err(|e| e.to_string())?;
                    let open: Vec<String> = tests
                        .iter()
                        .filter(|t| !TERMINAL.contains(&t.phase.as_str()))
                        .map(|t| format!("{} {}", t.id, t.phase))
                        .collect();
                    if open.is_empty() {
                        let phases: Vec<String> = tests
                            .iter()
                            .map(|t| format!("{} {}", t.id, t.phase))
                            .collect();
                        Ok(Some(phases))
                    } else {
                        Err(format!("under way: {open:?}"))
                    }
                },
            )
            .await
            .expect("no test stays under way");
        eprintln!("agent-{i} lists {phases:?}");
    }
    // The first test reached every agent that ran it, the restarted one included.
    for i in [0, 1, 4] {
        let tests = fleet
            .client(i)
            .list_local_tests()
            .await
            .expect("agents list their tests");
        assert!(
            tests.iter().any(|t| t.id == accepted[0].id),
            "agent-{i} lists the first test: {tests:?}"
        );
    }

    // The impostor took part in nothing.
    for a in &accepted {
        let weights: Vec<f64> = a.allocation.iter().map(|e| e.weight).collect();
        assert!(
            weights.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-9),
            "equal agents have equal shares (no capacity 100 among them): {:?}",
            a.allocation
        );
    }
    let impostor_tests = fleet
        .client(0)
        .for_agent(&format!("http://{}", impostor.api))
        .expect("a client of the impostor")
        .list_local_tests()
        .await
        .expect("the impostor answers");
    assert!(
        impostor_tests.is_empty(),
        "the impostor received a share: {impostor_tests:?}"
    );
    let members = fleet.client(0).members().await.expect("members answer");
    assert!(
        members.iter().all(|m| m.capacity < 100.0),
        "the impostor's entry shows: {members:?}"
    );
    drop(impostor);
    eprintln!("chaos test done in {:?}", started.elapsed());
}
