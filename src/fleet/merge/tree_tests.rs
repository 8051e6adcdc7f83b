//! Tree merging against the flat merge: the same agents' intervals,
//! merged on the way up a tree and ingested as combined intervals, give
//! the same fleet totals, breakdown, live view, chart points and notes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::combine::{Combined, through_tree};
use super::tree::Layout;
use super::*;
use crate::metrics::{SeriesKey, TagSet, Trend};

const T0: u64 = 1_700_000_000_000;

fn key(metric: Metric, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, TagSet::from_pairs(tags.iter().copied()))
}

/// Agent `a`'s interval `seq`: traffic that differs by agent and second,
/// two scenarios, two statuses, gauges.
fn interval(a: usize, seq: u64, rng: &mut fastrand::Rng) -> Snapshot {
    let mut series: Vec<(SeriesKey, Value)> = Vec::new();
    for (scenario, status) in [("main", "200"), ("main", "503"), ("bg", "200")] {
        let n = rng.usize(0..40);
        let mut t = Trend::new();
        for _ in 0..n {
            t.record(Duration::from_micros(rng.u64(300..900_000)));
        }
        let tags = [("scenario", scenario), ("status", status)];
        series.push((key(Metric::HttpReqs, &tags), Value::Counter(n as f64)));
        let trues = if status == "503" { n as u64 } else { 0 };
        series.push((
            key(Metric::HttpReqFailed, &tags),
            Value::Rate {
                trues,
                total: n as u64,
            },
        ));
        series.push((
            key(Metric::HttpReqDuration, &tags),
            Value::Trend(Box::new(t)),
        ));
        series.push((
            key(Metric::DataReceived, &tags),
            Value::Counter((n * 1000) as f64),
        ));
    }
    for scenario in ["main", "bg"] {
        series.push((
            key(Metric::Iterations, &[("scenario", scenario)]),
            Value::Counter(rng.u32(0..30) as f64),
        ));
    }
    series.push((key(Metric::Vus, &[]), Value::gauge_of((a % 7 + 1) as f64)));
    series.push((key(Metric::VusMax, &[]), Value::gauge_of(10.0)));
    series.sort_by(|x, y| x.0.cmp(&y.0));
    Snapshot {
        // Agents' clocks differ by a few ms.
        start_unix_ms: T0 + seq * 1000 + (a % 5) as u64,
        duration: Duration::from_millis(1000 - (a % 3) as u64),
        series,
    }
}

fn fleet_of(n: usize) -> Vec<(String, BTreeMap<String, String>)> {
    (0..n)
        .map(|i| {
            let region = ["eu", "us", "ap"][i % 3].to_owned();
            (
                format!("agent-{i:04}"),
                BTreeMap::from([("region".to_owned(), region)]),
            )
        })
        .collect()
}

fn assert_same(flat: &FleetResults, tree: &FleetResults) {
    assert_eq!(flat.fleet(), tree.fleet(), "fleet totals");
    assert_eq!(flat.breakdown(&["region"]), tree.breakdown(&["region"]));
    assert_eq!(flat.live(5), tree.live(5));
    assert_eq!(flat.recent(), tree.recent());
    assert_eq!(flat.notes(), tree.notes());
    assert_eq!(flat.elapsed(), tree.elapsed());
    let percentile =
        |r: &FleetResults, q| match r.fleet().metric_value(Metric::HttpReqDuration, &[]) {
            Some(Value::Trend(t)) => crate::metrics::aggregate::trend_percentile_ms(&t, q),
            _ => f64::NAN,
        };
    for q in [50.0, 90.0, 95.0, 99.0, 99.9] {
        assert_eq!(percentile(flat, q), percentile(tree, q));
    }
    for id in flat.agent_ids() {
        let (f, t) = (flat.agent(id).expect("flat"), tree.agent(id).expect("tree"));
        for metric in [
            Metric::HttpReqs,
            Metric::HttpReqFailed,
            Metric::HttpReqDuration,
            Metric::Vus,
        ] {
            assert_eq!(
                f.metric_value(metric, &[]),
                t.metric_value(metric, &[]),
                "{id} {metric:?}"
            );
        }
        for s in ["main", "bg"] {
            let filter = [("scenario".to_owned(), s.to_owned())];
            assert_eq!(
                f.metric_value(Metric::Iterations, &filter),
                t.metric_value(Metric::Iterations, &filter)
            );
        }
    }
}

