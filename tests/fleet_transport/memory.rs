//! What only the in-memory network does: partitions and heals, address conflicts.

use std::time::Duration;

use bytes::Bytes;
use volley::fleet::transport::{Limits, MemoryNetwork, Transport, TransportError};

use super::support::{bounded, echo_handler, loopback};

async fn ping(from: &dyn Transport, to: &dyn Transport) -> Result<Bytes, TransportError> {
    from.request(
        to.local_addr(),
        Bytes::from_static(b"ping"),
        Duration::from_secs(1),
    )
    .await
}

fn unreachable(result: Result<Bytes, TransportError>) -> bool {
    matches!(result, Err(TransportError::Unreachable { .. }))
}

#[tokio::test]
async fn partition_cuts_both_directions_until_healed() {
    bounded(async {
        let net = MemoryNetwork::new();
        let a = net
            .bind(loopback(), "a", echo_handler().0, Limits::default())
            .expect("binds");
        let b = net
            .bind(loopback(), "b", echo_handler().0, Limits::default())
            .expect("binds");
        let c = net
            .bind(loopback(), "c", echo_handler().0, Limits::default())
            .expect("binds");

        assert_eq!(
            ping(&a, &b).await.expect("linked"),
            Bytes::from_static(b"a|ping")
        );
        net.partition(a.local_addr(), b.local_addr());
        assert!(unreachable(ping(&a, &b).await));
        assert!(unreachable(ping(&b, &a).await));
        assert_eq!(
            ping(&c, &b).await.expect("other links intact"),
            Bytes::from_static(b"c|ping")
        );
        assert_eq!(
            ping(&a, &c).await.expect("other links intact"),
            Bytes::from_static(b"a|ping")
        );
        net.heal(b.local_addr(), a.local_addr());
        assert_eq!(
            ping(&b, &a).await.expect("healed"),
            Bytes::from_static(b"b|ping")
        );
    })
    .await;
}

#[tokio::test]
async fn addresses_are_unique_and_freed_on_drop() {
    let net = MemoryNetwork::new();
    let a = net
        .bind(loopback(), "a", echo_handler().0, Limits::default())
        .expect("binds");
    let b = net
        .bind(loopback(), "b", echo_handler().0, Limits::default())
        .expect("binds");
    assert_ne!(
        a.local_addr(),
        b.local_addr(),
        "port 0 picks distinct ports"
    );
    let taken = a.local_addr();
    let err = net
        .bind(taken, "again", echo_handler().0, Limits::default())
        .expect_err("address in use");
    assert!(
        matches!(err, TransportError::Bind { addr, .. } if addr == taken),
        "{err:?}"
    );
    drop(a);
    let again = net
        .bind(taken, "again", echo_handler().0, Limits::default())
        .expect("freed by drop");
    assert_eq!(again.peer_id(), "again");
    let bad = Limits {
        keep_alive: Duration::from_secs(60),
        ..Limits::default()
    };
    assert!(matches!(
        net.bind(loopback(), "x", echo_handler().0, bad).err(),
        Some(TransportError::Config { .. })
    ));
}

#[tokio::test]
async fn reply_in_flight_across_a_new_cut_is_lost() {
    bounded(async {
        let net = MemoryNetwork::new();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let entered = std::sync::Arc::new(tokio::sync::Notify::new());
        let (g, e) = (gate.clone(), entered.clone());
        let slow = volley::fleet::transport::handler_fn(move |_, body| {
            let (g, e) = (g.clone(), e.clone());
            async move {
                e.notify_one();
                let _permit = g.acquire().await;
                body
            }
        });
        let a = net
            .bind(loopback(), "a", echo_handler().0, Limits::default())
            .expect("binds");
        let b = net
            .bind(loopback(), "b", slow, Limits::default())
            .expect("binds");
        let request = a.request(
            b.local_addr(),
            Bytes::from_static(b"x"),
            Duration::from_secs(10),
        );
        let cut_then_release = async {
            entered.notified().await;
            net.partition(a.local_addr(), b.local_addr());
            gate.add_permits(1);
        };
        let (result, ()) = tokio::join!(request, cut_then_release);
        assert!(unreachable(result));
    })
    .await;
}
