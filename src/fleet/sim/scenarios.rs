//! The faults the README promises a fleet survives, each run on the real
//! coordination code in the simulator at 3, 50 and 1000 agents. Every test
//! prints its seed; `VOLLEY_SIM_SEED=N` replays it.

use std::time::Duration;

use super::*;
use crate::fleet::store::TestPhase;

/// `rate` iterations per second fleet-wide for `secs`, each a 10 ms sleep.
fn plan(rate: u64, secs: u64, vus: u64) -> String {
    format!(
        "scenarios:\n  load:\n    executor: constant-arrival-rate\n    rate: {rate}\n    \
         timeUnit: 1s\n    duration: {secs}s\n    preAllocatedVUs: {vus}\n    maxVUs: {vus}\n\
         flow:\n  - sleep: 10ms\n"
    )
}

/// Runs a test of `rate`/s for `secs` on a fault-free fleet of `agents`:
/// every iteration the single-node schedule has is counted, once.
async fn exact_on(name: &str, agents: usize, rate: u64, secs: u64) {
    let seed = seed(name);
    let fleet = Fleet::start(seed, Options::new(agents));
    let id = submitted(&fleet, seed, 0, &plan(rate, secs, rate), agents).await;
    let (by, sealed) = sealed_within(&fleet, seed, &id, Duration::from_secs(secs + 30)).await;
    assert_eq!(by, 0, "seed {seed}: the origin seals");
    let snap = fleet.snapshot(0, &id).expect("the origin knows its test");
    assert_eq!(
        snap.meta.phase,
        TestPhase::Passed,
        "seed {seed}: {:?}",
        snap.incidents
    );
    assert_eq!(
        counter(&sealed, "iterations"),
        (rate * secs) as f64,
        "seed {seed}: the fleet runs the single-node schedule exactly ({:?})",
        snap.incidents
    );
    assert_eq!(snap.agents.len(), agents, "seed {seed}");
    let not_done: Vec<_> = snap.agents.iter().filter(|a| a.state != "done").collect();
    assert!(not_done.is_empty(), "seed {seed}: {not_done:?}");
    assert!(
        fleet.loaded().is_empty(),
        "seed {seed}: no load after the seal"
    );
}

#[tokio::test(start_paused = true)]
async fn three_agents_run_the_single_node_schedule_exactly() {
    exact_on("three_agents", 3, 90, 4).await;
}

#[tokio::test(start_paused = true)]
async fn fifty_agents_merge_through_relays_exactly() {
    // 49 agents besides the origin: more than 32, so relays merge on the way.
    exact_on("fifty_agents", 50, 200, 3).await;
}

#[tokio::test(start_paused = true)]
async fn a_thousand_agents_merge_through_relays_exactly() {
    exact_on("thousand_agents", 1000, 2000, 2).await;
}

/// Submits `plan` through agent `via`; the test's id (a refusal fails the
/// scenario, with its seed).
async fn submitted(fleet: &Fleet, seed: u64, via: usize, plan: &str, min_agents: usize) -> String {
    fleet
        .submit(via, plan, min_agents)
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: submit refused: {e}"))
}

/// The sealed result of test `id` and who sealed it, within `within` of
/// simulated time (a test never sealed fails the scenario).
async fn sealed_within(fleet: &Fleet, seed: u64, id: &str, within: Duration) -> (usize, Sealed) {
    fleet
        .sealed(id, within)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: test {id} never sealed within {within:?}"))
}

/// Aborts test `id` through agent `via` (a refusal fails the scenario).
async fn abort_through(fleet: &Fleet, seed: u64, via: usize, id: &str) {
    fleet.agents[via]
        .service
        .abort(id)
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: abort refused: {e}"));
}

/// Waits `d` of simulated time.
async fn after(d: Duration) {
    tokio::time::sleep(d).await;
}

/// The lead before a submitted test starts, and a little more.
const STARTED: Duration = Duration::from_millis(1500);

