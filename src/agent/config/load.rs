//! The loading pass behind [`AgentSettings::load`]: looks every setting up (flag, then variable,
//! then default), parses it and checks the rules between settings, recording every problem instead
//! of stopping at the first. Identity and runtime settings live here, addresses in `network`, the
//! token and TLS material in `secrets`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::format_duration;

use super::error::ConfigError;
use super::names::{Name, Setting};
use super::parse::{self, Expected};
use super::{
    AgentArgs, AgentSettings, ClockPolicy, DEFAULT_API_LISTEN, DEFAULT_API_MAX_CONNECTIONS,
    DEFAULT_CLOCK_TOLERANCE, DEFAULT_CLUSTER_ID, DEFAULT_DATA_DIR, DEFAULT_GOSSIP_INTERVAL,
    DEFAULT_GOSSIP_LISTEN, DEFAULT_LEAD_TIME, DEFAULT_ORPHAN_TIMEOUT, DEFAULT_QUIC_LISTEN, Files,
    HOSTNAME_FILES, KubeMode, Source,
};

/// A setting's value as looked up: absent, present but rejected (error recorded), or parsed.
pub(super) enum Lookup<T> {
    Unset,
    Invalid,
    Value(T, Name),
}

/// One pass over all settings, collecting errors instead of stopping at the first.
pub(super) struct Loader<'a> {
    /// The flags as given.
    pub(super) args: &'a AgentArgs,
    /// The environment.
    env: &'a dyn Source,
    /// The file system (token, certificates, hostname, data directory).
    pub(super) files: &'a dyn Files,
    /// Every problem found so far, in the order settings are checked.
    pub(super) errors: Vec<ConfigError>,
}

/// The durations, which are checked against each other.
struct Timing {
    gossip_interval: Duration,
    lead_time: Duration,
    clock_tolerance: Duration,
    orphan_timeout: Duration,
}

// === impl Loader ===

impl<'a> Loader<'a> {
    pub(super) fn new(args: &'a AgentArgs, env: &'a dyn Source, files: &'a dyn Files) -> Self {
        Loader {
            args,
            env,
            files,
            errors: Vec::new(),
        }
    }

