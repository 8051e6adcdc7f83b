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
pub use crate::plan::at_rest::{REDACTED, plan_at_rest};

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
}
