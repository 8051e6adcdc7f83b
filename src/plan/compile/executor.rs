//! Which scenarios a plan runs: k6's execution shortcuts, CLI overrides and
//! the `scenarios` map, each turned into a validated [`Executor`].
//!
//! Shortcuts follow k6's `DeriveScenariosFromShortcuts`: `iterations` (with
//! optional `vus`, and `duration` as `maxDuration`) → `shared-iterations`;
//! `duration` (+ `vus`) → `constant-vus`; `stages` → `ramping-vus` starting
//! at `vus` (default 1); only `vus` → `shared-iterations` with one iteration
//! per VU; nothing → one VU running one iteration (`per-vu-iterations`).
//!
//! CLI overrides follow k6's `Options.Apply`: `--duration`, `--iterations`
//! or `--stage` replace *all* execution settings of the plan (its
//! shortcuts and its `scenarios`), and `--vus` replaces the plan's `vus`.
//! The resulting `default` scenario runs the plan's top-level `flow`, or,
//! when the plan only has scenarios, the flow of the first scenario by
//! name; that scenario's own `env`, `tags` and timing are not carried over.
//! Where k6 silently ignores `--vus` next to `scenarios`, Volley refuses it.

use std::time::Duration;

use super::super::duration::{MAX_DURATION, format_duration};
use super::super::error::PlanError;
use super::super::load::Overrides;
use super::super::raw::{Count, DurationValue, OrderedMap, RawPlan, RawStage, RawStep, Scalar};
use super::super::types::{Executor, Stage};

/// One scenario before its flow is compiled.
pub(crate) struct ScenarioSpec<'r> {
    pub name: String,
    pub executor: Executor,
    pub start_time: Duration,
    pub graceful_stop: Duration,
    pub tags: Option<&'r OrderedMap<Scalar>>,
    /// Where `tags` is, for error paths.
    pub tags_path: String,
    pub env: Option<&'r OrderedMap<Scalar>>,
    /// The script function a scenario names (`exec`), if any.
    pub exec: Option<&'r str>,
    pub flow: &'r [RawStep],
    /// Where `flow` is, for error paths (`flow` or `scenarios.x.flow`).
    pub flow_path: String,
}

const DEFAULT_SCENARIO: &str = "default";
pub(super) const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);
pub(super) const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);
pub(super) const DEFAULT_TIME_UNIT: Duration = Duration::from_secs(1);

/// A value and where it came from (`vus` in the plan, `--vus` on the CLI).
#[derive(Clone)]
pub(super) struct Sourced<T> {
    pub value: T,
    pub path: String,
}

pub(super) fn from<T>(value: T, path: &str) -> Sourced<T> {
    Sourced {
        value,
        path: path.to_string(),
    }
}

/// The four k6 execution shortcuts of one config tier.
#[derive(Default)]
struct Shortcuts {
    vus: Option<Sourced<u64>>,
    duration: Option<Sourced<Duration>>,
    iterations: Option<Sourced<u64>>,
    stages: Option<Sourced<Vec<Stage>>>,
}

