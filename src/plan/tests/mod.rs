//! Loader tests through the public entry points: whole plans in, `Plan`s
//! or `PlanError`s out.

mod bad_inputs;
mod executors;
mod flows;
mod fuzz;
mod loading;
mod steps;
mod targets;
mod uploads;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{FileSource, Format, LoadOptions, Plan, PlanError, parse};

/// Data files served from memory, keyed by full path.
#[derive(Default)]
pub(super) struct MemFiles(pub BTreeMap<PathBuf, String>);

impl MemFiles {
    pub fn with(path: &str, text: &str) -> Self {
        MemFiles(BTreeMap::from([(PathBuf::from(path), text.to_string())]))
    }
}

impl FileSource for MemFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

pub(super) fn opts() -> LoadOptions {
    LoadOptions {
        base_dir: PathBuf::from("/plans"),
        ..LoadOptions::default()
    }
}

pub(super) fn yaml(text: &str) -> Result<Plan, PlanError> {
    parse(text, Format::Yaml, &opts(), &MemFiles::default())
}

pub(super) fn yaml_ok(text: &str) -> Plan {
    match yaml(text) {
        Ok(plan) => plan,
        Err(e) => panic!("plan should load, got: {e}\n{text}"),
    }
}

pub(super) fn yaml_err(text: &str) -> String {
    match yaml(text) {
        Ok(_) => panic!("plan should be rejected:\n{text}"),
        Err(e) => e.to_string(),
    }
}
