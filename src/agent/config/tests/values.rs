//! Each setting's values and error messages: the message names the setting as it was given (flag,
//! variable, or both spellings with the default) and shows the value and the expected form.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{Fixture, TOKEN, TOKEN_PATH, addr};
use crate::agent::config::{ApiAuth, ClockPolicy, KubeMode};

// ----- node id -----

#[test]
fn node_id_comes_from_node_name_before_the_hostname() {
    let s = Fixture::new().env("NODE_NAME", "node-a").ok();
    assert_eq!(s.node_id, "node-a");
    assert_eq!(s.node_name.as_deref(), Some("node-a"));
}

#[test]
fn node_id_falls_back_to_etc_hostname() {
    let s = Fixture::new()
        .no_file("/proc/sys/kernel/hostname")
        .file("/etc/hostname", "from-etc\n")
        .ok();
    assert_eq!(s.node_id, "from-etc");
    let s = Fixture::new()
        .file("/proc/sys/kernel/hostname", "\n")
        .file("/etc/hostname", "from-etc")
        .ok();
    assert_eq!(s.node_id, "from-etc");
}

#[test]
fn node_id_without_any_source_says_what_was_tried() {
    let report = Fixture::new().no_file("/proc/sys/kernel/hostname").error();
    assert!(
        report.starts_with("--node-id / VOLLEY_NODE_ID is not set: there is no hostname"),
        "{report}"
    );
    assert!(
        report.contains("/proc/sys/kernel/hostname: No such file"),
        "{report}"
    );
    assert!(report.contains("/etc/hostname: No such file"), "{report}");
}

#[test]
fn bad_node_ids_name_where_they_came_from() {
    let report = Fixture::new().env("VOLLEY_NODE_ID", "agent 1").error();
    assert_eq!(
        report,
        "VOLLEY_NODE_ID: \"agent 1\" is not an id of 1-63 characters from a-z, A-Z, 0-9, '.', '_' \
         and '-'"
    );
    let report = Fixture::new()
        .env("VOLLEY_NODE_ID", "fine")
        .flags(&["--node-id", "a:b"])
        .error();
    assert!(
        report.starts_with("--node-id: \"a:b\" is not an id"),
        "{report}"
    );

    // A Kubernetes node name longer than an id maps to a stable one; a
    // 64-character name that is no DNS name does not.
    let node = format!("{}.eu-west-1.compute.internal", "ip-10-0-1-23".repeat(4));
    let s = Fixture::new().env("NODE_NAME", &node).ok();
    assert!(s.node_id.len() <= 63, "{}", s.node_id);
    assert!(
        s.node_id.starts_with("ip-10-0-1-23ip-10-0-1-23"),
        "{}",
        s.node_id
    );
    assert_eq!(
        Fixture::new().env("VOLLEY_NODE_ID", &node).ok().node_id,
        s.node_id
    );

    let long = "n".repeat(64);
    let report = Fixture::new().env("NODE_NAME", &long).error();
    assert!(
        report.starts_with(&format!("NODE_NAME: \"{long}\" is not an id")),
        "{report}"
    );
    assert!(report.contains("set one of those"), "{report}");

    let report = Fixture::new()
        .file("/proc/sys/kernel/hostname", "my_host!\n")
        .error();
    assert!(
        report.starts_with(
            "--node-id / VOLLEY_NODE_ID (default: the hostname in /proc/sys/kernel/hostname): \
             \"my_host!\" is not an id"
        ),
        "{report}"
    );
}

#[test]
fn cluster_id_is_checked_like_a_node_id() {
    let report = Fixture::new().flags(&["--cluster-id", "prod/eu"]).error();
    assert!(
        report.starts_with("--cluster-id: \"prod/eu\" is not an id"),
        "{report}"
    );
}

// ----- labels -----

