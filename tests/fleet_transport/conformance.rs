//! The conformance suite: every behaviour fleet logic relies on, checked identically for the QUIC
//! and the in-memory transport.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use volley::fleet::transport::{Limits, Oversize, TransportError, measure_clock_offset};

use super::support::{Harness, Kind, TestNode, bounded, echo_handler, eventually, sized_handler};

const MIB: usize = 1024 * 1024;

async fn echo_carries_body_and_sender_id(kind: Kind) {
    let h = Harness::new(kind);
    let (handler, counters) = echo_handler();
    let server = h.node("node-b", handler, Limits::default()).await;
    let (client_handler, _) = echo_handler();
    let client = h.node("node-a", client_handler, Limits::default()).await;
    assert_eq!(
        client.request(&server, b"hello").await,
        Bytes::from_static(b"node-a|hello")
    );
    assert_eq!(
        client.request(&server, b"").await,
        Bytes::from_static(b"node-a|")
    );
    assert_eq!(
        server.request(&client, b"back").await,
        Bytes::from_static(b"node-b|back")
    );
    assert_eq!(counters.calls.load(Ordering::SeqCst), 2);
}

async fn concurrent_requests_each_get_their_own_answer(kind: Kind) {
    let h = Harness::new(kind);
    let (handler, counters) = echo_handler();
    let server = h.node("server", handler, Limits::default()).await;
    let client = h.node("client", echo_handler().0, Limits::default()).await;
    let requests = (0..64).map(|i| {
        let body = Bytes::from(format!("request-{i}"));
        client
            .transport()
            .request(server.addr(), body, Duration::from_secs(20))
    });
    let answers = futures::future::join_all(requests).await;
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("concurrent request succeeds");
        assert_eq!(answer, Bytes::from(format!("client|request-{i}")));
    }
    assert_eq!(counters.calls.load(Ordering::SeqCst), 64);
    if let (TestNode::Quic(c), TestNode::Quic(s)) = (&client, &server) {
        assert_eq!(c.open_connections(), 1, "one cached connection per peer");
        assert_eq!(
            s.open_connections(),
            1,
            "one incoming connection from the client"
        );
    }
}

async fn message_at_the_limit_passes_both_ways(kind: Kind) {
    let h = Harness::new(kind);
    let limits = Limits::default();
    let max = limits.max_message;
    let server = h.node("server", sized_handler(max), limits).await;
    let client = h.node("client", echo_handler().0, limits).await;
    let body: Bytes = (0..max)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let answer = client
        .transport()
        .request(server.addr(), body, Duration::from_secs(30))
        .await
        .expect("a message of exactly max_message passes");
    assert_eq!(answer.len(), max);
    assert!(answer.iter().all(|&b| b == 7));
}

