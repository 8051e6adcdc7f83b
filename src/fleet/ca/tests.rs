//! Unit tests of the fleet CA: generation, PEM and directory round trips, issuing, validation
//! errors and key redaction.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::ring as ring_provider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

use super::*;

fn parse<'a>(der: &'a CertificateDer<'_>) -> x509_parser::certificate::X509Certificate<'a> {
    x509_parser::parse_x509_certificate(der)
        .expect("test certificate parses")
        .1
}

/// Verifies `leaf` as a server certificate for `volley-agent` against `bundle`, at `now`.
fn verify_with(
    bundle: &TrustBundle,
    leaf: &CertificateDer<'_>,
    now: SystemTime,
) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(
        bundle.root_store().expect("bundle builds a root store"),
        Arc::new(ring_provider::default_provider()),
    )
    .build()
    .expect("verifier builds");
    let name = ServerName::try_from(AGENT_SAN).expect("agent SAN is a server name");
    verifier
        .verify_server_cert(
            leaf,
            &[],
            &name,
            &[],
            UnixTime::since_unix_epoch(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after epoch"),
            ),
        )
        .map(|_| ())
}

fn leaf_der(identity: &Identity) -> &CertificateDer<'static> {
    &identity.cert_chain_der()[0]
}

#[test]
fn generated_ca_is_a_constrained_signing_ca() {
    let ca = FleetCa::generate("volley-test-ca").expect("CA generates");
    assert_eq!(ca.name(), "volley-test-ca");
    let bundle = ca.trust_bundle();
    let cert = parse(&bundle.certificates()[0]);
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .expect("CN")
        .as_str()
        .expect("utf8");
    assert_eq!(cn, "volley-test-ca");
    let bc = cert
        .basic_constraints()
        .expect("parses")
        .expect("present")
        .value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = cert.key_usage().expect("parses").expect("present").value;
    assert!(ku.key_cert_sign());
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(ca.key_pem().contains("PRIVATE KEY"));
}

#[test]
fn issued_leaf_has_node_id_sans_ekus_and_validity_window() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let now = SystemTime::now();
    let extra = vec!["10.1.2.3".to_owned(), "agent-7.volley.svc".to_owned()];
    let id = ca
        .issue_at("node-a", &extra, now, Duration::from_secs(3600))
        .expect("issues");
    assert_eq!(id.node_id(), "node-a");
    let cert = parse(leaf_der(&id));
    assert!(!cert.is_ca());
    let san = cert
        .subject_alternative_name()
        .expect("parses")
        .expect("present")
        .value;
    let names: Vec<String> = san
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            GeneralName::IPAddress(b) => format!("ip:{b:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "volley-agent".to_owned(),
            "node-a".to_owned(),
            "ip:[10, 1, 2, 3]".to_owned(),
            "agent-7.volley.svc".to_owned()
        ]
    );
    let eku = cert
        .extended_key_usage()
        .expect("parses")
        .expect("present")
        .value;
    assert!(eku.server_auth && eku.client_auth);
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    let now_s = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs() as i64;
    assert!(
        (nb - (now_s - 300)).abs() <= 1,
        "not_before {nb} vs now {now_s}"
    );
    assert!(
        (na - (now_s + 3600)).abs() <= 1,
        "not_after {na} vs now {now_s}"
    );
    verify_with(&ca.trust_bundle(), leaf_der(&id), now).expect("leaf verifies against its CA");
}

#[test]
fn non_dns_node_id_is_only_the_cn() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let id = ca
        .issue("agent@host 1", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");
    assert_eq!(id.node_id(), "agent@host 1");
    let cert = parse(leaf_der(&id));
    let san = cert
        .subject_alternative_name()
        .expect("parses")
        .expect("present")
        .value;
    assert_eq!(san.general_names.len(), 1, "only the fixed agent SAN");
}

#[test]
fn bad_issue_inputs_are_rejected_with_the_value() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    for bad in ["", " padded", "tab\there", &"x".repeat(254)] {
        match ca.issue(bad, &[], DEFAULT_LEAF_VALIDITY) {
            Err(CaError::InvalidNodeId { node_id, .. }) => assert_eq!(node_id, bad),
            other => panic!("node id {bad:?}: expected InvalidNodeId, got {other:?}"),
        }
    }
    let err = ca
        .issue("node", &["not a name!".to_owned()], DEFAULT_LEAF_VALIDITY)
        .expect_err("bad SAN refused");
    assert!(matches!(err, CaError::InvalidSan { ref value } if value == "not a name!"));
    assert!(err.to_string().contains("expected a DNS name"));
    for validity in [
        Duration::ZERO,
        Duration::from_secs(59),
        Duration::from_secs(400 * 86400),
    ] {
        let err = ca
            .issue("node", &[], validity)
            .expect_err("validity refused");
        assert!(matches!(err, CaError::InvalidValidity { .. }), "{err:?}");
    }
    assert!(matches!(
        FleetCa::generate(""),
        Err(CaError::InvalidName { .. })
    ));
}

