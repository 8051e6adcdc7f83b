//! TLS settings with real PEM files on disk (generated with the fleet CA into a temporary
//! directory) and the real file system: each valid combination, each invalid one, and files that
//! are present but wrong. Messages name the setting and the file, never key material.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::Fixture;
use crate::agent::config::{AgentSettings, ConfigErrors, OsFiles, TlsSettings};
use crate::fleet::ca::{DEFAULT_LEAF_VALIDITY, FleetCa};
use crate::fleet::membership::{GossipKey, Reject};

/// A temporary directory holding a fleet CA (`ca/ca.crt`, `ca/ca.key`), a token and a data
/// directory, and the settings pointing at them.
struct Disk {
    dir: TempDir,
    ca: FleetCa,
    fixture: Fixture,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = FleetCa::generate("disk test fleet").expect("CA generates");
        ca.write_to_dir(&dir.path().join("ca"), false)
            .expect("CA writes");
        std::fs::write(dir.path().join("token"), "disk-token\n").expect("token writes");
        let path = |rel: &str| dir.path().join(rel).display().to_string();
        let fixture = Fixture::new()
            .env("VOLLEY_NODE_ID", "agent-1")
            .env("VOLLEY_TOKEN_FILE", &path("token"))
            .env("VOLLEY_DATA_DIR", &path("data"))
            .env("VOLLEY_CA_CERT", &path("ca/ca.crt"))
            .env("VOLLEY_CA_KEY", &path("ca/ca.key"));
        Disk { dir, ca, fixture }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn env(mut self, key: &str, rel: &str) -> Disk {
        let path = self.path(rel).display().to_string();
        self.fixture = self.fixture.env(key, &path);
        self
    }

    fn flags(self, flags: &[&str]) -> Disk {
        let Disk { dir, ca, fixture } = self;
        Disk {
            dir,
            ca,
            fixture: fixture.flags(flags),
        }
    }

    fn without(mut self, key: &str) -> Disk {
        self.fixture = self.fixture.without(key);
        self
    }

    /// Switches to a given certificate: one issued by the CA for `node_id`, at `agent.crt` and
    /// `agent.key`, with the CA certificate as trust bundle.
    fn given(self, node_id: &str) -> Disk {
        let identity = self
            .ca
            .issue(node_id, &[], DEFAULT_LEAF_VALIDITY)
            .expect("issues");
        identity
            .write_files(&self.path("agent.crt"), &self.path("agent.key"), false)
            .expect("writes");
        self.write("gossip-secret", "a gossip secret shared by the fleet\n");
        self.without("VOLLEY_CA_KEY")
            .env("VOLLEY_CERT", "agent.crt")
            .env("VOLLEY_KEY", "agent.key")
            .env("VOLLEY_GOSSIP_SECRET_FILE", "gossip-secret")
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).expect("writes");
    }

    fn load(&self) -> Result<AgentSettings, ConfigErrors> {
        self.fixture.load_with(&OsFiles)
    }

    fn ok(&self) -> AgentSettings {
        match self.load() {
            Ok(settings) => settings,
            Err(errors) => panic!("expected valid settings, got:\n{errors}"),
        }
    }

    fn error(&self) -> String {
        match self.load() {
            Ok(settings) => panic!("expected an error, got {settings:#?}"),
            Err(errors) => {
                assert_eq!(errors.len(), 1, "expected one error, got:\n{errors}");
                errors.to_string()
            }
        }
    }
}

/// A line from the middle of a PEM key: if it shows up in output, key material leaked.
fn key_body_line(key_pem: &str) -> &str {
    key_pem.lines().nth(1).expect("a PEM key has a body")
}

#[test]
fn the_fleet_ca_loads_from_disk_and_issues_for_this_agent() {
    let disk = Disk::new();
    let s = disk.ok();
    let TlsSettings::SelfIssued { ca } = &s.tls else {
        panic!("a CA key means self-issued certificates, got {:?}", s.tls);
    };
    assert_eq!(ca.name(), "disk test fleet");
    assert_eq!(ca.cert_pem(), disk.ca.cert_pem());
    let identity = ca
        .issue(&s.node_id, &[], DEFAULT_LEAF_VALIDITY)
        .expect("the loaded CA signs");
    assert_eq!(identity.node_id(), "agent-1");
    assert!(disk.path("data").is_dir(), "the data directory was created");
    let debug = format!("{s:?}");
    assert!(!debug.contains(key_body_line(disk.ca.key_pem())), "{debug}");
}

#[test]
fn a_given_certificate_loads_with_the_ca_as_trust_bundle() {
    let disk = Disk::new().given("agent-1");
    let s = disk.ok();
    let TlsSettings::Given {
        identity, trust, ..
    } = &s.tls
    else {
        panic!(
            "a certificate and key mean a given identity, got {:?}",
            s.tls
        );
    };
    assert_eq!(identity.node_id(), "agent-1");
    assert_eq!(trust.pem(), disk.ca.cert_pem());
    let key = std::fs::read_to_string(disk.path("agent.key")).expect("reads");
    let debug = format!("{s:?}");
    assert!(!debug.contains(key_body_line(&key)), "{debug}");
}

