//! TLS and QUIC configuration of the fleet transport: TLS 1.3 only, ring only, ALPN `volley/1`,
//! client certificates required and verified against the trust bundle, servers verified for the
//! fixed name `volley-agent`; and reading the peer's node id from its verified certificate.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::ring as ring_provider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::CertificateDer;

use crate::fleet::ca::{Identity, TrustBundle, node_id_from_cert};
use crate::fleet::transport::{ALPN, Limits, PeerId, TransportError};

fn config_error(what: &str) -> impl FnOnce(String) -> TransportError + '_ {
    move |reason| TransportError::Config {
        reason: format!("{what}: {reason}"),
    }
}

fn transport_config(limits: &Limits) -> Result<Arc<quinn::TransportConfig>, TransportError> {
    let idle =
        quinn::IdleTimeout::try_from(limits.idle_timeout).map_err(|_| TransportError::Config {
            reason: format!(
                "limits.idle_timeout = {:?} is too large for QUIC",
                limits.idle_timeout
            ),
        })?;
    let mut config = quinn::TransportConfig::default();
    config.max_idle_timeout(Some(idle));
    config.keep_alive_interval(Some(limits.keep_alive));
    Ok(Arc::new(config))
}

/// Builds the QUIC server and client configurations for one agent.
pub(crate) fn configs(
    identity: &Identity,
    trust: &TrustBundle,
    limits: &Limits,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), TransportError> {
    let provider = Arc::new(ring_provider::default_provider());
    let roots = trust
        .root_store()
        .map_err(|e| config_error("trust bundle")(e.to_string()))?;
    let chain = identity.cert_chain_der().to_vec();

    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(|e| config_error("client certificate verifier")(e.to_string()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config_error("TLS server")(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), identity.private_key_der())
        .map_err(|e| config_error("agent certificate/key (server role)")(e.to_string()))?;
    server.alpn_protocols = vec![ALPN.to_vec()];

    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config_error("TLS client")(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, identity.private_key_der())
        .map_err(|e| config_error("agent certificate/key (client role)")(e.to_string()))?;
    client.alpn_protocols = vec![ALPN.to_vec()];

    let transport = transport_config(limits)?;
    let server_crypto = QuicServerConfig::try_from(server)
        .map_err(|e| config_error("QUIC server crypto")(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server_config.transport_config(Arc::clone(&transport));
    let client_crypto = QuicClientConfig::try_from(client)
        .map_err(|e| config_error("QUIC client crypto")(e.to_string()))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
    client_config.transport_config(transport);
    Ok((server_config, client_config))
}

/// The node id (CN) of the peer's verified leaf certificate.
pub(crate) fn peer_id(conn: &quinn::Connection) -> Option<PeerId> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    chain.first().and_then(node_id_from_cert)
}
