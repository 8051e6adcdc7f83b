//! Crash-safe file primitives: whole-file replacement through a temporary
//! file and a rename, and the framing of interval records.
//!
//! A record is `u32 len BE · u64 seq BE · len bytes of encoded snapshot`.
//! Records are only ever appended, so a crash can tear at most the last
//! one; [`decode_records`] reports where the complete records end so that
//! the reader ignores the torn tail and the store can cut it off before
//! appending again.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::StoreError;

/// Bytes before a record's payload: `u32` length and `u64` sequence.
pub const RECORD_HEADER_LEN: usize = 12;

/// Prefix of temporary files; [`is_temporary`] recognises them so that a
/// restart can remove what a crash left behind.
const TEMP_PREFIX: &str = ".tmp-";

/// Makes temporary names unique among the threads of this process (the
/// process id makes them unique among processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name for a file or directory that will be renamed
/// (or removed) right after it is written.
pub fn temporary_name(what: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{what}-{}-{n}", std::process::id())
}

/// True for names made by [`temporary_name`].
pub fn is_temporary(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// Mode of the data directory and of every test directory in it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the store writes.
pub const FILE_MODE: u32 = 0o600;

/// Replaces `path` with `bytes` so that a crash leaves either the old or
/// the new content, never a mix: write a temporary file next to it, flush
/// it to disk, rename it over `path`, flush the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .expect("invariant: store files live inside a test directory");
    let tmp = dir.join(temporary_name(
        &path.file_name().unwrap_or_default().to_string_lossy(),
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(|e| StoreError::io("create", tmp.as_path(), e))?;
        file.write_all(bytes)
            .map_err(|e| StoreError::io("write", tmp.as_path(), e))?;
        file.sync_all()
            .map_err(|e| StoreError::io("flush to disk", tmp.as_path(), e))?;
        fs::rename(&tmp, path).map_err(|e| StoreError::io("rename into place", path, e))
    })();
    if written.is_err() {
        // Best effort: the original error is what the caller needs.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir)
}

/// Flushes a directory's entries (a new or renamed file) to disk.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("flush directory", dir, e))
}

/// One record's bytes, or `None` when the payload is too long for a `u32`
/// length.
pub fn encode_record(seq: u64, payload: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(payload.len()).ok()?;
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    record.extend_from_slice(&len.to_be_bytes());
    record.extend_from_slice(&seq.to_be_bytes());
    record.extend_from_slice(payload);
    Some(record)
}

/// The complete records of an intervals file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// `(seq, payload)` in file order (which is append order).
    pub records: Vec<(u64, Vec<u8>)>,
    /// Bytes covered by complete records: where a torn tail starts.
    pub complete_len: usize,
    /// Bytes after the last complete record (a torn record), 0 if none.
    pub torn_len: usize,
}

/// Splits an intervals file into records. Never fails: a header or payload
/// cut short can only be the last record, torn by a crash, and is left out.
pub fn decode_records(bytes: &[u8]) -> Records {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some((header, rest)) = bytes[at..].split_first_chunk::<RECORD_HEADER_LEN>() {
        let (len, seq) = header.split_at(4);
        let len = u32::from_be_bytes(len.try_into().expect("invariant: 4 bytes"));
        let seq = u64::from_be_bytes(seq.try_into().expect("invariant: 8 bytes"));
        // u32 always fits usize on the targets Volley builds for; a length
        // that does not fit is as torn as one past the end.
        let Ok(len) = usize::try_from(len) else { break };
        let Some(payload) = rest.get(..len) else {
            break;
        };
        records.push((seq, payload.to_vec()));
        at += RECORD_HEADER_LEN + len;
    }
    Records {
        records,
        complete_len: at,
        torn_len: bytes.len() - at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: &[(u64, &[u8])]) -> Vec<u8> {
        records
            .iter()
            .flat_map(|(seq, p)| encode_record(*seq, p).expect("small"))
            .collect()
    }

    #[test]
    fn records_round_trip_including_empty_payloads() {
        let bytes = file(&[(0, b"abc"), (7, b""), (u64::MAX, &[0xff; 300])]);
        assert_eq!(&bytes[..12], &[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
        let r = decode_records(&bytes);
        assert_eq!(
            r.records,
            vec![
                (0, b"abc".to_vec()),
                (7, Vec::new()),
                (u64::MAX, vec![0xff; 300])
            ]
        );
        assert_eq!(r.complete_len, bytes.len());
        assert_eq!(r.torn_len, 0);
    }

    #[test]
    fn every_cut_of_the_last_record_is_ignored() {
        let whole = file(&[(1, b"first"), (2, b"second record")]);
        let first_len = RECORD_HEADER_LEN + 5;
        for cut in first_len..whole.len() {
            let r = decode_records(&whole[..cut]);
            assert_eq!(r.records, vec![(1, b"first".to_vec())], "cut at {cut}");
            assert_eq!(r.complete_len, first_len);
            assert_eq!(r.torn_len, cut - first_len);
        }
        for cut in 0..first_len {
            let r = decode_records(&whole[..cut]);
            assert!(r.records.is_empty());
            assert_eq!(r.torn_len, cut);
        }
    }

    #[test]
    fn a_length_past_the_end_is_a_torn_record() {
        let mut bytes = file(&[(1, b"ok")]);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        bytes.extend_from_slice(&9u64.to_be_bytes());
        bytes.extend_from_slice(b"short");
        let r = decode_records(&bytes);
        assert_eq!(r.records, vec![(1, b"ok".to_vec())]);
        assert_eq!(r.torn_len, RECORD_HEADER_LEN + 5);
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("meta.json");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("readable"), b"two");
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("listable")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["meta.json".to_string()]);
        assert!(is_temporary(&temporary_name("x")));
        assert!(!is_temporary("meta.json"));
    }
}
