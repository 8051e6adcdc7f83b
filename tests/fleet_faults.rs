//! Fleet tests of failures, with real `volley agent` processes on loopback: an agent killed with
//! SIGKILL mid-test (the survivors take over its share), the origin killed mid-test (a successor
//! takes the test over and rebuilds its results), an abort through an agent that does not
//! coordinate the test, an agent cut off from all others (SIGSTOP) that stops its own load, and
//! the origin of a two-agent fleet killed and restarted mid-test (no agent lists the test as under
//! way once its deadline passed; the survivor's record is interrupted, or its own partial seal if
//! gossip declared the restarting origin dead).
//!
//! The longest tests of the fleet suite live here: the SIGKILL tests run 10–12 s plans (about
//! 20 s each in all), the cut-off test about 10 s.

mod fleet;

use std::sync::Arc;
use std::time::Duration;

use fleet::{
    Fleet, FleetOptions, instant_at, plans, results, shared_iterations_then_kill, target,
    unix_ms_now,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;
use volley::fleet::store::SEAL_MARGIN;
use volley::target::TargetStats;

/// How the target's request counter came to rest.
#[derive(Debug)]
struct Quiet {
    /// From `since` to the counter's last increase.
    stopped_after: Duration,
    /// The counter then.
    requests: u64,
}

/// Polls the target's counter until it has not grown for `settle`, or `within` passed; returns
/// when (after `since`) it last grew. `None`: it was still growing at the deadline.
async fn wait_quiet(
    stats: &Arc<TargetStats>,
    since: Instant,
    settle: Duration,
    within: Duration,
) -> Option<Quiet> {
    let deadline = since + within;
    let mut last = stats.requests();
    let mut last_change = since;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = Instant::now();
        let current = stats.requests();
        if current != last {
            last = current;
            last_change = now;
        } else if now.duration_since(last_change) >= settle {
            return Some(Quiet {
                stopped_after: last_change.duration_since(since),
                requests: current,
            });
        }
        if now >= deadline {
            return None;
        }
    }
}

/// The longest fleet test (about 20 s): 4 agents, 400/s for 12 s, one SIGKILLed at 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_an_agent_keeps_the_fleet_rate_within_5_percent() {
    const RATE: f64 = 400.0;
    const DURATION_MS: u64 = 12_000;
    const KILL_AT_MS: u64 = 4_000;
    let target = target().await;
    let mut fleet = Fleet::start(4, FleetOptions::default())
        .await
        .expect("fleet forms");
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

    tokio::time::sleep_until(instant_at(start_ms + KILL_AT_MS)).await;
    let at_kill = target.stats.requests();
    let kill_ms = unix_ms_now();
    fleet.kill(3).await;
    let before = at_kill as f64 / ((kill_ms - start_ms) as f64 / 1000.0);

    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(30))
        .await
        .expect("the test seals without the killed agent");
    let after = target.stats.requests() - at_kill;
    let remaining = (end_ms - kill_ms) as f64 / 1000.0;
    let achieved = after as f64 / remaining;
    let deviation = (achieved - RATE).abs() / RATE;
    eprintln!(
        "killed agent-3 at {:.3} s ({at_kill} requests, {before:.1}/s so far); \
         {after} requests over the remaining {remaining:.3} s: {achieved:.1}/s, \
         {:.2} % off the target rate; notes: {:?}",
        (kill_ms - start_ms) as f64 / 1000.0,
        deviation * 100.0,
        view.summary.notes
    );
    assert!(
        view.summary
            .notes
            .iter()
            .any(|n| n.starts_with("lost agent(s) agent-3")),
        "the incident is in the summary notes: {:?}",
        view.summary.notes
    );
    assert!(
        deviation < 0.05,
        "achieved {achieved:.1}/s after the kill, target {RATE}/s\n{}",
        view.text
    );
}

