//! [`Demand`]: what a compiled [`Plan`] asks of the machines that run it,
//! read from its typed values alone (nothing is allocated, nothing runs).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::plan::types::{Body, Executor, Flow, Plan, Scenario, Stage, Step};

/// What one scenario asks for at its peak.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioDemand {
    /// The scenario's name (its key in `scenarios`).
    pub name: String,
    /// Most VUs it can hold at once: `max(preAllocatedVUs, maxVUs)` for an
    /// arrival-rate executor (k6 initialises the pre-allocated ones up
    /// front and adds the rest as needed), every VU otherwise.
    pub vus: u64,
    /// The field that sets [`ScenarioDemand::vus`] (`vus`, `maxVUs`,
    /// `stages[2].target`, …), relative to the scenario.
    pub vus_field: String,
    /// Peak arrival rate in iterations per second; 0 for closed-model
    /// executors, whose pace their VUs set.
    pub rate: f64,
    /// The field that sets the peak rate (`rate`, `startRate`,
    /// `stages[1].target`), relative to the scenario.
    pub rate_field: String,
    /// The peak rate as the plan writes it: iterations per `time_unit`.
    pub rate_per_unit: u64,
    pub time_unit: Duration,
    /// Latest end of the scenario, graceful stops included.
    pub end: Duration,
    /// The field behind [`ScenarioDemand::end`] (`duration`,
    /// `maxDuration`, `stages`).
    pub end_field: &'static str,
    /// Request steps one iteration sends (each request of a `batch` counts).
    pub requests_per_iteration: u64,
}

/// What a whole plan (or one machine's share of it) asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub scenarios: Vec<ScenarioDemand>,
    /// The plan comes from a k6 script: its VUs are JavaScript runtimes,
    /// and its fields live under `options`.
    pub script: bool,
    /// The plan is the `default` scenario of k6's shortcuts (`vus`,
    /// `duration`, `iterations`, `stages` at the top level), so fields are
    /// named as written there.
    pub shortcut: bool,
    /// Rows of the data file.
    pub data_rows: u64,
    /// Bytes the data file's cells hold (kept once, shared by every VU).
    pub data_bytes: u64,
    /// Bytes of the files `multipart` bodies upload (read once at load).
    pub upload_bytes: u64,
    /// Bytes each VU renders per request for its largest `multipart` body
    /// whose fields vary (a body that never varies is encoded once).
    pub body_bytes_per_vu: u64,
}

// === impl Demand ===

impl Demand {
    /// Reads the demand off a compiled plan.
    pub fn of(plan: &Plan) -> Demand {
        let script = plan.scenarios.iter().any(|s| s.exec.is_some());
        let shortcut = plan.scenarios.len() == 1
            && plan.scenarios[0].name == "default"
            && !plan.scenarios[0].executor.is_open();
        let (data_rows, data_bytes) = plan.data.as_ref().map_or((0, 0), |d| {
            let cells: usize = d.rows.iter().flatten().map(String::len).sum();
            let header: usize = d.columns.iter().map(String::len).sum();
            (d.rows.len() as u64, (cells + header) as u64)
        });
        let (upload_bytes, body_bytes_per_vu) = uploads(plan);
        Demand {
            scenarios: plan.scenarios.iter().map(scenario).collect(),
            script,
            shortcut,
            data_rows,
            data_bytes,
            upload_bytes,
            body_bytes_per_vu,
        }
    }

    /// Every scenario's peak VUs added up: scenarios that overlap in time
    /// hold theirs together, and a script's VUs are all initialised before
    /// the start, so the sum is what a machine must be ready for.
    pub fn vus(&self) -> u64 {
        self.scenarios
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.vus))
    }

    /// Every arrival-rate scenario's peak rate added up (iterations per
    /// second), as if the peaks coincided.
    pub fn rate(&self) -> f64 {
        self.scenarios.iter().map(|s| s.rate).sum()
    }

    /// The latest instant any scenario may still run, from the test start.
    pub fn duration(&self) -> Duration {
        self.scenarios
            .iter()
            .map(|s| s.end)
            .max()
            .unwrap_or_default()
    }

    /// Most request steps one iteration of any scenario sends.
    pub fn requests_per_iteration(&self) -> u64 {
        self.scenarios
            .iter()
            .map(|s| s.requests_per_iteration)
            .max()
            .unwrap_or(0)
    }

    /// Bytes held once per machine whatever the VU count: the data file and
    /// the uploaded files.
    pub fn shared_bytes(&self) -> u64 {
        self.data_bytes.saturating_add(self.upload_bytes)
    }

    /// One machine's share: VUs through `scale_vus` (an execution
    /// segment's exact share of a count), rates by `fraction` (the
    /// segment's length). Durations, requests per iteration and the bytes
    /// every machine holds stay whole.
    pub fn share(&self, fraction: f64, scale_vus: impl Fn(u64) -> u64) -> Demand {
        Demand {
            scenarios: self
                .scenarios
                .iter()
                .map(|s| ScenarioDemand {
                    vus: scale_vus(s.vus),
                    rate: s.rate * fraction,
                    ..s.clone()
                })
                .collect(),
            ..self.clone()
        }
    }

    /// Where a scenario's field is written in the plan, as a person would
    /// look for it: `scenarios.main.rate`, the top-level `vus` of a
    /// shortcut plan, `options.scenarios.main.rate` in a script.
    pub fn path(&self, scenario: &ScenarioDemand, field: &str) -> String {
        let prefix = if self.script { "options." } else { "" };
        if self.shortcut {
            let field = match field {
                "maxDuration" => "duration",
                "startVUs" => "vus",
                other => other,
            };
            return format!("{prefix}{field}");
        }
        format!("{prefix}scenarios.{}.{field}", scenario.name)
    }

    /// The scenario asking for the most VUs, if any asks for one.
    pub fn largest_vus(&self) -> Option<&ScenarioDemand> {
        self.scenarios
            .iter()
            .filter(|s| s.vus > 0)
            .max_by_key(|s| s.vus)
    }

    /// The scenario asking for the highest rate, if any has one.
    pub fn largest_rate(&self) -> Option<&ScenarioDemand> {
        self.scenarios
            .iter()
            .filter(|s| s.rate > 0.0)
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    /// The scenario that ends last.
    pub fn longest(&self) -> Option<&ScenarioDemand> {
        self.scenarios.iter().max_by_key(|s| s.end)
    }

    /// The scenario with the most requests per iteration.
    pub fn most_requests(&self) -> Option<&ScenarioDemand> {
        self.scenarios
            .iter()
            .max_by_key(|s| s.requests_per_iteration)
    }
}

