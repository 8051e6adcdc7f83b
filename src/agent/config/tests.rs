//! Tests of the agent settings: defaults, environment, flag-over-environment, every error message,
//! and the rules between settings. Files come from memory here; `tests/tls.rs` uses real PEM files
//! on disk, and `tests/values.rs` covers the individual settings' values and errors.

mod tls;
mod values;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Parser;

use super::*;

const TOKEN_PATH: &str = "/run/volley/token";
const TOKEN: &str = "s3cr3t-t0ken-value";
const CA_CERT_PATH: &str = "/etc/volley/ca/ca.crt";
const CA_KEY_PATH: &str = "/etc/volley/ca/ca.key";

/// A command line embedding the agent flags as `volley agent` does, to test the real spellings.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    agent: AgentArgs,
}

/// A fleet CA generated once for the in-memory tests: (certificate PEM, key PEM).
fn test_ca() -> &'static (String, String) {
    static CA: OnceLock<(String, String)> = OnceLock::new();
    CA.get_or_init(|| {
        let ca = FleetCa::generate("volley test fleet").expect("generating a CA works");
        (ca.cert_pem().to_owned(), ca.key_pem().to_owned())
    })
}

/// Files in memory. Directories in `unwritable` fail the probe; every probed directory is recorded.
#[derive(Default)]
pub(super) struct MemFiles {
    files: BTreeMap<PathBuf, String>,
    unwritable: Vec<PathBuf>,
    probed: RefCell<Vec<PathBuf>>,
}

impl Files for MemFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }

    fn probe_dir(&self, path: &Path) -> io::Result<()> {
        self.probed.borrow_mut().push(path.to_path_buf());
        if self.unwritable.iter().any(|p| p == path) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "cannot create it: Permission denied",
            ));
        }
        Ok(())
    }
}

/// Flags, environment and files for one `load`, starting from the smallest valid setup: a
/// hostname, a token file, the fleet CA and a pod IP (the listen addresses default to 0.0.0.0).
pub(super) struct Fixture {
    pub(super) args: AgentArgs,
    pub(super) env: BTreeMap<String, String>,
    pub(super) files: MemFiles,
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        let (cert, key) = test_ca();
        let mut files = MemFiles::default();
        for (path, text) in [
            ("/proc/sys/kernel/hostname", "test-host\n"),
            (TOKEN_PATH, &format!("  {TOKEN}\n")),
            (CA_CERT_PATH, cert),
            (CA_KEY_PATH, key),
        ] {
            files.files.insert(PathBuf::from(path), text.to_owned());
        }
        let env = [
            ("VOLLEY_TOKEN_FILE", TOKEN_PATH),
            ("VOLLEY_CA_CERT", CA_CERT_PATH),
            ("VOLLEY_CA_KEY", CA_KEY_PATH),
            ("POD_IP", "10.0.0.7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Fixture {
            args: AgentArgs::default(),
            env,
            files,
        }
    }

