//! Module sources and the files `open()` reads: from disk once per
//! process, bounded in size, then shared by every VU's runtime. On an
//! agent they come only from the script's bundle ([`Sources::sealed`]):
//! a script never reads the agent's own files.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Largest script or local module accepted.
pub const MAX_SOURCE: u64 = 16 * 1024 * 1024;
/// Largest file `open()` reads.
pub const MAX_OPEN_FILE: u64 = 256 * 1024 * 1024;

/// Module sources and opened files, read from disk once per process.
#[derive(Debug, Default)]
pub struct Sources {
    modules: Mutex<HashMap<PathBuf, Arc<str>>>,
    files: Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>,
    /// Everything came with a bundle: a miss is an error, never a disk read.
    sealed: bool,
}

/// What a script read: modules (text) and opened files (bytes), by path.
pub type Snapshot = (
    std::collections::BTreeMap<PathBuf, Arc<str>>,
    std::collections::BTreeMap<PathBuf, Arc<Vec<u8>>>,
);

impl Sources {
    /// Sources that are exactly `modules` and `files` (a fleet agent's).
    pub fn sealed(
        modules: HashMap<PathBuf, Arc<str>>,
        files: HashMap<PathBuf, Arc<Vec<u8>>>,
    ) -> Sources {
        Sources {
            modules: Mutex::new(modules),
            files: Mutex::new(files),
            sealed: true,
        }
    }

    /// Every module and file read so far, to ship with the script.
    pub fn snapshot(&self) -> Snapshot {
        let modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        (
            modules
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect(),
            files
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect(),
        )
    }

    /// The source of the local module at `path`.
    pub fn module(&self, path: &Path) -> Result<Arc<str>, String> {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = modules.get(path) {
            return Ok(Arc::clone(s));
        }
        if self.sealed {
            // A ConfigMap's keys travel as files; any of them may be a module.
            let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(text) = files.get(path).and_then(|b| std::str::from_utf8(b).ok()) {
                let text: Arc<str> = Arc::from(text);
                modules.insert(path.to_path_buf(), Arc::clone(&text));
                return Ok(text);
            }
            return Err(format!(
                "module {} was not sent with the script (only modules its init imports travel to agents)",
                path.display()
            ));
        }
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read module {}: {e}", path.display()))?
            .len();
        if size > MAX_SOURCE {
            return Err(format!(
                "module {} is {size} bytes; the limit is {MAX_SOURCE}",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read module {}: {e}", path.display()))?;
        let text: Arc<str> = Arc::from(text);
        modules.insert(path.to_path_buf(), Arc::clone(&text));
        Ok(text)
    }

    /// The bytes of a file `open()` asked for.
    pub fn file(&self, path: &Path) -> Result<Arc<Vec<u8>>, String> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = files.get(path) {
            return Ok(Arc::clone(f));
        }
        if self.sealed {
            return Err(format!(
                "open(\"{}\"): the file was not sent with the script (files travel to agents when the init context opens them for every VU)",
                path.display()
            ));
        }
        let meta =
            std::fs::metadata(path).map_err(|e| format!("open(\"{}\"): {e}", path.display()))?;
        if meta.is_dir() {
            return Err(format!("open(\"{}\"): is a directory", path.display()));
        }
        if meta.len() > MAX_OPEN_FILE {
            return Err(format!(
                "open(\"{}\"): {} bytes is over the {MAX_OPEN_FILE}-byte limit",
                path.display(),
                meta.len()
            ));
        }
        let bytes =
            std::fs::read(path).map_err(|e| format!("open(\"{}\"): {e}", path.display()))?;
        let bytes = Arc::new(bytes);
        files.insert(path.to_path_buf(), Arc::clone(&bytes));
        Ok(bytes)
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
