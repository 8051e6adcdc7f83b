//! Membership settings, their load-fleet defaults, and their validation
//! before anything is bound or spawned.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::{ChitchatConfig, ChitchatId, FailureDetectorConfig, ProtocolVersion};

use super::MembershipError;

/// Default [`MembershipConfig::gossip_interval`].
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(500);
/// Default [`MembershipConfig::marked_for_deletion_grace`]: deleted keys
/// (a withdrawn announcement, a cleared test id) are remembered this long so
/// a peer that was briefly away still learns of the deletion.
pub const DEFAULT_MARKED_FOR_DELETION_GRACE: Duration = Duration::from_secs(15 * 60);

/// Heartbeat intervals kept by the phi-accrual detector. Large enough that a
/// few slow rounds on a saturated load node barely move the mean.
const SAMPLING_WINDOW: usize = 1_000;
/// Longest accepted node id (a Kubernetes node name is a DNS subdomain).
const MAX_NODE_ID_BYTES: usize = 253;
/// Longest accepted cluster id.
const MAX_CLUSTER_ID_BYTES: usize = 128;

/// Phi-accrual failure detection, as chitchat applies it.
///
/// chitchat's phi is `time since the last heartbeat / mean heartbeat
/// interval`. A node's heartbeat reaches an observer both directly and
/// through every peer's digest, so the observed mean interval is well below
/// the gossip interval (about 0.3 s at a 500 ms interval). With the
/// defaults a stopped node is declared dead after 1.5–3 s (measured on
/// simulated fleets of 3 to 12 nodes; checked by
/// `default_detection_declares_dead_within_three_seconds` in
/// `tests/membership.rs`, which also holds the view steady for 30 s without
/// a false death). Quick enough to re-cut shares during a test; a phi of 10
/// or 12 (3–4 s) suits nodes whose gossip loop may stall under heavy load.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureDetection {
    /// Phi above which a node is declared dead.
    pub phi: f64,
    /// Assumed heartbeat interval before any is observed; smooths the first
    /// samples so a newcomer is not declared dead after one slow round.
    pub initial_interval: Duration,
    /// Intervals above this are not sampled: a long pause (a node that was
    /// partitioned and returns) must not teach the detector to wait longer.
    pub max_interval: Duration,
    /// How long a dead incarnation stays known (listed by `dead()`, still
    /// gossiped for half of it) before it is forgotten.
    pub dead_grace: Duration,
}

impl Default for FailureDetection {
    fn default() -> Self {
        FailureDetection {
            phi: 8.0,
            initial_interval: DEFAULT_GOSSIP_INTERVAL,
            max_interval: Duration::from_secs(2),
            dead_grace: Duration::from_secs(10 * 60),
        }
    }
}

/// Everything membership needs to join a fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipConfig {
    /// Stable name of this node (the Kubernetes node name in a DaemonSet).
    pub node_id: String,
    /// Incarnation, new on every start ([`generation_now`]): peers then
    /// replace the old incarnation instead of ignoring the new one.
    pub generation: u64,
    /// Fleet name; gossip from another fleet is refused.
    pub cluster_id: String,
    /// Address the gossip socket is bound to (`0.0.0.0:7280` in a pod).
    pub listen: SocketAddr,
    /// Address peers reach this node at (the pod IP); never unspecified, never port 0.
    pub advertise: SocketAddr,
    /// `host:port` of seed nodes; host names are re-resolved every 60 s, so
    /// a headless Service name works as a seed.
    pub seeds: Vec<String>,
    /// Time between gossip rounds (each round talks to 3 random live peers).
    pub gossip_interval: Duration,
    /// When a silent node is declared dead.
    pub failure: FailureDetection,
    /// How long deleted keys are remembered (tombstones).
    pub marked_for_deletion_grace: Duration,
}

impl MembershipConfig {
    /// A configuration with the load-fleet defaults for everything timed.
    pub fn new(
        node_id: impl Into<String>,
        generation: u64,
        cluster_id: impl Into<String>,
        listen: SocketAddr,
        advertise: SocketAddr,
    ) -> Self {
        MembershipConfig {
            node_id: node_id.into(),
            generation,
            cluster_id: cluster_id.into(),
            listen,
            advertise,
            seeds: Vec::new(),
            gossip_interval: DEFAULT_GOSSIP_INTERVAL,
            failure: FailureDetection::default(),
            marked_for_deletion_grace: DEFAULT_MARKED_FOR_DELETION_GRACE,
        }
    }

