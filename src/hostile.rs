//! Entry points for the hostile-input suite (`tests/fuzz.rs`): the decoders that bytes from the
//! network or the data directory reach, where they are private to their modules. Each is a thin
//! call of the real decoder, so the suite feeds exactly what an agent runs; nothing else should
//! call them.
//!
//! The decoders that are public already are fuzzed through their own paths
//! ([`crate::plan::parse`], [`crate::fleet::participant::load_bundle`],
//! [`crate::fleet::protocol::decode`], [`crate::metrics::Snapshot::decode`],
//! [`crate::fleet::membership::GossipKey::open`], [`crate::fleet::keys::MemberInfo::from_kv`]).

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue};

use crate::api::SubmitRequest;
use crate::fleet::transport::{Reply, Request, envelope, frame};

/// A `POST /v1/tests` body with its `Content-Type` and query string, read and checked as the API
/// does before the agent loads the plan.
pub fn submit_body(
    content_type: Option<&[u8]>,
    query: Option<&str>,
    body: &[u8],
) -> Result<SubmitRequest, String> {
    let mut headers = HeaderMap::new();
    if let Some(value) = content_type {
        let value = HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
        headers.insert(CONTENT_TYPE, value);
    }
    crate::api::submit::parse(&headers, query, body).map_err(|e| e.to_string())
}

/// What one transport frame read as: the request a peer would answer, or the reply a requester
/// would take (for both request kinds), or why not.
#[derive(Debug)]
pub struct FrameReading {
    pub request: Result<Request, String>,
    pub time_reply: Result<Reply, String>,
    pub app_reply: Result<Reply, String>,
}

/// One complete QUIC stream's bytes (a frame) under the receiver's `max_message`, decoded as a
/// request and as a reply, as each side of the transport reads it.
pub fn transport_frame(wire: &[u8], max_message: usize) -> Result<FrameReading, String> {
    let payload = frame::decode(
        &Bytes::copy_from_slice(wire),
        frame::frame_limit(max_message),
    )
    .map_err(|e| e.to_string())?;
    Ok(FrameReading {
        request: envelope::decode_request(payload.clone()).map_err(|e| format!("{e:?}")),
        time_reply: envelope::decode_reply(envelope::KIND_TIME, payload.clone())
            .map_err(|e| format!("{e:?}")),
        app_reply: envelope::decode_reply(envelope::KIND_APP, payload)
            .map_err(|e| format!("{e:?}")),
    })
}

/// The frame a requester sends for `request`: seeds for [`transport_frame`].
pub fn request_frame(request: Request) -> Vec<u8> {
    request.into_payload().into_wire().to_vec()
}

/// The frame a peer answers `reply` with: seeds for [`transport_frame`].
pub fn reply_frame(reply: Reply) -> Vec<u8> {
    envelope::encode_reply(reply).into_wire().to_vec()
}

/// An intervals file of the data directory split into records: `(seq, payload)` in file order,
/// and the length of a torn tail.
pub fn intervals_file(bytes: &[u8]) -> (Vec<(u64, Vec<u8>)>, usize) {
    let records = crate::fleet::store::files::decode_records(bytes);
    (records.records, records.torn_len)
}

/// One intervals file record: seeds for [`intervals_file`].
pub fn interval_record(seq: u64, payload: &[u8]) -> Option<Vec<u8>> {
    crate::fleet::store::files::encode_record(seq, payload)
}
