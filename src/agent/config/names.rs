//! How agent settings are spelled (flag and environment variable) and where a value came from, so
//! every error can point a person at the exact thing they set.

use std::fmt;

/// One agent setting: its command-line flag and its environment variable. At least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The flag, with its dashes (`--node-id`); `None` for settings only the environment carries.
    pub flag: Option<&'static str>,
    /// The environment variable (`VOLLEY_NODE_ID`); `None` for flag-only settings (`--no-auth`).
    pub env: Option<&'static str>,
}

const fn both(flag: &'static str, env: &'static str) -> Setting {
    Setting {
        flag: Some(flag),
        env: Some(env),
    }
}

const fn env_only(env: &'static str) -> Setting {
    Setting {
        flag: None,
        env: Some(env),
    }
}

// === impl Setting ===

impl Setting {
    /// The agent's id in the fleet.
    pub const NODE_ID: Setting = both("--node-id", "VOLLEY_NODE_ID");
    /// Agents only join agents with the same cluster id.
    pub const CLUSTER_ID: Setting = both("--cluster-id", "VOLLEY_CLUSTER_ID");
    /// Labels LoadTests select agents by.
    pub const LABELS: Setting = both("--label", "VOLLEY_LABELS");
    /// Where gossip (UDP) listens.
    pub const GOSSIP_LISTEN: Setting = both("--gossip-listen", "VOLLEY_GOSSIP_LISTEN");
    /// The gossip address peers are told.
    pub const GOSSIP_ADVERTISE: Setting = both("--gossip-advertise", "VOLLEY_GOSSIP_ADVERTISE");
    /// Gossip addresses of agents to join through.
    pub const SEEDS: Setting = both("--seed", "VOLLEY_SEEDS");
    /// Where the QUIC transport (UDP) listens.
    pub const QUIC_LISTEN: Setting = both("--quic-listen", "VOLLEY_QUIC_LISTEN");
    /// The QUIC address peers are told.
    pub const QUIC_ADVERTISE: Setting = both("--quic-advertise", "VOLLEY_QUIC_ADVERTISE");
    /// Where the HTTP API (TCP) listens.
    pub const API_LISTEN: Setting = both("--api-listen", "VOLLEY_API_LISTEN");
    /// The API address peers and clients are told.
    pub const API_ADVERTISE: Setting = both("--api-advertise", "VOLLEY_API_ADVERTISE");
    /// The agent's weight in every test's share.
    pub const CAPACITY: Setting = both("--capacity", "VOLLEY_CAPACITY");
    /// File holding the API bearer token.
    pub const TOKEN_FILE: Setting = both("--token-file", "VOLLEY_TOKEN_FILE");
    /// Explicitly running the API without a token.
    pub const NO_AUTH: Setting = Setting {
        flag: Some("--no-auth"),
        env: None,
    };
    /// The fleet CA certificate (trust bundle).
    pub const CA_CERT: Setting = both("--ca-cert", "VOLLEY_CA_CERT");
    /// The fleet CA private key.
    pub const CA_KEY: Setting = both("--ca-key", "VOLLEY_CA_KEY");
    /// A given agent certificate.
    pub const CERT: Setting = both("--cert", "VOLLEY_CERT");
    /// The given agent certificate's private key.
    pub const KEY: Setting = both("--key", "VOLLEY_KEY");
    /// A file holding the fleet's gossip secret (instead of deriving it from the CA key).
    pub const GOSSIP_SECRET_FILE: Setting =
        both("--gossip-secret-file", "VOLLEY_GOSSIP_SECRET_FILE");
    /// Most API connections served at once.
    pub const API_MAX_CONNECTIONS: Setting =
        both("--api-max-connections", "VOLLEY_API_MAX_CONNECTIONS");
    /// Where results are kept until sealed.
    pub const DATA_DIR: Setting = both("--data-dir", "VOLLEY_DATA_DIR");
    /// How often gossip rounds run.
    pub const GOSSIP_INTERVAL: Setting = both("--gossip-interval", "VOLLEY_GOSSIP_INTERVAL");
    /// Default lead time before a test's shared start instant.
    pub const LEAD_TIME: Setting = both("--lead-time", "VOLLEY_LEAD_TIME");
    /// Largest accepted clock offset to a peer.
    pub const CLOCK_TOLERANCE: Setting = both("--clock-tolerance", "VOLLEY_CLOCK_TOLERANCE");
    /// What to do about a larger offset.
    pub const CLOCK_POLICY: Setting = both("--clock-policy", "VOLLEY_CLOCK_POLICY");
    /// How long load continues without origin or successor.
    pub const ORPHAN_TIMEOUT: Setting = both("--orphan-timeout", "VOLLEY_ORPHAN_TIMEOUT");
    /// Whether the Kubernetes integration runs.
    pub const KUBE: Setting = both("--kube", "VOLLEY_KUBE");
    /// Bounds of `/metrics`' latency buckets.
    pub const METRICS_BUCKETS: Setting = both("--metrics-buckets", "VOLLEY_METRICS_BUCKETS");
    /// Most VUs a plan may ask of this agent.
    pub const MAX_VUS: Setting = both("--max-vus", "VOLLEY_MAX_VUS");
    /// Most iterations per second a plan may ask of this agent.
    pub const MAX_RATE: Setting = both("--max-rate", "VOLLEY_MAX_RATE");
    /// Longest test this agent runs.
    pub const MAX_DURATION: Setting = both("--max-duration", "VOLLEY_MAX_DURATION");
    /// Resident memory at which a running test is stopped.
    pub const MEMORY_CEILING: Setting = both("--memory-ceiling", "VOLLEY_MEMORY_CEILING");
    /// Destinations requests may go to (CIDRs, addresses, host patterns).
    pub const EGRESS_ALLOW: Setting = both("--egress-allow", "VOLLEY_EGRESS_ALLOW");
    /// Destinations requests may not go to.
    pub const EGRESS_DENY: Setting = both("--egress-deny", "VOLLEY_EGRESS_DENY");
    /// Whether link-local and cloud metadata addresses are denied.
    pub const EGRESS_DEFAULT_DENY: Setting =
        both("--egress-default-deny", "VOLLEY_EGRESS_DEFAULT_DENY");
    /// Outputs of the fleet tests this agent coordinates, unless a test names its own.
    pub const OUT: Setting = both("--out", "VOLLEY_OUT");
    /// Namespaces whose LoadTests are watched besides the agent's own.
    pub const WATCH_NAMESPACES: Setting = both("--watch-namespaces", "VOLLEY_WATCH_NAMESPACES");
    /// The pod's namespace (Kubernetes downward API).
    pub const POD_NAMESPACE: Setting = env_only("POD_NAMESPACE");
    /// The pod's IP (Kubernetes downward API).
    pub const POD_IP: Setting = env_only("POD_IP");
    /// The node the pod runs on (Kubernetes downward API).
    pub const NODE_NAME: Setting = env_only("NODE_NAME");
    /// The label selector of the fleet's agent pods, for gossip seeds from the API.
    pub const SEED_SELECTOR: Setting = env_only("VOLLEY_SEED_SELECTOR");