#[test]
fn pem_round_trip_and_reissue_from_reloaded_ca() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let reloaded = FleetCa::from_pem(ca.cert_pem(), ca.key_pem()).expect("reloads");
    assert_eq!(reloaded.cert_pem(), ca.cert_pem());
    assert_eq!(reloaded.key_pem(), ca.key_pem());
    assert_eq!(reloaded.name(), "ca");
    let id = reloaded
        .issue("node-b", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");
    verify_with(&ca.trust_bundle(), leaf_der(&id), SystemTime::now())
        .expect("leaf from the reloaded CA verifies against the original bundle");
    let other = FleetCa::generate("other").expect("CA generates");
    let err = verify_with(&other.trust_bundle(), leaf_der(&id), SystemTime::now())
        .expect_err("another CA does not vouch for it");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}

#[test]
fn expired_leaf_is_issued_but_fails_verification() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86400);
    let id = ca
        .issue_at("old", &[], two_days_ago, Duration::from_secs(3600))
        .expect("issues");
    assert!(id.not_after() < SystemTime::now());
    let err =
        verify_with(&ca.trust_bundle(), leaf_der(&id), SystemTime::now()).expect_err("expired");
    assert!(format!("{err:?}").contains("Expired"), "{err:?}");
}

#[test]
fn from_pem_errors_say_what_is_wrong() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let other = FleetCa::generate("other").expect("CA generates");
    let leaf = ca
        .issue("node", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");

    let err = FleetCa::from_pem("hello", ca.key_pem()).expect_err("not PEM");
    assert!(
        matches!(
            err,
            CaError::NotPem {
                expected: "CERTIFICATE",
                ..
            }
        ),
        "{err:?}"
    );
    let err = FleetCa::from_pem(leaf.cert_chain_pem(), leaf.key_pem()).expect_err("leaf");
    assert!(matches!(err, CaError::NotCa { .. }), "{err:?}");
    assert!(err.to_string().contains("CN=node"), "{err}");
    let err = FleetCa::from_pem(ca.cert_pem(), other.key_pem()).expect_err("mismatch");
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err:?}");
    let err = FleetCa::from_pem(ca.cert_pem(), ca.cert_pem()).expect_err("cert as key");
    assert!(
        matches!(
            err,
            CaError::NotPem {
                expected: "PRIVATE KEY",
                ..
            }
        ),
        "{err:?}"
    );
    let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let err = FleetCa::from_pem(ca.cert_pem(), garbage).expect_err("garbage key");
    assert!(matches!(err, CaError::BadKey { .. }), "{err:?}");
    let broken = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let err = FleetCa::from_pem(broken, ca.key_pem()).expect_err("broken cert");
    assert!(matches!(err, CaError::BadCertificate { .. }), "{err:?}");
}

#[test]
fn identity_from_pem_checks_leaf_and_key() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let a = ca
        .issue("node-a", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");
    let b = ca
        .issue("node-b", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");
    let again = Identity::from_pem(a.cert_chain_pem(), a.key_pem()).expect("round trips");
    assert_eq!(again.node_id(), "node-a");
    assert_eq!(again.cert_chain_der(), a.cert_chain_der());
    let err = Identity::from_pem(a.cert_chain_pem(), b.key_pem()).expect_err("mismatch");
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err:?}");
    let err = Identity::from_pem(ca.cert_pem(), ca.key_pem()).expect_err("CA as identity");
    assert!(matches!(err, CaError::UnexpectedCa { .. }), "{err:?}");
    let err = TrustBundle::from_pem(a.cert_chain_pem()).expect_err("leaf as bundle");
    assert!(matches!(err, CaError::NotCa { .. }), "{err:?}");
    let two = format!(
        "{}{}",
        ca.cert_pem(),
        FleetCa::generate("b").expect("CA").cert_pem()
    );
    assert_eq!(
        TrustBundle::from_pem(&two)
            .expect("two CAs")
            .certificates()
            .len(),
        2
    );
    assert_eq!(node_id_from_cert(leaf_der(&b)).as_deref(), Some("node-b"));
}

/// The base64 body lines of a PEM key: what must never leak.
fn key_body_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 8)
        .collect()
}

