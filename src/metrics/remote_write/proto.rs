//! The four protobuf messages of Prometheus remote write 1.0, encoded by
//! hand (`prometheus/prompb/remote.proto` and `types.proto`):
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
//!                        repeated Histogram histograms = 4; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }
//! message Histogram    { uint64 count_int = 1; double sum = 3; sint32 schema = 4;
//!                        double zero_threshold = 5; uint64 zero_count_int = 6;
//!                        repeated BucketSpan positive_spans = 11;
//!                        repeated sint64 positive_deltas = 12; int64 timestamp = 15; }
//! message BucketSpan   { sint32 offset = 1; uint32 length = 2; }
//! ```
//!
//! Only what a sender writes (native histograms: integer counts, positive
//! buckets); the decoder exists for tests and reads samples only.

use crate::metrics::protobuf::Writer;

/// One series and its samples; labels sorted by name, `__name__` among
/// them, as the specification asks.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub labels: Vec<(String, String)>,
    /// (value, Unix milliseconds), ascending in time.
    pub samples: Vec<(f64, i64)>,
    /// Native histograms (Prometheus' sparse, exponential buckets).
    pub histograms: Vec<NativeHistogram>,
}

/// A native histogram with integer counts.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeHistogram {
    pub count: u64,
    pub sum: f64,
    /// Buckets grow by 2^(2^-schema).
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    /// (offset from the previous span's end, or the first index; length).
    pub positive_spans: Vec<(i32, u32)>,
    /// The first bucket's count, then each bucket's difference to the one
    /// before.
    pub positive_deltas: Vec<i64>,
    /// Unix milliseconds.
    pub timestamp: i64,
}

/// A `WriteRequest` holding `series`.
pub fn write_request(series: &[TimeSeries]) -> Vec<u8> {
    let mut out = Writer::new();
    for s in series {
        let mut ts = Writer::new();
        for (name, value) in &s.labels {
            let mut label = Writer::new();
            if !name.is_empty() {
                label.string(1, name);
            }
            if !value.is_empty() {
                label.string(2, value);
            }
            ts.bytes(1, &label.into_bytes());
        }
        for (value, timestamp) in &s.samples {
            let mut sample = Writer::new();
            sample.double(1, *value);
            if *timestamp != 0 {
                sample.int(2, *timestamp);
            }
            ts.bytes(2, &sample.into_bytes());
        }
        for h in &s.histograms {
            ts.bytes(4, &histogram(h));
        }
        out.bytes(1, &ts.into_bytes());
    }
    out.into_bytes()
}

fn histogram(h: &NativeHistogram) -> Vec<u8> {
    let mut out = Writer::new();
    out.uint(1, h.count);
    out.double(3, h.sum);
    out.sint(4, i64::from(h.schema));
    out.double(5, h.zero_threshold);
    out.uint(6, h.zero_count);
    for (offset, length) in &h.positive_spans {
        let mut span = Writer::new();
        span.sint(1, i64::from(*offset));
        span.uint(2, u64::from(*length));
        out.bytes(11, &span.into_bytes());
    }
    out.packed_sint(12, &h.positive_deltas);
    out.int(15, h.timestamp);
    out.into_bytes()
}

/// Wire types the decoder reads.
const LEN: u8 = 2;
const FIXED64: u8 = 1;
const VARINT: u8 = 0;

/// Decodes a `WriteRequest` (tests, and checking the encoder); `None` on
/// anything malformed.
pub fn decode_write_request(mut buf: &[u8]) -> Option<Vec<TimeSeries>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (field, body) = next_len(&mut buf)?;
        if field != 1 {
            return None;
        }
        out.push(decode_series(body)?);
    }
    Some(out)
}