    pub(super) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// An environment variable, trimmed; empty counts as unset (templates render absent values so).
    pub(super) fn env_var(&self, var: &str) -> Option<String> {
        let value = self.env.get(var)?;
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The raw text of a single-valued setting: the flag if given, else its variable.
    fn raw(&self, setting: Setting, flag: Option<&String>) -> Option<(String, Name)> {
        if let Some(value) = flag {
            return Some((value.trim().to_owned(), Name::flag(setting)));
        }
        let var = setting.env?;
        self.env_var(var)
            .map(|value| (value, Name::env(setting, var)))
    }

    pub(super) fn lookup<T>(
        &mut self,
        setting: Setting,
        flag: Option<&String>,
        parse: impl FnOnce(&str) -> Result<T, Expected>,
    ) -> Lookup<T> {
        let Some((raw, name)) = self.raw(setting, flag) else {
            return Lookup::Unset;
        };
        match parse(&raw) {
            Ok(value) => Lookup::Value(value, name),
            Err(expected) => {
                self.errors.push(ConfigError::invalid(name, &raw, expected));
                Lookup::Invalid
            }
        }
    }

    /// A setting with a default: `None` only when the given value was rejected.
    pub(super) fn with_default<T>(
        &mut self,
        setting: Setting,
        flag: Option<&String>,
        default: T,
        describe_default: String,
        parse: impl FnOnce(&str) -> Result<T, Expected>,
    ) -> Option<(T, Name)> {
        match self.lookup(setting, flag, parse) {
            Lookup::Unset => Some((default, Name::default(setting, describe_default))),
            Lookup::Invalid => None,
            Lookup::Value(value, name) => Some((value, name)),
        }
    }

    /// A path setting: the flag if given, else its variable.
    pub(super) fn path(&self, setting: Setting, flag: Option<&PathBuf>) -> Option<(PathBuf, Name)> {
        if let Some(path) = flag {
            return Some((path.clone(), Name::flag(setting)));
        }
        let var = setting.env?;
        self.env_var(var)
            .map(|value| (PathBuf::from(value), Name::env(setting, var)))
    }

    /// Reads a file a setting names, recording why when it cannot.
    pub(super) fn read(&mut self, path: &Path, name: &Name) -> Option<String> {
        match self.files.read(path) {
            Ok(text) => Some(text),
            Err(source) => {
                self.errors.push(ConfigError::Read {
                    name: name.clone(),
                    path: path.to_path_buf(),
                    source,
                });
                None
            }
        }
    }

    /// Checks every setting; `None` when any was rejected (the errors say why).
    pub(super) fn run(&mut self) -> Option<AgentSettings> {
        let args = self.args;
        let pod_ip = self.pod_ip();
        let namespace = self.namespace();
        let seed_selector = self.seed_selector();
        let node_name = self.raw(Setting::NODE_NAME, None);
        let node_id = self.node_id(node_name.as_ref());
        let cluster_id = self.with_default(
            Setting::CLUSTER_ID,
            args.cluster_id.as_ref(),
            DEFAULT_CLUSTER_ID.to_owned(),
            DEFAULT_CLUSTER_ID.to_owned(),
            parse::id,
        );
        let labels = self.labels();
        let capacity = match self.lookup(Setting::CAPACITY, args.capacity.as_ref(), parse::capacity)
        {
            Lookup::Unset => Some(None),
            Lookup::Invalid => None,
            Lookup::Value(c, _) => Some(Some(c)),
        };

        let fallback_ip = pod_ip.flatten();
        let gossip = self.endpoint(
            (Setting::GOSSIP_LISTEN, args.gossip_listen.as_ref()),
            DEFAULT_GOSSIP_LISTEN,
            (Setting::GOSSIP_ADVERTISE, args.gossip_advertise.as_ref()),
            fallback_ip,
        );
        let quic = self.endpoint(
            (Setting::QUIC_LISTEN, args.quic_listen.as_ref()),
            DEFAULT_QUIC_LISTEN,
            (Setting::QUIC_ADVERTISE, args.quic_advertise.as_ref()),
            fallback_ip,
        );
        let api = self.endpoint(
            (Setting::API_LISTEN, args.api_listen.as_ref()),
            DEFAULT_API_LISTEN,
            (Setting::API_ADVERTISE, args.api_advertise.as_ref()),
            fallback_ip,
        );
        self.check_udp_ports(gossip.listen.as_ref(), quic.listen.as_ref());
        let seeds = self.seeds();

        let auth = self.auth(api.listen.as_ref());
        let tls = self.tls(node_id.as_ref());
        let gossip_key = self.gossip_key(tls.as_ref());
        let api_max_connections = self.with_default(
            Setting::API_MAX_CONNECTIONS,
            args.api_max_connections.as_ref(),
            DEFAULT_API_MAX_CONNECTIONS,
            DEFAULT_API_MAX_CONNECTIONS.to_string(),
            parse::connections,
        );
        let data_dir = self.data_dir();
        let timing = self.timing();
        let clock_policy = self.with_default(
            Setting::CLOCK_POLICY,
            args.clock_policy.as_ref(),
            ClockPolicy::Refuse,
            "refuse".to_owned(),
            |s| {
                let choices = [("refuse", ClockPolicy::Refuse), ("warn", ClockPolicy::Warn)];
                parse::keyword(s, &choices, "refuse or warn")
            },
        );
        let kube = self.with_default(
            Setting::KUBE,
            args.kube.as_ref(),
            KubeMode::Auto,
            "auto".to_owned(),
            |s| {
                let choices = [
                    ("auto", KubeMode::Auto),
                    ("on", KubeMode::On),
                    ("off", KubeMode::Off),
                ];
                parse::keyword(s, &choices, "auto, on or off")
            },
        );

        let metrics_buckets = self.with_default(
            Setting::METRICS_BUCKETS,
            args.metrics_buckets.as_ref(),
            crate::metrics::exposition::DEFAULT_BUCKETS.to_vec(),
            "1ms..30s".to_owned(),
            |s| crate::metrics::exposition::parse_buckets(s).map_err(Into::into),
        );
        let limits = self.limits();
        let egress = self.egress();
        let outputs = self.outputs();
        let watch_namespaces = self.watch_namespaces();

        let timing = timing?;
        Some(AgentSettings {
            node_id: node_id?.0,
            cluster_id: cluster_id?.0,
            labels: labels?,
            gossip_listen: gossip.listen?.0,
            gossip_advertise: gossip.advertise?,
            seeds: seeds?,
            quic_listen: quic.listen?.0,
            quic_advertise: quic.advertise?,
            api_listen: api.listen?.0,
            api_advertise: api.advertise?,
            capacity: capacity?,
            auth: auth?,
            tls: tls?,
            gossip_key: gossip_key?,
            api_max_connections: api_max_connections?.0,
            data_dir: data_dir?,
            gossip_interval: timing.gossip_interval,
            lead_time: timing.lead_time,
            clock_tolerance: timing.clock_tolerance,
            clock_policy: clock_policy?.0,
            orphan_timeout: timing.orphan_timeout,
            kube: kube?.0,
            namespace: namespace?,
            seed_selector: seed_selector?,
            pod_ip: pod_ip?,
            node_name: node_name.map(|(name, _)| name),
            limits: limits?,
            egress: egress?,
            outputs: outputs?,
            watch_namespaces: watch_namespaces?,
            metrics_buckets: metrics_buckets?.0,
        })
    }

    // ----- identity -----

    /// `POD_IP`: outer `None` when it is set but not an IP address.
    fn pod_ip(&mut self) -> Option<Option<IpAddr>> {
        match self.lookup(Setting::POD_IP, None, |s| {
            s.parse::<IpAddr>()
                .map_err(|_| Expected::Borrowed("an IP address, like 10.0.0.7 or fd00::7"))
        }) {
            Lookup::Unset => Some(None),
            Lookup::Invalid => None,
            Lookup::Value(ip, _) => Some(Some(ip)),
        }
    }

    /// `VOLLEY_SEED_SELECTOR`: `key=value` requirements joined by commas, as the
    /// chart derives them from its own pod labels (release instance included);
    /// [`crate::kube::seeds::AGENT_POD_SELECTOR`] when unset.
    fn seed_selector(&mut self) -> Option<String> {
        let default = crate::kube::seeds::AGENT_POD_SELECTOR;
        self.with_default(
            Setting::SEED_SELECTOR,
            None,
            default.to_owned(),
            default.to_owned(),
            parse::label_selector,
        )
        .map(|(selector, _)| selector)
    }

    /// `--watch-namespaces`: namespace names, comma-separated, each once.
    fn watch_namespaces(&mut self) -> Option<Vec<String>> {
        let args = self.args;
        let parse = |s: &str| -> Result<Vec<String>, Expected> {
            let mut out: Vec<String> = Vec::new();
            for ns in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !is_namespace(ns) {
                    return Err(Expected::Owned(format!(
                        "Kubernetes namespace names (1-63 characters a-z, 0-9 and '-'), \
                         comma-separated: {ns:?} is not one"
                    )));
                }
                if !out.iter().any(|n| n == ns) {
                    out.push(ns.to_owned());
                }
            }
            Ok(out)
        };
        match self.lookup(
            Setting::WATCH_NAMESPACES,
            args.watch_namespaces.as_ref(),
            parse,
        ) {
            Lookup::Unset => Some(Vec::new()),
            Lookup::Invalid => None,
            Lookup::Value(list, _) => Some(list),
        }
    }

