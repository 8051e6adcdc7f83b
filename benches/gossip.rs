//! Gossip convergence of a simulated Volley fleet in one process, over
//! chitchat's in-process `ChannelTransport` (every message serialised,
//! 65,507-byte MTU, 100-message socket queues that drop like UDP).
//!
//! Measures, with the default membership settings (500 ms rounds):
//! (a) time until every node's watched view holds every node, usable;
//! (b) time until every node sees a test announcement published by one node;
//! and the bytes and messages exchanged for each.
//!
//! `cargo bench --bench gossip [-- --nodes N] [--real-time]` (default 200
//! nodes). Every node seeds from the first three, as agents seed from a
//! headless Service.
//!
//! By default the fleet runs on paused tokio time: the clock only moves
//! when every node has finished its work, so the convergence times are
//! protocol times (gossip rounds, failure detection), unaffected by how
//! busy the machine is, and the wall time printed beside them is the cost
//! of simulating it. `--real-time` runs on the wall clock instead (a
//! multi-threaded runtime); on a loaded machine starved gossip loops then
//! look like dead nodes, which is worth seeing but not a stable number.
//! Each phase gives up after [`PHASE_LIMIT`] (of the clock in use).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use chitchat::transport::{ChannelTransport, Statistics};
use tokio::sync::watch;
use tokio::time::Instant;
use volley::fleet::keys::{Announcement, MemberInfo};
use volley::fleet::membership::{Member, Membership, MembershipConfig};

const DEFAULT_NODES: usize = 200;
const SEEDS: usize = 3;
const PHASE_LIMIT: Duration = Duration::from_secs(25);
const POLL: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("gossip bench: {message}");
            return ExitCode::from(2);
        }
    };
    let built = if options.real_time {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
    };
    let runtime = match built {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gossip bench: cannot build the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options.nodes)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gossip bench: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    /// Fleet size.
    nodes: usize,
    /// Wall clock instead of paused time.
    real_time: bool,
}

/// `--nodes N`, `--real-time`; other arguments (cargo passes `--bench`) are ignored.
fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        nodes: DEFAULT_NODES,
        real_time: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                let value = args.next().ok_or("--nodes needs a value")?;
                options.nodes = value
                    .parse()
                    .ok()
                    .filter(|n| (2..=60_000).contains(n))
                    .ok_or_else(|| {
                        format!("--nodes {value:?}: expected a count from 2 to 60000")
                    })?;
            }
            "--real-time" => options.real_time = true,
            _ => {}
        }
    }
    Ok(options)
}

/// Logical channel address of node `index` (not a socket).
fn addr(index: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(10, (index / 250) as u8, (index % 250) as u8 + 1, 1);
    SocketAddr::new(IpAddr::V4(ip), 7280)
}

fn node_id(index: usize) -> String {
    format!("load-node-{index:05}.perf.example")
}

async fn run(nodes: usize) -> Result<(), String> {
    let transport = ChannelTransport::with_mtu(65_507);
    let seeds: Vec<String> = (0..SEEDS.min(nodes)).map(|i| addr(i).to_string()).collect();
    let started = std::time::Instant::now();
    let mut fleet = Vec::with_capacity(nodes);
    for index in 0..nodes {
        let gossip = addr(index);
        let generation = 1_700_000_000_000_000_000 + index as u64;
        let mut config =
            MembershipConfig::new(node_id(index), generation, "volley-bench", gossip, gossip);
        config.seeds = seeds.clone();
        let api = SocketAddr::new(gossip.ip(), 7281);
        let quic = SocketAddr::new(gossip.ip(), 7282);
        let mut info = MemberInfo::new(node_id(index), generation, gossip, api, quic, 4.0);
        info.labels
            .insert("topology.kubernetes.io/zone", ["a", "b", "c"][index % 3])
            .map_err(|error| error.to_string())?;
        let membership = Membership::start(config, &info, &transport)
            .await
            .map_err(|error| format!("node {index} does not start: {error}"))?;
        fleet.push(membership);
    }
    let views: Vec<watch::Receiver<Vec<Member>>> = fleet.iter().map(Membership::watch).collect();
    println!(
        "{nodes} nodes started (wall {} ms)",
        started.elapsed().as_millis()
    );

    // (a) full membership.
    let phase = Instant::now();
    let wall = std::time::Instant::now();
    converge(&views, "full membership", |members| {
        members.len() == nodes && members.iter().all(|m| m.usable().is_some())
    })
    .await?;
    let membership_time = phase.elapsed();
    let membership_stats = transport.statistics();
    report(
        "(a) full membership",
        membership_time,
        wall.elapsed(),
        membership_stats,
        Statistics::default(),
    );

    // (b) an announcement from one node.
    let origin = nodes / 2;
    let announcement = Announcement {
        id: "bench-test-1".to_owned(),
        digest: "sha256:0123456789abcdef0123456789abcdef".to_owned(),
        origin: node_id(origin),
        start_ms: 1_700_000_060_000,
        rev: 1,
    };
    let phase = Instant::now();
    let wall = std::time::Instant::now();
    fleet[origin]
        .announce(Some(&announcement))
        .await
        .map_err(|error| error.to_string())?;
    let origin_id = node_id(origin);
    converge(&views, "the announcement", |members| {
        members.iter().any(|m| {
            m.node_id == origin_id
                && m.usable().and_then(|info| info.announcement.as_ref()) == Some(&announcement)
        })
    })
    .await?;
    report(
        "(b) announcement",
        phase.elapsed(),
        wall.elapsed(),
        transport.statistics(),
        membership_stats,
    );

    for membership in fleet {
        membership.shutdown().await;
    }
    Ok(())
}

/// Waits until every view satisfies `done`, or fails after [`PHASE_LIMIT`].
async fn converge(
    views: &[watch::Receiver<Vec<Member>>],
    what: &str,
    done: impl Fn(&[Member]) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut pending: Vec<usize> = (0..views.len()).collect();
    while !pending.is_empty() {
        pending.retain(|&index| !done(&views[index].borrow()));
        if Instant::now() > deadline {
            return Err(format!(
                "{what} not reached by {} of {} nodes within {PHASE_LIMIT:?}",
                pending.len(),
                views.len()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Prints one phase: `took` on the runtime's clock, `wall` spent simulating it.
fn report(what: &str, took: Duration, wall: Duration, now: Statistics, before: Statistics) {
    let bytes = now.num_bytes_total - before.num_bytes_total;
    let messages = now.num_messages_total - before.num_messages_total;
    println!(
        "{what}: {} ms (wall {} ms), {messages} messages, {bytes} bytes ({:.1} MB, {} B/message)",
        took.as_millis(),
        wall.as_millis(),
        bytes as f64 / 1e6,
        bytes.checked_div(messages).unwrap_or(0)
    );
}
