//! From the raw document to a validated [`Plan`]: options, thresholds, the
//! data file, scenarios and their flows, each checked with the field path
//! of anything wrong.
//!
//! Order of work: HTTP options and thresholds first (they need nothing
//! else), then the data file (templates refer to its columns), then the
//! scenarios sorted by name, whose flows are compiled in document order so
//! that ids follow the document.

mod check;
mod executor;
mod flow;
mod metric;
mod multipart;
mod net;
mod request;
mod scenario;
mod targets;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use super::data::{self, FileSource};
use super::error::PlanError;
use super::load::LoadOptions;
use super::raw::{OrderedMap, RawPlan, Scalar, ThresholdSpec};
use super::system_tags::SystemTags;
use super::template_parse::{EnvChain, Scope};
use super::threshold::Threshold;
use super::threshold_parse::parse_threshold;
use super::types::{DataMode, DataSet, HttpOptions, Plan, Scenario, Tags, TrendStat};
use flow::{FlowContext, Registry};
pub use multipart::MAX_UPLOAD_BYTES;
pub use targets::is_region_name;

/// Tags Volley sets itself on samples; a plan may not set them.
const RESERVED_TAGS: [&str; 11] = [
    "scenario",
    "group",
    "name",
    "method",
    "status",
    "url",
    "check",
    "expected_response",
    "error",
    "proto",
    "target_region",
];