async fn over_limit_is_refused_on_each_side(kind: Kind) {
    let h = Harness::new(kind);
    let small = Limits {
        max_message: MIB,
        ..Limits::default()
    };
    let big = Limits {
        max_message: 3 * MIB,
        ..Limits::default()
    };
    let server = h.node("server", echo_handler().0, small).await;
    let client = h.node("client", echo_handler().0, big).await;
    let send = |size: usize, to: &TestNode| {
        client.transport().request(
            to.addr(),
            Bytes::from(vec![1u8; size]),
            Duration::from_secs(20),
        )
    };

    // Over our own limit: refused locally, never sent.
    let err = send(3 * MIB + 1, &server)
        .await
        .expect_err("over our limit");
    assert_eq!(
        err,
        TransportError::TooLarge {
            peer: server.addr(),
            size: 3 * MIB + 1,
            limit: 3 * MIB,
            what: Oversize::Request
        }
    );
    // Within ours, over the peer's: the peer refuses and says why.
    let err = send(2 * MIB, &server)
        .await
        .expect_err("over the peer's limit");
    match err {
        TransportError::TooLarge {
            limit,
            what: Oversize::RequestRefusedByPeer,
            ..
        } => assert_eq!(limit, MIB),
        other => panic!("expected the peer's refusal, got {other:?}"),
    }
    // The peer's handler answers more than the peer may send.
    let loud = h.node("loud", sized_handler(MIB + 1), small).await;
    let err = send(10, &loud)
        .await
        .expect_err("response over the peer's limit");
    assert!(
        matches!(
            err,
            TransportError::TooLarge {
                what: Oversize::ResponseRefusedByPeer,
                ..
            }
        ),
        "{err:?}"
    );
    // The peer answers more than we accept.
    let tiny = Limits {
        max_message: 1000,
        ..Limits::default()
    };
    let picky = h.node("picky", echo_handler().0, tiny).await;
    let err = picky
        .transport()
        .request(
            server.addr(),
            Bytes::from(vec![1u8; 995]),
            Duration::from_secs(10),
        )
        .await
        .expect_err("echo adds the sender id and exceeds 1000 bytes");
    assert!(
        matches!(
            err,
            TransportError::TooLarge {
                what: Oversize::Response,
                limit: 1000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("exceeds our message limit"),
        "{err}"
    );
    // Refusals do not break the link.
    assert_eq!(
        client.request(&server, b"still fine").await,
        Bytes::from_static(b"client|still fine")
    );
}

async fn unknown_peer_is_unreachable(kind: Kind) {
    let h = Harness::new(kind);
    let client = h.node("client", echo_handler().0, Limits::default()).await;
    // A UDP socket that never answers: nothing speaks QUIC there.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind silent socket");
    let nobody = silent.local_addr().expect("silent address");
    let err = client
        .transport()
        .request(
            nobody,
            Bytes::from_static(b"anyone?"),
            Duration::from_millis(500),
        )
        .await
        .expect_err("nobody answers");
    assert!(
        matches!(err, TransportError::Unreachable { peer, .. } if peer == nobody),
        "{err:?}"
    );
}

async fn handler_that_never_answers_times_out_and_is_dropped(kind: Kind) {
    let h = Harness::new(kind);
    let (handler, counters) = echo_handler();
    let server = h.node("server", handler, Limits::default()).await;
    let client = h.node("client", echo_handler().0, Limits::default()).await;
    // Connected first: the time limit below is the handler's alone. A QUIC handshake that takes
    // longer than the limit on a busy machine is `Unreachable`, another test's subject.
    assert_eq!(
        client.request(&server, b"connect").await,
        Bytes::from_static(b"client|connect")
    );
    let timeout = Duration::from_millis(300);
    let err = client
        .transport()
        .request(server.addr(), Bytes::from_static(b"hang"), timeout)
        .await
        .expect_err("never answered");
    assert_eq!(
        err,
        TransportError::Timeout {
            peer: server.addr(),
            after: timeout
        }
    );
    eventually(
        "the abandoned handler is dropped",
        Duration::from_secs(5),
        || counters.dropped.load(Ordering::SeqCst) == 1,
    )
    .await;
    assert_eq!(
        client.request(&server, b"after").await,
        Bytes::from_static(b"client|after")
    );
}

async fn peer_disappearing_mid_request_is_an_error_not_a_hang(kind: Kind) {
    let h = Harness::new(kind);
    let (handler, counters) = echo_handler();
    let server = Arc::new(h.node("server", handler, Limits::default()).await);
    let client = h.node("client", echo_handler().0, Limits::default()).await;
    let addr = server.addr();
    let pending =
        client
            .transport()
            .request(addr, Bytes::from_static(b"hang"), Duration::from_secs(30));
    let vanish = {
        let server = Arc::clone(&server);
        let counters = Arc::clone(&counters);
        async move {
            eventually(
                "the request reaches the handler",
                Duration::from_secs(10),
                || counters.hung.load(Ordering::SeqCst) == 1,
            )
            .await;
            server.shutdown().await;
        }
    };
    let started = tokio::time::Instant::now();
    let (result, ()) = tokio::join!(pending, vanish);
    let err = result.expect_err("the peer vanished");
    assert!(
        matches!(err, TransportError::Closed { peer, .. } if peer == addr),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "error came promptly, not at the timeout"
    );
    let err = client
        .transport()
        .request(
            addr,
            Bytes::from_static(b"again"),
            Duration::from_millis(500),
        )
        .await
        .expect_err("the peer is gone");
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
}

async fn clock_offset_on_one_machine_is_about_zero(kind: Kind) {
    let h = Harness::new(kind);
    let server = h.node("server", echo_handler().0, Limits::default()).await;
    let client = h.node("client", echo_handler().0, Limits::default()).await;
    let sample = measure_clock_offset(client.transport(), server.addr(), 8)
        .await
        .expect("clock measured");
    assert_eq!(sample.rounds, 8);
    assert!(
        sample.offset.abs() < 5_000_000,
        "offset {} ns on one machine",
        sample.offset
    );
    assert!(sample.rtt < Duration::from_secs(1), "rtt {:?}", sample.rtt);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod quic {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::bounded(super::$name(super::Kind::Quic)).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::bounded(super::$name(super::Kind::Memory)).await;
                }
            )*
        }
    };
}

conformance!(
    echo_carries_body_and_sender_id,
    concurrent_requests_each_get_their_own_answer,
    message_at_the_limit_passes_both_ways,
    over_limit_is_refused_on_each_side,
    unknown_peer_is_unreachable,
    handler_that_never_answers_times_out_and_is_dropped,
    peer_disappearing_mid_request_is_an_error_not_a_hang,
    clock_offset_on_one_machine_is_about_zero,
);