    pub(super) fn env(mut self, key: &str, value: &str) -> Fixture {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    pub(super) fn without(mut self, key: &str) -> Fixture {
        self.env.remove(key);
        self
    }

    /// Replaces the flags with those parsed from a `volley agent` command line.
    pub(super) fn flags(mut self, flags: &[&str]) -> Fixture {
        let argv = std::iter::once("volley").chain(flags.iter().copied());
        self.args = match Cli::try_parse_from(argv) {
            Ok(cli) => cli.agent,
            Err(e) => panic!("flags {flags:?} do not parse: {e}"),
        };
        self
    }

    pub(super) fn file(mut self, path: &str, text: &str) -> Fixture {
        self.files
            .files
            .insert(PathBuf::from(path), text.to_owned());
        self
    }

    pub(super) fn no_file(mut self, path: &str) -> Fixture {
        self.files.files.remove(Path::new(path));
        self
    }

    pub(super) fn load_with(&self, files: &dyn Files) -> Result<AgentSettings, ConfigErrors> {
        let env = MapSource(self.env.clone());
        AgentSettings::load(&self.args, &env, files)
    }

    pub(super) fn load(&self) -> Result<AgentSettings, ConfigErrors> {
        self.load_with(&self.files)
    }

    /// The settings, or a failure listing every error.
    pub(super) fn ok(&self) -> AgentSettings {
        match self.load() {
            Ok(settings) => settings,
            Err(errors) => panic!("expected valid settings, got:\n{errors}"),
        }
    }

    /// The error report, one problem per line.
    pub(super) fn errors(&self) -> String {
        match self.load() {
            Ok(settings) => panic!("expected errors, got {settings:#?}"),
            Err(errors) => errors.to_string(),
        }
    }

    /// The single error line, failing when there is not exactly one.
    pub(super) fn error(&self) -> String {
        let report = self.errors();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 1, "expected one error, got:\n{report}");
        report
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address parses")
}

#[test]
fn defaults_apply_when_only_the_required_settings_are_given() {
    let fixture = Fixture::new();
    let s = fixture.ok();
    assert_eq!(s.node_id, "test-host");
    assert_eq!(s.cluster_id, "volley");
    assert!(s.labels.is_empty());
    assert_eq!(s.gossip_listen, addr("0.0.0.0:7946"));
    assert_eq!(s.gossip_advertise, addr("10.0.0.7:7946"));
    assert!(s.seeds.is_empty());
    assert_eq!(s.quic_listen, addr("0.0.0.0:7947"));
    assert_eq!(s.quic_advertise, addr("10.0.0.7:7947"));
    assert_eq!(s.api_listen, addr("0.0.0.0:7070"));
    assert_eq!(s.api_advertise, addr("10.0.0.7:7070"));
    assert_eq!(s.capacity, None);
    let ApiAuth::Token { token, file } = &s.auth else {
        panic!("a token file gives token auth, got {:?}", s.auth);
    };
    assert_eq!(
        (token.expose(), file.as_path()),
        (TOKEN, Path::new(TOKEN_PATH))
    );
    assert!(matches!(&s.tls, TlsSettings::SelfIssued { ca } if ca.name() == "volley test fleet"));
    assert_eq!(s.data_dir, Path::new("/var/lib/volley"));
    assert_eq!(
        fixture.files.probed.borrow().as_slice(),
        [PathBuf::from("/var/lib/volley")]
    );
    assert_eq!(s.gossip_interval, Duration::from_millis(500));
    assert_eq!(s.lead_time, Duration::from_secs(2));
    assert_eq!(s.clock_tolerance, Duration::from_millis(25));
    assert_eq!(s.clock_policy, ClockPolicy::Refuse);
    assert_eq!(s.orphan_timeout, Duration::from_secs(10));
    assert_eq!(s.kube, KubeMode::Auto);
    assert_eq!(s.namespace, None);
    assert_eq!(s.pod_ip, Some("10.0.0.7".parse().unwrap()));
    assert_eq!(s.node_name, None);
}

/// The environment the DaemonSet sets (deploy/daemonset.yaml), after the kubelet expands
/// `$(POD_IP)` and `$(POD_NAMESPACE)`.
fn daemonset_env() -> Fixture {
    Fixture::new()
        .env("NODE_NAME", "ip-10-0-1-23.eu-west-1.compute.internal")
        .env("POD_IP", "10.0.1.57")
        .env("POD_NAMESPACE", "volley")
        .env("VOLLEY_NODE_ID", "ip-10-0-1-23.eu-west-1.compute.internal")
        .env("VOLLEY_CLUSTER_ID", "volley")
        .env("VOLLEY_LABELS", "pool=load")
        .env("VOLLEY_GOSSIP_LISTEN", "0.0.0.0:7946")
        .env("VOLLEY_GOSSIP_ADVERTISE", "10.0.1.57:7946")
        .env(
            "VOLLEY_SEEDS",
            "volley-gossip.volley.svc.cluster.local:7946",
        )
        .env("VOLLEY_QUIC_LISTEN", "0.0.0.0:7947")
        .env("VOLLEY_QUIC_ADVERTISE", "10.0.1.57:7947")
        .env("VOLLEY_API_LISTEN", "0.0.0.0:7070")
        .env("VOLLEY_DATA_DIR", "/var/lib/volley")
        .env("VOLLEY_KUBE", "auto")
        .env("RUST_LOG", "info")
}

#[test]
fn the_daemonset_environment_loads() {
    let s = daemonset_env().ok();
    assert_eq!(s.node_id, "ip-10-0-1-23.eu-west-1.compute.internal");
    assert_eq!(
        s.node_name.as_deref(),
        Some("ip-10-0-1-23.eu-west-1.compute.internal")
    );
    assert_eq!(s.labels, BTreeMap::from([("pool".into(), "load".into())]));
    assert_eq!(s.gossip_advertise, addr("10.0.1.57:7946"));
    assert_eq!(s.quic_advertise, addr("10.0.1.57:7947"));
    // The manifests set no API advertise address: the pod IP stands in.
    assert_eq!(s.api_advertise, addr("10.0.1.57:7070"));
    assert_eq!(
        s.seeds.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["volley-gossip.volley.svc.cluster.local:7946"]
    );
    assert_eq!(s.namespace.as_deref(), Some("volley"));
    // deploy/ sets no seed selector: the one matching its pod labels.
    assert_eq!(
        s.seed_selector,
        "app.kubernetes.io/name=volley,app.kubernetes.io/component=agent"
    );
}

/// The chart's selector names its release, so two releases in one namespace
/// never seed each other; a malformed one is refused with the form expected.
#[test]
fn the_seed_selector_comes_from_the_environment() {
    let s = daemonset_env()
        .env(
            "VOLLEY_SEED_SELECTOR",
            "app.kubernetes.io/name=volley, app.kubernetes.io/instance=perf,app.kubernetes.io/component=agent",
        )
        .ok();
    assert_eq!(
        s.seed_selector,
        "app.kubernetes.io/name=volley,app.kubernetes.io/instance=perf,app.kubernetes.io/component=agent"
    );
    let report = daemonset_env()
        .env("VOLLEY_SEED_SELECTOR", "app.kubernetes.io/name")
        .errors();
    let line = report.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("VOLLEY_SEED_SELECTOR: \"app.kubernetes.io/name\" is not"),
        "{line}"
    );
    assert!(
        line.contains("key=value requirements joined by commas"),
        "{line}"
    );
}

