//! A deterministic simulator of a fleet: the real coordination code
//! ([`Service`]: submit policy, origin, participant, merge, succession) of
//! 3 to 1000 agents, over the in-memory transport and a simulated
//! membership ([`world`]), on tokio's paused clock. Links get delay, jitter
//! and loss, agents clock skew; agents die, links are cut and healed, at
//! chosen instants. Every participant runs its share with the real engine
//! (flows of `sleep` steps, so no sockets are needed).
//!
//! A run is reproducible: delays and losses come from one seed, and the
//! paused clock only moves when every task waits. Each scenario prints its
//! seed; `VOLLEY_SIM_SEED=N cargo test --lib fleet::sim` runs them again
//! from it. Without it every run draws a new seed.

mod scenarios;
mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use world::{Gossip, SimRoster, World};

use super::keys::MemberInfo;
use super::origin::{Origin, Sealed, Submission, TestSnapshot};
use super::participant::{self, Participant};
use super::protocol::PlanBundle;
use super::service::{ClockPolicy, Policy, Refusal, Router, Service, Want};
use super::store::Store;
use super::transport::{Limits, LinkModel, MemoryNetwork, MemoryTransport};
use crate::clock::WallClock;
use crate::plan::admission::{Knobs, MachineLimits};

/// The wall-clock time every simulated run starts at (2026-01-01).
pub const EPOCH_UNIX_MS: u64 = 1_767_225_600_000;

/// How a simulated fleet is built.
#[derive(Debug, Clone)]
pub struct Options {
    pub agents: usize,
    /// Every link's model, unless [`Fleet::set_link`] gives one its own.
    pub link: LinkModel,
    pub gossip: Gossip,
    /// Agents keep a data directory (needed for a takeover to rebuild the
    /// results from what participants kept).
    pub stores: bool,
    /// Run the clock and identity checks every 5 s on every agent (a
    /// submit checks the members it uses either way).
    pub trust_rounds: bool,
    /// How long a participant that can deliver nothing keeps running.
    pub orphan_timeout: Duration,
    pub clock_tolerance: Duration,
    /// Each agent's clock skew in ms (positive: ahead), by agent index.
    pub skews_ms: Vec<(usize, i64)>,
}

impl Options {
    /// `agents` agents on links of 1 ms ± 1 ms, gossip news in 200 ms, dead
    /// members noticed in 1 s.
    pub fn new(agents: usize) -> Options {
        Options {
            agents,
            link: LinkModel {
                delay: Duration::from_millis(1),
                jitter: Duration::from_millis(1),
                loss: 0.0,
            },
            gossip: Gossip {
                delay: Duration::from_millis(200),
                detect: Duration::from_secs(1),
            },
            stores: false,
            trust_rounds: false,
            orphan_timeout: Duration::from_secs(10),
            clock_tolerance: Duration::from_millis(50),
            skews_ms: Vec::new(),
        }
    }
}

