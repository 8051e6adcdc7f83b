//! The response head: status, version and the framing and persistence
//! decisions its headers imply (RFC 9112 §6.3, §9.3), parsed with
//! `httparse` into uninitialised header slots.

use std::mem::MaybeUninit;

use http::{HeaderName, HeaderValue};

use super::super::Response;
use super::super::chunked::ChunkedDecoder;
use super::super::error::ProtocolViolation;

/// Header slots for `httparse`; more headers is a protocol error.
pub(super) const MAX_HEADERS: usize = 96;

/// How the body of a response is delimited.
#[derive(Debug)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// What the response head said.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) version: http::Version,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
}

/// Parses a complete response head from `bytes`, or `None` if more bytes
/// are needed. Copies headers into `out` for a final response when asked.
pub(super) fn parse_head(
    bytes: &[u8],
    is_head_request: bool,
    keep_headers: bool,
    out: &mut Response,
) -> Result<Option<Head>, ProtocolViolation> {
    // Uninitialised slots: initialising 96 headers would cost more than
    // parsing a typical head.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response_with_uninit_headers(&mut response, bytes, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ProtocolViolation::Head(e)),
    };
    let status = response.code.unwrap_or(0);
    let version = if response.version == Some(0) {
        http::Version::HTTP_10
    } else {
        http::Version::HTTP_11
    };
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoded = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let is_final = status >= 200 || status == 101;
    for h in response.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let value = parse_content_length(h.value)?;
            match content_length {
                Some(first) if first != value => {
                    return Err(ProtocolViolation::ConflictingContentLength {
                        first,
                        second: value,
                    });
                }
                _ => content_length = Some(value),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoded = true;
            // Only the last coding decides: chunked must be applied last.
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= has_token(h.value, b"close");
            keep_alive_token |= has_token(h.value, b"keep-alive");
        }
        if (keep_headers || is_session_header(name))
            && is_final
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_bytes(h.value),
            )
        {
            out.headers.push((n, v));
        }
    }
    let keep_alive = !close && (version == http::Version::HTTP_11 || keep_alive_token);
    let no_body = is_head_request || status == 204 || status == 304 || status < 200;
    let (framing, keep_alive) = if no_body {
        (Framing::Empty, keep_alive)
    } else if transfer_encoded {
        // A message with both is suspect (RFC 9112 §6.3): decode it by
        // Transfer-Encoding, then close.
        let keep = keep_alive && content_length.is_none();
        if chunked {
            (Framing::Chunked(ChunkedDecoder::new()), keep)
        } else {
            (Framing::UntilClose, false)
        }
    } else {
        match content_length {
            Some(0) => (Framing::Empty, keep_alive),
            Some(len) => (Framing::Length(len), keep_alive),
            None => (Framing::UntilClose, false),
        }
    };
    Ok(Some(Head {
        len,
        status,
        version,
        framing,
        keep_alive,
    }))
}

/// Headers kept even when the caller did not ask for headers: a redirect's
/// `Location`, the `Set-Cookie`s the VU's jar stores, and the
/// `Content-Encoding` a kept body is decoded by.
pub(crate) fn is_session_header(name: &[u8]) -> bool {
    (name.len() == 8 && name.eq_ignore_ascii_case(b"location"))
        || (name.len() == 10 && name.eq_ignore_ascii_case(b"set-cookie"))
        || (name.len() == 16 && name.eq_ignore_ascii_case(b"content-encoding"))
}

pub(super) fn parse_content_length(value: &[u8]) -> Result<u64, ProtocolViolation> {
    let invalid = || ProtocolViolation::ContentLength {
        value: String::from_utf8_lossy(value).into_owned(),
    };
    let mut result = None;
    // `5, 5` (a list of equal values) is tolerated, as RFC 9110 §8.6 allows.
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        let n = digits
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        match result {
            Some(prev) if prev != n => return Err(invalid()),
            _ => result = Some(n),
        }
    }
    result.ok_or_else(invalid)
}

/// True when the comma-separated `list` contains `token` (any case).
pub(super) fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}
