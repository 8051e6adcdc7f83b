//! Serving the API on a bound listener: configuration ([`ApiConfig`]), the
//! accept loop, per-connection HTTP (hyper-util's auto builder: HTTP/1.1
//! or h2c), and graceful shutdown.
//!
//! Plain HTTP only: the agent API is cluster-internal (reached through a
//! Service or `kubectl port-forward`); mutating calls carry a bearer token.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tracing::{debug, info, warn};

use super::Agent;
use super::auth::{Auth, SecretToken};
use super::routes::Router;

/// Default for [`ApiConfig::max_body`]: 4 MiB, room for a plan and its
/// data files.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Default for [`ApiConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Default for [`ApiConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight requests get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (e.g. out of file descriptors) so a
/// persistent error does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How the API serves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Token the mutating endpoints (`POST /v1/tests`, `DELETE
    /// /v1/tests/{id}`) require as `Authorization: Bearer <token>`. `None`
    /// refuses them with 401 and a message saying the agent runs without a
    /// token file, unless `allow_unauthenticated`.
    pub token: Option<SecretToken>,
    /// Without a token, let anyone start and abort tests: for the demo on
    /// loopback only ([`serve`] refuses it on any other address). Ignored
    /// when a token is set: a configured token is always required.
    pub allow_unauthenticated: bool,
    /// Largest request body accepted (413 above it), so one client cannot
    /// make the agent buffer arbitrary amounts of memory.
    pub max_body: usize,
    /// Budget for one request: headers, body and the agent's answer. Slow
    /// senders get 408, a slow agent 503.
    pub request_timeout: Duration,
    /// Most connections served at once. A connection beyond it gets an
    /// immediate 503 and is closed, so a client holding many connections
    /// open cannot exhaust the agent's file descriptors or memory.
    pub max_connections: usize,
}

/// Why the API could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("invalid API configuration: {field} {problem}")]
    InvalidConfig {
        field: &'static str,
        problem: String,
    },
    #[error("cannot read the API listener's address: {0}")]
    LocalAddr(#[source] io::Error),
    #[error(
        "refusing to serve the API without a token on {addr}: unauthenticated access is only \
         allowed on a loopback address (bind 127.0.0.1, or configure a token file)"
    )]
    UnauthenticatedOffLoopback { addr: SocketAddr },
}

