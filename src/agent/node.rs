//! Starting and stopping one agent: binds every listener (after the
//! settings were validated), issues the agent's certificate, joins gossip,
//! and wires membership, transport, origin, participant and the API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::{AgentSettings, ApiAuth, TlsSettings};
use super::core::{AgentCore, Handles};
use crate::api::{self, ApiConfig};
use crate::fleet::ca::DEFAULT_LEAF_VALIDITY;
use crate::fleet::capacity::{self, SystemCgroups};
use crate::fleet::keys::MemberInfo;
use crate::fleet::membership::{self, Membership, MembershipConfig};
use crate::fleet::origin::Origin;
use crate::fleet::participant::{Guard, Participant};
use crate::fleet::service::{Parts, Policy, Router, Service};
use crate::fleet::store::Store;
use crate::fleet::transport::{Limits, QuicTransport, Transport};
use crate::plan::admission::Knobs;

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot open the data directory: {0}")]
    Store(String),
    #[error("cannot issue this agent's certificate: {0}")]
    Certificate(String),
    #[error("cannot start QUIC on {addr}: {reason}")]
    Quic { addr: SocketAddr, reason: String },
    #[error("cannot join gossip: {0}")]
    Gossip(String),
    #[error("cannot listen for the API on {addr}: {source}")]
    Api {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started agent: its bound addresses and how to stop it.
pub struct RunningAgent {
    pub node_id: String,
    pub api_addr: SocketAddr,
    pub gossip_addr: SocketAddr,
    pub quic_addr: SocketAddr,
    core: Arc<AgentCore>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningAgent {
    /// Stops the agent: load first (draining), then the API and gossip.
    pub async fn shutdown(self) {
        self.core.drain("shutting down").await;
        // Let the running share stop and its last results reach the origin.
        let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
        while self.core.busy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.core.close().await;
    }

    /// The agent's API as a trait object (in-process use: demo, tests).
    pub fn api(&self) -> Arc<dyn api::Agent> {
        self.core.clone()
    }
}

/// Starts an agent with validated settings.
pub async fn start(settings: AgentSettings) -> Result<RunningAgent, AgentError> {
    let store =
        Arc::new(Store::open(&settings.data_dir).map_err(|e| AgentError::Store(e.to_string()))?);
    store.prune_history();
    let sans: Vec<String> = [settings.quic_advertise.ip(), settings.api_advertise.ip()]
        .iter()
        .filter(|ip| !ip.is_unspecified())
        .map(ToString::to_string)
        .collect();
    let (identity, trust) = match &settings.tls {
        TlsSettings::SelfIssued { ca } => {
            let id = ca
                .issue(&settings.node_id, &sans, DEFAULT_LEAF_VALIDITY)
                .map_err(|e| AgentError::Certificate(e.to_string()))?;
            (id, ca.trust_bundle())
        }
        TlsSettings::Given {
            identity, trust, ..
        } => (identity.clone(), trust.clone()),
    };

    // QUIC first: the handler routes to the service, which needs the transport.
    let generation = membership::generation_now();
    let router = Arc::new(Router::new(generation));
    let quic = QuicTransport::bind(
        settings.quic_listen,
        &identity,
        &trust,
        router.clone(),
        Limits::default(),
    )
    .await
    .map_err(|e| AgentError::Quic {
        addr: settings.quic_listen,
        reason: e.to_string(),
    })?;
    let quic_addr = with_port(settings.quic_advertise, quic.local_addr());
    let quic = Arc::new(quic);
    let renewal = super::renew::Renewal::new(&settings.tls, &sans, &identity, quic.clone());
    let transport: Arc<dyn Transport> = quic;

    let (udp, gossip_bound) =
        membership::bind_udp(settings.gossip_listen, settings.gossip_key.clone())
            .await
            .map_err(|e| AgentError::Gossip(e.to_string()))?;
    let gossip_stats = udp.stats();
    let gossip_addr = with_port(settings.gossip_advertise, gossip_bound);

    let api_listener = tokio::net::TcpListener::bind(settings.api_listen)
        .await
        .map_err(|source| AgentError::Api {
            addr: settings.api_listen,
            source,
        })?;
    let api_addr = with_port(
        settings.api_advertise,
        api_listener.local_addr().unwrap_or(settings.api_listen),
    );

    // Kubernetes is optional: without it (or without RBAC) the agent runs on.
    let kube = kube_context(&settings).await;
    let node = match &kube {
        Some(k) => {
            let name = settings
                .node_name
                .clone()
                .unwrap_or_else(|| settings.node_id.clone());
            k.node_identity(&name).await
        }
        None => None,
    };
    let mut labels = settings.labels.clone();
    if let Some(node) = &node {
        for (key, value) in [("region", &node.region), ("zone", &node.zone)] {
            if let Some(v) = value {
                labels.entry(key.to_owned()).or_insert_with(|| v.clone());
            }
        }
    }
    let machine = capacity::detect(&SystemCgroups);
    let detected = machine.cpus;
    // The node's allocatable CPU bounds what the process could detect.
    let bounded = node
        .as_ref()
        .and_then(|n| n.cpu)
        .map_or(detected, |cpu| detected.min(cpu));
    let limits = settings
        .limits
        .machine(bounded, machine.memory_bytes, Knobs::AGENT);
    let guard = Guard {
        limits: limits.clone(),
        ceiling: settings.limits.ceiling(machine.memory_bytes),
        egress: settings.egress.clone(),
    };
    let capacity = settings.capacity.unwrap_or(bounded).max(0.01);
    let mut seeds: Vec<String> = settings.seeds.iter().map(ToString::to_string).collect();
    if let Some(k) = &kube {
        seeds.extend(
            k.pod_seeds(&settings.seed_selector, gossip_addr.port(), settings.pod_ip)
                .await,
        );
        seeds.sort();
        seeds.dedup();
    }
    let mut me = MemberInfo::new(
        &settings.node_id,
        generation,
        gossip_addr,
        api_addr,
        quic_addr,
        capacity,
    );
    for (k, v) in &labels {
        me.labels
            .insert(k, v)
            .map_err(|e| AgentError::Gossip(format!("label {k}={v}: {e}")))?;
    }
    let mut cfg = MembershipConfig::new(
        &settings.node_id,
        generation,
        &settings.cluster_id,
        settings.gossip_listen,
        gossip_addr,
    );
    cfg.seeds = seeds;
    cfg.gossip_interval = settings.gossip_interval;
    // Detect a dead agent within a few gossip rounds: its share is taken over then.
    cfg.failure.initial_interval = settings.gossip_interval;
    let membership = Arc::new(
        Membership::start(cfg, &me, &udp)
            .await
            .map_err(|e| AgentError::Gossip(e.to_string()))?,
    );

    let participant = Participant::new(
        settings.node_id.clone(),
        transport.clone(),
        Some(store.clone()),
        settings.orphan_timeout,
    );
    participant.set_guard(guard);
    if let Some(region) = labels.get("region") {
        participant.set_region(region.clone());
    }
    let alive_view = membership.watch();
    let is_alive =
        Arc::new(move |node: &str| alive_view.borrow().iter().any(|m| m.node_id == node));
    let origin = Origin::new(
        settings.node_id.clone(),
        quic_addr,
        transport.clone(),
        Some(store.clone()),
        is_alive,
    );
    let service = Service::new(Parts {
        me: settings.node_id.clone(),
        roster: membership.clone(),
        transport,
        origin,
        participant,
        store: Some(store.clone()),
        policy: Policy {
            gossip_interval: settings.gossip_interval,
            clock_tolerance: settings.clock_tolerance,
            clock_policy: settings.clock_policy,
            limits,
        },
    });
    router.attach(&service);
    let node_id = settings.node_id.clone();
    let cluster_id = settings.cluster_id.clone();
    let egress = settings.egress.clone();
    let watch_namespaces = settings.watch_namespaces.clone();
    let auth_disabled = matches!(settings.auth, ApiAuth::Disabled);
    let token = match &settings.auth {
        ApiAuth::Token { token, .. } => api::SecretToken::new(token.expose()).ok(),
        ApiAuth::Disabled => None,
    };
    let store_for_expiry = store.clone();
    let max_connections = settings.api_max_connections;
    let core = AgentCore::new(Handles {
        settings,
        gossip_stats,
        membership: membership.clone(),
        service: service.clone(),
        store,
        api_addr,
    });

    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let api_config = ApiConfig {
        token,
        allow_unauthenticated: auth_disabled,
        max_connections,
        ..ApiConfig::default()
    };
    let api_core: Arc<dyn api::Agent> = core.clone();
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = api::serve(api_listener, api_core, api_config, stop.cancelled_owned()).await
        {
            tracing::error!("API server stopped: {e}");
        }
    }));
    tasks.extend(service.spawn(&shutdown));
    tasks.push(tokio::spawn(expire_overdue_tests(
        store_for_expiry,
        service.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(probe_lag(core.lags.clone(), shutdown.clone())));
    if let Some(renewal) = renewal {
        tasks.push(tokio::spawn(renewal.run(shutdown.clone())));
    }
    if let Some(k) = &kube {
        let alive = membership.watch();
        let is_alive: crate::kube::IsAlive =
            Arc::new(move |node: &str| alive.borrow().iter().any(|m| m.node_id == node));
        // The agent's own namespace, then the others it was told to watch.
        let mut namespaces = vec![k.namespace().to_owned()];
        for ns in &watch_namespaces {
            if !namespaces.contains(ns) {
                namespaces.push(ns.clone());
            }
        }
        for ns in namespaces {
            let mut config = crate::kube::ControllerConfig::new(&ns, &node_id);
            config.fleet = Some(cluster_id.clone());
            let mut controller = k.spawn_controller_with(config, core.clone(), is_alive.clone());
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => controller.abort(),
                    exit = &mut controller => {
                        tracing::info!(namespace = %ns, "kube: LoadTest controller ended: {exit:?}");
                    }
                }
            }));
        }
    }
    tracing::info!(node = %node_id, %api_addr, %gossip_addr, %quic_addr, capacity, %egress, "agent started");
    Ok(RunningAgent {
        node_id,
        api_addr,
        gossip_addr,
        quic_addr,
        core,
        shutdown,
        tasks,
    })
}

