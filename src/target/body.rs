//! Response bodies of the built-in target, as one concrete [`Body`] type.
//!
//! A single enum instead of boxed trait objects keeps the hot routes free of
//! per-request allocations: fixed bodies are `Bytes::from_static`, `/bytes/N`
//! streams slices of one static chunk, and `/echo` streams the request body
//! straight back. Every data frame is counted in [`TargetStats::bytes_out`].
//!
//! `/drop` is also implemented here: its body announces a length, yields part
//! of it, lets the connection flush, then fails. hyper reacts to a failing
//! body by aborting the connection (HTTP/1.1) or resetting the stream (h2),
//! which is exactly the "server closed mid-response" case clients must handle.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::stats::TargetStats;

/// The 64-byte cycle `/bytes/N` repeats: byte `i` of a body is
/// `BYTES_PATTERN[i % 64]` (the base64url alphabet), so clients can verify
/// content without storing it.
pub const BYTES_PATTERN: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Size of the static chunk `/bytes/N` is cut from. A multiple of the pattern
/// length, so consecutive full chunks continue the cycle seamlessly.
const CHUNK_LEN: usize = 16 * 1024;

/// [`BYTES_PATTERN`] repeated to [`CHUNK_LEN`] bytes, built at compile time.
static CHUNK: [u8; CHUNK_LEN] = build_chunk();

const fn build_chunk() -> [u8; CHUNK_LEN] {
    let mut chunk = [0u8; CHUNK_LEN];
    let mut i = 0;
    while i < CHUNK_LEN {
        chunk[i] = BYTES_PATTERN[i % BYTES_PATTERN.len()];
        i += 1;
    }
    chunk
}

/// Content-Length that `/drop` announces.
pub(crate) const DROP_ANNOUNCED: usize = 4096;
/// Bytes `/drop` actually sends before aborting.
pub(crate) const DROP_SENT: usize = 1024;
// `/drop` must send less than it announces, cut from one static chunk.
const _: () = assert!(DROP_SENT < DROP_ANNOUNCED && DROP_SENT <= CHUNK_LEN);

/// Why a response body ended abnormally.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// `/drop` doing its job.
    #[error("/drop aborted its response after {DROP_SENT} of {DROP_ANNOUNCED} announced bytes")]
    Dropped,
    /// The request body of `/echo` failed while being streamed back.
    #[error("reading the request body to echo it: {0}")]
    Echo(#[source] hyper::Error),
}

/// Where `/drop` is in its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropStep {
    /// Next poll yields the partial data.
    Send,
    /// Next poll returns `Pending` once so hyper flushes head and data.
    Flush,
    /// Next poll fails the body.
    Fail,
    /// The error was delivered.
    Done,
}

#[derive(Debug)]
enum Kind {
    /// One frame (or none once taken / when empty).
    Full(Option<Bytes>),
    /// `/bytes/N`: this many pattern bytes left to send.
    Pattern { remaining: u64 },
    /// `/drop`.
    Drop(DropStep),
    /// `/echo`: the request body, streamed back.
    Echo(Incoming),
}

/// The body of every response the target sends.
#[derive(Debug)]
pub(crate) struct TargetBody {
    kind: Kind,
    /// Where data frames are counted.
    stats: Arc<TargetStats>,
}

impl TargetBody {
    /// A body of exactly `bytes` (empty bytes mean an empty body).
    pub(crate) fn full(bytes: Bytes, stats: &Arc<TargetStats>) -> Self {
        let frame = (!bytes.is_empty()).then_some(bytes);
        Self::new(Kind::Full(frame), stats)
    }

    /// A body from static data, without copying.
    pub(crate) fn from_static(bytes: &'static [u8], stats: &Arc<TargetStats>) -> Self {
        Self::full(Bytes::from_static(bytes), stats)
    }

    /// `len` bytes of [`BYTES_PATTERN`].
    pub(crate) fn pattern(len: u64, stats: &Arc<TargetStats>) -> Self {
        Self::new(Kind::Pattern { remaining: len }, stats)
    }

    /// The `/drop` body: announces [`DROP_ANNOUNCED`] bytes, sends
    /// [`DROP_SENT`], then fails.
    pub(crate) fn dropping(stats: &Arc<TargetStats>) -> Self {
        Self::new(Kind::Drop(DropStep::Send), stats)
    }

