//! The envelope inside every frame. Requests start with a kind byte (`0x01` TIME: answered by the
//! transport itself with receive/send stamps for clock-offset measurement; `0x02` APP: passed to
//! the [`Handler`](super::Handler)). Replies start with a status byte (`0x00` OK, `0x01` error
//! followed by an error code and its fields), so a peer can refuse a request with a reason.
//!
//! ```text
//! request  TIME : 01
//! request  APP  : 02 <body>
//! reply    TIME : 00 <t1: i128 BE ns> <t2: i128 BE ns>
//! reply    APP  : 00 <body>
//! reply    error: 01 <code> <fields>   code 1 protocol <utf-8 reason>
//!                                      code 2 request too large <size u64 BE> <limit u64 BE>
//!                                      code 3 response too large <size u64 BE> <limit u64 BE>
//!                                      code 4 handler failed <utf-8 reason>
//! ```

use bytes::Bytes;

use super::frame::Payload;

/// Request kind: clock stamps, answered by the transport.
pub const KIND_TIME: u8 = 0x01;
/// Request kind: application message, answered by the handler.
pub const KIND_APP: u8 = 0x02;

const STATUS_OK: u8 = 0x00;
const STATUS_ERROR: u8 = 0x01;

const CODE_PROTOCOL: u8 = 1;
const CODE_REQUEST_TOO_LARGE: u8 = 2;
const CODE_RESPONSE_TOO_LARGE: u8 = 3;
const CODE_HANDLER_FAILED: u8 = 4;

/// Error reasons are cut to this many bytes so an error reply always fits the frame head room.
const MAX_REASON: usize = 512;

/// What a requester asks of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// "Tell me your clock": the peer's transport replies with its receive and send stamps.
    Time,
    /// An application message for the peer's handler.
    App(Bytes),
}

impl Request {
    /// The kind byte this request travels with.
    pub fn kind(&self) -> u8 {
        match self {
            Request::Time => KIND_TIME,
            Request::App(_) => KIND_APP,
        }
    }

    /// Size of the application body (0 for TIME), the part limited by `Limits::max_message`.
    pub fn body_len(&self) -> usize {
        match self {
            Request::Time => 0,
            Request::App(body) => body.len(),
        }
    }

    pub(crate) fn into_payload(self) -> Payload {
        match self {
            Request::Time => Payload {
                head: vec![KIND_TIME],
                body: Bytes::new(),
            },
            Request::App(body) => Payload {
                head: vec![KIND_APP],
                body,
            },
        }
    }
}

/// Wall-clock stamps taken by the peer, in nanoseconds since the Unix epoch on the peer's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStamps {
    /// When the peer received the request (t1).
    pub received: i128,
    /// When the peer sent the reply (t2).
    pub sent: i128,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Answer to [`Request::Time`].
    Time(PeerStamps),
    /// The handler's response to [`Request::App`].
    App(Bytes),
}

/// A refusal a peer sends instead of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The request was malformed (unknown kind, bad framing).
    Protocol(String),
    /// The request body exceeds the answering side's limit.
    RequestTooLarge { size: usize, limit: usize },
    /// The handler's response exceeds the answering side's limit.
    ResponseTooLarge { size: usize, limit: usize },
    /// The handler panicked.
    HandlerFailed(String),
}

/// Why a reply could not be turned into a [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyError {
    /// The peer refused the request.
    Remote(Fault),
    /// The reply itself is not valid envelope bytes.
    Malformed(String),
}

fn bounded_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Parses a request payload as sent by [`Request::into_payload`].
pub(crate) fn decode_request(payload: Bytes) -> Result<Request, Fault> {
    match payload.first().copied() {
        None => Err(Fault::Protocol(
            "empty request: expected a kind byte (0x01 TIME or 0x02 APP)".to_owned(),
        )),
        Some(KIND_TIME) if payload.len() == 1 => Ok(Request::Time),
        Some(KIND_TIME) => Err(Fault::Protocol(format!(
            "TIME request carries {} unexpected bytes; expected the kind byte alone",
            payload.len() - 1
        ))),
        Some(KIND_APP) => Ok(Request::App(payload.slice(1..))),
        Some(other) => Err(Fault::Protocol(format!(
            "unknown message kind 0x{other:02x}; expected 0x01 TIME or 0x02 APP"
        ))),
    }
}

/// The payload of a successful reply.
pub(crate) fn encode_reply(reply: Reply) -> Payload {
    match reply {
        Reply::Time(stamps) => {
            let mut head = Vec::with_capacity(33);
            head.push(STATUS_OK);
            head.extend_from_slice(&stamps.received.to_be_bytes());
            head.extend_from_slice(&stamps.sent.to_be_bytes());
            Payload {
                head,
                body: Bytes::new(),
            }
        }
        Reply::App(body) => Payload {
            head: vec![STATUS_OK],
            body,
        },
    }
}

fn sizes(code: u8, size: usize, limit: usize) -> Vec<u8> {
    let mut head = vec![STATUS_ERROR, code];
    head.extend_from_slice(&(size as u64).to_be_bytes());
    head.extend_from_slice(&(limit as u64).to_be_bytes());
    head
}

