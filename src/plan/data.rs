//! The plan's data file (`data: {file, format, mode}`): CSV with a header
//! row, or JSON as an array of flat objects, loaded into a [`DataSet`].
//!
//! Cells are text. In JSON, strings are taken as they are and numbers and
//! booleans as their JSON text; the columns are the union of all keys,
//! sorted, and every object must have every column. An empty file is an
//! error: iterations would have no row to read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::PlanError;
use super::raw::{DataFormat, RawData, RawDataMode};
use super::types::{DataMode, DataSet};

/// Reads data files; the loader never touches the file system itself, so
/// tests and the fleet can supply files from memory.
pub trait FileSource {
    /// A text file (the data file).
    fn read(&self, path: &Path) -> std::io::Result<String>;

    /// A file's bytes (uploads); by default the text file's.
    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.read(path).map(String::into_bytes)
    }
}

/// [`FileSource`] over the local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsFiles;

impl FileSource for FsFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// A [`FileSource`] that keeps what it read, so a plan sent to a fleet
/// carries exactly the files its load used.
pub struct Recorded<'a> {
    inner: &'a dyn FileSource,
    read: std::cell::RefCell<ReadFiles>,
}

/// What a [`Recorded`] source read, by full path.
#[derive(Debug, Default)]
pub struct ReadFiles {
    /// Text files (the data file).
    pub text: BTreeMap<PathBuf, String>,
    /// Byte files (uploads).
    pub bytes: BTreeMap<PathBuf, Vec<u8>>,
}

impl<'a> Recorded<'a> {
    pub fn new(inner: &'a dyn FileSource) -> Self {
        Recorded {
            inner,
            read: Default::default(),
        }
    }

    /// Everything read.
    pub fn into_files(self) -> ReadFiles {
        self.read.into_inner()
    }
}

impl FileSource for Recorded<'_> {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        let text = self.inner.read(path)?;
        self.read
            .borrow_mut()
            .text
            .insert(path.to_path_buf(), text.clone());
        Ok(text)
    }

    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let bytes = self.inner.read_bytes(path)?;
        self.read
            .borrow_mut()
            .bytes
            .insert(path.to_path_buf(), bytes.clone());
        Ok(bytes)
    }
}

/// Templates refer to columns by a `u16` index.
const MAX_COLUMNS: usize = u16::MAX as usize;

/// Loads the `data` section: resolves the path against `base_dir`, reads
/// it through `files` and parses it by format (default: by extension,
/// `.json` → JSON, anything else → CSV).
pub(crate) fn load(
    raw: &RawData,
    base_dir: &Path,
    files: &dyn FileSource,
) -> Result<DataSet, PlanError> {
    let written = PathBuf::from(&raw.file);
    if raw.file.trim().is_empty() {
        return Err(PlanError::invalid("data.file", &raw.file, "a file path"));
    }
    let full = base_dir.join(&written);
    let text = files.read(&full).map_err(|source| PlanError::DataRead {
        file: written.clone(),
        source,
    })?;
    let format = raw.format.unwrap_or_else(|| format_for(&written));
    let (columns, rows) = match format {
        DataFormat::Csv => parse_csv(&text),
        DataFormat::Json => parse_json(&text),
    }
    .map_err(|message| PlanError::Data {
        file: written.clone(),
        message,
    })?;
    let mode = match raw.mode.unwrap_or(RawDataMode::Sequential) {
        RawDataMode::Sequential => DataMode::Sequential,
        RawDataMode::Random => DataMode::Random,
        RawDataMode::UniquePerVu => DataMode::UniquePerVu,
    };
    Ok(DataSet {
        columns,
        rows,
        mode,
    })
}

fn format_for(path: &Path) -> DataFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("json") => DataFormat::Json,
        _ => DataFormat::Csv,
    }
}

type Table = (Vec<String>, Vec<Vec<String>>);

/// CSV with a header row; every row has as many fields as the header.
pub(crate) fn parse_csv(text: &str) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(csv_message)?.clone();
    let columns: Vec<String> = header.iter().map(str::to_string).collect();
    check_columns(&columns)?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_message)?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    if rows.is_empty() {
        return Err("has no rows after the header; a data file needs at least one row".into());
    }
    Ok((columns, rows))
}

fn csv_message(e: csv::Error) -> String {
    let line = e.position().map(|p| p.line());
    match (e.kind(), line) {
        (
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            },
            Some(line),
        ) => format!("line {line} has {len} fields, expected {expected_len} like the header"),
        (_, Some(line)) => format!("line {line}: {e}"),
        _ => e.to_string(),
    }
}

