//! Shortcuts, scenarios and CLI overrides → executors.

use std::time::Duration;

use super::{MemFiles, opts, yaml_err, yaml_ok};
use crate::plan::{Executor, Format, Overrides, Stage, parse};

const FLOW: &str = "flow:\n  - get: http://127.0.0.1:1/\n";

fn with_flow(head: &str) -> String {
    format!("{head}{FLOW}")
}

fn single(text: &str) -> Executor {
    let plan = yaml_ok(text);
    assert_eq!(plan.scenarios.len(), 1);
    assert_eq!(plan.scenarios[0].name, "default");
    plan.scenarios[0].executor.clone()
}

fn with_overrides(
    text: &str,
    overrides: Overrides,
) -> Result<crate::plan::Plan, crate::plan::PlanError> {
    let mut o = opts();
    o.overrides = overrides;
    parse(text, Format::Yaml, &o, &MemFiles::default())
}

#[test]
fn shortcuts_follow_k6() {
    assert_eq!(
        single(&with_flow("")),
        Executor::PerVuIterations {
            vus: 1,
            iterations: 1,
            max_duration: Duration::from_secs(600)
        }
    );
    assert_eq!(
        single(&with_flow("vus: 5\n")),
        Executor::SharedIterations {
            vus: 5,
            iterations: 5,
            max_duration: Duration::from_secs(600)
        }
    );
    assert_eq!(
        single(&with_flow("vus: 10\nduration: 30s\n")),
        Executor::ConstantVus {
            vus: 10,
            duration: Duration::from_secs(30)
        }
    );
    assert_eq!(
        single(&with_flow("duration: 1500\n")),
        Executor::ConstantVus {
            vus: 1,
            duration: Duration::from_millis(1500)
        },
        "bare numbers are milliseconds, as in k6 options"
    );
    assert_eq!(
        single(&with_flow("iterations: 100\nvus: 4\nduration: 1m\n")),
        Executor::SharedIterations {
            vus: 4,
            iterations: 100,
            max_duration: Duration::from_secs(60)
        }
    );
    assert_eq!(
        single(&with_flow(
            "stages:\n  - {duration: 10s, target: 20}\n  - {duration: 5s, target: 0}\n"
        )),
        Executor::RampingVus {
            start_vus: 1,
            stages: vec![
                Stage {
                    duration: Duration::from_secs(10),
                    target: 20
                },
                Stage {
                    duration: Duration::from_secs(5),
                    target: 0
                }
            ],
            graceful_ramp_down: Duration::from_secs(30)
        }
    );
    match single(&with_flow(
        "vus: 0\nstages:\n  - {duration: 10s, target: 3}\n",
    )) {
        Executor::RampingVus { start_vus, .. } => assert_eq!(start_vus, 0, "vus is startVUs"),
        other => panic!("expected ramping-vus, got {other:?}"),
    }
}

#[test]
fn every_executor_with_its_defaults() {
    let plan = yaml_ok(&with_flow(
        r#"
scenarios:
  a_const: {executor: constant-vus, duration: 10s}
  b_ramp: {executor: ramping-vus, stages: [{duration: 5s, target: 3}]}
  c_car: {executor: constant-arrival-rate, rate: 50, duration: 1m, preAllocatedVUs: 10}
  d_rar: {executor: ramping-arrival-rate, stages: [{duration: 5s, target: 3}], preAllocatedVUs: 2, maxVUs: 8, timeUnit: 1m}
  e_pvi: {executor: per-vu-iterations}
  f_si: {executor: shared-iterations, vus: 2, iterations: 9, maxDuration: 30s, startTime: 5s, gracefulStop: 0s}
"#,
    ));
    let names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["a_const", "b_ramp", "c_car", "d_rar", "e_pvi", "f_si"]
    );
    for (i, s) in plan.scenarios.iter().enumerate() {
        assert_eq!(s.index, i);
    }
    let ex: Vec<&Executor> = plan.scenarios.iter().map(|s| &s.executor).collect();
    assert_eq!(
        ex[0],
        &Executor::ConstantVus {
            vus: 1,
            duration: Duration::from_secs(10)
        }
    );
    assert!(
        matches!(ex[1], Executor::RampingVus { start_vus: 1, graceful_ramp_down, .. } if *graceful_ramp_down == Duration::from_secs(30))
    );
    assert_eq!(
        ex[2],
        &Executor::ConstantArrivalRate {
            rate: 50,
            time_unit: Duration::from_secs(1),
            duration: Duration::from_secs(60),
            pre_allocated_vus: 10,
            max_vus: 10
        }
    );
    assert!(matches!(
        ex[3],
        Executor::RampingArrivalRate { start_rate: 0, pre_allocated_vus: 2, max_vus: 8, time_unit, .. } if *time_unit == Duration::from_secs(60)
    ));
    assert_eq!(
        ex[4],
        &Executor::PerVuIterations {
            vus: 1,
            iterations: 1,
            max_duration: Duration::from_secs(600)
        }
    );
    assert_eq!(plan.scenarios[5].start_time, Duration::from_secs(5));
    assert_eq!(plan.scenarios[5].graceful_stop, Duration::ZERO);
    assert_eq!(plan.scenarios[0].graceful_stop, Duration::from_secs(30));
    assert_eq!(plan.scenarios[4].start_time, Duration::ZERO);
}