    /// Streams `incoming` back as the response body.
    pub(crate) fn echo(incoming: Incoming, stats: &Arc<TargetStats>) -> Self {
        Self::new(Kind::Echo(incoming), stats)
    }

    fn new(kind: Kind, stats: &Arc<TargetStats>) -> Self {
        Self {
            kind,
            stats: Arc::clone(stats),
        }
    }

    fn data(&self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.stats.record_bytes_out(bytes.len());
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

impl Body for TargetBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Full(frame) => match frame.take() {
                Some(bytes) => this.data(bytes),
                None => Poll::Ready(None),
            },
            Kind::Pattern { remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                // Lossless: the minimum is at most CHUNK_LEN.
                let len = (*remaining).min(CHUNK_LEN as u64) as usize;
                *remaining -= len as u64;
                this.data(Bytes::from_static(&CHUNK[..len]))
            }
            Kind::Drop(step) => match *step {
                DropStep::Send => {
                    *step = DropStep::Flush;
                    this.data(Bytes::from_static(&CHUNK[..DROP_SENT]))
                }
                DropStep::Flush => {
                    *step = DropStep::Fail;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                DropStep::Fail => {
                    *step = DropStep::Done;
                    Poll::Ready(Some(Err(BodyError::Dropped)))
                }
                DropStep::Done => Poll::Ready(None),
            },
            Kind::Echo(incoming) => match Pin::new(incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        this.stats.record_bytes_out(data.len());
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Echo(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(frame) => frame.is_none(),
            Kind::Pattern { remaining } => *remaining == 0,
            Kind::Drop(step) => *step == DropStep::Done,
            Kind::Echo(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(frame) => SizeHint::with_exact(frame.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Pattern { remaining } => SizeHint::with_exact(*remaining),
            // Announce the full length even after sending part: that is the lie.
            Kind::Drop(_) => SizeHint::with_exact(DROP_ANNOUNCED as u64),
            Kind::Echo(incoming) => incoming.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// Polls `body` to completion, returning the data and whether it failed.
    fn drain(mut body: TargetBody) -> (Vec<u8>, bool) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        // Bounded: no body here needs more than a few thousand polls.
        for _ in 0..100_000 {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    out.extend_from_slice(frame.data_ref().expect("only data frames"))
                }
                Poll::Ready(Some(Err(_))) => return (out, true),
                Poll::Ready(None) => return (out, false),
                Poll::Pending => {}
            }
        }
        panic!("body did not finish within the poll budget");
    }

    fn stats() -> Arc<TargetStats> {
        Arc::new(TargetStats::new())
    }

    #[test]
    fn pattern_body_follows_the_cycle_across_chunks() {
        let stats = stats();
        let len = 3 * CHUNK_LEN as u64 + 17;
        let body = TargetBody::pattern(len, &stats);
        assert_eq!(body.size_hint().exact(), Some(len));
        let (data, failed) = drain(body);
        assert!(!failed);
        assert_eq!(data.len() as u64, len);
        for (i, byte) in data.iter().enumerate() {
            assert_eq!(*byte, BYTES_PATTERN[i % 64], "byte {i}");
        }
        assert_eq!(stats.bytes_out(), len);
    }

    #[test]
    fn empty_bodies_end_immediately() {
        let stats = stats();
        assert!(TargetBody::pattern(0, &stats).is_end_stream());
        assert!(TargetBody::full(Bytes::new(), &stats).is_end_stream());
        let (data, failed) = drain(TargetBody::full(Bytes::new(), &stats));
        assert!(data.is_empty() && !failed);
    }

    #[test]
    fn full_body_yields_its_bytes_once() {
        let stats = stats();
        let body = TargetBody::from_static(b"hello", &stats);
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        assert_eq!(drain(body), (b"hello".to_vec(), false));
        assert_eq!(stats.bytes_out(), 5);
    }

    #[test]
    fn drop_body_sends_part_of_what_it_announces_then_fails() {
        let stats = stats();
        let body = TargetBody::dropping(&stats);
        assert_eq!(body.size_hint().exact(), Some(DROP_ANNOUNCED as u64));
        let (data, failed) = drain(body);
        assert!(failed);
        assert_eq!(data.len(), DROP_SENT);
        assert_eq!(stats.bytes_out(), DROP_SENT as u64);
    }
}