#[test]
fn every_setting_reads_its_environment_variable() {
    let s = Fixture::new()
        .env("VOLLEY_NODE_ID", "agent-7")
        .env("VOLLEY_CLUSTER_ID", "staging")
        .env("VOLLEY_LABELS", "pool=load,zone=eu-1a")
        .env("VOLLEY_GOSSIP_LISTEN", "10.0.0.7:8946")
        .env("VOLLEY_GOSSIP_ADVERTISE", "192.0.2.7:18946")
        .env("VOLLEY_SEEDS", "agent-0:8946,10.0.0.8:8946")
        .env("VOLLEY_QUIC_LISTEN", "10.0.0.7:8947")
        .env("VOLLEY_QUIC_ADVERTISE", "192.0.2.7:18947")
        .env("VOLLEY_API_LISTEN", "127.0.0.1:8070")
        .env("VOLLEY_API_ADVERTISE", "192.0.2.7:18070")
        .env("VOLLEY_CAPACITY", "7.5")
        .env("VOLLEY_DATA_DIR", "/data/volley")
        .env("VOLLEY_GOSSIP_INTERVAL", "250ms")
        .env("VOLLEY_LEAD_TIME", "5s")
        .env("VOLLEY_CLOCK_TOLERANCE", "50ms")
        .env("VOLLEY_CLOCK_POLICY", "warn")
        .env("VOLLEY_ORPHAN_TIMEOUT", "1m")
        .env("VOLLEY_KUBE", "off")
        .env("POD_NAMESPACE", "load-tests")
        .env("NODE_NAME", "node-a")
        .ok();
    assert_eq!(s.node_id, "agent-7");
    assert_eq!(s.cluster_id, "staging");
    assert_eq!(s.labels.len(), 2);
    assert_eq!(s.labels["zone"], "eu-1a");
    assert_eq!(s.gossip_listen, addr("10.0.0.7:8946"));
    assert_eq!(s.gossip_advertise, addr("192.0.2.7:18946"));
    assert_eq!(s.seeds.len(), 2);
    assert_eq!(s.seeds[1].socket_addr(), Some(addr("10.0.0.8:8946")));
    assert_eq!(s.quic_listen, addr("10.0.0.7:8947"));
    assert_eq!(s.quic_advertise, addr("192.0.2.7:18947"));
    assert_eq!(s.api_listen, addr("127.0.0.1:8070"));
    assert_eq!(s.api_advertise, addr("192.0.2.7:18070"));
    assert_eq!(s.capacity, Some(7.5));
    assert_eq!(s.data_dir, Path::new("/data/volley"));
    assert_eq!(s.gossip_interval, Duration::from_millis(250));
    assert_eq!(s.lead_time, Duration::from_secs(5));
    assert_eq!(s.clock_tolerance, Duration::from_millis(50));
    assert_eq!(s.clock_policy, ClockPolicy::Warn);
    assert_eq!(s.orphan_timeout, Duration::from_secs(60));
    assert_eq!(s.kube, KubeMode::Off);
    assert_eq!(s.namespace.as_deref(), Some("load-tests"));
    assert_eq!(s.node_name.as_deref(), Some("node-a"));
}

