//! What a `LoadTest` runs, read out of a ConfigMap: a plan with its data
//! files (`spec.planFrom`), or a k6 script with its modules and files
//! (`spec.script`). Pure: the caller fetched the ConfigMap.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::ConfigMap;

use super::conditions::Reason;

/// What a LoadTest runs.
pub enum Source {
    Plan(PlanText),
    Script(Box<crate::script::bundle::ScriptBundle>),
}

/// A plan and the files it may reference, as a submit carries them.
pub struct PlanText {
    /// The plan, YAML or JSON.
    pub text: String,
    /// Text files by the path the plan writes (`data.file: users.csv`).
    pub files: BTreeMap<String, String>,
    /// Binary files, base64, by path (for `multipart:` file parts).
    pub uploads: BTreeMap<String, String>,
}

impl PlanText {
    /// A plan without files (`spec.plan`).
    pub fn inline(text: &str) -> PlanText {
        PlanText {
            text: text.to_string(),
            files: BTreeMap::new(),
            uploads: BTreeMap::new(),
        }
    }
}

/// The plan in key `key` of ConfigMap `name`, with every other key as a
/// file the plan may reference by that key (`data: {file: users.csv}`): text
/// keys as data files, `binaryData` keys as upload files.
pub fn plan_from_configmap(
    cm: &ConfigMap,
    name: &str,
    key: &str,
) -> Result<PlanText, (Reason, String)> {
    let text = if let Some(text) = cm.data.as_ref().and_then(|d| d.get(key)) {
        text.clone()
    } else if let Some(bytes) = cm.binary_data.as_ref().and_then(|d| d.get(key)) {
        String::from_utf8(bytes.0.clone()).map_err(|_| {
            (
                Reason::InvalidSpec,
                format!(
                    "spec.planFrom.configMapKeyRef.key: key {key:?} of ConfigMap {name:?} holds \
                     binary data that is not UTF-8 text; store the plan as text"
                ),
            )
        })?
    } else {
        return Err((
            Reason::ReferenceNotFound,
            format!(
                "spec.planFrom.configMapKeyRef.key: ConfigMap {name:?} has no key {key:?} ({})",
                keys_of(cm)
            ),
        ));
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let files = cm
        .data
        .iter()
        .flatten()
        .filter(|(k, _)| *k != key)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let uploads = cm
        .binary_data
        .iter()
        .flatten()
        .filter(|(k, _)| *k != key)
        .map(|(k, v)| (k.clone(), b64.encode(&v.0)))
        .collect();
    Ok(PlanText {
        text,
        files,
        uploads,
    })
}

/// `its keys: a, b` or `it has no keys`, for messages.
pub fn keys_of(cm: &ConfigMap) -> String {
    let mut keys: Vec<&String> = cm.data.iter().flat_map(|d| d.keys()).collect();
    keys.extend(cm.binary_data.iter().flat_map(|d| d.keys()));
    if keys.is_empty() {
        return "it has no keys".to_string();
    }
    let listed: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    format!("its keys: {}", listed.join(", "))
}

/// The directory k6-operator mounts a script's ConfigMap at; the bundle's
/// paths use it, so imports and `open()` resolve as they do there.
const SCRIPT_DIR: &str = "/test";

/// A script ConfigMap as a bundle: `file` is the main module, every other
/// key a file next to it (imported or opened; the agent tells which).
pub fn script_bundle(
    cm: &ConfigMap,
    name: &str,
    file: &str,
) -> Result<crate::script::bundle::ScriptBundle, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let main = cm
        .data
        .as_ref()
        .and_then(|d| d.get(file))
        .cloned()
        .ok_or_else(|| {
            format!(
                "spec.script.configMap.file: ConfigMap {name:?} has no text key {file:?} ({})",
                keys_of(cm)
            )
        })?;
    let mut bundle = crate::script::bundle::ScriptBundle {
        main: format!("{SCRIPT_DIR}/{file}"),
        ..Default::default()
    };
    bundle.modules.insert(bundle.main.clone(), main);
    for (key, text) in cm.data.iter().flatten().filter(|(k, _)| *k != file) {
        bundle
            .files
            .insert(format!("{SCRIPT_DIR}/{key}"), b64.encode(text.as_bytes()));
    }
    for (key, bytes) in cm.binary_data.iter().flatten() {
        bundle
            .files
            .insert(format!("{SCRIPT_DIR}/{key}"), b64.encode(&bytes.0));
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(value: serde_json::Value) -> ConfigMap {
        serde_json::from_value(value).expect("a ConfigMap")
    }

    #[test]
    fn the_other_keys_of_a_plan_configmap_are_its_files() {
        let cm = cm(serde_json::json!({
            "metadata": {"name": "plans"},
            "data": {"smoke.yaml": "vus: 1", "users.csv": "user\nalice\n"},
            "binaryData": {"logo.png": "iVBORw0K"},
        }));
        let plan = plan_from_configmap(&cm, "plans", "smoke.yaml").expect("found");
        assert_eq!(plan.text, "vus: 1");
        assert_eq!(
            plan.files,
            BTreeMap::from([("users.csv".to_string(), "user\nalice\n".to_string())])
        );
        assert_eq!(
            plan.uploads,
            BTreeMap::from([("logo.png".to_string(), "iVBORw0K".to_string())])
        );
        let (reason, message) = plan_from_configmap(&cm, "plans", "nope.yaml")
            .err()
            .expect("no such key");
        assert_eq!(reason, Reason::ReferenceNotFound);
        assert_eq!(
            message,
            "spec.planFrom.configMapKeyRef.key: ConfigMap \"plans\" has no key \"nope.yaml\" \
             (its keys: smoke.yaml, users.csv, logo.png)"
        );
    }
}
