//! Incremental decoder for `Transfer-Encoding: chunked` bodies (RFC 9112
//! §7.1): chunk sizes, extensions (skipped), data, and trailers (skipped).
//!
//! The decoder is fed whatever bytes have arrived, in any split, and hands
//! out body data as slices of that input, so nothing is copied unless the
//! caller keeps the body. Line ends may be CRLF or a bare LF, as in most
//! clients; everything else that does not fit the grammar is an error.

/// Limits on the parts of a chunked body that are not data.
const MAX_SIZE_DIGITS: u8 = 16;
const MAX_EXTENSION_BYTES: usize = 4096;
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("invalid byte {0:#04x} in a chunk size line; expected hex digits")]
    InvalidSize(u8),
    #[error("chunk size has more than 16 hex digits")]
    SizeTooLong,
    #[error("chunk extensions longer than {MAX_EXTENSION_BYTES} bytes")]
    ExtensionTooLong,
    #[error("expected CRLF after chunk data, got byte {0:#04x}")]
    MissingDataCrlf(u8),
    #[error("trailers longer than {MAX_TRAILER_BYTES} bytes")]
    TrailerTooLong,
    #[error("expected LF after CR, got byte {0:#04x}")]
    BareCr(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size (`digits` read so far).
    Size { digits: u8 },
    /// After the size: optional whitespace, then `;ext` or the line end.
    SizeTail,
    /// Inside chunk extensions, until the line end.
    Extension { len: usize },
    /// Saw CR at the end of the size line.
    SizeLf,
    /// Inside chunk data (`remaining` bytes left in this chunk).
    Data,
    /// Expecting CR (or LF) after chunk data.
    DataCr,
    /// Expecting LF after the CR that follows chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerLineStart,
    /// Inside a trailer field line, until its LF.
    TrailerLine,
    /// Saw CR at the start of a line in the trailer section.
    FinalLf,
    /// The body is complete.
    Done,
}

/// Result of one [`ChunkedDecoder::decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes consumed: all of it unless the body ended inside it.
    pub consumed: usize,
    /// The terminating chunk and trailers have been read.
    pub done: bool,
}