pub(crate) fn compile(
    raw: RawPlan,
    opts: &LoadOptions,
    files: &dyn FileSource,
) -> Result<Plan, PlanError> {
    let mut http = http_options(&raw)?;
    if let Some(s) = &opts.overrides.local_ips {
        http.net.local_ips = net::local_ips("--local-ips", s)?;
    }
    if let Some(s) = &opts.overrides.dns {
        http.net.dns = net::dns_flag(s)?;
    }
    let flags = &opts.overrides.http;
    if let Some(agent) = &flags.user_agent {
        if HeaderValue::from_str(agent).is_err() {
            return Err(PlanError::invalid(
                "--user-agent",
                agent,
                "a header value without control characters",
            ));
        }
        http.user_agent = agent.clone();
    }
    if let Some(n) = flags.max_redirects {
        http.max_redirects = n;
    }
    http.insecure_skip_tls_verify |= flags.insecure_skip_tls_verify;
    http.no_connection_reuse |= flags.no_connection_reuse;
    http.discard_response_bodies |= flags.discard_response_bodies;
    http.no_cookies_reset |= flags.no_cookies_reset;
    if let Some(rps) = opts.overrides.rps {
        http.rps = Some(rps).filter(|r| *r > 0);
    }
    let system_tags = system_tags(&raw, opts)?;
    for (i, name) in raw.secret_headers.iter().flatten().enumerate() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(PlanError::invalid(
                format!("secretHeaders[{i}]"),
                name,
                "a header name like X-Api-Key",
            ));
        }
    }
    // Before thresholds, which may name them.
    let custom_metrics = metric::declare(raw.metrics.as_ref())?;
    let summary_trend_stats = match &raw.summary_trend_stats {
        Some(stats) => trend_stats(stats)?,
        None => TrendStat::k6_defaults(),
    };
    let mut thresholds = thresholds(raw.thresholds.as_ref())?;
    if opts.overrides.no_thresholds {
        thresholds.clear();
    }
    let data = match &raw.data {
        Some(d) => Some(data::load(d, &opts.base_dir, files)?),
        None => None,
    };
    let top_env = env_map(raw.env.as_ref());
    let mut top_tags = tags(raw.tags.as_ref(), "tags")?;
    for (k, v) in &opts.overrides.tags {
        match top_tags.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => top_tags.push((k.clone(), v.clone())),
        }
    }
    let targets = targets::targets(raw.targets.as_ref())?;
    if !targets.is_empty() {
        // With targets, `region` is the region a sample was sent from.
        if top_tags.iter().any(|(k, _)| k == super::types::REGION_TAG) {
            return Err(PlanError::field(
                "tags.region",
                "with `targets`, tag \"region\" is set by Volley (the agent's region label, or `volley run --region`)",
            ));
        }
        top_tags.push((
            super::types::REGION_TAG.to_string(),
            super::types::LOCAL_REGION.to_string(),
        ));
    }
    let specs = executor::scenarios(&raw, &opts.overrides)?;

    let mut registry = Registry::default();
    let uploads = multipart::Uploads::new(files, &opts.base_dir);
    let none = BTreeMap::new();
    let mut setup_vars = BTreeMap::new();
    if let Some(steps) = &raw.setup {
        flow::collect_vars(steps, "setup", &mut registry, &none, &mut setup_vars)?;
    }
    let mut scenarios = Vec::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        let scenario_env = env_map(spec.env);
        let env = EnvChain {
            layers: vec![&opts.cli_env, &scenario_env, &top_env, &opts.process_env],
        };
        let exec = exec_function(&raw, &spec)?;
        let mut vars = setup_vars.clone();
        if exec.is_none() {
            flow::collect_vars(
                spec.flow,
                &spec.flow_path,
                &mut registry,
                &setup_vars,
                &mut vars,
            )?;
        }
        let cx = FlowContext {
            scenario: index,
            scope: Scope {
                env: &env,
                vars: &vars,
                data_columns: data.as_ref().map(|d| d.columns.as_slice()),
            },
            http: &http,
            metrics: &custom_metrics,
            uploads: &uploads,
            target: None,
        };
        let flow = match exec {
            Some(_) if !targets.is_empty() => {
                return Err(PlanError::field(
                    "targets",
                    "applies to a plan's flows; a script's exported functions name their own URLs",
                ));
            }
            Some(_) => super::types::Flow::default(),
            None if targets.is_empty() => {
                flow::compile_flow(spec.flow, &spec.flow_path, &cx, &mut registry)?
            }
            // The written flow once per target, in `targets` order.
            None => {
                let mut steps = Vec::new();
                for target in &targets {
                    let cx = FlowContext {
                        target: Some(target),
                        ..cx
                    };
                    let one = flow::compile_flow(spec.flow, &spec.flow_path, &cx, &mut registry)?;
                    steps.extend(one.steps);
                }
                super::types::Flow { steps }
            }
        };
        let mut scenario_tags = top_tags.clone();
        for (k, v) in tags(spec.tags, &spec.tags_path)? {
            if !targets.is_empty() && k == super::types::REGION_TAG {
                return Err(PlanError::field(
                    format!("{}.region", spec.tags_path),
                    "with `targets`, tag \"region\" is set by Volley (the agent's region label, or `volley run --region`)",
                ));
            }
            match scenario_tags.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => scenario_tags.push((k, v)),
            }
        }
        scenarios.push(Scenario {
            name: spec.name,
            index,
            executor: spec.executor,
            start_time: spec.start_time,
            graceful_stop: spec.graceful_stop,
            tags: scenario_tags,
            env: scenario_env,
            flow: Arc::new(flow),
            exec,
        });
    }

    if let Some(data) = &data {
        check_unique_rows(data, &scenarios)?;
    }
    let lifecycle =
        |key: &str, steps: Option<&Vec<super::raw::RawStep>>, registry: &mut Registry| {
            let Some(steps) = steps else {
                return Ok(None);
            };
            let mut vars = setup_vars.clone();
            if key == "teardown" {
                flow::collect_vars(steps, key, registry, &setup_vars, &mut vars)?;
            }
            let env = EnvChain {
                layers: vec![&opts.cli_env, &top_env, &opts.process_env],
            };
            let cx = FlowContext {
                scenario: 0,
                scope: Scope {
                    env: &env,
                    vars: &vars,
                    data_columns: None,
                },
                http: &http,
                metrics: &custom_metrics,
                uploads: &uploads,
                target: None,
            };
            let steps = flow::compile_steps(steps, key, &format!("::{key}"), &cx, registry)?;
            Ok::<_, PlanError>(Some(Arc::new(super::types::Flow { steps })))
        };
    let setup = lifecycle("setup", raw.setup.as_ref(), &mut registry)?;
    let teardown = lifecycle("teardown", raw.teardown.as_ref(), &mut registry)?;

    Ok(Plan {
        scenarios,
        thresholds,
        http,
        data: data.map(Arc::new),
        summary_trend_stats,
        vars: registry.vars,
        dynamic: Arc::new(super::dynamic::DynamicCatalog::after(
            registry.requests.len(),
            registry.checks.len(),
            registry.groups.len(),
        )),
        requests: registry.requests,
        checks: registry.checks,
        groups: registry.groups,
        system_tags,
        metrics: custom_metrics,
        setup,
        teardown,
        setup_vars: setup_vars.into_values().collect(),
        targets,
    })
}