    /// Checks every setting, so mistakes surface before any socket is used.
    pub fn validate(&self) -> Result<(), MembershipError> {
        let name_ok = |text: &str, max: usize| {
            !text.is_empty()
                && text.len() <= max
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if !name_ok(&self.node_id, MAX_NODE_ID_BYTES) {
            return Err(config_error(
                "node_id",
                &self.node_id,
                format!(
                    "1 to {MAX_NODE_ID_BYTES} bytes without spaces (e.g. the Kubernetes node name)"
                ),
            ));
        }
        if !name_ok(&self.cluster_id, MAX_CLUSTER_ID_BYTES) {
            return Err(config_error(
                "cluster_id",
                &self.cluster_id,
                format!("1 to {MAX_CLUSTER_ID_BYTES} bytes without spaces"),
            ));
        }
        if self.advertise.port() == 0 || self.advertise.ip().is_unspecified() {
            return Err(config_error(
                "advertise",
                &self.advertise.to_string(),
                "the address peers can reach, with a real IP and port (bind with port 0 first and advertise the bound address)",
            ));
        }
        for seed in &self.seeds {
            validate_seed(seed)?;
        }
        let positive = |field: &'static str, value: Duration| {
            if value.is_zero() {
                Err(config_error(
                    field,
                    &format!("{value:?}"),
                    "a duration above zero",
                ))
            } else {
                Ok(())
            }
        };
        positive("gossip_interval", self.gossip_interval)?;
        positive("failure.initial_interval", self.failure.initial_interval)?;
        positive("failure.max_interval", self.failure.max_interval)?;
        positive("failure.dead_grace", self.failure.dead_grace)?;
        positive("marked_for_deletion_grace", self.marked_for_deletion_grace)?;
        if !(self.failure.phi.is_finite() && self.failure.phi > 0.0) {
            return Err(config_error(
                "failure.phi",
                &self.failure.phi.to_string(),
                "a finite number above 0 (8 is typical)",
            ));
        }
        if self.failure.max_interval < self.gossip_interval {
            return Err(config_error(
                "failure.max_interval",
                &format!("{:?}", self.failure.max_interval),
                format!(
                    "at least the gossip interval ({:?}), or every heartbeat would be ignored",
                    self.gossip_interval
                ),
            ));
        }
        Ok(())
    }

    /// The chitchat configuration this maps to.
    pub(super) fn to_chitchat(&self) -> ChitchatConfig {
        ChitchatConfig {
            chitchat_id: ChitchatId::new(self.node_id.as_str(), self.generation, self.advertise),
            cluster_id: self.cluster_id.clone(),
            gossip_interval: self.gossip_interval,
            listen_addr: self.listen,
            seed_nodes: self.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: self.failure.phi,
                sampling_window_size: SAMPLING_WINDOW,
                max_interval: self.failure.max_interval,
                initial_interval: self.failure.initial_interval,
                dead_node_grace_period: self.failure.dead_grace,
            },
            marked_for_deletion_grace_period: self.marked_for_deletion_grace,
            catchup_callback: None,
            extra_liveness_predicate: None,
            // Every Volley agent runs chitchat 0.13, which reads both
            // formats; V1 compresses the digest (about half the traffic).
            protocol_version: ProtocolVersion::V1,
        }
    }
}

fn config_error(field: &'static str, value: &str, expected: impl Into<String>) -> MembershipError {
    MembershipError::Config {
        field,
        value: value.to_owned(),
        expected: expected.into(),
    }
}

