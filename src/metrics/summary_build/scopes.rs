//! The per-scenario and per-group results `--summary-mode full` shows
//! after TOTAL RESULTS, as k6 does: for each scenario, its metrics and
//! checks (samples tagged `scenario:NAME`), then each group of it (tagged
//! `group:::a::b` as well), nested groups after their parents. A group
//! shows its checks, requests and custom metrics, as k6's does.

use std::collections::BTreeSet;

use super::super::aggregate::Aggregate;
use super::super::catalog::{Metric, Section};
use super::super::summary::{CheckSummary, MetricSummary, ScopeKind, SummaryScope};
use super::super::tags::key;
use super::super::value::Value;
use super::values_of;
use crate::plan::{Plan, TrendStat};

/// Most scopes a summary carries (it travels from a fleet's origin to
/// its client); past this the rest are left out, with a note.
pub const MAX_SCOPES: usize = 64;

/// The scopes, in order: each scenario (by name), then its groups.
/// `capped` is set when [`MAX_SCOPES`] left some out.
pub fn scopes(
    agg: &Aggregate,
    plan: &Plan,
    metrics: &[Metric],
    stats: &[TrendStat],
    seconds: f64,
    capped: &mut bool,
) -> Vec<SummaryScope> {
    let mut out = Vec::new();
    for scenario in &plan.scenarios {
        let base = vec![(key::SCENARIO.to_string(), scenario.name.clone())];
        let mut groups = BTreeSet::new();
        for (k, _) in agg.series() {
            if k.tags.get(key::SCENARIO) != Some(scenario.name.as_str()) {
                continue;
            }
            if let Some(g) = k.tags.get(key::GROUP).filter(|g| !g.is_empty()) {
                // Every enclosing group too, so nesting shows.
                let mut at = 0;
                while let Some(i) = g[at..].find("::").map(|i| i + at) {
                    if i > 0 {
                        groups.insert(g[..i].to_string());
                    }
                    at = i + 2;
                }
                groups.insert(g.to_string());
            }
        }
        let scope = |kind, name: String, depth, filter: &[(String, String)]| SummaryScope {
            kind,
            name,
            depth,
            metrics: scoped_metrics(agg, metrics, filter, kind, stats, seconds),
            checks: scoped_checks(agg, filter),
        };
        if out.len() >= MAX_SCOPES {
            *capped = true;
            break;
        }
        out.push(scope(ScopeKind::Scenario, scenario.name.clone(), 0, &base));
        for g in groups {
            if out.len() >= MAX_SCOPES {
                *capped = true;
                break;
            }
            let depth = g.matches("::").count();
            let name = g.rsplit("::").next().unwrap_or(&g).to_string();
            let mut filter = base.clone();
            filter.push((key::GROUP.to_string(), g.clone()));
            out.push(scope(ScopeKind::Group, name, depth, &filter));
        }
    }
    out
}

fn scoped_metrics(
    agg: &Aggregate,
    metrics: &[Metric],
    filter: &[(String, String)],
    kind: ScopeKind,
    stats: &[TrendStat],
    seconds: f64,
) -> Vec<MetricSummary> {
    metrics
        .iter()
        // A group shows its requests and custom metrics, as k6 does.
        .filter(|m| kind == ScopeKind::Scenario || m.section().is_none_or(|s| s == Section::Http))
        .filter_map(|m| {
            let v = agg.metric_value(*m, filter)?;
            Some(MetricSummary {
                name: m.name().to_string(),
                tags: Vec::new(),
                values: values_of(Some(&v), m.kind(), stats, seconds),
            })
        })
        .collect()
}

/// The checks run in the scope, by name (and group), in name order.
fn scoped_checks(agg: &Aggregate, filter: &[(String, String)]) -> Vec<CheckSummary> {
    let mut out: Vec<CheckSummary> = Vec::new();
    for (k, v) in agg.series_of(Metric::Checks) {
        if !filter
            .iter()
            .all(|(fk, fv)| k.tags.get(fk) == Some(fv.as_str()))
        {
            continue;
        }
        let Value::Rate { trues, total } = v else {
            continue;
        };
        let name = k.tags.get(key::CHECK).unwrap_or("").to_string();
        let group = k.tags.get(key::GROUP).unwrap_or("").to_string();
        let fails = total.saturating_sub(*trues);
        match out.iter_mut().find(|c| c.name == name && c.group == group) {
            Some(c) => {
                c.passes = c.passes.saturating_add(*trues);
                c.fails = c.fails.saturating_add(fails);
            }
            None => out.push(CheckSummary {
                name,
                group,
                passes: *trues,
                fails,
            }),
        }
    }
    out.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
    out
}
