//! Admission through whole plans: YAML and script options in, a refusal
//! naming the field, the value, the limit and its source out.

use std::time::Duration;

use super::*;
use crate::plan::tests::{MemFiles, opts, yaml_ok};
use crate::plan::{Format, Plan, parse};

const GIB: u64 = 1 << 30;

/// A 2-CPU, 4 GiB machine with no operator settings.
fn machine() -> MachineLimits {
    MachineLimits::from_capacity(2.0, Some(4 * GIB), Knobs::LOCAL)
}

fn local(machine: MachineLimits) -> Limits {
    Limits::machine(machine, "this machine")
}

fn refusal(plan: &Plan, limits: &Limits) -> Refusal {
    match check(&Demand::of(plan), limits) {
        Err(r) => r,
        Ok(()) => panic!("the plan should be refused: {:?}", Demand::of(plan)),
    }
}

fn arrival(rate: &str) -> Plan {
    yaml_ok(&format!(
        "scenarios:\n  main:\n    executor: constant-arrival-rate\n    rate: {rate}\n    \
         duration: 5s\n    preAllocatedVUs: 10\n    maxVUs: 50\n    flow:\n      \
         - get: http://127.0.0.1:1/\n"
    ))
}

#[test]
fn an_absurd_rate_is_refused_naming_the_field_the_value_and_the_limit() {
    let r = refusal(&arrival("1000000000000"), &local(machine()));
    let text = r.to_string();
    assert_eq!(r.quantity, Quantity::Rate);
    assert_eq!(r.path, "scenarios.main.rate");
    assert!(text.contains("1000000000000 iterations/s"), "{text}");
    assert!(text.contains("is 1000000 iterations/s"), "{text}");
    assert!(text.contains("500000 per CPU × 2 CPUs"), "{text}");
    assert!(text.contains("VOLLEY_MAX_RATE"), "{text}");
}

#[test]
fn a_billion_vus_from_the_shortcut_are_refused_by_memory() {
    let plan = yaml_ok("vus: 1000000000\nduration: 5s\nflow:\n  - get: http://127.0.0.1:1/\n");
    let r = refusal(&plan, &local(machine()));
    let text = r.to_string();
    assert_eq!(r.quantity, Quantity::Vus);
    assert_eq!(r.path, "vus", "the shortcut's own field: {text}");
    // 75 % of 4 GiB at 64 KiB per VU.
    let limit = 4 * GIB / 100 * 75 / PLAN_VU_BYTES;
    assert!(text.contains(&format!("about {limit} VUs")), "{text}");
    assert!(
        text.contains("4 GiB memory limit at 64 KiB per VU"),
        "{text}"
    );
    assert!(text.contains("VOLLEY_MAX_VUS"), "{text}");
}

#[test]
fn ordinary_plans_are_admitted() {
    let limits = local(machine());
    for text in [
        "vus: 200\nduration: 30s\nflow:\n  - get: http://127.0.0.1:1/\n",
        "iterations: 100000\nvus: 50\nflow:\n  - get: http://127.0.0.1:1/\n",
        "stages: [{duration: 10s, target: 2000}, {duration: 1m, target: 0}]\nflow:\n  - get: http://127.0.0.1:1/\n",
    ] {
        let plan = yaml_ok(text);
        assert_eq!(check(&Demand::of(&plan), &limits), Ok(()), "{text}");
    }
    assert_eq!(check(&Demand::of(&arrival("900000")), &limits), Ok(()));
}

#[test]
fn the_peak_stage_is_named_and_rates_count_per_time_unit() {
    let plan = yaml_ok(
        "scenarios:\n  ramp:\n    executor: ramping-arrival-rate\n    startRate: 10\n    \
         timeUnit: 1ms\n    preAllocatedVUs: 5\n    stages:\n      - {duration: 5s, target: 100}\n      \
         - {duration: 5s, target: 5000}\n      - {duration: 5s, target: 10}\n    flow:\n      \
         - get: http://127.0.0.1:1/\n",
    );
    let demand = Demand::of(&plan);
    assert_eq!(demand.rate(), 5_000_000.0, "5000 per ms");
    let r = refusal(&plan, &local(machine()));
    assert_eq!(r.path, "scenarios.ramp.stages[1].target");
    assert!(r.asked.contains("5000 per 1ms"), "{r}");
}

