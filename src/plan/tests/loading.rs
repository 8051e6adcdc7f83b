//! Files, formats, URLs and how syntax and schema errors are reported.

use std::time::Duration;

use super::{MemFiles, opts, yaml_err, yaml_ok};
use http::Method;

use crate::plan::{Executor, Format, Overrides, PlanError, from_url, load_file, parse};

#[test]
fn load_file_reads_the_plan_and_its_data_next_to_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("users.json"),
        r#"[{"name":"ann"},{"name":"bob"}]"#,
    )
    .expect("write data");
    let plan_path = dir.path().join("plan.yaml");
    std::fs::write(
        &plan_path,
        "data: {file: users.json}\nflow: [{get: \"http://127.0.0.1:1/${data.name}\"}]\n",
    )
    .expect("write plan");
    // base_dir in the options is replaced by the plan's directory.
    let plan = load_file(&plan_path, &opts()).expect("loads");
    let data = plan.data.as_ref().expect("data");
    assert_eq!(
        data.rows,
        vec![vec!["ann".to_string()], vec!["bob".to_string()]]
    );

    let e = load_file(&dir.path().join("missing.yaml"), &opts()).expect_err("missing");
    assert!(matches!(e, PlanError::ReadPlan { .. }));
    assert!(e.to_string().starts_with("cannot read plan \""), "{e}");

    std::fs::remove_file(dir.path().join("users.json")).expect("remove data");
    let e = load_file(&plan_path, &opts())
        .expect_err("data gone")
        .to_string();
    assert_eq!(
        e,
        "data.file: cannot read \"users.json\": No such file or directory"
    );
}

#[test]
fn load_file_picks_json_by_extension() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plan.json");
    std::fs::write(
        &path,
        r#"{"vus": 2, "duration": "5s", "flow": [{"get": "http://127.0.0.1:1/"}]}"#,
    )
    .expect("write");
    let plan = load_file(&path, &opts()).expect("loads");
    assert_eq!(
        plan.scenarios[0].executor,
        Executor::ConstantVus {
            vus: 2,
            duration: Duration::from_secs(5)
        }
    );
    std::fs::write(&path, "{\"vus\": 2,\n \"flow\": [}").expect("write");
    let e = load_file(&path, &opts()).expect_err("bad JSON").to_string();
    assert!(
        e.starts_with("JSON syntax error at line 2 column 11: expected value"),
        "{e}"
    );
    assert!(
        e.contains("\n   \"flow\": [}\n"),
        "snippet shows the line: {e}"
    );
}

