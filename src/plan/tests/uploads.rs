//! `multipart:` bodies: fields, files read once, and what is refused.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use http::header::CONTENT_TYPE;

use super::super::{Body, FileSource, Format, PartValue, Plan, PlanError, RenderContext, parse};
use super::opts;

/// Byte files from memory, counting reads.
#[derive(Default)]
struct ByteFiles {
    files: BTreeMap<PathBuf, Vec<u8>>,
    reads: Cell<usize>,
}

impl ByteFiles {
    fn with(path: &str, bytes: &[u8]) -> Self {
        ByteFiles {
            files: BTreeMap::from([(PathBuf::from(path), bytes.to_vec())]),
            reads: Cell::new(0),
        }
    }
}

impl FileSource for ByteFiles {
    fn read(&self, _: &Path) -> std::io::Result<String> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.reads.set(self.reads.get() + 1);
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::ErrorKind::NotFound.into())
    }
}

fn load(text: &str, files: &ByteFiles) -> Result<Plan, PlanError> {
    parse(text, Format::Yaml, &opts(), files)
}

const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0, 0xff, b'\r', b'\n'];

fn content_type(plan: &Plan, i: usize) -> String {
    plan.requests[i]
        .headers
        .iter()
        .find(|(n, _)| *n == CONTENT_TYPE)
        .and_then(|(_, v)| v.as_static())
        .expect("a fixed Content-Type")
        .to_owned()
}

#[test]
fn fields_and_files_make_a_multipart_body() {
    let files = ByteFiles::with("/plans/img/logo.png", PNG);
    let plan = load(
        r#"
flow:
  - post:
      url: "http://127.0.0.1:1/upload"
      multipart:
        title: "logo of vu ${vu}"
        image: {file: img/logo.png, contentType: image/png}
        copy: {file: ./img/logo.png, filename: other.bin}
"#,
        &files,
    )
    .expect("loads");
    let Some(Body::Multipart(body)) = &plan.requests[0].body else {
        panic!("a multipart body: {:?}", plan.requests[0].body);
    };
    let names: Vec<&str> = body.parts().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["copy", "image", "title"], "sorted by name, as k6");
    let PartValue::File(image) = &body.parts()[1].1 else {
        panic!("image is a file part");
    };
    assert_eq!(image.filename, "logo.png");
    assert_eq!(image.content_type, "image/png");
    assert_eq!(&image.data[..], PNG);
    let PartValue::File(copy) = &body.parts()[0].1 else {
        panic!("copy is a file part");
    };
    assert_eq!(copy.filename, "other.bin");
    assert_eq!(copy.content_type, "application/octet-stream");
    assert_eq!(
        files.reads.get(),
        1,
        "one file named twice is read once and shared"
    );
    assert!(content_type(&plan, 0).starts_with("multipart/form-data; boundary="));

    // The field has a placeholder: the body renders per request.
    assert!(body.as_static().is_none());
    let cx = RenderContext {
        vu: 3,
        iter: 0,
        scenario: "default",
        vars: &[],
        row: None,
    };
    let (mut out, mut scratch) = (Vec::new(), String::new());
    body.render_into(&cx, &mut out, &mut scratch);
    let png_at = out
        .windows(PNG.len())
        .position(|w| w == PNG)
        .expect("file bytes in the body");
    assert!(png_at > 0);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("name=\"title\"\r\n\r\nlogo of vu 3\r\n"),
        "{text}"
    );
}

#[test]
fn a_content_type_the_plan_sets_is_kept() {
    let files = ByteFiles::with("/plans/a.txt", b"hello");
    let plan = load(
        r#"
flow:
  - post:
      url: "http://127.0.0.1:1/upload"
      headers: {Content-Type: "multipart/mixed; boundary=mine"}
      multipart: {a: {file: a.txt}}
"#,
        &files,
    )
    .expect("loads");
    assert_eq!(content_type(&plan, 0), "multipart/mixed; boundary=mine");
}

#[test]
fn bad_multipart_fields_name_their_path() {
    let big = ByteFiles::with(
        "/plans/big.bin",
        &vec![0; super::super::MAX_UPLOAD_BYTES + 1],
    );
    let files = ByteFiles::with("/plans/a.txt", b"hello");
    let post = |multipart: &str| {
        format!(
            "flow:\n  - post:\n      url: \"http://127.0.0.1:1/\"\n      multipart: {multipart}\n"
        )
    };
    let cases: [(String, &ByteFiles, &str); 8] = [
        (
            post("{doc: {file: missing.pdf}}"),
            &files,
            "flow[0].post.multipart.doc.file: cannot read \"missing.pdf\"",
        ),
        (
            post("{doc: {file: a.txt, contentType: \"\"}}"),
            &files,
            "flow[0].post.multipart.doc.contentType",
        ),
        (
            post("{doc: {file: a.txt, filename: \"a\\nb\"}}"),
            &files,
            "flow[0].post.multipart.doc.filename",
        ),
        (
            post("{doc: {file: a.txt, size: 3}}"),
            &files,
            "flow[0].post.multipart.doc.size: unknown field \"size\"",
        ),
        (
            post("{doc: [a]}"),
            &files,
            "flow[0].post.multipart.doc: got a list, expected text, or a file part",
        ),
        (post("{}"), &files, "flow[0].post.multipart: has no fields"),
        (
            "flow:\n  - post: {url: \"http://127.0.0.1:1/\", body: x, multipart: {a: b}}\n"
                .to_owned(),
            &files,
            "has more than one of `body`, `json`, `form` and `multipart`",
        ),
        (post("{doc: {file: big.bin}}"), &big, "upload files to"),
    ];
    for (text, files, expected) in &cases {
        match load(text, files) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => assert!(
                e.to_string().contains(expected),
                "{text}\nexpected {expected:?} in: {e}"
            ),
        }
    }
}