fn decode_series(mut buf: &[u8]) -> Option<TimeSeries> {
    let mut s = TimeSeries {
        labels: Vec::new(),
        samples: Vec::new(),
        histograms: Vec::new(),
    };
    while !buf.is_empty() {
        let (field, mut body) = next_len(&mut buf)?;
        match field {
            1 => {
                let (mut name, mut value) = (String::new(), String::new());
                while !body.is_empty() {
                    let (f, text) = next_len(&mut body)?;
                    let text = String::from_utf8(text.to_vec()).ok()?;
                    match f {
                        1 => name = text,
                        2 => value = text,
                        _ => return None,
                    }
                }
                s.labels.push((name, value));
            }
            2 => {
                let (mut value, mut ts) = (0.0, 0i64);
                while !body.is_empty() {
                    let k = read_varint(&mut body)?;
                    match (k >> 3, (k & 7) as u8) {
                        (1, FIXED64) => {
                            let (b, rest) = body.split_first_chunk::<8>()?;
                            value = f64::from_bits(u64::from_le_bytes(*b));
                            body = rest;
                        }
                        (2, VARINT) => ts = read_varint(&mut body)? as i64,
                        _ => return None,
                    }
                }
                s.samples.push((value, ts));
            }
            // Histograms are not read back (tests check them elsewhere).
            4 => {}
            _ => return None,
        }
    }
    Some(s)
}

fn next_len<'a>(buf: &mut &'a [u8]) -> Option<(u64, &'a [u8])> {
    let k = read_varint(buf)?;
    if (k & 7) as u8 != LEN {
        return None;
    }
    let n = usize::try_from(read_varint(buf)?).ok()?;
    if n > buf.len() {
        return None;
    }
    let (body, rest) = buf.split_at(n);
    *buf = rest;
    Some((k >> 3, body))
}

fn read_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bytes_of_a_small_request() {
        let req = write_request(&[TimeSeries {
            labels: vec![("__name__".into(), "up".into())],
            samples: vec![(1.0, 1000)],
            histograms: Vec::new(),
        }]);
        // timeseries{labels{name:"__name__" value:"up"} samples{value:1 timestamp:1000}}
        let mut want = vec![0x0a, 0x1e, 0x0a, 0x0e, 0x0a, 0x08];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x12, 0x02]);
        want.extend_from_slice(b"up");
        want.extend_from_slice(&[0x12, 0x0c, 0x09]);
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(req, want);
    }

    #[test]
    fn round_trips_through_the_decoder() {
        let series = vec![
            TimeSeries {
                labels: vec![
                    ("__name__".into(), "k6_http_reqs_total".into()),
                    ("status".into(), "200".into()),
                ],
                samples: vec![(12.0, 1_796_564_470_441), (f64::NAN, 1_796_564_475_441)],
                histograms: Vec::new(),
            },
            TimeSeries {
                labels: vec![("__name__".into(), "k6_vus".into())],
                samples: vec![(-0.5, -3)],
                histograms: Vec::new(),
            },
        ];
        let back = decode_write_request(&write_request(&series)).expect("decodes");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].labels, series[0].labels);
        assert_eq!(back[0].samples[0], series[0].samples[0]);
        assert!(back[0].samples[1].0.is_nan());
        assert_eq!(back[1], series[1]);
        assert_eq!(decode_write_request(&[0x0a, 0x05, 0x01]), None);
    }

    #[test]
    fn a_native_histogram_in_known_bytes() {
        let out = histogram(&NativeHistogram {
            count: 3,
            sum: 0.5,
            schema: 3,
            zero_threshold: 0.0,
            zero_count: 0,
            positive_spans: vec![(-2, 2)],
            positive_deltas: vec![2, -1],
            timestamp: 7,
        });
        let mut want = vec![0x08, 0x03, 0x19];
        want.extend_from_slice(&0.5f64.to_le_bytes());
        want.extend_from_slice(&[0x20, 0x06, 0x29]);
        want.extend_from_slice(&0.0f64.to_le_bytes());
        want.extend_from_slice(&[0x30, 0x00]);
        // span{offset: -2 (zig-zag 3), length: 2}, deltas packed [2 -> 4, -1 -> 1]
        want.extend_from_slice(&[0x5a, 0x04, 0x08, 0x03, 0x10, 0x02]);
        want.extend_from_slice(&[0x62, 0x02, 0x04, 0x01]);
        want.extend_from_slice(&[0x78, 0x07]);
        assert_eq!(out, want);
    }
}
