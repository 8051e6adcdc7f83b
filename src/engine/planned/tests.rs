//! Planned VUs per executor, over sequential and overlapping scenarios,
//! and on shares of a fleet.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::plan::{Flow, Stage};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn scenario(executor: Executor, start: u64, graceful_stop: u64) -> Scenario {
    Scenario {
        name: "s".into(),
        index: 0,
        executor,
        start_time: secs(start),
        graceful_stop: secs(graceful_stop),
        tags: Vec::new(),
        env: BTreeMap::new(),
        flow: Arc::new(Flow::default()),
        exec: None,
    }
}

fn constant_vus(vus: u64, duration: u64) -> Executor {
    Executor::ConstantVus {
        vus,
        duration: secs(duration),
    }
}

fn arrival(pre_allocated_vus: u64, max_vus: u64, duration: u64) -> Executor {
    Executor::ConstantArrivalRate {
        rate: 50,
        time_unit: secs(1),
        duration: secs(duration),
        pre_allocated_vus,
        max_vus,
    }
}

fn ramping(start_vus: u64, stages: &[(u64, u64)], graceful_ramp_down: u64) -> Executor {
    Executor::RampingVus {
        start_vus,
        stages: stages
            .iter()
            .map(|&(s, target)| Stage {
                duration: secs(s),
                target,
            })
            .collect(),
        graceful_ramp_down: secs(graceful_ramp_down),
    }
}

fn whole(v: u64) -> u64 {
    v
}

#[test]
fn every_executor_reserves_what_k6_plans() {
    let cases = [
        (constant_vus(200, 10), 200),
        (
            Executor::PerVuIterations {
                vus: 7,
                iterations: 3,
                max_duration: secs(60),
            },
            7,
        ),
        (
            Executor::SharedIterations {
                vus: 5,
                iterations: 100,
                max_duration: secs(60),
            },
            5,
        ),
        // Pre-allocated VUs, not maxVUs: more are added only when needed.
        (arrival(250, 1000, 10), 250),
        (
            Executor::RampingArrivalRate {
                start_rate: 0,
                time_unit: secs(1),
                stages: vec![Stage {
                    duration: secs(5),
                    target: 100,
                }],
                pre_allocated_vus: 30,
                max_vus: 80,
            },
            30,
        ),
        (ramping(3, &[(5, 10), (5, 2), (5, 6)], 30), 10),
    ];
    for (executor, want) in cases {
        let s = scenario(executor.clone(), 0, 30);
        assert_eq!(
            planned_vus(std::slice::from_ref(&s), whole),
            want,
            "{executor:?}"
        );
        assert_eq!(scenario_planned_vus(&s, whole), want, "{executor:?}");
    }
}

#[test]
fn scenarios_that_overlap_add_up_and_sequential_ones_share() {
    // k6's warm-up then main pack: the warm-up's graceful stop (30 s)
    // overlaps main, so both reservations count: 250.
    let warm = scenario(arrival(50, 50, 2), 0, 30);
    let main = scenario(arrival(200, 200, 2), 2, 30);
    assert_eq!(planned_vus(&[warm, main.clone()], whole), 250);
    // Without a graceful stop the warm-up is over when main starts.
    let warm = scenario(arrival(50, 50, 2), 0, 0);
    assert_eq!(planned_vus(&[warm, main.clone()], whole), 200);
    // A ramping-vus scenario is planned step by step: down to 1 VU (after
    // its 1 s graceful ramp-down) before a second scenario starts at 8 s.
    let ramp = scenario(ramping(0, &[(2, 10), (2, 1), (10, 1)], 1), 0, 0);
    let later = scenario(constant_vus(20, 5), 8, 0);
    assert_eq!(planned_vus(&[ramp.clone(), later], whole), 21);
    let overlapping = scenario(constant_vus(20, 5), 3, 0);
    // At 3 s the ramp-down's VUs are still reserved (10 until 3 s + ...).
    assert!(planned_vus(&[ramp, overlapping], whole) > 21);
}

#[test]
fn graceful_ramp_down_holds_removed_vus_for_its_length() {
    let raw = vec![
        VuStep {
            at: secs(0),
            vus: 6,
        },
        VuStep {
            at: secs(5),
            vus: 1,
        },
        VuStep {
            at: secs(8),
            vus: 5,
        },
        VuStep {
            at: secs(9),
            vus: 0,
        },
    ];
    let held = held_for(&raw, secs(10));
    assert_eq!(
        held,
        vec![
            // 6 until 5 s + 10 s, then the 5 reached at 8 s until 9 s + 10 s.
            VuStep {
                at: secs(0),
                vus: 6
            },
            VuStep {
                at: secs(15),
                vus: 5
            },
            VuStep {
                at: secs(19),
                vus: 0
            },
        ]
    );
    assert_eq!(held_for(&raw, Duration::ZERO), raw);
    assert!(held_for(&[], secs(3)).is_empty());
}

#[test]
fn shares_plan_their_scaled_part() {
    // Halves that always add up to the whole (as segments do).
    let s = [
        scenario(constant_vus(5, 10), 0, 30),
        scenario(arrival(3, 9, 10), 0, 30),
    ];
    let a = planned_vus(&s, |v: u64| v.div_ceil(2));
    let b = planned_vus(&s, |v: u64| v / 2);
    assert_eq!((a, b), (5, 3));
    assert_eq!(a + b, planned_vus(&s, whole));
    assert_eq!(planned_vus(&[], whole), 0);
}