#[test]
fn flags_win_over_the_environment() {
    let env_side = Fixture::new()
        .env("VOLLEY_NODE_ID", "from-env")
        .env("VOLLEY_CLUSTER_ID", "env-cluster")
        .env("VOLLEY_GOSSIP_LISTEN", "10.0.0.1:1000")
        .env("VOLLEY_GOSSIP_ADVERTISE", "10.0.0.1:1000")
        .env("VOLLEY_SEEDS", "env-seed:1")
        .env("VOLLEY_QUIC_LISTEN", "10.0.0.1:1001")
        .env("VOLLEY_QUIC_ADVERTISE", "10.0.0.1:1001")
        .env("VOLLEY_API_LISTEN", "10.0.0.1:1002")
        .env("VOLLEY_API_ADVERTISE", "10.0.0.1:1002")
        .env("VOLLEY_CAPACITY", "1")
        .env("VOLLEY_TOKEN_FILE", "/env/token")
        .env("VOLLEY_DATA_DIR", "/env/data")
        .env("VOLLEY_GOSSIP_INTERVAL", "1s")
        .env("VOLLEY_LEAD_TIME", "3s")
        .env("VOLLEY_CLOCK_TOLERANCE", "10ms")
        .env("VOLLEY_CLOCK_POLICY", "refuse")
        .env("VOLLEY_ORPHAN_TIMEOUT", "20s")
        .env("VOLLEY_KUBE", "off");
    let s = env_side
        .flags(&[
            "--node-id=from-flag",
            "--cluster-id=flag-cluster",
            "--gossip-listen=10.0.0.2:2000",
            "--gossip-advertise=10.0.0.2:2000",
            "--seed=flag-seed:2",
            "--quic-listen=10.0.0.2:2001",
            "--quic-advertise=10.0.0.2:2001",
            "--api-listen=10.0.0.2:2002",
            "--api-advertise=10.0.0.2:2002",
            "--capacity=2",
            &format!("--token-file={TOKEN_PATH}"),
            "--ca-cert",
            CA_CERT_PATH,
            "--ca-key",
            CA_KEY_PATH,
            "--data-dir=/flag/data",
            "--gossip-interval=100ms",
            "--lead-time=4s",
            "--clock-tolerance=20ms",
            "--clock-policy=warn",
            "--orphan-timeout=30s",
            "--kube=on",
        ])
        .ok();
    assert_eq!(s.node_id, "from-flag");
    assert_eq!(s.cluster_id, "flag-cluster");
    assert_eq!(s.gossip_listen, addr("10.0.0.2:2000"));
    assert_eq!(s.gossip_advertise, addr("10.0.0.2:2000"));
    assert_eq!(
        s.seeds.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["flag-seed:2"]
    );
    assert_eq!(s.quic_listen, addr("10.0.0.2:2001"));
    assert_eq!(s.quic_advertise, addr("10.0.0.2:2001"));
    assert_eq!(s.api_listen, addr("10.0.0.2:2002"));
    assert_eq!(s.api_advertise, addr("10.0.0.2:2002"));
    assert_eq!(s.capacity, Some(2.0));
    assert!(matches!(&s.auth, ApiAuth::Token { file, .. } if file == Path::new(TOKEN_PATH)));
    assert_eq!(s.data_dir, Path::new("/flag/data"));
    assert_eq!(s.gossip_interval, Duration::from_millis(100));
    assert_eq!(s.lead_time, Duration::from_secs(4));
    assert_eq!(s.clock_tolerance, Duration::from_millis(20));
    assert_eq!(s.clock_policy, ClockPolicy::Warn);
    assert_eq!(s.orphan_timeout, Duration::from_secs(30));
    assert_eq!(s.kube, KubeMode::On);
}