/// `systemTags` from the plan, or `--system-tags` over it.
fn system_tags(raw: &RawPlan, opts: &LoadOptions) -> Result<SystemTags, PlanError> {
    if let Some(list) = &opts.overrides.system_tags {
        return SystemTags::parse(list.split(','))
            .map_err(|(name, why)| PlanError::invalid("--system-tags", name, why));
    }
    let Some(names) = &raw.system_tags else {
        return Ok(SystemTags::k6_default());
    };
    for (i, name) in names.iter().enumerate() {
        SystemTags::parse([name.as_str()])
            .map_err(|(name, why)| PlanError::invalid(format!("systemTags[{i}]"), name, why))?;
    }
    SystemTags::parse(names.iter().map(String::as_str))
        .map_err(|(name, why)| PlanError::invalid("systemTags", name, why))
}

/// The function a script scenario calls, checked against the script's
/// exports; `None` for a plan document, which must not name one.
fn exec_function(
    raw: &RawPlan,
    spec: &executor::ScenarioSpec<'_>,
) -> Result<Option<String>, PlanError> {
    let path = || {
        if spec.name == "default" && spec.exec.is_none() {
            "default".to_string()
        } else {
            format!("scenarios.{}.exec", spec.name)
        }
    };
    let Some(exports) = &raw.script_exports else {
        return match spec.exec {
            Some(_) => Err(PlanError::field(
                path(),
                "names a script function, but this plan is not a script; plan documents give each scenario a `flow`",
            )),
            None => Ok(None),
        };
    };
    let name = spec.exec.unwrap_or("default");
    if exports.iter().any(|e| e == name) {
        return Ok(Some(name.to_string()));
    }
    let mut listed: Vec<&str> = exports
        .iter()
        .map(String::as_str)
        .filter(|e| *e != "options")
        .collect();
    listed.sort_unstable();
    let exported = if listed.is_empty() {
        "no function".to_string()
    } else {
        listed.join(", ")
    };
    Err(PlanError::invalid(
        path(),
        name,
        format!("a function the script exports (it exports {exported})"),
    ))
}

fn http_options(raw: &RawPlan) -> Result<HttpOptions, PlanError> {
    let user_agent = raw
        .user_agent
        .clone()
        .unwrap_or_else(|| format!("volley/{}", env!("CARGO_PKG_VERSION")));
    if HeaderValue::from_str(&user_agent).is_err() {
        return Err(PlanError::invalid(
            "userAgent",
            user_agent,
            "a header value without control characters",
        ));
    }
    let timeout = raw.timeout.map_or(super::types::DEFAULT_TIMEOUT, |t| t.0);
    if timeout.is_zero() {
        return Err(PlanError::invalid("timeout", "0s", "a positive duration"));
    }
    Ok(HttpOptions {
        discard_response_bodies: raw.discard_response_bodies.unwrap_or(false),
        insecure_skip_tls_verify: raw.insecure_skip_tls_verify.unwrap_or(false),
        user_agent,
        no_connection_reuse: raw.no_connection_reuse.unwrap_or(false),
        http2_prior_knowledge: raw.http2_prior_knowledge.unwrap_or(false),
        timeout,
        max_redirects: redirect_limit(raw.max_redirects, "maxRedirects")?
            .unwrap_or(super::types::DEFAULT_MAX_REDIRECTS),
        no_cookies_reset: raw.no_cookies_reset.unwrap_or(false),
        expected_statuses: expected_statuses(raw.expected_statuses.as_deref())?,
        http_debug: None,
        hosts: hosts(raw.hosts.as_ref())?,
        net: net::net_options(raw)?,
        rps: raw.rps.map(|c| c.0).filter(|r| *r > 0),
        batch: batch_limit(raw.batch, "batch", 1)?.unwrap_or(super::types::DEFAULT_BATCH),
        batch_per_host: batch_limit(raw.batch_per_host, "batchPerHost", 0)?
            .unwrap_or(super::types::DEFAULT_BATCH_PER_HOST),
    })
}

