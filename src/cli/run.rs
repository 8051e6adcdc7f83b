//! `volley run`: load a plan (or a URL), run it on this machine, print the
//! k6-style summary and exit with k6's codes.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::args::RunArgs;
use super::exit;
use super::output::{Console, ProgressMode};
use super::report_out;
use crate::engine::{self, EndReason, RunOptions};
use crate::outputs::Outputs;
use crate::plan::{self, LoadOptions, Overrides, Plan};
use crate::report;
use crate::segment::{ExecutionTuple, Segment, SegmentSequence};

/// Everything `run` resolved from the flags before starting.
struct Prepared {
    plan: Arc<Plan>,
    /// The script the plan came from, if it came from one.
    script: Option<crate::script::Script>,
    tuple: ExecutionTuple,
    /// The `--out` outputs, opened.
    outputs: Outputs,
    /// `--no-summary` / `--summary-mode disabled` leave the text out.
    summary: SummaryMode,
    /// `--report`, and `--dashboard`'s listener (bound here) and period.
    report: Option<std::path::PathBuf>,
    dashboard: Option<(std::net::TcpListener, std::time::Duration)>,
}

/// Entry point of `volley run` (local). Returns the process exit code.
pub fn run(args: RunArgs, runtime: &tokio::runtime::Runtime) -> u8 {
    if let Some(url) = args.agent.clone() {
        return super::fleet::run_on_fleet(args, url, runtime);
    }
    let prepared = match prepare(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return match e.downcast_ref::<crate::script::ScriptError>() {
                Some(script) => script.exit_code(),
                None => exit::INVALID_CONFIG,
            };
        }
    };
    // A script on one CPU runs its VUs on the engine's own thread (see
    // `Workers::in_local_set`); the local set is idle for a plan document.
    let local = tokio::task::LocalSet::new();
    match local.block_on(runtime, execute(args, prepared)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    }
}

/// Parses `KEY=VALUE` pairs given with `-e`.
pub fn parse_env(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("-e {pair:?}: expected KEY=VALUE"))?;
        env.insert(k.to_owned(), v.to_owned());
    }
    Ok(env)
}

