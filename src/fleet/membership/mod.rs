//! Fleet membership over gossip (chitchat 0.13): this agent publishes its
//! typed keys ([`crate::fleet::keys`]) and reads a deduplicated view of the
//! live agents.
//!
//! - [`Membership::start`] joins the fleet through a chitchat
//!   [`Transport`]: [`bind_udp`] for real agents (binds first, so port 0
//!   works and the advertised address is known, and authenticates every
//!   datagram with the fleet's [`GossipKey`]), chitchat's `ChannelTransport`
//!   in tests.
//! - [`Membership::publish`] changes this agent's info and writes only the
//!   keys that changed; [`Membership::announce`] sets or withdraws the test
//!   announcement.
//! - [`Membership::members`] / [`Membership::watch`] give one [`Member`] per
//!   node id (newest live generation), sorted, self included, each with its
//!   decoded info or the reason it does not decode, and whether it speaks
//!   our protocol version. [`Membership::dead`] lists node ids declared dead.
//!
//! chitchat's lock is held only to copy node states out; decoding and
//! deduplication (`view`) run outside it. Gossip carries no plans and no
//! commands, and nothing unauthenticated reaches chitchat. Layout: `config`
//! (settings, defaults, validation), `auth` (the datagram authenticator, pure),
//! `stats` (counters and the rate-limited drop log), `transport` (the
//! pre-bound, authenticating UDP socket), `view` (pure dedupe), `roster`
//! (the [`Roster`] trait: what test coordination asks of membership).

mod auth;
mod config;
mod roster;
mod stats;
mod transport;
mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};

use chitchat::transport::Transport;
use chitchat::{ChitchatHandle, ChitchatId, NodeState, spawn_chitchat};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

pub use auth::{GossipKey, MIN_SECRET_BYTES, REPLAY_WINDOW, Reject, ShortSecret};
pub use config::{
    DEFAULT_GOSSIP_INTERVAL, DEFAULT_MARKED_FOR_DELETION_GRACE, FailureDetection, MembershipConfig,
    generation_now, validate_seed,
};
pub use roster::{Roster, Update};
pub use stats::{GossipCounts, GossipStats, REJECT_LOG_INTERVAL, RejectLog, RejectSummary};
pub use transport::{AuthUdpTransport, bind_udp};
pub use view::{Distrusted, Member, NodeSnapshot, build_members, dead_node_ids};

use crate::fleet::keys::{Announcement, KeyError, MemberInfo};
use crate::sync::lock;

/// Why membership could not start or refused an update.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// A setting is out of range or malformed.
    #[error("membership setting `{field}` = {value:?} is not valid: expected {expected}")]
    Config {
        /// The setting (`MembershipConfig` field path).
        field: &'static str,
        /// Its value.
        value: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// A seed is not `host:port`.
    #[error("gossip seed {seed:?} is not valid: expected {expected}")]
    Seed {
        /// The seed as given.
        seed: String,
        /// The accepted forms.
        expected: &'static str,
    },
    /// This agent's own info would be refused by its peers.
    #[error("this agent's gossip info is not valid")]
    OwnInfo(#[source] KeyError),
    /// The info given at start or by an update names another identity
    /// than the one gossip runs under.
    #[error(
        "gossip identity `{field}` cannot change from {running} to {requested}: \
         it is fixed when gossip starts (restart the agent to change it)"
    )]
    Identity {
        /// `node_id`, `generation`, `gossip_addr` or `proto`.
        field: &'static str,
        /// The identity gossip runs under.
        running: String,
        /// The identity asked for.
        requested: String,
    },
    /// The gossip socket could not be bound.
    #[error("cannot bind the gossip socket on {addr}/UDP: {reason}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        reason: String,
    },
    /// chitchat refused to start (typically: the transport could not open
    /// the listen address).
    #[error("cannot start gossip listening on {listen} (advertised as {advertise}): {reason}")]
    Start {
        /// The listen address.
        listen: SocketAddr,
        /// The advertised address.
        advertise: SocketAddr,
        /// chitchat's error chain.
        reason: String,
    },
}

/// A running membership: keeps gossip alive until [`shutdown`](Self::shutdown)
/// or drop (dropping stops gossip without waiting).
pub struct Membership {
    /// chitchat's server; dropping it stops the gossip loop.
    handle: ChitchatHandle,
    /// Our incarnation, to mark ourselves and keep ourselves in the view.
    self_id: ChitchatId,
    /// The protocol version we speak (from the info given at start); peers
    /// with another one are shown as incompatible.
    proto: u32,
    /// What we last published; publishes are serialised through this lock so
    /// the key diff is always against what chitchat holds.
    published: Mutex<MemberInfo>,
    /// Incarnations found not to be what they claim; kept out of the view.
    distrusted: Arc<StdMutex<Distrusted>>,
    /// Publishes the view (the watch task, and `distrust` at once).
    members_tx: watch::Sender<Vec<Member>>,
    /// Latest deduplicated view, maintained by `watch_task`.
    members_rx: watch::Receiver<Vec<Member>>,
    /// Turns chitchat's live-node notifications into `members_rx` updates.
    watch_task: AbortOnDrop,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("self_id", &self.self_id)
            .finish_non_exhaustive()
    }
}

