//! The QUIC server against a hand-written client speaking raw frames: malformed requests get a
//! protocol error reply (never a crash), the connection survives them, and handshakes that break
//! the rules (wrong ALPN, certificate without node id) are refused.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use rustls::crypto::ring as ring_provider;
use volley::fleet::ca::{AGENT_SAN, DEFAULT_LEAF_VALIDITY, FleetCa};
use volley::fleet::transport::{ALPN, Limits, QuicTransport, Transport};

use super::support::{bounded, echo_handler, loopback};

/// A quinn client presenting `chain`/`key`, trusting `ca`, announcing `alpn`.
fn raw_client(
    ca: &FleetCa,
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    alpn: &[u8],
) -> quinn::Endpoint {
    let roots = ca.trust_bundle().root_store().expect("roots");
    let mut tls =
        rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client cert");
    tls.alpn_protocols = vec![alpn.to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(tls).expect("QUIC crypto"),
    ));
    let mut endpoint = quinn::Endpoint::client(loopback()).expect("client endpoint");
    endpoint.set_default_client_config(config);
    endpoint
}

/// Sends raw bytes on a fresh stream and returns everything the server sends back.
async fn raw_exchange(conn: &quinn::Connection, bytes: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = conn.open_bi().await.expect("stream opens");
    send.write_all(bytes).await.expect("request written");
    send.finish().expect("request finished");
    recv.read_to_end(1 << 20).await.expect("reply read")
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// The payload of a reply frame, checking its length prefix.
fn reply_payload(reply: &[u8]) -> &[u8] {
    let (len, payload) = reply.split_at(4);
    assert_eq!(
        u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize,
        payload.len()
    );
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_protocol_errors_and_the_connection_survives() {
    bounded(async {
        let ca = FleetCa::generate("fleet").expect("CA");
        let server_id = ca.issue("server", &[], DEFAULT_LEAF_VALIDITY).expect("id");
        let server = QuicTransport::bind(
            loopback(),
            &server_id,
            &ca.trust_bundle(),
            echo_handler().0,
            Limits::default(),
        )
        .await
        .expect("binds");
        let me = ca.issue("raw", &[], DEFAULT_LEAF_VALIDITY).expect("id");
        let endpoint = raw_client(
            &ca,
            me.cert_chain_der().to_vec(),
            me.private_key_der(),
            ALPN,
        );
        let conn = endpoint
            .connect(server.local_addr(), AGENT_SAN)
            .expect("dial")
            .await
            .expect("handshake");

        let reply = raw_exchange(&conn, &frame(&[0x7f, 1, 2])).await;
        let payload = reply_payload(&reply);
        assert_eq!(&payload[..2], &[0x01, 0x01], "error status, protocol code");
        let reason = String::from_utf8_lossy(&payload[2..]);
        assert!(reason.contains("unknown message kind 0x7f"), "{reason}");

        let reply = raw_exchange(&conn, &frame(&[])).await;
        assert!(String::from_utf8_lossy(&reply_payload(&reply)[2..]).contains("empty request"));

        let mut trailing = frame(&[0x02, b'x']);
        trailing.push(0xff);
        let reply = raw_exchange(&conn, &trailing).await;
        assert!(
            String::from_utf8_lossy(&reply_payload(&reply)[2..]).contains("bad request framing")
        );

        // A frame that promises more than it delivers: no reply, no crash.
        let reply = raw_exchange(&conn, &[0, 0, 0, 10, 0x02, b'a']).await;
        assert!(reply.is_empty(), "truncated request gets no reply");

        // The same connection still serves well-formed requests.
        let reply = raw_exchange(&conn, &frame(b"\x02ping")).await;
        assert_eq!(reply_payload(&reply), b"\x00raw|ping");
        let reply = raw_exchange(&conn, &frame(&[0x01])).await;
        assert_eq!(
            reply_payload(&reply).len(),
            33,
            "TIME reply: status + two 16-byte stamps"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_alpn_and_certificates_without_node_id_are_refused() {
    bounded(async {
        let ca = FleetCa::generate("fleet").expect("CA");
        let server_id = ca.issue("server", &[], DEFAULT_LEAF_VALIDITY).expect("id");
        let server = QuicTransport::bind(
            loopback(),
            &server_id,
            &ca.trust_bundle(),
            echo_handler().0,
            Limits::default(),
        )
        .await
        .expect("binds");
        let me = ca.issue("raw", &[], DEFAULT_LEAF_VALIDITY).expect("id");

        let wrong_alpn = raw_client(
            &ca,
            me.cert_chain_der().to_vec(),
            me.private_key_der(),
            b"other/1",
        );
        let result = wrong_alpn
            .connect(server.local_addr(), AGENT_SAN)
            .expect("dial")
            .await;
        assert!(result.is_err(), "a client without volley/1 is refused");

        // A certificate signed by the fleet CA but without a CN: the server cannot tell who it is.
        let issuer = rcgen::Issuer::from_ca_cert_pem(
            ca.cert_pem(),
            rcgen::KeyPair::from_pem(ca.key_pem()).expect("CA key"),
        )
        .expect("issuer");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![AGENT_SAN.to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer).expect("signed");
        let nameless = raw_client(
            &ca,
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            volley::fleet::transport::ALPN,
        );
        let conn = nameless
            .connect(server.local_addr(), AGENT_SAN)
            .expect("dial")
            .await
            .expect("TLS accepts it");
        let closed = tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .expect("closed promptly");
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, quinn::VarInt::from_u32(1));
                assert!(String::from_utf8_lossy(&close.reason).contains("no node id"));
            }
            other => panic!("expected an application close, got {other:?}"),
        }
        // The server keeps serving proper agents.
        let client = QuicTransport::bind(
            loopback(),
            &me,
            &ca.trust_bundle(),
            echo_handler().0,
            Limits::default(),
        )
        .await
        .expect("binds");
        let answer = client
            .request(
                server.local_addr(),
                bytes::Bytes::from_static(b"ok"),
                Duration::from_secs(5),
            )
            .await
            .expect("answered");
        assert_eq!(answer, bytes::Bytes::from_static(b"raw|ok"));
    })
    .await;
}
