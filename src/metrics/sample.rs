//! What the engine reports: compact, tag-free samples.
//!
//! A VU never builds tag sets on the hot path. It names its request, check
//! or group by index into the plan (`RequestId`, `CheckId`, `GroupId`), and
//! the recorder expands that into tagged series once per distinct
//! combination. Samples travel in batches from VUs to the recorder.

use std::time::Duration;

use crate::plan::{CheckId, GroupId, RequestId};

/// Why a request failed, k6-style error classes. A failed request is data:
/// it is counted, tagged and never stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Name resolution failed.
    Dns,
    /// The peer refused the TCP connection.
    ConnectRefused,
    /// Any other failure to connect (unreachable, no route).
    Connect,
    /// The request did not complete within its timeout.
    Timeout,
    /// The peer reset or closed the connection before a full response.
    Reset,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The peer answered something that is not HTTP, or broke framing.
    Protocol,
    /// The URL could not be sent (bad scheme, host).
    InvalidUrl,
    /// The egress policy refuses the address (k6's blacklisted IP).
    BlockedIp,
    /// The egress policy refuses the host name (k6's blocked hostname).
    BlockedHostname,
}

impl ErrorKind {
    /// k6's `error_code` of a failed request (`error`) or of a 4xx/5xx
    /// `status`; 0 for neither.
    pub fn k6_code(error: Option<ErrorKind>, status: u16) -> u32 {
        match error {
            Some(ErrorKind::Dns) => 1100,
            Some(ErrorKind::ConnectRefused) => 1212,
            Some(ErrorKind::Connect) => 1210,
            Some(ErrorKind::Timeout) => 1050,
            Some(ErrorKind::Reset) => 1000,
            Some(ErrorKind::Tls) => 1300,
            Some(ErrorKind::Protocol) => 1000,
            Some(ErrorKind::InvalidUrl) => 1020,
            Some(ErrorKind::BlockedIp) => 1110,
            Some(ErrorKind::BlockedHostname) => 1111,
            None if status >= 400 => 1000 + u32::from(status),
            None => 0,
        }
    }

    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Dns,
        ErrorKind::ConnectRefused,
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Tls,
        ErrorKind::Protocol,
        ErrorKind::InvalidUrl,
        ErrorKind::BlockedIp,
        ErrorKind::BlockedHostname,
    ];

    /// Stable name, used as the `error` tag and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::BlockedIp => "blocked_ip",
            ErrorKind::BlockedHostname => "blocked_hostname",
        }
    }

    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Phase timings of one request, as k6 defines them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Waiting for a connection (k6 `http_req_blocked`; includes DNS and
    /// connect for a new connection).
    pub blocked: Duration,
    pub connecting: Duration,
    pub tls_handshaking: Duration,
    pub sending: Duration,
    /// Time to first byte after sending.
    pub waiting: Duration,
    pub receiving: Duration,
}

impl Timings {
    /// k6's `http_req_duration`: sending + waiting + receiving.
    pub fn duration(&self) -> Duration {
        self.sending + self.waiting + self.receiving
    }

    /// The whole hop, from asking for a connection to the last byte:
    /// `blocked` (which holds connecting and the TLS handshake) and the
    /// duration.
    pub fn total(&self) -> Duration {
        self.blocked
            .saturating_add(self.sending)
            .saturating_add(self.waiting)
            .saturating_add(self.receiving)
    }
}

/// One finished (or failed) HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSample {
    pub request: RequestId,
    /// Response status; 0 when no response arrived.
    pub status: u16,
    pub error: Option<ErrorKind>,
    /// k6's `expected_response`, as the response callback judged it (by
    /// default: status in 200..=399 and no error). `None`: the script set
    /// no callback (`http.setResponseCallback(null)`), so the sample has
    /// neither the `expected_response` tag nor an `http_req_failed` sample.
    pub expected: Option<bool>,
    pub timings: Timings,
    /// For open-model scenarios: time from the intended send instant to the
    /// end of the response. `None` in closed-model scenarios.
    pub intended: Option<Duration>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// HTTP version of the response: 10, 11 or 20; 0 without one.
    pub proto: u8,
    /// TLS version: 12 or 13; 0 over plain TCP or without a connection.
    pub tls: u8,
}

/// Anything a VU or executor reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    Http(HttpSample),
    Check {
        check: CheckId,
        ok: bool,
    },
    /// A completed iteration. `interrupted` iterations (cut by a graceful
    /// stop) are not counted in `iterations`, as in k6.
    Iteration {
        scenario: u16,
        duration: Duration,
        interrupted: bool,
    },
    Group {
        group: GroupId,
        duration: Duration,
    },
    /// An arrival-rate iteration that found no free VU.
    Dropped {
        scenario: u16,
        count: u32,
    },
    /// An iteration that could not start on time, seen from its intended
    /// start (open model): feeds `http_req_duration_intended` so that a
    /// stall shows up there even though nothing was sent.
    IntendedWait {
        scenario: u16,
        wait: Duration,
    },
    /// Active and allocated VUs of the whole run right now (the untagged
    /// `vus` and `vus_max` gauges).
    Vus {
        active: u64,
        max: u64,
    },
    /// A value added to a script's custom metric; `series` names the
    /// metric, scenario, group and tags in the plan's dynamic catalog.
    /// Trend values are in the metric's unit (ms for time trends).
    Custom {
        series: u32,
        value: f64,
    },
}
