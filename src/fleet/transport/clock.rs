//! NTP-style clock offset between this agent and a peer, so results stamped with wall-clock times
//! on different machines can be aligned. The peer's transport answers TIME requests itself with
//! its receive (t1) and send (t2) stamps; we stamp the send (t0) and the receipt (t3).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::Transport;
use super::envelope::{Reply, Request};
use super::error::TransportError;

/// Timeout of each TIME round trip in [`measure_clock_offset`].
pub const CLOCK_ROUND_TIMEOUT: Duration = Duration::from_secs(2);

/// Wall-clock now in nanoseconds since the Unix epoch (negative before it).
pub(crate) fn now_ns() -> i128 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
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
        let t0 = now_ns();
        let reply = transport
            .exchange(peer, Request::Time, CLOCK_ROUND_TIMEOUT)
            .await?;
        let t3 = now_ns();
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
    }
}
