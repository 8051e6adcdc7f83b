//! Flows: steps, groups and sleeps, plus the plan-wide registry that hands
//! out [`RequestId`]s, [`CheckId`]s, [`GroupId`]s and [`VarSlot`]s in
//! document order.
//!
//! Checks and groups are identified the way k6 shows them: two checks with
//! the same name in the same group of the same scenario are one check (k6
//! merges their results), and two `group` steps with the same path in one
//! scenario share a [`GroupId`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::super::error::PlanError;
use super::super::raw::{RawBatch, RawStep, RequestShort, STEP_KINDS, SleepSpec};
use super::super::template_parse::{RESERVED_NAMES, Scope, is_identifier};
use super::super::types::{
    CheckId, CheckInfo, Flow, Group, GroupId, GroupInfo, HttpOptions, Request, RequestId, Sleep,
    Step, VarSlot,
};
use super::request::{RequestInput, compile_request};

/// Ids and names collected across the whole plan.
#[derive(Default)]
pub(crate) struct Registry {
    pub requests: Vec<Arc<Request>>,
    pub checks: Vec<CheckInfo>,
    pub groups: Vec<GroupInfo>,
    pub vars: Vec<String>,
    check_ids: HashMap<(usize, String, String), CheckId>,
    group_ids: HashMap<(usize, String), GroupId>,
    var_slots: HashMap<String, VarSlot>,
}

impl Registry {
    pub fn next_request_id(&self, path: &str) -> Result<RequestId, PlanError> {
        u32::try_from(self.requests.len())
            .map(RequestId)
            .map_err(|_| {
                PlanError::field(
                    path,
                    "the plan has more requests than Volley can number (2^32)",
                )
            })
    }

    /// The id of the check `name` in `group` of `scenario`, shared by
    /// every check with that name there.
    pub fn check_id(
        &mut self,
        scenario: usize,
        group: &str,
        name: &str,
        path: &str,
    ) -> Result<CheckId, PlanError> {
        let key = (scenario, group.to_string(), name.to_string());
        if let Some(id) = self.check_ids.get(&key) {
            return Ok(*id);
        }
        let id = u32::try_from(self.checks.len()).map(CheckId).map_err(|_| {
            PlanError::field(
                path,
                "the plan has more checks than Volley can number (2^32)",
            )
        })?;
        self.checks.push(CheckInfo {
            name: name.to_string(),
            scenario,
            group: group.to_string(),
        });
        self.check_ids.insert(key, id);
        Ok(id)
    }

    fn group_id(&mut self, scenario: usize, path: &str, field: &str) -> Result<GroupId, PlanError> {
        let key = (scenario, path.to_string());
        if let Some(id) = self.group_ids.get(&key) {
            return Ok(*id);
        }
        let id = u32::try_from(self.groups.len()).map(GroupId).map_err(|_| {
            PlanError::field(
                field,
                "the plan has more groups than Volley can number (2^32)",
            )
        })?;
        self.groups.push(GroupInfo {
            path: path.to_string(),
            scenario,
        });
        self.group_ids.insert(key, id);
        Ok(id)
    }

    fn var_slot(&mut self, name: &str, path: &str) -> Result<VarSlot, PlanError> {
        if let Some(slot) = self.var_slots.get(name) {
            return Ok(*slot);
        }
        let slot = u16::try_from(self.vars.len()).map(VarSlot).map_err(|_| {
            PlanError::field(
                path,
                "the plan captures more distinct variables than Volley supports (65536)",
            )
        })?;
        self.vars.push(name.to_string());
        self.var_slots.insert(name.to_string(), slot);
        Ok(slot)
    }
}

/// What every step of one scenario's flow shares.
#[derive(Clone, Copy)]
pub(crate) struct FlowContext<'a> {
    pub scenario: usize,
    pub scope: Scope<'a>,
    pub http: &'a HttpOptions,
    /// The plan's custom metrics (`metrics:`).
    pub metrics: &'a [crate::catalog::Metric],
    /// Files read for `multipart:` bodies.
    pub uploads: &'a super::multipart::Uploads<'a>,
    /// The target this copy of the flow sends to (plans with `targets`):
    /// request URLs are paths after its base, requests tagged with its
    /// region.
    pub target: Option<&'a super::super::types::Target>,
}