/// A few hundred agents, some intervals lost: tree (fan-out 8: depth 2)
/// and flat agree on everything the summary and the live API show.
#[test]
fn tree_and_flat_merges_give_the_same_results() {
    let agents = fleet_of(300);
    let layout = Layout::new(agents.iter().map(|(id, _)| id.clone()), 8);
    assert_eq!(agents.iter().map(|(a, _)| layout.depth(a)).max(), Some(2));
    let mut flat = FleetResults::new(&agents).with_outputs(OutputGrouping::Fleet);
    let mut tree = FleetResults::new(&agents).with_outputs(OutputGrouping::Fleet);
    assert!(tree.tree_exact());
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut flat_out, mut tree_out) = (Vec::new(), Vec::new());
    for seq in 0..6u64 {
        let mut this: Vec<(String, Snapshot)> = Vec::new();
        for (i, (id, _)) in agents.iter().enumerate() {
            // Agent 17 loses interval 2; a relay (agent 3) loses interval 4.
            if (i == 17 && seq == 2) || (i == 3 && seq == 4) {
                continue;
            }
            this.push((id.clone(), interval(i, seq, &mut rng)));
        }
        for (id, s) in &this {
            let bytes = s.encode();
            let back = Snapshot::decode(&bytes).expect("decodes");
            assert_eq!(flat.ingest(id, seq, back), Ingest::Applied);
        }
        let arriving = through_tree(&layout, seq, this).expect("merges");
        assert!(arriving.len() <= 8);
        for c in arriving {
            // Through the wire form, as a relay sends it.
            let (payload, lengths) = c.encode();
            let back = Combined::decode(seq, &c.agents(), &lengths, &payload).expect("decodes");
            assert_eq!(back, c);
            assert_eq!(tree.ingest_merged(back), Ingest::Applied);
        }
        flat_out.extend(flat.take_sealed());
        tree_out.extend(tree.take_sealed());
    }
    flat.agent_finished("agent-0017", 6);
    tree.agent_finished("agent-0017", 6);
    flat.finish();
    tree.finish();
    flat_out.extend(flat.take_sealed());
    tree_out.extend(tree.take_sealed());
    assert_eq!(flat_out, tree_out, "the outputs get the same intervals");
    assert_same(&flat, &tree);
    assert!(
        flat.notes()
            .iter()
            .any(|n| n.contains("agent-0017: 1 of 6")),
        "{:?}",
        flat.notes()
    );
}

#[test]
fn a_combined_interval_applies_once_and_refuses_overlap() {
    let agents = fleet_of(3);
    let mut results = FleetResults::new(&agents);
    let mut rng = fastrand::Rng::with_seed(3);
    let a = |i: usize, rng: &mut fastrand::Rng| {
        Combined::of(&agents[i].0, 0, interval(i, 0, rng)).expect("valid")
    };
    // Agent 1's interval went straight to the origin (its relay was late).
    let direct = interval(1, 0, &mut rng);
    assert_eq!(results.ingest(&agents[1].0, 0, direct), Ingest::Applied);
    let mut both = a(0, &mut rng);
    both.absorb(a(1, &mut rng)).expect("different agents");
    assert_eq!(
        results.ingest_merged(both.clone()),
        Ingest::Overlap(vec![agents[1].0.clone()])
    );
    assert!(
        results
            .fleet()
            .metric_value(Metric::Iterations, &[])
            .is_some()
    );
    let before = results.fleet().clone();
    // Split up, the new part applies and the old one is a duplicate.
    let only0 = a(0, &mut rng);
    assert_eq!(results.ingest_merged(only0.clone()), Ingest::Applied);
    assert_eq!(results.ingest_merged(only0), Ingest::Duplicate);
    assert_ne!(&before, results.fleet());
    // Twice the same agent, or a stranger: refused whole.
    let mut twice = a(2, &mut rng);
    assert!(twice.absorb(a(2, &mut rng)).is_err());
    let stranger = Combined::of("nobody", 0, interval(9, 0, &mut rng)).expect("valid");
    assert_eq!(results.ingest_merged(stranger), Ingest::UnknownAgent);
}

#[test]
fn per_agent_outputs_are_not_tree_exact() {
    let agents = fleet_of(2);
    let by_agent = FleetResults::new(&agents).with_outputs(OutputGrouping::Agent);
    assert!(!by_agent.tree_exact());
    assert!(FleetResults::new(&agents).tree_exact());
}

#[test]
fn a_malformed_combined_payload_is_an_error() {
    let mut rng = fastrand::Rng::with_seed(5);
    let c = Combined::of("a", 0, interval(0, 0, &mut rng)).expect("valid");
    let (payload, lengths) = c.encode();
    let agents = c.agents();
    assert!(Combined::decode(0, &agents, &[lengths[0] + 10_000_000], &payload).is_err());
    assert!(Combined::decode(0, &[], &[], &payload).is_err());
    assert!(Combined::decode(0, &agents, &lengths, &payload[..payload.len() - 3]).is_err());
}
