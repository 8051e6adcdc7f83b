//! Certificates as cert-manager's CSI driver issues them, made with rcgen: a
//! CA that no agent gets the key of, and for each agent a leaf whose common
//! name is its node id, with the DNS names `volley-agent` (the name agents
//! verify each other's QUIC servers for) and the node id, server and client
//! auth, and a PKCS#8 key; written as the driver mounts them (`tls.crt`,
//! `tls.key`, `ca.crt`) into one directory per agent.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::HarnessError;

/// The DNS name every agent certificate carries (Volley's `AGENT_SAN`).
pub const AGENT_SAN: &str = "volley-agent";

fn ca_error(e: rcgen::Error) -> HarnessError {
    HarnessError::Ca(e.to_string())
}

/// Writes `dir/tls-{i}/{tls.crt,tls.key,ca.crt}` for agents `agent-0`..`agent-{n-1}`; returns
/// the directories. The CA's key stays in memory and is dropped here.
pub fn write(dir: &Path, n: usize) -> Result<Vec<PathBuf>, HarnessError> {
    let ca_key = KeyPair::generate().map_err(ca_error)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(ca_error)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "cert-manager test issuer");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).map_err(ca_error)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut dirs = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("agent-{i}");
        let key = KeyPair::generate().map_err(ca_error)?;
        let mut leaf =
            CertificateParams::new(vec![AGENT_SAN.to_owned(), id.clone()]).map_err(ca_error)?;
        leaf.distinguished_name
            .push(DnType::CommonName, id.as_str());
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = leaf.signed_by(&key, &issuer).map_err(ca_error)?;
        let out = dir.join(format!("tls-{i}"));
        for (name, text) in [
            ("tls.crt", cert.pem()),
            ("tls.key", key.serialize_pem()),
            ("ca.crt", ca_pem.clone()),
        ] {
            let path = out.join(name);
            std::fs::create_dir_all(&out)
                .and_then(|()| std::fs::write(&path, text))
                .map_err(|source| HarnessError::Files {
                    what: "an agent certificate file",
                    path,
                    source,
                })?;
        }
        dirs.push(out);
    }
    Ok(dirs)
}
