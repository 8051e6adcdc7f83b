//! Turning quinn's connection and stream errors into [`TransportError`]s that say what happened,
//! in particular which certificate was rejected by whom (TLS alerts travel as QUIC crypto error
//! codes `0x100 + alert`).

use std::net::SocketAddr;

use quinn::{ConnectError, ConnectionError, ReadError, WriteError};

use crate::fleet::transport::TransportError;

/// Application close code: orderly shutdown.
pub(crate) const CLOSE_SHUTDOWN: u32 = 0;
/// Application close code: the client certificate verified but carries no node id (CN).
pub(crate) const CLOSE_NO_NODE_ID: u32 = 1;
/// Stream reset/stop code: the requester gave up (timeout) before finishing.
pub(crate) const STREAM_CANCELLED: u32 = 1;
/// Stream stop code: the request exceeds the receiver's limit; a refusal reply follows.
pub(crate) const STREAM_TOO_LARGE: u32 = 2;

const ALERT_BAD_CERTIFICATE: u8 = 42;
const ALERT_UNSUPPORTED_CERTIFICATE: u8 = 43;
const ALERT_CERTIFICATE_REVOKED: u8 = 44;
const ALERT_CERTIFICATE_EXPIRED: u8 = 45;
const ALERT_CERTIFICATE_UNKNOWN: u8 = 46;
const ALERT_UNKNOWN_CA: u8 = 48;
const ALERT_ACCESS_DENIED: u8 = 49;
const ALERT_DECRYPT_ERROR: u8 = 51;
const ALERT_CERTIFICATE_REQUIRED: u8 = 116;
const ALERT_NO_APPLICATION_PROTOCOL: u8 = 120;

/// Explains a TLS alert. `by_us`: we rejected the peer (else the peer rejected us).
fn alert_reason(alert: u8, by_us: bool) -> String {
    let problem = match alert {
        ALERT_UNKNOWN_CA if by_us => {
            return "peer certificate not issued by this fleet's CA".to_owned();
        }
        ALERT_UNKNOWN_CA => "not issued by the peer's fleet CA (is it another fleet?)",
        ALERT_CERTIFICATE_EXPIRED => "expired or not yet valid; renew it and check both clocks",
        ALERT_BAD_CERTIFICATE => "malformed or not valid for the agent name `volley-agent`",
        ALERT_UNSUPPORTED_CERTIFICATE => "lacks the server/client authentication usage (EKU)",
        ALERT_DECRYPT_ERROR => "has an invalid signature",
        ALERT_CERTIFICATE_REVOKED => "revoked",
        ALERT_CERTIFICATE_UNKNOWN | ALERT_ACCESS_DENIED => "not accepted",
        ALERT_CERTIFICATE_REQUIRED => {
            return "a client certificate is required but none was presented".to_owned();
        }
        ALERT_NO_APPLICATION_PROTOCOL => {
            return "ALPN mismatch: the peer does not speak `volley/1`".to_owned();
        }
        other => return format!("TLS handshake failed (alert {other})"),
    };
    if by_us {
        format!("peer certificate {problem}")
    } else {
        format!("the peer rejected our certificate: {problem}")
    }
}

/// The TLS alert carried by a QUIC transport error code, if it is one.
fn alert_of(code: quinn::TransportErrorCode) -> Option<u8> {
    let code = u64::from(code);
    (0x100..=0x1ff)
        .contains(&code)
        .then(|| u8::try_from(code - 0x100).ok())
        .flatten()
}

