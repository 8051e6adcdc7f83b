//! Agents over real UDP on 127.0.0.1 with OS-chosen ports: three of one
//! fleet find each other; a node with another fleet's key, and garbage, do
//! not get through.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use volley::fleet::keys::MemberInfo;
use volley::fleet::membership::{
    AuthUdpTransport, FailureDetection, GossipKey, Membership, MembershipConfig, Reject, bind_udp,
};

const FLEET_SECRET: &str = "the udp test fleet's shared secret";

fn key(secret: &str) -> GossipKey {
    GossipKey::derive(secret.as_bytes()).expect("long enough")
}

fn failure() -> FailureDetection {
    FailureDetection {
        phi: 8.0,
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(1),
        dead_grace: Duration::from_secs(60),
    }
}

/// Starts one node gossiping every 100 ms through an authenticating socket.
async fn node(
    name: &str,
    generation: u64,
    secret: &str,
    seed: Option<SocketAddr>,
    capacity: f64,
) -> (
    Membership,
    SocketAddr,
    std::sync::Arc<volley::fleet::membership::GossipStats>,
) {
    let (transport, bound): (AuthUdpTransport, SocketAddr) =
        bind_udp("127.0.0.1:0".parse().expect("addr"), key(secret))
            .await
            .expect("bind");
    let stats = transport.stats();
    let mut config = MembershipConfig::new(
        name,
        generation,
        "volley-udp",
        "127.0.0.1:0".parse().expect("addr"),
        bound,
    );
    config.gossip_interval = Duration::from_millis(100);
    config.failure = failure();
    config.seeds = seed.iter().map(ToString::to_string).collect();
    let info = MemberInfo::new(name, generation, bound, bound, bound, capacity);
    let membership = Membership::start(config, &info, &transport)
        .await
        .expect("start");
    (membership, bound, stats)
}

/// A node with another fleet's key and the same node id as a member (and a
/// newer generation, which would win the dedupe) cannot change what the
/// fleet sees; garbage is dropped too. Both are counted by reason.
#[tokio::test]
async fn another_fleets_key_and_garbage_never_reach_gossip() {
    let (a, a_addr, a_stats) = node("auth-a", 10, FLEET_SECRET, None, 1.0).await;
    let (b, _, _) = node("auth-b", 11, FLEET_SECRET, Some(a_addr), 2.0).await;
    let (impostor, _, impostor_stats) = node(
        "auth-b",
        99,
        "an outsider's secret, long enough",
        Some(a_addr),
        100.0,
    )
    .await;

    let garbage = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for i in 0..200u32 {
        garbage
            .send_to(&i.to_be_bytes().repeat(8), a_addr)
            .await
            .expect("send");
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let counts = a_stats.counts();
        let seen: Vec<(String, u64, f64)> = a
            .members()
            .await
            .into_iter()
            .filter_map(|m| {
                let capacity = m.usable()?.capacity;
                Some((m.node_id, m.generation, capacity))
            })
            .collect();
        let settled = seen == [("auth-a".into(), 10, 1.0), ("auth-b".into(), 11, 2.0)]
            && counts.rejected(Reject::Malformed) >= 200
            && counts.rejected(Reject::BadTag) >= 3
            && counts.accepted > 0;
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "auth-a sees {seen:?}, counts {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The fleet never learned of the outsider, so it never answered it.
    assert_eq!(impostor_stats.counts().accepted, 0);
    assert!(
        impostor
            .members()
            .await
            .iter()
            .all(|m| m.node_id == "auth-b" && m.is_self),
        "the outsider learned nothing of the fleet"
    );
    for m in [a, b, impostor] {
        m.shutdown().await;
    }
}

/// Three agents over real UDP on 127.0.0.1, ports chosen by the OS,
/// seeding from the first. Real time, so generous deadlines.
#[tokio::test]
async fn three_agents_over_real_udp() {
    let failure = failure();
    let mut agents = Vec::new();
    let mut seed: Option<SocketAddr> = None;
    for (index, name) in ["udp-a", "udp-b", "udp-c"].into_iter().enumerate() {
        let (transport, bound) = bind_udp("127.0.0.1:0".parse().expect("addr"), key(FLEET_SECRET))
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