#[test]
fn arrival_rate_vus_are_the_larger_of_pre_allocated_and_max() {
    let plan = yaml_ok(
        "scenarios:\n  a:\n    executor: constant-arrival-rate\n    rate: 10\n    duration: 5s\n    \
         preAllocatedVUs: 60000\n    flow:\n      - get: http://127.0.0.1:1/\n  b:\n    \
         executor: constant-vus\n    vus: 3\n    duration: 5s\n    flow:\n      - get: http://127.0.0.1:1/\n",
    );
    let demand = Demand::of(&plan);
    assert_eq!(demand.vus(), 60_003, "summed over scenarios");
    let r = refusal(&plan, &local(machine()));
    assert!(
        r.path == "scenarios.a.maxVUs" || r.path == "scenarios.a.preAllocatedVUs",
        "{r}"
    );
    assert!(r.asked.contains("60003 with the other 1 scenario"), "{r}");
}

#[test]
fn script_vus_are_budgeted_at_their_own_cost() {
    let options = serde_json::json!({"vus": 20000, "duration": "10s"});
    let plan = crate::plan::load::from_script_options(options, vec!["default".into()], &opts())
        .expect("the options load");
    let demand = Demand::of(&plan);
    assert!(demand.script);
    // 20000 plan VUs fit in 3 GiB at 64 KiB; as scripts at 192 KiB they do not.
    let r = refusal(&plan, &local(machine()));
    assert_eq!(r.path, "options.vus", "{r}");
    assert!(r.to_string().contains("192 KiB per script VU"), "{r}");
    let as_plan = Demand {
        script: false,
        ..demand
    };
    assert_eq!(check(&as_plan, &local(machine())), Ok(()));
}

#[test]
fn operator_settings_replace_the_derived_limits() {
    let set = MachineLimits {
        max_vus: Some(10),
        max_rate: Some(5.0),
        max_duration: Some(Duration::from_secs(60)),
        ..machine()
    };
    let vus = yaml_ok("vus: 11\nduration: 5s\nflow:\n  - get: http://127.0.0.1:1/\n");
    let r = refusal(&vus, &local(set.clone()));
    assert!(r.to_string().contains("set with VOLLEY_MAX_VUS"), "{r}");
    let r = refusal(
        &arrival("6"),
        &local(MachineLimits {
            max_vus: None,
            ..set.clone()
        }),
    );
    assert_eq!(r.quantity, Quantity::Rate, "{r}");
    assert!(r.to_string().ends_with("(set with VOLLEY_MAX_RATE)"), "{r}");
    let long = yaml_ok("vus: 1\nduration: 2m\nflow:\n  - get: http://127.0.0.1:1/\n");
    let r = refusal(&long, &local(set));
    assert_eq!(r.quantity, Quantity::Duration);
    assert_eq!(r.path, "duration");
    assert!(r.to_string().contains("VOLLEY_MAX_DURATION"), "{r}");

    // Without settings a week is the longest test.
    let eight_days = yaml_ok("vus: 1\nduration: 192h\nflow:\n  - get: http://127.0.0.1:1/\n");
    let r = refusal(&eight_days, &local(machine()));
    assert_eq!(r.quantity, Quantity::Duration, "{r}");
    assert!(r.to_string().contains("168h"), "{r}");
}

#[test]
fn a_fleet_scales_this_agents_limits_by_the_agents_weights() {
    let knobs = MachineLimits {
        knobs: Knobs::AGENT,
        ..machine()
    };
    let fleet = Limits::fleet(knobs.clone(), "agent-0", 2.0, &[2.0, 2.0, 2.0]);
    assert_eq!(check(&Demand::of(&arrival("2500000")), &fleet), Ok(()));
    let r = refusal(&arrival("3500000"), &fleet);
    let text = r.to_string();
    assert!(
        text.contains("the limit for the 3 selected agents is 3000000 iterations/s"),
        "{text}"
    );
    assert!(text.contains("3 agents × 1000000/s each"), "{text}");
    assert!(text.contains("on agent-0"), "{text}");
    assert!(text.contains("--max-rate / VOLLEY_MAX_RATE"), "{text}");

    // One agent: its own limits, named.
    let alone = Limits::fleet(knobs.clone(), "agent-0", 2.0, &[2.0]);
    let r = refusal(&arrival("1500000"), &alone);
    assert!(
        r.to_string().ends_with(
            "the limit for the selected agent is 1000000 iterations/s (500000 per CPU × 2 CPUs \
             on agent-0; raise with --max-rate / VOLLEY_MAX_RATE)"
        ),
        "{r}"
    );

    // Unequal weights: this agent's limits per unit of weight.
    let mixed = Limits::fleet(knobs, "agent-0", 2.0, &[2.0, 1.0, 5.0]);
    let r = refusal(&arrival("4500000"), &mixed);
    assert!(r.to_string().contains("is 4000000 iterations/s"), "{r}");
    assert!(r.to_string().contains("scaled to the agents' 8"), "{r}");
}

