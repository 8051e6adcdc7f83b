//! The relay's pure core: when each chunk or datagram of one direction of one flow leaves, and
//! the bounded queue that holds it until then. No sockets, no clocks of its own: callers pass
//! `now` in.
//!
//! A [`Schedule`] gives every arrival a due instant `arrival + delay + j`, `j` drawn uniformly
//! from `[-jitter, +jitter]` by a seeded generator (the same seed replays the same delays), and
//! never earlier than the previous due instant: jitter never reorders a flow, as on one path of
//! a real link. A [`DelayLine`] queues what waits and refuses more than its byte cap, so a relay
//! carrying a fast sender holds a bounded amount of memory whatever the delay.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// One direction's added latency: `delay ± jitter`, jitter at most the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delay {
    pub delay: Duration,
    pub jitter: Duration,
}

impl Delay {
    /// `delay ± jitter`; an error when the jitter exceeds the delay (a negative delay cannot be
    /// emulated).
    pub fn new(delay: Duration, jitter: Duration) -> Result<Delay, String> {
        if jitter > delay {
            return Err(format!(
                "jitter {jitter:?} exceeds the delay {delay:?}: expected a jitter of at most the delay"
            ));
        }
        Ok(Delay { delay, jitter })
    }
}

/// Due instants of one direction of one flow.
#[derive(Debug, Clone)]
pub struct Schedule {
    delay: Delay,
    rng: fastrand::Rng,
    /// The latest due instant given: the next is never earlier.
    last_due: Option<Instant>,
}

impl Schedule {
    /// A schedule whose jitter comes from a generator seeded with `seed`.
    pub fn new(delay: Delay, seed: u64) -> Schedule {
        Schedule {
            delay,
            rng: fastrand::Rng::with_seed(seed),
            last_due: None,
        }
    }

    /// When what arrived at `now` leaves.
    pub fn due(&mut self, now: Instant) -> Instant {
        let Delay { delay, jitter } = self.delay;
        let jitter_ns = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
        let lag = if jitter_ns == 0 {
            delay
        } else {
            // Uniform in [delay - jitter, delay + jitter]; jitter <= delay keeps it non-negative.
            let offset = self.rng.u64(0..=jitter_ns.saturating_mul(2));
            (delay - jitter) + Duration::from_nanos(offset)
        };
        let due = self
            .last_due
            .map_or(now + lag, |last| (now + lag).max(last));
        self.last_due = Some(due);
        due
    }
}

