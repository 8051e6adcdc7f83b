//! `volley inspect`: validate a plan and show what it would run (like
//! `k6 inspect --execution-requirements`), without sending a request.

use std::fmt::Write as _;
use std::path::Path;

use super::args::InspectArgs;
use super::exit;
use super::run::parse_env;
use crate::plan::{self, LoadOptions, Plan, format_duration};

pub fn run(args: InspectArgs) -> u8 {
    let loaded = parse_env(&args.env).and_then(|cli_env| {
        let opts = LoadOptions {
            cli_env,
            process_env: std::env::vars().collect(),
            base_dir: args
                .plan
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            overrides: plan::Overrides::default(),
        };
        if crate::script::is_script(&args.plan) {
            // A script's init context runs once (no request is sent there).
            let env = crate::script::options::env(&opts.process_env, &opts.cli_env);
            let script = crate::script::load(&args.plan, env)?;
            let (plan, skipped) = crate::script::options::plan(&script, &opts)?;
            return Ok((plan, Some((script.exports, skipped))));
        }
        Ok((plan::load_file(&args.plan, &opts)?, None))
    });
    match loaded {
        Ok((plan, script)) => {
            print!("{}", describe(&plan));
            if let Some((exports, skipped)) = script {
                let mut exports: Vec<&str> = exports.iter().map(String::as_str).collect();
                exports.sort_unstable();
                println!("  script exports: {}", exports.join(", "));
                if !skipped.is_empty() {
                    println!(
                        "  options not supported yet (left out): {}",
                        skipped.join(", ")
                    );
                }
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<crate::script::ScriptError>() {
                Some(script) => script.exit_code(),
                None => exit::INVALID_CONFIG,
            }
        }
    }
}

/// Requests in `steps`, those of groups and batches included.
fn request_steps(steps: &[crate::plan::Step]) -> usize {
    use crate::plan::Step;
    steps
        .iter()
        .map(|step| match step {
            Step::Request(_) => 1,
            Step::Batch(requests) => requests.len(),
            Step::Group(g) => request_steps(&g.steps),
            Step::Sleep(_) | Step::Metric(_) => 0,
        })
        .sum()
}

/// A human description of a plan's execution requirements.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan: {} scenario(s), max {} VUs, nominal {}, at most {} with graceful stops",
        plan.scenarios.len(),
        plan.scenarios
            .iter()
            .map(|s| s.executor.max_vus())
            .sum::<u64>(),
        format_duration(plan.nominal_duration()),
        format_duration(plan.max_duration()),
    );
    for s in &plan.scenarios {
        let work = match &s.exec {
            Some(exec) => format!("runs {exec}()"),
            None => format!("{} request step(s)", request_steps(&s.flow.steps)),
        };
        let _ = writeln!(
            out,
            "  {}: {} from {} for {} (max {} VUs, gracefulStop {}), {work}",
            s.name,
            s.executor.kind(),
            format_duration(s.start_time),
            format_duration(s.executor.duration()),
            s.executor.max_vus(),
            format_duration(s.graceful_stop),
        );
    }
    for (name, flow) in [("setup", &plan.setup), ("teardown", &plan.teardown)] {
        if let Some(flow) = flow {
            let n = request_steps(&flow.steps);
            let _ = writeln!(out, "  {name}: once, {n} request step(s)");
        }
    }
    for m in &plan.metrics {
        let kind = match m.kind() {
            crate::metrics::MetricKind::Counter => "counter",
            crate::metrics::MetricKind::Gauge => "gauge",
            crate::metrics::MetricKind::Rate => "rate",
            crate::metrics::MetricKind::Trend => "trend",
        };
        let time = if m.unit() == crate::metrics::Unit::Time {
            " of times"
        } else {
            ""
        };
        let _ = writeln!(out, "  metric {}: {kind}{time}", m.name());
    }
    for t in &plan.thresholds {
        let abort = if t.abort_on_fail {
            " (abortOnFail)"
        } else {
            ""
        };
        let _ = writeln!(out, "  threshold {}: {}{abort}", t.key, t.source);
    }
    out
}
