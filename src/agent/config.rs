//! Agent settings: command-line flags ([`AgentArgs`]) and `VOLLEY_*` environment variables turned
//! into validated, typed [`AgentSettings`] before any port is bound.
//!
//! Two stages. [`AgentArgs`] holds the flags as given; [`AgentSettings::load`] merges them with
//! the environment (a flag wins over its variable), applies defaults, parses every value, reads
//! the files it names (API token, certificates, keys) and checks the data directory. The
//! environment and the file system come in through the [`Source`] and [`Files`] seams, so tests
//! use a map and never touch the process environment. Every problem is collected and reported
//! together ([`ConfigErrors`]), each naming the setting, the value and the expected form. The
//! admission limits and the memory ceiling are in `limits` ([`LimitSettings`]), the egress policy
//! in `egress` ([`egress_from_env`]).

mod egress;
mod error;
mod limits;
mod load;
mod names;
mod network;
mod outputs;
mod parse;
mod secrets;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::fleet::ca::{FleetCa, Identity, TrustBundle};
use crate::fleet::membership::GossipKey;
use crate::plan::egress::EgressPolicy;

pub use egress::egress_from_env;
pub use error::{ConfigError, ConfigErrors};
pub use limits::{DEFAULT_CEILING_PERCENT, LimitSettings};
pub use names::{Name, Setting, Via};
pub use parse::Seed;
pub use secrets::{ApiAuth, ApiToken};

/// Default gossip listen address (UDP).
pub const DEFAULT_GOSSIP_LISTEN: SocketAddr = any_v4(7946);
/// Default QUIC listen address (UDP).
pub const DEFAULT_QUIC_LISTEN: SocketAddr = any_v4(7947);
/// Default API listen address (TCP).
pub const DEFAULT_API_LISTEN: SocketAddr = any_v4(7070);
/// Default for the most API connections served at once.
pub const DEFAULT_API_MAX_CONNECTIONS: usize = crate::api::DEFAULT_MAX_CONNECTIONS;
/// Default cluster id.
pub const DEFAULT_CLUSTER_ID: &str = "volley";
/// Default data directory (the DaemonSet mounts a volume here).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/volley";
/// Default gossip interval.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(500);
/// Default lead time between agreeing on a start instant and reaching it.
pub const DEFAULT_LEAD_TIME: Duration = Duration::from_secs(2);
/// Default largest accepted clock offset to a peer.
pub const DEFAULT_CLOCK_TOLERANCE: Duration = Duration::from_millis(25);
/// Default time load goes on with neither the test's origin nor its successor reachable.
pub const DEFAULT_ORPHAN_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the node id defaults come from when nothing names it, in order.
pub const HOSTNAME_FILES: [&str; 2] = ["/proc/sys/kernel/hostname", "/etc/hostname"];
/// Largest file the settings read (tokens, PEMs, hostnames are far smaller): a setting pointing
/// at a device or a huge file fails instead of hanging or filling memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

const fn any_v4(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
}

// ===== seams =====

/// Where environment variables come from: the process environment in production ([`Env`]), a map
/// in tests ([`MapSource`]).
pub trait Source {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment. A value that is not valid UTF-8 is passed on with replacement
/// characters, so validation reports it instead of it being silently ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var_os(key).map(|value| value.to_string_lossy().into_owned())
    }
}

/// Environment variables from a map: for tests and for embedding the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapSource(pub BTreeMap<String, String>);

impl Source for MapSource {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapSource {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        MapSource(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// The file system as the settings use it: reading small text files and checking that a
/// directory can be created and written.
pub trait Files {
    /// Reads a whole UTF-8 text file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Creates `path` (and parents) if needed, then writes and removes a probe file in it.
    fn probe_dir(&self, path: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFiles;

impl Files for OsFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        let file = std::fs::File::open(path)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {MAX_FILE_BYTES} bytes, too large for a setting file"),
            ));
        }
        Ok(text)
    }

    fn probe_dir(&self, path: &Path) -> io::Result<()> {
        let step = |what: &'static str| {
            move |e: io::Error| io::Error::new(e.kind(), format!("cannot {what}: {e}"))
        };
        std::fs::create_dir_all(path).map_err(step("create it"))?;
        let probe = path.join(format!(".volley-probe-{}", std::process::id()));
        std::fs::write(&probe, b"volley").map_err(step("write a file in it"))?;
        std::fs::remove_file(&probe).map_err(step("remove a file from it"))
    }
}

// ===== flags =====

