//! A small scenario language for membership tests: an [`Op`] list run by a
//! [`Simulator`] over chitchat's in-process `ChannelTransport` (every
//! message serialised, MTU enforced, links can be cut). Assertions poll the
//! observer's view until they hold or a deadline passes; nothing sleeps and
//! then asserts. Run under paused tokio time, timings are virtual and
//! deterministic: a busy test machine cannot make a node look dead.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chitchat::transport::ChannelTransport;
use chitchat::{
    ChitchatHandle, ChitchatId, FailureDetectorConfig, ProtocolVersion, spawn_chitchat,
};
use tokio::time::Instant;
use volley::fleet::keys::MemberInfo;
use volley::fleet::membership::{FailureDetection, Member, Membership, MembershipConfig};

/// Fleet name used by every simulated node.
pub const CLUSTER: &str = "volley-sim";
/// How often assertions look again.
const POLL: Duration = Duration::from_millis(20);

/// One step of a scenario.
pub enum Op {
    /// Starts an agent (next generation), seeded with the listed nodes.
    Start(&'static str, &'static [&'static str]),
    /// Like `Start`, with its initial info edited first.
    StartWith(&'static str, &'static [&'static str], fn(&mut MemberInfo)),
    /// Starts a bare chitchat node publishing exactly these key-values: a
    /// peer we do not control.
    StartRaw(&'static str, &'static [&'static str], Vec<(String, String)>),
    /// Sets one key on a raw node.
    SetRaw(&'static str, &'static str, String),
    /// Stops a node (gracefully: its gossip loop ends, peers hear silence).
    Stop(&'static str),
    /// Publishes an edit of an agent's info.
    Publish(&'static str, fn(&mut MemberInfo)),
    /// Cuts the link between two nodes, both ways.
    Cut(&'static str, &'static str),
    /// Restores a cut link.
    Heal(&'static str, &'static str),
    /// Polls until the check holds in the observer's view; fails after the timeout.
    Expect(&'static str, Check, Duration),
    /// Fails if the check stops holding at any poll during the duration.
    Hold(&'static str, Check, Duration),
}

/// Something about one observer's view.
pub enum Check {
    /// Exactly these node ids are live members.
    Members(&'static [&'static str]),
    /// Exactly these node ids are declared dead.
    Dead(&'static [&'static str]),
    /// The member shown for this node is the newest generation started.
    Newest(&'static str),
    /// A property of one member, with a description for failures.
    Member(&'static str, &'static str, fn(&Member) -> bool),
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Members(ids) => write!(f, "members == {ids:?}"),
            Check::Dead(ids) => write!(f, "dead == {ids:?}"),
            Check::Newest(node) => write!(f, "{node} shown at its newest generation"),
            Check::Member(node, what, _) => write!(f, "{node}: {what}"),
        }
    }
}

enum Running {
    Agent(Box<Membership>),
    Raw(ChitchatHandle),
}

/// Nodes on one in-process network.
pub struct Simulator {
    /// The shared in-process network.
    pub transport: ChannelTransport,
    gossip_interval: Duration,
    failure: FailureDetection,
    /// Logical address per node name (stable across restarts).
    addrs: BTreeMap<&'static str, SocketAddr>,
    /// Latest generation started per node name.
    generations: BTreeMap<&'static str, u64>,
    next_generation: u64,
    running: BTreeMap<&'static str, Running>,
}

impl Simulator {
    /// A network whose nodes gossip every `gossip_interval` with `failure` detection.
    pub fn new(gossip_interval: Duration, failure: FailureDetection) -> Self {
        Simulator {
            transport: ChannelTransport::with_mtu(65_507),
            gossip_interval,
            failure,
            addrs: BTreeMap::new(),
            generations: BTreeMap::new(),
            next_generation: 1,
            running: BTreeMap::new(),
        }
    }

    /// Fast settings for scenarios: 100 ms rounds, dead after about 1 s.
    pub fn fast() -> Self {
        Simulator::new(
            Duration::from_millis(100),
            FailureDetection {
                phi: 8.0,
                initial_interval: Duration::from_millis(100),
                max_interval: Duration::from_millis(500),
                dead_grace: Duration::from_secs(60),
            },
        )
    }

    /// Logical address of a node (these are channel addresses, not sockets).
    pub fn addr(&mut self, node: &'static str) -> SocketAddr {
        let next = self.addrs.len() as u8 + 1;
        *self
            .addrs
            .entry(node)
            .or_insert_with(|| SocketAddr::from(([10, 0, 0, next], 7280)))
    }

    /// The agent running as `node`.
    pub fn agent(&self, node: &str) -> &Membership {
        match self.running.get(node) {
            Some(Running::Agent(membership)) => membership,
            _ => panic!("{node} is not a running agent"),
        }
    }

    /// The configuration `node` starts with at `generation`.
    pub fn config(
        &mut self,
        node: &'static str,
        generation: u64,
        seeds: &[&'static str],
    ) -> MembershipConfig {
        let addr = self.addr(node);
        let mut config = MembershipConfig::new(node, generation, CLUSTER, addr, addr);
        config.seeds = seeds
            .iter()
            .map(|seed| self.addr(seed).to_string())
            .collect();
        config.gossip_interval = self.gossip_interval;
        config.failure = self.failure.clone();
        config
    }

    /// A valid initial info for `node` at `generation`.
    pub fn info(&mut self, node: &'static str, generation: u64) -> MemberInfo {
        let addr = self.addr(node);
        let api = SocketAddr::new(addr.ip(), 7281);
        let quic = SocketAddr::new(addr.ip(), 7282);
        MemberInfo::new(node, generation, addr, api, quic, 2.0)
    }

    fn take_generation(&mut self, node: &'static str) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.generations.insert(node, generation);
        generation
    }

    /// Runs the steps in order; returns how long each took (virtual time
    /// under paused tokio), so scenarios can measure convergence.
    pub async fn run(&mut self, ops: Vec<Op>) -> Vec<Duration> {
        let mut took = Vec::with_capacity(ops.len());
        for op in ops {
            let start = Instant::now();
            self.apply(op).await;
            took.push(start.elapsed());
        }
        took
    }

    async fn apply(&mut self, op: Op) {
        match op {
            Op::Start(node, seeds) => self.start(node, seeds, |_| {}).await,
            Op::StartWith(node, seeds, edit) => self.start(node, seeds, edit).await,
            Op::StartRaw(node, seeds, kv) => self.start_raw(node, seeds, kv).await,
            Op::SetRaw(node, key, value) => match self.running.get(node) {
                Some(Running::Raw(handle)) => {
                    handle
                        .with_chitchat(|chitchat| chitchat.self_node_state().set(key, &value))
                        .await
                }
                _ => panic!("{node} is not a raw node"),
            },
            Op::Stop(node) => match self.running.remove(node) {
                Some(Running::Agent(membership)) => membership.shutdown().await,
                Some(Running::Raw(handle)) => handle.shutdown().await.expect("raw node stops"),
                None => panic!("{node} is not running"),
            },
            Op::Publish(node, edit) => self.agent(node).publish(edit).await.expect("valid edit"),
            Op::Cut(a, b) => {
                let (a, b) = (self.addr(a), self.addr(b));
                self.transport.remove_link(a, b).await;
            }
            Op::Heal(a, b) => {
                let (a, b) = (self.addr(a), self.addr(b));
                self.transport.add_link(a, b).await;
            }
            Op::Expect(observer, check, within) => {
                let deadline = Instant::now() + within;
                loop {
                    let (holds, view) = self.check(observer, &check).await;
                    if holds {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{observer}: `{check:?}` not reached within {within:?}; view: {view}"
                    );
                    tokio::time::sleep(POLL).await;
                }
            }
            Op::Hold(observer, check, during) => {
                let end = Instant::now() + during;
                while Instant::now() < end {
                    let (holds, view) = self.check(observer, &check).await;
                    assert!(
                        holds,
                        "{observer}: `{check:?}` stopped holding; view: {view}"
                    );
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    async fn start(
        &mut self,
        node: &'static str,
        seeds: &[&'static str],
        edit: fn(&mut MemberInfo),
    ) {
        let generation = self.take_generation(node);
        let config = self.config(node, generation, seeds);
        let mut info = self.info(node, generation);
        edit(&mut info);
        let membership = Membership::start(config, &info, &self.transport)
            .await
            .unwrap_or_else(|error| panic!("{node} starts: {error}"));
        self.running
            .insert(node, Running::Agent(Box::new(membership)));
    }

    async fn start_raw(
        &mut self,
        node: &'static str,
        seeds: &[&'static str],
        kv: Vec<(String, String)>,
    ) {
        let generation = self.take_generation(node);
        let addr = self.addr(node);
        let seed_nodes = seeds
            .iter()
            .map(|seed| self.addr(seed).to_string())
            .collect();
        let config = chitchat::ChitchatConfig {
            chitchat_id: ChitchatId::new(node, generation, addr),
            cluster_id: CLUSTER.to_owned(),
            gossip_interval: self.gossip_interval,
            listen_addr: addr,
            seed_nodes,
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: self.failure.phi,
                sampling_window_size: 1_000,
                max_interval: self.failure.max_interval,
                initial_interval: self.failure.initial_interval,
                dead_node_grace_period: self.failure.dead_grace,
            },
            marked_for_deletion_grace_period: Duration::from_secs(600),
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: ProtocolVersion::V1,
        };
        let handle = spawn_chitchat(config, kv, &self.transport)
            .await
            .unwrap_or_else(|error| panic!("raw {node} starts: {error:#}"));
        self.running.insert(node, Running::Raw(handle));
    }

    /// Whether `check` holds for `observer` now, and a description of what it saw.
    async fn check(&self, observer: &str, check: &Check) -> (bool, String) {
        let agent = self.agent(observer);
        match check {
            Check::Members(expected) => {
                let ids: Vec<String> = agent
                    .members()
                    .await
                    .into_iter()
                    .map(|m| m.node_id)
                    .collect();
                (ids == *expected, format!("members {ids:?}"))
            }
            Check::Dead(expected) => {
                let dead = agent.dead().await;
                (dead == *expected, format!("dead {dead:?}"))
            }
            Check::Newest(node) => {
                let members = agent.members().await;
                let newest = self.generations.get(node).copied();
                let shown: Vec<u64> = members
                    .iter()
                    .filter(|m| m.node_id == *node)
                    .map(|m| m.generation)
                    .collect();
                (
                    shown.len() == 1 && Some(shown[0]) == newest,
                    format!("{node} shown at {shown:?}, newest {newest:?}"),
                )
            }
            Check::Member(node, _, predicate) => {
                let members = agent.members().await;
                let member = members.iter().find(|m| m.node_id == *node);
                (member.is_some_and(predicate), format!("{member:?}"))
            }
        }
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        let nodes: Vec<&'static str> = self.running.keys().copied().collect();
        for node in nodes {
            self.apply(Op::Stop(node)).await;
        }
    }
}