#[test]
fn json_schema_errors_carry_path_and_position() {
    let e = parse(
        r#"{"scenarios": {"main": {"executor": "constant-vus", "vu": 1}}}"#,
        Format::Json,
        &opts(),
        &MemFiles::default(),
    )
    .expect_err("unknown field");
    let PlanError::Schema { path, line, .. } = &e else {
        panic!("schema error expected, got {e:?}")
    };
    assert_eq!(path, "scenarios.main.vu");
    assert_eq!(*line, Some(1));
    assert!(
        e.to_string()
            .contains("unknown field \"vu\", expected one of \"executor\""),
        "{e}"
    );
    let e = parse("{} x", Format::Json, &opts(), &MemFiles::default())
        .expect_err("trailing")
        .to_string();
    assert!(
        e.starts_with("JSON syntax error at line 1 column 4: trailing characters"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_errors_show_the_line() {
    let e = yaml_err("vus: 1\nflow: [\n  - get: x\n");
    assert!(e.starts_with("YAML syntax error at line "), "{e}");
    let e = yaml_err("vus: 1\nvus: 2\n");
    assert!(
        e.starts_with("YAML syntax error") && e.contains("duplicate"),
        "{e}"
    );
    let e = yaml_err("a: 1\n---\nb: 2\n");
    assert!(e.contains("more than one document"), "{e}");
}

#[test]
fn yaml_schema_errors_lead_with_position_and_path() {
    let e = yaml_err("scenarios:\n  main:\n    executor: constant-vus\n    vu: 3\n");
    assert!(
        e.starts_with(
            "line 4 column 5: scenarios.main.vu: unknown field \"vu\", expected one of \"executor\""
        ),
        "{e}"
    );
    let e = yaml_err("stages:\n  - {duration: 1s, target: 1}\n  - {duration: 1s, target: -5}\n");
    assert!(
        e.ends_with("stages[1].target: got \"-5\", expected a non-negative integer"),
        "{e}"
    );
}

#[test]
fn from_url_is_one_get_per_iteration() {
    let plan = from_url("http://127.0.0.1:1/a?x=${y}", &opts()).expect("loads");
    assert_eq!(plan.requests.len(), 1);
    let r = &plan.requests[0];
    assert_eq!(r.method, Method::GET);
    assert_eq!(
        r.url.as_static(),
        Some("http://127.0.0.1:1/a?x=${y}"),
        "taken literally"
    );
    assert_eq!(r.name, "http://127.0.0.1:1/a?x=${y}");
    assert_eq!(
        plan.scenarios[0].executor,
        Executor::PerVuIterations {
            vus: 1,
            iterations: 1,
            max_duration: Duration::from_secs(600)
        }
    );
    let mut o = opts();
    o.overrides = Overrides {
        vus: Some(3),
        duration: Some(Duration::from_secs(2)),
        ..Overrides::default()
    };
    let plan = from_url("https://example.test/", &o).expect("loads");
    assert_eq!(
        plan.scenarios[0].executor,
        Executor::ConstantVus {
            vus: 3,
            duration: Duration::from_secs(2)
        }
    );
    for bad in ["example.test", "ftp://example.test/", "http://", ""] {
        let e = from_url(bad, &opts()).expect_err(bad).to_string();
        assert!(e.starts_with("URL: got "), "{e}");
    }
}

/// Nesting is bounded by the parsers' recursion limits (128 levels): deep
/// plans load, deeper ones fail with a message, and neither overflows the
/// stack of a test thread.
#[test]
fn deep_nesting_loads_or_fails_cleanly() {
    let nested = |depth: usize| {
        let open = "{\"group\":{\"name\":\"g\",\"flow\":[".repeat(depth);
        let close = "]}}".repeat(depth);
        format!("{{\"flow\":[{open}{{\"get\":\"http://127.0.0.1:1/\"}}{close}]}}")
    };
    for format in [Format::Json, Format::Yaml] {
        let plan =
            parse(&nested(40), format, &opts(), &MemFiles::default()).expect("40 levels load");
        assert_eq!(plan.groups.len(), 40);
        assert_eq!(plan.requests[0].group, "::g".repeat(40));
        let e = parse(&nested(100), format, &opts(), &MemFiles::default())
            .expect_err("too deep")
            .to_string();
        let expected = match format {
            Format::Json => "recursion limit exceeded",
            Format::Yaml => "nesting deeper than 128 levels",
        };
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn yaml_merge_keys_share_scenario_settings() {
    let plan = super::yaml_ok(
        r#"
scenarios:
  a: &base {executor: constant-vus, duration: 10s, vus: 2}
  b:
    <<: *base
    vus: 5
flow: [{get: "http://127.0.0.1:1/"}]
"#,
    );
    assert_eq!(
        plan.scenarios[1].executor,
        Executor::ConstantVus {
            vus: 5,
            duration: Duration::from_secs(10)
        },
        "own keys win over merged ones"
    );
    let e = yaml_err(
        "scenarios:\n  a: &base {executor: constant-vus, duration: 10s}\n  b:\n    <<: *base\n    vu: 5\nflow: [{get: \"http://127.0.0.1:1/\"}]\n",
    );
    assert!(
        e.starts_with("scenarios.b.vu: unknown field \"vu\""),
        "path without a position: {e}"
    );
}

#[test]
fn documents_that_are_not_maps() {
    assert_eq!(
        yaml_err("null"),
        "line 1 column 1: got null, expected a map"
    );
    assert_eq!(
        yaml_err("[1]"),
        "line 1 column 1: got a list, expected a map"
    );
    assert_eq!(
        yaml_err("flow: [{request: 5}]"),
        "line 1 column 18: flow[0].request: got integer \"5\", expected a map"
    );
}

/// A 4 MiB flow-nesting bomb is refused from a linear scan, not after the
/// YAML parser's quadratic walk (which took most of a minute).
#[test]
fn a_nesting_bomb_is_refused_at_once() {
    let half = 2 << 20;
    let bomb = format!("flow: {}{}\n", "[".repeat(half), "]".repeat(half));
    let start = std::time::Instant::now();
    let e = parse(&bomb, Format::Yaml, &opts(), &MemFiles::default())
        .expect_err("too deep")
        .to_string();
    assert!(e.contains("line 1 column 134"), "{e}");
    assert!(e.contains("nesting deeper than 128 levels"), "{e}");
    // Generous for a debug build on a busy machine; the parser needed ~50 s.
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

/// Anchors that nest aliases ("billion laughs") are refused before the parser expands them: the
/// fuzz suite found a 28 KiB plan that expands to 6.9 million values and held the parser for
/// minutes. The check costs what the text costs to parse, whatever it would expand to.
#[test]
fn an_alias_bomb_is_refused_before_it_expands() {
    let laughs = |width: usize, levels: usize| {
        let mut text = format!("a0: &a0 [{}x]\n", "x, ".repeat(width - 1));
        for level in 1..=levels {
            let alias = format!("*a{}", level - 1);
            text.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                [alias.as_str(); 9].join(", ")
            ));
        }
        text + "flow: []\n"
    };
    // The fuzz suite's find, and 256 KiB expanding to 10^17 values.
    for (width, levels) in [(9515, 3), ((256 << 10) / 3, 12)] {
        let bomb = laughs(width, levels);
        let start = std::time::Instant::now();
        let e = parse(&bomb, Format::Yaml, &opts(), &MemFiles::default())
            .expect_err("refused")
            .to_string();
        assert!(e.contains("line 2 column 10"), "{e}");
        assert!(
            e.contains("aliases (`*name`) expand the document past"),
            "{e}"
        );
        // Generous for a debug build on a busy machine; the first took the parser minutes.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{} bytes: {:?}",
            bomb.len(),
            start.elapsed()
        );
    }
}

#[test]
fn k6_flags_replace_the_plans_http_options() {
    let text = "userAgent: from-plan\nmaxRedirects: 3\nflow: [{get: \"http://127.0.0.1:1/\"}]\n";
    let plain = parse(text, Format::Yaml, &opts(), &MemFiles::default()).expect("loads");
    assert_eq!(plain.http.user_agent, "from-plan");
    assert!(!plain.http.insecure_skip_tls_verify && !plain.http.no_cookies_reset);
    let mut o = opts();
    o.overrides.http = crate::plan::HttpOverrides {
        user_agent: Some("from-flag".into()),
        max_redirects: Some(0),
        insecure_skip_tls_verify: true,
        no_connection_reuse: true,
        discard_response_bodies: true,
        no_cookies_reset: true,
    };
    let flagged = parse(text, Format::Yaml, &o, &MemFiles::default()).expect("loads");
    let h = &flagged.http;
    assert_eq!((h.user_agent.as_str(), h.max_redirects), ("from-flag", 0));
    assert!(h.insecure_skip_tls_verify && h.no_connection_reuse);
    assert!(h.discard_response_bodies && h.no_cookies_reset);
    o.overrides.http.user_agent = Some("bad\nagent".into());
    let err = parse(text, Format::Yaml, &o, &MemFiles::default()).unwrap_err();
    assert!(err.to_string().contains("--user-agent"), "{err}");
}

#[test]
fn secret_headers_are_header_names() {
    yaml_ok("secretHeaders: [X-Api-Key]\nflow:\n  - get: \"http://127.0.0.1:1/\"\n");
    let e = yaml_err("secretHeaders: [\"x y\"]\nflow:\n  - get: \"http://127.0.0.1:1/\"\n");
    assert!(e.starts_with("secretHeaders[0]: got \"x y\""), "{e}");
}