fn scenario(s: &Scenario) -> ScenarioDemand {
    let (vus, vus_field) = peak_vus(&s.executor);
    let (rate_per_unit, rate_field, time_unit) = peak_rate(&s.executor);
    let rate = if time_unit.is_zero() {
        0.0
    } else {
        rate_per_unit as f64 / time_unit.as_secs_f64()
    };
    let end_field = match &s.executor {
        Executor::ConstantVus { .. } | Executor::ConstantArrivalRate { .. } => "duration",
        Executor::RampingVus { .. } | Executor::RampingArrivalRate { .. } => "stages",
        Executor::PerVuIterations { .. } | Executor::SharedIterations { .. } => "maxDuration",
    };
    ScenarioDemand {
        name: s.name.clone(),
        vus,
        vus_field,
        rate,
        rate_field,
        rate_per_unit,
        time_unit,
        end: s.max_end(),
        end_field,
        requests_per_iteration: requests(&s.flow),
    }
}

/// Most VUs of an executor and the field that sets them.
fn peak_vus(executor: &Executor) -> (u64, String) {
    match executor {
        Executor::ConstantVus { vus, .. }
        | Executor::PerVuIterations { vus, .. }
        | Executor::SharedIterations { vus, .. } => (*vus, "vus".into()),
        Executor::RampingVus {
            start_vus, stages, ..
        } => peak_stage(*start_vus, "startVUs", stages),
        Executor::ConstantArrivalRate {
            pre_allocated_vus,
            max_vus,
            ..
        }
        | Executor::RampingArrivalRate {
            pre_allocated_vus,
            max_vus,
            ..
        } => {
            if max_vus >= pre_allocated_vus {
                (*max_vus, "maxVUs".into())
            } else {
                (*pre_allocated_vus, "preAllocatedVUs".into())
            }
        }
    }
}

/// Peak rate per time unit of an arrival-rate executor, its field and the
/// time unit; `(0, "", 0)` for the others.
fn peak_rate(executor: &Executor) -> (u64, String, Duration) {
    match executor {
        Executor::ConstantArrivalRate {
            rate, time_unit, ..
        } => (*rate, "rate".into(), *time_unit),
        Executor::RampingArrivalRate {
            start_rate,
            time_unit,
            stages,
            ..
        } => {
            let (rate, field) = peak_stage(*start_rate, "startRate", stages);
            (rate, field, *time_unit)
        }
        _ => (0, String::new(), Duration::ZERO),
    }
}

/// The largest of a start value and the stages' targets, and its field
/// (the first stage that reaches it).
fn peak_stage(start: u64, start_field: &str, stages: &[Stage]) -> (u64, String) {
    let mut peak = (start, start_field.to_owned());
    for (i, stage) in stages.iter().enumerate() {
        if stage.target > peak.0 {
            peak = (stage.target, format!("stages[{i}].target"));
        }
    }
    peak
}

/// Request steps of one iteration of `flow`.
fn requests(flow: &Flow) -> u64 {
    fn count(steps: &[Step]) -> u64 {
        steps
            .iter()
            .map(|step| match step {
                Step::Request(_) => 1,
                Step::Batch(requests) => requests.len() as u64,
                Step::Group(group) => count(&group.steps),
                Step::Sleep(_) | Step::Metric(_) => 0,
            })
            .fold(0u64, u64::saturating_add)
    }
    count(&flow.steps)
}

/// Bytes of the distinct uploaded files (a file several requests send is
/// read once) and of the largest multipart body rendered per request.
fn uploads(plan: &Plan) -> (u64, u64) {
    let mut seen = BTreeSet::new();
    let mut held = 0u64;
    let mut per_vu = 0u64;
    // Every request step, setup's and teardown's included.
    for request in &plan.requests {
        let Some(Body::Multipart(m)) = &request.body else {
            continue;
        };
        let mut files = 0u64;
        let mut varies = false;
        for (_, part) in m.parts() {
            match part {
                crate::plan::PartValue::File(f) => {
                    let len = f.data.len() as u64;
                    files = files.saturating_add(len);
                    // The same bytes shared by several parts or requests
                    // are held once.
                    if seen.insert(f.data.as_ptr() as usize) {
                        held = held.saturating_add(len);
                    }
                }
                crate::plan::PartValue::Field(t) => varies |= t.as_static().is_none(),
            }
        }
        if varies {
            per_vu = per_vu.max(files);
        }
    }
    (held, per_vu)
}
