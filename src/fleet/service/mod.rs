//! The coordination service: everything one agent does about fleet tests,
//! behind one narrow interface. The agent's API and the LoadTest controller
//! call it; peers reach it through its [`Router`]; it reaches membership
//! only through a [`Roster`] and peers only through a [`Transport`], so the
//! same code runs on real sockets and in the fleet simulator.
//!
//! - `select`: which members a submitted test may use (selector, busy
//!   members settling, unproven identities, refused TLS, clocks) and whether
//!   the plan fits them.
//! - `trust`: the clock and identity checks of every peer.
//! - `abort`: an abort from any agent reaches the test's coordinator.
//! - `router`: fleet messages from peers to the origin or the participant.
//! - `succession`: adopting a test whose origin died, and announcing it.
//! - `activity`: what the participant does, mirrored into gossip.
//!
//! It owns the [`Origin`] (tests this agent coordinates) and the
//! [`Participant`] (this agent's share of a test) and starts neither's I/O
//! of its own: the caller binds the transport and joins gossip.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod abort;
mod activity;
mod router;
mod select;
mod succession;
mod trust;

pub use abort::Aborted;
pub use router::Router;
pub use select::Want;

use super::allocation::Allocation;
use super::identity::IdentityBook;
use super::keys::{AgentState, Announcement};
use super::membership::Roster;
use super::origin::{Origin, Submission};
use super::participant::Participant;
use super::selector::Candidate;
use super::store::{Store, TestMeta};
use super::transport::{ClockSample, Transport};
use crate::plan::admission::MachineLimits;
use crate::sync::lock;

/// What to do when a peer's clock is further off than the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockPolicy {
    /// Refuse to start a test with that peer: its start would be skewed.
    Refuse,
    /// Start anyway and put a warning in the summary.
    Warn,
}

/// The settings coordination follows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// This agent's gossip interval: how long a busy member may take to
    /// say it is idle again scales with it.
    pub gossip_interval: Duration,
    /// How far a peer's clock may be off.
    pub clock_tolerance: Duration,
    pub clock_policy: ClockPolicy,
    /// What plans may ask of this agent (its memory and CPUs, or its
    /// settings); scaled to the selected agents at submit.
    pub limits: MachineLimits,
}

/// What the service is built from.
pub struct Parts {
    pub me: String,
    pub roster: Arc<dyn Roster>,
    pub transport: Arc<dyn Transport>,
    pub origin: Arc<Origin>,
    pub participant: Arc<Participant>,
    /// The data directory (none in-process: nothing is kept).
    pub store: Option<Arc<Store>>,
    pub policy: Policy,
}

/// Why the service refused a request, in the terms the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// This agent cannot do it now (draining, a peer unreachable): 503.
    #[error("{0}")]
    Unavailable(String),
    /// It conflicts with what runs (busy agents, a test not running): 409.
    #[error("{0}")]
    Conflict(String),
    /// The test cannot run as asked (too few agents, clocks, limits): 422.
    #[error("{0}")]
    Unprocessable(String),
    /// No such test here or in the fleet: 404.
    #[error("no test {0}")]
    UnknownTest(String),
    /// The test is already over.
    #[error("test {id} is already over")]
    AlreadyOver {
        id: String,
        aborted: bool,
        at_unix_ms: u64,
    },
}

/// The coordination service of one agent.
pub struct Service {
    me: String,
    roster: Arc<dyn Roster>,
    transport: Arc<dyn Transport>,
    origin: Arc<Origin>,
    participant: Arc<Participant>,
    store: Option<Arc<Store>>,
    policy: Policy,
    /// Clock offset and RTT to each peer, by node id (NTP-style over QUIC).
    clocks: Mutex<BTreeMap<String, ClockSample>>,
    /// Peers whose mutual TLS handshake failed at the last contact (another
    /// fleet's CA, an expired certificate), by node id: why.
    refused: Mutex<BTreeMap<String, String>>,
    /// Whether each gossip incarnation proved its node id over QUIC.
    identities: IdentityBook,
    draining: AtomicBool,
}

impl Service {
    /// The service, with the participant able to adopt tests whose origin
    /// died.
    pub fn new(parts: Parts) -> Arc<Service> {
        parts
            .participant
            .set_succession(Arc::new(succession::Successor::new(
                parts.me.clone(),
                parts.roster.clone(),
                parts.origin.clone(),
            )));
        Arc::new(Service {
            me: parts.me,
            roster: parts.roster,
            transport: parts.transport,
            origin: parts.origin,
            participant: parts.participant,
            store: parts.store,
            policy: parts.policy,
            clocks: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            identities: IdentityBook::default(),
            draining: AtomicBool::new(false),
        })
    }