    /// `POD_NAMESPACE`: outer `None` when it is set but not a namespace name.
    fn namespace(&mut self) -> Option<Option<String>> {
        let is_label = is_namespace;
        match self.lookup(Setting::POD_NAMESPACE, None, |s| {
            if is_label(s) {
                Ok(s.to_owned())
            } else {
                Err(Expected::Borrowed(
                    "a Kubernetes namespace name (1-63 characters a-z, 0-9 and '-')",
                ))
            }
        }) {
            Lookup::Unset => Some(None),
            Lookup::Invalid => None,
            Lookup::Value(ns, _) => Some(Some(ns)),
        }
    }

    /// The node id: `--node-id`, `VOLLEY_NODE_ID`, then `NODE_NAME` (stable across pod restarts),
    /// then the hostname.
    fn node_id(&mut self, node_name: Option<&(String, Name)>) -> Option<(String, Name)> {
        match self.lookup(Setting::NODE_ID, self.args.node_id.as_ref(), parse::node_id) {
            Lookup::Value(id, name) => return Some((id, name)),
            Lookup::Invalid => return None,
            Lookup::Unset => {}
        }
        if let Some((node_name, _)) = node_name {
            return self.fallback_id(node_name, Name::env(Setting::NODE_ID, "NODE_NAME"));
        }
        let mut failures = Vec::new();
        for file in HOSTNAME_FILES {
            match self.files.read(Path::new(file)) {
                Ok(text) if !text.trim().is_empty() => {
                    let name = Name::default(Setting::NODE_ID, format!("the hostname in {file}"));
                    return self.fallback_id(text.trim(), name);
                }
                Ok(_) => failures.push(format!("{file} is empty")),
                Err(e) => failures.push(format!("{file}: {e}")),
            }
        }
        self.errors.push(ConfigError::Missing {
            name: Name::unset(Setting::NODE_ID),
            hint: format!(
                "there is no hostname to default to ({}); set it to an id that stays the same when \
                 the agent restarts",
                failures.join("; ")
            )
            .into(),
        });
        None
    }