/// Runs `rate`/s for `secs` on `agents`, kills agent `victim` `at` into the
/// test, and checks that the survivors take its share over: the summary
/// is sealed by the origin, names the lost agent and a new revision, and
/// misses at most the victim's share of the iterations between its death
/// and the reallocation (detection, a tick, the reallocation's lead).
async fn a_lost_participant(name: &str, agents: usize, rate: u64, secs: u64) {
    let seed = seed(name);
    let victim = agents / 2;
    let mut fleet = Fleet::start(seed, Options::new(agents));
    let id = submitted(&fleet, seed, 0, &plan(rate, secs, rate), agents).await;
    after(STARTED + Duration::from_secs(1)).await;
    fleet.kill(victim).await;
    let (by, sealed) = sealed_within(&fleet, seed, &id, Duration::from_secs(secs + 30)).await;
    assert_eq!(by, 0, "seed {seed}");
    let snap = fleet.snapshot(0, &id).expect("the origin knows its test");
    let lost = agent_id(victim);
    assert!(
        snap.incidents
            .iter()
            .any(|i| i.contains(&lost) && i.contains("take over")),
        "seed {seed}: {:?}",
        snap.incidents
    );
    assert!(
        snap.revision >= 2,
        "seed {seed}: revision {}",
        snap.revision
    );
    let planned = (rate * secs) as f64;
    let iterations = counter(&sealed, "iterations");
    // The victim's share for the ~2 s from its death to the reallocation.
    let gap = (rate as f64 / agents as f64) * 2.5 + 2.0;
    assert!(
        iterations <= planned && iterations >= planned - gap,
        "seed {seed}: {iterations} of {planned} iterations (gap allowed {gap})"
    );
    assert!(
        fleet.loaded().is_empty(),
        "seed {seed}: no load after the seal"
    );
}

/// A survivor cut off from the origin just when the reallocation goes out
/// gets it again once the link heals: the lost agent's share is run, not
/// left undone by a survivor still running its old share.
#[tokio::test(start_paused = true)]
async fn a_survivor_that_misses_the_reallocation_gets_it_once_the_link_heals() {
    let seed = seed("realloc_heals");
    let (agents, rate, secs) = (3, 60, 8);
    let mut fleet = Fleet::start(seed, Options::new(agents));
    let id = submitted(&fleet, seed, 0, &plan(rate, secs, rate), agents).await;
    after(STARTED + Duration::from_secs(1)).await;
    fleet.kill(2).await;
    // Detection takes 1 s and the origin looks every 250 ms: the
    // reallocation goes out 1 to 1.25 s after the death, inside this cut,
    // which is shorter than detection (a001 is not lost).
    after(Duration::from_millis(700)).await;
    fleet.partition(0, 1);
    after(Duration::from_millis(700)).await;
    fleet.heal(0, 1);
    let (_, sealed) = sealed_within(&fleet, seed, &id, Duration::from_secs(secs + 30)).await;
    let snap = fleet.snapshot(0, &id).expect("the origin knows its test");
    assert_eq!(snap.revision, 2, "seed {seed}: {:?}", snap.incidents);
    let planned = (rate * secs) as f64;
    let iterations = counter(&sealed, "iterations");
    // The victim's share from its death to the reallocation (as in
    // `a_lost_participant`), and a001's half of it for the second more
    // until the reallocation reaches it again.
    let gap = (rate as f64 / agents as f64) * 3.5 + 2.0;
    assert!(
        iterations <= planned && iterations >= planned - gap,
        "seed {seed}: {iterations} of {planned} iterations (gap allowed {gap}; {:?})",
        snap.incidents
    );
}

#[tokio::test(start_paused = true)]
async fn three_agents_take_over_a_lost_participants_share() {
    a_lost_participant("lost_participant_3", 3, 60, 6).await;
}

#[tokio::test(start_paused = true)]
async fn fifty_agents_take_over_a_lost_participants_share() {
    a_lost_participant("lost_participant_50", 50, 200, 5).await;
}

#[tokio::test(start_paused = true)]
async fn a_thousand_agents_take_over_a_lost_relays_share() {
    // Agent 500 relays for its subtree: its children go one level up.
    a_lost_participant("lost_relay_1000", 1000, 2000, 4).await;
}

