use std::collections::BTreeMap;

use ::kube::Resource;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn full_test() -> LoadTest {
    let mut spec = LoadTestSpec::inline("vus: 1\nflow:\n  - request:\n      url: http://svc/\n");
    spec.selector
        .match_labels
        .insert("region".into(), "eu-west-1".into());
    spec.selector
        .match_expressions
        .push(LabelSelectorRequirement {
            key: "zone".into(),
            operator: "NotIn".into(),
            values: vec!["eu-west-1c".into()],
        });
    spec.min_agents = Some(3);
    spec.lead_time = Some("5s".into());
    spec.env.insert("TARGET_URL".into(), "http://svc".into());
    let mut lt = LoadTest::new("smoke", spec);
    lt.metadata.namespace = Some("volley".into());
    lt.status = Some(LoadTestStatus {
        phase: Some(Phase::Failed),
        claimed_by: Some("node-a".into()),
        test_id: Some("t-42".into()),
        start_time: Some("2026-11-23T17:30:00Z".into()),
        agents: Some(3),
        req_per_sec: Some(1234.5),
        p95_ms: Some(87.25),
        thresholds: vec![
            ThresholdStatus {
                key: "http_req_duration".into(),
                source: "p(95)<80".into(),
                ok: false,
                observed: Some(87.25),
            },
            ThresholdStatus {
                key: "http_req_failed".into(),
                source: "rate<0.01".into(),
                ok: true,
                observed: None,
            },
        ],
        summary: Some("http_reqs......: 74070".into()),
        message: Some("1 of 2 thresholds failed".into()),
        observed_generation: Some(1),
        ..LoadTestStatus::default()
    });
    lt
}

fn config_map_spec(name: &str, key: &str) -> LoadTestSpec {
    LoadTestSpec {
        plan: None,
        plan_from: Some(PlanSource {
            config_map_key_ref: ConfigMapKeyRef {
                name: name.into(),
                key: key.into(),
            },
        }),
        script: None,
        fleet: None,
        selector: LabelSelector::default(),
        min_agents: None,
        wait_for_agents: None,
        lead_time: None,
        outputs: Vec::new(),
        outputs_by: None,
        env: BTreeMap::new(),
        env_value_from: BTreeMap::new(),
        env_from: Vec::new(),
        run_id: None,
        ttl_seconds_after_finished: None,
    }
}

/// The `openAPIV3Schema` of the only version, as JSON.
fn schema() -> Value {
    let crd = serde_json::to_value(crd()).expect("invariant: a CRD serializes to JSON");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Walks every schema node with its path, depth first.
fn walk<'a>(node: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), node));
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(child, format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, format!("{path}[]"), out);
    }
    if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(extra, format!("{path}.*"), out);
    }
}

#[test]
fn round_trips_through_json_and_yaml() {
    let lt = full_test();
    let json = serde_json::to_string(&lt).expect("serialize JSON");
    let back: LoadTest = serde_json::from_str(&json).expect("parse JSON");
    assert_eq!(back, lt);

    let yaml = serde_yaml_ng::to_string(&lt).expect("serialize YAML");
    let back: LoadTest = serde_yaml_ng::from_str(&yaml).expect("parse YAML");
    assert_eq!(back, lt);
}

#[test]
fn wire_names_are_camel_case() {
    let v = serde_json::to_value(full_test()).expect("serialize");
    assert_eq!(v["apiVersion"], "volley.dev/v1alpha1");
    assert_eq!(v["kind"], "LoadTest");
    assert_eq!(v["spec"]["minAgents"], 3);
    assert_eq!(v["spec"]["leadTime"], "5s");
    assert_eq!(v["spec"]["selector"]["matchLabels"]["region"], "eu-west-1");
    assert_eq!(
        v["spec"]["selector"]["matchExpressions"],
        json!([{"key": "zone", "operator": "NotIn", "values": ["eu-west-1c"]}])
    );
    assert_eq!(v["spec"]["env"]["TARGET_URL"], "http://svc");
    let status = &v["status"];
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["claimedBy"], "node-a");
    assert_eq!(status["testId"], "t-42");
    assert_eq!(status["startTime"], "2026-11-23T17:30:00Z");
    assert_eq!(status["reqPerSec"], 1234.5);
    assert_eq!(status["p95Ms"], 87.25);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["thresholds"][0]["source"], "p(95)<80");
    assert!(status["thresholds"][1].get("observed").is_none());

    let from = serde_json::to_value(config_map_spec("plans", "smoke.yaml")).expect("serialize");
    assert_eq!(
        from,
        json!({"planFrom": {"configMapKeyRef": {"name": "plans", "key": "smoke.yaml"}}})
    );
}