/// Registers every variable captured anywhere in `steps` and returns them
/// by name: all templates of the flow may use them. None may be one of
/// `read_only` (what `setup` captured).
pub(crate) fn collect_vars(
    steps: &[RawStep],
    path: &str,
    registry: &mut Registry,
    read_only: &BTreeMap<String, VarSlot>,
    out: &mut BTreeMap<String, VarSlot>,
) -> Result<(), PlanError> {
    for (i, step) in steps.iter().enumerate() {
        let step_path = format!("{path}[{i}]");
        for (key, request) in step_requests(step) {
            for (j, capture) in request.capture.iter().flatten().enumerate() {
                let var_path = format!("{step_path}.{key}.capture[{j}].var");
                let name = capture.var.as_str();
                if !is_identifier(name) {
                    return Err(PlanError::invalid(
                        var_path,
                        name,
                        "a variable name of letters, digits and `_`, not starting with a digit",
                    ));
                }
                if RESERVED_NAMES.contains(&name) {
                    return Err(PlanError::invalid(
                        var_path,
                        name,
                        format!(
                            "a name other than the placeholder words ({})",
                            RESERVED_NAMES.join(", ")
                        ),
                    ));
                }
                if read_only.contains_key(name) {
                    return Err(PlanError::invalid(
                        var_path,
                        name,
                        "a name `setup` does not capture (setup's values are read-only in the other flows)",
                    ));
                }
                let slot = registry.var_slot(name, &var_path)?;
                out.insert(name.to_string(), slot);
            }
        }
        if let Some(group) = &step.group {
            collect_vars(
                &group.flow,
                &format!("{step_path}.group.flow"),
                registry,
                read_only,
                out,
            )?;
        }
    }
    Ok(())
}

/// The full requests of a step, with the key they are under.
fn step_requests(step: &RawStep) -> Vec<(String, &super::super::raw::RawRequest)> {
    let mut out = Vec::new();
    if let Some(r) = &step.request {
        out.push(("request".to_string(), r));
    }
    for (key, short) in method_shortcuts(step) {
        if let Some(RequestShort::Full(r)) = short {
            out.push((key.to_string(), r.as_ref()));
        }
    }
    if let Some(b) = &step.batch {
        for (i, r) in b.requests.iter().enumerate() {
            out.push((batch_key(b, i), r));
        }
    }
    out
}

/// Where the `i`th request of a batch is: `batch[i]` or `batch.requests[i]`.
fn batch_key(b: &RawBatch, i: usize) -> String {
    if b.keyed {
        format!("batch.requests[{i}]")
    } else {
        format!("batch[{i}]")
    }
}

fn method_shortcuts(step: &RawStep) -> [(&'static str, &Option<RequestShort>); 7] {
    [
        ("get", &step.get),
        ("post", &step.post),
        ("put", &step.put),
        ("patch", &step.patch),
        ("delete", &step.delete),
        ("head", &step.head),
        ("options", &step.options),
    ]
}

/// Compiles one flow (top level or a group's). `group` is the enclosing
/// k6 group path (`""` at the top).
pub(crate) fn compile_steps(
    steps: &[RawStep],
    path: &str,
    group: &str,
    cx: &FlowContext<'_>,
    registry: &mut Registry,
) -> Result<Vec<Step>, PlanError> {
    if steps.is_empty() {
        return Err(PlanError::field(
            path,
            "is empty; a flow needs at least one step",
        ));
    }
    let mut out = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let step_path = format!("{path}[{i}]");
        out.push(compile_step(step, &step_path, group, cx, registry)?);
    }
    Ok(out)
}

pub(crate) fn compile_flow(
    steps: &[RawStep],
    path: &str,
    cx: &FlowContext<'_>,
    registry: &mut Registry,
) -> Result<Flow, PlanError> {
    Ok(Flow {
        steps: compile_steps(steps, path, "", cx, registry)?,
    })
}

/// Checks that exactly one of `keys` (`(key, is set)`) is set: else the
/// error at `path` is `none` or names two that are, then `rule`.
pub(super) fn exactly_one(
    keys: &[(&str, bool)],
    path: &str,
    none: &str,
    rule: &str,
) -> Result<(), PlanError> {
    let mut set = keys.iter().filter(|(_, on)| *on).map(|(k, _)| *k);
    match (set.next(), set.next()) {
        (None, _) => Err(PlanError::field(path, none)),
        (Some(_), None) => Ok(()),
        (Some(a), Some(b)) => Err(PlanError::field(
            path,
            format!("has both `{a}` and `{b}`; {rule}"),
        )),
    }
}

