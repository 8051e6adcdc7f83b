//! Fleet tests across separate hosts: every `volley agent` in a network namespace of its own,
//! joined by a bridge where the target listens (see `fleet::net`). A real partition: one host's
//! link goes down mid-test while its agent process lives on. The majority declares it dead and
//! takes over its share; the cut-off agent, which sees no majority, does not take anything over
//! and stops its own load after the orphan timeout.
//!
//! Network namespaces need root. As root (as in CI) a failure to build the network fails the
//! test; as another user the test says why and does nothing. About 20 s.

mod fleet;

use std::net::SocketAddr;
use std::time::Duration;

use fleet::net::TestNet;
use fleet::{Fleet, FleetOptions, instant_at, plans, results, unix_ms_now};
use volley::target::{self, TargetConfig};

/// A network of `n` hosts, or `None` (with the reason on stderr) when this user cannot build one.
fn network(n: usize) -> Option<TestNet> {
    if let Some(why) = TestNet::unavailable() {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        assert!(!root, "running as root, but no test network: {why}");
        eprintln!("not run: {why}");
        return None;
    }
    Some(TestNet::create(n).expect("the test network is built"))
}

/// 4 agents on 4 hosts, 400/s for 12 s; agent-3's link goes down at 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_agent_stops_its_load_and_the_majority_takes_over_its_share() {
    const RATE: f64 = 400.0;
    const DURATION_MS: u64 = 12_000;
    const CUT_AT_MS: u64 = 4_000;
    const ORPHAN: Duration = Duration::from_secs(2);
    let Some(net) = network(4) else {
        return;
    };
    let target = target::spawn(SocketAddr::new(net.gateway, 0), TargetConfig::default())
        .await
        .expect("the target listens on the bridge");
    let mut fleet = Fleet::start(
        4,
        FleetOptions {
            hosts: net.hosts.clone(),
            orphan_timeout: Some(ORPHAN),
            ..FleetOptions::default()
        },
    )
    .await
    .expect("a fleet of four hosts forms");
    let plan = plans::arrival_rate(
        target.addr,
        RATE as u64,
        Duration::from_millis(DURATION_MS),
        "/",
    );
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    let start_ms = accepted.start_unix_ms;
    let end_ms = start_ms + DURATION_MS;

    tokio::time::sleep_until(instant_at(start_ms + CUT_AT_MS)).await;
    let at_cut = target.stats.requests();
    let cut_ms = unix_ms_now();
    net.cut(3).expect("agent-3's link goes down");

    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(30))
        .await
        .expect("the majority seals the test without agent-3");
    let after = target.stats.requests() - at_cut;
    let remaining = (end_ms - cut_ms) as f64 / 1000.0;
    let achieved = after as f64 / remaining;
    let deviation = (achieved - RATE).abs() / RATE;

    // What agent-3 did after the cut, from the intervals it kept (its API is unreachable now).
    let cut_off = &fleet.agents[3];
    let intervals = results::intervals(cut_off, &accepted.id).expect("agent-3 kept its intervals");
    // The engine emits an interval every second and a last one when it stops.
    let engine_end_ms = intervals
        .iter()
        .map(|(_, snapshot)| snapshot.end_unix_ms())
        .max()
        .unwrap_or(0);
    let ran_after_cut = Duration::from_millis(engine_end_ms.saturating_sub(cut_ms));
    eprintln!(
        "cut agent-3 at {:.3} s; the majority sent {after} requests over the remaining \
         {remaining:.3} s: {achieved:.1}/s, {:.2} % off the target rate; agent-3's engine stopped \
         {ran_after_cut:?} after the cut (orphan timeout {ORPHAN:?}), {} intervals; notes: {:?}",
        (cut_ms - start_ms) as f64 / 1000.0,
        deviation * 100.0,
        intervals.len(),
        view.summary.notes
    );
    assert!(
        view.summary
            .notes
            .iter()
            .any(|n| n.starts_with("lost agent(s) agent-3")),
        "the partition is in the notes: {:?}",
        view.summary.notes
    );
    assert!(
        !view
            .summary
            .notes
            .iter()
            .any(|n| n.contains("took the test over")),
        "nobody took the test over: its origin was on the majority side: {:?}",
        view.summary.notes
    );
    assert!(
        deviation < 0.05,
        "achieved {achieved:.1}/s after the cut, target {RATE}/s\n{}",
        view.text
    );
    // The orphan timeout counts from the last delivery that got through, up to an interval
    // (1 s) before the cut.
    assert!(
        ran_after_cut + Duration::from_millis(1_200) >= ORPHAN
            && ran_after_cut <= ORPHAN + Duration::from_secs(1),
        "agent-3 stopped its load {ran_after_cut:?} after the cut, orphan timeout {ORPHAN:?}"
    );
    assert!(
        fleet.agents[3].is_running(),
        "agent-3 itself lives on behind the partition"
    );
}