/// The benchmark plan of `bench/scripts/volley-sleep.yaml`, run with
/// `-e TARGET_URL=http://127.0.0.1:1/ --vus 1000 --duration 10s`.
#[test]
fn bench_sleep_plan_becomes_1000_constant_vus() {
    const VOLLEY_SLEEP: &str = r#"# Memory-per-VU scenario, the same as k6-sleep.js: each VU sends one request,
# then sleeps 1 s. VUs and duration come from the command line (--vus, --duration),
# TARGET_URL from `-e TARGET_URL=...` (k6's __ENV).
discardResponseBodies: true
flow:
  - request:
      url: "${env.TARGET_URL}"
  - sleep: 1s
"#;
    let mut o = opts();
    o.cli_env
        .insert("TARGET_URL".into(), "http://127.0.0.1:1/".into());
    o.overrides = Overrides {
        vus: Some(1000),
        duration: Some(Duration::from_secs(10)),
        ..Overrides::default()
    };
    let plan = parse(VOLLEY_SLEEP, Format::Yaml, &o, &MemFiles::default()).expect("loads");
    assert_eq!(plan.scenarios.len(), 1);
    let s = &plan.scenarios[0];
    assert_eq!(s.name, "default");
    assert_eq!(
        s.executor,
        Executor::ConstantVus {
            vus: 1000,
            duration: Duration::from_secs(10)
        }
    );
    assert!(plan.http.discard_response_bodies);
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(
        plan.requests[0].url.as_static(),
        Some("http://127.0.0.1:1/")
    );
    assert_eq!(plan.requests[0].name, "http://127.0.0.1:1/");
    assert!(!plan.requests[0].needs_body);
    assert_eq!(s.flow.steps.len(), 2);
    assert!(
        matches!(s.flow.steps[1], crate::plan::Step::Sleep(crate::plan::Sleep::Fixed(d)) if d == Duration::from_secs(1))
    );

    // Without -e the variable is unknown, and the message says how to set it.
    o.cli_env.clear();
    let e = parse(VOLLEY_SLEEP, Format::Yaml, &o, &MemFiles::default())
        .expect_err("no TARGET_URL")
        .to_string();
    assert!(
        e.contains("flow[0].request.url") && e.contains("-e TARGET_URL="),
        "{e}"
    );
}

#[test]
fn cli_duration_replaces_plan_scenarios_with_the_first_flow() {
    let text = r#"
scenarios:
  zeta:
    executor: constant-vus
    duration: 1m
    flow: [{get: "http://127.0.0.1:1/z"}]
  alpha:
    executor: per-vu-iterations
    env: {X: "1"}
    flow: [{get: "http://127.0.0.1:1/a"}]
"#;
    let plan = with_overrides(
        text,
        Overrides {
            duration: Some(Duration::from_secs(5)),
            vus: Some(3),
            ..Overrides::default()
        },
    )
    .expect("loads");
    assert_eq!(plan.scenarios.len(), 1);
    assert_eq!(
        plan.scenarios[0].executor,
        Executor::ConstantVus {
            vus: 3,
            duration: Duration::from_secs(5)
        }
    );
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(
        plan.requests[0].url.source(),
        "http://127.0.0.1:1/a",
        "first scenario by name"
    );
    assert!(
        plan.scenarios[0].env.is_empty(),
        "only the flow is carried over"
    );
}