/// The seed of direction `direction` of flow number `flow` under the relay's `seed`: distinct
/// flows and directions draw distinct jitter, and the same relay seed replays them all.
pub fn flow_seed(seed: u64, flow: u64, direction: u8) -> u64 {
    // splitmix64, twice: nearby seeds and flow numbers give unrelated streams.
    let stream = flow.wrapping_mul(2).wrapping_add(u64::from(direction));
    splitmix64(splitmix64(seed) ^ stream)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A full [`DelayLine`] refused a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// What waits in one direction of one flow, in order, within a byte cap.
#[derive(Debug)]
pub struct DelayLine {
    schedule: Schedule,
    queue: VecDeque<(Instant, Bytes)>,
    queued_bytes: usize,
    max_bytes: usize,
}

impl DelayLine {
    /// An empty line holding at most `max_bytes` (and always at least one chunk, however large).
    pub fn new(schedule: Schedule, max_bytes: usize) -> DelayLine {
        DelayLine {
            schedule,
            queue: VecDeque::new(),
            queued_bytes: 0,
            max_bytes,
        }
    }

    /// Whether a chunk of `len` bytes would be taken now.
    pub fn has_room(&self, len: usize) -> bool {
        self.queue.is_empty() || self.queued_bytes + len <= self.max_bytes
    }

    /// Queues `data`, arrived at `now`, to leave at its due instant; refused when the line is
    /// full. A refused chunk draws no jitter: the replayed sequence stays that of what passed.
    pub fn push(&mut self, now: Instant, data: Bytes) -> Result<Instant, Full> {
        if !self.has_room(data.len()) {
            return Err(Full);
        }
        let due = self.schedule.due(now);
        self.queued_bytes += data.len();
        self.queue.push_back((due, data));
        Ok(due)
    }

    /// When the oldest chunk is due, if any waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// The oldest chunk if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Bytes> {
        if self.next_due()? > now {
            return None;
        }
        let (_, data) = self.queue.pop_front()?;
        self.queued_bytes -= data.len();
        Some(data)
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn delay(d: u32, j: u32) -> Delay {
        Delay::new(d * MS, j * MS).expect("jitter within the delay")
    }

    #[test]
    fn without_jitter_every_arrival_leaves_exactly_the_delay_later() {
        let now = Instant::now();
        let mut s = Schedule::new(delay(30, 0), 7);
        for i in 0..10 {
            let at = now + i * MS;
            assert_eq!(s.due(at), at + 30 * MS);
        }
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_never_reorders() {
        let now = Instant::now();
        let mut s = Schedule::new(delay(30, 5), 1);
        let mut last = now;
        let mut lags = Vec::new();
        for i in 0..2000u32 {
            // Arrivals 100 µs apart: much closer than the jitter, so unordered draws would
            // reorder often.
            let at = now + Duration::from_micros(100) * i;
            let due = s.due(at);
            assert!(due >= last, "arrival {i} leaves before the one ahead of it");
            assert!(due >= at + 25 * MS, "arrival {i} leaves too early");
            last = due;
            lags.push(due - at);
        }
        // Order is kept by holding back, never by hurrying: the lag may exceed delay + jitter
        // only because an earlier arrival drew a later due instant.
        let max = lags.iter().max().copied().unwrap_or_default();
        assert!(max <= 35 * MS, "largest lag {max:?}");
        // Close arrivals bunch up behind the latest draw: lags cluster near the top.
        let mean = lags.iter().sum::<Duration>() / lags.len() as u32;
        assert!(mean > 30 * MS, "mean lag {mean:?}");
    }

    #[test]
    fn spaced_arrivals_see_the_whole_jitter_range() {
        let now = Instant::now();
        let mut s = Schedule::new(delay(30, 2), 3);
        let lags: Vec<Duration> = (0..1000u32)
            .map(|i| {
                let at = now + 10 * MS * i;
                s.due(at) - at
            })
            .collect();
        assert!(lags.iter().all(|l| *l >= 28 * MS && *l <= 32 * MS));
        assert!(lags.iter().any(|l| *l < 28 * MS + MS / 4));
        assert!(lags.iter().any(|l| *l > 32 * MS - MS / 4));
    }

    #[test]
    fn the_same_seed_replays_the_same_delays() {
        let now = Instant::now();
        let run = |seed| {
            let mut s = Schedule::new(delay(30, 3), seed);
            (0..50u32)
                .map(|i| s.due(now + 7 * MS * i) - now)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn flow_seeds_differ_by_flow_and_direction() {
        let seeds = [
            flow_seed(1, 0, 0),
            flow_seed(1, 0, 1),
            flow_seed(1, 1, 0),
            flow_seed(1, 1, 1),
            flow_seed(2, 0, 0),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(flow_seed(9, 4, 1), flow_seed(9, 4, 1));
    }

    #[test]
    fn jitter_beyond_the_delay_is_refused() {
        let err = Delay::new(2 * MS, 3 * MS).expect_err("a negative delay is impossible");
        assert!(err.contains("jitter"), "{err}");
    }

    #[test]
    fn a_line_releases_in_order_when_due_and_refuses_beyond_its_cap() {
        let now = Instant::now();
        let mut line = DelayLine::new(Schedule::new(delay(10, 0), 0), 10);
        assert_eq!(
            line.push(now, Bytes::from_static(b"abcd")),
            Ok(now + 10 * MS)
        );
        assert_eq!(
            line.push(now + MS, Bytes::from_static(b"efgh")),
            Ok(now + 11 * MS)
        );
        assert_eq!(line.push(now + MS, Bytes::from_static(b"ijk")), Err(Full));
        assert_eq!(line.queued_bytes(), 8);
        assert_eq!(line.pop_due(now + 9 * MS), None);
        assert_eq!(line.next_due(), Some(now + 10 * MS));
        assert_eq!(
            line.pop_due(now + 10 * MS),
            Some(Bytes::from_static(b"abcd"))
        );
        assert_eq!(line.pop_due(now + 10 * MS), None);
        assert!(line.has_room(6));
        assert_eq!(
            line.pop_due(now + 20 * MS),
            Some(Bytes::from_static(b"efgh"))
        );
        assert!(line.is_empty());
        assert_eq!(line.queued_bytes(), 0);
    }

    #[test]
    fn an_empty_line_takes_one_chunk_larger_than_its_cap() {
        let now = Instant::now();
        let mut line = DelayLine::new(Schedule::new(delay(1, 0), 0), 4);
        assert!(line.push(now, Bytes::from(vec![0u8; 100])).is_ok());
        assert_eq!(line.push(now, Bytes::from_static(b"x")), Err(Full));
    }
}
