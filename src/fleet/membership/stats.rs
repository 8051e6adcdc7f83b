//! What the gossip socket counts (for `/metrics`) and the rate-limited line it
//! logs about dropped datagrams: at most one summary per interval, however
//! many packets arrive, so garbage on the gossip port cannot flood the log.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::auth::Reject;

/// Shortest time between two summary lines about dropped datagrams.
pub const REJECT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counters of one gossip socket, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct GossipStats {
    /// Datagrams dropped before chitchat, by [`Reject::index`].
    rejected: [AtomicU64; 3],
    /// Authenticated datagrams handed to chitchat.
    accepted: AtomicU64,
    /// Datagrams this agent could not send (too large once authenticated,
    /// or a socket error).
    send_failed: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipCounts {
    /// Dropped datagrams by reason, in [`Reject::ALL`] order.
    pub rejected: [u64; 3],
    /// Authenticated datagrams handed to chitchat.
    pub accepted: u64,
    /// Datagrams that could not be sent.
    pub send_failed: u64,
}

impl GossipCounts {
    /// Dropped datagrams for `reason`.
    pub fn rejected(&self, reason: Reject) -> u64 {
        self.rejected[reason.index()]
    }
}

// === impl GossipStats ===

impl GossipStats {
    pub(super) fn reject(&self, reason: Reject) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn accept(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn send_failed(&self) {
        self.send_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counts(&self) -> GossipCounts {
        GossipCounts {
            rejected: [
                self.rejected[0].load(Ordering::Relaxed),
                self.rejected[1].load(Ordering::Relaxed),
                self.rejected[2].load(Ordering::Relaxed),
            ],
            accepted: self.accepted.load(Ordering::Relaxed),
            send_failed: self.send_failed.load(Ordering::Relaxed),
        }
    }
}

/// One summary line's content: what was dropped since the last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectSummary {
    /// Dropped datagrams by reason, in [`Reject::ALL`] order.
    pub counts: [u64; 3],
    /// The sender of the last one.
    pub last_from: SocketAddr,
    /// Time covered by this summary.
    pub over: Duration,
}

impl std::fmt::Display for RejectSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total: u64 = self.counts.iter().sum();
        write!(f, "dropped {total} gossip datagram(s) in {:?} (", self.over)?;
        let mut first = true;
        for reason in Reject::ALL {
            let n = self.counts[reason.index()];
            if n > 0 {
                if !first {
                    f.write_str(", ")?;
                }
                write!(f, "{}: {n}", reason.as_str())?;
                first = false;
            }
        }
        write!(
            f,
            "; last from {}): only agents holding this fleet's secret can gossip with it",
            self.last_from
        )
    }
}

/// Gathers dropped datagrams into at most one summary per interval. Pure:
/// the caller passes the time and logs what comes back.
#[derive(Debug)]
pub struct RejectLog {
    /// Shortest time between two summaries.
    interval: Duration,
    /// When the last summary was given (none yet: the first drop is told at once).
    last_summary: Option<Instant>,
    /// Drops since the last summary, by reason.
    pending: [u64; 3],
    /// When the first pending drop happened.
    pending_since: Option<Instant>,
    /// Sender of the last pending drop.
    last_from: Option<SocketAddr>,
}

// === impl RejectLog ===

impl RejectLog {
    /// A log that summarises at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        RejectLog {
            interval,
            last_summary: None,
            pending: [0; 3],
            pending_since: None,
            last_from: None,
        }
    }

    /// Records one drop; returns a summary when one is due.
    pub fn record(
        &mut self,
        reason: Reject,
        from: SocketAddr,
        now: Instant,
    ) -> Option<RejectSummary> {
        self.pending[reason.index()] += 1;
        self.pending_since.get_or_insert(now);
        self.last_from = Some(from);
        self.due(now)
    }

    /// A summary of what is pending, if one is due (call it now and then so
    /// the last drops of a burst are told too).
    pub fn due(&mut self, now: Instant) -> Option<RejectSummary> {
        let quiet_enough = self
            .last_summary
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if !quiet_enough || self.pending.iter().all(|&n| n == 0) {
            return None;
        }
        let since = self.pending_since.take().unwrap_or(now);
        let summary = RejectSummary {
            counts: std::mem::take(&mut self.pending),
            last_from: self.last_from.take()?,
            over: now.duration_since(since),
        };
        self.last_summary = Some(now);
        Some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> SocketAddr {
        "192.0.2.7:4000".parse().expect("addr")
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_gives_one_line_per_interval() {
        let mut log = RejectLog::new(Duration::from_secs(10));
        let start = Instant::now();
        let first = log.record(Reject::Malformed, from(), start);
        assert_eq!(
            first.map(|s| s.counts),
            Some([1, 0, 0]),
            "the first drop is told at once"
        );
        let mut lines = 0;
        for i in 0..100_000u64 {
            let now = start + Duration::from_micros(i * 50);
            let reason = if i % 2 == 0 {
                Reject::BadTag
            } else {
                Reject::Malformed
            };
            if log.record(reason, from(), now).is_some() {
                lines += 1;
            }
        }
        // 100,000 drops over 5 s: still inside the first interval.
        assert_eq!(lines, 0);
        let late = log.due(start + Duration::from_secs(10)).expect("due");
        assert_eq!(late.counts, [50_000, 50_000, 0]);
        assert_eq!(late.last_from, from());
        assert!(
            log.due(start + Duration::from_secs(30)).is_none(),
            "nothing pending"
        );
        let text = late.to_string();
        assert!(text.contains("dropped 100000 gossip datagram(s)"), "{text}");
        assert!(text.contains("malformed: 50000, bad_tag: 50000"), "{text}");
        assert!(!text.contains("stale"), "{text}");
    }

    #[test]
    fn counters_add_up_by_reason() {
        let stats = GossipStats::default();
        stats.reject(Reject::Stale);
        stats.reject(Reject::Stale);
        stats.reject(Reject::BadTag);
        stats.accept();
        stats.send_failed();
        let counts = stats.counts();
        assert_eq!(counts.rejected(Reject::Stale), 2);
        assert_eq!(counts.rejected(Reject::BadTag), 1);
        assert_eq!(counts.rejected(Reject::Malformed), 0);
        assert_eq!((counts.accepted, counts.send_failed), (1, 1));
    }
}