/// `iterations` shared by `vus` VUs, each a 100 ms sleep.
fn shared(vus: u64, iterations: u64) -> String {
    format!(
        "scenarios:\n  load:\n    executor: shared-iterations\n    vus: {vus}\n    \
         iterations: {iterations}\n    maxDuration: 60s\nflow:\n  - sleep: 100ms\n"
    )
}

/// Kills the origin of a fleet of `agents` running `iterations` shared
/// iterations, `at` into the test: the lowest live agent adopts the test
/// and its summary counts every iteration once, the origin's own included
/// (its intervals were kept by its successor as they were produced; what
/// it ran after the last one kept is run again).
async fn a_dead_origin(name: &str, agents: usize, iterations: u64) -> TestSnapshot {
    let seed = seed(name);
    let mut options = Options::new(agents);
    options.stores = true;
    let mut fleet = Fleet::start(seed, options);
    let vus = 2 * agents as u64;
    let id = submitted(&fleet, seed, 0, &shared(vus, iterations), agents).await;
    after(STARTED + Duration::from_secs(2)).await;
    fleet.kill(0).await;
    let (by, sealed) = sealed_within(&fleet, seed, &id, Duration::from_secs(60)).await;
    assert_eq!(
        by, 1,
        "seed {seed}: a001, the lowest live agent, adopts the test"
    );
    let snap = fleet
        .snapshot(1, &id)
        .expect("the successor knows the test");
    assert!(
        snap.incidents.iter().any(|i| i.contains("a000")),
        "seed {seed}: {:?}",
        snap.incidents
    );
    assert_eq!(
        counter(&sealed, "iterations"),
        iterations as f64,
        "seed {seed}: {:?}",
        snap.incidents
    );
    assert!(
        fleet.loaded().is_empty(),
        "seed {seed}: no load after the seal"
    );
    snap
}

#[tokio::test(start_paused = true)]
async fn a_dead_origins_own_share_is_in_its_successors_summary() {
    let snap = a_dead_origin("dead_origin_5", 5, 600).await;
    assert!(!snap.meta.partial, "a majority was live: a full takeover");
}

#[tokio::test(start_paused = true)]
async fn the_survivor_of_a_two_agent_fleet_seals_a_partial_summary() {
    let snap = a_dead_origin("dead_origin_2", 2, 200).await;
    assert!(
        snap.meta.partial,
        "one of two: no majority to prove the origin dead"
    );
    assert!(
        snap.incidents
            .iter()
            .any(|i| i.starts_with("partial summary")),
        "{:?}",
        snap.incidents
    );
}

#[tokio::test(start_paused = true)]
async fn fifty_agents_rebuild_a_dead_origins_test() {
    a_dead_origin("dead_origin_50", 50, 6000).await;
}

#[tokio::test(start_paused = true)]
async fn agents_that_finished_before_the_origin_died_are_in_the_rebuilt_summary() {
    let seed = seed("finished_first");
    let mut options = Options::new(3);
    options.stores = true;
    let mut fleet = Fleet::start(seed, options);
    // `quick` is over in a second on every agent; the one VU of `long`
    // keeps one agent busy: make that agent the origin.
    let plan = "scenarios:\n  quick:\n    executor: shared-iterations\n    vus: 3\n    \
                iterations: 30\n    maxDuration: 10s\n    flow:\n      - sleep: 50ms\n  long:\n    \
                executor: constant-vus\n    vus: 1\n    duration: 8s\n    flow:\n      \
                - sleep: 100ms\nthresholds:\n  'iterations{scenario:quick}': ['count==30']\n";
    let weights: Vec<(String, f64)> = (0..3).map(|i| (agent_id(i), 1.0)).collect();
    let allocation = crate::fleet::allocation::Allocation::new(1, &weights).expect("valid");
    let busy = (0..3)
        .find(|i| {
            allocation
                .tuple_for(&agent_id(*i))
                .ok()
                .flatten()
                .is_some_and(|t| t.scale(1) == 1)
        })
        .expect("one agent runs the one VU");
    let id = submitted(&fleet, seed, busy, plan, 3).await;
    after(STARTED + Duration::from_secs(3)).await;
    assert_eq!(
        fleet.loaded(),
        [agent_id(busy)],
        "seed {seed}: only the origin still runs"
    );
    fleet.kill(busy).await;
    let successor = usize::from(busy == 0);
    let (by, sealed) = sealed_within(&fleet, seed, &id, Duration::from_secs(40)).await;
    assert_eq!(
        by, successor,
        "seed {seed}: the lowest live agent adopts the test"
    );
    let quick = sealed
        .summary
        .metrics
        .iter()
        .find(|m| m.name == "iterations" && m.tags == [("scenario".into(), "quick".into())])
        .map(|m| m.values.clone());
    assert!(
        matches!(quick, Some(crate::metrics::MetricValues::Counter { count, .. }) if count == 30.0),
        "seed {seed}: every quick iteration, the finished agents' included: {quick:?} ({:?})",
        sealed.summary.notes
    );
}

