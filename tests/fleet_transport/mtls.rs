//! Mutual TLS on the QUIC transport: only certificates issued by the fleet CA and currently valid
//! get through, in both directions, and a restarted peer is re-dialled.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use volley::fleet::ca::{AGENT_SAN, DEFAULT_LEAF_VALIDITY, FleetCa, Identity, TrustBundle};
use volley::fleet::transport::{Handler, Limits, QuicTransport, Transport, TransportError};

use super::support::{bounded, echo_handler, eventually, loopback};

async fn bind(
    identity: &Identity,
    trust: &TrustBundle,
    handler: Arc<dyn Handler>,
) -> QuicTransport {
    QuicTransport::bind(loopback(), identity, trust, handler, Limits::default())
        .await
        .expect("QUIC transport binds")
}

async fn ask(client: &QuicTransport, server: &QuicTransport) -> Result<Bytes, TransportError> {
    client
        .request(
            server.local_addr(),
            Bytes::from_static(b"hi"),
            Duration::from_secs(5),
        )
        .await
}

fn refused_reason(result: Result<Bytes, TransportError>) -> String {
    match result {
        Err(TransportError::Refused { reason, .. }) => reason,
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

fn two_days_ago() -> SystemTime {
    SystemTime::now() - Duration::from_secs(2 * 86400)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_from_another_ca_is_refused_by_the_server() {
    bounded(async {
        let fleet = FleetCa::generate("fleet").expect("CA");
        let other = FleetCa::generate("other fleet").expect("CA");
        let (handler, counters) = echo_handler();
        let server = bind(
            &fleet
                .issue("server", &[], DEFAULT_LEAF_VALIDITY)
                .expect("id"),
            &fleet.trust_bundle(),
            handler,
        )
        .await;
        // The intruder trusts the fleet (so it accepts the server) but holds another CA's certificate.
        let intruder_id = other
            .issue("intruder", &[], DEFAULT_LEAF_VALIDITY)
            .expect("id");
        let intruder = bind(&intruder_id, &fleet.trust_bundle(), echo_handler().0).await;
        let reason = refused_reason(ask(&intruder, &server).await);
        assert!(
            reason.contains("rejected our certificate") && reason.contains("fleet CA"),
            "{reason}"
        );
        assert_eq!(
            counters.calls.load(Ordering::SeqCst),
            0,
            "the handler never ran"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_from_another_ca_is_refused_by_the_client() {
    bounded(async {
        let fleet = FleetCa::generate("fleet").expect("CA");
        let other = FleetCa::generate("other fleet").expect("CA");
        let (handler, counters) = echo_handler();
        let impostor_id = other
            .issue("impostor", &[], DEFAULT_LEAF_VALIDITY)
            .expect("id");
        let impostor = bind(&impostor_id, &other.trust_bundle(), handler).await;
        let client = bind(
            &fleet
                .issue("client", &[], DEFAULT_LEAF_VALIDITY)
                .expect("id"),
            &fleet.trust_bundle(),
            echo_handler().0,
        )
        .await;
        let reason = refused_reason(ask(&client, &impostor).await);
        assert!(
            reason.starts_with("peer certificate not issued by this fleet's CA"),
            "{reason}"
        );
        assert_eq!(counters.calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_leaf_is_refused() {
    bounded(async {
        let fleet = FleetCa::generate("fleet").expect("CA");
        let (handler, counters) = echo_handler();
        let server = bind(
            &fleet
                .issue("server", &[], DEFAULT_LEAF_VALIDITY)
                .expect("id"),
            &fleet.trust_bundle(),
            handler,
        )
        .await;
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![AGENT_SAN.to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rogue");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&key).expect("self-signed");
        let rogue_id = Identity::from_pem(&cert.pem(), &key.serialize_pem()).expect("identity");
        let rogue = bind(&rogue_id, &fleet.trust_bundle(), echo_handler().0).await;
        let reason = refused_reason(ask(&rogue, &server).await);
        assert!(reason.contains("fleet CA"), "{reason}");
        assert_eq!(counters.calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificates_are_refused_in_both_roles() {
    bounded(async {
        let fleet = FleetCa::generate("fleet").expect("CA");
        let expired = fleet
            .issue_at("stale", &[], two_days_ago(), Duration::from_secs(3600))
            .expect("id");
        let fresh_server = bind(
            &fleet
                .issue("server", &[], DEFAULT_LEAF_VALIDITY)
                .expect("id"),
            &fleet.trust_bundle(),
            echo_handler().0,
        )
        .await;
        let stale = bind(&expired, &fleet.trust_bundle(), echo_handler().0).await;
        // The stale node as client: the server rejects its certificate.
        let reason = refused_reason(ask(&stale, &fresh_server).await);
        assert!(
            reason.contains("our certificate") && reason.contains("expired"),
            "{reason}"
        );
        // The stale node as server: a fresh client rejects it.
        let client = bind(
            &fleet
                .issue("client", &[], DEFAULT_LEAF_VALIDITY)
                .expect("id"),
            &fleet.trust_bundle(),
            echo_handler().0,
        )
        .await;
        let reason = refused_reason(ask(&client, &stale).await);
        assert!(reason.starts_with("peer certificate expired"), "{reason}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_peer_at_the_same_address_is_redialled() {
    bounded(async {
        let fleet = FleetCa::generate("fleet").expect("CA");
        let server_id = fleet
            .issue("server", &[], DEFAULT_LEAF_VALIDITY)
            .expect("id");
        let first = bind(&server_id, &fleet.trust_bundle(), echo_handler().0).await;
        let addr = first.local_addr();
        let client = bind(
            &fleet
                .issue("client", &[], DEFAULT_LEAF_VALIDITY)
                .expect("id"),
            &fleet.trust_bundle(),
            echo_handler().0,
        )
        .await;
        assert_eq!(
            ask(&client, &first).await.expect("first answer"),
            Bytes::from_static(b"client|hi")
        );
        first.shutdown().await;
        drop(first);
        eventually(
            "the client notices the close",
            Duration::from_secs(5),
            || client.open_connections() == 0,
        )
        .await;
        // Rebind the port the old incarnation released (a UDP port has no TIME_WAIT).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let second = loop {
            match QuicTransport::bind(
                addr,
                &server_id,
                &fleet.trust_bundle(),
                echo_handler().0,
                Limits::default(),
            )
            .await
            {
                Ok(t) => break t,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "could not rebind {addr}: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let answer = ask(&client, &second)
            .await
            .expect("the new incarnation answers");
        assert_eq!(answer, Bytes::from_static(b"client|hi"));
    })
    .await;
}

/// A long-lived agent renews its certificate without restarting: after
/// `renew`, new connections both ways present the new one (here an expired
/// certificate, refused by the peer, is replaced by a valid one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_presented_to_new_connections() {
    bounded(async {
        let fleet = FleetCa::generate("fleet").expect("CA");
        let expired = |node: &str| {
            fleet
                .issue_at(node, &[], two_days_ago(), DEFAULT_LEAF_VALIDITY)
                .expect("id")
        };
        let fresh = |node: &str| fleet.issue(node, &[], DEFAULT_LEAF_VALIDITY).expect("id");
        let (handler, counters) = echo_handler();
        let server = bind(&expired("server"), &fleet.trust_bundle(), handler).await;
        let client = bind(&expired("client"), &fleet.trust_bundle(), echo_handler().0).await;
        assert!(ask(&client, &server).await.is_err(), "both expired");

        server.renew(&fresh("server")).expect("server renews");
        let reason = refused_reason(ask(&client, &server).await);
        assert!(
            reason.contains("expired"),
            "the client's is still expired: {reason}"
        );

        client.renew(&fresh("client")).expect("client renews");
        let answer = ask(&client, &server).await.expect("both renewed");
        assert_eq!(
            &answer[..],
            b"client|hi",
            "the echo names the renewed sender"
        );
        assert_eq!(counters.calls.load(Ordering::SeqCst), 1);
    })
    .await;
}
