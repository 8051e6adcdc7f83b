//! Agents that hold no CA key, as the chart's `tls.mode: certManager` runs them: each real
//! `volley agent` process starts from a certificate, key and CA certificate issued for it
//! (made with rcgen in `tests/fleet/given_certs.rs`, shaped as cert-manager's CSI driver
//! issues them) plus the shared gossip secret. The agents form a fleet, prove their node ids
//! to each other over mutual TLS and run a test together.

mod fleet;

use std::time::Duration;

use fleet::{Fleet, FleetOptions, plans, target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_issued_certificates_and_no_ca_key_form_a_fleet_and_run_a_test() {
    let target = target().await;
    let opts = FleetOptions {
        given_certs: true,
        ..FleetOptions::default()
    };
    let fleet = Fleet::start(2, opts).await.expect("the fleet forms");
    for (i, agent) in fleet.agents.iter().enumerate() {
        let log = agent.log_text();
        assert!(!log.contains("VOLLEY_CA_KEY"), "agent {i}: {log}");
    }
    // Each agent verified the other's certificate names the node id it gossips.
    let members = fleet
        .wait_for(
            "each agent verified the other over mutual TLS",
            Duration::from_secs(20),
            || async {
                let mut all = Vec::new();
                for i in 0..fleet.len() {
                    all.push(fleet.client(i).members().await.map_err(|e| e.to_string())?);
                }
                let verified = all
                    .iter()
                    .all(|ms| ms.iter().all(|m| m.is_self || m.identity == "verified"));
                if verified {
                    Ok(Some(all))
                } else {
                    Err(format!("{all:?}"))
                }
            },
        )
        .await
        .expect("identities verified");
    for (i, ms) in members.iter().enumerate() {
        let mut ids: Vec<&str> = ms.iter().map(|m| m.node_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["agent-0", "agent-1"], "agent {i}'s view");
    }

    let plan = plans::constant_vus(
        target.addr,
        4,
        Duration::from_secs(1),
        Duration::from_millis(50),
    );
    let request = plans::submit(plan);
    let accepted = fleet
        .client(1)
        .submit(&request)
        .await
        .expect("submit accepted");
    let mut agents: Vec<&str> = accepted
        .allocation
        .iter()
        .map(|a| a.agent.as_str())
        .collect();
    agents.sort_unstable();
    assert_eq!(agents, ["agent-0", "agent-1"], "both agents take part");
    let view = fleet
        .wait_summary(1, &accepted.id, Duration::from_secs(30))
        .await
        .expect("the test seals");
    assert!(view.passed, "{}", view.text);
    assert!(target.stats.requests() > 0, "the load reached the target");
}