#[test]
fn minimal_manifest_parses_with_defaults() {
    let yaml = r#"
apiVersion: volley.dev/v1alpha1
kind: LoadTest
metadata:
  name: smoke
spec:
  planFrom:
    configMapKeyRef: {name: plans, key: smoke.yaml}
"#;
    let lt: LoadTest = serde_yaml_ng::from_str(yaml).expect("parse");
    assert_eq!(lt.spec, config_map_spec("plans", "smoke.yaml"));
    assert!(lt.status.is_none());
    assert_eq!(
        lt.spec.plan_source(),
        Ok(PlanOrigin::ConfigMap {
            name: "plans",
            key: "smoke.yaml"
        })
    );
}

#[test]
fn crd_identity() {
    let crd = crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("loadtests.volley.dev"));
    assert_eq!(crd.spec.group, "volley.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "LoadTest");
    assert_eq!(crd.spec.names.plural, "loadtests");
    assert_eq!(crd.spec.names.short_names, Some(vec!["lt".to_string()]));
    assert_eq!(crd.spec.versions.len(), 1);
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.served && v.storage);
    assert_eq!(LoadTest::api_version(&()), "volley.dev/v1alpha1");
}

#[test]
fn status_subresource_is_enabled() {
    let crd = crd();
    let sub = crd.spec.versions[0]
        .subresources
        .as_ref()
        .expect("subresources present");
    assert!(sub.status.is_some(), "status subresource missing");
    assert!(sub.scale.is_none());
}

#[test]
fn printcolumns_point_at_schema_fields() {
    let crd = crd();
    let cols = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .expect("printer columns present");
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Phase", "Agents", "Req/s", "P95", "Test", "Age"]);

    let schema = schema();
    for col in &cols {
        let path = col.json_path.trim_start_matches('.');
        if path == "metadata.creationTimestamp" {
            assert_eq!(col.type_, "date");
            continue;
        }
        let mut node = &schema;
        for part in path.split('.') {
            node = &node["properties"][part];
        }
        let field_type = node["type"].as_str().unwrap_or_else(|| {
            panic!(
                "column {} points at {}, not in the schema",
                col.name, col.json_path
            )
        });
        assert_eq!(field_type, col.type_, "column {}", col.name);
    }
}

#[test]
fn schema_is_structural_and_camel_case() {
    let schema = schema();
    let mut nodes = Vec::new();
    walk(&schema, String::new(), &mut nodes);
    assert!(
        nodes.len() > 20,
        "schema walk found only {} nodes",
        nodes.len()
    );
    for (path, node) in nodes {
        assert!(node.get("type").is_some(), "{path}: no type");
        for banned in ["$ref", "anyOf", "oneOf", "allOf", "definitions", "$defs"] {
            assert!(node.get(banned).is_none(), "{path}: has {banned}");
        }
        let last = path.rsplit('.').next().unwrap_or_default();
        assert!(!last.contains('_'), "{path}: not camelCase");
    }
}

#[test]
fn schema_enforces_one_plan_and_bounds() {
    let schema = schema();
    let spec = &schema["properties"]["spec"];
    let rules = spec["x-kubernetes-validations"]
        .as_array()
        .expect("CEL rules on spec");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0]["rule"],
        "(has(self.plan) ? 1 : 0) + (has(self.planFrom) ? 1 : 0) + (has(self.script) ? 1 : 0) == 1"
    );
    assert_eq!(
        spec["properties"]["script"]["properties"]["configMap"]["required"],
        json!(["file", "name"])
    );
    assert_eq!(spec["properties"]["minAgents"]["minimum"], 1.0);
    assert_eq!(spec["properties"]["plan"]["minLength"], 1);
    let phases = schema["properties"]["status"]["properties"]["phase"]["enum"].clone();
    assert_eq!(
        phases,
        json!([
            "Pending", "Claimed", "Starting", "Running", "Passed", "Failed", "Aborted", "Error"
        ])
    );
}