    /// Every setting, in the order they are checked: for help texts and documentation.
    pub const ALL: [Setting; 40] = [
        Setting::NODE_ID,
        Setting::CLUSTER_ID,
        Setting::LABELS,
        Setting::CAPACITY,
        Setting::GOSSIP_LISTEN,
        Setting::GOSSIP_ADVERTISE,
        Setting::SEEDS,
        Setting::QUIC_LISTEN,
        Setting::QUIC_ADVERTISE,
        Setting::API_LISTEN,
        Setting::API_ADVERTISE,
        Setting::TOKEN_FILE,
        Setting::NO_AUTH,
        Setting::CA_CERT,
        Setting::CA_KEY,
        Setting::CERT,
        Setting::KEY,
        Setting::GOSSIP_SECRET_FILE,
        Setting::API_MAX_CONNECTIONS,
        Setting::DATA_DIR,
        Setting::GOSSIP_INTERVAL,
        Setting::LEAD_TIME,
        Setting::CLOCK_TOLERANCE,
        Setting::CLOCK_POLICY,
        Setting::ORPHAN_TIMEOUT,
        Setting::KUBE,
        Setting::METRICS_BUCKETS,
        Setting::MAX_VUS,
        Setting::MAX_RATE,
        Setting::MAX_DURATION,
        Setting::MEMORY_CEILING,
        Setting::EGRESS_ALLOW,
        Setting::EGRESS_DENY,
        Setting::EGRESS_DEFAULT_DENY,
        Setting::OUT,
        Setting::WATCH_NAMESPACES,
        Setting::POD_NAMESPACE,
        Setting::POD_IP,
        Setting::NODE_NAME,
        Setting::SEED_SELECTOR,
    ];
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.flag, self.env) {
            (Some(flag), Some(env)) => write!(f, "{flag} / {env}"),
            (Some(one), None) | (None, Some(one)) => f.write_str(one),
            (None, None) => f.write_str("(unnamed setting)"),
        }
    }
}

/// Where the value of a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The command-line flag.
    Flag,
    /// This environment variable (the setting's own, or a fallback such as `NODE_NAME`).
    Env(&'static str),
    /// Neither was set; the value is this default (described for a person: "500ms", "the hostname
    /// in /etc/hostname").
    Default(String),
    /// Neither was set and there is no value (used when something is missing).
    Unset,
}

/// A setting plus where its value came from: what an error message starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The setting, with both spellings.
    pub setting: Setting,
    /// Where the offending value came from.
    pub via: Via,
}

// === impl Name ===

impl Name {
    /// The setting's name when its value came from the flag.
    pub fn flag(setting: Setting) -> Name {
        Name {
            setting,
            via: Via::Flag,
        }
    }

    /// The setting's name when its value came from environment variable `var`.
    pub fn env(setting: Setting, var: &'static str) -> Name {
        Name {
            setting,
            via: Via::Env(var),
        }
    }

    /// The setting's name when it was not set and `default` was used.
    pub fn default(setting: Setting, default: impl Into<String>) -> Name {
        Name {
            setting,
            via: Via::Default(default.into()),
        }
    }

    /// The setting's name when it was not set at all.
    pub fn unset(setting: Setting) -> Name {
        Name {
            setting,
            via: Via::Unset,
        }
    }
}

/// Names the spelling the person used: the flag or the variable they set, or both spellings (and
/// the default) when they set neither.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.via {
            Via::Flag => match self.setting.flag {
                Some(flag) => f.write_str(flag),
                None => write!(f, "{}", self.setting),
            },
            Via::Env(var) => f.write_str(var),
            Via::Default(default) => write!(f, "{} (default: {default})", self.setting),
            Via::Unset => write!(f, "{}", self.setting),
        }
    }
}
