//! The egress policy on a fleet of real `volley agent` processes on loopback: a plan aimed at the
//! cloud metadata address is refused at submit with 422 naming the request, the host and the
//! rule; an agent whose own policy refuses the plan's hosts refuses its share at prepare, and the
//! test that needs it does not start. About 5 s.

mod fleet;

use std::time::Duration;

use fleet::{Fleet, FleetOptions, plans, target};
use volley::api::SubmitRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_aimed_at_refused_destinations_never_start() {
    let target = target().await;
    let fleet = Fleet::start(
        2,
        FleetOptions {
            agent_env: vec![(1, "VOLLEY_EGRESS_DENY".into(), "127.0.0.0/8".into())],
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");

    // The accepting agent's default policy: 422 at once, naming what and why.
    let metadata = "vus: 1\niterations: 1\nflow:\n  - get: http://127.0.0.1:9/\n  - get: http://169.254.169.254/latest/meta-data/iam/\n";
    let refused = fleet
        .client(0)
        .submit(&plans::submit(metadata.into()))
        .await
        .expect_err("a plan aimed at the metadata service is refused");
    let text = refused.to_string();
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(422), "{text}");
    for part in [
        "flow[1].get",
        "host \"169.254.169.254\"",
        "denied by egress policy (default deny rule 169.254.0.0/16",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }

    // agent-0 allows loopback, agent-1 does not: agent-1 refuses its share at prepare, and a
    // test that needs both agents fails before its start.
    let both = SubmitRequest {
        min_agents: Some(2),
        ..plans::submit(plans::shared_iterations(target.addr, 2, 20, "/"))
    };
    let accepted = fleet
        .client(0)
        .submit(&both)
        .await
        .expect("agent-0's own policy allows loopback");
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
    let incident = failed
        .incidents
        .iter()
        .find(|i| i.contains("agent agent-1 refuses the test"))
        .unwrap_or_else(|| panic!("an incident names agent-1: {:?}", failed.incidents));
    assert!(
        incident.contains("denied by egress policy (deny rule 127.0.0.0/8)"),
        "{incident}"
    );
    assert_eq!(target.stats.requests(), 0, "no load from a refused test");
}
