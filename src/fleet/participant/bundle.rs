//! Loading a test's bundle exactly as the origin did: its `-e` values and
//! the files it carries, never this agent's own environment or disk.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fleet::protocol::PlanBundle;
use crate::plan::{self, FileSource, Format, LoadOptions, Plan};

/// Why a bundle does not load.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Script(#[from] crate::script::bundle::BundleError),
    #[error("{0}")]
    ScriptOptions(#[from] crate::script::ScriptError),
}

/// Loads a bundle's plan exactly as the origin did: its env and its files,
/// never this agent's own environment.
pub fn load_bundle(bundle: &PlanBundle) -> Result<Plan, BundleError> {
    load_bundle_with_script(bundle).map(|(plan, _)| plan)
}

/// [`load_bundle`], plus the script when the bundle carries one (its init
/// ran once here to read `options`; `__ENV` is the bundle's `-e` values).
pub fn load_bundle_with_script(
    bundle: &PlanBundle,
) -> Result<(Plan, Option<crate::script::Script>), BundleError> {
    if let Some(sb) = &bundle.script {
        let script = sb.load(bundle.env.clone())?;
        let opts = LoadOptions {
            cli_env: bundle.env.clone(),
            ..LoadOptions::default()
        };
        let (plan, _skipped) = crate::script::options::plan(&script, &opts)?;
        return Ok((plan, Some(script)));
    }
    let format = if bundle.format.eq_ignore_ascii_case("json") {
        Format::Json
    } else {
        Format::Yaml
    };
    let opts = LoadOptions {
        cli_env: bundle.env.clone(),
        ..LoadOptions::default()
    };
    Ok((
        plan::parse(&bundle.plan, format, &opts, &BundleFiles(bundle))?,
        None,
    ))
}

/// Data and upload files carried in the bundle, by the path written in
/// the plan.
struct BundleFiles<'a>(&'a PlanBundle);

impl BundleFiles<'_> {
    fn find<'m>(map: &'m BTreeMap<String, String>, path: &Path) -> std::io::Result<&'m String> {
        let key = path.to_string_lossy();
        map.get(key.as_ref())
            .or_else(|| map.get(key.trim_start_matches("./")))
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{key} was not sent with the plan (volley run --agent sends the files a plan names)"),
                )
            })
    }
}

impl FileSource for BundleFiles<'_> {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        Self::find(&self.0.files, path).cloned()
    }

    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        use base64::Engine as _;
        let encoded = Self::find(&self.0.uploads, path)?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the bundle's copy is not base64: {e}"),
                )
            })
    }
}