/// Checks a seed's syntax: `ip:port`, `[ipv6]:port` or `host:port`, port
/// not 0. Names are resolved by chitchat (and re-resolved every 60 s).
pub fn validate_seed(seed: &str) -> Result<(), MembershipError> {
    const EXPECTED: &str = "`host:port` or `ip:port` with a port from 1 to 65535, e.g. `volley-gossip.perf.svc.cluster.local:7280` or `10.0.0.5:7280`";
    let bad = || MembershipError::Seed {
        seed: seed.to_owned(),
        expected: EXPECTED,
    };
    if let Ok(addr) = seed.parse::<SocketAddr>() {
        return if addr.port() == 0 || addr.ip().is_unspecified() {
            Err(bad())
        } else {
            Ok(())
        };
    }
    let (host, port) = seed.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.parse::<u16>().is_ok_and(|port| port != 0);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A generation for this start: nanoseconds since the Unix epoch. It only
/// has to grow from one start of a node to the next, which wall-clock
/// nanoseconds do unless the clock jumps back across a restart.
pub fn generation_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MembershipConfig {
        MembershipConfig::new(
            "node-a",
            1,
            "fleet",
            "0.0.0.0:7280".parse().expect("addr"),
            "10.0.0.1:7280".parse().expect("addr"),
        )
    }

    fn field_of(result: Result<(), MembershipError>) -> &'static str {
        match result {
            Err(MembershipError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().expect("defaults");
        assert_eq!(config().gossip_interval, Duration::from_millis(500));
    }

    #[test]
    fn bad_settings_name_their_field() {
        let mut c = config();
        c.node_id = String::new();
        assert_eq!(field_of(c.validate()), "node_id");
        let mut c = config();
        c.node_id = "two words".to_owned();
        assert_eq!(field_of(c.validate()), "node_id");
        let mut c = config();
        c.cluster_id = "x".repeat(200);
        assert_eq!(field_of(c.validate()), "cluster_id");
        let mut c = config();
        c.advertise = "0.0.0.0:7280".parse().expect("addr");
        assert_eq!(field_of(c.validate()), "advertise");
        let mut c = config();
        c.advertise = "10.0.0.1:0".parse().expect("addr");
        assert_eq!(field_of(c.validate()), "advertise");
        let mut c = config();
        c.gossip_interval = Duration::ZERO;
        assert_eq!(field_of(c.validate()), "gossip_interval");
        let mut c = config();
        c.failure.phi = f64::NAN;
        assert_eq!(field_of(c.validate()), "failure.phi");
        let mut c = config();
        c.failure.max_interval = Duration::from_millis(100);
        assert_eq!(field_of(c.validate()), "failure.max_interval");
        let mut c = config();
        c.failure.dead_grace = Duration::ZERO;
        let error = c.validate().expect_err("zero grace");
        assert!(error.to_string().contains("failure.dead_grace"), "{error}");
    }

    #[test]
    fn seeds_are_checked_up_front() {
        for good in [
            "10.0.0.5:7280",
            "[fd00::5]:7280",
            "localhost:7280",
            "volley-gossip.perf.svc.cluster.local:7280",
            "my_host-1:1",
        ] {
            validate_seed(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "10.0.0.5",
            "10.0.0.5:0",
            "0.0.0.0:7280",
            "host:",
            ":7280",
            "host:port",
            "host:70000",
            "-host:7280",
            "a..b:7280",
            "fd00::5:7280x",
            "http://host:7280",
            "host name:7280",
        ] {
            let error = validate_seed(bad).expect_err(bad);
            assert!(error.to_string().contains("host:port"), "{error}");
        }
        let mut c = config();
        c.seeds = vec!["10.0.0.2:7280".to_owned(), "nope".to_owned()];
        assert!(matches!(c.validate(), Err(MembershipError::Seed { seed, .. }) if seed == "nope"));
    }

    #[test]
    fn maps_onto_chitchat() {
        let mut c = config();
        c.seeds = vec!["10.0.0.2:7280".to_owned()];
        let cc = c.to_chitchat();
        assert_eq!(&*cc.chitchat_id.node_id, "node-a");
        assert_eq!(cc.chitchat_id.generation_id, 1);
        assert_eq!(cc.chitchat_id.gossip_advertise_addr, c.advertise);
        assert_eq!(cc.listen_addr, c.listen);
        assert_eq!(cc.seed_nodes, c.seeds);
        assert_eq!(cc.failure_detector_config.phi_threshold, c.failure.phi);
        assert_eq!(
            cc.failure_detector_config.dead_node_grace_period,
            c.failure.dead_grace
        );
        assert_eq!(cc.protocol_version, ProtocolVersion::V1);
    }

    #[test]
    fn generations_grow() {
        let first = generation_now();
        let second = generation_now();
        assert!(first > 0 && second >= first);
    }
}