/// The seed of this run: `VOLLEY_SIM_SEED`, or a new one. Printed, so a
/// failing run can be replayed.
pub fn seed(scenario: &str) -> u64 {
    let seed = std::env::var("VOLLEY_SIM_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("fleet simulation {scenario}: seed {seed} (replay: VOLLEY_SIM_SEED={seed})");
    seed
}

/// One simulated agent.
pub struct Agent {
    pub id: String,
    pub service: Arc<Service>,
    transport: Arc<MemoryTransport>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// Killed by [`Fleet::kill`]: its process is gone.
    killed: bool,
    /// Kept for the agent's life (its data directory).
    _dir: Option<tempfile::TempDir>,
}

/// A simulated fleet.
pub struct Fleet {
    pub network: MemoryNetwork,
    pub world: Arc<World>,
    pub agents: Vec<Agent>,
    options: Options,
}

/// Agent `i`'s node id: `a000`, `a001`, … (sorted as numbered).
pub fn agent_id(i: usize) -> String {
    format!("a{i:03}")
}

fn addr(i: usize) -> SocketAddr {
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    SocketAddr::from(([10, (i >> 8) as u8, i as u8, 1], 7000))
}

impl Fleet {
    /// Builds and starts the agents; every one sees the others at once.
    pub fn start(seed: u64, options: Options) -> Fleet {
        let network = MemoryNetwork::seeded(seed);
        network.set_default_link(options.link);
        let world = World::new(options.gossip);
        let mut fleet = Fleet {
            network,
            world,
            agents: Vec::new(),
            options,
        };
        for i in 0..fleet.options.agents {
            let agent = fleet.spawn(i);
            fleet.agents.push(agent);
        }
        fleet
    }

    fn spawn(&self, i: usize) -> Agent {
        let id = agent_id(i);
        let at = addr(i);
        let skew = self
            .options
            .skews_ms
            .iter()
            .find(|(n, _)| *n == i)
            .map_or(0, |(_, ms)| *ms);
        let clock = WallClock::simulated(
            EPOCH_UNIX_MS,
            Duration::from_millis(skew.unsigned_abs()),
            skew > 0,
        );
        let generation = u64::try_from(i).unwrap_or(0) + 1;
        let router = Arc::new(Router::new(generation));
        let transport = Arc::new(
            self.network
                .bind_clocked(at, id.clone(), router.clone(), Limits::default(), clock)
                .expect("invariant: every simulated agent has its own address"),
        );
        let dir = self
            .options
            .stores
            .then(|| tempfile::tempdir().expect("a temporary data directory"));
        let store = dir
            .as_ref()
            .map(|d| Arc::new(Store::open(d.path()).expect("the temporary data directory opens")));
        let participant = Participant::new(
            id.clone(),
            transport.clone(),
            store.clone(),
            self.options.orphan_timeout,
        );
        let roster = Arc::new(SimRoster {
            me: id.clone(),
            world: self.world.clone(),
        });
        let alive = roster.clone();
        let is_alive = Arc::new(move |node: &str| {
            crate::fleet::membership::Roster::member(alive.as_ref(), node).is_some()
        });
        let origin = Origin::new(id.clone(), at, transport.clone(), store.clone(), is_alive);
        let gossip_addr = SocketAddr::from(([10, 200, (i >> 8) as u8, i as u8], 7946));
        let mut info = MemberInfo::new(&id, generation, gossip_addr, at, at, 1.0);
        info.labels
            .insert("region", if i.is_multiple_of(2) { "us" } else { "eu" })
            .expect("invariant: a valid label");
        self.world.join(info);
        let service = Service::new(super::service::Parts {
            me: id.clone(),
            roster,
            transport: transport.clone(),
            origin,
            participant,
            store,
            policy: Policy {
                gossip_interval: Duration::from_millis(100),
                clock_tolerance: self.options.clock_tolerance,
                clock_policy: ClockPolicy::Refuse,
                limits: MachineLimits {
                    cpus: 4.0,
                    memory_bytes: Some(8 << 30),
                    max_vus: None,
                    max_rate: None,
                    max_duration: None,
                    knobs: Knobs::AGENT,
                },
            },
        });
        router.attach(&service);
        let shutdown = CancellationToken::new();
        let mut tasks = vec![service.spawn_activity(&shutdown)];
        if self.options.trust_rounds {
            tasks = service.spawn(&shutdown);
        }
        Agent {
            id,
            service,
            transport,
            shutdown,
            tasks,
            killed: false,
            _dir: dir,
        }
    }

    /// Gives the link from agent `from` to agent `to` its own model.
    pub fn set_link(&self, from: usize, to: usize, model: LinkModel) {
        self.network.set_link(addr(from), addr(to), model);
    }

    /// Submits `plan` (YAML) through agent `via`, as the API would.
    pub async fn submit(
        &self,
        via: usize,
        plan: &str,
        min_agents: usize,
    ) -> Result<String, Refusal> {
        let bundle = PlanBundle::yaml(plan);
        let loaded = participant::load_bundle(&bundle)
            .map_err(|e| Refusal::Unprocessable(format!("invalid plan: {e}")))?;
        let service = &self.agents[via].service;
        let no_labels = Default::default();
        let want = Want {
            selector: &no_labels,
            match_expressions: &[],
            min_agents,
        };
        let candidates = service.select(&want).await?;
        service.admit(&loaded, &candidates).await?;
        let (meta, _) = service
            .start(
                Submission {
                    name: "sim".into(),
                    bundle,
                    plan: Arc::new(loaded),
                    min_agents,
                    lead: Duration::from_secs(1),
                    outputs: Default::default(),
                },
                candidates,
            )
            .await?;
        Ok(meta.id)
    }

    /// Kills agent `i` at once: its tasks, its transport and its share stop
    /// without a word to anyone; gossip notices after its detection delay.
    pub async fn kill(&mut self, i: usize) {
        let agent = &mut self.agents[i];
        agent.killed = true;
        agent.shutdown.cancel();
        for t in agent.tasks.drain(..) {
            t.abort();
        }
        agent.transport.shutdown().await;
        agent.service.participant().halt();
        agent.service.origin().halt();
        self.world.die(&agent.id);
    }

    /// Cuts agents `a` and `b` apart: messages and gossip between them.
    pub fn partition(&self, a: usize, b: usize) {
        self.network.partition(addr(a), addr(b));
        self.world.cut(&agent_id(a), &agent_id(b));
    }

    pub fn heal(&self, a: usize, b: usize) {
        self.network.heal(addr(a), addr(b));
        self.world.heal(&agent_id(a), &agent_id(b));
    }

    /// The sealed result of test `id`, from whichever agent sealed it,
    /// waiting up to `within` of simulated time.
    pub async fn sealed(&self, id: &str, within: Duration) -> Option<(usize, Sealed)> {
        let deadline = Instant::now() + within;
        loop {
            for (i, a) in self.agents.iter().enumerate() {
                if let Some(s) = a.service.origin().sealed(id) {
                    return Some((i, s));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Test `id` as agent `i` coordinates it, if it does.
    pub fn snapshot(&self, i: usize, id: &str) -> Option<TestSnapshot> {
        self.agents[i].service.origin().snapshot(id)
    }

    /// Live agents whose participant still runs a share of a test.
    pub fn loaded(&self) -> Vec<String> {
        self.agents
            .iter()
            .filter(|a| !a.killed)
            .filter(|a| a.service.participant().share().is_some_and(|s| s.running))
            .map(|a| a.id.clone())
            .collect()
    }
}

/// A fleet-wide counter of a sealed summary (`iterations`, `http_reqs`).
pub fn counter(sealed: &Sealed, metric: &str) -> f64 {
    sealed
        .summary
        .metrics
        .iter()
        .find(|m| m.name == metric && m.tags.is_empty())
        .and_then(|m| match m.values {
            crate::metrics::MetricValues::Counter { count, .. } => Some(count),
            _ => None,
        })
        .unwrap_or(0.0)
}
