//! What can go wrong in the data directory, each error naming the path and
//! the operation so that a person can look at the file.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A data directory operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A test id that could escape `tests/` or is not a plain name.
    #[error(
        "invalid test id {id:?}: expected 1 to {max} characters from A-Z, a-z, 0-9, '.', '_' \
         and '-', and not \".\" or \"..\"",
        max = super::meta::MAX_ID_LEN
    )]
    InvalidId { id: String },

    /// An agent id that cannot name an intervals file.
    #[error("invalid agent id {agent:?}: {reason}")]
    InvalidAgent { agent: String, reason: &'static str },

    /// The file system refused an operation.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What Volley was doing (`create directory`, `rename`, ...).
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A JSON file does not hold what it should.
    #[error("{} is not a valid {what}: {source}", path.display())]
    Json {
        /// What the file should hold (`test meta`, `sealed summary`).
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// `create_test` for an id that is already in the store.
    #[error("test {id} already exists in {}", path.display())]
    AlreadyExists { id: String, path: PathBuf },

    /// An operation on a test that was never created (or was pruned).
    #[error("test {id} is not in the store (no {})", path.display())]
    UnknownTest { id: String, path: PathBuf },

    /// A write-once file (`bundle.json`, `summary.json`) already holds
    /// different content; a retry with the same content succeeds.
    #[error("{what} of test {id} was already written with different content ({})", path.display())]
    Conflict {
        id: String,
        what: &'static str,
        path: PathBuf,
    },

    /// `drop_intervals` before `seal`: the intervals are the only copy of
    /// the test's results.
    #[error("test {id} is not sealed ({} is missing): its intervals are its only results", path.display())]
    NotSealed { id: String, path: PathBuf },

    /// A `meta.json` that names another test than its directory.
    #[error("{} names test {found:?}, but its directory is {expected:?}", path.display())]
    IdMismatch {
        expected: String,
        found: String,
        path: PathBuf,
    },

    /// An interval larger than a record's `u32` length can frame.
    #[error("interval {seq} of {len} bytes does not fit a record (at most {max} bytes) in {}", path.display())]
    RecordTooLarge {
        seq: u64,
        len: usize,
        max: u64,
        path: PathBuf,
    },
}

impl StoreError {
    /// An I/O error with its operation and path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