#[test]
fn lead_time_pattern_accepts_k6_durations_only() {
    let schema = schema();
    let pattern = schema["properties"]["spec"]["properties"]["leadTime"]["pattern"]
        .as_str()
        .expect("leadTime pattern");
    let re = regex::Regex::new(pattern).expect("pattern compiles");
    for ok in ["2s", "500ms", "1m30s", "1.5s", "250us", "3µs", "1h"] {
        assert!(re.is_match(ok), "{ok} should match");
    }
    for bad in ["", "2", "2 s", "soon", "-1s", "2sec", "s"] {
        assert!(!re.is_match(bad), "{bad:?} should not match");
    }
}

#[test]
fn yaml_starts_with_header_and_parses_back() {
    let yaml = crd_yaml();
    assert!(yaml.starts_with("# Generated by `volley crd`"));
    assert!(yaml.ends_with('\n'));
    let back: CustomResourceDefinition = serde_yaml_ng::from_str(&yaml).expect("parse back");
    assert_eq!(back, crd());
}

#[test]
fn plan_source_inline() {
    let spec = LoadTestSpec::inline("vus: 1");
    assert_eq!(spec.plan_source(), Ok(PlanOrigin::Inline("vus: 1")));
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn plan_source_rejects_none_and_both() {
    let mut spec = LoadTestSpec::inline("vus: 1");
    spec.plan = None;
    let err = spec.plan_source().expect_err("no plan");
    assert_eq!(err, CrdError::NoPlan);
    let msg = err.to_string();
    assert!(
        msg.contains("spec.plan") && msg.contains("spec.planFrom"),
        "{msg}"
    );

    let mut spec = config_map_spec("plans", "smoke.yaml");
    spec.plan = Some("vus: 1".into());
    let err = spec.plan_source().expect_err("two plans");
    let msg = err.to_string();
    assert!(
        msg.contains("both") && msg.contains("\"plans\"") && msg.contains("\"smoke.yaml\""),
        "{msg}"
    );
}

#[test]
fn plan_source_rejects_blank_fields() {
    let err = LoadTestSpec::inline("  \n")
        .plan_source()
        .expect_err("blank");
    assert!(err.to_string().starts_with("spec.plan: is empty"), "{err}");

    let err = config_map_spec("", "k").plan_source().expect_err("no name");
    assert!(
        err.to_string()
            .starts_with("spec.planFrom.configMapKeyRef.name: is empty"),
        "{err}"
    );

    let err = config_map_spec("plans", " ")
        .plan_source()
        .expect_err("no key");
    assert!(
        err.to_string()
            .starts_with("spec.planFrom.configMapKeyRef.key: is empty"),
        "{err}"
    );
}

#[test]
fn validate_rejects_zero_min_agents() {
    let mut spec = LoadTestSpec::inline("vus: 1");
    spec.min_agents = Some(0);
    let err = spec.validate().expect_err("zero agents");
    assert_eq!(err, CrdError::ZeroMinAgents);
    assert!(
        err.to_string().starts_with("spec.minAgents: got 0"),
        "{err}"
    );
    spec.min_agents = Some(1);
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn selector_matches_subsets_of_agent_labels() {
    let labels: BTreeMap<String, String> = [("region", "eu"), ("zone", "eu-a"), ("pool", "load")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut spec = LoadTestSpec::inline("vus: 1");
    assert!(spec.selects(&labels, "n1"), "empty selector selects all");
    let wanted = &mut spec.selector.match_labels;
    wanted.insert("region".into(), "eu".into());
    assert!(spec.selects(&labels, "n1"));
    spec.selector
        .match_labels
        .insert("zone".into(), "eu-b".into());
    assert!(!spec.selects(&labels, "n1"));
    spec.selector
        .match_labels
        .insert("zone".into(), "eu-a".into());
    spec.selector
        .match_labels
        .insert("gpu".into(), "yes".into());
    assert!(!spec.selects(&labels, "n1"), "missing label does not match");
}

fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    }
}

#[test]
fn match_expressions_select_as_in_kubernetes() {
    let labels: BTreeMap<String, String> = [("region", "eu"), ("pool", "load")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut spec = LoadTestSpec::inline("vus: 1");
    spec.selector.match_expressions = vec![
        expression("region", "In", &["eu", "us"]),
        expression("gpu", "DoesNotExist", &[]),
        expression("pool", "Exists", &[]),
        expression("agent", "NotIn", &["n2"]),
    ];
    assert_eq!(spec.validate(), Ok(()));
    assert!(spec.selects(&labels, "n1"));
    assert!(!spec.selects(&labels, "n2"), "agent is the node id");
    spec.selector.match_expressions[0] = expression("region", "NotIn", &["eu"]);
    assert!(!spec.selects(&labels, "n1"));
}

#[test]
fn bad_selectors_name_the_field_path_and_value() {
    let with = |selector: LabelSelector| {
        let mut spec = LoadTestSpec::inline("vus: 1");
        spec.selector = selector;
        spec.validate().expect_err("invalid selector").to_string()
    };
    let exprs = |list: Vec<LabelSelectorRequirement>| LabelSelector {
        match_expressions: list,
        ..LabelSelector::default()
    };
    assert_eq!(
        with(exprs(vec![
            expression("region", "In", &["eu"]),
            expression("zone", "Exist", &[])
        ])),
        "spec.selector.matchExpressions[1].operator: got \"Exist\", expected one of In, NotIn, \
         Exists, DoesNotExist"
    );
    assert_eq!(
        with(exprs(vec![expression("region", "In", &[])])),
        "spec.selector.matchExpressions[0].values: is empty, expected at least one value with \
         operator In"
    );
    assert_eq!(
        with(exprs(vec![expression("gpu", "Exists", &["yes"])])),
        "spec.selector.matchExpressions[0].values: got [\"yes\"], expected none with operator \
         Exists (it looks at the key only)"
    );
    let mut labels = LabelSelector::default();
    labels
        .match_labels
        .insert("region".into(), "eu west".into());
    assert!(
        with(labels).starts_with("spec.selector.matchLabels.region: got \"eu west\", expected"),
    );
    // The flat map of earlier versions is refused, not read as "select all".
    let old: LoadTestSpec =
        serde_json::from_value(json!({"plan": "vus: 1", "selector": {"pool": "load"}}))
            .expect("parses");
    assert_eq!(
        old.validate().expect_err("old selector form").to_string(),
        "spec.selector.pool: got \"load\", expected only matchLabels and matchExpressions \
         (agent labels go under matchLabels: {pool: \"load\"})"
    );
    assert!(!old.selects(&BTreeMap::new(), "n1"));
}

#[test]
fn phases_serialize_as_kubernetes_style_words() {
    let all = [
        Phase::Pending,
        Phase::Claimed,
        Phase::Starting,
        Phase::Running,
        Phase::Passed,
        Phase::Failed,
        Phase::Aborted,
        Phase::Error,
    ];
    let words: Vec<Value> = all
        .iter()
        .map(|p| serde_json::to_value(p).expect("serialize"))
        .collect();
    assert_eq!(words[4], "Passed");
    let terminal: Vec<Phase> = all.into_iter().filter(|p| p.is_terminal()).collect();
    assert_eq!(
        terminal,
        [Phase::Passed, Phase::Failed, Phase::Aborted, Phase::Error]
    );
    assert!(serde_json::from_value::<Phase>(json!("passed")).is_err());
}

fn arb_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_.-]{0,12}", ".{0,20}", 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any spec survives the YAML round trip the apiserver and kubectl put it through.
    #[test]
    fn any_spec_round_trips(
        plan in prop::option::of(".{0,200}"),
        from in prop::option::of(("[a-z0-9-]{1,20}", "[a-zA-Z0-9._-]{1,20}")),
        selector in arb_map(),
        env in arb_map(),
        min_agents in prop::option::of(any::<u32>()),
        lead_time in prop::option::of("[0-9]{1,3}(ms|s|m)"),
        run_id in prop::option::of("[a-zA-Z0-9._-]{1,40}"),
        ttl in prop::option::of(0u32..100_000),
    ) {
        let spec = LoadTestSpec {
            plan,
            plan_from: from.map(|(name, key)| PlanSource {
                config_map_key_ref: ConfigMapKeyRef { name, key },
            }),
            script: None,
            fleet: None,
            selector: LabelSelector { match_labels: selector, ..LabelSelector::default() },
            min_agents,
            wait_for_agents: None,
            lead_time,
            outputs: Vec::new(),
            outputs_by: None,
            env,
            env_value_from: BTreeMap::new(),
            env_from: Vec::new(),
            run_id,
            ttl_seconds_after_finished: ttl,
        };
        let yaml = serde_yaml_ng::to_string(&spec).expect("serialize");
        let back: LoadTestSpec = serde_yaml_ng::from_str(&yaml).expect("parse");
        prop_assert_eq!(&back, &spec);
        // plan_source never panics and agrees with the CEL rule.
        let exactly_one = spec.plan.is_some() != spec.plan_from.is_some();
        if !exactly_one {
            prop_assert!(spec.plan_source().is_err());
        }
    }
}

