//! Content codings (RFC 9110 §8.4): request bodies compressed as k6's
//! `compression` param asks (`gzip`, `deflate`, `br`, `zstd`, a comma list
//! applied in order), and response bodies decoded as k6 does when a
//! check, capture or script reads them (`Content-Encoding: gzip`,
//! `x-gzip`, `deflate`, `br`, `zstd`).
//! Data counters keep the bytes on the wire. Decoding is bounded: a small
//! compressed body cannot grow past [`MAX_DECODED`].

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};

/// Largest decoded response body kept.
pub const MAX_DECODED: u64 = 128 << 20;

/// One coding Volley applies or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    /// The names k6 accepts in `compression`, for messages.
    pub const NAMES: &str = "gzip, deflate, br or zstd";

    /// `gzip`/`x-gzip`, `deflate`, `br` and `zstd`; other codings are not
    /// known.
    pub fn parse(name: &str) -> Option<Coding> {
        let name = name.trim();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("gzip") || is("x-gzip") {
            Some(Coding::Gzip)
        } else if is("deflate") {
            Some(Coding::Deflate)
        } else if is("br") {
            Some(Coding::Brotli)
        } else if is("zstd") {
            Some(Coding::Zstd)
        } else {
            None
        }
    }
}

/// Brotli's quality and window for request bodies: its default quality
/// (11) costs tens of milliseconds per KiB-sized body; 5 compresses about
/// as well as gzip's default at a similar speed.
const BROTLI_QUALITY: u32 = 5;
const BROTLI_WINDOW: u32 = 22;

/// Compresses `body` with each coding of the comma list `codings`, in order.
pub fn compress(codings: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut data = body.to_vec();
    for name in codings.split(',') {
        let coding = Coding::parse(name).ok_or_else(|| {
            format!(
                "compression {:?} is not supported; expected {} (or a comma list of them)",
                name.trim(),
                Coding::NAMES
            )
        })?;
        data = match coding {
            Coding::Gzip => {
                let mut e = GzEncoder::new(Vec::new(), Compression::default());
                e.write_all(&data).and_then(|()| e.finish())
            }
            Coding::Deflate => {
                let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
                e.write_all(&data).and_then(|()| e.finish())
            }
            Coding::Brotli => {
                let mut out = Vec::new();
                let mut e =
                    brotli::CompressorWriter::new(&mut out, 4096, BROTLI_QUALITY, BROTLI_WINDOW);
                let written = e.write_all(&data).and_then(|()| e.flush());
                drop(e);
                written.map(|()| out)
            }
            Coding::Zstd => zstd::encode_all(data.as_slice(), zstd::DEFAULT_COMPRESSION_LEVEL),
        }
        .map_err(|e| format!("compressing the body: {e}"))?;
    }
    Ok(data)
}

/// Removes the codings of a `Content-Encoding` value from `body` (the
/// last applied first), keeping at most `limit` bytes ([`MAX_DECODED`]
/// for responses). `Ok(None)`: nothing to do (no known coding, or
/// `identity`); an unknown coding leaves the body as it came.
pub fn decode(content_encoding: &str, body: &[u8], limit: u64) -> Result<Option<Vec<u8>>, String> {
    let codings: Vec<Coding> = content_encoding
        .split(',')
        .filter(|c| !c.trim().eq_ignore_ascii_case("identity") && !c.trim().is_empty())
        .map(|c| Coding::parse(c).ok_or(()))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    if codings.is_empty() {
        return Ok(None);
    }
    let mut data = body.to_vec();
    for coding in codings.iter().rev() {
        let mut out = Vec::new();
        let reader: Box<dyn Read + '_> = match coding {
            Coding::Gzip => Box::new(GzDecoder::new(data.as_slice())),
            Coding::Deflate => Box::new(ZlibDecoder::new(data.as_slice())),
            Coding::Brotli => Box::new(brotli::Decompressor::new(data.as_slice(), 4096)),
            Coding::Zstd => Box::new(
                zstd::Decoder::new(data.as_slice())
                    .map_err(|e| format!("the body is not valid zstd data: {e}"))?,
            ),
        };
        let n = reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| format!("the body is not valid {coding:?} data: {e}"))?;
        if n as u64 > limit {
            return Err(format!(
                "the decoded body is larger than {limit} bytes; it was left encoded"
            ));
        }
        data = out;
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codings_round_trip_in_order() {
        let body = b"hello hello hello hello".repeat(10);
        for codings in [
            "gzip",
            "deflate",
            "br",
            "zstd",
            "gzip, deflate",
            "deflate,gzip",
            "br, zstd, gzip",
        ] {
            let packed = compress(codings, &body).expect("compresses");
            assert_ne!(packed, body);
            assert_eq!(
                decode(codings, &packed, MAX_DECODED).expect("decodes"),
                Some(body.clone()),
                "{codings}"
            );
        }
        assert_eq!(decode("identity", b"x", MAX_DECODED), Ok(None));
        assert_eq!(
            decode("compress", b"x", MAX_DECODED),
            Ok(None),
            "unknown codings stay as they came"
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(
            compress("lzma", b"x")
                .unwrap_err()
                .contains("\"lzma\" is not supported; expected gzip, deflate, br or zstd")
        );
        for coding in ["br", "zstd"] {
            assert!(
                decode(coding, b"\xff\xfenot compressed", MAX_DECODED).is_err(),
                "{coding}"
            );
        }
        assert!(
            decode("gzip", b"not gzip", MAX_DECODED)
                .unwrap_err()
                .contains("Gzip")
        );
    }

    #[test]
    fn a_zip_bomb_stays_encoded() {
        let huge = vec![0u8; 4 << 20];
        for coding in ["br", "zstd"] {
            let packed = compress(coding, &huge).expect("compresses");
            assert!(
                decode(coding, &packed, 1 << 20)
                    .unwrap_err()
                    .contains("larger than"),
                "{coding}"
            );
        }
        let packed = compress("gzip", &huge).expect("compresses");
        assert!(packed.len() < 64 << 10);
        assert!(
            decode("gzip", &packed, 1 << 20)
                .unwrap_err()
                .contains("larger than")
        );
        assert_eq!(
            decode("gzip", &packed, 4 << 20)
                .expect("fits")
                .map(|b| b.len()),
            Some(4 << 20)
        );
    }
}