#[test]
fn a_certificate_needs_its_key_and_a_key_its_certificate() {
    let disk = Disk::new().given("agent-1").without("VOLLEY_KEY");
    assert_eq!(
        disk.error(),
        "--key / VOLLEY_KEY is not set: VOLLEY_CERT is set, and a certificate needs its private key"
    );
    let disk = Disk::new().given("agent-1").without("VOLLEY_CERT");
    assert_eq!(
        disk.error(),
        "--cert / VOLLEY_CERT is not set: VOLLEY_KEY is set, and a private key needs the \
         certificate it belongs to"
    );
}

#[test]
fn without_a_ca_key_or_a_certificate_both_ways_are_named() {
    for disk in [
        Disk::new().without("VOLLEY_CA_KEY"),
        Disk::new()
            .without("VOLLEY_CA_KEY")
            .without("VOLLEY_CA_CERT"),
    ] {
        let report = disk.error();
        assert!(report.starts_with("no TLS identity"), "{report}");
        for name in [
            "VOLLEY_CA_CERT",
            "VOLLEY_CA_KEY",
            "VOLLEY_CERT",
            "VOLLEY_KEY",
        ] {
            assert!(report.contains(name), "{name} missing from: {report}");
        }
    }
}

#[test]
fn both_ways_need_the_ca_certificate() {
    let disk = Disk::new().without("VOLLEY_CA_CERT");
    assert_eq!(
        disk.error(),
        "--ca-cert / VOLLEY_CA_CERT is not set: VOLLEY_CA_KEY is set, and the fleet CA's key needs \
         the CA's certificate"
    );
    let disk = Disk::new().given("agent-1").without("VOLLEY_CA_CERT");
    assert!(disk.error().starts_with(
        "--ca-cert / VOLLEY_CA_CERT is not set: VOLLEY_CERT is set, and a given certificate \
             needs the fleet CA certificate as the trust bundle"
    ));
}

#[test]
fn the_ca_key_and_a_given_certificate_exclude_each_other() {
    let disk = Disk::new()
        .given("agent-1")
        .env("VOLLEY_CA_KEY", "ca/ca.key");
    assert_eq!(
        disk.error(),
        "VOLLEY_CA_KEY and VOLLEY_CERT cannot both be set: choose one way to get this agent's \
         certificate: the fleet CA key (the agent issues its own) or a certificate and key issued \
         for it"
    );
    let disk = Disk::new().env("VOLLEY_KEY", "ca/ca.key");
    assert!(
        disk.error()
            .starts_with("VOLLEY_CA_KEY and VOLLEY_KEY cannot both be set")
    );
}

#[test]
fn an_agent_certificate_is_no_ca_certificate() {
    let disk = Disk::new()
        .given("agent-1")
        .env("VOLLEY_CA_CERT", "agent.crt");
    let report = disk.error();
    let path = disk.path("agent.crt");
    assert!(
        report.starts_with(&format!(
            "VOLLEY_CA_CERT: {}: certificate `",
            path.display()
        )),
        "{report}"
    );
    assert!(report.contains("is not a CA"), "{report}");

    // Self-issued: the same mistake, caught the same way.
    let disk = Disk::new().given("agent-1");
    let disk = disk
        .without("VOLLEY_CERT")
        .without("VOLLEY_KEY")
        .env("VOLLEY_CA_CERT", "agent.crt")
        .env("VOLLEY_CA_KEY", "agent.key");
    assert!(disk.error().contains("is not a CA"));
}

#[test]
fn a_key_from_another_ca_names_both_files() {
    let disk = Disk::new();
    let other = FleetCa::generate("other fleet").expect("generates");
    disk.write("ca/ca.key", other.key_pem());
    let report = disk.error();
    assert_eq!(
        report,
        format!(
            "VOLLEY_CA_KEY: private key {} does not match the certificate {}",
            disk.path("ca/ca.key").display(),
            disk.path("ca/ca.crt").display()
        )
    );
    assert!(!report.contains(key_body_line(other.key_pem())));
}

#[test]
fn a_broken_key_file_is_named_without_its_content() {
    let disk = Disk::new();
    let fake_body = "c2VjcmV0LWtleS1ieXRlcy1kby1ub3Qtc2hvdw==";
    disk.write(
        "ca/ca.key",
        &format!("-----BEGIN PRIVATE KEY-----\n{fake_body}\n-----END PRIVATE KEY-----\n"),
    );
    let report = disk.error();
    assert!(
        report.starts_with(&format!(
            "VOLLEY_CA_KEY: {}: private key unusable",
            disk.path("ca/ca.key").display()
        )),
        "{report}"
    );
    assert!(!report.contains(fake_body), "{report}");

    disk.write("ca/ca.key", "not a key at all");
    let report = disk.error();
    assert!(
        report.contains("no PEM `PRIVATE KEY` block found"),
        "{report}"
    );
    assert!(!report.contains("in-memory"), "{report}");
}

