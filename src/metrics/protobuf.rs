//! A minimal Protocol Buffers writer: varints, field keys, length-delimited
//! fields, fixed64 and doubles, packed repeated fields, and nested messages
//! written in place. Enough to hand-encode the few messages Volley sends
//! (OTLP metrics); there is no reader, and no schema: the encoder calling
//! it owns the field numbers.
//!
//! A nested message is written after a placeholder length that is patched
//! once the message is complete ([`Writer::begin`] / [`Writer::end`]), so
//! nothing is encoded twice.

/// Wire types (protobuf encoding).
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// Bytes reserved for a nested message's length: a 5-byte varint holds
/// any length below 2^35, padded with continuation bytes when shorter
/// (valid protobuf: parsers accept non-minimal varints).
const LEN_BYTES: usize = 5;

/// A protobuf message being written.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

/// Where a nested message started (see [`Writer::begin`]).
#[must_use = "a nested message must be ended"]
pub struct Nested(usize);

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// The encoded message.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// An unsigned varint field (`uint32`, `uint64`, `bool`, `enum`).
    pub fn uint(&mut self, field: u32, v: u64) {
        self.key(field, VARINT);
        self.varint(v);
    }

    /// An `int64` field: two's complement, ten bytes when negative.
    pub fn int(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }

    /// A `sint32`/`sint64` field (zig-zag).
    pub fn sint(&mut self, field: u32, v: i64) {
        self.uint(field, zigzag(v));
    }

    /// A packed `repeated sint64` field (nothing when empty).
    pub fn packed_sint(&mut self, field: u32, vs: &[i64]) {
        if vs.is_empty() {
            return;
        }
        let mut packed = Writer::new();
        for v in vs {
            packed.varint(zigzag(*v));
        }
        self.bytes(field, &packed.buf);
    }

    /// A `fixed64` field.
    pub fn fixed64(&mut self, field: u32, v: u64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// An `sfixed64` field.
    pub fn sfixed64(&mut self, field: u32, v: i64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `double` field.
    pub fn double(&mut self, field: u32, v: f64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `bytes` field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// A `string` field.
    pub fn string(&mut self, field: u32, v: &str) {
        self.bytes(field, v.as_bytes());
    }

    /// A packed `repeated fixed64` field (nothing when empty).
    pub fn packed_fixed64(&mut self, field: u32, vs: &[u64]) {
        if vs.is_empty() {
            return;
        }
        self.key(field, LEN);
        self.varint((vs.len() * 8) as u64);
        for v in vs {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A packed `repeated double` field (nothing when empty).
    pub fn packed_double(&mut self, field: u32, vs: &[f64]) {
        if vs.is_empty() {
            return;
        }
        self.key(field, LEN);
        self.varint((vs.len() * 8) as u64);
        for v in vs {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Starts a nested message in `field`; everything written until the
    /// matching [`Writer::end`] is its content.
    pub fn begin(&mut self, field: u32) -> Nested {
        self.key(field, LEN);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
        Nested(at)
    }

    /// Ends a nested message: patches its length in.
    pub fn end(&mut self, nested: Nested) {
        let start = nested.0;
        let mut len = (self.buf.len() - start - LEN_BYTES) as u64;
        for (i, byte) in self.buf[start..start + LEN_BYTES].iter_mut().enumerate() {
            let more = if i + 1 < LEN_BYTES { 0x80 } else { 0 };
            *byte = (len & 0x7f) as u8 | more;
            len >>= 7;
        }
    }
}

/// Zig-zag, as protobuf writes `sint32` and `sint64`.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_as_the_protobuf_encoding_spells_them() {
        let mut w = Writer::new();
        w.uint(1, 150);
        assert_eq!(w.into_bytes(), [0x08, 0x96, 0x01]);
        let mut w = Writer::new();
        w.string(2, "testing");
        assert_eq!(
            w.into_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        let mut w = Writer::new();
        w.fixed64(3, 1);
        w.double(4, 1.5);
        let b = w.into_bytes();
        assert_eq!(&b[..9], &[0x19, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b[9], 0x21);
        assert_eq!(&b[10..], &1.5f64.to_le_bytes());
        let mut w = Writer::new();
        w.packed_fixed64(6, &[1, 2]);
        w.packed_double(7, &[]);
        let b = w.into_bytes();
        assert_eq!(&b[..2], &[0x32, 16]);
        assert_eq!(b.len(), 18);
    }

    #[test]
    fn nested_lengths_are_patched_in() {
        let mut w = Writer::new();
        let outer = w.begin(1);
        let inner = w.begin(2);
        w.uint(1, 1);
        w.end(inner);
        w.end(outer);
        // 1: LEN [5-byte 8] 2: LEN [5-byte 2] 08 01
        assert_eq!(
            w.into_bytes(),
            [
                0x0a, 0x88, 0x80, 0x80, 0x80, 0x00, 0x12, 0x82, 0x80, 0x80, 0x80, 0x00, 0x08, 0x01
            ]
        );
    }

    #[test]
    fn long_nested_messages() {
        let mut w = Writer::new();
        let n = w.begin(1);
        w.bytes(2, &[7; 300]);
        w.end(n);
        let b = w.into_bytes();
        // 300 + key + 2-byte length = 303 = 0b10_0101111
        assert_eq!(&b[1..6], &[0xaf, 0x82, 0x80, 0x80, 0x00]);
        assert_eq!(b.len(), 1 + 5 + 303);
    }

    #[test]
    fn zigzag_as_protobuf_writes_it() {
        assert_eq!(super::zigzag(0), 0);
        assert_eq!(super::zigzag(-1), 1);
        assert_eq!(super::zigzag(1), 2);
        assert_eq!(super::zigzag(i64::MIN), u64::MAX);
    }
}
