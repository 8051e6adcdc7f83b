//! A script's `options` → the typed plan: k6's option names map onto the
//! plan document's (they are the same vocabulary); options Volley does not
//! have yet are reported and left out rather than silently changing what
//! the test does.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::ScriptError;
use super::host::Script;
use crate::plan::{LoadOptions, Plan};

/// Top-level options the plan takes as they are.
const PLAN_KEYS: [&str; 25] = [
    "vus",
    "duration",
    "iterations",
    "stages",
    "scenarios",
    "thresholds",
    "discardResponseBodies",
    "insecureSkipTLSVerify",
    "userAgent",
    "noConnectionReuse",
    "summaryTrendStats",
    "tags",
    "timeout",
    "maxRedirects",
    "noCookiesReset",
    "hosts",
    "tlsAuth",
    "tlsVersion",
    "tlsCipherSuites",
    "dns",
    "localIPs",
    "rps",
    "systemTags",
    "batch",
    "batchPerHost",
];

/// k6 options with no effect on what Volley measures (output, cloud,
/// console settings): accepted without a word.
const IGNORED: [&str; 7] = [
    "ext",
    "cloud",
    "summaryTimeUnit",
    "noUsageReport",
    "consoleOutput",
    "setupTimeout",
    "teardownTimeout",
];

/// Builds the plan; returns it with the names of options left out.
pub fn plan(script: &Script, load: &LoadOptions) -> Result<(Plan, Vec<String>), ScriptError> {
    for key in ["setupTimeout", "teardownTimeout"] {
        let ok = match script.options.get(key) {
            None => true,
            Some(Value::String(t)) => crate::plan::parse_duration(t).is_ok(),
            Some(Value::Number(n)) => n.as_f64().is_some_and(|ms| ms.is_finite() && ms >= 0.0),
            Some(_) => false,
        };
        if !ok {
            let got = script
                .options
                .get(key)
                .map(Value::to_string)
                .unwrap_or_default();
            return Err(ScriptError::Options(format!(
                "options.{key}: got {got}, expected a duration like \"60s\" or a number of milliseconds"
            )));
        }
    }
    let mut doc = Map::new();
    let mut skipped = Vec::new();
    if let Value::Object(options) = &script.options {
        for (k, v) in options {
            if PLAN_KEYS.contains(&k.as_str()) {
                doc.insert(k.clone(), scenarios_without_k6_only(k, v.clone()));
            } else if !IGNORED.contains(&k.as_str()) {
                skipped.push(k.clone());
            }
        }
    }
    let plan =
        crate::plan::load::from_script_options(Value::Object(doc), script.exports.clone(), load)
            .map_err(|e| ScriptError::Options(format!("options.{e}")))?;
    Ok((plan, skipped))
}

/// Scenario keys k6 has that do not change the load (`options` under a
/// scenario) are dropped.
fn scenarios_without_k6_only(key: &str, v: Value) -> Value {
    if key != "scenarios" {
        return v;
    }
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(name, sc)| match sc {
                    Value::Object(mut s) => {
                        s.remove("options");
                        (name, Value::Object(s))
                    }
                    other => (name, other),
                })
                .collect(),
        ),
        other => other,
    }
}

/// `__ENV` for a run: the process environment, then `-e` values over it.
pub fn env(
    process: &BTreeMap<String, String>,
    cli: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = process.clone();
    env.extend(cli.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}