fn compile_step(
    step: &RawStep,
    path: &str,
    group: &str,
    cx: &FlowContext<'_>,
    registry: &mut Registry,
) -> Result<Step, PlanError> {
    let mut keys = vec![("request", step.request.is_some())];
    keys.extend(method_shortcuts(step).map(|(key, short)| (key, short.is_some())));
    keys.extend([
        ("sleep", step.sleep.is_some()),
        ("group", step.group.is_some()),
        ("batch", step.batch.is_some()),
        ("metric", step.metric.is_some()),
    ]);
    exactly_one(
        &keys,
        path,
        &format!("is an empty step; expected one of {STEP_KINDS}"),
        &format!("a step has exactly one of {STEP_KINDS}"),
    )?;

    if let Some(request) = &step.request {
        let input = RequestInput {
            raw: request,
            forced_method: None,
            url_only: None,
        };
        return compile_request(input, &format!("{path}.request"), group, cx, registry)
            .map(Step::Request);
    }
    for (key, short) in method_shortcuts(step) {
        let Some(short) = short else { continue };
        let default_raw;
        let (raw, url_only) = match short {
            RequestShort::Full(r) => (r.as_ref(), None),
            RequestShort::Url(url) => {
                default_raw = super::super::raw::RawRequest::default();
                (&default_raw, Some(url.as_str()))
            }
        };
        let input = RequestInput {
            raw,
            forced_method: Some(key),
            url_only,
        };
        return compile_request(input, &format!("{path}.{key}"), group, cx, registry)
            .map(Step::Request);
    }
    if let Some(b) = &step.batch {
        if b.requests.is_empty() {
            return Err(PlanError::field(
                format!("{path}.batch"),
                "is empty; a batch needs at least one request",
            ));
        }
        let mut requests = Vec::with_capacity(b.requests.len());
        for (i, raw) in b.requests.iter().enumerate() {
            let input = RequestInput {
                raw,
                forced_method: None,
                url_only: None,
            };
            let at = format!("{path}.{}", batch_key(b, i));
            requests.push(compile_request(input, &at, group, cx, registry)?);
        }
        return Ok(Step::Batch(requests));
    }
    if let Some(m) = &step.metric {
        return super::metric::metric_step(m, &format!("{path}.metric"), group, cx)
            .map(Step::Metric);
    }
    if let Some(sleep) = &step.sleep {
        return compile_sleep(sleep, &format!("{path}.sleep")).map(Step::Sleep);
    }
    if let Some(g) = &step.group {
        let name_path = format!("{path}.group.name");
        if g.name.trim().is_empty() {
            return Err(PlanError::invalid(
                name_path,
                &g.name,
                "a non-empty group name",
            ));
        }
        if g.name.contains("::") {
            return Err(PlanError::invalid(
                name_path,
                &g.name,
                "a group name without \"::\" (it separates nested groups)",
            ));
        }
        let group_path = format!("{group}::{}", g.name);
        let id = registry.group_id(cx.scenario, &group_path, &name_path)?;
        let steps = compile_steps(
            &g.flow,
            &format!("{path}.group.flow"),
            &group_path,
            cx,
            registry,
        )?;
        return Ok(Step::Group(Group {
            id,
            name: g.name.clone(),
            steps,
        }));
    }
    Err(PlanError::field(
        path,
        format!("is an empty step; expected one of {STEP_KINDS}"),
    ))
}

fn compile_sleep(sleep: &SleepSpec, path: &str) -> Result<Sleep, PlanError> {
    match sleep {
        SleepSpec::Fixed(d) => Ok(Sleep::Fixed(*d)),
        SleepSpec::Range(r) => {
            let (min, max) = (r.min.0, r.max.0);
            if min > max {
                return Err(PlanError::field(
                    path,
                    format!(
                        "min ({}) is greater than max ({})",
                        super::super::duration::format_duration(min),
                        super::super::duration::format_duration(max)
                    ),
                ));
            }
            Ok(Sleep::Uniform { min, max })
        }
    }
}