#[tokio::test(start_paused = true)]
async fn a_participant_cut_off_from_everyone_stops_its_own_load() {
    let seed = seed("cut_off");
    let mut options = Options::new(4);
    options.orphan_timeout = Duration::from_secs(3);
    let fleet = Fleet::start(seed, options);
    let id = submitted(&fleet, seed, 0, &plan(40, 20, 40), 4).await;
    after(STARTED + Duration::from_secs(2)).await;
    for other in [0, 1, 2] {
        fleet.partition(3, other);
    }
    // Detection (1 s), the orphan timeout (3 s), and some slack: long
    // before the test's 20 s end, the cut-off agent runs nothing.
    after(Duration::from_secs(6)).await;
    assert!(
        !fleet.loaded().contains(&agent_id(3)),
        "seed {seed}: a003 still runs load it can deliver to no one"
    );
    let snap = fleet.snapshot(0, &id).expect("the origin runs the test");
    assert!(
        snap.incidents.iter().any(|i| i.contains("a003")),
        "seed {seed}: {:?}",
        snap.incidents
    );
    let (by, _) = sealed_within(&fleet, seed, &id, Duration::from_secs(40)).await;
    assert_eq!(
        by, 0,
        "seed {seed}: the origin seals, a003 never coordinates"
    );
    assert!(fleet.loaded().is_empty(), "seed {seed}");
}

#[tokio::test(start_paused = true)]
async fn a_short_partition_that_heals_loses_nothing() {
    let seed = seed("healed");
    let fleet = Fleet::start(seed, Options::new(3));
    let id = submitted(&fleet, seed, 0, &plan(60, 5, 60), 3).await;
    after(STARTED + Duration::from_secs(1)).await;
    // Shorter than failure detection: nobody is declared lost, the
    // intervals held back are delivered once the link is back.
    fleet.partition(0, 2);
    after(Duration::from_millis(600)).await;
    fleet.heal(0, 2);
    let (_, sealed) = sealed_within(&fleet, seed, &id, Duration::from_secs(40)).await;
    let snap = fleet.snapshot(0, &id).expect("the origin knows its test");
    assert_eq!(snap.revision, 1, "seed {seed}: {:?}", snap.incidents);
    assert_eq!(counter(&sealed, "iterations"), 300.0, "seed {seed}");
}