#[test]
fn the_setting_table_matches_the_flags_clap_accepts() {
    for setting in Setting::ALL {
        let Some(flag) = setting.flag else { continue };
        let argv: Vec<&str> = if setting == Setting::NO_AUTH {
            vec!["volley", flag]
        } else {
            vec!["volley", flag, "x"]
        };
        if let Err(e) = Cli::try_parse_from(&argv) {
            panic!("{setting}: clap rejects {argv:?}: {e}");
        }
        if let Some(env) = setting.env {
            assert!(
                env.starts_with("VOLLEY_"),
                "{setting}: flags pair with VOLLEY_* variables"
            );
        }
    }
    assert!(Cli::try_parse_from(["volley", "--no-such-flag", "x"]).is_err());
}

#[test]
fn the_help_names_each_flag_with_its_variable() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for setting in Setting::ALL {
        let (Some(flag), Some(env)) = (setting.flag, setting.env) else {
            continue;
        };
        let line = help
            .lines()
            .position(|line| line.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing from help:\n{help}"));
        let entry: String = help.lines().skip(line).take(4).collect();
        assert!(
            entry.contains(env),
            "{flag}'s help does not name {env}:\n{entry}"
        );
    }
}

#[test]
fn all_problems_are_reported_together_one_per_line() {
    let report = Fixture::new()
        .env("VOLLEY_NODE_ID", "bad id!")
        .env("VOLLEY_SEEDS", "agent-0:99999")
        .env("VOLLEY_CAPACITY", "-3")
        .env("VOLLEY_LEAD_TIME", "soon")
        .env("VOLLEY_KUBE", "maybe")
        .without("VOLLEY_TOKEN_FILE")
        .errors();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 6, "{report}");
    assert!(lines[0].starts_with("VOLLEY_NODE_ID: \"bad id!\" is not an id"));
    assert_eq!(
        lines[1],
        "VOLLEY_CAPACITY: \"-3\" is not a positive number (this agent's weight in every test's \
         share), like 4 or 2.5"
    );
    assert_eq!(
        lines[2],
        "VOLLEY_SEEDS: \"agent-0:99999\" is not host:port (port must be 1-65535)"
    );
    assert!(lines[3].starts_with("--token-file / VOLLEY_TOKEN_FILE is not set: "));
    assert!(lines[4].starts_with("VOLLEY_LEAD_TIME: \"soon\" is not a duration"));
    assert_eq!(lines[5], "VOLLEY_KUBE: \"maybe\" is not auto, on or off");
}

#[test]
fn errors_name_the_setting_programmatically() {
    let Err(errors) = Fixture::new().env("VOLLEY_SEEDS", "x:0").load() else {
        panic!("a port 0 seed is refused");
    };
    assert_eq!(errors.len(), 1);
    let error = errors.iter().next().expect("one error");
    let name = error.name().expect("an Invalid error names its setting");
    assert_eq!(name.setting, Setting::SEEDS);
    assert_eq!(name.via, Via::Env("VOLLEY_SEEDS"));
    assert!(matches!(error, ConfigError::Invalid { value, .. } if value == "x:0"));
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "a".repeat(5000);
    let report = Fixture::new().env("VOLLEY_CLUSTER_ID", &long).error();
    assert!(report.len() < 400, "{report}");
    assert!(report.contains("aaaa…\" is not an id"), "{report}");
}

#[test]
fn empty_environment_values_count_as_unset() {
    let s = Fixture::new()
        .env("VOLLEY_SEEDS", "")
        .env("VOLLEY_CAPACITY", "  ")
        .env("VOLLEY_CLUSTER_ID", "")
        .ok();
    assert!(s.seeds.is_empty());
    assert_eq!(s.capacity, None);
    assert_eq!(s.cluster_id, "volley");
}