fn check_columns(columns: &[String]) -> Result<(), String> {
    if columns.is_empty() || columns.iter().all(String::is_empty) {
        return Err("has no header row naming the columns".into());
    }
    if columns.len() > MAX_COLUMNS {
        return Err(format!(
            "has {} columns, at most {MAX_COLUMNS} are supported",
            columns.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in columns.iter().enumerate() {
        if c.trim().is_empty() {
            return Err(format!("column {} has an empty name", i + 1));
        }
        if !seen.insert(c) {
            return Err(format!("column \"{}\" appears twice", c.escape_debug()));
        }
    }
    Ok(())
}

/// A JSON array of flat objects.
pub(crate) fn parse_json(text: &str) -> Result<Table, String> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err("must be a JSON array of objects, like [{\"user\": \"a\"}]".into());
    };
    if items.is_empty() {
        return Err("is an empty array; a data file needs at least one row".into());
    }
    let mut objects = Vec::with_capacity(items.len());
    let mut names = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(format!("item [{i}] is not an object"));
        };
        names.extend(map.keys().cloned());
        objects.push(map);
    }
    let columns: Vec<String> = names.into_iter().collect();
    check_columns(&columns)?;
    let mut rows = Vec::with_capacity(objects.len());
    for (i, map) in objects.into_iter().enumerate() {
        let mut row = Vec::with_capacity(columns.len());
        for column in &columns {
            let cell = match map.get(column) {
                None => {
                    return Err(format!(
                        "item [{i}] has no \"{}\" (every object needs every column)",
                        column.escape_debug()
                    ));
                }
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(_) => {
                    return Err(format!(
                        "item [{i}].{column} is not a string, number or boolean"
                    ));
                }
            };
            row.push(cell);
        }
        rows.push(row);
    }
    Ok((columns, rows))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct MemFiles(BTreeMap<PathBuf, String>);

    impl FileSource for MemFiles {
        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    fn raw(file: &str) -> RawData {
        RawData {
            file: file.into(),
            format: None,
            mode: None,
        }
    }

    #[test]
    fn csv_with_header() {
        let (cols, rows) = parse_csv("user,pass\nann,1\nbob,\"x,y\"\n").expect("parses");
        assert_eq!(cols, vec!["user", "pass"]);
        assert_eq!(rows, vec![vec!["ann", "1"], vec!["bob", "x,y"]]);
    }

    #[test]
    fn csv_mistakes() {
        let cases = [
            ("user,pass\nann\n", "line 2 has 1 fields, expected 2"),
            ("user,pass\n", "has no rows"),
            ("", "has no header row"),
            ("user,user\na,b\n", "column \"user\" appears twice"),
            ("user,\na,b\n", "column 2 has an empty name"),
        ];
        for (text, want) in cases {
            let err = parse_csv(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn json_rows() {
        let (cols, rows) =
            parse_json(r#"[{"user":"ann","id":1,"ok":true},{"id":2,"user":"bob","ok":false}]"#)
                .expect("parses");
        assert_eq!(cols, vec!["id", "ok", "user"]);
        assert_eq!(rows[0], vec!["1", "true", "ann"]);
        assert_eq!(rows[1], vec!["2", "false", "bob"]);
    }

    #[test]
    fn json_mistakes() {
        let cases = [
            ("{}", "must be a JSON array"),
            ("[]", "empty array"),
            ("[1]", "item [0] is not an object"),
            (r#"[{"a":1},{"b":2}]"#, "item [0] has no \"b\""),
            (r#"[{"a":{"x":1}}]"#, "item [0].a is not a string"),
            (r#"[{"a":null}]"#, "item [0].a is not a string"),
            ("[", "is not valid JSON"),
        ];
        for (text, want) in cases {
            let err = parse_json(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn load_resolves_against_base_dir_and_picks_format_by_extension() {
        let files = MemFiles(BTreeMap::from([
            (
                PathBuf::from("/plans/users.json"),
                r#"[{"user":"ann"}]"#.to_string(),
            ),
            (
                PathBuf::from("/plans/users.csv"),
                "user\nann\nbob\n".to_string(),
            ),
        ]));
        let set = load(&raw("users.json"), Path::new("/plans"), &files).expect("loads");
        assert_eq!(set.rows, vec![vec!["ann"]]);
        assert_eq!(set.mode, DataMode::Sequential);
        let mut r = raw("users.csv");
        r.mode = Some(RawDataMode::UniquePerVu);
        let set = load(&r, Path::new("/plans"), &files).expect("loads");
        assert_eq!(set.rows.len(), 2);
        assert_eq!(set.mode, DataMode::UniquePerVu);
        let e = load(&raw("nope.csv"), Path::new("/plans"), &files)
            .expect_err("missing")
            .to_string();
        assert!(e.starts_with("data.file: cannot read \"nope.csv\""), "{e}");
        let mut r = raw("users.csv");
        r.format = Some(DataFormat::Json);
        let e = load(&r, Path::new("/plans"), &files)
            .expect_err("csv read as json")
            .to_string();
        assert!(
            e.starts_with("data.file: \"users.csv\": is not valid JSON"),
            "{e}"
        );
    }
}