#[test]
fn a_share_takes_its_part_of_vus_and_rates_but_every_duration() {
    let plan = arrival("900");
    let demand = Demand::of(&plan);
    let share = demand.share(1.0 / 3.0, |v| v.div_ceil(3));
    assert_eq!(
        share.vus(),
        17,
        "a third of 50 VUs, rounded as the tuple does"
    );
    assert!((share.rate() - 300.0).abs() < 1e-6);
    assert_eq!(share.duration(), demand.duration());
}

#[test]
fn requests_per_iteration_are_bounded() {
    let mut text = String::from("vus: 1\niterations: 1\nflow:\n");
    let n = MAX_REQUESTS_PER_ITERATION + 1;
    for _ in 0..n / 2 {
        text.push_str("  - get: http://127.0.0.1:1/\n");
    }
    text.push_str("  - group:\n      name: g\n      flow:\n");
    for _ in n / 2..n {
        text.push_str("        - get: http://127.0.0.1:1/\n");
    }
    let plan = yaml_ok(&text);
    assert_eq!(Demand::of(&plan).requests_per_iteration(), n);
    let r = refusal(&plan, &local(machine()));
    assert_eq!(r.quantity, Quantity::RequestsPerIteration);
    assert_eq!(r.path, "flow");
}

#[test]
fn data_and_upload_files_count_against_memory() {
    let rows: String = (0..2000)
        .map(|i| format!("user{i},{}\n", "x".repeat(500)))
        .collect();
    let files = MemFiles::with("/plans/users.csv", &format!("name,blob\n{rows}"));
    let plan = parse(
        "data: {file: users.csv}\nvus: 20\nduration: 5s\nflow:\n  - get: \"http://127.0.0.1:1/${data.name}\"\n",
        Format::Yaml,
        &opts(),
        &files,
    )
    .expect("the plan loads");
    let demand = Demand::of(&plan);
    assert_eq!(demand.data_rows, 2000);
    assert!(demand.data_bytes > 1_000_000, "{}", demand.data_bytes);
    let tiny = MachineLimits::from_capacity(1.0, Some(2 << 20), Knobs::LOCAL);
    let r = refusal(&plan, &local(tiny));
    // The VUs no longer fit next to the data, and the data alone is over half the budget.
    assert_eq!(r.quantity, Quantity::Vus, "{r}");
    assert!(r.to_string().contains("of data and upload files"), "{r}");
    let generous = MachineLimits {
        max_vus: Some(1000),
        ..MachineLimits::from_capacity(1.0, Some(2 << 20), Knobs::LOCAL)
    };
    let r = refusal(&plan, &local(generous));
    assert_eq!(r.quantity, Quantity::Files, "{r}");
    assert_eq!(r.path, "data");
    assert!(check(&demand, &local(machine())).is_ok());
}

#[test]
fn unknown_memory_is_assumed_small_and_says_so() {
    let unknown = MachineLimits::from_capacity(1.0, None, Knobs::LOCAL);
    let plan = yaml_ok("vus: 20000\nduration: 5s\nflow:\n  - get: http://127.0.0.1:1/\n");
    let r = refusal(&plan, &local(unknown));
    assert!(r.to_string().contains("assumed"), "{r}");
}

#[test]
fn numbers_and_sizes_read_well() {
    assert_eq!(number(1e12), "1000000000000");
    assert_eq!(number(0.5), "0.5");
    assert_eq!(number(1.0 / 60.0), "0.017");
    assert_eq!(number(12345.6), "12345");
    assert_eq!(bytes(64 << 10), "64 KiB");
    assert_eq!(bytes(3 * GIB + GIB / 2), "3.5 GiB");
    assert_eq!(bytes(100), "100 bytes");
}
