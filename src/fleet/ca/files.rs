//! Reading and writing CA and identity files: errors name the file, private keys are created with
//! mode 0600, and existing files are only replaced when the caller explicitly forces it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::CaError;

/// One file to write.
pub(crate) struct Output<'a> {
    /// Destination path.
    path: &'a Path,
    /// Full contents.
    contents: &'a str,
    /// Whether this is key material (mode 0600) rather than a certificate (mode 0644).
    secret: bool,
}

impl<'a> Output<'a> {
    /// A certificate or other public file.
    pub(crate) fn public(path: &'a Path, contents: &'a str) -> Self {
        Output {
            path,
            contents,
            secret: false,
        }
    }

    /// A private key: only the owner may read it.
    pub(crate) fn secret(path: &'a Path, contents: &'a str) -> Self {
        Output {
            path,
            contents,
            secret: true,
        }
    }
}

/// Reads a whole text file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })
}

/// Creates `dir` and any missing parents.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), CaError> {
    fs::create_dir_all(dir).map_err(|source| CaError::Io {
        path: dir.to_path_buf(),
        action: "create directory",
        source,
    })
}

/// Writes every output. Without `force`, nothing is written if any destination already exists.
pub(crate) fn write_all(outputs: &[Output<'_>], force: bool) -> Result<(), CaError> {
    if !force {
        for out in outputs {
            if fs::symlink_metadata(out.path).is_ok() {
                return Err(CaError::Exists {
                    path: out.path.to_path_buf(),
                });
            }
        }
    }
    for out in outputs {
        if force {
            replace(out)?;
        } else {
            create_new(out.path, out)?;
        }
    }
    Ok(())
}

fn options(secret: bool) -> OpenOptions {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    opts
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> CaError {
    let path = path.to_path_buf();
    move |source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CaError::Exists { path }
        } else {
            CaError::Io {
                path,
                action,
                source,
            }
        }
    }
}

/// Creates `path` (failing if it exists) and writes the contents with the right mode.
fn create_new(path: &Path, out: &Output<'_>) -> Result<(), CaError> {
    let mut file = options(out.secret)
        .open(path)
        .map_err(io_error(path, "create"))?;
    file.write_all(out.contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(path, "write"))
}

/// Replaces `out.path` atomically: write a temporary sibling with the right mode, then rename, so a
/// reader never sees a half-written key and an old world-readable mode never survives.
fn replace(out: &Output<'_>) -> Result<(), CaError> {
    let tmp = temp_sibling(out.path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CaError::Io {
                path: tmp,
                action: "remove stale temporary file",
                source,
            });
        }
    }
    create_new(&tmp, out)?;
    fs::rename(&tmp, out.path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        CaError::Io {
            path: out.path.to_path_buf(),
            action: "replace",
            source,
        }
    })
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "volley".to_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