#[test]
fn the_process_environment_source_reads_real_variables() {
    // Only reads: PATH is set for every test process; the other name is never set.
    assert!(Env.get("PATH").is_some());
    assert_eq!(Env.get("VOLLEY_TEST_NEVER_SET_7f3a9c"), None);
    let map: MapSource = [("A", "1")].into_iter().collect();
    assert_eq!(map.get("A").as_deref(), Some("1"));
    assert_eq!(map.get("B"), None);
}

#[test]
fn os_files_read_small_text_files_and_refuse_huge_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("token");
    std::fs::write(&small, "abc\n").expect("write");
    assert_eq!(OsFiles.read(&small).expect("reads"), "abc\n");
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; (MAX_FILE_BYTES + 1) as usize]).expect("write");
    let err = OsFiles.read(&big).expect_err("too large");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("too large"), "{err}");
    let binary = dir.path().join("binary");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
    assert!(OsFiles.read(&binary).is_err());
    assert!(OsFiles.read(&dir.path().join("absent")).is_err());
}

#[test]
fn os_files_probe_creates_the_directory_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("a/b/data");
    OsFiles.probe_dir(&data).expect("probe succeeds");
    assert!(data.is_dir());
    assert_eq!(std::fs::read_dir(&data).expect("list").count(), 0);

    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    let err = OsFiles
        .probe_dir(&file)
        .expect_err("a file is no directory");
    assert!(err.to_string().starts_with("cannot create it"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the environment holds, loading returns settings or errors, never panics, and
    /// every reported line starts with the name of what was wrong.
    #[test]
    fn any_environment_is_settings_or_named_errors(
        values in proptest::collection::vec(proptest::option::of("\\PC{0,40}"), 12)
    ) {
        let keys = [
            "VOLLEY_NODE_ID", "VOLLEY_LABELS", "VOLLEY_SEEDS", "VOLLEY_GOSSIP_LISTEN",
            "VOLLEY_GOSSIP_ADVERTISE", "VOLLEY_API_LISTEN", "VOLLEY_CAPACITY",
            "VOLLEY_LEAD_TIME", "VOLLEY_CLOCK_TOLERANCE", "VOLLEY_KUBE", "POD_IP",
            "POD_NAMESPACE",
        ];
        let mut fixture = Fixture::new();
        for (key, value) in keys.iter().zip(values) {
            if let Some(value) = value {
                fixture = fixture.env(key, &value);
            }
        }
        if let Err(errors) = fixture.load() {
            proptest::prop_assert!(!errors.is_empty());
            for error in &errors {
                let line = error.to_string();
                let named = error.name().map(ToString::to_string).unwrap_or_default();
                let starts_named = line.starts_with(&named) || line.starts_with("--");
                proptest::prop_assert!(starts_named, "{}", line);
            }
        }
    }
}

#[test]
fn default_outputs_are_checked_as_a_fleet_tests_are() {
    let s = Fixture::new()
        .env(
            "VOLLEY_OUT",
            "influxdb=http://influx:8086/perf, influxdb=http://other:8086/k6?pushInterval=5s",
        )
        .ok();
    assert_eq!(
        s.outputs,
        [
            "influxdb=http://influx:8086/perf",
            "influxdb=http://other:8086/k6?pushInterval=5s"
        ]
    );
    assert!(Fixture::new().ok().outputs.is_empty());
    let e = Fixture::new().env("VOLLEY_OUT", "json=/tmp/x.json").error();
    assert!(
        e.contains("VOLLEY_OUT") && e.contains("a fleet test"),
        "{e}"
    );
}

#[test]
fn watched_namespaces_are_names_each_once() {
    let s = Fixture::new()
        .env("VOLLEY_WATCH_NAMESPACES", "team-a, team-b,team-a")
        .ok();
    assert_eq!(s.watch_namespaces, ["team-a", "team-b"]);
    assert!(Fixture::new().ok().watch_namespaces.is_empty());
    let e = Fixture::new()
        .env("VOLLEY_WATCH_NAMESPACES", "team-a,Team_B")
        .error();
    assert!(
        e.contains("VOLLEY_WATCH_NAMESPACES") && e.contains("\"Team_B\""),
        "{e}"
    );
}
