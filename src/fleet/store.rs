//! The data directory: each test's record, plan bundle, the intervals an
//! agent ran, and the sealed summary, so that results can be rebuilt when
//! the origin dies and history survives restarts. The newest
//! [`KEEP_TESTS`] finished tests stay; older ones are pruned. Plain
//! `std::fs`, small and crash-safe.
//!
//! ```text
//! <dir>/tests/<id>/meta.json                 TestMeta, replaced atomically
//!                  bundle.json               the plan bundle, written once
//!                  intervals-<agent>.bin     append-only interval records
//!                  summary.json              {"summary": .., "text": ".."}, written once
//! ```
//!
//! Whole files are replaced through a temporary file and a rename, so a
//! crash leaves the old or the new version. Interval files only grow; a
//! crash can tear their last record, which readers ignore and
//! [`Store::open`] cuts off so later appends stay framed. One process owns
//! a data directory; within it a `Store` may be shared between threads.

mod error;
pub(crate) mod files;
mod meta;

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::StoreError;
pub use meta::{
    MAX_AGENT_LEN, MAX_ID_LEN, SEAL_MARGIN, TestMeta, TestPhase, results_deadline_ms, validate_id,
};

use files::{decode_records, encode_record, is_temporary, temporary_name, write_atomic};

const META: &str = "meta.json";
const BUNDLE: &str = "bundle.json";
const SUMMARY: &str = "summary.json";
const INTERVALS_PREFIX: &str = "intervals-";

/// `summary.json`: the sealed summary as data and as the text a person
/// saw, so that history shows both without recomputing.
#[derive(Serialize, Deserialize)]
struct Sealed {
    summary: Value,
    text: String,
}

/// How many finished tests an agent keeps (history, summaries, intervals);
/// older ones are pruned when a test is sealed and when the agent starts.
pub const KEEP_TESTS: usize = 100;

/// A data directory opened by this process.
#[derive(Debug)]
pub struct Store {
    /// `<dir>/tests`: one directory per test.
    tests: PathBuf,
    /// Serialises the check-then-write of write-once files and meta
    /// updates, so two threads cannot both believe they wrote first.
    writes: Mutex<()>,
}

