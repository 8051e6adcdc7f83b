//! Trend histograms on the wire: the standard HdrHistogram V2 format,
//! DEFLATE-compressed (readable by the Java, C and Go implementations).
//!
//! Writing uses hdrhistogram's own serializer. Reading does not hand
//! untrusted bytes straight to hdrhistogram's deserializer, which trusts
//! the lengths inside the payload (it sizes a buffer from a 32-bit field
//! before reading it) and negates a decoded count that may be `i64::MIN`.
//! Instead the payload is inflated here with a cap, its V2 header is
//! checked against limits Volley's own histograms never exceed, and every
//! count is scanned before the deserializer sees the bytes.

use std::io::Read;

use flate2::read::ZlibDecoder;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::metrics::trend::{TREND_MAX_US, TREND_SIGFIG};

/// Cookie of a DEFLATE-compressed V2 histogram.
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// Cookie of the inflated V2 histogram inside it.
const V2_COOKIE: u32 = 0x1c84_9313;
/// Cookie, payload length, normalizing offset, digits, low, high, ratio.
const V2_HEADER_LEN: usize = 40;

/// Largest compressed histogram accepted. A trend over the whole 1 µs to
/// 60 s range compresses to about 13 kB; 1 MiB leaves room for any range
/// Volley records and still bounds a hostile input.
pub const MAX_COMPRESSED_LEN: usize = 1 << 20;
/// Largest inflated histogram accepted: the V2 counts of the widest
/// histogram Volley writes need at most 9 bytes per counter.
const MAX_INFLATED_LEN: usize = 4 << 20;
/// Most samples one decoded histogram may hold (2^53, exact as an f64 and
/// far beyond any test): merged histograms then stay far below the
/// `i64::MAX` per bucket that the V2 format can carry.
pub const MAX_SAMPLES: u64 = 1 << 53;
/// Highest trackable value accepted in a header. A histogram that grew to
/// hold [`TREND_MAX_US`] reports a highest value within 2x of it.
const MAX_HIGH: u64 = TREND_MAX_US << 2;

/// Appends `h` in V2+DEFLATE form to `out`; returns the bytes written.
pub fn encode(h: &Histogram<u64>, out: &mut Vec<u8>) -> usize {
    let mut serializer = V2DeflateSerializer::new();
    match serializer.serialize(h, out) {
        Ok(n) => n,
        // The only failure writing to a Vec is a bucket count above
        // i64::MAX (a histogram saturated by merging absurd inputs): write
        // the same buckets with their counts capped instead.
        Err(_) => {
            let mut capped = Histogram::<u64>::new_from(h);
            capped.auto(true);
            for v in h.iter_recorded() {
                let count = v.count_at_value().min(i64::MAX as u64);
                capped.saturating_record_n(v.value_iterated_to(), count);
            }
            serializer
                .serialize(&capped, out)
                .expect("invariant: counts fit i64 and writing to a Vec cannot fail")
        }
    }
}

/// Reads one V2+DEFLATE histogram (exactly `bytes`), with auto-resize on
/// so it can absorb others. Errors say what was wrong, for a person.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, String> {
    if bytes.len() > MAX_COMPRESSED_LEN {
        return Err(format!(
            "{} bytes, more than the {MAX_COMPRESSED_LEN} accepted",
            bytes.len()
        ));
    }
    let cookie = be_u32(bytes, 0).ok_or("shorter than its 8-byte header")?;
    if cookie != V2_DEFLATE_COOKIE {
        return Err(format!(
            "cookie {cookie:#010x}, expected {V2_DEFLATE_COOKIE:#010x} (V2 + DEFLATE)"
        ));
    }
    let declared = be_u32(bytes, 4).ok_or("shorter than its 8-byte header")? as usize;
    if declared != bytes.len() - 8 {
        return Err(format!(
            "header says {declared} compressed bytes, {} follow",
            bytes.len() - 8
        ));
    }

    let mut inflated = Vec::new();
    ZlibDecoder::new(&bytes[8..])
        .take(MAX_INFLATED_LEN as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| format!("DEFLATE stream is corrupt: {e}"))?;
    if inflated.len() > MAX_INFLATED_LEN {
        return Err(format!("inflates to more than {MAX_INFLATED_LEN} bytes"));
    }
    check_v2(&inflated)?;

    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &inflated[..])
        .map_err(|e| format!("V2 payload rejected: {e}"))?;
    h.auto(true);
    Ok(h)
}

