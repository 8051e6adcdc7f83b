//! `multipart:` bodies: text fields compiled to templates, file parts read
//! once per load through the plan's [`FileSource`] (a file named by
//! several requests is read once) within [`MAX_UPLOAD_BYTES`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::HeaderValue;

use super::super::data::FileSource;
use super::super::error::PlanError;
use super::super::multipart::{FilePart, Multipart, PartValue};
use super::super::raw::{OrderedMap, RawPart};
use super::super::template_parse::parse_template;
use super::flow::FlowContext;

/// The most bytes all of a plan's upload files may hold together: they
/// are kept in memory for the whole test.
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// The files read for uploads so far, by full path.
pub(crate) struct Uploads<'a> {
    files: &'a dyn FileSource,
    base_dir: &'a Path,
    read: RefCell<BTreeMap<PathBuf, Arc<[u8]>>>,
}

impl<'a> Uploads<'a> {
    pub fn new(files: &'a dyn FileSource, base_dir: &'a Path) -> Self {
        Uploads {
            files,
            base_dir,
            read: RefCell::default(),
        }
    }

    /// The bytes of `written` (relative to the plan's directory).
    fn read(&self, written: &str, path: &str) -> Result<Arc<[u8]>, PlanError> {
        if written.trim().is_empty() {
            return Err(PlanError::invalid(path, written, "a file path"));
        }
        let full = self.base_dir.join(written);
        if let Some(data) = self.read.borrow().get(&full) {
            return Ok(Arc::clone(data));
        }
        let data: Arc<[u8]> = self
            .files
            .read_bytes(&full)
            .map_err(|e| PlanError::field(path, format!("cannot read {written:?}: {e}")))?
            .into();
        let total = self.read.borrow().values().map(|d| d.len()).sum::<usize>() + data.len();
        if total > MAX_UPLOAD_BYTES {
            return Err(PlanError::field(
                path,
                format!(
                    "{written:?} brings the plan's upload files to {total} bytes; at most \
                     {MAX_UPLOAD_BYTES} are kept in memory"
                ),
            ));
        }
        self.read.borrow_mut().insert(full, Arc::clone(&data));
        Ok(data)
    }
}

/// Compiles `multipart:` at `path` (`flow[0].post.multipart`).
pub(crate) fn compile(
    fields: &OrderedMap<RawPart>,
    path: &str,
    cx: &FlowContext<'_>,
) -> Result<Multipart, PlanError> {
    let mut parts = Vec::with_capacity(fields.0.len());
    for (name, raw) in &fields.0 {
        let part_path = format!("{path}.{name}");
        check_header_text(name, &part_path, "a field name")?;
        let value = match raw {
            RawPart::Field(text) => {
                PartValue::Field(parse_template(text, &cx.scope, &part_path)?.template)
            }
            RawPart::File(file) => {
                let data = cx.uploads.read(&file.file, &format!("{part_path}.file"))?;
                let filename = match &file.filename {
                    Some(name) => name.clone(),
                    None => Path::new(&file.file)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| file.file.clone()),
                };
                check_header_text(&filename, &format!("{part_path}.filename"), "a file name")?;
                let content_type = file
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let type_path = format!("{part_path}.contentType");
                if content_type.trim().is_empty() || HeaderValue::from_str(&content_type).is_err() {
                    return Err(PlanError::invalid(
                        type_path,
                        &content_type,
                        "a media type like image/png",
                    ));
                }
                PartValue::File(FilePart {
                    filename,
                    content_type,
                    data,
                })
            }
        };
        parts.push((name.clone(), value));
    }
    if parts.is_empty() {
        return Err(PlanError::field(path, "has no fields; add at least one"));
    }
    Ok(Multipart::new(parts))
}

/// Names go into a part's header line: no line breaks or other controls.
fn check_header_text(text: &str, path: &str, what: &str) -> Result<(), PlanError> {
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(PlanError::invalid(
            path,
            text,
            format!("{what} without line breaks or control characters"),
        ));
    }
    Ok(())
}
