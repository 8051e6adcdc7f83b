//! One entry of `scenarios`: its executor, with the parameters that
//! executor takes (k6 rejects the others too) and k6's defaults for the
//! rest (K6-REFERENCE §4).

use std::time::Duration;

use super::super::error::{EXECUTORS, PlanError};
use super::super::raw::{Count, DurationValue, RawScenario, RawStep};
use super::super::types::{Executor, Stage};
use super::executor::{
    DEFAULT_GRACEFUL_STOP, DEFAULT_MAX_DURATION, DEFAULT_TIME_UNIT, ScenarioSpec, at_least_one,
    fewer_iterations_than_vus, from, positive, ramp_stages, raw_stages,
};

/// Parameters each executor takes (besides the common ones).
fn parameters(kind: &str) -> &'static [&'static str] {
    match kind {
        "constant-vus" => &["vus", "duration"],
        "ramping-vus" => &["startVUs", "stages", "gracefulRampDown"],
        "constant-arrival-rate" => &["rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"],
        "ramping-arrival-rate" => &[
            "startRate",
            "timeUnit",
            "stages",
            "preAllocatedVUs",
            "maxVUs",
        ],
        "per-vu-iterations" | "shared-iterations" => &["vus", "iterations", "maxDuration"],
        _ => &[],
    }
}

/// Scenario names become tags and paths: k6's `[0-9A-Za-z_-]+`.
fn check_name(name: &str) -> Result<(), PlanError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(PlanError::invalid(
            format!("scenarios.{name}"),
            name,
            "a scenario name of letters, digits, `_` and `-`",
        ))
    }
}

pub(super) fn scenario<'r>(
    name: &str,
    sc: &'r RawScenario,
    top_flow: Option<&'r [RawStep]>,
) -> Result<ScenarioSpec<'r>, PlanError> {
    check_name(name)?;
    let p = |field: &str| format!("scenarios.{name}.{field}");
    let kind = sc.executor.trim();
    if kind == "externally-controlled" {
        return Err(PlanError::field(
            p("executor"),
            "externally-controlled was removed in k6 v2.0.0 and Volley does not run it; use constant-vus or ramping-vus",
        ));
    }
    if !EXECUTORS.contains(&kind) {
        return Err(PlanError::UnknownExecutor {
            path: p("executor"),
            value: sc.executor.clone(),
        });
    }
    let allowed = parameters(kind);
    let given = [
        ("vus", sc.vus.is_some()),
        ("duration", sc.duration.is_some()),
        ("iterations", sc.iterations.is_some()),
        ("maxDuration", sc.max_duration.is_some()),
        ("startVUs", sc.start_vus.is_some()),
        ("stages", sc.stages.is_some()),
        ("gracefulRampDown", sc.graceful_ramp_down.is_some()),
        ("rate", sc.rate.is_some()),
        ("timeUnit", sc.time_unit.is_some()),
        ("startRate", sc.start_rate.is_some()),
        ("preAllocatedVUs", sc.pre_allocated_vus.is_some()),
        ("maxVUs", sc.max_vus.is_some()),
    ];
    if let Some((field, _)) = given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
        return Err(PlanError::field(
            p(field),
            format!(
                "{kind} does not take `{field}` (it takes {})",
                allowed.join(", ")
            ),
        ));
    }
    let executor = executor(kind, sc, &p)?;
    let flow_path = p("flow");
    let flow = match (&sc.flow, top_flow) {
        (Some(flow), _) => flow.as_slice(),
        (None, Some(flow)) => flow,
        (None, None) => {
            return Err(PlanError::field(
                flow_path,
                "is missing; a scenario needs a flow unless the plan has a top-level `flow`",
            ));
        }
    };
    let flow_path = if sc.flow.is_some() {
        flow_path
    } else {
        "flow".to_string()
    };
    Ok(ScenarioSpec {
        name: name.to_string(),
        executor,
        start_time: sc.start_time.map_or(Duration::ZERO, |d| d.0),
        graceful_stop: sc.graceful_stop.map_or(DEFAULT_GRACEFUL_STOP, |d| d.0),
        tags: sc.tags.as_ref(),
        tags_path: p("tags"),
        env: sc.env.as_ref(),
        exec: sc.exec.as_deref(),
        flow,
        flow_path,
    })
}

