use super::*;

fn buckets(bounds: &[f64], cumulative: &[u64], count: u64, sum: f64) -> Buckets {
    Buckets {
        bounds: bounds.to_vec(),
        cumulative: cumulative.to_vec(),
        count,
        sum_seconds: sum,
    }
}

fn snapshot() -> PromSnapshot {
    PromSnapshot {
        members_live: 3,
        members_dead: 1,
        tests_by_phase: BTreeMap::from([("passed".into(), 2), ("running".into(), 1)]),
        share: Some(ShareFigures {
            test_id: "t-\"1\"\\\n".into(),
            running: true,
            vus: 40,
            scenarios: vec![
                ScenarioFigures {
                    scenario: "browse".into(),
                    requests: 90_000,
                    failed: 12,
                    iterations: 45_000,
                    data_sent: 1_000,
                    data_received: 2_000,
                    duration: buckets(&[0.005, 0.01, 0.25], &[10, 89_000, 89_990], 90_000, 450.5),
                },
                ScenarioFigures {
                    scenario: "buy".into(),
                    requests: 10,
                    duration: buckets(&[0.005, 0.01, 0.25], &[0, 0, 10], 10, 1.5),
                    ..ScenarioFigures::default()
                },
            ],
        }),
        generator: GeneratorFigures {
            cpu_seconds: Some(12.5),
            cpus: 2.0,
            lag: buckets(&[0.001, 0.01], &[900, 999], 1000, 0.75),
        },
        agent_state: "busy".into(),
        capacity: 2.0,
        uptime: Duration::from_millis(61_500),
        version: "0.1.0".into(),
        gossip_rejected: BTreeMap::from([
            ("bad_tag".into(), 7),
            ("malformed".into(), 3),
            ("stale".into(), 0),
        ]),
        gossip_accepted: 42,
        gossip_send_failed: 1,
        identity_mismatches: 2,
    }
}

#[test]
fn renders_every_family_with_help_and_type_first() {
    let text = snapshot().render();
    let t = "test=\"t-\\\"1\\\"\\\\\\n\"";
    for line in [
        "volley_build_info{version=\"0.1.0\"} 1".to_owned(),
        "volley_uptime_seconds 61.5".to_owned(),
        "volley_agent_state{state=\"busy\"} 1".to_owned(),
        "volley_agent_capacity 2".to_owned(),
        "volley_members{liveness=\"live\"} 3".to_owned(),
        "volley_members{liveness=\"dead\"} 1".to_owned(),
        "volley_tests{phase=\"passed\"} 2".to_owned(),
        "volley_tests{phase=\"running\"} 1".to_owned(),
        "# TYPE volley_gossip_rejected_packets_total counter".to_owned(),
        "volley_gossip_rejected_packets_total{reason=\"bad_tag\"} 7".to_owned(),
        "volley_gossip_accepted_packets_total 42".to_owned(),
        "volley_gossip_send_failures_total 1".to_owned(),
        "volley_gossip_identity_mismatches_total 2".to_owned(),
        "# TYPE volley_process_cpu_seconds_total counter".to_owned(),
        "volley_process_cpu_seconds_total 12.5".to_owned(),
        "volley_cpus_available 2".to_owned(),
        "# TYPE volley_scheduler_lag_seconds histogram".to_owned(),
        "volley_scheduler_lag_seconds_bucket{le=\"0.001\"} 900".to_owned(),
        "volley_scheduler_lag_seconds_bucket{le=\"0.01\"} 999".to_owned(),
        "volley_scheduler_lag_seconds_bucket{le=\"+Inf\"} 1000".to_owned(),
        "volley_scheduler_lag_seconds_sum 0.75".to_owned(),
        "volley_scheduler_lag_seconds_count 1000".to_owned(),
        format!("volley_test_running{{{t}}} 1"),
        format!("volley_test_vus{{{t}}} 40"),
        "# TYPE volley_test_http_requests_total counter".to_owned(),
        format!("volley_test_http_requests_total{{{t},scenario=\"browse\"}} 90000"),
        format!("volley_test_http_requests_total{{{t},scenario=\"buy\"}} 10"),
        format!("volley_test_http_requests_failed_total{{{t},scenario=\"browse\"}} 12"),
        format!("volley_test_iterations_total{{{t},scenario=\"browse\"}} 45000"),
        format!("volley_test_data_sent_bytes_total{{{t},scenario=\"browse\"}} 1000"),
        format!("volley_test_data_received_bytes_total{{{t},scenario=\"browse\"}} 2000"),
        "# TYPE volley_test_http_req_duration_seconds histogram".to_owned(),
        format!(
            "volley_test_http_req_duration_seconds_bucket{{{t},scenario=\"browse\",le=\"0.005\"}} 10"
        ),
        format!(
            "volley_test_http_req_duration_seconds_bucket{{{t},scenario=\"browse\",le=\"0.25\"}} 89990"
        ),
        format!(
            "volley_test_http_req_duration_seconds_bucket{{{t},scenario=\"browse\",le=\"+Inf\"}} 90000"
        ),
        format!("volley_test_http_req_duration_seconds_sum{{{t},scenario=\"browse\"}} 450.5"),
        format!("volley_test_http_req_duration_seconds_count{{{t},scenario=\"buy\"}} 10"),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // No quantile as a gauge.
    assert!(!text.contains("p95"), "{text}");
    // Every sample's family was declared just before.
    let mut declared = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            declared.push(rest.split(' ').next().expect("name").to_owned());
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().expect("name");
            let family = declared.last().map(String::as_str).unwrap_or("");
            let ok = name == family
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family));
            assert!(ok, "{line} after # TYPE {family}");
        }
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn idle_agent_declares_test_families_without_samples() {
    let idle = PromSnapshot {
        share: None,
        tests_by_phase: BTreeMap::new(),
        ..snapshot()
    };
    let text = idle.render();
    assert!(text.contains("# TYPE volley_test_vus gauge"));
    assert!(text.contains("# TYPE volley_test_http_req_duration_seconds histogram"));
    assert!(
        !text.lines().any(|l| l.starts_with("volley_test_")),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("volley_tests{")),
        "{text}"
    );
}

#[test]
fn special_values_use_prometheus_spelling() {
    let mut out = String::new();
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, 1e21] {
        push_value(&mut out, value);
        out.push(' ');
    }
    assert_eq!(out, "NaN +Inf -Inf -0.5 1000000000000000000000 ");
}

#[test]
fn help_escapes_backslash_and_newline_but_not_quotes() {
    let mut out = String::new();
    escape_help(&mut out, "a\\b\n\"c\"");
    assert_eq!(out, "a\\\\b\\n\"c\"");
}

/// promtool (Debian's `prometheus`, installed by `scripts/test`) accepts
/// the exposition: names, types, histogram layout and conventions.
#[test]
fn promtool_accepts_the_exposition() {
    use std::io::Write as _;
    let text = snapshot().render();
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("promtool");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/test installs Debian's prometheus)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("written");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