/// Checks an inflated V2 histogram: header fields within Volley's limits,
/// payload length exact, every count a decodable, negatable number.
fn check_v2(b: &[u8]) -> Result<(), String> {
    if b.len() < V2_HEADER_LEN {
        return Err(format!(
            "inflated histogram is {} bytes, shorter than the {V2_HEADER_LEN}-byte V2 header",
            b.len()
        ));
    }
    let field = |at: usize| be_u32(b, at).expect("invariant: header length checked");
    let wide = |at: usize| be_u64(b, at).expect("invariant: header length checked");
    if field(0) != V2_COOKIE {
        return Err(format!(
            "inner cookie {:#010x}, expected {V2_COOKIE:#010x}",
            field(0)
        ));
    }
    let payload = field(4) as usize;
    if payload != b.len() - V2_HEADER_LEN {
        return Err(format!(
            "header says {payload} payload bytes, {} follow",
            b.len() - V2_HEADER_LEN
        ));
    }
    if field(8) != 0 {
        return Err(format!(
            "normalizing offset {} (only 0 is supported)",
            field(8)
        ));
    }
    let digits = field(12);
    if digits > u32::from(TREND_SIGFIG) {
        return Err(format!(
            "{digits} significant digits, at most {TREND_SIGFIG} accepted"
        ));
    }
    let (low, high) = (wide(16), wide(24));
    if low < 1 || high > MAX_HIGH || high < low.saturating_mul(2) {
        return Err(format!(
            "range {low}..{high}, expected 1 <= low and 2*low <= high <= {MAX_HIGH}"
        ));
    }
    if f64::from_bits(wide(32)) != 1.0 {
        return Err(
            "integer-to-double ratio is not 1 (double histograms are not supported)".into(),
        );
    }
    scan_counts(&b[V2_HEADER_LEN..])
}