/// The `volley agent` flags. Each has a `VOLLEY_*` variable (read by [`AgentSettings::load`], not
/// by clap, so tests need no process environment); a flag wins over its variable. Values stay
/// text here and are all checked together in `load`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// This agent's id in the fleet [env: VOLLEY_NODE_ID] [default: NODE_NAME, else the hostname]
    #[arg(long, value_name = "ID", help_heading = "Identity")]
    pub node_id: Option<String>,
    /// Agents only join agents with the same cluster id [env: VOLLEY_CLUSTER_ID] [default: volley]
    #[arg(long, value_name = "ID", help_heading = "Identity")]
    pub cluster_id: Option<String>,
    /// A label LoadTests can select this agent by; repeatable, merged with VOLLEY_LABELS (k=v,k=v)
    #[arg(long = "label", value_name = "KEY=VALUE", help_heading = "Identity")]
    pub labels: Vec<String>,
    /// This agent's weight in every test's share [env: VOLLEY_CAPACITY] [default: detected]
    #[arg(long, value_name = "WEIGHT", help_heading = "Identity")]
    pub capacity: Option<String>,

    /// Gossip (UDP) listen address [env: VOLLEY_GOSSIP_LISTEN] [default: 0.0.0.0:7946]
    #[arg(long, value_name = "IP:PORT", help_heading = "Network")]
    pub gossip_listen: Option<String>,
    /// Gossip address peers are told [env: VOLLEY_GOSSIP_ADVERTISE]
    /// [default: the listen address, else POD_IP]
    #[arg(long, value_name = "IP:PORT", help_heading = "Network")]
    pub gossip_advertise: Option<String>,
    /// An agent to join through; repeatable, replaces VOLLEY_SEEDS (host:port,host:port)
    #[arg(long = "seed", value_name = "HOST:PORT", help_heading = "Network")]
    pub seeds: Vec<String>,
    /// QUIC (UDP) listen address [env: VOLLEY_QUIC_LISTEN] [default: 0.0.0.0:7947]
    #[arg(long, value_name = "IP:PORT", help_heading = "Network")]
    pub quic_listen: Option<String>,
    /// QUIC address peers are told [env: VOLLEY_QUIC_ADVERTISE]
    /// [default: the listen address, else POD_IP]
    #[arg(long, value_name = "IP:PORT", help_heading = "Network")]
    pub quic_advertise: Option<String>,
    /// HTTP API (TCP) listen address [env: VOLLEY_API_LISTEN] [default: 0.0.0.0:7070]
    #[arg(long, value_name = "IP:PORT", help_heading = "Network")]
    pub api_listen: Option<String>,
    /// API address peers and clients are told [env: VOLLEY_API_ADVERTISE]
    /// [default: the listen address, else POD_IP]
    #[arg(long, value_name = "IP:PORT", help_heading = "Network")]
    pub api_advertise: Option<String>,

    /// File holding the API bearer token [env: VOLLEY_TOKEN_FILE]
    #[arg(long, value_name = "PATH", help_heading = "Security")]
    pub token_file: Option<PathBuf>,
    /// Serve the API without a token; only allowed when the API listens on loopback
    #[arg(long, help_heading = "Security")]
    pub no_auth: bool,
    /// Fleet CA certificate, also the trust bundle [env: VOLLEY_CA_CERT]
    #[arg(long, value_name = "PATH", help_heading = "Security")]
    pub ca_cert: Option<PathBuf>,
    /// Fleet CA key: the agent issues itself short-lived certificates [env: VOLLEY_CA_KEY]
    #[arg(long, value_name = "PATH", help_heading = "Security")]
    pub ca_key: Option<PathBuf>,
    /// This agent's certificate, instead of --ca-key [env: VOLLEY_CERT]
    #[arg(long, value_name = "PATH", help_heading = "Security")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert [env: VOLLEY_KEY]
    #[arg(long, value_name = "PATH", help_heading = "Security")]
    pub key: Option<PathBuf>,
    /// File holding the fleet's gossip secret, the same on every agent
    /// [env: VOLLEY_GOSSIP_SECRET_FILE] [default: derived from --ca-key; required with --cert]
    #[arg(long, value_name = "PATH", help_heading = "Security")]
    pub gossip_secret_file: Option<PathBuf>,
    /// Most API connections served at once; more wait in the listen backlog
    /// [env: VOLLEY_API_MAX_CONNECTIONS] [default: 256]
    #[arg(long, value_name = "N", help_heading = "Network")]
    pub api_max_connections: Option<String>,

    /// Where results stay until sealed [env: VOLLEY_DATA_DIR] [default: /var/lib/volley]
    #[arg(long, value_name = "PATH", help_heading = "Runtime")]
    pub data_dir: Option<PathBuf>,
    /// Time between gossip rounds [env: VOLLEY_GOSSIP_INTERVAL] [default: 500ms]
    #[arg(long, value_name = "DURATION", help_heading = "Runtime")]
    pub gossip_interval: Option<String>,
    /// Default time from agreeing on a start to starting [env: VOLLEY_LEAD_TIME] [default: 2s]
    #[arg(long, value_name = "DURATION", help_heading = "Runtime")]
    pub lead_time: Option<String>,
    /// Largest accepted clock offset to a peer [env: VOLLEY_CLOCK_TOLERANCE] [default: 25ms]
    #[arg(long, value_name = "DURATION", help_heading = "Runtime")]
    pub clock_tolerance: Option<String>,
    /// refuse or warn when a peer's clock is off by more than the tolerance
    /// [env: VOLLEY_CLOCK_POLICY] [default: refuse]
    #[arg(long, value_name = "POLICY", help_heading = "Runtime")]
    pub clock_policy: Option<String>,
    /// Stop load after this long without the test's origin or successor
    /// [env: VOLLEY_ORPHAN_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "DURATION", help_heading = "Runtime")]
    pub orphan_timeout: Option<String>,
    /// Kubernetes integration: auto, on or off [env: VOLLEY_KUBE] [default: auto]
    #[arg(long, value_name = "MODE", help_heading = "Runtime")]
    pub kube: Option<String>,
    /// Upper bounds of /metrics' latency histogram buckets, in seconds or as durations,
    /// comma-separated [env: VOLLEY_METRICS_BUCKETS]
    /// [default: 1ms,2.5ms,5ms,10ms,25ms,50ms,100ms,250ms,500ms,1s,2.5s,5s,10s,20s,30s]
    #[arg(long, value_name = "BOUNDS", help_heading = "Runtime")]
    pub metrics_buckets: Option<String>,

    /// Most VUs a plan may ask of this agent [env: VOLLEY_MAX_VUS]
    /// [default: 75% of the memory limit at 64 KiB per VU, 192 KiB per script VU]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_vus: Option<String>,
    /// Most iterations per second a plan may ask of this agent [env: VOLLEY_MAX_RATE]
    /// [default: 500000 per CPU]
    #[arg(long, value_name = "PER_SECOND", help_heading = "Limits")]
    pub max_rate: Option<String>,
    /// Longest test this agent runs [env: VOLLEY_MAX_DURATION] [default: 168h]
    #[arg(long, value_name = "DURATION", help_heading = "Limits")]
    pub max_duration: Option<String>,
    /// Resident memory at which a running test is stopped [env: VOLLEY_MEMORY_CEILING]
    /// [default: 90% of the memory limit]
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub memory_ceiling: Option<String>,

    /// Only these destinations: CIDRs, addresses, host names or *.patterns, comma-separated
    /// [env: VOLLEY_EGRESS_ALLOW] [default: any not denied]
    #[arg(long, value_name = "RULES", help_heading = "Egress")]
    pub egress_allow: Option<String>,
    /// Never these destinations (wins over --egress-allow) [env: VOLLEY_EGRESS_DENY]
    #[arg(long, value_name = "RULES", help_heading = "Egress")]
    pub egress_deny: Option<String>,
    /// Deny link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
    /// metadata.google.internal, ...) [env: VOLLEY_EGRESS_DEFAULT_DENY] [default: true]
    #[arg(long, value_name = "BOOL", help_heading = "Egress")]
    pub egress_default_deny: Option<String>,

    /// Where the fleet tests this agent coordinates write their merged intervals, unless a test
    /// names its own: `influxdb=http://HOST:8086/DB`, comma-separated [env: VOLLEY_OUT]
    #[arg(long = "out", value_name = "NAME=ARG", help_heading = "Outputs")]
    pub out: Option<String>,

    /// Namespaces whose LoadTests this agent also serves, besides its own, comma-separated
    /// [env: VOLLEY_WATCH_NAMESPACES]
    #[arg(long, value_name = "NAMESPACES", help_heading = "Kubernetes")]
    pub watch_namespaces: Option<String>,
}

