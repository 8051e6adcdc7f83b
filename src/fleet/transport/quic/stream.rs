//! Frames on QUIC streams: reading one length-prefixed frame (checking the declared length against
//! the limit before reading the payload, then requiring the end of the stream), writing one, and a
//! guard that resets a half-written request stream when the request is abandoned.

use bytes::Bytes;
use quinn::{ReadError, ReadExactError, RecvStream, SendStream, VarInt, WriteError};

use crate::fleet::transport::frame::{FrameError, HEADER_LEN, Payload, parse_header};

/// Why a frame could not be read from a stream.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The frame itself is wrong (too large, trailing bytes).
    Frame(FrameError),
    /// The stream ended after `got` of `expected` bytes.
    Early { got: usize, expected: usize },
    /// The stream or connection failed.
    Stream(ReadError),
}

fn exact(err: ReadExactError, expected: usize) -> ReadFailure {
    match err {
        ReadExactError::FinishedEarly(got) => ReadFailure::Early { got, expected },
        ReadExactError::ReadError(e) => ReadFailure::Stream(e),
    }
}

/// Reads exactly one frame and the end of the stream after it; returns the payload.
pub(crate) async fn read_frame(recv: &mut RecvStream, limit: usize) -> Result<Bytes, ReadFailure> {
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header)
        .await
        .map_err(|e| exact(e, HEADER_LEN))?;
    let declared = parse_header(header, limit).map_err(ReadFailure::Frame)?;
    let mut payload = vec![0u8; declared];
    recv.read_exact(&mut payload)
        .await
        .map_err(|e| exact(e, declared))?;
    let mut probe = [0u8; 1];
    match recv.read(&mut probe).await {
        Ok(None) => Ok(Bytes::from(payload)),
        Ok(Some(_)) => Err(ReadFailure::Frame(FrameError::Trailing)),
        Err(e) => Err(ReadFailure::Stream(e)),
    }
}

/// Writes one frame (without finishing the stream).
pub(crate) async fn write_frame(send: &mut SendStream, payload: Payload) -> Result<(), WriteError> {
    let mut chunks = payload.into_chunks();
    send.write_all_chunks(&mut chunks).await
}

/// Owns a request's send stream; if dropped before [`ResetOnDrop::finish`], the stream is reset so
/// the peer sees an abandoned request rather than a truncated frame.
pub(crate) struct ResetOnDrop {
    /// The stream; `None` once finished.
    stream: Option<SendStream>,
}

impl ResetOnDrop {
    pub(crate) fn new(stream: SendStream) -> Self {
        ResetOnDrop {
            stream: Some(stream),
        }
    }

    /// The stream, while not finished.
    pub(crate) fn get(&mut self) -> Option<&mut SendStream> {
        self.stream.as_mut()
    }

    /// Marks the request as completely written (or refused by the peer) and finishes the stream.
    pub(crate) fn finish(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            // Finishing fails only if the peer already stopped or reset the stream; the reply
            // (or the read error) tells the requester what happened.
            let _ = stream.finish();
        }
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = stream.reset(VarInt::from_u32(super::errors::STREAM_CANCELLED));
        }
    }
}
