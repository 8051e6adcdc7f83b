//! Custom metrics of a plan document: declared under `metrics:` with k6's
//! rules (a name of letters, digits and `_` not starting with a digit, at
//! most 128 characters, not a built-in's), registered for the process so
//! that thresholds, the recorder, the summary and the fleet's wire know
//! them by name; fed by `metric` steps and requests' `metrics:` entries.

use super::super::error::PlanError;
use super::super::raw::{
    OrderedMap, RawMetricStep, RawMetricType, RawRequestMetric, WrittenMetricSpec,
};
use super::super::template_parse::parse_template;
use super::super::types::{MetricStep, MetricValue, RequestMetric};
use super::flow::FlowContext;
use crate::catalog::{Metric, MetricKind, Unit};

const NAME_FORM: &str =
    "a metric name of letters, digits and _, not starting with a digit, at most 128 characters";

/// Registers the declared metrics, in document order.
pub(super) fn declare(
    raw: Option<&OrderedMap<WrittenMetricSpec>>,
) -> Result<Vec<Metric>, PlanError> {
    let mut out = Vec::new();
    for (name, WrittenMetricSpec(spec)) in raw.iter().flat_map(|m| m.0.iter()) {
        let path = format!("metrics.{name}");
        let valid = !name.is_empty()
            && name.len() <= 128
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(PlanError::invalid(path, name, NAME_FORM));
        }
        if Metric::ALL.iter().any(|m| m.name() == name) {
            return Err(PlanError::invalid(
                path,
                name,
                "a name that is not a built-in metric's",
            ));
        }
        let kind = match spec.kind {
            RawMetricType::Counter => MetricKind::Counter,
            RawMetricType::Gauge => MetricKind::Gauge,
            RawMetricType::Rate => MetricKind::Rate,
            RawMetricType::Trend => MetricKind::Trend,
        };
        let unit = match (spec.is_time, kind) {
            (Some(true), MetricKind::Trend) => Unit::Time,
            (Some(true), _) => {
                return Err(PlanError::field(
                    format!("{path}.isTime"),
                    "applies to trends only",
                ));
            }
            _ => Unit::Default,
        };
        // Only fails when the process already knows the name with another
        // type (a script's metric, or an earlier plan on this agent).
        let metric = crate::catalog::custom(name, kind, unit)
            .map_err(|message| PlanError::field(&path, message))?;
        out.push(metric);
    }
    Ok(out)
}

/// The declared metric `name`, or an error at `path` listing them.
fn declared(name: &str, path: &str, cx: &FlowContext<'_>) -> Result<Metric, PlanError> {
    cx.metrics
        .iter()
        .find(|m| m.name() == name)
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = cx.metrics.iter().map(|m| m.name()).collect();
            let expected = if known.is_empty() {
                "a metric declared under `metrics:` (it declares none)".to_string()
            } else {
                format!("a metric declared under `metrics:` ({})", known.join(", "))
            };
            PlanError::invalid(path, name, expected)
        })
}

/// A `metric` step inside `group` of the flow.
pub(super) fn metric_step(
    raw: &RawMetricStep,
    path: &str,
    group: &str,
    cx: &FlowContext<'_>,
) -> Result<MetricStep, PlanError> {
    let metric = declared(&raw.name, &format!("{path}.name"), cx)?;
    let add_path = format!("{path}.add");
    let text = raw.add.0.trim();
    let value = match text {
        "true" => MetricValue::Fixed(1.0),
        "false" => MetricValue::Fixed(0.0),
        _ => match text.parse::<f64>() {
            Ok(n) if n.is_finite() => MetricValue::Fixed(n),
            _ => {
                let template = parse_template(&raw.add.0, &cx.scope, &add_path)?.template;
                if template.as_static().is_some() {
                    return Err(PlanError::invalid(
                        add_path,
                        &raw.add.0,
                        "a number, true or false, or a template like \"${price}\"",
                    ));
                }
                MetricValue::Template(template)
            }
        },
    };
    Ok(MetricStep {
        metric,
        scenario: cx.scenario,
        group: group.to_string(),
        tags: super::tags(raw.tags.as_ref(), &format!("{path}.tags"))?,
        value,
    })
}

/// A request's `metrics:` entries.
pub(super) fn request_metrics(
    raw: Option<&Vec<RawRequestMetric>>,
    path: &str,
    cx: &FlowContext<'_>,
) -> Result<Vec<RequestMetric>, PlanError> {
    raw.iter()
        .flat_map(|list| list.iter())
        .enumerate()
        .map(|(i, m)| {
            let metric = declared(&m.name, &format!("{path}[{i}].name"), cx)?;
            Ok(RequestMetric {
                metric,
                value: m.value,
            })
        })
        .collect()
}