#[test]
fn labels_merge_with_flags_winning_per_key() {
    let s = Fixture::new()
        .env("VOLLEY_LABELS", "pool=load, zone=eu-1a,")
        .flags(&["--label", "zone=eu-1b", "--label", "team=perf,tier="])
        .ok();
    let expected: BTreeMap<String, String> = [
        ("pool", "load"),
        ("team", "perf"),
        ("tier", ""),
        ("zone", "eu-1b"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(s.labels, expected);
}

#[test]
fn label_errors_show_the_item_and_the_rule() {
    let report = Fixture::new()
        .env("VOLLEY_LABELS", "pool=load,Zone=a")
        .error();
    assert_eq!(
        report,
        "VOLLEY_LABELS: \"Zone=a\" is not key=value with a key of a-z, 0-9, '.', '_', '/' and '-' \
         only, like pool=load"
    );
    let report = Fixture::new().flags(&["--label", "pool"]).error();
    assert_eq!(
        report,
        "--label: \"pool\" is not key=value (no '=' found), like pool=load"
    );
    let report = Fixture::new().flags(&["--label", "a=b c"]).error();
    assert!(report.contains("without ',', '=', spaces"), "{report}");
    let report = Fixture::new().env("VOLLEY_LABELS", "pool=a,pool=b").error();
    assert_eq!(
        report,
        "VOLLEY_LABELS: \"pool=b\" is not a new label: key \"pool\" is already given (pool=a)"
    );
    let report = Fixture::new().flags(&["--label", ""]).error();
    assert!(
        report.starts_with("--label: \"\" is not key=value"),
        "{report}"
    );
}

// ----- seeds -----

#[test]
fn seeds_from_the_environment_are_deduplicated_and_flags_replace_them() {
    let s = Fixture::new()
        .env(
            "VOLLEY_SEEDS",
            "agent-0:7946, agent-1:7946,agent-0:7946,[fd00::7]:7946,",
        )
        .ok();
    let seeds: Vec<String> = s.seeds.iter().map(ToString::to_string).collect();
    assert_eq!(seeds, ["agent-0:7946", "agent-1:7946", "[fd00::7]:7946"]);

    let s = Fixture::new()
        .env("VOLLEY_SEEDS", "agent-0:7946")
        .flags(&["--seed", "a:1", "--seed", "b:2,c:3"])
        .ok();
    let seeds: Vec<String> = s.seeds.iter().map(ToString::to_string).collect();
    assert_eq!(seeds, ["a:1", "b:2", "c:3"]);
}

#[test]
fn every_bad_seed_is_reported() {
    let report = Fixture::new()
        .env("VOLLEY_SEEDS", "agent-0:99999,ok:1,agent-2")
        .errors();
    assert_eq!(
        report,
        "VOLLEY_SEEDS: \"agent-0:99999\" is not host:port (port must be 1-65535)\n\
         VOLLEY_SEEDS: \"agent-2\" is not host:port (no port given), like \
         volley-gossip.volley.svc.cluster.local:7946"
    );
    let report = Fixture::new().flags(&["--seed", "bad host:1"]).error();
    assert!(report.starts_with("--seed: \"bad host:1\" is not host:port with a host"));
}

// ----- listen and advertise -----

#[test]
fn a_specific_listen_address_is_advertised_as_is() {
    let s = Fixture::new()
        .without("POD_IP")
        .env("VOLLEY_GOSSIP_LISTEN", "10.1.1.1:7946")
        .env("VOLLEY_QUIC_LISTEN", "10.1.1.1:7947")
        .env("VOLLEY_API_LISTEN", "127.0.0.1:0")
        .ok();
    assert_eq!(s.gossip_advertise, addr("10.1.1.1:7946"));
    assert_eq!(s.quic_advertise, addr("10.1.1.1:7947"));
    // Port 0: the agent fills in the bound port.
    assert_eq!(s.api_advertise, addr("127.0.0.1:0"));
}

#[test]
fn an_unspecified_listen_address_without_advertise_or_pod_ip_is_an_error() {
    let report = Fixture::new()
        .without("POD_IP")
        .env("VOLLEY_GOSSIP_ADVERTISE", "10.0.0.9:7946")
        .env("VOLLEY_QUIC_LISTEN", "[::]:7947")
        .env("VOLLEY_API_ADVERTISE", "10.0.0.9:7070")
        .error();
    assert_eq!(
        report,
        "--quic-advertise / VOLLEY_QUIC_ADVERTISE is not set: VOLLEY_QUIC_LISTEN listens on \
         [::]:7947, which is not an address peers can dial; set this to the address others reach \
         this agent at, like $(POD_IP):7947 from the pod IP, or listen on a specific address"
    );
    let report = Fixture::new().without("POD_IP").errors();
    assert_eq!(report.lines().count(), 3, "{report}");
    assert!(report.contains(
        "--gossip-advertise / VOLLEY_GOSSIP_ADVERTISE is not set: --gossip-listen / \
         VOLLEY_GOSSIP_LISTEN (default: 0.0.0.0:7946) listens on 0.0.0.0:7946"
    ));
}

#[test]
fn the_pod_ip_stands_in_only_for_a_listen_address_of_its_family() {
    let s = Fixture::new()
        .env("POD_IP", "fd00::7")
        .env("VOLLEY_GOSSIP_LISTEN", "[::]:7946")
        .env("VOLLEY_QUIC_LISTEN", "[::]:7947")
        .env("VOLLEY_API_LISTEN", "[::]:7070")
        .ok();
    assert_eq!(s.gossip_advertise, addr("[fd00::7]:7946"));
    let s = Fixture::new().env("VOLLEY_API_LISTEN", "[::]:7070").ok();
    assert_eq!(s.api_advertise, addr("10.0.0.7:7070"));
    let report = Fixture::new()
        .env("POD_IP", "fd00::7")
        .env("VOLLEY_GOSSIP_LISTEN", "[::]:7946")
        .env("VOLLEY_QUIC_LISTEN", "[::]:7947")
        .error();
    assert!(report.starts_with("--api-advertise / VOLLEY_API_ADVERTISE is not set"));
}

#[test]
fn advertise_addresses_must_be_dialable() {
    let report = Fixture::new()
        .env("VOLLEY_GOSSIP_ADVERTISE", "0.0.0.0:7946")
        .error();
    assert_eq!(
        report,
        "VOLLEY_GOSSIP_ADVERTISE: \"0.0.0.0:7946\" is not an address peers can dial (not 0.0.0.0 \
         or ::), like 10.0.0.7:7946"
    );
    let report = Fixture::new()
        .flags(&["--api-advertise", "10.0.0.7:0"])
        .error();
    assert!(
        report.starts_with("--api-advertise: \"10.0.0.7:0\" is not an address with a port"),
        "{report}"
    );
    let report = Fixture::new()
        .env("VOLLEY_QUIC_ADVERTISE", "agent-0:7947")
        .error();
    assert!(
        report.starts_with("VOLLEY_QUIC_ADVERTISE: \"agent-0:7947\" is not an IP address and port"),
        "{report}"
    );
}

#[test]
fn an_ipv6_pod_ip_without_brackets_still_parses() {
    let s = Fixture::new()
        .env("VOLLEY_GOSSIP_ADVERTISE", "fd00::7:7946")
        .ok();
    assert_eq!(s.gossip_advertise, addr("[fd00::7]:7946"));
}

#[test]
fn bad_listen_addresses_are_reported_once() {
    let report = Fixture::new().env("VOLLEY_API_LISTEN", "0.0.0.0").error();
    assert!(
        report.starts_with("VOLLEY_API_LISTEN: \"0.0.0.0\" is not an IP address and port"),
        "{report}"
    );
}

#[test]
fn gossip_and_quic_cannot_share_a_udp_port() {
    let report = Fixture::new()
        .env("VOLLEY_GOSSIP_LISTEN", "0.0.0.0:7000")
        .env("VOLLEY_QUIC_LISTEN", "10.0.0.7:7000")
        .error();
    assert_eq!(
        report,
        "VOLLEY_GOSSIP_LISTEN and VOLLEY_QUIC_LISTEN do not fit together: gossip (0.0.0.0:7000) \
         and QUIC (10.0.0.7:7000) both use UDP port 7000; give them different ports"
    );
    // Different addresses, or ports the system picks, do not collide; TCP is separate anyway.
    Fixture::new()
        .env("VOLLEY_GOSSIP_LISTEN", "10.0.0.7:7000")
        .env("VOLLEY_QUIC_LISTEN", "10.0.0.8:7000")
        .env("VOLLEY_API_LISTEN", "10.0.0.7:7000")
        .ok();
    Fixture::new()
        .env("VOLLEY_GOSSIP_LISTEN", "127.0.0.1:0")
        .env("VOLLEY_QUIC_LISTEN", "127.0.0.1:0")
        .ok();
}

// ----- API authentication -----

#[test]
fn the_token_is_read_trimmed_and_never_shown() {
    let s = Fixture::new().ok();
    let ApiAuth::Token { token, file } = &s.auth else {
        panic!("a token file gives token auth");
    };
    assert_eq!(token.expose(), TOKEN);
    assert_eq!(file, Path::new(TOKEN_PATH));
    assert!(token.matches(TOKEN));
    assert!(!token.matches("s3cr3t-t0ken-valuf"));
    assert!(!token.matches("s3cr3t"));
    assert!(!token.matches(""));
    assert_eq!(format!("{token:?}"), "<redacted>");
    let debug = format!("{s:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn unusable_token_files_are_errors_that_hide_the_content() {
    let report = Fixture::new().file(TOKEN_PATH, " \n\t").error();
    assert_eq!(
        report,
        "VOLLEY_TOKEN_FILE: the token in /run/volley/token is empty (after trimming whitespace)"
    );
    let report = Fixture::new().file(TOKEN_PATH, "two words-secret").error();
    assert!(report.contains("cannot carry"), "{report}");
    assert!(!report.contains("secret"), "{report}");
    let report = Fixture::new()
        .flags(&["--token-file", "/nowhere/token"])
        .error();
    assert_eq!(
        report,
        "--token-file: cannot read /nowhere/token: No such file or directory"
    );
}

#[test]
fn a_token_is_required_unless_auth_is_explicitly_off() {
    let report = Fixture::new().without("VOLLEY_TOKEN_FILE").error();
    assert_eq!(
        report,
        "--token-file / VOLLEY_TOKEN_FILE is not set: the API needs a bearer token: point this at \
         a file holding it (e.g. a mounted Secret), or pass --no-auth for a demo on a loopback \
         address"
    );
}

#[test]
fn no_auth_is_allowed_on_loopback_only() {
    for listen in [
        "127.0.0.1:0",
        "127.0.0.2:7070",
        "[::1]:7070",
        "[::ffff:127.0.0.1]:7070",
    ] {
        let s = Fixture::new()
            .without("VOLLEY_TOKEN_FILE")
            .env("VOLLEY_API_LISTEN", listen)
            .flags(&["--no-auth"])
            .ok();
        assert_eq!(s.auth, ApiAuth::Disabled, "{listen}");
    }
    let report = Fixture::new()
        .without("VOLLEY_TOKEN_FILE")
        .flags(&["--no-auth"])
        .error();
    assert!(
        report.starts_with(
            "--no-auth is refused because --api-listen / VOLLEY_API_LISTEN (default: \
             0.0.0.0:7070) is 0.0.0.0:7070, which is not a loopback address: without a token, \
             anyone who can reach the API could start load tests"
        ),
        "{report}"
    );
    let report = Fixture::new()
        .without("VOLLEY_TOKEN_FILE")
        .env("VOLLEY_API_LISTEN", "10.0.0.7:7070")
        .flags(&["--no-auth"])
        .error();
    assert!(
        report.contains("VOLLEY_API_LISTEN is 10.0.0.7:7070"),
        "{report}"
    );
}

#[test]
fn no_auth_and_a_token_file_exclude_each_other() {
    let report = Fixture::new()
        .env("VOLLEY_API_LISTEN", "127.0.0.1:7070")
        .flags(&["--no-auth"])
        .error();
    assert_eq!(
        report,
        "--no-auth and VOLLEY_TOKEN_FILE cannot both be set: --no-auth turns the API token off; \
         keep one of them"
    );
}

// ----- capacity, data directory, durations, modes -----

#[test]
fn capacity_must_be_a_positive_number() {
    assert_eq!(
        Fixture::new().flags(&["--capacity", "0.5"]).ok().capacity,
        Some(0.5)
    );
    let report = Fixture::new().flags(&["--capacity", "0"]).error();
    assert!(
        report.starts_with("--capacity: \"0\" is not a positive number"),
        "{report}"
    );
    let report = Fixture::new().env("VOLLEY_CAPACITY", "4 cores").error();
    assert!(
        report.starts_with("VOLLEY_CAPACITY: \"4 cores\" is not"),
        "{report}"
    );
}

#[test]
fn api_connections_are_capped_by_a_whole_number() {
    assert_eq!(Fixture::new().ok().api_max_connections, 256);
    assert_eq!(
        Fixture::new()
            .flags(&["--api-max-connections", "8"])
            .ok()
            .api_max_connections,
        8
    );
    for bad in ["0", "-1", "many", "100000"] {
        let report = Fixture::new()
            .env("VOLLEY_API_MAX_CONNECTIONS", bad)
            .error();
        assert!(
            report.starts_with(&format!(
                "VOLLEY_API_MAX_CONNECTIONS: \"{bad}\" is not a whole number"
            )),
            "{report}"
        );
    }
}

#[test]
fn an_unwritable_data_directory_is_reported_with_its_path() {
    let mut fixture = Fixture::new().env("VOLLEY_DATA_DIR", "/ro/volley");
    fixture.files.unwritable.push("/ro/volley".into());
    let report = fixture.error();
    assert_eq!(
        report,
        "VOLLEY_DATA_DIR: /ro/volley is not a writable directory (cannot create it: Permission \
         denied); the agent keeps finished tests' results there until they are sealed: mount a \
         writable volume there or point the setting elsewhere"
    );
    let mut fixture = Fixture::new();
    fixture.files.unwritable.push("/var/lib/volley".into());
    let report = fixture.error();
    assert!(
        report.starts_with(
            "--data-dir / VOLLEY_DATA_DIR (default: /var/lib/volley): /var/lib/volley"
        ),
        "{report}"
    );
    // clap refuses an empty --data-dir; an embedding caller could still pass one.
    let mut fixture = Fixture::new();
    fixture.args.data_dir = Some(std::path::PathBuf::new());
    let report = fixture.error();
    assert!(
        report.starts_with("--data-dir: \"\" is not a directory path"),
        "{report}"
    );
}

#[test]
fn durations_are_bounded_and_name_their_range() {
    for (var, value, range) in [
        ("VOLLEY_GOSSIP_INTERVAL", "5ms", "from 10ms to 1m"),
        ("VOLLEY_LEAD_TIME", "2h", "from 10ms to 1h"),
        ("VOLLEY_CLOCK_TOLERANCE", "0s", "from 1ms to 1m"),
        ("VOLLEY_ORPHAN_TIMEOUT", "1x", "from 100ms to 1h"),
    ] {
        let report = Fixture::new().env(var, value).error();
        assert_eq!(
            report,
            format!("{var}: \"{value}\" is not a duration {range}, like 500ms, 2s or 1m30s")
        );
    }
    let s = Fixture::new().env("VOLLEY_LEAD_TIME", "1500").ok();
    assert_eq!(
        s.lead_time,
        Duration::from_millis(1500),
        "bare numbers are milliseconds"
    );
}

#[test]
fn clock_tolerance_must_stay_below_the_lead_time() {
    let report = Fixture::new().env("VOLLEY_CLOCK_TOLERANCE", "3s").error();
    assert_eq!(
        report,
        "VOLLEY_CLOCK_TOLERANCE and --lead-time / VOLLEY_LEAD_TIME (default: 2s) do not fit \
         together: the clock tolerance (3s) must be shorter than the lead time (2s): agents whose \
         clocks differ by more than the lead time cannot all start at the shared instant"
    );
}

#[test]
fn the_orphan_timeout_must_cover_two_gossip_rounds() {
    let report = Fixture::new().env("VOLLEY_ORPHAN_TIMEOUT", "900ms").error();
    assert!(
        report.starts_with(
            "VOLLEY_ORPHAN_TIMEOUT and --gossip-interval / VOLLEY_GOSSIP_INTERVAL (default: 500ms) \
             do not fit together: the orphan timeout (900ms) must be at least twice the gossip \
             interval (500ms)"
        ),
        "{report}"
    );
    Fixture::new().env("VOLLEY_ORPHAN_TIMEOUT", "1s").ok();
}

#[test]
fn modes_accept_their_keywords_in_any_case() {
    let s = Fixture::new()
        .env("VOLLEY_CLOCK_POLICY", "WARN")
        .env("VOLLEY_KUBE", "On")
        .ok();
    assert_eq!((s.clock_policy, s.kube), (ClockPolicy::Warn, KubeMode::On));
    let report = Fixture::new().flags(&["--clock-policy", "ignore"]).error();
    assert_eq!(report, "--clock-policy: \"ignore\" is not refuse or warn");
}

// ----- Kubernetes downward API -----

#[test]
fn downward_api_values_are_checked() {
    let report = Fixture::new().env("POD_IP", "10.0.0.300").errors();
    assert!(
        report.starts_with("POD_IP: \"10.0.0.300\" is not an IP address, like 10.0.0.7 or fd00::7"),
        "{report}"
    );
    let report = Fixture::new().env("POD_NAMESPACE", "Load_Tests").error();
    assert_eq!(
        report,
        "POD_NAMESPACE: \"Load_Tests\" is not a Kubernetes namespace name (1-63 characters a-z, \
         0-9 and '-')"
    );
}

// ----- limits -----

#[test]
fn limits_are_derived_unless_set_and_a_flag_wins() {
    let s = Fixture::new().ok();
    assert_eq!(s.limits, crate::agent::config::LimitSettings::default());
    let s = Fixture::new()
        .env("VOLLEY_MAX_VUS", "100")
        .env("VOLLEY_MAX_RATE", "5000")
        .env("VOLLEY_MAX_DURATION", "2h")
        .env("VOLLEY_MEMORY_CEILING", "2Gi")
        .flags(&["--max-vus", "300"])
        .ok();
    assert_eq!(s.limits.max_vus, Some(300));
    assert_eq!(s.limits.max_rate, Some(5000.0));
    assert_eq!(s.limits.max_duration, Some(Duration::from_secs(7200)));
    assert_eq!(s.limits.memory_ceiling, Some(2 << 30));
}

#[test]
fn bad_limits_name_the_setting_the_value_and_the_form() {
    let report = Fixture::new().flags(&["--max-vus", "1e9"]).error();
    assert_eq!(
        report,
        "--max-vus: \"1e9\" is not a whole number of VUs from 1 to 1000000000, like 20000"
    );
    let report = Fixture::new().env("VOLLEY_MAX_DURATION", "10y").errors();
    assert!(
        report.starts_with("VOLLEY_MAX_DURATION: \"10y\" is not a duration from 1s"),
        "{report}"
    );
    let report = Fixture::new().env("VOLLEY_MEMORY_CEILING", "512Ki").error();
    assert!(
        report.starts_with("VOLLEY_MEMORY_CEILING: \"512Ki\" is not a memory size"),
        "{report}"
    );
}

// ----- egress -----

#[test]
fn the_egress_policy_defaults_to_the_deny_list_and_a_flag_wins() {
    use crate::plan::egress::{DEFAULT_DENY, EgressPolicy};
    let metadata = Some("169.254.169.254".parse().expect("an address"));
    let s = Fixture::new().ok();
    assert_eq!(*s.egress, EgressPolicy::default());
    assert!(s.egress.check(None, metadata).is_err());
    let s = Fixture::new()
        .env("VOLLEY_EGRESS_DENY", "10.0.0.0/8")
        .env("VOLLEY_EGRESS_DEFAULT_DENY", "true")
        .flags(&[
            "--egress-deny",
            "192.0.2.0/24",
            "--egress-allow",
            "*.corp.test",
            "--egress-default-deny",
            "false",
        ])
        .ok();
    assert_eq!(
        s.egress.deny().len(),
        1,
        "the flag replaced the variable, no defaults"
    );
    assert_ne!(s.egress.deny().len(), DEFAULT_DENY.len());
    assert!(s.egress.check(Some("api.corp.test"), None).is_ok());
    assert!(
        s.egress
            .check(
                Some("api.corp.test"),
                Some("192.0.2.1".parse().expect("an address"))
            )
            .is_err()
    );
    let report = Fixture::new()
        .flags(&["--egress-allow", "10.0.0.0/8,bad host"])
        .error();
    assert!(
        report.starts_with("--egress-allow: \"10.0.0.0/8,bad host\" is not a comma-separated list"),
        "{report}"
    );
}