/// The origin (agent-0) is SIGKILLed at 3 s of a 10 s arrival-rate test submitted with
/// `volley run --agent`: agent-1, the lowest live id, takes the test over; agent-2 sends again
/// what it kept; the command follows the test through another agent and exits 0 with the summary,
/// which counts every request the survivors made, before the takeover and after, and those of
/// agent-0's own share that agent-1 kept for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_takes_over_when_the_origin_dies_and_rebuilds_the_results() {
    const RATE: u64 = 300;
    const DURATION_MS: u64 = 10_000;
    const KILL_AT_MS: u64 = 3_000;
    let target = target().await;
    let mut fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan_file = fleet.dir().join("plan.yaml");
    let plan = plans::arrival_rate(target.addr, RATE, Duration::from_millis(DURATION_MS), "/");
    std::fs::write(&plan_file, plan).expect("write the plan");
    let export = fleet.dir().join("summary.json");
    let mut cli = fleet.run_cli([
        std::ffi::OsStr::new("--summary-export"),
        export.as_os_str(),
        plan_file.as_os_str(),
    ]);
    let mut stderr = BufReader::new(cli.stderr.take().expect("piped")).lines();
    let id = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if let Some(rest) = line.strip_prefix("test ")
                && let Some((id, origin)) = rest.split_once(" accepted by ")
            {
                assert!(origin.starts_with("agent-0:"), "{line}");
                return Some(id.to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("volley run --agent says which test the fleet accepted");
    // The rest of its stderr is read as it comes, so the command never blocks on a full pipe.
    let rest_of_stderr = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            lines.push(line);
        }
        lines
    });
    let before = fleet
        .client(0)
        .get_test(&id)
        .await
        .expect("the origin answers before it dies");
    tokio::time::sleep_until(instant_at(before.brief.start_unix_ms + KILL_AT_MS)).await;
    let before = fleet
        .client(0)
        .get_test(&id)
        .await
        .expect("the origin answers before it dies");
    let agent2_before = before
        .agent_states
        .iter()
        .find(|a| a.agent == "agent-2")
        .map_or(0, |a| a.requests);
    fleet.kill(0).await;

    let out = tokio::time::timeout(Duration::from_secs(60), cli.wait_with_output())
        .await
        .expect("volley run --agent ends within 60 s")
        .expect("volley run --agent runs");
    let stderr = rest_of_stderr.await.unwrap_or_default().join("\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit status; stderr:\n{stderr}\nstdout:\n{stdout}\n{}",
        fleet.logs()
    );
    assert!(
        stderr.contains("following test") && stdout.contains("http_reqs"),
        "the command followed the test through another agent and printed the summary:\n{stderr}\n{stdout}"
    );
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).expect("--summary-export wrote a file"))
            .expect("the export is JSON");

    let view = fleet
        .wait_summary(2, &id, Duration::from_secs(10))
        .await
        .expect("agent-2 forwards the successor's summary");
    let notes = &view.summary.notes;
    eprintln!("notes: {notes:?}\n{}", view.text);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("origin agent-0 was lost; agent-1 took the test over")),
        "the takeover is in the notes: {notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("lost agent(s) agent-0")),
        "the dead origin's share went to the survivors: {notes:?}"
    );

    // Every request the survivors made is in the summary, those of the first 3 s included:
    // each agent's row equals the intervals it kept, and agent-2's count grew past what the
    // dead origin had seen of it.
    let by_agent = results::requests_by_agent(&view.summary);
    let row = |agent: &str| by_agent.iter().find(|(a, _)| a == agent).map(|(_, r)| *r);
    let mut survivors = 0;
    for i in [1, 2] {
        let agent = &fleet.agents[i];
        let kept =
            results::requests(&results::totals(agent, &id).expect("the agent kept its intervals"));
        assert_eq!(
            row(&agent.id),
            Some(kept),
            "{}'s row in the summary equals the intervals it kept: {by_agent:?}",
            agent.id
        );
        survivors += kept;
    }
    assert!(
        row("agent-2").unwrap_or(0) > agent2_before && agent2_before > 0,
        "agent-2 reported {agent2_before} requests to the origin before it died; the summary has {by_agent:?}"
    );
    // agent-0's own share is in it too: what agent-1, its successor, kept of it.
    let kept = results::requests(
        &results::totals_of(&fleet.agents[1], &id, "agent-0")
            .expect("agent-1 kept agent-0's intervals"),
    );
    assert!(
        kept > 0,
        "agent-1 kept agent-0's first seconds: {by_agent:?}"
    );
    assert_eq!(row("agent-0"), Some(kept), "{by_agent:?}");
    let total = results::summary_count(&view.summary, "http_req_duration").unwrap_or(0);
    assert_eq!(
        total,
        survivors + kept,
        "the fleet total is the survivors' requests and agent-0's kept at agent-1"
    );
    assert_eq!(
        exported["metrics"]["http_reqs"]["count"].as_u64(),
        Some(survivors + kept),
        "the command's --summary-export is the successor's summary"
    );
    // The survivors took over agent-0's share: together they sent most of the plan's arrivals.
    let planned = RATE * DURATION_MS / 1000;
    assert!(
        survivors as f64 > planned as f64 * 0.75,
        "survivors sent {survivors} of {planned} planned requests"
    );
}

