//! Three agents over real UDP on 127.0.0.1 with OS-chosen ports.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use volley::fleet::keys::MemberInfo;
use volley::fleet::membership::{FailureDetection, Membership, MembershipConfig, bind_udp};

/// Three agents over real UDP on 127.0.0.1, ports chosen by the OS,
/// seeding from the first. Real time, so generous deadlines.
#[tokio::test]
async fn three_agents_over_real_udp() {
    let failure = FailureDetection {
        phi: 8.0,
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(1),
        dead_grace: Duration::from_secs(60),
    };
    let mut agents = Vec::new();
    let mut seed: Option<SocketAddr> = None;
    for (index, name) in ["udp-a", "udp-b", "udp-c"].into_iter().enumerate() {
        let (transport, bound) = bind_udp("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        assert_ne!(bound.port(), 0);
        let generation = 1_000 + index as u64;
        let mut config = MembershipConfig::new(
            name,
            generation,
            "volley-udp",
            "127.0.0.1:0".parse().expect("addr"),
            bound,
        );
        config.gossip_interval = Duration::from_millis(100);
        config.failure = failure.clone();
        config.seeds = seed.iter().map(ToString::to_string).collect();
        let api = SocketAddr::new(bound.ip(), 9000 + index as u16);
        let mut info = MemberInfo::new(name, generation, bound, api, api, 1.0 + index as f64);
        info.labels.insert("zone", "loopback").expect("label");
        let membership = Membership::start(config, &info, &transport)
            .await
            .expect("start");
        seed.get_or_insert(bound);
        agents.push(membership);
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    for agent in &agents {
        loop {
            let members = agent.members().await;
            let usable: Vec<(&str, f64)> = members
                .iter()
                .filter_map(|m| m.usable().map(|info| (m.node_id.as_str(), info.capacity)))
                .collect();
            if usable == [("udp-a", 1.0), ("udp-b", 2.0), ("udp-c", 3.0)]
                && members.iter().all(|m| {
                    m.info
                        .as_ref()
                        .is_ok_and(|i| i.labels.get("zone") == Some("loopback"))
                })
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} sees {members:?}",
                agent.self_id()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let stopped = agents.pop().expect("three agents");
    stopped.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    for agent in &agents {
        loop {
            let dead = agent.dead().await;
            let ids: Vec<String> = agent
                .members()
                .await
                .into_iter()
                .map(|m| m.node_id)
                .collect();
            if dead == ["udp-c"] && ids == ["udp-a", "udp-b"] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: udp-c not declared dead; dead {dead:?}, members {ids:?}",
                agent.self_id()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for agent in agents {
        agent.shutdown().await;
    }
}