/// Classifies a connection-level error. `established`: the handshake had completed, so a time-out
/// means the peer went silent rather than never answered.
pub(crate) fn connection(
    peer: SocketAddr,
    err: &ConnectionError,
    established: bool,
) -> TransportError {
    let closed = |reason: String| TransportError::Closed { peer, reason };
    match err {
        ConnectionError::TransportError(e) => match alert_of(e.code) {
            Some(alert) => TransportError::Refused {
                peer,
                reason: format!("{} ({})", alert_reason(alert, true), e.reason),
            },
            None => TransportError::Protocol {
                peer,
                reason: format!("QUIC error: {e}"),
            },
        },
        ConnectionError::ConnectionClosed(close) => match alert_of(close.error_code) {
            Some(alert) => TransportError::Refused {
                peer,
                reason: alert_reason(alert, false),
            },
            // A closed endpoint (agent shutting down) refuses new connections: nobody is there
            // to talk to, which is what unreachable means to the caller.
            None if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED => {
                TransportError::Unreachable {
                    peer,
                    reason: "the peer refused the connection (its transport is shut down)"
                        .to_owned(),
                }
            }
            None => closed(format!(
                "the peer's QUIC stack aborted the connection: {close}"
            )),
        },
        ConnectionError::ApplicationClosed(close) => {
            if close.error_code == quinn::VarInt::from_u32(CLOSE_NO_NODE_ID) {
                TransportError::Refused {
                    peer,
                    reason: "the peer rejected our certificate: it has no node id (CN)".to_owned(),
                }
            } else {
                closed(format!(
                    "the peer closed the connection ({})",
                    String::from_utf8_lossy(&close.reason)
                ))
            }
        }
        ConnectionError::Reset => closed("the peer reset the connection (restarted?)".to_owned()),
        ConnectionError::TimedOut if established => {
            closed("the peer went silent longer than the idle timeout".to_owned())
        }
        ConnectionError::TimedOut => TransportError::Unreachable {
            peer,
            reason: "no answer to the QUIC handshake within the idle timeout".to_owned(),
        },
        ConnectionError::LocallyClosed => closed("this transport has been shut down".to_owned()),
        ConnectionError::VersionMismatch => TransportError::Protocol {
            peer,
            reason: "the peer speaks no QUIC version we support".to_owned(),
        },
        ConnectionError::CidsExhausted => closed("connection ids exhausted".to_owned()),
    }
}

/// Classifies a failure to start dialling.
pub(crate) fn connect(peer: SocketAddr, err: &ConnectError) -> TransportError {
    match err {
        ConnectError::EndpointStopping => TransportError::Closed {
            peer,
            reason: "this transport has been shut down".to_owned(),
        },
        other => TransportError::Unreachable {
            peer,
            reason: format!("cannot dial: {other}"),
        },
    }
}

/// Classifies a stream write failure.
pub(crate) fn write(peer: SocketAddr, err: &WriteError) -> TransportError {
    match err {
        WriteError::ConnectionLost(e) => connection(peer, e, true),
        WriteError::Stopped(code) => TransportError::Closed {
            peer,
            reason: format!("the peer stopped reading the request (code {code})"),
        },
        other => TransportError::Closed {
            peer,
            reason: format!("stream closed while sending: {other}"),
        },
    }
}

/// Classifies a stream read failure.
pub(crate) fn read(peer: SocketAddr, err: &ReadError) -> TransportError {
    match err {
        ReadError::ConnectionLost(e) => connection(peer, e, true),
        ReadError::Reset(code) => TransportError::Closed {
            peer,
            reason: format!("the peer reset the stream (code {code})"),
        },
        other => TransportError::Closed {
            peer,
            reason: format!("stream closed while receiving: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_codes_map_to_alerts() {
        assert_eq!(alert_of(quinn::TransportErrorCode::crypto(48)), Some(48));
        assert_eq!(alert_of(quinn::TransportErrorCode::crypto(0)), Some(0));
        assert_eq!(alert_of(quinn::TransportErrorCode::crypto(255)), Some(255));
    }

    #[test]
    fn unknown_ca_wording_depends_on_who_rejected() {
        assert_eq!(
            alert_reason(ALERT_UNKNOWN_CA, true),
            "peer certificate not issued by this fleet's CA"
        );
        assert!(alert_reason(ALERT_UNKNOWN_CA, false).contains("rejected our certificate"));
        assert!(alert_reason(ALERT_CERTIFICATE_EXPIRED, true).contains("expired"));
    }
}