/// Walks the V2 counts: zig-zag LEB128 numbers of at most 9 bytes (the
/// ninth byte contributes all 8 bits). Rejects a truncated number, the one
/// value (`i64::MIN`) that would overflow when negated into a run of zeros,
/// and more than [`MAX_SAMPLES`] samples in all.
fn scan_counts(mut p: &[u8]) -> Result<(), String> {
    let mut samples: u64 = 0;
    while !p.is_empty() {
        let mut value: u64 = 0;
        let mut used = 0;
        loop {
            let Some(&byte) = p.get(used) else {
                return Err("a bucket count is cut off at the end of the payload".into());
            };
            if used == 8 {
                value |= u64::from(byte) << 56;
                used += 1;
                break;
            }
            value |= u64::from(byte & 0x7f) << (7 * used);
            used += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
        if decoded == i64::MIN {
            return Err("a bucket count is out of range".into());
        }
        if decoded > 0 {
            samples = samples.saturating_add(decoded as u64);
            if samples > MAX_SAMPLES {
                return Err(format!("more than {MAX_SAMPLES} samples"));
            }
        }
        p = &p[used..];
    }
    Ok(())
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let bytes = b.get(at..at + 8)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;
    use crate::metrics::trend::{histograms_equal, new_histogram};

    fn sample_histogram() -> Histogram<u64> {
        let mut h = new_histogram();
        for v in [0, 1, 999, 1_000, 12_345, 60_000_000, TREND_MAX_US] {
            h.record(v).expect("grows");
        }
        h
    }

    /// Wraps a raw V2 body in the compressed framing, like a peer could.
    fn deflate_frame(v2: &[u8]) -> Vec<u8> {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(v2).expect("in memory");
        let body = z.finish().expect("in memory");
        let mut out = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        out.extend((body.len() as u32).to_be_bytes());
        out.extend(body);
        out
    }

    fn v2_header(payload_len: u32, digits: u32, low: u64, high: u64) -> Vec<u8> {
        let mut b = V2_COOKIE.to_be_bytes().to_vec();
        b.extend(payload_len.to_be_bytes());
        b.extend(0u32.to_be_bytes());
        b.extend(digits.to_be_bytes());
        b.extend(low.to_be_bytes());
        b.extend(high.to_be_bytes());
        b.extend(1.0f64.to_bits().to_be_bytes());
        b
    }

    #[test]
    fn round_trip_keeps_every_bucket_and_can_grow() {
        let h = sample_histogram();
        let mut buf = Vec::new();
        let n = encode(&h, &mut buf);
        assert_eq!(n, buf.len());
        let mut back = decode(&buf).expect("valid");
        assert!(histograms_equal(&h, &back));
        assert!(back.is_auto_resize());
        back.record(TREND_MAX_US * 2).expect("auto-resize is on");
    }

    #[test]
    fn empty_histogram_round_trips() {
        let h = new_histogram();
        let mut buf = Vec::new();
        encode(&h, &mut buf);
        let back = decode(&buf).expect("valid");
        assert_eq!(back.len(), 0);
    }

    #[test]
    fn rejects_bad_framing() {
        let mut buf = Vec::new();
        encode(&sample_histogram(), &mut buf);
        assert!(decode(&buf[..5]).unwrap_err().contains("8-byte header"));
        let mut wrong = buf.clone();
        wrong[0] ^= 0xff;
        assert!(decode(&wrong).unwrap_err().contains("cookie"));
        assert!(
            decode(&buf[..buf.len() - 1])
                .unwrap_err()
                .contains("compressed bytes")
        );
        let mut corrupt = buf.clone();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0x55;
        assert!(decode(&corrupt).is_err());
    }

    #[test]
    fn rejects_a_huge_declared_payload_without_allocating_it() {
        // The attack on hdrhistogram's reader: a tiny input that declares a
        // 4 GiB payload.
        let mut v2 = v2_header(u32::MAX, 3, 1, 2);
        v2.push(0x02);
        let err = decode(&deflate_frame(&v2)).unwrap_err();
        assert!(err.contains("payload bytes"), "{err}");
    }

    #[test]
    fn rejects_counts_that_would_overflow_when_negated() {
        // zig-zag of u64::MAX is i64::MIN: nine bytes of all ones.
        let payload = [0xff; 9];
        let mut v2 = v2_header(payload.len() as u32, 3, 1, 2048);
        v2.extend(payload);
        let err = decode(&deflate_frame(&v2)).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn rejects_ranges_and_precisions_volley_never_writes() {
        for (digits, low, high, needle) in [
            (5, 1, 2048, "significant digits"),
            (3, 0, 2048, "range"),
            (3, 1, u64::MAX, "range"),
            (3, 100, 150, "range"),
        ] {
            let v2 = v2_header(0, digits, low, high);
            let err = decode(&deflate_frame(&v2)).unwrap_err();
            assert!(err.contains(needle), "{digits} {low} {high}: {err}");
        }
    }

    #[test]
    fn rejects_a_count_cut_off_at_the_end() {
        let payload = [0x80];
        let mut v2 = v2_header(1, 3, 1, 2048);
        v2.extend(payload);
        let err = decode(&deflate_frame(&v2)).unwrap_err();
        assert!(err.contains("cut off"), "{err}");
    }

    #[test]
    fn rejects_absurd_sample_counts() {
        // Two buckets of 2^52 + 1 samples each: 2^53 + 2 in all.
        let mut payload = Vec::new();
        for _ in 0..2 {
            let mut v = ((1u64 << 52) + 1) << 1;
            while v >= 0x80 {
                payload.push((v as u8 & 0x7f) | 0x80);
                v >>= 7;
            }
            payload.push(v as u8);
        }
        let mut v2 = v2_header(payload.len() as u32, 3, 1, 2048);
        v2.extend(payload);
        let err = decode(&deflate_frame(&v2)).unwrap_err();
        assert!(err.contains("samples"), "{err}");
    }

    #[test]
    fn rejects_oversized_input() {
        let big = vec![0u8; MAX_COMPRESSED_LEN + 1];
        assert!(decode(&big).unwrap_err().contains("accepted"));
    }

    #[test]
    fn rejects_a_zip_bomb() {
        let mut v2 = v2_header((MAX_INFLATED_LEN) as u32, 3, 1, 2048);
        v2.extend(std::iter::repeat_n(0u8, MAX_INFLATED_LEN));
        let framed = deflate_frame(&v2);
        assert!(framed.len() < MAX_COMPRESSED_LEN, "compresses well");
        let err = decode(&framed).unwrap_err();
        assert!(err.contains("inflates to more than"), "{err}");
    }
}