// === impl ApiConfig ===

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            token: None,
            allow_unauthenticated: false,
            max_body: DEFAULT_MAX_BODY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ApiConfig {
    fn validate(&self, addr: SocketAddr) -> Result<(), ApiServerError> {
        if self.max_body == 0 {
            return Err(ApiServerError::InvalidConfig {
                field: "max_body",
                problem: "is 0 bytes; a submit needs room for a plan (default 4 MiB)".to_owned(),
            });
        }
        if self.request_timeout.is_zero() {
            return Err(ApiServerError::InvalidConfig {
                field: "request_timeout",
                problem: "is zero; every request would time out (default 30s)".to_owned(),
            });
        }
        if self.max_connections == 0 {
            return Err(ApiServerError::InvalidConfig {
                field: "max_connections",
                problem: "is 0; no client could connect (default 256)".to_owned(),
            });
        }
        if self.token.is_none() && self.allow_unauthenticated && !addr.ip().is_loopback() {
            return Err(ApiServerError::UnauthenticatedOffLoopback { addr });
        }
        Ok(())
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then stops
/// accepting (freeing the port), gives in-flight requests a few seconds
/// and closes what is left. Client and connection errors never end it.
pub async fn serve(
    listener: TcpListener,
    agent: Arc<dyn Agent>,
    config: ApiConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ApiServerError> {
    let addr = listener.local_addr().map_err(ApiServerError::LocalAddr)?;
    config.validate(addr)?;
    match (&config.token, config.allow_unauthenticated) {
        (Some(_), _) => info!(%addr, "API serving; tests can be started with the token"),
        (None, true) => warn!(%addr, "API serving WITHOUT authentication (loopback demo mode)"),
        (None, false) => info!(
            %addr,
            "API serving read-only: no token file, so tests cannot be started or aborted here"
        ),
    }

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.request_timeout);
    let builder = Arc::new(builder);
    let router = Arc::new(Router {
        agent,
        auth: Auth {
            token: config.token,
            allow_unauthenticated: config.allow_unauthenticated,
        },
        max_body: config.max_body,
        request_timeout: config.request_timeout,
    });
    let max_connections = config.max_connections;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut last_refusal_log: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => log_join(joined),
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) if connections.len() >= max_connections => {
                    refuse_connection(&tcp);
                    let now = tokio::time::Instant::now();
                    if last_refusal_log.is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL) {
                        last_refusal_log = Some(now);
                        warn!(%peer, max_connections, "API connection refused with 503: at the connection limit (--api-max-connections)");
                    }
                }
                Ok((tcp, peer)) => {
                    connections.spawn(serve_connection(
                        tcp,
                        peer,
                        Arc::clone(&builder),
                        Arc::clone(&router),
                        stop_rx.clone(),
                    ));
                }
                Err(error) => {
                    warn!(%error, "accepting an API connection failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
        }
    }

    drop(listener);
    // No receiver left means no connection left to tell.
    let _ = stop_tx.send(true);
    let drain = async {
        while let Some(joined) = connections.join_next().await {
            log_join(joined);
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        debug!(
            remaining = connections.len(),
            "API shutdown grace over; closing remaining connections"
        );
    }
    connections.shutdown().await;
    info!(%addr, "API stopped");
    Ok(())
}

/// What a connection over the limit is told before it is closed.
const OVER_LIMIT_BODY: &str =
    "{\"error\":\"this agent serves its maximum number of API connections; retry shortly\"}";

/// Shortest time between two log lines about refused connections.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Answers a connection over the limit with 503 without reading its request
/// or spawning a task: one non-blocking write (the reply fits any socket
/// buffer), then the connection is dropped.
fn refuse_connection(tcp: &TcpStream) {
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{OVER_LIMIT_BODY}",
        OVER_LIMIT_BODY.len()
    );
    if let Err(error) = tcp.try_write(reply.as_bytes()) {
        debug!(%error, "could not tell a connection over the limit why it is closed");
    }
}

/// Serves one connection until it ends, or closes it gracefully (after the
/// request in flight) once the stop signal fires.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Arc<Router>,
    mut stop_rx: watch::Receiver<bool>,
) {
    // Without it, Nagle plus delayed ACKs add ~40 ms to small exchanges.
    if let Err(error) = tcp.set_nodelay(true) {
        debug!(%peer, %error, "setting TCP_NODELAY failed");
    }
    let service = service_fn(move |request| {
        let router = Arc::clone(&router);
        async move { Ok::<_, std::convert::Infallible>(router.handle(request).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let stopped = async {
        // An error means the server is gone, which is a stop too.
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        debug!(%peer, %error, "API connection ended with an error");
    }
}

fn log_join(joined: Result<(), JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        warn!(%error, "an API connection task panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        let loopback: SocketAddr = "127.0.0.1:7070".parse().expect("addr");
        let public: SocketAddr = "0.0.0.0:7070".parse().expect("addr");
        let config = ApiConfig::default();
        assert!(
            config.validate(public).is_ok(),
            "read-only is fine anywhere"
        );

        let open = ApiConfig {
            allow_unauthenticated: true,
            ..ApiConfig::default()
        };
        assert!(open.validate(loopback).is_ok());
        let error = open.validate(public).expect_err("open off loopback");
        assert!(error.to_string().contains("0.0.0.0:7070"), "{error}");

        let with_token = ApiConfig {
            token: Some(SecretToken::new("abc").expect("token")),
            ..open
        };
        assert!(with_token.validate(public).is_ok());

        let empty = ApiConfig {
            max_body: 0,
            ..ApiConfig::default()
        };
        assert!(
            empty
                .validate(loopback)
                .expect_err("zero body")
                .to_string()
                .contains("max_body")
        );
        let instant = ApiConfig {
            request_timeout: Duration::ZERO,
            ..ApiConfig::default()
        };
        assert!(instant.validate(loopback).is_err());
    }
}