    fn fallback_id(&mut self, value: &str, name: Name) -> Option<(String, Name)> {
        match parse::node_id(value) {
            Ok(id) => Some((id, name)),
            Err(expected) => {
                let expected = format!(
                    "{expected}; it is used as the node id because --node-id / VOLLEY_NODE_ID is \
                     not set, so set one of those"
                );
                self.errors
                    .push(ConfigError::invalid(name, value, expected));
                None
            }
        }
    }

    /// `VOLLEY_LABELS` merged with `--label` (a flag wins per key).
    fn labels(&mut self) -> Option<BTreeMap<String, String>> {
        let mut labels = BTreeMap::new();
        let mut ok = true;
        if let Some(var) = Setting::LABELS.env
            && let Some(text) = self.env_var(var)
        {
            ok &= self.label_items(&[text], Name::env(Setting::LABELS, var), &mut labels);
        }
        let mut flagged = BTreeMap::new();
        let flags = self.args.labels.clone();
        ok &= self.label_items(&flags, Name::flag(Setting::LABELS), &mut flagged);
        labels.extend(flagged);
        ok.then_some(labels)
    }

    fn label_items(
        &mut self,
        texts: &[String],
        name: Name,
        into: &mut BTreeMap<String, String>,
    ) -> bool {
        let mut ok = true;
        for text in texts {
            if text.trim().is_empty() {
                self.errors.push(ConfigError::invalid(
                    name.clone(),
                    text,
                    "key=value, like pool=load",
                ));
                ok = false;
            }
            for item in parse::list(text) {
                match parse::label(item) {
                    Ok((key, value)) => {
                        if let Some(previous) = into.get(&key) {
                            let expected = format!(
                                "a new label: key {key:?} is already given ({key}={previous})"
                            );
                            self.errors
                                .push(ConfigError::invalid(name.clone(), item, expected));
                            ok = false;
                        } else {
                            into.insert(key, value);
                        }
                    }
                    Err(expected) => {
                        self.errors
                            .push(ConfigError::invalid(name.clone(), item, expected));
                        ok = false;
                    }
                }
            }
        }
        ok
    }