/// State of one chunked body in progress.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, then bytes of it still to come.
    remaining: u64,
    /// Bytes of the trailer section so far.
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            remaining: 0,
            trailer_len: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes as much of `input` as possible, calling `on_data` with each
    /// run of body bytes. Stops right after the end of the body, so bytes
    /// beyond it are left unconsumed.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Progress, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let available = input.len() - i;
                let take = usize::try_from(self.remaining).map_or(available, |r| r.min(available));
                on_data(&input[i..i + take]);
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = self.step(b)?;
            if self.state == State::Done {
                return Ok(Progress {
                    consumed: i,
                    done: true,
                });
            }
        }
        Ok(Progress {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    /// Advances the control-line state machine by one byte.
    fn step(&mut self, b: u8) -> Result<State, ChunkedError> {
        Ok(match self.state {
            State::Size { digits } => match hex_value(b) {
                Some(v) => {
                    if digits >= MAX_SIZE_DIGITS {
                        return Err(ChunkedError::SizeTooLong);
                    }
                    self.remaining = self.remaining << 4 | u64::from(v);
                    State::Size { digits: digits + 1 }
                }
                None if digits == 0 => return Err(ChunkedError::InvalidSize(b)),
                None => self.size_tail(b)?,
            },
            State::SizeTail => self.size_tail(b)?,
            State::Extension { len } => match b {
                b'\r' => State::SizeLf,
                b'\n' => self.end_size_line(),
                _ if len >= MAX_EXTENSION_BYTES => return Err(ChunkedError::ExtensionTooLong),
                _ => State::Extension { len: len + 1 },
            },
            State::SizeLf => match b {
                b'\n' => self.end_size_line(),
                _ => return Err(ChunkedError::BareCr(b)),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                b'\n' => State::Size { digits: 0 },
                _ => return Err(ChunkedError::MissingDataCrlf(b)),
            },
            State::DataLf => match b {
                b'\n' => State::Size { digits: 0 },
                _ => return Err(ChunkedError::MissingDataCrlf(b)),
            },
            State::TrailerLineStart => match b {
                b'\r' => State::FinalLf,
                b'\n' => State::Done,
                _ => self.trailer_byte()?,
            },
            State::TrailerLine => match b {
                b'\n' => State::TrailerLineStart,
                _ => self.trailer_byte()?,
            },
            State::FinalLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkedError::BareCr(b)),
            },
            // Data is handled by `decode`; nothing follows Done.
            State::Data | State::Done => self.state,
        })
    }

    fn size_tail(&mut self, b: u8) -> Result<State, ChunkedError> {
        Ok(match b {
            b' ' | b'\t' => State::SizeTail,
            b';' => State::Extension { len: 0 },
            b'\r' => State::SizeLf,
            b'\n' => self.end_size_line(),
            _ => return Err(ChunkedError::InvalidSize(b)),
        })
    }

    fn end_size_line(&mut self) -> State {
        if self.remaining == 0 {
            State::TrailerLineStart
        } else {
            State::Data
        }
    }

    fn trailer_byte(&mut self) -> Result<State, ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILER_BYTES {
            return Err(ChunkedError::TrailerTooLong);
        }
        Ok(State::TrailerLine)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `input` in pieces at the given split points, returning the body
    /// and the total consumed.
    fn decode_split(
        input: &[u8],
        splits: &[usize],
    ) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut consumed = 0;
        let mut points: Vec<usize> = splits.iter().map(|&s| s.min(input.len())).collect();
        points.push(input.len());
        points.sort_unstable();
        let mut start = 0;
        for end in points {
            if end < start {
                continue;
            }
            let progress = decoder.decode(&input[start..end], |d| body.extend_from_slice(d))?;
            consumed += progress.consumed;
            if progress.done {
                return Ok((body, consumed, true));
            }
            start = end;
        }
        Ok((body, consumed, decoder.is_done()))
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        decode_split(input, &[])
    }

    #[test]
    fn simple_body() {
        let input = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let (body, consumed, done) = decode_all(input).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(consumed, input.len());
        assert!(done);
    }

    #[test]
    fn extensions_trailers_and_uppercase_hex() {
        let input = b"A;name=value;x\r\n0123456789\r\n0;last\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
        let (body, consumed, done) = decode_all(input).unwrap();
        assert_eq!(body, b"0123456789");
        assert_eq!(consumed, input.len());
        assert!(done);
    }

    #[test]
    fn bare_lf_and_whitespace_before_extension() {
        let input = b"3 ;x\nabc\n0\n\n";
        let (body, _, done) = decode_all(input).unwrap();
        assert_eq!(body, b"abc");
        assert!(done);
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let input = b"1\r\nx\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
        let (body, consumed, done) = decode_all(input).unwrap();
        assert_eq!(body, b"x");
        assert!(done);
        assert_eq!(consumed, 11);
        assert_eq!(&input[consumed..], b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn every_split_gives_the_same_body() {
        let input = b"4;e=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\n";
        for split in 0..=input.len() {
            let (body, consumed, done) = decode_split(input, &[split]).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "split at {split}");
            assert_eq!(consumed, input.len());
            assert!(done);
        }
    }

    #[test]
    fn incomplete_body_is_not_done() {
        let (body, consumed, done) = decode_all(b"5\r\nhel").unwrap();
        assert_eq!(body, b"hel");
        assert_eq!(consumed, 6);
        assert!(!done);
        let (_, _, done) = decode_all(b"0\r\n").unwrap();
        assert!(!done, "the final CRLF is still missing");
    }

    #[test]
    fn malformed_input_is_rejected() {
        assert_eq!(
            decode_all(b"\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'\r')
        );
        assert_eq!(
            decode_all(b"zz\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'z')
        );
        assert_eq!(
            decode_all(b"5x\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'x')
        );
        assert_eq!(
            decode_all(b"-1\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'-')
        );
        assert_eq!(
            decode_all(b"11111111111111111\r\n").unwrap_err(),
            ChunkedError::SizeTooLong
        );
        assert_eq!(
            decode_all(b"3\r\nabcX").unwrap_err(),
            ChunkedError::MissingDataCrlf(b'X')
        );
        assert_eq!(
            decode_all(b"3\r\nabc\rX").unwrap_err(),
            ChunkedError::MissingDataCrlf(b'X')
        );
        assert_eq!(decode_all(b"3\rX").unwrap_err(), ChunkedError::BareCr(b'X'));
        assert_eq!(
            decode_all(b"0\r\n\rX").unwrap_err(),
            ChunkedError::BareCr(b'X')
        );
        let mut long_ext = b"1;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'e', MAX_EXTENSION_BYTES + 1));
        assert_eq!(
            decode_all(&long_ext).unwrap_err(),
            ChunkedError::ExtensionTooLong
        );
        let mut long_trailer = b"0\r\n".to_vec();
        long_trailer.extend(std::iter::repeat_n(b't', MAX_TRAILER_BYTES + 1));
        assert_eq!(
            decode_all(&long_trailer).unwrap_err(),
            ChunkedError::TrailerTooLong
        );
    }

    #[test]
    fn largest_size_does_not_overflow() {
        let mut decoder = ChunkedDecoder::new();
        let progress = decoder.decode(b"ffffffffffffffff\r\nab", |_| {}).unwrap();
        assert!(!progress.done);
        assert_eq!(decoder.remaining, u64::MAX - 2);
    }

    fn encode(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks.iter().filter(|c| !c.is_empty()) {
            out.extend(format!("{:x}\r\n", chunk.len()).bytes());
            out.extend(chunk);
            out.extend(b"\r\n");
        }
        out.extend(b"0\r\n\r\n");
        out
    }

    proptest! {
        #[test]
        fn round_trips_any_chunking_and_any_reads(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
            splits in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let encoded = encode(&chunks);
            let (body, consumed, done) = decode_split(&encoded, &splits).unwrap();
            prop_assert_eq!(body, chunks.concat());
            prop_assert_eq!(consumed, encoded.len());
            prop_assert!(done);
        }

        #[test]
        fn never_panics_on_garbage(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_all(&input);
        }
    }
}
