//! Shared test fixtures: a harness that builds nodes of either transport kind under one fleet CA,
//! handlers that echo or hang (with counters to see them entered and dropped), and polling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use volley::fleet::ca::{DEFAULT_LEAF_VALIDITY, FleetCa, Identity};
use volley::fleet::transport::{
    Handler, Limits, MemoryNetwork, MemoryTransport, QuicTransport, Transport, handler_fn,
};

/// Which implementation a conformance test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Quic,
    Memory,
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Builds nodes of one kind that trust each other.
pub struct Harness {
    pub kind: Kind,
    pub ca: FleetCa,
    pub net: MemoryNetwork,
}

impl Harness {
    pub fn new(kind: Kind) -> Self {
        Harness {
            kind,
            ca: FleetCa::generate("volley-test-fleet").expect("CA generates"),
            net: MemoryNetwork::new(),
        }
    }

    pub fn identity(&self, name: &str) -> Identity {
        self.ca
            .issue(name, &[], DEFAULT_LEAF_VALIDITY)
            .expect("identity issues")
    }

    pub async fn node(&self, name: &str, handler: Arc<dyn Handler>, limits: Limits) -> TestNode {
        match self.kind {
            Kind::Quic => TestNode::Quic(Box::new(
                QuicTransport::bind(
                    loopback(),
                    &self.identity(name),
                    &self.ca.trust_bundle(),
                    handler,
                    limits,
                )
                .await
                .expect("QUIC transport binds"),
            )),
            Kind::Memory => TestNode::Memory(
                self.net
                    .bind(loopback(), name, handler, limits)
                    .expect("memory transport binds"),
            ),
        }
    }
}

/// A node of either kind.
pub enum TestNode {
    Quic(Box<QuicTransport>),
    Memory(MemoryTransport),
}

impl TestNode {
    pub fn transport(&self) -> &dyn Transport {
        match self {
            TestNode::Quic(t) => t.as_ref(),
            TestNode::Memory(t) => t,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.transport().local_addr()
    }

    pub async fn shutdown(&self) {
        match self {
            TestNode::Quic(t) => t.shutdown().await,
            TestNode::Memory(t) => t.shutdown().await,
        }
    }

    pub async fn request(&self, to: &TestNode, body: &'static [u8]) -> Bytes {
        self.transport()
            .request(to.addr(), Bytes::from_static(body), Duration::from_secs(10))
            .await
            .expect("request succeeds")
    }
}

/// Counts handler calls, hung calls entered, and hung calls dropped (abandoned).
#[derive(Default)]
pub struct Counters {
    pub calls: AtomicUsize,
    pub hung: AtomicUsize,
    pub dropped: AtomicUsize,
}

struct DropFlag(Arc<Counters>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Answers `"<from>|<body>"`, except that the body `hang` never gets an answer.
pub fn echo_handler() -> (Arc<dyn Handler>, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let seen = Arc::clone(&counters);
    let handler = handler_fn(move |from, body: Bytes| {
        let counters = Arc::clone(&seen);
        async move {
            counters.calls.fetch_add(1, Ordering::SeqCst);
            if body.as_ref() == b"hang" {
                let _flag = DropFlag(Arc::clone(&counters));
                counters.hung.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            let mut out = format!("{from}|").into_bytes();
            out.extend_from_slice(&body);
            Bytes::from(out)
        }
    });
    (handler, counters)
}

/// Answers with `size` bytes whatever the request.
pub fn sized_handler(size: usize) -> Arc<dyn Handler> {
    handler_fn(move |_, _| async move { Bytes::from(vec![7u8; size]) })
}

/// Polls `cond` every 10 ms until it holds; panics after `limit`.
pub async fn eventually(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs a test body under an overall deadline so no test can hang the suite.
pub async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("test finished within 60 s");
}
