//! NTP-style clock offset between this agent and a peer, so results stamped with wall-clock times
//! on different machines can be aligned. The peer's transport answers TIME requests itself with
//! its receive (t1) and send (t2) stamps; we stamp the send (t0) and the receipt (t3).

use std::net::SocketAddr;
use std::time::Duration;

use super::Transport;
use super::envelope::{Reply, Request};
use super::error::TransportError;

/// Timeout of each TIME round trip in [`measure_clock_offset`].
pub const CLOCK_ROUND_TIMEOUT: Duration = Duration::from_secs(2);

/// Wall-clock now in nanoseconds since the Unix epoch (negative before it).
pub(crate) fn now_ns() -> i128 {
    crate::clock::WallClock::system().now_ns()
}

/// The standard NTP formulas over four wall-clock stamps in nanoseconds since the epoch:
/// t0 request sent (local clock), t1 request received (peer clock), t2 reply sent (peer clock),
/// t3 reply received (local clock). Returns `(offset, rtt)` in nanoseconds where
/// `offset = ((t1 - t0) + (t2 - t3)) / 2` is peer clock minus local clock and
/// `rtt = (t3 - t0) - (t2 - t1)` is the network round trip without the peer's processing time.
/// With asymmetric paths the offset is off by half the difference of the two one-way delays, so
/// its error is bounded by `rtt / 2`.
pub fn offset_from_samples(t0: i128, t1: i128, t2: i128, t3: i128) -> (i128, i128) {
    let offset = ((t1 - t0) + (t2 - t3)) / 2;
    let rtt = (t3 - t0) - (t2 - t1);
    (offset, rtt)
}

/// The best clock sample of a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    /// Peer clock minus local clock, in nanoseconds.
    pub offset: i64,
    /// Round-trip time of the sample the offset comes from (the smallest seen).
    pub rtt: Duration,
    /// How many round trips were measured.
    pub rounds: u32,
}

/// Measures the clock offset to `peer` over `rounds` TIME round trips (at least one) and keeps the
/// sample with the smallest round-trip time, whose offset has the tightest error bound. The first
/// round may include connection set-up; with a few rounds it is never the one kept. Any failed
/// round ends the measurement with its error.
pub async fn measure_clock_offset<T: Transport + ?Sized>(
    transport: &T,
    peer: SocketAddr,
    rounds: u32,
) -> Result<ClockSample, TransportError> {
    let rounds = rounds.max(1);
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..rounds {
        let clock = transport.wall_clock();
        let t0 = clock.now_ns();
        let reply = transport
            .exchange(peer, Request::Time, CLOCK_ROUND_TIMEOUT)
            .await?;
        let t3 = clock.now_ns();
        let Reply::Time(stamps) = reply else {
            return Err(TransportError::Protocol {
                peer,
                reason: "APP reply to a TIME request".to_owned(),
            });
        };
        let (offset, rtt) = offset_from_samples(t0, stamps.received, stamps.sent, t3);
        // A negative round trip means a clock stepped during the round; such a sample is useless.
        if rtt >= 0 && best.is_none_or(|(_, best_rtt)| rtt < best_rtt) {
            best = Some((offset, rtt));
        }
    }
    let (offset, rtt) = best.ok_or_else(|| TransportError::Protocol {
        peer,
        reason: format!("no usable clock sample in {rounds} rounds (a clock stepped backwards)"),
    })?;
    Ok(ClockSample {
        offset: i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX }),
        rtt: Duration::from_nanos(u64::try_from(rtt).unwrap_or(u64::MAX)),
        rounds,
    })
}

/// What a peer's clock sample proves against a tolerance. The true offset lies within
/// `offset ± rtt / 2` (the error bound of an NTP-style offset: on an asymmetric path the
/// measurement is off by half the difference of the two ways), so clocks count as apart only
/// when that whole interval lies beyond the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockVerdict {
    /// Every offset the sample allows is within the tolerance.
    Within,
    /// The sample allows offsets on both sides of the tolerance: the clocks may be apart, which
    /// the measurement cannot prove. `loose` when the error bound alone exceeds the tolerance
    /// (the path is too long to tell): the start spread is then only promised within it.
    Unproven { loose: bool },
    /// The true offset exceeds the tolerance whatever the path's asymmetry.
    Beyond,
}

/// Judges `sample` against `tolerance` (see [`ClockVerdict`]).
pub fn judge_clock(sample: &ClockSample, tolerance: Duration) -> ClockVerdict {
    let offset = u128::from(sample.offset.unsigned_abs());
    let error = sample.rtt.as_nanos().div_ceil(2);
    let tolerance = tolerance.as_nanos();
    if offset.saturating_sub(error) > tolerance {
        ClockVerdict::Beyond
    } else if offset + error <= tolerance {
        ClockVerdict::Within
    } else {
        ClockVerdict::Unproven {
            loose: error > tolerance,
        }
    }
}