/// The payload of an error reply.
pub(crate) fn encode_fault(fault: &Fault) -> Payload {
    let (head, text) = match fault {
        Fault::Protocol(reason) => (vec![STATUS_ERROR, CODE_PROTOCOL], bounded_reason(reason)),
        Fault::HandlerFailed(reason) => (
            vec![STATUS_ERROR, CODE_HANDLER_FAILED],
            bounded_reason(reason),
        ),
        Fault::RequestTooLarge { size, limit } => {
            (sizes(CODE_REQUEST_TOO_LARGE, *size, *limit), "")
        }
        Fault::ResponseTooLarge { size, limit } => {
            (sizes(CODE_RESPONSE_TOO_LARGE, *size, *limit), "")
        }
    };
    Payload {
        head,
        body: Bytes::copy_from_slice(text.as_bytes()),
    }
}

fn read_sizes(rest: &[u8]) -> Result<(usize, usize), ReplyError> {
    let field = |at: usize| -> Result<usize, ReplyError> {
        rest.get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(|b| usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX))
            .ok_or_else(|| ReplyError::Malformed("size fields of an error reply truncated".into()))
    };
    Ok((field(0)?, field(8)?))
}

/// Parses a reply to a request of kind `kind`.
pub(crate) fn decode_reply(kind: u8, payload: Bytes) -> Result<Reply, ReplyError> {
    match payload.first().copied() {
        None => Err(ReplyError::Malformed(
            "empty reply: expected a status byte".into(),
        )),
        Some(STATUS_OK) if kind == KIND_APP => Ok(Reply::App(payload.slice(1..))),
        Some(STATUS_OK) => {
            let stamp = |at: usize| {
                payload
                    .get(at..at + 16)
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .map(i128::from_be_bytes)
            };
            match (stamp(1), stamp(17), payload.len()) {
                (Some(received), Some(sent), 33) => Ok(Reply::Time(PeerStamps { received, sent })),
                (_, _, len) => Err(ReplyError::Malformed(format!(
                    "TIME reply of {len} bytes; expected 33 (status + two 16-byte stamps)"
                ))),
            }
        }
        Some(STATUS_ERROR) => {
            let code = payload.get(1).copied();
            let rest = payload.get(2..).unwrap_or_default();
            let text = || String::from_utf8_lossy(rest).into_owned();
            let fault = match code {
                Some(CODE_PROTOCOL) => Fault::Protocol(text()),
                Some(CODE_HANDLER_FAILED) => Fault::HandlerFailed(text()),
                Some(CODE_REQUEST_TOO_LARGE) => {
                    let (size, limit) = read_sizes(rest)?;
                    Fault::RequestTooLarge { size, limit }
                }
                Some(CODE_RESPONSE_TOO_LARGE) => {
                    let (size, limit) = read_sizes(rest)?;
                    Fault::ResponseTooLarge { size, limit }
                }
                Some(other) => {
                    return Err(ReplyError::Malformed(format!(
                        "unknown error code {other} in reply"
                    )));
                }
                None => return Err(ReplyError::Malformed("error reply without a code".into())),
            };
            Err(ReplyError::Remote(fault))
        }
        Some(other) => Err(ReplyError::Malformed(format!(
            "unknown reply status 0x{other:02x}; expected 0x00 OK or 0x01 error"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flat(p: Payload) -> Bytes {
        let mut v = p.head;
        v.extend_from_slice(&p.body);
        Bytes::from(v)
    }

    #[test]
    fn requests_round_trip() {
        for req in [
            Request::Time,
            Request::App(Bytes::from_static(b"plan")),
            Request::App(Bytes::new()),
        ] {
            assert_eq!(decode_request(flat(req.clone().into_payload())), Ok(req));
        }
    }

    #[test]
    fn unknown_or_malformed_requests_are_protocol_faults() {
        let Err(Fault::Protocol(reason)) = decode_request(Bytes::from_static(&[0x7f, 1])) else {
            panic!("unknown kind accepted");
        };
        assert!(
            reason.contains("0x7f") && reason.contains("0x02 APP"),
            "{reason}"
        );
        assert!(matches!(
            decode_request(Bytes::new()),
            Err(Fault::Protocol(_))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[1, 0])),
            Err(Fault::Protocol(_))
        ));
    }

    #[test]
    fn replies_and_faults_round_trip() {
        let stamps = PeerStamps {
            received: -5,
            sent: 1_700_000_000_000_000_000,
        };
        assert_eq!(
            decode_reply(KIND_TIME, flat(encode_reply(Reply::Time(stamps)))),
            Ok(Reply::Time(stamps))
        );
        let body = Bytes::from_static(b"metrics");
        assert_eq!(
            decode_reply(KIND_APP, flat(encode_reply(Reply::App(body.clone())))),
            Ok(Reply::App(body))
        );
        let faults = [
            Fault::Protocol("bad".into()),
            Fault::HandlerFailed("boom".into()),
            Fault::RequestTooLarge { size: 9, limit: 8 },
            Fault::ResponseTooLarge {
                size: 1 << 40,
                limit: 3,
            },
        ];
        for fault in faults {
            assert_eq!(
                decode_reply(KIND_APP, flat(encode_fault(&fault))),
                Err(ReplyError::Remote(fault))
            );
        }
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_REASON);
        let payload = encode_fault(&Fault::Protocol(long));
        assert!(payload.len() <= super::super::frame::MAX_HEAD);
        assert!(std::str::from_utf8(&payload.body).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let b = Bytes::from(bytes);
            let _ = decode_request(b.clone());
            let _ = decode_reply(KIND_TIME, b.clone());
            let _ = decode_reply(KIND_APP, b);
        }
    }
}