#[test]
fn missing_files_are_named_by_setting_and_path() {
    let disk = Disk::new().env("VOLLEY_CA_CERT", "ca/missing.crt");
    assert_eq!(
        disk.error(),
        format!(
            "VOLLEY_CA_CERT: cannot read {}: No such file or directory (os error 2)",
            disk.path("ca/missing.crt").display()
        )
    );
}

#[test]
fn a_given_key_must_belong_to_the_given_certificate() {
    let disk = Disk::new().given("agent-1");
    let stranger = disk
        .ca
        .issue("agent-2", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");
    disk.write("agent.key", stranger.key_pem());
    let report = disk.error();
    assert!(report.starts_with("VOLLEY_KEY: private key"), "{report}");
    assert!(
        report.contains("does not match the certificate"),
        "{report}"
    );
}

#[test]
fn a_given_trust_bundle_must_hold_ca_certificates() {
    let disk = Disk::new()
        .given("agent-1")
        .env("VOLLEY_CA_CERT", "agent.crt");
    let report = disk.error();
    assert!(report.starts_with("VOLLEY_CA_CERT: "), "{report}");
    assert!(report.contains("is not a CA"), "{report}");
}

#[test]
fn a_given_certificate_must_be_for_this_node() {
    let disk = Disk::new().given("agent-9");
    let report = disk.error();
    assert_eq!(
        report,
        format!(
            "VOLLEY_CERT and VOLLEY_NODE_ID do not fit together: the certificate in {} is for \
             node \"agent-9\" (its common name) but this agent's node id is \"agent-1\"; peers \
             know a sender by its certificate, so issue one for \"agent-1\" or use \"agent-9\" as \
             the node id",
            disk.path("agent.crt").display()
        )
    );
}

#[test]
fn an_expired_given_certificate_is_refused() {
    let disk = Disk::new().given("agent-1");
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let expired = disk
        .ca
        .issue_at("agent-1", &[], two_days_ago, Duration::from_secs(24 * 3600))
        .expect("issues");
    std::fs::remove_file(disk.path("agent.crt")).expect("removes");
    std::fs::remove_file(disk.path("agent.key")).expect("removes");
    expired
        .write_files(&disk.path("agent.crt"), &disk.path("agent.key"), false)
        .expect("writes");
    // Certificate times have whole seconds, so it expired at least a full day ago.
    assert!(
        disk.error().starts_with(&format!(
            "VOLLEY_CERT: the certificate in {} expired 24h",
            disk.path("agent.crt").display()
        )),
        "{}",
        disk.error()
    );
}

#[test]
fn tls_flags_win_over_the_environment() {
    let disk = Disk::new().env("VOLLEY_CA_CERT", "ca/missing.crt");
    let cert = disk.path("ca/ca.crt").display().to_string();
    let disk = disk.flags(&["--ca-cert", &cert]);
    assert!(matches!(disk.ok().tls, TlsSettings::SelfIssued { .. }));
}

/// Whether datagrams sealed with `a` open with `b`.
fn same_key(a: &GossipKey, b: &GossipKey) -> Result<(), Reject> {
    let mut datagram = Vec::new();
    a.seal(1_800_000_000_000, b"gossip", &mut datagram);
    b.open(1_800_000_000_000, &datagram).map(drop)
}

#[test]
fn agents_holding_the_same_ca_key_derive_the_same_gossip_key() {
    let disk = Disk::new();
    let first = disk.ok().gossip_key;
    let again = disk.ok().gossip_key;
    assert_eq!(same_key(&first, &again), Ok(()));
    // The same CA key in PEM with other line breaks is the same secret.
    let pem = disk.ca.key_pem().replace('\n', "\r\n");
    disk.write("ca/ca.key", &pem);
    assert_eq!(same_key(&first, &disk.ok().gossip_key), Ok(()));
    let other = Disk::new().ok().gossip_key;
    assert_eq!(same_key(&first, &other), Err(Reject::BadTag));
}

#[test]
fn a_gossip_secret_file_wins_and_must_be_long_enough() {
    let with_ca = Disk::new().env("VOLLEY_GOSSIP_SECRET_FILE", "gossip-secret");
    with_ca.write("gossip-secret", "  a gossip secret shared by the fleet \n");
    let given = Disk::new().given("agent-1");
    assert_eq!(
        same_key(&with_ca.ok().gossip_key, &given.ok().gossip_key),
        Ok(()),
        "the file's trimmed content is the secret, whatever the CA"
    );

    given.write("gossip-secret", "tooshort-secret\n");
    let error = given.error();
    assert!(
        error.contains("VOLLEY_GOSSIP_SECRET_FILE") && error.contains("has 15 bytes"),
        "{error}"
    );
    assert!(
        !error.contains("tooshort"),
        "the secret is never shown: {error}"
    );
}

#[test]
fn a_given_certificate_needs_a_gossip_secret_file() {
    let disk = Disk::new()
        .given("agent-1")
        .without("VOLLEY_GOSSIP_SECRET_FILE");
    let error = disk.error();
    assert!(
        error.starts_with("--gossip-secret-file / VOLLEY_GOSSIP_SECRET_FILE is not set"),
        "{error}"
    );
    assert!(error.contains("derive it from that key"), "{error}");
}