/// `shared-iterations` of 300 requests to `/delay/100` on 3 agents (2 VUs each, about 5 s);
/// agent-2 is SIGKILLed at 2 s. The others take over what it had not reported done, so the
/// target still sees every iteration, and what agent-2 did after its last report twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_shared_iterations_the_others_run_the_lost_agents_iterations() {
    const ITERATIONS: u64 = 300;
    let (fleet, target, accepted) = shared_iterations_then_kill(3, 6, ITERATIONS, 2_000, 2).await;
    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(40))
        .await
        .expect("the test seals without agent-2");
    let served = target.stats.requests();
    eprintln!(
        "target served {served} of {ITERATIONS} iterations; by agent {:?}; notes: {:?}",
        results::requests_by_agent(&view.summary),
        view.summary.notes
    );
    assert!(
        view.summary
            .notes
            .iter()
            .any(|n| n.starts_with("scenario shared: agent-2 had reported")
                && n.contains("were taken over")),
        "the takeover is in the notes: {:?}",
        view.summary.notes
    );
    // What agent-2 did after its last delivered report runs twice: its reports lag by up to
    // two seconds (a 1 s interval, then delivery) at 2 VUs × 10 iterations a second, plus the
    // iterations in flight when it died and whatever a late kill on a busy machine lets through.
    assert!(
        (ITERATIONS..=ITERATIONS + 50).contains(&served),
        "the target served {served} requests for {ITERATIONS} iterations\n{}",
        view.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_through_any_agent_stops_all_load_within_1_s() {
    let target = target().await;
    let fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan = plans::arrival_rate(target.addr, 300, Duration::from_secs(20), "/");
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    fleet
        .wait_for("every agent sends load", Duration::from_secs(10), || {
            let client = fleet.client(0);
            let id = accepted.id.clone();
            async move {
                let view = client.get_test(&id).await.map_err(|e| e.to_string())?;
                if view.agent_states.iter().all(|a| a.requests > 0) {
                    Ok(Some(()))
                } else {
                    Err(format!("{:?}", view.agent_states))
                }
            }
        })
        .await
        .expect("the test runs");

    // agent-1 does not coordinate the test: it forwards the abort to agent-0.
    let sent = Instant::now();
    let aborted = fleet
        .client(1)
        .abort(&accepted.id)
        .await
        .expect("the abort is accepted");
    let returned = Instant::now();
    assert!(!aborted.already_ended);
    let quiet = wait_quiet(
        &target.stats,
        returned,
        Duration::from_millis(500),
        Duration::from_secs(5),
    )
    .await
    .expect("the load stops");
    eprintln!(
        "the abort took {:?}; load stopped {:?} after it returned ({} requests in all)",
        returned.duration_since(sent),
        quiet.stopped_after,
        quiet.requests
    );
    assert!(
        quiet.stopped_after <= Duration::from_secs(1),
        "load went on for {:?} after the abort",
        quiet.stopped_after
    );

    let again = fleet
        .client(2)
        .abort(&accepted.id)
        .await
        .expect_err("a second abort is refused");
    eprintln!("second abort: {again}");
    assert_eq!(again.status().map(|s| s.as_u16()), Some(409), "{again}");
    assert!(
        again.to_string().contains(&accepted.id) && again.to_string().contains("already"),
        "the refusal names the test and says it is over: {again}"
    );
    let view = fleet
        .wait_summary(0, &accepted.id, Duration::from_secs(15))
        .await
        .expect("an aborted test seals");
    assert!(
        view.summary.notes.iter().any(|n| n.contains("aborted")),
        "{:?}",
        view.summary.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cut_off_from_all_others_stops_its_load_after_the_orphan_timeout() {
    const ORPHAN: Duration = Duration::from_secs(2);
    let target = target().await;
    let mut fleet = Fleet::start(
        3,
        FleetOptions {
            orphan_timeout: Some(ORPHAN),
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    let plan = plans::arrival_rate(target.addr, 300, Duration::from_secs(20), "/");
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    fleet
        .wait_for("agent-1 sends load", Duration::from_secs(10), || {
            let client = fleet.client(0);
            let id = accepted.id.clone();
            async move {
                let view = client.get_test(&id).await.map_err(|e| e.to_string())?;
                let running = view
                    .agent_states
                    .iter()
                    .any(|a| a.agent == "agent-1" && a.requests > 0);
                if running {
                    Ok(Some(()))
                } else {
                    Err(format!("{:?}", view.agent_states))
                }
            }
        })
        .await
        .expect("the test runs");

    // Cut agent-1 off: its origin (agent-0) and its only other peer stop answering.
    fleet.pause(0).expect("SIGSTOP agent-0");
    fleet.pause(2).expect("SIGSTOP agent-2");
    let cut = Instant::now();
    let quiet = wait_quiet(
        &target.stats,
        cut,
        Duration::from_millis(750),
        Duration::from_secs(10),
    )
    .await;
    let alive = fleet.agents[1].is_running();
    let health = fleet.client(1).healthz().await;
    fleet.resume(0).expect("SIGCONT agent-0");
    fleet.resume(2).expect("SIGCONT agent-2");

    let quiet = quiet.expect("agent-1 stops its load on its own");
    eprintln!(
        "agent-1 stopped its load {:?} after it was cut off (orphan timeout {ORPHAN:?})",
        quiet.stopped_after
    );
    assert!(alive, "agent-1 is still running");
    assert!(
        !fleet.logs().contains("taking the test over"),
        "agent-1, alone, did not take the test over:\n{}",
        fleet.logs()
    );
    assert!(health.is_ok(), "agent-1 still serves its API: {health:?}");
    assert!(
        quiet.stopped_after <= ORPHAN + Duration::from_secs(1),
        "agent-1 sent load for {:?} after the cut",
        quiet.stopped_after
    );
    assert!(
        quiet.stopped_after >= Duration::from_millis(500),
        "agent-1 kept going on its own for a while: {:?}",
        quiet.stopped_after
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_and_restart_mid_test_no_agent_lists_the_test_as_under_way() {
    let target = target().await;
    let mut fleet = Fleet::start(
        2,
        FleetOptions {
            orphan_timeout: Some(Duration::from_secs(1)),
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    let plan = plans::constant_vus(
        target.addr,
        2,
        Duration::from_secs(3),
        Duration::from_millis(50),
    );
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    fleet
        .wait_for("agent-1 runs the test", Duration::from_secs(10), || {
            let phase = phase_in(fleet.client(1), accepted.id.clone());
            async move {
                match phase.await? {
                    Some(p) if p == "pending" || p == "running" || p == "starting" => Ok(Some(())),
                    other => Err(format!("agent-1 lists it as {other:?}")),
                }
            }
        })
        .await
        .expect("agent-1 takes part");

    // The origin dies mid-test and comes back; a two-agent fleet has no successor.
    fleet.restart(0).await.expect("agent-0 restarts");
    let on_restart = phase_in(fleet.client(0), accepted.id.clone())
        .await
        .expect("agent-0 answers");
    assert_eq!(
        on_restart.as_deref(),
        Some("interrupted"),
        "the restarted origin cannot be running the test"
    );
    let view = fleet
        .client(0)
        .get_test(&accepted.id)
        .await
        .expect("the test is still known");
    assert!(
        view.incidents
            .iter()
            .any(|i| i.contains("the agent stopped (crash or restart)")),
        "{:?}",
        view.incidents
    );

    // agent-1 never hears a verdict: once the deadline passed it says so. Unless gossip declared
    // agent-0 dead while it restarted: then agent-1, half of the fleet, took the test over and
    // sealed a partial summary of its own.
    let deadline = accepted.start_unix_ms + 5_000 + SEAL_MARGIN.as_millis() as u64;
    let wait =
        Duration::from_millis(deadline.saturating_sub(unix_ms_now())) + Duration::from_secs(15);
    let partial = fleet
        .wait_for("agent-1 ends the test", wait, || {
            let client = fleet.client(1);
            let id = accepted.id.clone();
            async move {
                let list = client.list_local_tests().await.map_err(|e| e.to_string())?;
                match list.into_iter().find(|t| t.id == id) {
                    Some(t) if t.phase == "interrupted" => Ok(Some(false)),
                    Some(t) if t.partial && (t.phase == "passed" || t.phase == "failed") => {
                        Ok(Some(true))
                    }
                    other => Err(format!("agent-1 lists it as {other:?}")),
                }
            }
        })
        .await
        .expect("no test stays under way past its deadline");
    assert!(
        partial || unix_ms_now() >= deadline,
        "not interrupted before the deadline"
    );
}

/// The phase `client`'s agent holds test `id` in (its own record, not the
/// fleet's merged listing), if it holds it.
async fn phase_in(client: volley::api::ApiClient, id: String) -> Result<Option<String>, String> {
    let list = client.list_local_tests().await.map_err(|e| e.to_string())?;
    Ok(list.into_iter().find(|t| t.id == id).map(|t| t.phase))
}