/// Aborts the watch task when the membership goes away.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Membership {
    /// Validates `cfg` and `me`, then joins the fleet through `transport`
    /// with `me`'s keys already set, so peers never see a half-described node.
    pub async fn start(
        cfg: MembershipConfig,
        me: &MemberInfo,
        transport: &dyn Transport,
    ) -> Result<Membership, MembershipError> {
        cfg.validate()?;
        check_identity(&cfg.node_id, cfg.generation, cfg.advertise, me)?;
        me.validate().map_err(MembershipError::OwnInfo)?;

        let chitchat_config = cfg.to_chitchat();
        let self_id = chitchat_config.chitchat_id.clone();
        let handle = spawn_chitchat(chitchat_config, me.to_kv(), transport)
            .await
            .map_err(|error| MembershipError::Start {
                listen: cfg.listen,
                advertise: cfg.advertise,
                reason: format!("{error:#}"),
            })?;
        let (initial, live_rx) = handle
            .with_chitchat(|chitchat| (live_snapshots(chitchat), chitchat.live_nodes_watcher()))
            .await;
        let distrusted = Arc::new(StdMutex::new(Distrusted::new()));
        let (members_tx, members_rx) = watch::channel(build_members(
            &self_id,
            me.proto,
            initial,
            &Distrusted::new(),
        ));
        let watch_task = tokio::spawn(run_watch(
            live_rx,
            members_tx.clone(),
            self_id.clone(),
            me.proto,
            Arc::clone(&distrusted),
        ));
        tracing::info!(
            node_id = %cfg.node_id,
            generation = cfg.generation,
            advertise = %cfg.advertise,
            seeds = ?cfg.seeds,
            "joined gossip"
        );
        Ok(Membership {
            handle,
            self_id,
            proto: me.proto,
            published: Mutex::new(me.clone()),
            distrusted,
            members_tx,
            members_rx,
            watch_task: AbortOnDrop(watch_task),
        })
    }

    /// This agent's identity in gossip.
    pub fn self_id(&self) -> &ChitchatId {
        &self.self_id
    }

    /// What this agent currently publishes.
    pub async fn info(&self) -> MemberInfo {
        self.published.lock().await.clone()
    }

    /// Applies `update` to this agent's info and publishes the keys that
    /// changed (deleting optional keys that became `None`). An update that
    /// peers would refuse, or that touches the identity, is rejected and
    /// nothing is published.
    pub async fn publish(
        &self,
        update: impl FnOnce(&mut MemberInfo),
    ) -> Result<(), MembershipError> {
        let mut published = self.published.lock().await;
        let mut next = published.clone();
        update(&mut next);
        check_identity(
            &published.node_id,
            published.generation,
            published.gossip_addr,
            &next,
        )?;
        if next.proto != self.proto {
            return Err(MembershipError::Identity {
                field: "proto",
                running: self.proto.to_string(),
                requested: next.proto.to_string(),
            });
        }
        next.validate().map_err(MembershipError::OwnInfo)?;

        let before = published.to_kv();
        let after = next.to_kv();
        let sets: Vec<&(String, String)> = after.iter().filter(|kv| !before.contains(kv)).collect();
        let deletes: Vec<&String> = before
            .iter()
            .map(|(key, _)| key)
            .filter(|key| !after.iter().any(|(k, _)| k == *key))
            .collect();
        if !sets.is_empty() || !deletes.is_empty() {
            self.handle
                .with_chitchat(|chitchat| {
                    let state = chitchat.self_node_state();
                    for (key, value) in &sets {
                        state.set(key, value);
                    }
                    for key in &deletes {
                        state.delete(key);
                    }
                })
                .await;
        }
        *published = next;
        Ok(())
    }

    /// Publishes (`Some`) or withdraws (`None`) this agent's test announcement.
    pub async fn announce(
        &self,
        announcement: Option<&Announcement>,
    ) -> Result<(), MembershipError> {
        let announcement = announcement.cloned();
        self.publish(move |info| info.announcement = announcement)
            .await
    }

    /// Live members, self included: one per node id (newest generation),
    /// sorted by node id. Read fresh from chitchat.
    pub async fn members(&self) -> Vec<Member> {
        let live = self
            .handle
            .with_chitchat(|chitchat| live_snapshots(chitchat))
            .await;
        build_members(&self.self_id, self.proto, live, &self.distrusted())
    }

    /// Leaves the incarnation `generation` of `node_id` out of the view from
    /// now on (its QUIC endpoint answered as someone else): the genuine
    /// incarnation, if one is live, shows instead. Our own never is.
    /// Returns whether it was new.
    pub async fn distrust(&self, node_id: &str, generation: u64) -> bool {
        if node_id == &*self.self_id.node_id && generation == self.self_id.generation_id {
            return false;
        }
        let added = {
            let mut set = lock(&self.distrusted);
            if set.len() >= MAX_DISTRUSTED {
                // Bounded: the lowest generations are the oldest incarnations.
                let oldest = set.iter().min_by_key(|(_, g)| *g).cloned();
                if let Some(oldest) = oldest {
                    set.remove(&oldest);
                }
            }
            set.insert((node_id.to_owned(), generation))
        };
        if added {
            let members = self.members().await;
            self.members_tx.send_if_modified(|current| {
                if *current == members {
                    false
                } else {
                    *current = members;
                    true
                }
            });
        }
        added
    }

    /// The incarnations left out of the view, sorted.
    pub fn distrusted(&self) -> Distrusted {
        lock(&self.distrusted).clone()
    }

    /// Every live incarnation (node id, generation), distrusted ones
    /// included: to tell which reports still concern a running process.
    pub async fn live_incarnations(&self) -> Vec<(String, u64)> {
        self.handle
            .with_chitchat(|chitchat| {
                chitchat
                    .live_nodes()
                    .map(|id| (id.node_id.to_string(), id.generation_id))
                    .collect()
            })
            .await
    }

    /// Node ids declared dead that have no live incarnation, sorted. A node
    /// is listed until its dead incarnations are forgotten
    /// ([`FailureDetection::dead_grace`]).
    pub async fn dead(&self) -> Vec<String> {
        let self_id = &self.self_id;
        self.handle
            .with_chitchat(|chitchat| {
                dead_node_ids(self_id, chitchat.live_nodes(), chitchat.dead_nodes())
            })
            .await
    }

    /// The deduplicated view, updated when a node joins, leaves or changes a
    /// key (chitchat recomputes liveness once per gossip round). Only
    /// actual changes of the view are signalled.
    pub fn watch(&self) -> watch::Receiver<Vec<Member>> {
        self.members_rx.clone()
    }

    /// Stops gossip and waits for chitchat's loop to end. Peers notice the
    /// silence and declare this node dead after their detection timeout.
    pub async fn shutdown(self) {
        let Membership {
            handle, watch_task, ..
        } = self;
        drop(watch_task);
        if let Err(error) = handle.shutdown().await {
            tracing::warn!(error = %format!("{error:#}"), "gossip loop ended with an error");
        }
    }
}