/// The advertised address, with the bound port when it was left at 0.
fn with_port(advertise: SocketAddr, bound: SocketAddr) -> SocketAddr {
    if advertise.port() == 0 {
        let ip = if advertise.ip().is_unspecified() {
            bound.ip()
        } else {
            advertise.ip()
        };
        SocketAddr::new(ip, bound.port())
    } else {
        advertise
    }
}

/// How often the data directory is checked for tests whose coordinator
/// was lost (see [`Store::expire_overdue`]).
const EXPIRY_CHECK: Duration = Duration::from_secs(5);

/// Marks tests this agent took part in, whose sealed result never came by
/// their deadline, as interrupted, so that no test stays `running` forever.
async fn expire_overdue_tests(
    store: Arc<Store>,
    service: Arc<Service>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EXPIRY_CHECK) => {}
        }
        let store = store.clone();
        let service = service.clone();
        let now = crate::clock::unix_ms_now();
        let expired = tokio::task::spawn_blocking(move || {
            let current = service.participant().current().map(|(id, _)| id);
            store.expire_overdue(now, |id| {
                current.as_deref() == Some(id)
                    || service
                        .origin()
                        .snapshot(id)
                        .is_some_and(|s| !s.meta.phase.is_terminal())
            })
        })
        .await
        .unwrap_or_default();
        for id in expired {
            tracing::warn!(test = %id, "no sealed result came by the test's deadline: marked interrupted");
        }
    }
}

