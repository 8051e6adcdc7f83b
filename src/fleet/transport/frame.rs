//! Length-prefixed framing shared by every transport: a frame is a `u32` big-endian payload length
//! followed by the payload (an envelope head plus an optional body). Both the QUIC streams and the
//! in-memory transport carry exactly these bytes, so size limits and truncation behave alike.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the length prefix.
pub(crate) const HEADER_LEN: usize = 4;

/// Room for the envelope head on top of the application body: the kind/status byte, error codes,
/// sizes and a bounded error message. A frame may carry `max_message + MAX_HEAD` payload bytes.
pub(crate) const MAX_HEAD: usize = 600;

/// Why bytes could not be read as one frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// The declared payload length exceeds the receiver's limit.
    #[error("frame declares {declared} payload bytes, limit is {limit}")]
    TooLarge {
        /// Length from the header.
        declared: usize,
        /// The receiver's frame limit.
        limit: usize,
    },
    /// The stream ended before the declared length (or before a complete header).
    #[error("frame truncated: expected {expected} bytes, got {got}")]
    Truncated {
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// Bytes follow the frame where the stream should have ended.
    #[error("unexpected bytes after the frame")]
    Trailing,
}

/// The largest frame payload accepted by a side whose application limit is `max_message`.
pub(crate) fn frame_limit(max_message: usize) -> usize {
    max_message.saturating_add(MAX_HEAD)
}

/// Reads a header and checks the declared length against `limit`.
pub(crate) fn parse_header(header: [u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    let declared = u32::from_be_bytes(header) as usize;
    if declared > limit {
        return Err(FrameError::TooLarge { declared, limit });
    }
    Ok(declared)
}

/// A frame payload: a small envelope head and the body, kept apart so large bodies are not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    /// Envelope head (kind or status byte and fixed fields).
    pub(crate) head: Vec<u8>,
    /// Application body or error message.
    pub(crate) body: Bytes,
}

impl Payload {
    /// Total payload length (what the header declares).
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Header plus head in one chunk, body in a second: ready for a vectored stream write.
    /// The caller has already bounded the length by its limits, far below `u32::MAX`.
    pub(crate) fn into_chunks(self) -> [Bytes; 2] {
        let declared = u32::try_from(self.len()).unwrap_or(u32::MAX);
        let mut first = BytesMut::with_capacity(HEADER_LEN + self.head.len());
        first.put_u32(declared);
        first.put_slice(&self.head);
        [first.freeze(), self.body]
    }

    /// The whole frame in one buffer (used by the in-memory transport).
    pub(crate) fn into_wire(self) -> Bytes {
        let [first, body] = self.into_chunks();
        let mut wire = BytesMut::with_capacity(first.len() + body.len());
        wire.put_slice(&first);
        wire.put_slice(&body);
        wire.freeze()
    }
}

/// Reads exactly one frame from a complete buffer, returning its payload.
pub(crate) fn decode(wire: &Bytes, limit: usize) -> Result<Bytes, FrameError> {
    let header: [u8; HEADER_LEN] = wire
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FrameError::Truncated {
            expected: HEADER_LEN,
            got: wire.len(),
        })?;
    let declared = parse_header(header, limit)?;
    let got = wire.len() - HEADER_LEN;
    if got < declared {
        return Err(FrameError::Truncated {
            expected: declared,
            got,
        });
    }
    if got > declared {
        return Err(FrameError::Trailing);
    }
    Ok(wire.slice(HEADER_LEN..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payload(head: &[u8], body: &[u8]) -> Payload {
        Payload {
            head: head.to_vec(),
            body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn wire_layout_is_length_prefix_then_payload() {
        let wire = payload(&[2], b"hello").into_wire();
        assert_eq!(&wire[..], b"\x00\x00\x00\x06\x02hello");
        assert_eq!(
            decode(&wire, 6).expect("fits"),
            Bytes::from_static(b"\x02hello")
        );
    }

    #[test]
    fn limits_truncation_and_trailing_bytes_are_reported() {
        let wire = payload(&[2], b"hello").into_wire();
        assert_eq!(
            decode(&wire, 5),
            Err(FrameError::TooLarge {
                declared: 6,
                limit: 5
            })
        );
        assert_eq!(
            decode(&wire.slice(..7), 100),
            Err(FrameError::Truncated {
                expected: 6,
                got: 3
            })
        );
        assert_eq!(
            decode(&wire.slice(..2), 100),
            Err(FrameError::Truncated {
                expected: 4,
                got: 2
            })
        );
        let mut longer = wire.to_vec();
        longer.push(0);
        assert_eq!(decode(&Bytes::from(longer), 100), Err(FrameError::Trailing));
    }

    proptest! {
        #[test]
        fn frames_round_trip(head in proptest::collection::vec(any::<u8>(), 0..20),
                             body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let p = payload(&head, &body);
            let len = p.len();
            let wire = p.into_wire();
            let back = decode(&wire, len).expect("fits its own length");
            prop_assert_eq!(&back[..head.len()], &head[..]);
            prop_assert_eq!(&back[head.len()..], &body[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                       limit in 0usize..100) {
            let _ = decode(&Bytes::from(bytes), limit);
        }
    }
}