/// A peer's sample for messages: `NODE (+30.1 ms ± 70.0 ms)`.
pub fn describe_clock(node_id: &str, sample: &ClockSample) -> String {
    format!(
        "{node_id} ({:+.1} ms ± {:.1} ms)",
        sample.offset as f64 / 1e6,
        sample.rtt.as_secs_f64() * 1e3 / 2.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: i128 = 1_000_000;

    #[test]
    fn symmetric_paths_give_the_exact_offset() {
        // Peer clock 100 ms ahead, 10 ms each way, 1 ms processing.
        let t0 = 1_700_000_000_000 * MS;
        let t1 = t0 + 10 * MS + 100 * MS;
        let t2 = t1 + MS;
        let t3 = t0 + 10 * MS + MS + 10 * MS;
        assert_eq!(offset_from_samples(t0, t1, t2, t3), (100 * MS, 20 * MS));
    }

    #[test]
    fn asymmetric_paths_shift_the_offset_by_half_the_difference() {
        // Peer clock 100 ms ahead, 10 ms out, 30 ms back, 1 ms processing.
        let t0 = 0;
        let t1 = 10 * MS + 100 * MS;
        let t2 = t1 + MS;
        let t3 = 10 * MS + MS + 30 * MS;
        let (offset, rtt) = offset_from_samples(t0, t1, t2, t3);
        assert_eq!(rtt, 40 * MS);
        assert_eq!(offset, 90 * MS, "true 100 ms minus (30 - 10) / 2");
    }

    #[test]
    fn peer_behind_gives_a_negative_offset() {
        let (offset, rtt) = offset_from_samples(1_000 * MS, 750 * MS, 752 * MS, 1_006 * MS);
        assert_eq!(offset, -252 * MS);
        assert_eq!(rtt, 4 * MS);
    }

    fn sample(offset_ms: i64, rtt_ms: u64) -> ClockSample {
        ClockSample {
            offset: offset_ms * 1_000_000,
            rtt: Duration::from_millis(rtt_ms),
            rounds: 3,
        }
    }

    const TOLERANCE: Duration = Duration::from_millis(25);

    #[test]
    fn an_asymmetric_path_does_not_prove_synchronised_clocks_apart() {
        // 100 ms one way, 40 ms back, clocks in step: measured 30 ms apart, ± 70 ms.
        let verdict = judge_clock(&sample(30, 140), TOLERANCE);
        assert_eq!(verdict, ClockVerdict::Unproven { loose: true });
        assert_eq!(
            judge_clock(&sample(-30, 140), TOLERANCE),
            ClockVerdict::Unproven { loose: true }
        );
    }

    #[test]
    fn an_offset_beyond_the_tolerance_by_more_than_its_error_is_proven() {
        assert_eq!(
            judge_clock(&sample(100, 20), TOLERANCE),
            ClockVerdict::Beyond
        );
        assert_eq!(
            judge_clock(&sample(-100, 20), TOLERANCE),
            ClockVerdict::Beyond
        );
        // 36 - 10 = 26 > 25; 35 - 10 = 25 is not beyond.
        assert_eq!(
            judge_clock(&sample(36, 20), TOLERANCE),
            ClockVerdict::Beyond
        );
        assert_eq!(
            judge_clock(&sample(35, 20), TOLERANCE),
            ClockVerdict::Unproven { loose: false }
        );
    }

    #[test]
    fn a_tight_offset_within_the_tolerance_is_within() {
        assert_eq!(judge_clock(&sample(0, 1), TOLERANCE), ClockVerdict::Within);
        assert_eq!(
            judge_clock(&sample(-20, 10), TOLERANCE),
            ClockVerdict::Within
        );
        // A long path alone: the clocks may be apart by its error bound.
        assert_eq!(
            judge_clock(&sample(0, 60), TOLERANCE),
            ClockVerdict::Unproven { loose: true }
        );
    }

    #[test]
    fn a_description_shows_the_offset_and_its_error_bound() {
        assert_eq!(
            describe_clock("agent-2", &sample(30, 140)),
            "agent-2 (+30.0 ms ± 70.0 ms)"
        );
    }

    proptest! {
        #[test]
        fn error_is_bounded_by_half_the_rtt(
            t0 in -(1i128 << 62)..(1i128 << 62),
            true_offset in -(1i128 << 50)..(1i128 << 50),
            out in 0i128..(1 << 40),
            back in 0i128..(1 << 40),
            processing in 0i128..(1 << 40),
        ) {
            let t1 = t0 + out + true_offset;
            let t2 = t1 + processing;
            let t3 = t0 + out + processing + back;
            let (offset, rtt) = offset_from_samples(t0, t1, t2, t3);
            prop_assert_eq!(rtt, out + back);
            prop_assert!((offset - true_offset).abs() <= rtt / 2 + 1);
            if out == back {
                prop_assert_eq!(offset, true_offset);
            }
        }

        #[test]
        fn only_clocks_truly_apart_are_judged_beyond(
            true_offset in -(1i64 << 40)..(1i64 << 40),
            out in 0i64..(1 << 38),
            back in 0i64..(1 << 38),
            tolerance in 0u64..(1 << 38),
        ) {
            let t1 = i128::from(out + true_offset);
            let (offset, rtt) = offset_from_samples(0, t1, t1, i128::from(out + back));
            let s = ClockSample {
                offset: offset as i64,
                rtt: Duration::from_nanos(rtt as u64),
                rounds: 1,
            };
            let apart = true_offset.unsigned_abs() > tolerance;
            match judge_clock(&s, Duration::from_nanos(tolerance)) {
                ClockVerdict::Beyond => prop_assert!(apart),
                ClockVerdict::Within => prop_assert!(!apart),
                ClockVerdict::Unproven { .. } => {}
            }
        }
    }
}