/// `--tag NAME=VALUE` pairs; a tag named like a system tag is refused (k6
/// would let it overwrite `status` or `name` and make the results lie).
fn parse_tags(list: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    const SYSTEM: [&str; 12] = [
        "proto",
        "status",
        "method",
        "url",
        "name",
        "group",
        "check",
        "error",
        "error_code",
        "scenario",
        "expected_response",
        "tls_version",
    ];
    list.iter()
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .with_context(|| format!("--tag {pair:?}: expected NAME=VALUE"))?;
            if SYSTEM.contains(&k) {
                anyhow::bail!(
                    "--tag {pair:?}: {k} is a system tag Volley sets itself; pick another name"
                );
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// What `--summary-mode` and `--no-summary` ask of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryMode {
    Disabled,
    Compact,
    /// A section per scenario and group besides the totals.
    Full,
}

impl SummaryMode {
    pub fn shown(self) -> bool {
        self != SummaryMode::Disabled
    }

    pub fn full(self) -> bool {
        self == SummaryMode::Full
    }
}

pub fn summary_mode(args: &RunArgs) -> anyhow::Result<SummaryMode> {
    let mode = match args.summary_mode.as_deref() {
        None | Some("compact") | Some("legacy") => SummaryMode::Compact,
        Some("full") => SummaryMode::Full,
        Some("disabled") => SummaryMode::Disabled,
        Some(other) => {
            anyhow::bail!("--summary-mode {other:?}: expected compact, full or disabled")
        }
    };
    Ok(if args.no_summary {
        SummaryMode::Disabled
    } else {
        mode
    })
}

/// Load options from the flags (and the process environment).
pub fn load_options(args: &RunArgs, base_dir: &Path) -> anyhow::Result<LoadOptions> {
    let duration = args
        .duration
        .as_deref()
        .map(plan::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    let stages = if args.stages.is_empty() {
        None
    } else {
        let mut out = Vec::new();
        for (i, s) in args.stages.iter().enumerate() {
            out.push(plan::parse_stage(s).map_err(|e| anyhow::anyhow!("--stage #{}: {e}", i + 1))?);
        }
        Some(out)
    };
    Ok(LoadOptions {
        cli_env: parse_env(&args.env)?,
        process_env: std::env::vars().collect(),
        base_dir: base_dir.to_path_buf(),
        overrides: Overrides {
            vus: args.vus,
            duration,
            iterations: args.iterations,
            stages,
            tags: parse_tags(&args.tags)?,
            no_thresholds: args.no_thresholds,
            local_ips: args.local_ips.clone(),
            dns: args.dns.clone(),
            rps: args.rps,
            system_tags: args.system_tags.clone(),
            http: plan::HttpOverrides {
                user_agent: args.user_agent.clone(),
                max_redirects: args.max_redirects,
                insecure_skip_tls_verify: args.insecure_skip_tls_verify,
                no_connection_reuse: args.no_connection_reuse,
                discard_response_bodies: args.discard_response_bodies,
                no_cookies_reset: args.no_cookies_reset,
            },
        },
    })
}

/// Loads a plan file or a script's plan, or builds the quick-test plan
/// for a URL.
pub fn load_plan(args: &RunArgs) -> anyhow::Result<Plan> {
    load_plan_or_script(args).map(|(plan, _)| plan)
}

/// Loads a plan file, a k6 script (its init context is run once to read
/// `options`), or the quick-test plan for a URL.
pub fn load_plan_or_script(
    args: &RunArgs,
) -> anyhow::Result<(Plan, Option<crate::script::Script>)> {
    let path = Path::new(&args.plan);
    if crate::script::is_script(path) {
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let opts = load_options(args, &base_dir)?;
        let env = crate::script::options::env(&opts.process_env, &opts.cli_env);
        let script = crate::script::load(path, env)?;
        let (mut plan, skipped) = crate::script::options::plan(&script, &opts)?;
        if !skipped.is_empty() {
            eprintln!(
                "warning: options not supported by Volley yet, left out: {}",
                skipped.join(", ")
            );
        }
        if let Some(stats) = &args.summary_trend_stats {
            plan.summary_trend_stats = plan::parse_trend_stats(stats)
                .map_err(|e| anyhow::anyhow!("--summary-trend-stats: {e}"))?;
        }
        return Ok((plan, Some(script)));
    }
    load_document(args).map(|plan| (plan, None))
}

fn load_document(args: &RunArgs) -> anyhow::Result<Plan> {
    let is_url = args.plan.starts_with("http://") || args.plan.starts_with("https://");
    let path = Path::new(&args.plan);
    let base_dir = if is_url {
        std::env::current_dir().unwrap_or_default()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let opts = load_options(args, &base_dir)?;
    let mut plan = if is_url {
        plan::from_url(&args.plan, &opts)?
    } else {
        plan::load_file(path, &opts)?
    };
    if let Some(stats) = &args.summary_trend_stats {
        plan.summary_trend_stats = plan::parse_trend_stats(stats)
            .map_err(|e| anyhow::anyhow!("--summary-trend-stats: {e}"))?;
    }
    Ok(plan)
}

/// The execution tuple from `--execution-segment[-sequence]`.
pub fn tuple_from_args(args: &RunArgs) -> anyhow::Result<ExecutionTuple> {
    let segment = match &args.execution_segment {
        None if args.execution_segment_sequence.is_some() => {
            anyhow::bail!(
                "--execution-segment-sequence needs --execution-segment (this instance's part)"
            )
        }
        None => return Ok(ExecutionTuple::full()),
        Some(s) => Segment::parse(s).map_err(|e| anyhow::anyhow!("--execution-segment: {e}"))?,
    };
    let sequence = match &args.execution_segment_sequence {
        Some(s) => SegmentSequence::parse(s)
            .map_err(|e| anyhow::anyhow!("--execution-segment-sequence: {e}"))?,
        None => SegmentSequence::around(&segment)
            .map_err(|e| anyhow::anyhow!("--execution-segment: {e}"))?,
    };
    ExecutionTuple::new(sequence, &segment).map_err(|e| anyhow::anyhow!("--execution-segment: {e}"))
}

fn prepare(args: &RunArgs) -> anyhow::Result<Prepared> {
    let (mut plan, script) = load_plan_or_script(args)?;
    if let Some(region) = &args.region {
        if !plan::is_region_name(region) {
            anyhow::bail!(
                "--region {region:?}: expected a region name of 1-63 characters from a-z, A-Z, 0-9, '.', '_' and '-', like us-east"
            );
        }
        plan.set_agent_region(region);
    }
    plan.http.http_debug = match args.http_debug.as_deref() {
        None => None,
        Some("headers" | "" | "true") => Some(crate::plan::HttpDebug::Headers),
        Some("full") => Some(crate::plan::HttpDebug::Full),
        Some(other) => {
            anyhow::bail!("--http-debug={other}: expected --http-debug or --http-debug=full")
        }
    };
    let tuple = tuple_from_args(args)?;
    admit_locally(&plan, &tuple)?;
    apply_egress(&mut plan)?;
    let outputs = Outputs::open(&args.out, &plan)?;
    let pictures =
        report_out::PictureSettings::resolve(args.report.clone(), args.dashboard, &|k| {
            std::env::var(k).ok()
        })?;
    pictures.create_report_file()?;
    let dashboard = match pictures.dashboard {
        Some((addr, period)) => Some((report_out::DashboardServer::bind(addr)?, period)),
        None => None,
    };
    Ok(Prepared {
        plan: Arc::new(plan),
        script,
        tuple,
        outputs,
        summary: summary_mode(args)?,
        report: pictures.report,
        dashboard,
    })
}

/// Refuses a plan that asks for more than this machine can hold (its
/// memory and CPUs, or the `VOLLEY_MAX_*` variables an agent reads too),
/// before anything is allocated for it: exit 104, like any invalid plan.
fn admit_locally(plan: &Plan, tuple: &ExecutionTuple) -> anyhow::Result<()> {
    use crate::plan::admission::{self, Demand, Knobs, Limits};
    let settings = crate::agent::config::LimitSettings::from_env(&crate::agent::config::Env)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let capacity = crate::fleet::capacity::detect(&crate::fleet::capacity::SystemCgroups);
    let machine = settings.machine(capacity.cpus, capacity.memory_bytes, Knobs::LOCAL);
    let segment = tuple.segment();
    let fraction = segment.to().to_f64() - segment.from().to_f64();
    let demand = Demand::of(plan).share(fraction, |v| tuple.scale(v));
    admission::check(&demand, &Limits::machine(machine, "this machine"))
        .map_err(|refusal| anyhow::anyhow!("{refusal}"))
}

/// This machine's egress policy (the `VOLLEY_EGRESS_*` variables an agent
/// reads too; unset, link-local and cloud metadata addresses are denied):
/// a request whose URL names a refused host is refused here, exit 104 like
/// any invalid plan, and the client checks every connection it makes.
fn apply_egress(plan: &mut Plan) -> anyhow::Result<()> {
    let egress = crate::agent::config::egress_from_env(&crate::agent::config::Env)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    egress
        .check_plan(plan)
        .map_err(|refusal| anyhow::anyhow!("{refusal}"))?;
    plan.http.net.egress = egress;
    Ok(())
}

async fn execute(args: RunArgs, prepared: Prepared) -> anyhow::Result<u8> {
    let stop = CancellationToken::new();
    let interrupted = super::signals::spawn_sigint_handler(stop.clone());
    let color =
        !args.no_color && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mode = ProgressMode::detect(args.quiet, args.no_color);
    if mode != ProgressMode::Quiet {
        let info = report::header::HeaderInfo {
            execution: "local".into(),
            source: args.plan.clone(),
            outputs: Outputs::describe(&args.out),
            share: prepared.tuple.segment().length().to_f64(),
        };
        let header_color = matches!(mode, ProgressMode::Terminal { color: true });
        eprintln!(
            "\n{}",
            report::header::header(&prepared.plan, &info, header_color)
        );
    }
    let console = Console::new(&prepared.plan, mode, prepared.outputs);
    let active = prepared.report.is_some() || prepared.dashboard.is_some();
    let mut observer =
        report_out::Pictures::new(console, prepared.plan.clone(), args.plan.clone(), active);
    if let Some((listener, period)) = prepared.dashboard {
        let server = report_out::DashboardServer::start(listener, &observer.empty_data(), period)?;
        eprintln!("dashboard: http://{}/", server.addr);
        observer.attach(server);
    }
    let script = match prepared.script {
        Some(script) => {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            let workers = if cpus == 1 {
                crate::script::Workers::in_local_set()
            } else {
                crate::script::Workers::start(cpus).context("cannot start the script workers")?
            };
            let host = crate::script::Host::new(script, prepared.plan.clone(), stop.clone());
            Some(Arc::new(crate::script::ScriptRun::new(
                Arc::new(host),
                workers,
            )))
        }
        None => None,
    };
    let opts = RunOptions {
        tuple: prepared.tuple,
        script: script.clone(),
        // `--tag` is on every sample, the VU gauges included, as in k6
        // (dashboards select a test's `vus` by its `testid`).
        extra_tags: parse_tags(&args.tags)?,
        ..RunOptions::default()
    };
    let mut result = match engine::run(prepared.plan.clone(), opts, stop, &mut observer).await {
        Ok(r) => r,
        Err(engine::run::EngineError::Script(e)) => {
            eprintln!("error: {e}");
            // exec.test.abort() in setup() is an abort (108), as in k6.
            let aborted = script.as_ref().and_then(|r| r.host.aborted());
            if let Some(reason) = aborted {
                eprintln!("{reason}");
                return Ok(exit::SCRIPT_ABORTED);
            }
            return Ok(e.exit_code());
        }
        Err(engine::run::EngineError::Setup(e)) => {
            eprintln!("error: {e}");
            return Ok(exit::SCRIPT_EXCEPTION);
        }
        Err(e) => return Err(e.into()),
    };
    result.summary.notes.extend(observer.inner.finish());
    let text = report::text::render(
        &result.summary,
        &report::text::TextOptions {
            color,
            title: None,
            full: prepared.summary.full(),
        },
    );
    let export = report::export::k6_summary_export(
        &result.summary,
        &report::export::ExportContext {
            trend_stats: prepared.plan.summary_trend_stats.clone(),
        },
    );
    let handled = match &script {
        Some(run) => {
            let plain = report::text::render(
                &result.summary,
                &report::text::TextOptions {
                    color: false,
                    title: None,
                    full: prepared.summary.full(),
                },
            );
            let cx = report::handle_summary::SummaryContext {
                trend_stats: prepared
                    .plan
                    .summary_trend_stats
                    .iter()
                    .map(|s| s.label())
                    .collect(),
                no_color: !color,
                stdout_tty: std::io::stdout().is_terminal(),
                stderr_tty: std::io::stderr().is_terminal(),
                duration_ms: result.elapsed.as_secs_f64() * 1000.0,
                setup_data: run.host.setup_data.get().cloned().flatten(),
            };
            super::script_out::handle_summary(run, &export, &plain, cx).await
        }
        None => false,
    };
    let mut stdout = std::io::stdout().lock();
    if !handled && prepared.summary.shown() {
        writeln!(stdout, "{text}")?;
    }
    if let Some(file) = &args.summary_export {
        let body = serde_json::to_vec_pretty(&export)?;
        std::fs::write(file, body)
            .with_context(|| format!("--summary-export: cannot write {}", file.display()))?;
    }
    if let Some(file) = &args.junit {
        std::fs::write(file, report::junit::junit_xml(&result.summary))
            .with_context(|| format!("--junit: cannot write {}", file.display()))?;
    }
    let status = report::html::model::status(
        true,
        result.summary.passed() && result.end != EndReason::ThresholdAbort,
        interrupted.is_set(),
    );
    let data = observer.finish(&result.summary, result.elapsed, status);
    if let Some(file) = &prepared.report {
        report_out::write_report(file, &data)?;
    }
    if let Some(run) = &script {
        super::script_out::print_errors(run, &mut stdout)?;
        if let Some(code) = run.host.init_exit_code() {
            return Ok(code);
        }
        if let Some(reason) = run.host.aborted() {
            eprintln!("{reason}");
            return Ok(exit::SCRIPT_ABORTED);
        }
        if let Some(code) = run.host.teardown_exit_code() {
            return Ok(code);
        }
        if run.host.failed() && !interrupted.is_set() {
            return Ok(exit::SCRIPT_FAILED);
        }
    }
    Ok(exit_code(
        result.end,
        result.summary.passed(),
        interrupted.is_set(),
    ))
}

/// k6's exit code for how a run ended.
pub fn exit_code(end: EndReason, passed: bool, interrupted: bool) -> u8 {
    if interrupted {
        exit::INTERRUPTED
    } else if end == EndReason::ThresholdAbort || !passed {
        exit::THRESHOLDS_FAILED
    } else {
        exit::OK
    }
}