/// Most incarnations remembered as distrusted.
const MAX_DISTRUSTED: usize = 1024;

/// Rejects info whose identity differs from the one gossip runs under.
fn check_identity(
    node_id: &str,
    generation: u64,
    gossip_addr: SocketAddr,
    info: &MemberInfo,
) -> Result<(), MembershipError> {
    let mismatch = if info.node_id != node_id {
        Some(("node_id", node_id.to_owned(), info.node_id.clone()))
    } else if info.generation != generation {
        Some((
            "generation",
            generation.to_string(),
            info.generation.to_string(),
        ))
    } else if info.gossip_addr != gossip_addr {
        Some((
            "gossip_addr",
            gossip_addr.to_string(),
            info.gossip_addr.to_string(),
        ))
    } else {
        None
    };
    match mismatch {
        None => Ok(()),
        Some((field, running, requested)) => Err(MembershipError::Identity {
            field,
            running,
            requested,
        }),
    }
}

/// Copies the Volley keys of every live incarnation (self included).
fn live_snapshots(chitchat: &chitchat::Chitchat) -> Vec<NodeSnapshot> {
    chitchat
        .live_nodes()
        .filter_map(|id| {
            chitchat
                .node_state(id)
                .map(|state| NodeSnapshot::new(id, state))
        })
        .collect()
}

/// Follows chitchat's live-node watcher until chitchat stops, publishing
/// the deduplicated view whenever it actually changes.
async fn run_watch(
    mut live_rx: watch::Receiver<std::collections::BTreeMap<ChitchatId, NodeState>>,
    members_tx: watch::Sender<Vec<Member>>,
    self_id: ChitchatId,
    proto: u32,
    distrusted: Arc<StdMutex<Distrusted>>,
) {
    while live_rx.changed().await.is_ok() {
        let live: Vec<NodeSnapshot> = live_rx
            .borrow_and_update()
            .iter()
            .map(|(id, state)| NodeSnapshot::new(id, state))
            .collect();
        if live.is_empty() {
            // chitchat's initial value, before its first liveness round.
            continue;
        }
        let distrusted = lock(&distrusted).clone();
        let members = build_members(&self_id, proto, live, &distrusted);
        members_tx.send_if_modified(|current| {
            if *current == members {
                false
            } else {
                *current = members;
                true
            }
        });
    }
}