#[test]
fn debug_and_errors_never_show_key_material() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let id = ca
        .issue("node", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");
    let other = FleetCa::generate("other").expect("CA generates");
    let mismatch = Identity::from_pem(id.cert_chain_pem(), other.key_pem()).expect_err("mismatch");
    let texts = [
        format!("{ca:?}"),
        format!("{id:?}"),
        format!("{mismatch:?}"),
        mismatch.to_string(),
    ];
    for text in &texts {
        assert!(
            text.contains("<redacted>")
                || text.contains("does not match")
                || text.contains("KeyMismatch")
        );
        for line in key_body_lines(ca.key_pem())
            .iter()
            .chain(&key_body_lines(id.key_pem()))
        {
            assert!(!text.contains(line), "key material leaked into {text}");
        }
        for line in key_body_lines(other.key_pem()) {
            assert!(!text.contains(line), "key material leaked into {text}");
        }
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn directory_round_trip_protects_the_key_and_refuses_overwrite() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("fleet");
    let ca = FleetCa::generate("ca").expect("CA generates");
    ca.write_to_dir(&dir, false).expect("writes");
    #[cfg(unix)]
    assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
    let loaded = FleetCa::load_from_dir(&dir).expect("loads");
    assert_eq!(loaded.cert_pem(), ca.cert_pem());

    let newer = FleetCa::generate("newer").expect("CA generates");
    let err = newer
        .write_to_dir(&dir, false)
        .expect_err("refuses overwrite");
    assert!(
        matches!(err, CaError::Exists { ref path } if path.ends_with(CA_CERT_FILE)),
        "{err:?}"
    );
    assert!(err.to_string().contains("--force"));
    assert_eq!(
        FleetCa::load_from_dir(&dir).expect("loads").cert_pem(),
        ca.cert_pem()
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join(CA_KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    newer.write_to_dir(&dir, true).expect("forced overwrite");
    #[cfg(unix)]
    assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
    assert_eq!(FleetCa::load_from_dir(&dir).expect("loads").name(), "newer");
}

#[test]
fn load_errors_name_the_file() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let err = FleetCa::load_from_dir(tmp.path()).expect_err("nothing there");
    assert!(matches!(err, CaError::Io { action: "read", .. }), "{err:?}");
    assert!(err.to_string().contains(CA_CERT_FILE), "{err}");

    let ca = FleetCa::generate("ca").expect("CA generates");
    std::fs::write(tmp.path().join(CA_CERT_FILE), ca.key_pem()).expect("write");
    std::fs::write(tmp.path().join(CA_KEY_FILE), ca.cert_pem()).expect("write");
    let err = FleetCa::load_from_dir(tmp.path()).expect_err("swapped files");
    let text = err.to_string();
    assert!(
        text.contains(&tmp.path().join(CA_CERT_FILE).display().to_string()),
        "{text}"
    );
    assert!(text.contains("CERTIFICATE"), "{text}");
}

#[test]
fn identity_and_bundle_files_round_trip() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ca = FleetCa::generate("ca").expect("CA generates");
    ca.write_to_dir(tmp.path(), false).expect("writes");
    let id = ca
        .issue("node-c", &[], DEFAULT_LEAF_VALIDITY)
        .expect("issues");
    let (crt, key) = (tmp.path().join("agent.crt"), tmp.path().join("agent.key"));
    id.write_files(&crt, &key, false).expect("writes");
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    let loaded = Identity::load(&crt, &key).expect("loads");
    assert_eq!(loaded.node_id(), "node-c");
    assert!(matches!(
        id.write_files(&crt, &key, false),
        Err(CaError::Exists { .. })
    ));
    let bundle = TrustBundle::load(&tmp.path().join(CA_CERT_FILE)).expect("loads");
    verify_with(&bundle, leaf_der(&loaded), SystemTime::now()).expect("verifies");
    let err = TrustBundle::load(&crt).expect_err("agent cert is not a bundle");
    assert!(err.to_string().contains("agent.crt"), "{err}");
}

#[test]
fn secret_yaml_carries_both_files() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let yaml = ca.secret_yaml("volley-fleet-ca", "load");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect("YAML parses");
    assert_eq!(doc["metadata"]["namespace"].as_str(), Some("load"));
    assert_eq!(
        doc["data"]["ca.crt"].as_str(),
        Some(secret::base64_encode(ca.cert_pem().as_bytes()).as_str())
    );
    assert_eq!(
        doc["data"]["ca.key"].as_str(),
        Some(secret::base64_encode(ca.key_pem().as_bytes()).as_str())
    );
}

#[test]
fn times_outside_the_certificate_range_are_errors_not_panics() {
    let ca = FleetCa::generate("ca").expect("CA generates");
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
    let err = ca
        .issue_at("node", &[], far, DEFAULT_LEAF_VALIDITY)
        .expect_err("out of range");
    assert!(matches!(err, CaError::Generate { .. }), "{err:?}");
    let early = SystemTime::UNIX_EPOCH;
    let err = ca
        .issue_at("node", &[], early, DEFAULT_LEAF_VALIDITY)
        .expect_err("before epoch");
    assert!(matches!(err, CaError::Generate { .. }), "{err:?}");
}
