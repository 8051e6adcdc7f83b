//! Script errors and the k6 exit code each one maps to.

use std::path::PathBuf;

use rquickjs::CaughtError;

/// What can go wrong loading or running a script outside its iterations.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("script {path} is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// A syntax error, an exception or a forbidden call in the init context.
    #[error("{0}")]
    Init(String),
    /// `setup()` or `teardown()` threw.
    #[error("{0}")]
    Lifecycle(String),
    /// `setup()`/`teardown()` ran past `setupTimeout`/`teardownTimeout`.
    #[error("{stage}() execution timed out after {secs} seconds")]
    Timeout { stage: &'static str, secs: u64 },
    /// `setup()` returned something JSON cannot carry.
    #[error("error marshaling setup() data: {0}")]
    SetupData(String),
    /// `options` could not become a plan.
    #[error("{0}")]
    Options(String),
    #[error("script runtime: {0}")]
    Runtime(String),
}

impl ScriptError {
    /// k6's exit code for this error (K6-JS-REFERENCE §8).
    pub fn exit_code(&self) -> u8 {
        match self {
            ScriptError::Timeout { stage: "setup", .. } => 100,
            ScriptError::Timeout { .. } => 101,
            ScriptError::Options(_) => 104,
            ScriptError::Read { .. } | ScriptError::TooLarge { .. } => 104,
            ScriptError::Init(_) | ScriptError::Lifecycle(_) => 107,
            ScriptError::SetupData(_) | ScriptError::Runtime(_) => 255,
        }
    }
}

/// A caught JavaScript error as k6 prints it: message and where.
pub fn describe(e: &CaughtError<'_>) -> String {
    match e {
        CaughtError::Exception(ex) => {
            let message = ex.message().unwrap_or_default();
            let stack = ex.stack().unwrap_or_default();
            let at = stack
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            if at.is_empty() {
                message
            } else {
                format!("{message} ({at})")
            }
        }
        CaughtError::Value(v) => {
            let shown = v
                .ctx()
                .json_stringify(v.clone())
                .ok()
                .flatten()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_else(|| format!("{:?}", v.type_of()));
            format!("{shown} (a thrown value that is not an Error)")
        }
        CaughtError::Error(e) => e.to_string(),
    }
}