/// `batch` (at least 1) or `batchPerHost` (0: no limit).
fn batch_limit(
    raw: Option<super::raw::Count>,
    path: &str,
    min: u64,
) -> Result<Option<u32>, PlanError> {
    match raw {
        None => Ok(None),
        Some(c) if c.0 >= min && c.0 <= 10_000 => Ok(Some(c.0 as u32)),
        Some(c) => Err(PlanError::invalid(
            path,
            c.0.to_string(),
            format!("a number of requests from {min} to 10000"),
        )),
    }
}

/// `hosts`: keys `name` or `name:port`, values an IP address or `ip:port`
/// (IPv6 in brackets with a port).
fn hosts(
    raw: Option<&super::raw::OrderedMap<String>>,
) -> Result<Vec<super::types::HostOverride>, PlanError> {
    let mut out = Vec::new();
    for (key, value) in raw.iter().flat_map(|m| m.0.iter()) {
        let path = format!("hosts.{key}");
        let (name, port) = match key.rsplit_once(':') {
            Some((n, p)) if !n.contains(':') => {
                let port = p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    PlanError::invalid(
                        &path,
                        key,
                        "a host name, or name:port with a port from 1 to 65535",
                    )
                })?;
                (n.to_ascii_lowercase(), Some(port))
            }
            _ => (key.to_ascii_lowercase(), None),
        };
        if name.is_empty() {
            return Err(PlanError::invalid(&path, key, "a host name"));
        }
        let (ip, to_port) = if let Ok(ip) = value.parse::<std::net::IpAddr>() {
            (ip, None)
        } else if let Ok(addr) = value.parse::<std::net::SocketAddr>() {
            (addr.ip(), Some(addr.port()))
        } else {
            return Err(PlanError::invalid(
                &path,
                value,
                "an IP address or ip:port (e.g. 10.0.0.5 or 10.0.0.5:8443); host names are not supported",
            ));
        };
        out.push(super::types::HostOverride {
            name,
            port,
            ip,
            to_port,
        });
    }
    Ok(out)
}

