//! In-region vs cross-region on a fleet: agents in two regions run a plan
//! with `targets`; every agent tags its samples with its `region` label, the
//! origin merges the cells exactly (each cell's requests are what that
//! region's agents sent to that target), and a threshold names a cell.
//! Takes about 5 s (a fleet, a lead time, the seal).

mod fleet;

use std::time::Duration;

use fleet::{Fleet, FleetOptions, plans, results, target};

const SEALED_WITHIN: Duration = Duration::from_secs(30);
const ITERATIONS: u64 = 90;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_in_two_regions_merge_an_exact_matrix() {
    let us = target().await;
    let eu = target().await;
    let fleet = Fleet::start(
        3,
        FleetOptions {
            regions: vec!["us-east".into(), "eu-west".into(), "eu-west".into()],
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    let plan = format!(
        r#"targets:
  us-east: http://{}
  eu-west: http://{}
scenarios:
  shared:
    executor: shared-iterations
    vus: 6
    iterations: {ITERATIONS}
    maxDuration: 30s
flow:
  - get: /json
thresholds:
  "http_req_duration{{region:eu-west,target_region:us-east}}": ["p(95)<5000"]
"#,
        us.addr, eu.addr
    );
    let accepted = fleet
        .client(1)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    let view = fleet
        .wait_summary(1, &accepted.id, SEALED_WITHIN)
        .await
        .expect("the test seals");
    let summary = &view.summary;
    let by_agent = results::requests_by_agent(summary);
    let matrix: Vec<(String, String, u64)> = summary
        .matrix
        .iter()
        .map(|c| (c.region.clone(), c.target_region.clone(), c.requests))
        .collect();
    eprintln!("requests by agent {by_agent:?}; matrix {matrix:?}");
    assert_eq!(by_agent.len(), 3, "{by_agent:?}");
    // Each agent sends one request per target per iteration of its share.
    let us_agent = by_agent[0].1 / 2;
    let eu_agents = (by_agent[1].1 + by_agent[2].1) / 2;
    assert_eq!(us_agent + eu_agents, ITERATIONS, "{by_agent:?}");
    assert!(
        us_agent > 0 && eu_agents > 0,
        "both regions ran: {by_agent:?}"
    );
    assert_eq!(
        matrix,
        vec![
            ("eu-west".into(), "us-east".into(), eu_agents),
            ("eu-west".into(), "eu-west".into(), eu_agents),
            ("us-east".into(), "us-east".into(), us_agent),
            ("us-east".into(), "eu-west".into(), us_agent),
        ],
        "agent regions by name, targets in plan order"
    );
    assert_eq!(us.stats.requests(), ITERATIONS);
    assert_eq!(eu.stats.requests(), ITERATIONS);
    for c in &summary.matrix {
        assert_eq!(c.failed, 0, "{c:?}");
        assert!(
            c.p50_ms > 0.0 && c.p50_ms <= c.p95_ms && c.p95_ms <= c.p99_ms,
            "{c:?}"
        );
        let in_region = c.region == c.target_region;
        assert_eq!(c.p95_delta_ms == Some(0.0), in_region, "{c:?}");
    }
    // The thresholded cell is judged on the merged series.
    let t = &summary.thresholds[0];
    assert_eq!(
        t.key,
        "http_req_duration{region:eu-west,target_region:us-east}"
    );
    assert!(t.ok && t.observed.is_some_and(|v| v > 0.0), "{t:?}");
    let sub = summary
        .metric("http_req_duration{region:eu-west,target_region:us-east}")
        .expect("the cell's sub-metric is in the summary");
    match &sub.values {
        volley::metrics::MetricValues::Trend { count, .. } => assert_eq!(*count, eu_agents),
        other => panic!("a trend: {other:?}"),
    }
}
