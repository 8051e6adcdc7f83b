//! Fuzz-style properties: no input makes the loader panic, and every
//! rejection is a message (with a path when the input reached the schema).
//!
//! `arbitrary_text` feeds raw strings; `plan_shaped` builds documents from
//! the plan's own vocabulary (keys, executors, durations, templates) so
//! that most cases get past the parser into compile.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{MemFiles, opts};
use crate::plan::{Format, Overrides, parse};

const CASES: u32 = 2_000;

fn files() -> MemFiles {
    let mut files = MemFiles::with("/plans/d.csv", "user,pass\nann,1\n");
    files
        .0
        .insert("/plans/d.json".into(), r#"[{"user":"ann"}]"#.into());
    files
}

fn load_both(text: &str) {
    for format in [Format::Yaml, Format::Json] {
        if let Err(e) = parse(text, format, &opts(), &files()) {
            assert!(!e.to_string().is_empty());
        }
    }
}

const KEYS: &[&str] = &[
    "vus",
    "duration",
    "iterations",
    "stages",
    "scenarios",
    "thresholds",
    "flow",
    "env",
    "tags",
    "data",
    "timeout",
    "userAgent",
    "summaryTrendStats",
    "discardResponseBodies",
    "executor",
    "startTime",
    "gracefulStop",
    "maxDuration",
    "startVUs",
    "gracefulRampDown",
    "rate",
    "timeUnit",
    "startRate",
    "preAllocatedVUs",
    "maxVUs",
    "target",
    "request",
    "get",
    "post",
    "sleep",
    "group",
    "name",
    "url",
    "method",
    "headers",
    "body",
    "json",
    "check",
    "capture",
    "status",
    "header",
    "bodyContains",
    "pointer",
    "equals",
    "var",
    "regex",
    "min",
    "max",
    "file",
    "mode",
    "format",
    "threshold",
    "abortOnFail",
    "delayAbortEval",
    "main",
    "http_req_duration",
    "checks",
];

const STRINGS: &[&str] = &[
    "1s",
    "0s",
    "250ms",
    "1m30s",
    "-1s",
    "10x",
    "",
    "constant-vus",
    "ramping-vus",
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "per-vu-iterations",
    "shared-iterations",
    "externally-controlled",
    "http://127.0.0.1:1/",
    "http://x/${vu}",
    "${env.X}",
    "${data.user}",
    "${random(1,2)}",
    "${tok",
    "${a}",
    "$${x}",
    "p(95)<200",
    "rate<0.01",
    "avg<",
    "/a/b",
    "~",
    "(",
    "d.csv",
    "d.json",
    "sequential",
    "unique-per-vu",
    "GET",
    "a::b",
    "é",
    "\u{0}",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..300).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_string())),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn plan_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|entries| {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.to_string(), v);
                }
                Value::Object(map)
            }),
        ]
    })
}

/// A top-level map whose keys are plan keys, to reach compile often.
fn plan_document() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), plan_value()), 0..6).prop_map(|entries| {
        let mut map = Map::new();
        for (k, v) in entries {
            map.insert(k.to_string(), v);
        }
        Value::Object(map)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,160}") {
        load_both(&text);
    }

    #[test]
    fn yaml_punctuation_never_panics(text in "[-:{}\\[\\],&*!|>'\"#%@ \n a-z0-9$]{0,120}") {
        load_both(&text);
    }

    #[test]
    fn plan_shaped_documents_never_panic(doc in plan_document(), vus in prop::option::of(0u64..5)) {
        let json = doc.to_string();
        load_both(&json);
        if let Ok(yaml) = serde_yaml_ng::to_string(&doc) {
            let mut o = opts();
            o.overrides = Overrides { vus, ..Overrides::default() };
            let _ = parse(&yaml, Format::Yaml, &o, &files());
        }
    }
}
