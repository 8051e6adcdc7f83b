//! A plan's text as it may be kept at rest (a fleet test's history in the
//! data directory): the values of secret headers (`Authorization`,
//! `Cookie`, `Proxy-Authorization`, and the names the plan lists under
//! `secretHeaders`) replaced by [`REDACTED`]. The one place after loading
//! that reads plan text, so it lives with the plan. Pure.

use serde_json::Value;

/// What a redacted value reads.
pub const REDACTED: &str = "[redacted]";

/// Header names whose values are always secret.
const SECRET_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

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
    use super::*;

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