#[test]
fn cli_overrides_replace_plan_shortcuts_like_k6_apply() {
    // --iterations wipes the plan's duration; the plan's vus stay.
    let plan = with_overrides(
        &with_flow("vus: 4\nduration: 1m\n"),
        Overrides {
            iterations: Some(8),
            ..Overrides::default()
        },
    )
    .expect("loads");
    assert_eq!(
        plan.scenarios[0].executor,
        Executor::SharedIterations {
            vus: 4,
            iterations: 8,
            max_duration: Duration::from_secs(600)
        }
    );
    // --stage replaces the plan's stages; --vus alone replaces vus only.
    let stages = vec![Stage {
        duration: Duration::from_secs(3),
        target: 7,
    }];
    let plan = with_overrides(
        &with_flow("vus: 2\nstages: [{duration: 1m, target: 1}]\n"),
        Overrides {
            stages: Some(stages.clone()),
            ..Overrides::default()
        },
    )
    .expect("loads");
    assert_eq!(
        plan.scenarios[0].executor,
        Executor::RampingVus {
            start_vus: 2,
            stages,
            graceful_ramp_down: Duration::from_secs(30)
        }
    );
    let plan = with_overrides(
        &with_flow("vus: 2\nduration: 1m\n"),
        Overrides {
            vus: Some(9),
            ..Overrides::default()
        },
    )
    .expect("loads");
    assert_eq!(
        plan.scenarios[0].executor,
        Executor::ConstantVus {
            vus: 9,
            duration: Duration::from_secs(60)
        }
    );
}

#[test]
fn cli_override_mistakes_name_the_flag() {
    let cases = [
        (
            Overrides {
                vus: Some(2),
                ..Overrides::default()
            },
            "scenarios:\n  s: {executor: per-vu-iterations}\n",
            "--vus: cannot change a plan that defines `scenarios`",
        ),
        (
            Overrides {
                duration: Some(Duration::ZERO),
                ..Overrides::default()
            },
            "",
            "--duration: got \"0s\", expected a positive duration",
        ),
        (
            Overrides {
                duration: Some(Duration::from_secs(1)),
                vus: Some(0),
                ..Overrides::default()
            },
            "",
            "--vus: got \"0\", expected at least 1",
        ),
        (
            Overrides {
                duration: Some(Duration::from_secs(1)),
                stages: Some(vec![Stage {
                    duration: Duration::from_secs(1),
                    target: 1,
                }]),
                ..Overrides::default()
            },
            "",
            "--stage: cannot be used together with `--duration`",
        ),
        (
            Overrides {
                duration: Some(Duration::MAX),
                ..Overrides::default()
            },
            "",
            "--duration: got \"",
        ),
        (
            Overrides {
                stages: Some(vec![Stage {
                    duration: Duration::MAX,
                    target: 1,
                }]),
                ..Overrides::default()
            },
            "",
            "--stage: stages last ",
        ),
        (
            Overrides {
                stages: Some(vec![]),
                ..Overrides::default()
            },
            "",
            "--stage: is empty",
        ),
        (
            Overrides {
                iterations: Some(2),
                vus: Some(5),
                ..Overrides::default()
            },
            "",
            "--iterations: 2 iterations cannot be shared by 5 VUs",
        ),
    ];
    for (overrides, head, want) in cases {
        let e = with_overrides(&with_flow(head), overrides)
            .expect_err(want)
            .to_string();
        assert!(e.starts_with(want), "want {want:?}, got {e:?}");
    }
    // Replacing scenarios needs some flow to run.
    let e = with_overrides(
        "scenarios:\n  s: {executor: per-vu-iterations}\n",
        Overrides {
            duration: Some(Duration::from_secs(1)),
            ..Overrides::default()
        },
    )
    .expect_err("no flow")
    .to_string();
    assert!(e.starts_with("scenarios.s.flow: is missing"), "{e}");
}

#[test]
fn max_vus_and_durations_are_consistent() {
    let plan = yaml_ok(&with_flow(
        "scenarios:\n  r: {executor: ramping-vus, startVUs: 2, stages: [{duration: 10s, target: 9}, {duration: 20s, target: 0}], gracefulRampDown: 40s, gracefulStop: 5s, startTime: 1s}\n",
    ));
    let s = &plan.scenarios[0];
    assert_eq!(s.executor.max_vus(), 9);
    assert_eq!(s.executor.duration(), Duration::from_secs(30));
    assert_eq!(s.max_end(), Duration::from_secs(1 + 30 + 40));
    assert_eq!(plan.nominal_duration(), Duration::from_secs(31));
}

#[test]
fn zero_duration_stages_are_allowed_when_the_total_is_positive() {
    let plan = yaml_ok(&with_flow(
        "stages: [{duration: 0s, target: 10}, {duration: 10s, target: 10}]\n",
    ));
    assert_eq!(
        plan.scenarios[0].executor.duration(),
        Duration::from_secs(10)
    );
    let e = yaml_err(&with_flow("stages: [{duration: 0s, target: 10}]\n"));
    assert!(e.contains("stages: stages go nowhere"), "{e}");
}