impl Store {
    /// Opens (creating it if needed) the data directory `dir`, then tidies
    /// what a crash may have left: temporary files, half-pruned tests, and
    /// torn last records of unsealed tests' intervals.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let tests = dir.as_ref().join("tests");
        fs::create_dir_all(&tests)
            .map_err(|e| StoreError::io("create directory", tests.as_path(), e))?;
        // Only the agent's user reads its history: plans, names, results.
        // `tests/` holds all of it and is always the agent's own. The data
        // directory itself may be a volume the agent can write but does not
        // own (a Kubernetes emptyDir is root's, mode 0777 or 2775 with
        // fsGroup): then its mode stays the volume's.
        for private in [dir.as_ref(), tests.as_path()] {
            match fs::set_permissions(private, fs::Permissions::from_mode(files::DIR_MODE)) {
                Ok(()) => {}
                Err(e) if private == dir.as_ref() && e.kind() == ErrorKind::PermissionDenied => {
                    tracing::debug!(
                        "data directory {} is not ours to make private ({e}); its tests/ is",
                        private.display()
                    );
                }
                Err(e) => return Err(StoreError::io("make private", private, e)),
            }
        }
        let store = Store {
            tests,
            writes: Mutex::new(()),
        };
        store.recover()?;
        Ok(store)
    }

    /// `<dir>/tests`, where the tests live.
    pub fn tests_dir(&self) -> &Path {
        &self.tests
    }

    /// Records a new test (its directory and `meta.json`).
    pub fn create_test(&self, meta: &TestMeta) -> Result<(), StoreError> {
        let dir = self.dir_of(&meta.id)?;
        let _guard = self.lock();
        match fs::DirBuilder::new().mode(files::DIR_MODE).create(&dir) {
            Ok(()) => {}
            // A directory without `meta.json` is a create that crashed
            // half-way; finish it.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && !dir.join(META).exists() => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists {
                    id: meta.id.clone(),
                    path: dir,
                });
            }
            Err(e) => return Err(StoreError::io("create directory", dir, e)),
        }
        write_json(&dir.join(META), meta)?;
        files::sync_dir(&self.tests)
    }

    /// Replaces the record of an existing test.
    pub fn update_meta(&self, meta: &TestMeta) -> Result<(), StoreError> {
        let dir = self.existing(&meta.id)?;
        let _guard = self.lock();
        write_json(&dir.join(META), meta)
    }

    /// The record of one test.
    pub fn meta(&self, id: &str) -> Result<TestMeta, StoreError> {
        let dir = self.existing(id)?;
        read_meta(&dir, id)
    }

    /// Stores the plan bundle of a test. Written once: repeating it with
    /// the same content succeeds (a retry), different content is refused.
    pub fn put_bundle(&self, id: &str, bundle: &Value) -> Result<(), StoreError> {
        let dir = self.existing(id)?;
        self.write_once(id, "plan bundle", &dir.join(BUNDLE), bundle)
    }

    /// The plan bundle of a test, if stored.
    pub fn bundle(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let dir = self.existing(id)?;
        read_json_opt(&dir.join(BUNDLE), "plan bundle")
    }

    /// Appends one interval (an encoded snapshot) of `agent`, flushed to
    /// disk before returning. A retried append stores a second copy;
    /// readers receive both (the merge ignores repeated sequence numbers).
    pub fn append_interval(
        &self,
        id: &str,
        agent: &str,
        seq: u64,
        snapshot: &[u8],
    ) -> Result<(), StoreError> {
        let dir = self.existing(id)?;
        let path = dir.join(meta::intervals_file_name(agent)?);
        let record = encode_record(seq, snapshot).ok_or_else(|| StoreError::RecordTooLarge {
            seq,
            len: snapshot.len(),
            max: u64::from(u32::MAX),
            path: path.clone(),
        })?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(files::FILE_MODE)
            .open(&path)
            .map_err(|e| StoreError::io("open for appending", path.as_path(), e))?;
        let before = file
            .metadata()
            .map_err(|e| StoreError::io("inspect", path.as_path(), e))?
            .len();
        if let Err(e) = file.write_all(&record).and_then(|()| file.sync_data()) {
            // A partial record would misframe every later one: cut it off.
            // If even that fails, the next open cuts it as a torn tail.
            let _ = file.set_len(before);
            return Err(StoreError::io("append an interval to", path, e));
        }
        if before == 0 {
            files::sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Every complete interval record of `agent` in append order (empty
    /// when the agent stored none, or after [`Store::drop_intervals`]). A
    /// torn last record is left out with a warning.
    pub fn read_intervals(&self, id: &str, agent: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let dir = self.existing(id)?;
        let path = dir.join(meta::intervals_file_name(agent)?);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        let decoded = decode_records(&bytes);
        if decoded.torn_len > 0 {
            tracing::warn!(
                path = %path.display(),
                torn_bytes = decoded.torn_len,
                "ignoring a torn last interval record (a write cut short)"
            );
        }
        Ok(decoded.records)
    }

    /// Seals a test's results: the summary as data and as text, written
    /// once (atomically). Repeating it with the same content succeeds.
    pub fn seal(&self, id: &str, summary: &Value, text: &str) -> Result<(), StoreError> {
        let dir = self.existing(id)?;
        let sealed = Sealed {
            summary: summary.clone(),
            text: text.to_owned(),
        };
        self.write_once(id, "sealed summary", &dir.join(SUMMARY), &sealed)
    }

    /// Replaces a partial seal (see [`TestMeta::partial`]) with the
    /// origin's own summary: the one sealing that may overwrite another.
    /// The caller decides that the summary in place is partial.
    pub fn replace_partial_seal(
        &self,
        id: &str,
        summary: &Value,
        text: &str,
    ) -> Result<(), StoreError> {
        let dir = self.existing(id)?;
        let sealed = Sealed {
            summary: summary.clone(),
            text: text.to_owned(),
        };
        let path = dir.join(SUMMARY);
        let bytes = to_json(&path, "sealed summary", &sealed)?;
        let _guard = self.lock();
        write_atomic(&path, &bytes)
    }

    /// The sealed summary and its text; `None` until sealed.
    pub fn summary(&self, id: &str) -> Result<Option<(Value, String)>, StoreError> {
        let dir = self.existing(id)?;
        let sealed: Option<Sealed> = read_json_opt(&dir.join(SUMMARY), "sealed summary")?;
        Ok(sealed.map(|s| (s.summary, s.text)))
    }

    /// Removes a sealed test's intervals: its summary holds its results.
    /// Refused before sealing.
    pub fn drop_intervals(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.existing(id)?;
        let sealed = dir.join(SUMMARY);
        if !sealed.exists() {
            return Err(StoreError::NotSealed {
                id: id.to_owned(),
                path: sealed,
            });
        }
        for path in interval_files(&dir)? {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", path, e)),
            }
        }
        files::sync_dir(&dir)
    }

    /// Every test's record, newest submission first. A test whose record
    /// cannot be read is skipped with a warning; only an unreadable
    /// `tests/` directory fails the list.
    pub fn list(&self) -> Result<Vec<TestMeta>, StoreError> {
        let entries = fs::read_dir(&self.tests)
            .map_err(|e| StoreError::io("list", self.tests.as_path(), e))?;
        let mut metas = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(dir = %self.tests.display(), error = %e, "skipping an unreadable entry");
                    continue;
                }
            };
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .filter(|n| validate_id(n).is_ok() && !is_temporary(n))
            else {
                if !name.to_string_lossy().starts_with('.') {
                    tracing::warn!(path = %entry.path().display(), "skipping an entry that is not a test id");
                }
                continue;
            };
            if !entry.path().is_dir() {
                tracing::warn!(path = %entry.path().display(), "skipping a file where a test directory belongs");
                continue;
            }
            match read_meta(&entry.path(), id) {
                Ok(meta) => metas.push(meta),
                // A directory whose `meta.json` is not written yet: a
                // create under way (the list takes no lock), or one that
                // crashed half-way and is finished by the next create.
                Err(e @ StoreError::UnknownTest { .. }) => {
                    tracing::debug!(error = %e, "skipping a test being created");
                }
                Err(e) => tracing::warn!(error = %e, "skipping a test whose record cannot be read"),
            }
        }
        metas.sort_by(|a, b| (b.submitted_unix_ms, &b.id).cmp(&(a.submitted_unix_ms, &a.id)));
        Ok(metas)
    }

    /// [`Store::prune`] to [`KEEP_TESTS`], with a warning instead of an
    /// error: pruning must never stand in the way of a test.
    pub fn prune_history(&self) {
        match self.prune(KEEP_TESTS) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(
                    count = removed.len(),
                    "pruned the oldest tests from the data directory"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot prune old tests from the data directory: {e}"),
        }
    }

    /// Removes finished tests (sealed, or ended in a terminal phase) beyond
    /// the newest `keep` of them; tests still pending or running stay.
    /// Returns the removed ids, oldest last.
    pub fn prune(&self, keep: usize) -> Result<Vec<String>, StoreError> {
        let finished = self
            .list()?
            .into_iter()
            .filter(|m| m.phase.is_terminal() || self.tests.join(&m.id).join(SUMMARY).exists());
        let mut removed = Vec::new();
        for meta in finished.skip(keep) {
            self.remove_test(&meta.id)?;
            removed.push(meta.id);
        }
        Ok(removed)
    }

    /// Moves a test out of `tests/<id>` in one rename, then deletes it: a
    /// crash half-way leaves a hidden directory [`Store::open`] removes,
    /// never a half-deleted test in the history.
    fn remove_test(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.dir_of(id)?;
        let trash = self.tests.join(temporary_name(id));
        fs::rename(&dir, &trash).map_err(|e| StoreError::io("move aside", dir.as_path(), e))?;
        fs::remove_dir_all(&trash).map_err(|e| StoreError::io("remove", trash, e))
    }

    /// Marks every test still recorded as under way whose deadline has
    /// passed `now_unix_ms`, and which `running_here` does not claim, as
    /// [`TestPhase::Interrupted`]: its coordinator was lost and no sealed
    /// result will come. Returns their ids.
    pub fn expire_overdue(
        &self,
        now_unix_ms: u64,
        running_here: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let Ok(list) = self.list() else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        for mut meta in list {
            let overdue = meta.deadline_unix_ms.is_some_and(|d| d < now_unix_ms);
            if meta.phase.is_terminal() || !overdue || running_here(&meta.id) {
                continue;
            }
            meta.note = Some(format!(
                "no sealed result reached this agent by the test's deadline (it was {}): its \
                 coordinator was lost",
                meta.phase.as_str()
            ));
            meta.phase = TestPhase::Interrupted;
            match self.update_meta(&meta) {
                Ok(()) => expired.push(meta.id),
                Err(e) => {
                    tracing::warn!(test = %meta.id, error = %e, "cannot mark an overdue test")
                }
            }
        }
        expired
    }

    /// Start-up tidying after a crash (see [`Store::open`]). Problems with
    /// one test are warnings: they must not keep the agent from starting.
    fn recover(&self) -> Result<(), StoreError> {
        let entries = fs::read_dir(&self.tests)
            .map_err(|e| StoreError::io("list", self.tests.as_path(), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_temporary(&name) {
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover");
                }
            } else if path.is_dir() && validate_id(&name).is_ok() {
                if let Err(e) = recover_test(&path) {
                    tracing::warn!(error = %e, "cannot tidy a test after a restart");
                }
                self.interrupt_left_over(&path, &name);
            }
        }
        Ok(())
    }

    /// A test recorded as under way when the store opens was under way in
    /// a process that is gone (one process owns a data directory): its
    /// share here ended then. A sealed result may still arrive and
    /// replaces the mark.
    fn interrupt_left_over(&self, dir: &Path, id: &str) {
        let Ok(mut meta) = read_meta(dir, id) else {
            return;
        };
        if meta.phase.is_terminal() || dir.join(SUMMARY).exists() {
            return;
        }
        tracing::warn!(test = %id, phase = meta.phase.as_str(), "the agent stopped while this test was under way: marked interrupted");
        meta.note = Some(format!(
            "the agent stopped (crash or restart) while the test was {}; its share ended then",
            meta.phase.as_str()
        ));
        meta.phase = TestPhase::Interrupted;
        if let Err(e) = write_json(&dir.join(META), &meta) {
            tracing::warn!(test = %id, error = %e, "cannot mark a test interrupted");
        }
    }

    /// `tests/<id>` for a valid id.
    fn dir_of(&self, id: &str) -> Result<PathBuf, StoreError> {
        validate_id(id)?;
        Ok(self.tests.join(id))
    }

    /// `tests/<id>` of a test that was created.
    fn existing(&self, id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir_of(id)?;
        let meta = dir.join(META);
        if meta.is_file() {
            Ok(dir)
        } else {
            Err(StoreError::UnknownTest {
                id: id.to_owned(),
                path: meta,
            })
        }
    }

    fn write_once<T: Serialize>(
        &self,
        id: &str,
        what: &'static str,
        path: &Path,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = to_json(path, what, value)?;
        let _guard = self.lock();
        match fs::read(path) {
            Ok(existing) if existing == bytes => Ok(()),
            Ok(_) => Err(StoreError::Conflict {
                id: id.to_owned(),
                what,
                path: path.to_owned(),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => write_atomic(path, &bytes),
            Err(e) => Err(StoreError::io("read", path, e)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still good.
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes temporary files and cuts torn interval tails in one test
/// directory (sealed tests keep no intervals worth repairing).
fn recover_test(dir: &Path) -> Result<(), StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))?;
    for entry in entries.flatten() {
        if is_temporary(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| StoreError::io("remove", path, e))?;
        }
    }
    if dir.join(SUMMARY).exists() {
        return Ok(());
    }
    for path in interval_files(dir)? {
        let bytes = fs::read(&path).map_err(|e| StoreError::io("read", path.as_path(), e))?;
        let decoded = decode_records(&bytes);
        if decoded.torn_len == 0 {
            continue;
        }
        tracing::warn!(
            path = %path.display(),
            torn_bytes = decoded.torn_len,
            "cutting off a torn last interval record left by a crash"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open for repair", path.as_path(), e))?;
        let complete = u64::try_from(decoded.complete_len).unwrap_or(u64::MAX);
        file.set_len(complete)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io("truncate a torn record in", path, e))?;
    }
    Ok(())
}

/// The intervals files in a test directory.
fn interval_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))?;
    Ok(entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(INTERVALS_PREFIX) && name.ends_with(".bin")
        })
        .map(|e| e.path())
        .collect())
}

fn read_meta(dir: &Path, id: &str) -> Result<TestMeta, StoreError> {
    let path = dir.join(META);
    let meta: TestMeta =
        read_json_opt(&path, "test meta")?.ok_or_else(|| StoreError::UnknownTest {
            id: id.to_owned(),
            path: path.clone(),
        })?;
    if meta.id != id {
        return Err(StoreError::IdMismatch {
            expected: id.to_owned(),
            found: meta.id,
            path,
        });
    }
    Ok(meta)
}

fn to_json<T: Serialize>(
    path: &Path,
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
        what,
        path: path.to_owned(),
        source,
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_atomic(path, &to_json(path, "test meta", value)?)
}

fn read_json_opt<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StoreError::Json {
            what,
            path: path.to_owned(),
            source,
        })
}
