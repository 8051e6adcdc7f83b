//! The accept loop and per-connection driving of the target.
//!
//! One task per accepted connection, kept in a `JoinSet` so shutdown can wait
//! for them and then abort stragglers. Each connection is served by
//! hyper-util's auto builder (HTTP/1.1 or h2 prior knowledge, detected from
//! the preface), after an optional TLS handshake. A single `watch` channel is
//! the stop signal: it tells live connections to finish gracefully, releases
//! `/stall` requests and cancels pending TLS handshakes.
//!
//! Nothing a client does can end the loop: connection and handshake errors
//! are logged at debug level, accept errors (say, out of file descriptors) at
//! warn level followed by a short pause.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::TargetConfig;
use super::routes::Router;
use super::stats::TargetStats;

/// How long in-flight requests get to finish after shutdown starts before
/// their connections are closed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A client that opens a TLS connection and never completes the handshake is
/// dropped after this long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept`, so a persistent error does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

type Builder = auto::Builder<TokioExecutor>;

/// Serves connections from `listener` until `shutdown` resolves, then stops
/// accepting (dropping the listener frees the port), lets in-flight requests
/// finish for up to [`SHUTDOWN_GRACE`] and closes whatever is left.
pub(crate) async fn run(
    listener: TcpListener,
    config: &TargetConfig,
    stats: Arc<TargetStats>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let router = Arc::new(Router {
        max_delay: config.max_delay,
        max_bytes: config.max_bytes,
        added_latency: config.added_latency,
        stats: Arc::clone(&stats),
        stop_rx: stop_rx.clone(),
    });
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                log_join(joined);
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    stats.record_connection();
                    connections.spawn(serve_connection(
                        tcp,
                        peer,
                        tls.clone(),
                        Arc::clone(&builder),
                        Arc::clone(&router),
                        stop_rx.clone(),
                    ));
                }
                Err(error) => {
                    warn!(%error, "accepting a connection failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
        }
    }

    drop(listener);
    // Receivers live in `router` and every connection task, so this cannot
    // fail while anything still listens; if nothing does, there is no one to tell.
    let _ = stop_tx.send(true);
    let drain = async {
        while let Some(joined) = connections.join_next().await {
            log_join(joined);
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        debug!(
            remaining = connections.len(),
            "shutdown grace period over; closing remaining connections"
        );
    }
    connections.shutdown().await;
}

/// Sets up one accepted connection (TCP_NODELAY, optional TLS) and serves it.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    builder: Arc<Builder>,
    router: Arc<Router>,
    mut stop_rx: watch::Receiver<bool>,
) {
    // Without it, Nagle plus delayed ACKs add ~40 ms to small h2 exchanges.
    if let Err(error) = tcp.set_nodelay(true) {
        debug!(%peer, %error, "setting TCP_NODELAY failed");
    }
    let Some(acceptor) = tls else {
        drive(TokioIo::new(tcp), peer, &builder, router, stop_rx).await;
        return;
    };
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stopped = async {
        // An error means the server is gone, which is also a stop.
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let outcome = tokio::select! {
        outcome = handshake => outcome,
        () = stopped => return,
    };
    match outcome {
        Ok(Ok(stream)) => drive(TokioIo::new(stream), peer, &builder, router, stop_rx).await,
        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => debug!(%peer, timeout = ?TLS_HANDSHAKE_TIMEOUT, "TLS handshake timed out"),
    }
}

/// Runs the HTTP connection until it ends, or shuts it down gracefully once
/// the stop signal fires.
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    builder: &Builder,
    router: Arc<Router>,
    mut stop_rx: watch::Receiver<bool>,
) where
    I: Read + Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| Arc::clone(&router).handle(req));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let stopped = async {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        debug!(%peer, %error, "connection ended with an error");
    }
}

/// Logs a connection task that did not end normally.
fn log_join(joined: Result<(), JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        warn!(%error, "a connection task panicked");
    }
}
