//! Authenticated gossip datagrams: every UDP packet between agents carries an
//! HMAC-SHA256 tag under a key derived from the fleet's shared secret, and the
//! time it was sealed. Pure (no sockets, no clock: callers pass `now`), so the
//! rules are tested directly.
//!
//! ```text
//! datagram = "VG" | version (1) | sealed_at_ms (u64 BE) | payload (chitchat bytes) | tag (32)
//! tag      = HMAC-SHA256(gossip key, everything before the tag)
//! ```
//!
//! A datagram is accepted only if its tag verifies and it was sealed within
//! [`REPLAY_WINDOW`] of the receiver's clock (either side). A captured packet
//! can therefore be replayed only for that long, and chitchat ignores versions
//! it already holds, so a replay cannot roll a node's state back. Anything
//! else is a [`Reject`], counted by reason and never handed to chitchat.

use std::fmt;
use std::time::Duration;

use ring::{hkdf, hmac};

/// The first bytes of every Volley gossip datagram.
const MAGIC: [u8; 2] = *b"VG";
/// Format version of the datagram; another version is rejected as malformed.
const VERSION: u8 = 1;
/// Bytes before the payload: magic, version, sealed-at time.
const HEADER_LEN: usize = MAGIC.len() + 1 + 8;
/// Bytes of the HMAC-SHA256 tag.
const TAG_LEN: usize = 32;
/// Bytes an authenticated datagram adds to chitchat's payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// How far the sealed-at time may be from the receiver's clock, either way.
/// Fleet agents must keep their clocks within tens of milliseconds for a
/// shared start; this only has to tolerate a badly set clock long enough for
/// `volley members` to show its offset.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(30);
/// HKDF salt: names this use of the fleet secret, so the same secret used
/// elsewhere yields an unrelated key.
const KDF_SALT: &[u8] = b"volley gossip authentication";
/// HKDF info: the key's purpose and version.
const KDF_INFO: &[u8] = b"hmac-sha256 v1";
/// Shortest secret accepted for [`GossipKey::derive`].
pub const MIN_SECRET_BYTES: usize = 16;

/// The key every agent of a fleet authenticates gossip with.
#[derive(Clone)]
pub struct GossipKey {
    key: hmac::Key,
}

impl fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GossipKey(<redacted>)")
    }
}

/// The secret is shorter than [`MIN_SECRET_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the gossip secret has {len} bytes; at least {MIN_SECRET_BYTES} are needed")]
pub struct ShortSecret {
    /// Its length.
    pub len: usize,
}

/// Why a datagram was dropped before chitchat saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    /// Too short, another magic or format version: not a Volley gossip
    /// datagram (a scanner, a stray packet, an agent without authentication).
    Malformed,
    /// The tag does not verify: another fleet's key, or tampered bytes.
    BadTag,
    /// Authentic, but sealed outside the replay window: a replay, or a peer
    /// whose clock is far off.
    Stale,
}

impl Reject {
    /// Every reason, in the order metrics list them.
    pub const ALL: [Reject; 3] = [Reject::Malformed, Reject::BadTag, Reject::Stale];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::BadTag => "bad_tag",
            Reject::Stale => "stale",
        }
    }

    /// Index into per-reason counter arrays (same order as [`Reject::ALL`]).
    pub fn index(self) -> usize {
        match self {
            Reject::Malformed => 0,
            Reject::BadTag => 1,
            Reject::Stale => 2,
        }
    }
}

// === impl GossipKey ===