/// `kubectl wait --for=condition=…` and server-side apply need the
/// conditions as a list keyed by `type`, with metav1.Condition's required
/// fields.
#[test]
fn conditions_follow_the_kubernetes_convention() {
    let schema = schema();
    let conditions = &schema["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    let item = &conditions["items"];
    let mut required: Vec<&str> = item["required"]
        .as_array()
        .expect("required fields")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(
        required,
        ["lastTransitionTime", "message", "reason", "status", "type"]
    );
    assert_eq!(
        item["properties"]["status"]["enum"],
        json!(["True", "False", "Unknown"])
    );
    assert_eq!(
        item["properties"]["lastTransitionTime"]["format"],
        "date-time"
    );
    let spec = &schema["properties"]["spec"]["properties"];
    assert_eq!(spec["ttlSecondsAfterFinished"]["type"], "integer");
    assert_eq!(spec["ttlSecondsAfterFinished"]["minimum"], 0.0);
    assert_eq!(spec["runId"]["type"], "string");
}

/// Each env source names exactly one object, checked at admission (and
/// again by the agent, `controller::env`).
#[test]
fn env_sources_need_exactly_one_object() {
    let schema = schema();
    let spec = &schema["properties"]["spec"]["properties"];
    let value_from = &spec["envValueFrom"]["additionalProperties"];
    assert_eq!(
        value_from["x-kubernetes-validations"][0]["rule"],
        "has(self.secretKeyRef) != has(self.configMapKeyRef)"
    );
    assert_eq!(
        value_from["properties"]["secretKeyRef"]["required"],
        json!(["key", "name"])
    );
    let from = &spec["envFrom"]["items"];
    assert_eq!(
        from["x-kubernetes-validations"][0]["rule"],
        "has(self.secretRef) != has(self.configMapRef)"
    );
    let yaml = r#"
plan: "vus: 1"
envValueFrom:
  API_KEY: {secretKeyRef: {name: creds, key: api-key, optional: true}}
envFrom:
  - configMapRef: {name: target}
    prefix: T_
"#;
    let parsed: LoadTestSpec = serde_yaml_ng::from_str(yaml).expect("parse");
    let key = parsed.env_value_from["API_KEY"]
        .secret_key_ref
        .as_ref()
        .expect("secretKeyRef");
    assert_eq!(
        (key.name.as_str(), key.key.as_str(), key.optional),
        ("creds", "api-key", Some(true))
    );
    assert_eq!(parsed.env_from[0].prefix.as_deref(), Some("T_"));
}