    // ----- runtime -----

    /// The data directory, created if needed and checked writable.
    fn data_dir(&mut self) -> Option<PathBuf> {
        let (path, name) = self
            .path(Setting::DATA_DIR, self.args.data_dir.as_ref())
            .unwrap_or_else(|| {
                (
                    PathBuf::from(DEFAULT_DATA_DIR),
                    Name::default(Setting::DATA_DIR, DEFAULT_DATA_DIR),
                )
            });
        if path.as_os_str().is_empty() {
            self.errors.push(ConfigError::invalid(
                name,
                "",
                "a directory path, like /var/lib/volley",
            ));
            return None;
        }
        match self.files.probe_dir(&path) {
            Ok(()) => Some(path),
            Err(source) => {
                self.errors
                    .push(ConfigError::DataDir { name, path, source });
                None
            }
        }
    }

    fn duration(
        &mut self,
        setting: Setting,
        flag: Option<&String>,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Option<(Duration, Name)> {
        self.with_default(setting, flag, default, format_duration(default), |s| {
            parse::duration_within(s, min, max)
        })
    }

    /// The durations, each in its range, and the rules between them.
    fn timing(&mut self) -> Option<Timing> {
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        let args = self.args;
        let gossip_interval = self.duration(
            Setting::GOSSIP_INTERVAL,
            args.gossip_interval.as_ref(),
            DEFAULT_GOSSIP_INTERVAL,
            (ms(10), secs(60)),
        );
        let lead_time = self.duration(
            Setting::LEAD_TIME,
            args.lead_time.as_ref(),
            DEFAULT_LEAD_TIME,
            (ms(10), secs(3600)),
        );
        let clock_tolerance = self.duration(
            Setting::CLOCK_TOLERANCE,
            args.clock_tolerance.as_ref(),
            DEFAULT_CLOCK_TOLERANCE,
            (ms(1), secs(60)),
        );
        let orphan_timeout = self.duration(
            Setting::ORPHAN_TIMEOUT,
            args.orphan_timeout.as_ref(),
            DEFAULT_ORPHAN_TIMEOUT,
            (ms(100), secs(3600)),
        );
        if let (Some((tolerance, t_name)), Some((lead, l_name))) = (&clock_tolerance, &lead_time)
            && tolerance >= lead
        {
            self.errors.push(ConfigError::Inconsistent {
                first: t_name.clone(),
                second: l_name.clone(),
                detail: format!(
                    "the clock tolerance ({}) must be shorter than the lead time ({}): agents \
                     whose clocks differ by more than the lead time cannot all start at the \
                     shared instant",
                    format_duration(*tolerance),
                    format_duration(*lead)
                ),
            });
        }
        if let (Some((orphan, o_name)), Some((interval, i_name))) =
            (&orphan_timeout, &gossip_interval)
            && *orphan < interval.saturating_mul(2)
        {
            self.errors.push(ConfigError::Inconsistent {
                first: o_name.clone(),
                second: i_name.clone(),
                detail: format!(
                    "the orphan timeout ({}) must be at least twice the gossip interval ({}): a \
                     single late gossip round must not stop a running test",
                    format_duration(*orphan),
                    format_duration(*interval)
                ),
            });
        }
        Some(Timing {
            gossip_interval: gossip_interval?.0,
            lead_time: lead_time?.0,
            clock_tolerance: clock_tolerance?.0,
            orphan_timeout: orphan_timeout?.0,
        })
    }
}

/// A Kubernetes namespace name: a DNS-1123 label.
fn is_namespace(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