    /// Starts what runs for the agent's life: the participant's activity
    /// mirrored into gossip, and the rounds of clock and identity checks.
    pub fn spawn(self: &Arc<Self>, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            self.spawn_activity(shutdown),
            tokio::spawn(trust::rounds(self.clone(), shutdown.clone())),
        ]
    }

    /// Only the participant's activity mirrored into gossip (the fleet
    /// simulator leaves the periodic peer checks out of large fleets: a
    /// submit still checks every member it uses).
    pub fn spawn_activity(&self, shutdown: &CancellationToken) -> JoinHandle<()> {
        tokio::spawn(activity::publish(
            self.roster.clone(),
            self.participant.activity(),
            shutdown.clone(),
        ))
    }

    /// This agent's node id.
    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }

    pub fn participant(&self) -> &Arc<Participant> {
        &self.participant
    }

    pub fn roster(&self) -> &Arc<dyn Roster> {
        &self.roster
    }

    /// Clock offset and RTT to each peer measured last, by node id.
    pub fn clocks(&self) -> BTreeMap<String, ClockSample> {
        lock(&self.clocks).clone()
    }

    /// Peers that refused mutual TLS at the last contact, by node id: why.
    pub fn refused(&self) -> BTreeMap<String, String> {
        lock(&self.refused).clone()
    }

    /// What each incarnation proved about its identity.
    pub fn identities(&self) -> &IdentityBook {
        &self.identities
    }

    /// Takes no new test, stops this agent's load (the origin hands its
    /// share to the others) and says so in gossip.
    pub async fn drain(&self, reason: &str) {
        if self.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        let published = self
            .roster
            .publish(Box::new(|me| me.state = AgentState::Draining))
            .await;
        if let Err(e) = published {
            tracing::warn!("cannot publish the draining state: {e}");
        }
        self.participant.stop_all(reason);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// True while this agent takes part in a test.
    pub fn busy(&self) -> bool {
        self.participant.current().is_some()
    }

    /// Withdraws this agent's announcement (on shutdown).
    pub async fn close(&self) {
        let _ = self
            .roster
            .publish(Box::new(|me| me.announcement = None))
            .await;
    }

    /// Starts a submitted test on `candidates` (from [`Service::select`]):
    /// the origin allocates and prepares it, and gossip announces it.
    pub async fn start(
        &self,
        sub: Submission,
        candidates: Vec<Candidate>,
    ) -> Result<(TestMeta, Allocation), Refusal> {
        let digest = sub.bundle.digest();
        let (meta, allocation) = self
            .origin
            .submit(sub, candidates)
            .map_err(|e| Refusal::Unprocessable(e.to_string()))?;
        let announcement = Announcement {
            id: meta.id.clone(),
            digest,
            origin: self.me.clone(),
            start_ms: meta.started_unix_ms.unwrap_or_default(),
            rev: u64::from(allocation.revision),
        };
        if let Err(e) = self.announce(announcement).await {
            tracing::warn!("cannot announce test {} in gossip: {e}", meta.id);
        }
        Ok((meta, allocation))
    }

    async fn announce(&self, announcement: Announcement) -> Result<(), String> {
        self.roster
            .publish(Box::new(move |me| me.announcement = Some(announcement)))
            .await
    }

    /// The live member `node`, read fresh from the roster.
    pub async fn live_member(&self, node: &str) -> Option<super::membership::Member> {
        self.roster
            .members()
            .await
            .into_iter()
            .find(|m| m.node_id == node)
    }

    /// The agent that coordinates test `id`, as gossip announces it.
    pub async fn origin_from_gossip(&self, id: &str) -> Option<String> {
        self.roster.members().await.into_iter().find_map(|m| {
            let a = m.usable()?.announcement.as_ref()?;
            (a.id == id).then(|| a.origin.clone())
        })
    }

    /// The phase this agent's data directory last recorded for test `id`.
    fn recorded_phase(&self, id: &str) -> String {
        self.store
            .as_ref()
            .and_then(|s| s.meta(id).ok())
            .map_or_else(|| "unknown".to_owned(), |m| m.phase.as_str().to_owned())
    }
}

/// The refusal to abort a test nothing runs any more, though a record may
/// still call it `pending` or `running` (its coordinator restarted).
fn not_running(id: &str, me: &str, phase: &str) -> Refusal {
    Refusal::Conflict(format!(
        "test {id} is not running: agent {me}, which coordinated it, neither coordinates nor \
         runs it now (it restarted since, or the test ended); its last recorded phase is \
         {phase}; nothing was aborted"
    ))
}
