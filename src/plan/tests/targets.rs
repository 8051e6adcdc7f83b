//! `targets:`: one endpoint per region, the flow run once per target with
//! its URLs relative to it, requests tagged with the target's region and
//! scenarios with the agent's; and what is refused, with the field.

use super::{yaml_err, yaml_ok};
use crate::plan::{Step, is_region_name};

const TWO: &str = r#"
targets:
  us-east: "http://us.example.com:8080/"
  eu-west: "https://eu.example.com/api"
iterations: 1
flow:
  - get: /items
  - sleep: 1ms
  - request:
      url: "/items/${vu}"
      tags: {kind: one}
"#;

fn requests(plan: &crate::plan::Plan) -> Vec<(String, Vec<(String, String)>)> {
    plan.scenarios[0]
        .flow
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Request(r) => Some((r.url.source().to_string(), r.tags.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_flow_runs_once_per_target_in_order_with_urls_relative_to_it() {
    let plan = yaml_ok(TWO);
    let regions: Vec<&str> = plan.targets.iter().map(|t| t.region.as_str()).collect();
    assert_eq!(regions, ["us-east", "eu-west"]);
    assert_eq!(
        plan.scenarios[0].flow.steps.len(),
        6,
        "three steps per target"
    );
    let reqs = requests(&plan);
    let urls: Vec<&str> = reqs.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://us.example.com:8080/items",
            "http://us.example.com:8080/items/${vu}",
            "https://eu.example.com/api/items",
            "https://eu.example.com/api/items/${vu}",
        ]
    );
    let target_of = |tags: &[(String, String)]| {
        tags.iter()
            .find(|(k, _)| k == "target_region")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(target_of(&reqs[0].1).as_deref(), Some("us-east"));
    assert_eq!(target_of(&reqs[3].1).as_deref(), Some("eu-west"));
    assert!(reqs[3].1.contains(&("kind".into(), "one".into())));
}

#[test]
fn samples_carry_the_region_local_until_an_agent_or_flag_sets_it() {
    let mut plan = yaml_ok(TWO);
    let region = |p: &crate::plan::Plan| {
        p.scenarios[0]
            .tags
            .iter()
            .find(|(k, _)| k == "region")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(region(&plan).as_deref(), Some("local"));
    plan.set_agent_region("us-east");
    assert_eq!(region(&plan).as_deref(), Some("us-east"));
    // Without targets nothing is added.
    let mut plain = yaml_ok("iterations: 1\nflow:\n  - get: http://x.example.com/\n");
    plain.set_agent_region("us-east");
    assert_eq!(region(&plain), None);
    assert!(plain.targets.is_empty());
}

#[test]
fn bad_targets_name_the_field_the_value_and_the_form() {
    let err = yaml_err("targets: {}\niterations: 1\nflow:\n  - get: /\n");
    assert!(err.contains("targets: needs at least one region"), "{err}");

    let err = yaml_err("targets: {\"us east\": \"http://x\"}\niterations: 1\nflow:\n  - get: /\n");
    assert!(
        err.contains("targets: got \"us east\", expected a region name of 1-63 characters"),
        "{err}"
    );
    let err = yaml_err("targets: {\"eu:west\": \"http://x\"}\niterations: 1\nflow:\n  - get: /\n");
    assert!(err.contains("\"eu:west\""), "{err}");

    for url in [
        "ftp://x",
        "x.example.com",
        "http://x/?a=1",
        "http://x/${env.A}",
    ] {
        let err = yaml_err(&format!(
            "targets: {{eu: \"{url}\"}}\niterations: 1\nflow:\n  - get: /\n"
        ));
        assert!(
            err.contains("targets.eu: got") && err.contains("an absolute http:// or https:// URL"),
            "{url}: {err}"
        );
    }
}

#[test]
fn with_targets_a_flow_url_is_a_path_and_region_tags_are_volleys() {
    let err = yaml_err(
        "targets: {eu: \"http://eu\"}\niterations: 1\nflow:\n  - get: http://other.example.com/\n",
    );
    assert!(
        err.contains("flow[0].get.url: got \"http://other.example.com/\"")
            && err.contains("a path starting with `/`"),
        "{err}"
    );
    let err = yaml_err(
        "targets: {eu: \"http://eu\"}\ntags: {region: x}\niterations: 1\nflow:\n  - get: /\n",
    );
    assert!(err.contains("tags.region: with `targets`"), "{err}");
    let err = yaml_err(
        "targets: {eu: \"http://eu\"}\niterations: 1\nflow:\n  - request: {url: /, tags: {region: x}}\n",
    );
    assert!(err.contains("tags.region: with `targets`"), "{err}");
    let err = yaml_err(
        "iterations: 1\nflow:\n  - request: {url: \"http://x/\", tags: {target_region: x}}\n",
    );
    assert!(
        err.contains("tag \"target_region\" is set by Volley"),
        "{err}"
    );
}

#[test]
fn region_names_are_label_safe() {
    for ok in ["us-east", "eu_west.1", "A", &"a".repeat(63)] {
        assert!(is_region_name(ok), "{ok}");
    }
    for bad in ["", "us east", "a,b", "a:b", "a}b", &"a".repeat(64)] {
        assert!(!is_region_name(bad), "{bad}");
    }
}