#[tokio::test(start_paused = true)]
async fn an_abort_through_any_agent_stops_the_whole_fleet() {
    let seed = seed("abort");
    let fleet = Fleet::start(seed, Options::new(5));
    let id = submitted(&fleet, seed, 0, &plan(50, 30, 50), 5).await;
    after(STARTED + Duration::from_secs(2)).await;
    abort_through(&fleet, seed, 3, &id).await;
    sealed_within(&fleet, seed, &id, Duration::from_secs(10)).await;
    let snap = fleet.snapshot(0, &id).expect("the origin knows its test");
    assert_eq!(snap.meta.phase, TestPhase::Aborted, "seed {seed}");
    assert!(
        fleet.loaded().is_empty(),
        "seed {seed}: load after the abort"
    );
    // A second abort is told the test is over.
    let again = fleet.agents[1].service.abort(&id).await;
    assert!(
        matches!(again, Err(Refusal::AlreadyOver { aborted: true, .. })),
        "seed {seed}: {again:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_abort_that_misses_a_cut_off_agent_reaches_it_once_the_link_heals() {
    let seed = seed("abort_heals");
    let fleet = Fleet::start(seed, Options::new(5));
    let id = submitted(&fleet, seed, 0, &plan(50, 30, 50), 5).await;
    after(STARTED + Duration::from_secs(2)).await;
    // Cut shorter than failure detection: a003 is not lost, it only misses
    // the abort, and then delivers its intervals again as if nothing
    // happened.
    fleet.partition(0, 3);
    abort_through(&fleet, seed, 1, &id).await;
    after(Duration::from_millis(600)).await;
    fleet.heal(0, 3);
    after(Duration::from_secs(3)).await;
    assert!(
        fleet.loaded().is_empty(),
        "seed {seed}: load 3 s after the link healed, of a test aborted 27 s before its end: {:?}",
        fleet.loaded()
    );
    sealed_within(&fleet, seed, &id, Duration::from_secs(10)).await;
    let snap = fleet.snapshot(0, &id).expect("the origin knows its test");
    assert_eq!(snap.meta.phase, TestPhase::Aborted, "seed {seed}");
    let a003 = snap.agents.iter().find(|a| a.agent == agent_id(3));
    assert!(
        a003.is_some_and(|a| a.state == "done"),
        "seed {seed}: a003 took part and finished: {a003:?} ({:?})",
        snap.incidents
    );
}

#[tokio::test(start_paused = true)]
async fn lossy_jittery_links_still_give_exact_results() {
    let seed = seed("lossy");
    let mut options = Options::new(6);
    options.link = LinkModel {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(30),
        loss: 0.02,
    };
    let fleet = Fleet::start(seed, options);
    // One slow direction: a005's messages to the origin take 150 ms more.
    // (Without loss: a retransmission there takes 510 ms, longer than a
    // commit may take before the start.)
    fleet.set_link(
        5,
        0,
        LinkModel {
            delay: Duration::from_millis(170),
            jitter: Duration::from_millis(30),
            loss: 0.0,
        },
    );
    // A lost Prepare leaves its agent out (the others run its share): a
    // test that needs all six would rightly not start.
    let id = submitted(&fleet, seed, 0, &plan(120, 5, 120), 1).await;
    let Some((_, sealed)) = fleet.sealed(&id, Duration::from_secs(60)).await else {
        let snap = fleet
            .snapshot(0, &id)
            .map(|s| (s.meta.phase, s.incidents, s.agents));
        panic!("seed {seed}: never sealed: {snap:?}");
    };
    let snap = fleet.snapshot(0, &id).expect("the origin knows its test");
    assert_eq!(
        counter(&sealed, "iterations"),
        600.0,
        "seed {seed}: {:?}",
        snap.incidents
    );
}

#[tokio::test(start_paused = true)]
async fn a_clock_beyond_the_tolerance_refuses_the_submit_and_one_within_it_starts_together() {
    let seed = seed("skew");
    let mut options = Options::new(3);
    options.trust_rounds = true;
    options.link = LinkModel {
        delay: Duration::from_millis(5),
        ..LinkModel::default()
    };
    options.skews_ms = vec![(1, 200), (2, 30)];
    let fleet = Fleet::start(seed, options);
    // The first round of clock measurements.
    after(Duration::from_secs(1)).await;
    let refused = fleet.submit(0, &plan(30, 2, 30), 1).await;
    match refused {
        Err(Refusal::Unprocessable(why)) => {
            assert!(
                why.contains("a001") && !why.contains("a002"),
                "seed {seed}: {why}"
            );
        }
        other => panic!("seed {seed}: a 200 ms skew must refuse the submit: {other:?}"),
    }
    // Without the agent 200 ms off (a001, in eu), a000 and a002 (30 ms
    // off: within the tolerance) may run a test.
    let tolerable = {
        let selector = [("region".to_owned(), "us".to_owned())].into();
        let want = Want {
            selector: &selector,
            match_expressions: &[],
            min_agents: 1,
        };
        fleet.agents[0].service.select(&want).await
    };
    assert!(
        matches!(&tolerable, Ok(c) if c.len() == 2),
        "seed {seed}: a000 and a002 are in us: {tolerable:?}"
    );
}
