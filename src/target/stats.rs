//! Request accounting for the built-in target: which routes were hit, how many
//! connections were accepted and how many body bytes went out.
//!
//! Counters are plain relaxed atomics: they are read by tests and demos after
//! the fact, never used to synchronise anything, so ordering between them is
//! irrelevant and the hot path pays one uncontended `fetch_add` per counter.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The routes the target serves, as counted in [`TargetStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/`: a short plain-text banner.
    Root,
    /// `/bytes/N`: N bytes of deterministic content.
    Bytes,
    /// `/delay/MS`: answers after MS milliseconds.
    Delay,
    /// `/status/CODE`: answers with that status.
    Status,
    /// `/json`: a fixed JSON document with a per-request token.
    Json,
    /// `/echo`: echoes the request body and content type.
    Echo,
    /// `/stall`: never answers.
    Stall,
    /// `/drop`: announces a body, sends part of it, then aborts.
    Drop,
    /// `/headers`: the request headers as a JSON object.
    Headers,
    /// `/redirect/N`: a chain of N redirects ending at `/redirect/0`.
    Redirect,
    /// `/cookies`: the request's cookies as a JSON object.
    Cookies,
    /// `/cookies/set?name=value&…`: sets them, then redirects to `/cookies`.
    CookiesSet,
    /// `/digest-auth/auth/USER/PASSWORD`: HTTP Digest authentication.
    DigestAuth,
    /// Anything else (404).
    NotFound,
}

impl Route {
    /// Every route, in declaration order (the order of the counters).
    pub const ALL: [Route; 14] = [
        Route::Root,
        Route::Bytes,
        Route::Delay,
        Route::Status,
        Route::Json,
        Route::Echo,
        Route::Stall,
        Route::Drop,
        Route::Headers,
        Route::Redirect,
        Route::Cookies,
        Route::CookiesSet,
        Route::DigestAuth,
        Route::NotFound,
    ];

    /// The route's path pattern, as a person would type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Root => "/",
            Route::Bytes => "/bytes/N",
            Route::Delay => "/delay/MS",
            Route::Status => "/status/CODE",
            Route::Json => "/json",
            Route::Echo => "/echo",
            Route::Stall => "/stall",
            Route::Drop => "/drop",
            Route::Headers => "/headers",
            Route::Redirect => "/redirect/N",
            Route::Cookies => "/cookies",
            Route::CookiesSet => "/cookies/set",
            Route::DigestAuth => "/digest-auth/auth/USER/PASSWORD",
            Route::NotFound => "(not found)",
        }
    }

    /// Index of this route's counter; matches the position in [`Route::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters shared between the server tasks and whoever started the target.
#[derive(Debug, Default)]
pub struct TargetStats {
    /// Every request the router saw, whatever its route or outcome.
    requests: AtomicU64,
    /// One counter per [`Route`], indexed by [`Route::index`].
    per_route: [AtomicU64; Route::ALL.len()],
    /// Accepted TCP connections: lets tests check connection reuse.
    connections: AtomicU64,
    /// Response body bytes handed to the HTTP layer (partial for `/drop`).
    bytes_out: AtomicU64,
}

impl TargetStats {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total requests routed so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests routed to `route` so far.
    pub fn route(&self, route: Route) -> u64 {
        self.per_route[route.index()].load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far (including ones whose TLS handshake failed).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Response body bytes produced so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// Counts one request to `route` and returns that route's new count.
    pub(crate) fn record_request(&self, route: Route) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.per_route[route.index()].fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts one accepted connection.
    pub(crate) fn record_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` body bytes sent.
    pub(crate) fn record_bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_routes_in_index_order() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(route.index(), i, "{route:?}");
        }
    }

    #[test]
    fn counters_are_per_route() {
        let stats = TargetStats::new();
        assert_eq!(stats.record_request(Route::Json), 1);
        assert_eq!(stats.record_request(Route::Json), 2);
        assert_eq!(stats.record_request(Route::NotFound), 1);
        stats.record_connection();
        stats.record_bytes_out(10);
        stats.record_bytes_out(5);

        assert_eq!(stats.requests(), 3);
        assert_eq!(stats.route(Route::Json), 2);
        assert_eq!(stats.route(Route::NotFound), 1);
        assert_eq!(stats.route(Route::Root), 0);
        assert_eq!(stats.connections(), 1);
        assert_eq!(stats.bytes_out(), 15);
    }

    #[test]
    fn display_names_the_pattern() {
        assert_eq!(Route::Bytes.to_string(), "/bytes/N");
        assert_eq!(Route::Root.to_string(), "/");
    }
}
