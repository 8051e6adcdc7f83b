//! TCP through the relay: each accepted connection gets its own upstream connection and two
//! pipes, one per direction, each with its own [`DelayLine`]. A pipe reads while its line has
//! room (so a full line pushes back on the sender through TCP's own flow control), writes each
//! chunk when it is due, and passes the sender's half-close on once the line is empty. An error
//! in either direction closes the whole connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::schedule::{DelayLine, Schedule, flow_seed};
use super::{RelayConfig, RelayStats};

/// The most read at once: one chunk in a delay line.
const CHUNK: usize = 16 * 1024;
/// How long the upstream connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn accept_loop(
    listener: TcpListener,
    config: Arc<RelayConfig>,
    stats: Arc<RelayStats>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.limits.max_tcp_connections));
    let mut flow = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) => {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::debug!(%peer, "relay: connection over the cap closed");
                    RelayStats::add(&stats.tcp_refused);
                    continue;
                };
                flow += 1;
                tokio::spawn(connection(
                    client,
                    Arc::clone(&config),
                    Arc::clone(&stats),
                    flow,
                    permit,
                    shutdown.child_token(),
                ));
            }
            Err(e) => {
                // Out of file descriptors, most likely: wait a moment rather than spin.
                tracing::warn!("relay: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    client: TcpStream,
    config: Arc<RelayConfig>,
    stats: Arc<RelayStats>,
    flow: u64,
    _permit: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(config.to)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(to = %config.to, "relay: upstream connect failed: {e}");
            RelayStats::add(&stats.tcp_refused);
            return;
        }
        Err(_) => {
            tracing::debug!(to = %config.to, "relay: upstream connect timed out");
            RelayStats::add(&stats.tcp_refused);
            return;
        }
    };
    RelayStats::add(&stats.tcp_connections);
    // The delay is the relay's to add; Nagle's would add more.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_rx, client_tx) = client.into_split();
    let (upstream_rx, upstream_tx) = upstream.into_split();
    let max = config.limits.max_queued_bytes;
    let forward = DelayLine::new(
        Schedule::new(config.forward, flow_seed(config.seed, flow, 0)),
        max,
    );
    let back = DelayLine::new(
        Schedule::new(config.back, flow_seed(config.seed, flow, 1)),
        max,
    );
    tokio::select! {
        _ = shutdown.cancelled() => {}
        done = async {
            tokio::try_join!(pipe(client_rx, upstream_tx, forward), pipe(upstream_rx, client_tx, back))
        } => {
            if let Err(e) = done {
                tracing::debug!(to = %config.to, "relay: connection closed: {e}");
            }
        }
    }
}

/// One direction: read while the line has room, write what is due, pass the half-close on.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut line: DelayLine,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut eof = false;
    loop {
        if eof && line.is_empty() {
            return to.shutdown().await;
        }
        let next = line.next_due();
        let can_read = !eof && line.has_room(CHUNK);
        tokio::select! {
            read = from.read(&mut buf), if can_read => {
                let n = read?;
                if n == 0 {
                    eof = true;
                } else {
                    let now = Instant::now();
                    // `has_room(CHUNK)` held, so a chunk of at most CHUNK bytes fits.
                    let _ = line.push(now, Bytes::copy_from_slice(&buf[..n]));
                }
            }
            _ = sleep_until_some(next), if next.is_some() => {
                let now = Instant::now();
                while let Some(data) = line.pop_due(now) {
                    to.write_all(&data).await?;
                }
            }
        }
    }
}

/// Sleeps until `at`, forever when there is none (the branch is disabled then anyway).
pub(super) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