/// Resolves the plan's scenarios, sorted by name.
pub(crate) fn scenarios<'r>(
    raw: &'r RawPlan,
    overrides: &Overrides,
) -> Result<Vec<ScenarioSpec<'r>>, PlanError> {
    let cli_vus = overrides.vus.map(|v| from(v, "--vus"));
    let cli_replaces = overrides.duration.is_some()
        || overrides.iterations.is_some()
        || overrides.stages.is_some();
    if cli_replaces {
        let stages = match &overrides.stages {
            Some(stages) => Some(from(stages_checked(stages, "--stage")?, "--stage")),
            None => None,
        };
        let shortcuts = Shortcuts {
            vus: cli_vus.or_else(|| raw.vus.map(|Count(v)| from(v, "vus"))),
            duration: overrides.duration.map(|d| from(d, "--duration")),
            iterations: overrides.iterations.map(|i| from(i, "--iterations")),
            stages,
        };
        let (flow, flow_path) = override_flow(raw)?;
        return Ok(vec![default_scenario(
            shortcut_executor(shortcuts)?,
            flow,
            flow_path,
        )]);
    }

    let plan_shortcuts = Shortcuts {
        vus: raw.vus.map(|Count(v)| from(v, "vus")),
        duration: raw.duration.map(|DurationValue(d)| from(d, "duration")),
        iterations: raw.iterations.map(|Count(i)| from(i, "iterations")),
        stages: match &raw.stages {
            Some(stages) => Some(from(raw_stages(stages, "stages")?, "stages")),
            None => None,
        },
    };
    if let Some(scenarios) = &raw.scenarios {
        let first_shortcut = [
            plan_shortcuts.vus.as_ref().map(|_| "vus"),
            plan_shortcuts.duration.as_ref().map(|_| "duration"),
            plan_shortcuts.iterations.as_ref().map(|_| "iterations"),
            plan_shortcuts.stages.as_ref().map(|_| "stages"),
        ]
        .into_iter()
        .flatten()
        .next();
        if let Some(field) = first_shortcut {
            return Err(PlanError::field(
                field,
                format!(
                    "cannot be used together with `scenarios`; set `{field}` inside a scenario, or drop `scenarios` to use the shortcut"
                ),
            ));
        }
        if cli_vus.is_some() {
            return Err(PlanError::field(
                "--vus",
                "cannot change a plan that defines `scenarios`; add --duration, --iterations or --stage to replace them with one scenario",
            ));
        }
        if scenarios.0.is_empty() {
            return Err(PlanError::field(
                "scenarios",
                "is empty; define at least one scenario",
            ));
        }
        let mut specs = scenarios
            .0
            .iter()
            .map(|(name, sc)| super::scenario::scenario(name, sc, raw.flow.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(specs);
    }

    let shortcuts = Shortcuts {
        vus: cli_vus.or(plan_shortcuts.vus),
        ..plan_shortcuts
    };
    let executor = shortcut_executor(shortcuts)?;
    let flow = raw.flow.as_deref().ok_or_else(missing_flow)?;
    Ok(vec![default_scenario(executor, flow, "flow".into())])
}

fn missing_flow() -> PlanError {
    PlanError::field(
        "flow",
        "is missing; a plan needs a top-level `flow` or `scenarios`",
    )
}

/// The flow the CLI's `default` scenario runs (see the module docs).
fn override_flow(raw: &RawPlan) -> Result<(&[RawStep], String), PlanError> {
    if let Some(flow) = &raw.flow {
        return Ok((flow, "flow".into()));
    }
    let first = raw
        .scenarios
        .as_ref()
        .and_then(|s| s.0.iter().min_by(|a, b| a.0.cmp(&b.0)));
    match first {
        Some((name, sc)) => match &sc.flow {
            Some(flow) => Ok((flow, format!("scenarios.{name}.flow"))),
            None => Err(PlanError::field(
                format!("scenarios.{name}.flow"),
                "is missing; a scenario needs a flow unless the plan has a top-level `flow`",
            )),
        },
        None => Err(missing_flow()),
    }
}

fn default_scenario(executor: Executor, flow: &[RawStep], flow_path: String) -> ScenarioSpec<'_> {
    ScenarioSpec {
        name: DEFAULT_SCENARIO.into(),
        executor,
        start_time: Duration::ZERO,
        graceful_stop: DEFAULT_GRACEFUL_STOP,
        tags: None,
        tags_path: String::new(),
        env: None,
        exec: None,
        flow,
        flow_path,
    }
}