/// `expectedStatuses`: codes from 100 to 599 and ranges with `min <= max`.
fn expected_statuses(
    raw: Option<&[super::raw::RawExpectedStatus]>,
) -> Result<Vec<(u16, u16)>, PlanError> {
    use super::raw::RawExpectedStatus;
    let Some(list) = raw else {
        return Ok(vec![(200, 399)]);
    };
    if list.is_empty() {
        return Err(PlanError::field(
            "expectedStatuses",
            "is empty; list codes (200) or ranges ({min: 200, max: 299}), or leave it out for 200-399",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let (lo, hi) = match *s {
                RawExpectedStatus::Code(c) => (c, c),
                RawExpectedStatus::Range { min, max } => (min, max),
            };
            if (100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi {
                Ok((lo, hi))
            } else {
                Err(PlanError::invalid(
                    format!("expectedStatuses[{i}]"),
                    format!("{lo}..{hi}"),
                    "a status code from 100 to 599, or {min, max} with min <= max",
                ))
            }
        })
        .collect()
}

/// A redirect limit (`maxRedirects`, a request's `redirects`): 0 to 100.
pub(crate) fn redirect_limit(
    raw: Option<super::raw::Count>,
    path: &str,
) -> Result<Option<u32>, PlanError> {
    match raw {
        None => Ok(None),
        Some(c) if c.0 <= 100 => Ok(Some(c.0 as u32)),
        Some(c) => Err(PlanError::invalid(
            path,
            c.0.to_string(),
            "a number of redirects from 0 to 100",
        )),
    }
}

/// `--summary-trend-stats avg,med,p(99)`: the CLI form of `summaryTrendStats`.
pub fn parse_trend_stats(list: &str) -> Result<Vec<TrendStat>, PlanError> {
    let items: Vec<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
    trend_stats(&items)
}

/// `summaryTrendStats`: `avg`, `min`, `med`, `max`, `count`, `p(N)`.
fn trend_stats(stats: &[String]) -> Result<Vec<TrendStat>, PlanError> {
    stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let text = s.trim();
            let stat = match text {
                "avg" => Some(TrendStat::Avg),
                "min" => Some(TrendStat::Min),
                "med" => Some(TrendStat::Med),
                "max" => Some(TrendStat::Max),
                "count" => Some(TrendStat::Count),
                _ => text
                    .strip_prefix("p(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .map(TrendStat::Percentile),
            };
            stat.ok_or_else(|| {
                PlanError::invalid(
                    format!("summaryTrendStats[{i}]"),
                    s,
                    "one of avg, min, med, max, count or p(N) with N between 0 and 100",
                )
            })
        })
        .collect()
}

fn thresholds(
    raw: Option<&OrderedMap<super::raw::ThresholdList>>,
) -> Result<Vec<Threshold>, PlanError> {
    let mut out = Vec::new();
    for (key, list) in raw.iter().flat_map(|m| m.0.iter()) {
        for (i, spec) in list.0.iter().enumerate() {
            let path = format!("thresholds.{key}[{i}]");
            let (expression, abort_on_fail, delay) = match spec {
                ThresholdSpec::Expr(e) => (e, false, Duration::ZERO),
                ThresholdSpec::Full(f) => (
                    &f.threshold,
                    f.abort_on_fail.unwrap_or(false),
                    f.delay_abort_eval.map_or(Duration::ZERO, |d| d.0),
                ),
            };
            let mut threshold =
                parse_threshold(key, expression).map_err(|message| PlanError::Threshold {
                    path,
                    expression: expression.clone(),
                    message,
                })?;
            threshold.abort_on_fail = abort_on_fail;
            threshold.delay_abort_eval = delay;
            out.push(threshold);
        }
    }
    Ok(out)
}

fn env_map(raw: Option<&OrderedMap<Scalar>>) -> BTreeMap<String, String> {
    raw.iter()
        .flat_map(|m| m.0.iter())
        .map(|(k, Scalar(v))| (k.clone(), v.clone()))
        .collect()
}

/// Validated tags: non-empty keys, none that Volley sets itself.
pub(crate) fn tags(raw: Option<&OrderedMap<Scalar>>, path: &str) -> Result<Tags, PlanError> {
    let mut out = Vec::new();
    for (key, Scalar(value)) in raw.iter().flat_map(|m| m.0.iter()) {
        if key.trim().is_empty() {
            return Err(PlanError::invalid(path, key, "a non-empty tag name"));
        }
        if RESERVED_TAGS.contains(&key.as_str()) {
            let hint = if key == "name" {
                " (use the request's `name` field)"
            } else {
                ""
            };
            return Err(PlanError::field(
                format!("{path}.{key}"),
                format!("tag \"{key}\" is set by Volley itself{hint}"),
            ));
        }
        out.push((key.clone(), value.clone()));
    }
    Ok(out)
}

/// `unique-per-vu` gives VU n row n-1, so every VU the plan can ever have
/// needs a row. VU numbers are unique across scenarios, so the bound is
/// the sum over scenarios of their most VUs (an upper bound when
/// scenarios do not overlap in time).
fn check_unique_rows(data: &DataSet, scenarios: &[Scenario]) -> Result<(), PlanError> {
    if data.mode != DataMode::UniquePerVu {
        return Ok(());
    }
    let vus = scenarios
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.executor.max_vus()));
    let rows = data.rows.len() as u64;
    if rows < vus {
        return Err(PlanError::field(
            "data.mode",
            format!(
                "unique-per-vu needs a row for every VU: the plan can run {vus} VUs but the data file has {rows} rows"
            ),
        ));
    }
    Ok(())
}