impl GossipKey {
    /// Derives the gossip key from the fleet's shared secret with HKDF-SHA256.
    /// Every agent given the same secret derives the same key.
    pub fn derive(secret: &[u8]) -> Result<GossipKey, ShortSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ShortSecret { len: secret.len() });
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KDF_SALT).extract(secret);
        let okm = prk
            .expand(&[KDF_INFO], hmac::HMAC_SHA256)
            .expect("invariant: one SHA-256 output block is always a valid HKDF length");
        Ok(GossipKey {
            key: hmac::Key::from(okm),
        })
    }

    /// Appends the authenticated datagram for `payload`, sealed at `now_ms`
    /// (milliseconds since the Unix epoch), to `out`.
    pub fn seal(&self, now_ms: u64, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(OVERHEAD + payload.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&now_ms.to_be_bytes());
        out.extend_from_slice(payload);
        let tag = hmac::sign(&self.key, &out[start..]);
        out.extend_from_slice(tag.as_ref());
    }

    /// The payload of an authenticated datagram received at `now_ms`, or why
    /// it is rejected. The tag is checked before the time, so only the key's
    /// holders can learn anything from the reason.
    pub fn open<'a>(&self, now_ms: u64, datagram: &'a [u8]) -> Result<&'a [u8], Reject> {
        if datagram.len() < OVERHEAD
            || datagram[..MAGIC.len()] != MAGIC
            || datagram[MAGIC.len()] != VERSION
        {
            return Err(Reject::Malformed);
        }
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        hmac::verify(&self.key, signed, tag).map_err(|_| Reject::BadTag)?;
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&signed[MAGIC.len() + 1..HEADER_LEN]);
        let sealed_at = u64::from_be_bytes(stamp);
        let window = u64::try_from(REPLAY_WINDOW.as_millis()).unwrap_or(u64::MAX);
        if sealed_at.abs_diff(now_ms) > window {
            return Err(Reject::Stale);
        }
        Ok(&signed[HEADER_LEN..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn key(secret: &str) -> GossipKey {
        GossipKey::derive(secret.as_bytes()).expect("long enough")
    }

    fn sealed(key: &GossipKey, at: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        key.seal(at, payload, &mut out);
        out
    }

    #[test]
    fn round_trip_returns_the_payload() {
        let k = key("a fleet secret of some length");
        for payload in [&b""[..], b"x", &[7u8; 2000][..]] {
            let datagram = sealed(&k, NOW, payload);
            assert_eq!(datagram.len(), payload.len() + OVERHEAD);
            assert_eq!(k.open(NOW, &datagram), Ok(payload));
        }
    }

    #[test]
    fn same_secret_same_key_other_secret_bad_tag() {
        let datagram = sealed(&key("a fleet secret of some length"), NOW, b"hello");
        assert_eq!(
            key("a fleet secret of some length").open(NOW, &datagram),
            Ok(&b"hello"[..])
        );
        assert_eq!(
            key("another fleet's secret, as long").open(NOW, &datagram),
            Err(Reject::BadTag)
        );
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let k = key("a fleet secret of some length");
        let datagram = sealed(&k, NOW, b"chitchat payload bytes");
        for byte in 0..datagram.len() {
            for bit in 0..8 {
                let mut tampered = datagram.clone();
                tampered[byte] ^= 1 << bit;
                let result = k.open(NOW, &tampered);
                let expected = if byte < 3 {
                    Reject::Malformed
                } else {
                    Reject::BadTag
                };
                assert_eq!(result, Err(expected), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn truncated_and_extended_datagrams_are_rejected() {
        let k = key("a fleet secret of some length");
        let datagram = sealed(&k, NOW, b"payload");
        for len in 0..datagram.len() {
            let expected = if len < OVERHEAD {
                Reject::Malformed
            } else {
                Reject::BadTag
            };
            assert_eq!(k.open(NOW, &datagram[..len]), Err(expected), "len {len}");
        }
        let mut longer = datagram.clone();
        longer.push(0);
        assert_eq!(k.open(NOW, &longer), Err(Reject::BadTag));
    }

    #[test]
    fn garbage_and_raw_chitchat_are_malformed() {
        let k = key("a fleet secret of some length");
        assert_eq!(k.open(NOW, b""), Err(Reject::Malformed));
        assert_eq!(k.open(NOW, &[0xffu8; 100]), Err(Reject::Malformed));
        // chitchat's own magic number (45139, little endian) as an agent
        // without authentication would send it.
        let mut raw = vec![0x53, 0xb0, 1, 0];
        raw.extend_from_slice(&[0u8; 60]);
        assert_eq!(k.open(NOW, &raw), Err(Reject::Malformed));
        let mut other_version = sealed(&k, NOW, b"x");
        other_version[2] = VERSION + 1;
        assert_eq!(k.open(NOW, &other_version), Err(Reject::Malformed));
    }

    #[test]
    fn replay_window_bounds_both_sides() {
        let k = key("a fleet secret of some length");
        let window = REPLAY_WINDOW.as_millis() as u64;
        let datagram = sealed(&k, NOW, b"p");
        assert!(k.open(NOW + window, &datagram).is_ok());
        assert!(k.open(NOW - window, &datagram).is_ok());
        assert_eq!(k.open(NOW + window + 1, &datagram), Err(Reject::Stale));
        assert_eq!(k.open(NOW - window - 1, &datagram), Err(Reject::Stale));
        // A forged time does not help: the time is under the tag.
        let mut refreshed = datagram.clone();
        refreshed[3..11].copy_from_slice(&(NOW + 10 * window).to_be_bytes());
        assert_eq!(k.open(NOW + 10 * window, &refreshed), Err(Reject::BadTag));
    }

    #[test]
    fn short_secrets_are_refused_and_keys_never_print() {
        assert_eq!(
            GossipKey::derive(b"short").err(),
            Some(ShortSecret { len: 5 })
        );
        let k = key("a fleet secret of some length");
        assert_eq!(format!("{k:?}"), "GossipKey(<redacted>)");
    }

    #[test]
    fn reasons_have_stable_labels_and_indexes() {
        for (i, reason) in Reject::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        let labels: Vec<&str> = Reject::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels, ["malformed", "bad_tag", "stale"]);
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let k = key("a fleet secret of some length");
            let _ = k.open(NOW, &bytes);
        }
    }
}