/// k6's shortcut rules (module docs).
fn shortcut_executor(s: Shortcuts) -> Result<Executor, PlanError> {
    if let Some(iterations) = s.iterations {
        if let Some(stages) = &s.stages {
            return Err(conflict(&stages.path, &iterations.path));
        }
        let vus = s.vus.unwrap_or_else(|| from(1, "vus"));
        at_least_one(&vus)?;
        at_least_one(&iterations)?;
        if iterations.value < vus.value {
            return Err(fewer_iterations_than_vus(
                &iterations.path,
                iterations.value,
                vus.value,
            ));
        }
        let max_duration = match s.duration {
            Some(d) => positive(&d)?,
            None => DEFAULT_MAX_DURATION,
        };
        return Ok(Executor::SharedIterations {
            vus: vus.value,
            iterations: iterations.value,
            max_duration,
        });
    }
    if let Some(duration) = s.duration {
        if let Some(stages) = &s.stages {
            return Err(conflict(&stages.path, &duration.path));
        }
        let vus = s.vus.unwrap_or_else(|| from(1, "vus"));
        at_least_one(&vus)?;
        return Ok(Executor::ConstantVus {
            vus: vus.value,
            duration: positive(&duration)?,
        });
    }
    if let Some(stages) = s.stages {
        let start_vus = s.vus.map_or(1, |v| v.value);
        let stages = ramp_stages(stages.value, &stages.path, start_vus, "VUs")?;
        return Ok(Executor::RampingVus {
            start_vus,
            stages,
            graceful_ramp_down: DEFAULT_GRACEFUL_STOP,
        });
    }
    if let Some(vus) = s.vus {
        at_least_one(&vus)?;
        return Ok(Executor::SharedIterations {
            vus: vus.value,
            iterations: vus.value,
            max_duration: DEFAULT_MAX_DURATION,
        });
    }
    Ok(Executor::PerVuIterations {
        vus: 1,
        iterations: 1,
        max_duration: DEFAULT_MAX_DURATION,
    })
}

fn conflict(a: &str, b: &str) -> PlanError {
    PlanError::field(a, format!("cannot be used together with `{b}`; choose one"))
}

pub(super) fn fewer_iterations_than_vus(path: &str, iterations: u64, vus: u64) -> PlanError {
    PlanError::field(
        path,
        format!(
            "{iterations} iterations cannot be shared by {vus} VUs; give at least as many iterations as VUs"
        ),
    )
}

pub(super) fn at_least_one(v: &Sourced<u64>) -> Result<u64, PlanError> {
    if v.value == 0 {
        Err(PlanError::invalid(
            &v.path,
            "0",
            "at least 1 (0 would run nothing)",
        ))
    } else {
        Ok(v.value)
    }
}

/// Positive and at most [`MAX_DURATION`] (the plan's own durations are
/// bounded when parsed; CLI values arrive as `Duration`s).
pub(super) fn positive(d: &Sourced<Duration>) -> Result<Duration, PlanError> {
    if d.value.is_zero() {
        Err(PlanError::invalid(&d.path, "0s", "a positive duration"))
    } else if d.value > MAX_DURATION {
        Err(PlanError::invalid(
            &d.path,
            format_duration(d.value),
            format!("at most {}", format_duration(MAX_DURATION)),
        ))
    } else {
        Ok(d.value)
    }
}

pub(super) fn raw_stages(stages: &[RawStage], path: &str) -> Result<Vec<Stage>, PlanError> {
    let stages: Vec<Stage> = stages
        .iter()
        .map(|s| Stage {
            duration: s.duration.0,
            target: s.target.0,
        })
        .collect();
    stages_checked(&stages, path)
}

/// Non-empty, and the durations add up to something positive and bounded.
fn stages_checked(stages: &[Stage], path: &str) -> Result<Vec<Stage>, PlanError> {
    if stages.is_empty() {
        return Err(PlanError::field(
            path,
            "is empty; give at least one {duration, target} stage",
        ));
    }
    let mut total = Duration::ZERO;
    for s in stages {
        total = total.saturating_add(s.duration);
    }
    if total.is_zero() {
        return Err(PlanError::field(
            path,
            "stages go nowhere: their durations add up to 0s",
        ));
    }
    if total > MAX_DURATION {
        return Err(PlanError::field(
            path,
            format!(
                "stages last {}, longer than the {} a plan may run",
                format_duration(total),
                format_duration(MAX_DURATION)
            ),
        ));
    }
    Ok(stages.to_vec())
}

/// Stages of a ramping executor that must rise above 0 at some point.
pub(super) fn ramp_stages(
    stages: Vec<Stage>,
    path: &str,
    start: u64,
    what: &str,
) -> Result<Vec<Stage>, PlanError> {
    if start == 0 && stages.iter().all(|s| s.target == 0) {
        return Err(PlanError::field(
            path,
            format!("{what} never rise above 0, so nothing would run"),
        ));
    }
    Ok(stages)
}
