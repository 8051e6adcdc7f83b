//! `multipart/form-data` bodies for plans (`multipart:`), encoded as Go's
//! `mime/multipart` writes them, which is what k6 sends for an object body
//! with `http.file()` parts: CRLF lines, a `Content-Disposition` per part
//! (quotes and backslashes escaped) and a `Content-Type` for files. k6
//! writes the parts in Go's map order, which changes from request to
//! request; Volley sorts them by name, one of those orders, always the
//! same.
//!
//! Files are read once at load and shared by every VU. The boundary is
//! drawn once per load (30 random bytes in hex, as Go draws one per
//! request), so a body without placeholders is encoded once and sent as it
//! is by every iteration.

use std::fmt;
use std::sync::Arc;

use super::template::{RenderContext, Template};

/// A `multipart/form-data` body.
#[derive(Clone, PartialEq, Eq)]
pub struct Multipart {
    boundary: String,
    /// Sorted by name.
    parts: Vec<(String, PartValue)>,
}

/// What one part carries.
#[derive(Clone, PartialEq, Eq)]
pub enum PartValue {
    /// A text field.
    Field(Template),
    /// A file.
    File(FilePart),
}

/// A file part: its bytes as read at load, and how it is labelled.
#[derive(Clone, PartialEq, Eq)]
pub struct FilePart {
    pub filename: String,
    pub content_type: String,
    pub data: Arc<[u8]>,
}

impl Multipart {
    /// A body of `parts` (any order; they are sent sorted by name) with a
    /// fresh random boundary.
    pub fn new(mut parts: Vec<(String, PartValue)>) -> Multipart {
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        let boundary = (0..30)
            .map(|_| format!("{:02x}", fastrand::u8(..)))
            .collect();
        Multipart { boundary, parts }
    }

    /// The parts, sorted by name.
    pub fn parts(&self) -> &[(String, PartValue)] {
        &self.parts
    }

    /// The `Content-Type` header value naming this body's boundary.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The encoded body when no field has placeholders.
    pub fn as_static(&self) -> Option<Vec<u8>> {
        let mut fixed = true;
        let mut out = Vec::with_capacity(self.size_hint());
        self.encode(&mut out, |t, out| match t.as_static() {
            Some(text) => out.extend_from_slice(text.as_bytes()),
            None => fixed = false,
        });
        fixed.then_some(out)
    }

    /// Appends the body, fields rendered for `cx`, to `out`; `scratch` is
    /// a reusable buffer for the fields' text.
    pub fn render_into(&self, cx: &RenderContext<'_>, out: &mut Vec<u8>, scratch: &mut String) {
        out.reserve(self.size_hint());
        self.encode(out, |t, out| {
            scratch.clear();
            t.render_into(cx, scratch);
            out.extend_from_slice(scratch.as_bytes());
        });
    }

    fn size_hint(&self) -> usize {
        self.parts
            .iter()
            .map(|(name, value)| {
                let data = match value {
                    PartValue::Field(t) => t.source().len(),
                    PartValue::File(f) => f.data.len() + f.filename.len() + f.content_type.len(),
                };
                data + name.len() + self.boundary.len() + 96
            })
            .sum::<usize>()
            + self.boundary.len()
            + 8
    }

    fn encode(&self, out: &mut Vec<u8>, mut field: impl FnMut(&Template, &mut Vec<u8>)) {
        for (name, value) in &self.parts {
            out.extend_from_slice(b"--");
            out.extend_from_slice(self.boundary.as_bytes());
            out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
            escape_quotes(name, out);
            match value {
                PartValue::Field(template) => {
                    out.extend_from_slice(b"\"\r\n\r\n");
                    field(template, out);
                }
                PartValue::File(file) => {
                    out.extend_from_slice(b"\"; filename=\"");
                    escape_quotes(&file.filename, out);
                    out.extend_from_slice(b"\"\r\nContent-Type: ");
                    out.extend_from_slice(file.content_type.as_bytes());
                    out.extend_from_slice(b"\r\n\r\n");
                    out.extend_from_slice(&file.data);
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(self.boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
    }
}

/// Go's `escapeQuotes`: `\` → `\\`, `"` → `\"`.
fn escape_quotes(text: &str, out: &mut Vec<u8>) {
    for b in text.bytes() {
        if b == b'\\' || b == b'"' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

impl fmt::Debug for Multipart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multipart")
            .field("boundary", &self.boundary)
            .field("parts", &self.parts)
            .finish()
    }
}

impl fmt::Debug for PartValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartValue::Field(t) => f.debug_tuple("Field").field(&t.source()).finish(),
            PartValue::File(file) => f
                .debug_struct("File")
                .field("filename", &file.filename)
                .field("content_type", &file.content_type)
                .field("bytes", &file.data.len())
                .finish(),
        }
    }
}

impl fmt::Debug for FilePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilePart")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("bytes", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> RenderContext<'static> {
        RenderContext {
            vu: 7,
            iter: 0,
            scenario: "default",
            vars: &[],
            row: None,
        }
    }

    fn file(name: &str, data: &[u8]) -> PartValue {
        PartValue::File(FilePart {
            filename: name.to_owned(),
            content_type: "application/octet-stream".to_owned(),
            data: Arc::from(data),
        })
    }

    #[test]
    fn parts_are_sorted_and_framed_as_go_writes_them() {
        let body = Multipart::new(vec![
            ("z".to_owned(), PartValue::Field(Template::literal("last"))),
            ("a\"b".to_owned(), file("x\\y.bin", &[0, 255, 13, 10])),
        ]);
        let b = &body.boundary;
        let mut expected = Vec::new();
        expected.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"a\\\"b\"; filename=\"x\\\\y.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        expected.extend_from_slice(&[0, 255, 13, 10]);
        expected.extend_from_slice(
            format!(
                "\r\n--{b}\r\nContent-Disposition: form-data; name=\"z\"\r\n\r\nlast\r\n--{b}--\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(body.as_static().expect("no placeholders"), expected);
        assert_eq!(
            body.content_type(),
            format!("multipart/form-data; boundary={b}")
        );
        assert_eq!(b.len(), 60);
        assert!(b.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn fields_with_placeholders_render_per_request() {
        let vu = Template::from_parts("${vu}", vec![super::super::template::Part::Vu]);
        let body = Multipart::new(vec![("who".to_owned(), PartValue::Field(vu))]);
        assert!(body.as_static().is_none());
        let (mut out, mut scratch) = (Vec::new(), String::new());
        body.render_into(&cx(), &mut out, &mut scratch);
        let text = String::from_utf8(out).expect("text");
        assert!(text.contains("name=\"who\"\r\n\r\n7\r\n"), "{text}");
    }

    #[test]
    fn every_load_draws_its_own_boundary() {
        let a = Multipart::new(Vec::new());
        let b = Multipart::new(Vec::new());
        assert_ne!(a.boundary, b.boundary);
    }
}
