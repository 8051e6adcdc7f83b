//! A script as it travels to a fleet: the main module, every local module
//! and opened file its init context read (as `volley run` saw them), and
//! `setup()`'s result once the accepting agent ran it. Agents load it with
//! [`Sources::sealed`]: nothing is read from an agent's disk, nothing from
//! its environment (`__ENV` is the bundle's `-e` values).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::error::ScriptError;
use super::host::Script;
use super::sources::{MAX_OPEN_FILE, MAX_SOURCE, Sources};

/// Largest bundle accepted, all modules and files together (the fleet's
/// messages carry at most 8 MiB of JSON; base64 grows files by a third).
pub const MAX_BUNDLE_BYTES: usize = 6 << 20;
/// Most modules and files in one bundle.
const MAX_ENTRIES: usize = 1000;

/// A script and what it needs, by the absolute paths `volley run` read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptBundle {
    /// Path of the main module (a key of `modules`).
    pub main: String,
    pub modules: BTreeMap<String, String>,
    /// Opened files, base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// `setup()`'s JSON result, filled in by the agent that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_data: Option<String>,
}

/// Why a bundle cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "the script and its files are {size} bytes; a fleet test carries at most {MAX_BUNDLE_BYTES}"
    )]
    TooLarge { size: usize },
    #[error("the bundle has {0} modules and files; at most {MAX_ENTRIES}")]
    TooMany(usize),
    #[error("script bundle: {0}")]
    Invalid(String),
    #[error(transparent)]
    Script(#[from] ScriptError),
}

impl ScriptBundle {
    /// Everything `script`'s init read, after [`super::load()`] ran it.
    pub fn from_script(script: &Script) -> Result<ScriptBundle, BundleError> {
        let (modules, files) = script.sources.snapshot();
        let b64 = base64::engine::general_purpose::STANDARD;
        let bundle = ScriptBundle {
            main: script.path.to_string_lossy().into_owned(),
            modules: modules
                .into_iter()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string()))
                .collect(),
            files: files
                .into_iter()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), b64.encode(v.as_slice())))
                .collect(),
            setup_data: None,
        };
        bundle.check_size()?;
        Ok(bundle)
    }

    /// Bytes of sources and encoded files together.
    pub fn size(&self) -> usize {
        self.modules.values().map(String::len).sum::<usize>()
            + self.files.values().map(String::len).sum::<usize>()
            + self.setup_data.as_ref().map_or(0, String::len)
    }

    fn check_size(&self) -> Result<(), BundleError> {
        let size = self.size();
        if size > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge { size });
        }
        let n = self.modules.len() + self.files.len();
        if n > MAX_ENTRIES {
            return Err(BundleError::TooMany(n));
        }
        Ok(())
    }

    /// The script, loaded from the bundle alone (its init runs once to
    /// read `options`, as on the submitting machine); `env` is `__ENV`.
    pub fn load(&self, env: BTreeMap<String, String>) -> Result<Script, BundleError> {
        self.check_size()?;
        if !self.modules.contains_key(&self.main) {
            return Err(BundleError::Invalid(format!(
                "the main module {:?} is not among its modules",
                self.main
            )));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut modules = HashMap::new();
        for (path, text) in &self.modules {
            if text.len() as u64 > MAX_SOURCE || !path.starts_with('/') {
                return Err(BundleError::Invalid(format!(
                    "module {path:?} is not an absolute path to a source of at most {MAX_SOURCE} bytes"
                )));
            }
            modules.insert(PathBuf::from(path), Arc::<str>::from(text.as_str()));
        }
        let mut files = HashMap::new();
        for (path, encoded) in &self.files {
            let bytes = b64
                .decode(encoded)
                .map_err(|e| BundleError::Invalid(format!("file {path:?}: not base64 ({e})")))?;
            if bytes.len() as u64 > MAX_OPEN_FILE {
                return Err(BundleError::Invalid(format!("file {path:?} is too large")));
            }
            files.insert(PathBuf::from(path), Arc::new(bytes));
        }
        let script = Script {
            path: PathBuf::from(&self.main),
            exports: Vec::new(),
            options: serde_json::Value::Object(serde_json::Map::new()),
            env,
            sources: Arc::new(Sources::sealed(modules, files)),
        };
        Ok(super::load::read_options(script)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(main: &str) -> ScriptBundle {
        ScriptBundle {
            main: "/s/main.js".into(),
            modules: [
                ("/s/main.js".to_string(), main.to_string()),
                (
                    "/s/lib.js".to_string(),
                    "export const who = 'lib';\n".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            files: [("/s/data.txt".to_string(), "aGVsbG8=".to_string())]
                .into_iter()
                .collect(),
            setup_data: None,
        }
    }

    #[test]
    fn a_bundle_loads_from_itself_alone() {
        let b = bundle(
            "import { who } from './lib.js';\nconst data = open('./data.txt');\nexport const options = { vus: 2, iterations: 4 };\nexport default function () {}\n",
        );
        let script = b.load(BTreeMap::new()).expect("loads");
        assert_eq!(script.options["vus"], 2);
        assert!(script.exports.iter().any(|e| e == "default"));
        // Nothing outside the bundle is read, not even a file that exists.
        let stray = bundle("const x = open('/etc/hostname');\nexport default function () {}\n");
        let e = stray.load(BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("was not sent with the script"), "{e}");
    }

    #[test]
    fn broken_bundles_are_refused_with_the_reason() {
        let mut b = bundle("export default function () {}\n");
        b.main = "/s/other.js".into();
        assert!(
            b.load(BTreeMap::new())
                .unwrap_err()
                .to_string()
                .contains("main module")
        );
        let mut b = bundle("export default function () {}\n");
        b.files.insert("/s/bad".into(), "***".into());
        assert!(
            b.load(BTreeMap::new())
                .unwrap_err()
                .to_string()
                .contains("not base64")
        );
        let mut b = bundle("export default function () {}\n");
        b.setup_data = Some("x".repeat(MAX_BUNDLE_BYTES));
        assert!(matches!(
            b.load(BTreeMap::new()),
            Err(BundleError::TooLarge { .. })
        ));
    }
}