fn executor(
    kind: &str,
    sc: &RawScenario,
    p: &dyn Fn(&str) -> String,
) -> Result<Executor, PlanError> {
    let count =
        |v: Option<Count>, field: &str, default: u64| from(v.map_or(default, |c| c.0), &p(field));
    let required_duration = |v: Option<DurationValue>,
                             field: &str|
     -> Result<Duration, PlanError> {
        let d = v.ok_or_else(|| PlanError::field(p(field), format!("is required by {kind}")))?;
        positive(&from(d.0, &p(field)))
    };
    let optional_duration =
        |v: Option<DurationValue>, field: &str, default: Duration| -> Result<Duration, PlanError> {
            positive(&from(v.map_or(default, |d| d.0), &p(field)))
        };
    let required_stages = |field: &str| -> Result<Vec<Stage>, PlanError> {
        let stages = sc
            .stages
            .as_ref()
            .ok_or_else(|| PlanError::field(p(field), format!("is required by {kind}")))?;
        raw_stages(stages, &p(field))
    };
    Ok(match kind {
        "constant-vus" => Executor::ConstantVus {
            vus: at_least_one(&count(sc.vus, "vus", 1))?,
            duration: required_duration(sc.duration, "duration")?,
        },
        "ramping-vus" => {
            let start_vus = sc.start_vus.map_or(1, |c| c.0);
            Executor::RampingVus {
                start_vus,
                stages: ramp_stages(required_stages("stages")?, &p("stages"), start_vus, "VUs")?,
                graceful_ramp_down: sc.graceful_ramp_down.map_or(DEFAULT_GRACEFUL_STOP, |d| d.0),
            }
        }
        "constant-arrival-rate" => {
            let (pre_allocated_vus, max_vus) = arrival_vus(sc, p, kind)?;
            let rate = sc
                .rate
                .ok_or_else(|| PlanError::field(p("rate"), format!("is required by {kind}")))?
                .0;
            if rate == 0 {
                return Err(PlanError::invalid(
                    p("rate"),
                    "0",
                    "a positive number of iterations per timeUnit",
                ));
            }
            Executor::ConstantArrivalRate {
                rate,
                time_unit: optional_duration(sc.time_unit, "timeUnit", DEFAULT_TIME_UNIT)?,
                duration: required_duration(sc.duration, "duration")?,
                pre_allocated_vus,
                max_vus,
            }
        }
        "ramping-arrival-rate" => {
            let (pre_allocated_vus, max_vus) = arrival_vus(sc, p, kind)?;
            let start_rate = sc.start_rate.map_or(0, |c| c.0);
            Executor::RampingArrivalRate {
                start_rate,
                time_unit: optional_duration(sc.time_unit, "timeUnit", DEFAULT_TIME_UNIT)?,
                stages: ramp_stages(
                    required_stages("stages")?,
                    &p("stages"),
                    start_rate,
                    "rates",
                )?,
                pre_allocated_vus,
                max_vus,
            }
        }
        "per-vu-iterations" => Executor::PerVuIterations {
            vus: at_least_one(&count(sc.vus, "vus", 1))?,
            iterations: at_least_one(&count(sc.iterations, "iterations", 1))?,
            max_duration: optional_duration(sc.max_duration, "maxDuration", DEFAULT_MAX_DURATION)?,
        },
        "shared-iterations" => {
            let vus = at_least_one(&count(sc.vus, "vus", 1))?;
            let iterations = at_least_one(&count(sc.iterations, "iterations", 1))?;
            if iterations < vus {
                return Err(fewer_iterations_than_vus(&p("iterations"), iterations, vus));
            }
            Executor::SharedIterations {
                vus,
                iterations,
                max_duration: optional_duration(
                    sc.max_duration,
                    "maxDuration",
                    DEFAULT_MAX_DURATION,
                )?,
            }
        }
        other => {
            return Err(PlanError::UnknownExecutor {
                path: p("executor"),
                value: other.to_string(),
            });
        }
    })
}

/// `preAllocatedVUs` (required) and `maxVUs` (default: `preAllocatedVUs`).
fn arrival_vus(
    sc: &RawScenario,
    p: &dyn Fn(&str) -> String,
    kind: &str,
) -> Result<(u64, u64), PlanError> {
    let pre = sc
        .pre_allocated_vus
        .ok_or_else(|| PlanError::field(p("preAllocatedVUs"), format!("is required by {kind}")))?
        .0;
    let max = sc.max_vus.map_or(pre, |c| c.0);
    if max < pre {
        return Err(PlanError::field(
            p("maxVUs"),
            format!(
                "{max} is less than preAllocatedVUs ({pre}); maxVUs must be at least preAllocatedVUs"
            ),
        ));
    }
    if max == 0 {
        let field = if sc.max_vus.is_some() {
            "maxVUs"
        } else {
            "preAllocatedVUs"
        };
        return Err(PlanError::invalid(
            p(field),
            "0",
            "at least 1 VU to run iterations",
        ));
    }
    Ok((pre, max))
}