/// Connects to the API server when configured (and in a pod, for `auto`).
async fn kube_context(settings: &AgentSettings) -> Option<crate::kube::KubeContext> {
    use super::config::KubeMode;
    let mode = match settings.kube {
        KubeMode::Auto => crate::kube::KubeMode::Auto,
        KubeMode::On => crate::kube::KubeMode::On,
        KubeMode::Off => crate::kube::KubeMode::Off,
    };
    match crate::kube::connect(mode).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!("kube: {e}; running without the Kubernetes features");
            None
        }
    }
}

/// How long a stopping agent waits for its share to end and its results to
/// be delivered.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Asks to wake every [`PROBE_EVERY`](crate::engine::saturation::PROBE_EVERY)
/// and records how late it woke: the scheduling lag `/metrics` exports
/// (the same probe as a run's, but always on, so a scrape sees it whether
/// or not a test runs).
async fn probe_lag(lags: Arc<crate::engine::saturation::LagCounts>, stop: CancellationToken) {
    use crate::engine::saturation::PROBE_EVERY;
    let mut next = tokio::time::Instant::now() + PROBE_EVERY;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {
                let now = tokio::time::Instant::now();
                lags.record(now.saturating_duration_since(next));
                next = now + PROBE_EVERY;
            }
        }
    }
}
