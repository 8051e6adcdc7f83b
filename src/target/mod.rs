//! The built-in HTTP target (`volley target`): a small, fast server with
//! routes for every behaviour a load test needs to see, so the quickstart,
//! examples, tests and demos run with nothing else installed.
//!
//! One port serves HTTP/1.1 and h2c (prior knowledge); with
//! [`TargetConfig::tls`] it serves TLS instead, offering ALPN `h2` and
//! `http/1.1` with a self-signed certificate generated at start (see
//! [`TlsIdentity`]). Routes (any method):
//!
//! | path | answer |
//! |---|---|
//! | `/` | 200 `Volley target\n` |
//! | `/bytes/N` | 200 with N bytes of [`BYTES_PATTERN`] (400 above [`TargetConfig::max_bytes`]) |
//! | `/delay/MS` | 200 after MS milliseconds (400 above [`TargetConfig::max_delay`]) |
//! | `/status/CODE` | that status, 200–599 (400 otherwise) |
//! | `/json` | a fixed JSON document with a per-request `token` |
//! | `/echo` | the request body and content type, method in `x-echo-method` |
//! | `/headers` | the request headers as a JSON object |
//! | `/stall` | never answers (until shutdown, which drops it unanswered) |
//! | `/drop` | announces 4096 bytes, sends 1024, aborts the connection (h2: resets the stream) |
//! | anything else | 404 |
//!
//! With [`TargetConfig::added_latency`] every answer waits that long first.
//!
//! Layout: `server` (accept loop, connections, shutdown), `routes` (path to
//! response), `body` (the response body type), `tls`, `stats`.

mod body;
mod routes;
mod server;
mod session;
mod stats;
mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::InvalidDnsNameError;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use body::BYTES_PATTERN;
pub use stats::{Route, TargetStats};
pub use tls::TlsIdentity;

/// Default for [`TargetConfig::max_delay`].
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);
/// Default for [`TargetConfig::max_bytes`]: 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// How the target serves.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Serve TLS (self-signed certificate) instead of cleartext HTTP/1.1 + h2c.
    pub tls: bool,
    /// Extra certificate names besides `localhost`, `127.0.0.1` and `::1`
    /// (e.g. the pod IP or service name clients use). Ignored without `tls`.
    pub tls_names: Vec<String>,
    /// Longest `/delay/MS` accepted, so one request cannot hold a connection
    /// indefinitely.
    pub max_delay: Duration,
    /// Largest `/bytes/N` accepted, so one request cannot stream forever.
    pub max_bytes: usize,
    /// Listen backlog (see [`bind`]).
    pub backlog: u32,
    /// Held before every answer (zero: none): a fixed latency that makes
    /// this target look farther away, as a remote region does in
    /// `volley demo --cross-region`. Added to what the route takes
    /// (`/delay/MS` answers after MS plus this); not a network delay, so
    /// connecting and TLS handshakes are as fast as ever.
    pub added_latency: Duration,
}

/// The listen backlog asked of the kernel by default; Linux caps it at
/// `net.core.somaxconn`, so this means "as large as the kernel allows".
pub const DEFAULT_BACKLOG: u32 = 65_535;

/// Binds `addr` with room for `backlog` connections waiting to be
/// accepted. With the usual 128 (what `TcpListener::bind` asks for), a few
/// hundred VUs connecting at once overflow the queue: the kernel drops
/// SYNs, the client retries a second later, and the test reports a 1 s
/// `http_req_connecting` that is the target's doing, not the network's.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            tls: false,
            tls_names: Vec::new(),
            max_delay: DEFAULT_MAX_DELAY,
            max_bytes: DEFAULT_MAX_BYTES,
            backlog: DEFAULT_BACKLOG,
            added_latency: Duration::ZERO,
        }
    }
}

/// Why the target could not start.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The bound listener would not report its address.
    #[error("cannot read the target's listening address")]
    LocalAddr(#[source] io::Error),
    /// An extra TLS name is neither a DNS name nor an IP address.
    #[error(
        "TLS name {name:?} is not a DNS name or IP address \
         (expected e.g. `target.example.com` or `10.0.0.5`)"
    )]
    TlsName {
        /// The name as given.
        name: String,
        /// The parser's complaint.
        #[source]
        source: InvalidDnsNameError,
    },
    /// rcgen could not produce the self-signed certificate.
    #[error("cannot generate the target's self-signed certificate")]
    Certificate(#[from] rcgen::Error),
    /// rustls rejected the generated certificate or key.
    #[error("cannot configure TLS for the target")]
    Tls(#[from] rustls::Error),
}

/// A target running in a spawned task. Dropping the handle also stops the
/// server (without waiting for it); [`TargetHandle::shutdown`] waits.
#[derive(Debug)]
pub struct TargetHandle {
    /// Where the target listens (the actual port when bound to port 0).
    pub addr: SocketAddr,
    /// Live counters of the running target.
    pub stats: Arc<TargetStats>,
    /// The self-signed certificate in PEM when serving TLS, for clients to trust.
    pub ca_pem: Option<String>,
    /// Sending or dropping it makes the server stop.
    shutdown_tx: oneshot::Sender<()>,
    /// The server task, awaited by `shutdown`.
    task: JoinHandle<()>,
}

impl TargetHandle {
    /// Stops accepting, lets in-flight requests finish briefly, closes every
    /// connection and returns once the port is released.
    pub async fn shutdown(self) {
        let Self {
            shutdown_tx, task, ..
        } = self;
        // The receiver is gone only if the task already ended; awaiting it is then immediate.
        let _ = shutdown_tx.send(());
        if let Err(error) = task.await
            && error.is_panic()
        {
            tracing::warn!(%error, "the target's server task panicked");
        }
    }
}

/// Serves on an already-bound listener until `shutdown` resolves (mini-redis
/// style). With `config.tls`, a fresh self-signed certificate is generated
/// first; use [`spawn`] to learn it.
pub async fn serve(
    listener: TcpListener,
    config: TargetConfig,
    stats: Arc<TargetStats>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TargetError> {
    let identity = identity_for(&config)?;
    let acceptor = identity.as_ref().map(TlsIdentity::acceptor).transpose()?;
    server::run(listener, &config, stats, acceptor, shutdown).await;
    Ok(())
}

/// Binds `addr` (tests: `127.0.0.1:0`) and serves in a spawned task. TLS
/// material is generated before binding, so a bad name fails without taking
/// the port.
pub async fn spawn(addr: SocketAddr, config: TargetConfig) -> Result<TargetHandle, TargetError> {
    let identity = identity_for(&config)?;
    let acceptor = identity.as_ref().map(TlsIdentity::acceptor).transpose()?;
    let listener =
        bind(addr, config.backlog).map_err(|source| TargetError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(TargetError::LocalAddr)?;
    let stats = Arc::new(TargetStats::new());
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let stats = Arc::clone(&stats);
        async move {
            let shutdown = async {
                // Sent or dropped: either way, stop.
                let _ = shutdown_rx.await;
            };
            server::run(listener, &config, stats, acceptor, shutdown).await;
        }
    });
    tracing::debug!(addr = %local, tls = identity.is_some(), "target listening");
    Ok(TargetHandle {
        addr: local,
        stats,
        ca_pem: identity.map(|identity| identity.cert_pem().to_owned()),
        shutdown_tx,
        task,
    })
}

/// The certificate to serve, if `config` asks for TLS.
fn identity_for(config: &TargetConfig) -> Result<Option<TlsIdentity>, TargetError> {
    config
        .tls
        .then(|| TlsIdentity::self_signed(&config.tls_names))
        .transpose()
}
