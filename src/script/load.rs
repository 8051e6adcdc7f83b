//! Loading a script: its init context runs once (`__VU = 0`) to read
//! `options` and what it exports.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::error::ScriptError;
use super::host::Script;
use super::sources::{MAX_SOURCE, Sources, normalize};

/// Reads the script's `options` and exports by running its init context
/// once, with `__VU = 0`.
pub fn load(path: &Path, env: BTreeMap<String, String>) -> Result<Script, ScriptError> {
    let meta = std::fs::metadata(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_SOURCE {
        return Err(ScriptError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_SOURCE,
        });
    }
    let abs = std::path::absolute(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let path = normalize(&abs);
    let sources = Arc::new(Sources::default());
    sources
        .module(&path)
        .map_err(|e| ScriptError::Init(e.to_string()))?;
    let script = Script {
        path,
        exports: Vec::new(),
        options: serde_json::Value::Object(serde_json::Map::new()),
        env,
        sources,
    };
    super::vu::read_options(script)
}
