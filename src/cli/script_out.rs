//! The end of a script run: `handleSummary(data)` (its outputs replace the
//! default summary, as in k6) and the tally of iteration exceptions.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::http::HttpClientConfig;
use crate::engine::sink::SinkHandle;
use crate::report::handle_summary::{SummaryContext, data};
use crate::script::ScriptRun;
use crate::script::native::Stage;

/// k6's fixed `handleSummary` time limit.
const HANDLE_SUMMARY_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the script's `handleSummary` if it has one; true when it returned
/// outputs (which were written), so the default summary is not printed.
pub async fn handle_summary(
    run: &ScriptRun,
    export: &serde_json::Value,
    text: &str,
    cx: SummaryContext,
) -> bool {
    if !run.host.script.exports.iter().any(|e| e == "handleSummary") {
        return false;
    }
    run.host.set_summary_text(text);
    let arg = data(export, &cx).to_string();
    let http = match HttpClientConfig::new(&run.host.plan.http) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("ERROR: handleSummary(): {e}");
            return false;
        }
    };
    // Its samples would come after the summary: nobody records them.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = SinkHandle::new(tx, Arc::default()).sink();
    let mut vu = crate::script::ScriptVu::spawn(
        &run.workers,
        Arc::clone(&run.host),
        http,
        0,
        sink,
        Stage::Teardown,
    );
    let outputs = match tokio::time::timeout(
        HANDLE_SUMMARY_TIMEOUT,
        vu.lifecycle("handleSummary", Some(arg)),
    )
    .await
    {
        Ok(Ok(Some(json))) => json,
        Ok(Ok(None)) => return false,
        Ok(Err(e)) => {
            eprintln!("ERROR: {e}");
            return false;
        }
        Err(_) => {
            eprintln!("ERROR: handleSummary() timed out after {HANDLE_SUMMARY_TIMEOUT:?}");
            return false;
        }
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&outputs)
    else {
        eprintln!("ERROR: handleSummary() returned something that is not an object");
        return false;
    };
    for (key, content) in map {
        let bytes: Vec<u8> = match &content {
            serde_json::Value::String(s) => s.clone().into_bytes(),
            serde_json::Value::Object(o) => o
                .get("bytes")
                .and_then(|b| b.as_array())
                .map(|b| {
                    b.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u8)
                        .collect()
                })
                .unwrap_or_default(),
            _ => continue,
        };
        let written = match key.as_str() {
            "stdout" => std::io::stdout().lock().write_all(&bytes),
            "stderr" => std::io::stderr().lock().write_all(&bytes),
            path => std::fs::write(Path::new(path), &bytes),
        };
        if let Err(e) = written {
            eprintln!("ERROR: handleSummary(): cannot write {key}: {e}");
        }
    }
    true
}

/// Exceptions that ended iterations, by message with a count.
pub fn print_errors(run: &ScriptRun, out: &mut dyn Write) -> std::io::Result<()> {
    let errors = run.host.errors();
    if errors.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "  SCRIPT ERRORS (iterations that ended in an exception)"
    )?;
    for (message, count) in &errors {
        writeln!(out, "    {count:>8}  {message}")?;
    }
    writeln!(out)
}
