//! Running one script under k6 or Volley with `--summary-export`, bounded
//! in time and in how many processes run at once, and what the run left
//! behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;

use crate::{PROCESS_SLOTS, RUN_LIMIT};

/// Which program runs a script.
#[derive(Debug, Clone, Copy)]
pub enum Tool<'a> {
    K6(&'a Path),
    Volley,
}

/// What one run left behind.
#[derive(Debug)]
pub struct Run {
    pub tool: &'static str,
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The `--summary-export` document, when one was written.
    pub summary: Option<Value>,
    /// The command line and the ends of stdout and stderr, for messages.
    pub log: String,
}

/// Runs `script` under `tool` with `--summary-export` into `dir`, killed
/// past [`RUN_LIMIT`]. Errors are spawn failures and timeouts.
pub async fn run_tool(
    tool: Tool<'_>,
    script: &Path,
    dir: &Path,
    base: &str,
    env: &[(&str, &str)],
) -> Result<Run, String> {
    let (name, program) = match tool {
        Tool::K6(path) => ("k6", path.to_path_buf()),
        Tool::Volley => ("volley", PathBuf::from(env!("CARGO_BIN_EXE_volley"))),
    };
    let export = dir.join(format!("{name}.json"));
    let mut args: Vec<String> = vec!["run".into(), "--quiet".into()];
    if let Tool::K6(_) = tool {
        args.push("--no-usage-report".into());
    }
    args.push("--summary-export".into());
    args.push(export.display().to_string());
    args.push("-e".into());
    args.push(format!("TARGET_URL={base}"));
    for (key, value) in env {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    args.push(script.display().to_string());

    let _slot = PROCESS_SLOTS
        .acquire()
        .await
        .expect("invariant: the process semaphore is never closed");
    let child = Command::new(&program)
        .args(&args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{name} ({}) does not start: {e}", program.display()))?;
    // On timeout the future is dropped, and with it the child: kill_on_drop.
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| format!("{name} {args:?} did not end within {RUN_LIMIT:?} and was killed"))?
        .map_err(|e| format!("waiting for {name}: {e}"))?;

    let summary = match std::fs::read(&export) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{name} wrote a summary export that is not JSON ({e}): {}",
                export.display()
            )
        })?),
        Err(_) => None,
    };
    let log = format!(
        "$ {name} {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
        args.join(" "),
        tail(&output.stdout),
        tail(&output.stderr)
    );
    Ok(Run {
        tool: name,
        code: output.status.code(),
        summary,
        log,
    })
}

/// The last few kilobytes of a process's output, as text.
fn tail(bytes: &[u8]) -> String {
    const KEEP: usize = 3000;
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(KEEP);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}