// ===== settings =====

pub use crate::fleet::service::ClockPolicy;

/// Whether the Kubernetes integration (node labels, LoadTest watch) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeMode {
    /// When the agent finds itself in a pod (service account present).
    Auto,
    /// Always; failing to reach the API server is an error.
    On,
    /// Never.
    Off,
}

/// How the agent gets its certificate for the fleet's mutual TLS.
// One value per process, built once at start: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TlsSettings {
    /// The agent holds the fleet CA and issues itself short-lived certificates.
    SelfIssued {
        /// The fleet CA (certificate and key).
        ca: FleetCa,
    },
    /// The agent was given a certificate and trusts the given CA bundle.
    Given {
        /// This agent's certificate and key.
        identity: Identity,
        /// The CAs peers' certificates must chain to.
        trust: TrustBundle,
        /// Where the certificate and key were read from: read again when
        /// they change (cert-manager renews them in place).
        files: Option<(PathBuf, PathBuf)>,
    },
}

/// Everything the agent needs to start, validated. Nothing here still needs parsing.
#[derive(Debug)]
pub struct AgentSettings {
    /// The agent's id in the fleet: stable across restarts so a restarted agent rejoins as itself.
    pub node_id: String,
    /// Agents only join agents with the same cluster id, so two fleets can share a network.
    pub cluster_id: String,
    /// Labels LoadTests select agents by (flags override the environment per key).
    pub labels: BTreeMap<String, String>,
    /// Where gossip binds (UDP).
    pub gossip_listen: SocketAddr,
    /// The gossip address peers dial. Port 0 (only when listening on port 0) means "the port the
    /// listener got": the agent fills it in after binding.
    pub gossip_advertise: SocketAddr,
    /// Agents to join through; empty for the first agent of a fleet. Names resolve when joining.
    pub seeds: Vec<Seed>,
    /// Where the QUIC transport binds (UDP).
    pub quic_listen: SocketAddr,
    /// The QUIC address peers dial (port 0 as for gossip).
    pub quic_advertise: SocketAddr,
    /// Where the HTTP API binds (TCP).
    pub api_listen: SocketAddr,
    /// The API address peers and clients are told (port 0 as for gossip).
    pub api_advertise: SocketAddr,
    /// This agent's weight in every test's share; `None`: the agent detects it from its CPUs.
    pub capacity: Option<f64>,
    /// How API clients authenticate.
    pub auth: ApiAuth,
    /// The agent's TLS identity and trust.
    pub tls: TlsSettings,
    /// The key every gossip datagram is authenticated with: from the gossip
    /// secret file, else derived from the fleet CA key every agent holds.
    pub gossip_key: GossipKey,
    /// Most API connections served at once.
    pub api_max_connections: usize,
    /// Where finished tests' results stay until sealed; checked writable at load.
    pub data_dir: PathBuf,
    /// Time between gossip rounds: liveness detection and state spread scale with it.
    pub gossip_interval: Duration,
    /// Default time between agreeing on a test's start instant and reaching it.
    pub lead_time: Duration,
    /// Largest clock offset to a peer that still allows a shared start.
    pub clock_tolerance: Duration,
    /// What happens beyond the tolerance.
    pub clock_policy: ClockPolicy,
    /// How long load goes on when neither the test's origin nor its successor is reachable.
    pub orphan_timeout: Duration,
    /// Whether the Kubernetes integration runs.
    pub kube: KubeMode,
    /// The pod's namespace (`POD_NAMESPACE`), where LoadTests are watched.
    pub namespace: Option<String>,
    /// The label selector of this fleet's agent pods (`VOLLEY_SEED_SELECTOR`), for gossip
    /// seeds listed from the API: the chart's includes the release instance, so two
    /// releases in one namespace never seed each other.
    pub seed_selector: String,
    /// The pod's IP (`POD_IP`); the advertise addresses default to it.
    pub pod_ip: Option<IpAddr>,
    /// The Kubernetes node (`NODE_NAME`), whose labels and CPUs the agent reads.
    pub node_name: Option<String>,
    /// What plans may ask of this agent, and the memory ceiling of a running test.
    pub limits: LimitSettings,
    /// Where this agent's requests may go: checked at submit, at prepare and at connect.
    pub egress: Arc<EgressPolicy>,
    /// Default outputs of the fleet tests this agent coordinates (`--out` values).
    pub outputs: Vec<String>,
    /// Namespaces whose LoadTests are served besides the agent's own.
    pub watch_namespaces: Vec<String>,
    /// Upper bounds (seconds) of the latency histogram `/metrics` exports.
    pub metrics_buckets: Vec<f64>,
}

// === impl AgentSettings ===

impl AgentSettings {
    /// Merges flags with the environment, applies defaults, parses and checks everything, reads the
    /// token and TLS files and probes the data directory. Returns every problem at once.
    pub fn load(
        args: &AgentArgs,
        env: &dyn Source,
        files: &dyn Files,
    ) -> Result<AgentSettings, ConfigErrors> {
        let mut loader = load::Loader::new(args, env, files);
        let settings = loader.run();
        let errors = loader.into_errors();
        match settings {
            Some(settings) if errors.is_empty() => Ok(settings),
            _ => {
                debug_assert!(!errors.is_empty(), "a missing value recorded no error");
                Err(ConfigErrors(errors))
            }
        }
    }
}
