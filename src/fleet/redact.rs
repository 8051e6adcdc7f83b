//! What of a test's bundle is kept at rest: the data directory keeps a
//! plan bundle for the test's history, never for running it, so every
//! value that may be a secret is replaced before it is written. `-e`
//! values, setup's captured values and data, the contents of data and
//! upload files, and the values of secret headers in the plan text
//! (`Authorization`, `Cookie`, `Proxy-Authorization`, and the names the
//! plan lists under `secretHeaders`) become `[redacted]`; names, keys and
//! sizes stay, so the history still says what ran. Pure.

use serde_json::Value;

use super::protocol::PlanBundle;

/// What a redacted value reads.
pub const REDACTED: &str = "[redacted]";

/// Header names whose values are always secret.
const SECRET_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// `bundle` as the data directory keeps it.
pub fn bundle_at_rest(bundle: &PlanBundle) -> Value {
    let mut kept = bundle.clone();
    for value in kept.env.values_mut() {
        *value = REDACTED.to_owned();
    }
    for value in kept.files.values_mut() {
        *value = format!("{REDACTED} ({} bytes)", value.len());
    }
    for value in kept.uploads.values_mut() {
        *value = format!("{REDACTED} ({} base64 bytes)", value.len());
    }
    if let Some(values) = &mut kept.setup_values {
        for value in values.values_mut() {
            *value = REDACTED.to_owned();
        }
    }
    if let Some(script) = &mut kept.script {
        for value in script.files.values_mut() {
            *value = format!("{REDACTED} ({} base64 bytes)", value.len());
        }
        if script.setup_data.is_some() {
            script.setup_data = Some(REDACTED.to_owned());
        }
    }
    kept.plan = plan_at_rest(&kept.plan, &kept.format);
    serde_json::to_value(&kept).unwrap_or(Value::Null)
}

/// The plan text with secret header values replaced; re-serialised as
/// JSON when anything was replaced (the layout of the original is lost,
/// its content is not). Text that does not parse is kept out entirely.
pub fn plan_at_rest(text: &str, format: &str) -> String {
    if text.trim().is_empty() || format == "js" {
        return text.to_owned();
    }
    let parsed: Option<Value> = if format == "json" {
        serde_json::from_str(text).ok()
    } else if crate::plan::alias::expands_too_far(text) {
        None
    } else {
        serde_yaml_ng::from_str(text).ok()
    };
    let Some(mut doc) = parsed else {
        return format!("{REDACTED} (the plan text did not parse)");
    };
    let mut names: Vec<String> = SECRET_HEADERS.iter().map(|s| (*s).to_owned()).collect();
    if let Some(listed) = doc.get("secretHeaders").and_then(Value::as_array) {
        names.extend(
            listed
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase),
        );
    }
    if redact_headers(&mut doc, &names) {
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| REDACTED.to_owned())
    } else {
        text.to_owned()
    }
}

/// Replaces, anywhere in `doc`, the values under a `headers` map whose
/// name is in `names` (lower case); true when anything was replaced.
fn redact_headers(doc: &mut Value, names: &[String]) -> bool {
    let mut changed = false;
    match doc {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "headers"
                    && let Value::Object(headers) = value
                {
                    for (name, v) in headers.iter_mut() {
                        if names.contains(&name.to_ascii_lowercase()) && *v != REDACTED {
                            *v = Value::String(REDACTED.to_owned());
                            changed = true;
                        }
                    }
                } else {
                    changed |= redact_headers(value, names);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= redact_headers(item, names);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn bundle(plan: &str) -> PlanBundle {
        PlanBundle {
            plan: plan.to_owned(),
            format: "yaml".into(),
            env: BTreeMap::from([("TOKEN".into(), "s3cr3t-env".into())]),
            files: BTreeMap::from([("users.csv".into(), "user,pass\nann,hunter2\n".into())]),
            uploads: BTreeMap::from([("a.bin".into(), "AAEC".into())]),
            script: None,
            setup_values: Some(BTreeMap::from([("token".into(), "tok-setup".into())])),
        }
    }

    #[test]
    fn secrets_never_reach_the_disk_but_names_and_sizes_do() {
        let plan = r#"
secretHeaders: [X-Api-Key]
flow:
  - get:
      url: http://127.0.0.1:1/
      headers: {Authorization: "Bearer literal-token", X-Api-Key: key-123, X-Trace: visible}
  - batch:
      - {url: "http://127.0.0.1:1/b", headers: {cookie: "sid=cookie-value"}}
"#;
        let kept = bundle_at_rest(&bundle(plan));
        let text = kept.to_string();
        for secret in [
            "s3cr3t-env",
            "hunter2",
            "AAEC",
            "tok-setup",
            "literal-token",
            "key-123",
            "cookie-value",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        for kept_fact in ["TOKEN", "users.csv", "a.bin", "visible", "X-Trace", "token"] {
            assert!(text.contains(kept_fact), "{kept_fact} missing: {text}");
        }
    }

    #[test]
    fn a_plan_without_secret_headers_is_kept_as_written() {
        let plan = "flow:\n  - get: {url: \"http://x/\", headers: {X-Trace: a}}\n";
        assert_eq!(plan_at_rest(plan, "yaml"), plan);
        assert_eq!(
            plan_at_rest("{not yaml: [", "yaml"),
            format!("{REDACTED} (the plan text did not parse)")
        );
    }
}
