//! Fleet commands: `volley agent`, `volley run --agent`, `volley tests`,
//! `volley abort`, `volley members`, `volley ca init`, `volley crd`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

use super::args::{CaArgs, ClientArgs, RunArgs};
use super::exit;
use super::follow::{FollowOptions, follow};
use crate::agent::config::{AgentArgs, AgentSettings, Env, OsFiles};
use crate::api::{ApiClient, SecretToken, SubmitRequest};

/// `volley agent`: runs until SIGINT/SIGTERM, then drains and stops.
pub fn agent(args: AgentArgs, runtime: &tokio::runtime::Runtime) -> u8 {
    let settings = match AgentSettings::load(&args, &Env, &OsFiles) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: invalid agent settings:\n{e}");
            return exit::INVALID_CONFIG;
        }
    };
    runtime.block_on(async move {
        let agent = match crate::agent::start(settings).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILURE;
            }
        };
        // One machine-readable line for scripts and test harnesses.
        println!(
            "{}",
            serde_json::json!({
                "event": "ready",
                "node": agent.node_id,
                "api": agent.api_addr.to_string(),
                "gossip": agent.gossip_addr.to_string(),
                "quic": agent.quic_addr.to_string(),
            })
        );
        let _ = std::io::stdout().flush();
        wait_for_termination().await;
        eprintln!("draining: stopping this agent's load and leaving the fleet");
        agent.shutdown().await;
        exit::OK
    })
}

async fn wait_for_termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

fn client(url: &str, token_file: Option<&Path>) -> anyhow::Result<ApiClient> {
    let token = match token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--token-file: cannot read {}", path.display()))?;
            Some(
                SecretToken::new(text.trim())
                    .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?,
            )
        }
        None => match std::env::var("VOLLEY_TOKEN") {
            Ok(t) if !t.trim().is_empty() => {
                Some(SecretToken::new(t.trim()).map_err(|e| anyhow::anyhow!("VOLLEY_TOKEN: {e}"))?)
            }
            _ => None,
        },
    };
    Ok(ApiClient::new(url, token)?)
}

/// The flags given that a fleet submission would not carry (they change
/// the plan on this machine only).
fn local_only_flags(args: &RunArgs) -> Vec<&'static str> {
    [
        (!args.tags.is_empty(), "--tag"),
        (args.no_thresholds, "--no-thresholds"),
        (args.http_debug.is_some(), "--http-debug"),
        (args.rps.is_some(), "--rps"),
        (args.system_tags.is_some(), "--system-tags"),
        (args.local_ips.is_some(), "--local-ips"),
        (args.dns.is_some(), "--dns"),
        (args.user_agent.is_some(), "--user-agent"),
        (args.max_redirects.is_some(), "--max-redirects"),
        (args.insecure_skip_tls_verify, "--insecure-skip-tls-verify"),
        (args.no_connection_reuse, "--no-connection-reuse"),
        (args.discard_response_bodies, "--discard-response-bodies"),
        (args.no_cookies_reset, "--no-cookies-reset"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// What `volley run --agent` sends: the plan text, `-e` values (plus the
/// process environment for `${env.X}` the plan names but `-e` does not
/// set), and the data files the plan names.
pub fn submission(args: &RunArgs) -> anyhow::Result<SubmitRequest> {
    let path = Path::new(&args.plan);
    let outputs = fleet_outputs(args)?;
    if args.dashboard {
        anyhow::bail!(
            "--dashboard (K6_WEB_DASHBOARD) serves a local run; a fleet test's live page is \
             every agent's /ui (e.g. {}/ui), and --report FILE writes its HTML report",
            args.agent.as_deref().unwrap_or("http://AGENT:7070")
        );
    }
    let local_only = local_only_flags(args);
    if !local_only.is_empty() {
        anyhow::bail!(
            "{} apply to local runs only for now; on a fleet, put the options in the plan (`tags`, `rps`, `systemTags`, `dns`, `userAgent`, ...) and drop its thresholds",
            local_only.join(", ")
        );
    }
    if crate::script::is_script(path) {
        return script_submission(args).map(|r| SubmitRequest {
            outputs,
            outputs_by: args.out_by.clone(),
            ..r
        });
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read plan {}", path.display()))?;
    let mut env = super::run::parse_env(&args.env)?;
    for name in env_references(&text) {
        if let std::collections::btree_map::Entry::Vacant(slot) = env.entry(name)
            && let Ok(v) = std::env::var(slot.key())
        {
            slot.insert(v);
        }
    }
    let (files, uploads) = plan_files(path, &text, &env)?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Some(crate::api::PlanFormat::Json),
        _ => Some(crate::api::PlanFormat::Yaml),
    };
    Ok(SubmitRequest {
        plan: text,
        format,
        env,
        files,
        uploads,
        selector: parse_selector(&args.selector)?,
        match_expressions: Vec::new(),
        min_agents: args.min_agents,
        lead_time: args.lead_time.clone(),
        name: path.file_stem().and_then(|s| s.to_str()).map(str::to_owned),
        script: None,
        outputs,
        outputs_by: args.out_by.clone(),
    })
}

/// The `--out` values (or `K6_OUT`) a fleet test can have, checked here
/// and sent with this machine's `K6_*` options folded in.
fn fleet_outputs(args: &RunArgs) -> anyhow::Result<Vec<String>> {
    let env = |k: &str| std::env::var(k).ok();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    if let Some(by) = &args.out_by {
        crate::fleet::merge::OutputGrouping::parse(by)
            .map_err(|e| anyhow::anyhow!("--out-by {e}"))?;
    }
    crate::outputs::spec::requested(&args.out, &env)
        .iter()
        .map(|value| {
            let spec =
                crate::outputs::fleet::parse(value, &env, &vars).map_err(anyhow::Error::msg)?;
            crate::outputs::fleet::canonical(&spec)
                .ok_or_else(|| anyhow::anyhow!("--out {value:?}: not an output of a fleet test"))
        })
        .collect()
}

/// The files the plan at `path` reads as it loads (the data file, upload
/// files), by the path written in the plan: the plan is loaded here as an
/// agent will load it (with `env` alone), so a plan an agent would refuse
/// is refused before it is sent, and nothing it reads is left behind.
fn plan_files(
    path: &Path,
    text: &str,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    use base64::Engine as _;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let opts = crate::plan::LoadOptions {
        cli_env: env.clone(),
        base_dir: base_dir.clone(),
        ..Default::default()
    };
    let recorded = crate::plan::Recorded::new(&crate::plan::FsFiles);
    crate::plan::parse(text, crate::plan::Format::for_path(path), &opts, &recorded)
        .with_context(|| format!("plan {}", path.display()))?;
    let read = recorded.into_files();
    let written = |full: &Path| {
        full.strip_prefix(&base_dir)
            .unwrap_or(full)
            .to_string_lossy()
            .into_owned()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok((
        read.text
            .into_iter()
            .map(|(full, body)| (written(&full), body))
            .collect(),
        read.bytes
            .into_iter()
            .map(|(full, bytes)| (written(&full), b64.encode(bytes)))
            .collect(),
    ))
}

/// A k6 script for the fleet: its init runs here once (as `volley run`
/// does) so that every local module and opened file travels with it;
/// `__ENV` on the agents is the `-e` values alone.
fn script_submission(args: &RunArgs) -> anyhow::Result<SubmitRequest> {
    let path = Path::new(&args.plan);
    let env = super::run::parse_env(&args.env)?;
    let script = crate::script::load(path, env.clone())?;
    let bundle = crate::script::bundle::ScriptBundle::from_script(&script)?;
    Ok(SubmitRequest {
        plan: String::new(),
        format: None,
        env,
        files: BTreeMap::new(),
        uploads: Default::default(),
        selector: parse_selector(&args.selector)?,
        match_expressions: Vec::new(),
        min_agents: args.min_agents,
        lead_time: args.lead_time.clone(),
        name: path.file_stem().and_then(|s| s.to_str()).map(str::to_owned),
        script: Some(Box::new(bundle)),
        outputs: Vec::new(),
        outputs_by: None,
    })
}

fn parse_selector(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pairs.iter().flat_map(|p| p.split(',')) {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--selector {p:?}: expected LABEL=VALUE"))?;
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

/// `NAME` of every `${env.NAME}` in a plan's text.
fn env_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${env.") {
        rest = &rest[i + 6..];
        if let Some(end) = rest.find('}') {
            out.push(rest[..end].trim().to_owned());
        }
    }
    out
}

/// `volley run PLAN --agent URL`: submit to the fleet, follow it, print
/// the merged summary, exit like a local run.
pub fn run_on_fleet(args: RunArgs, url: String, runtime: &tokio::runtime::Runtime) -> u8 {
    if let Some(region) = &args.region {
        eprintln!(
            "warning: --region {region} is left out on a fleet: each agent's `region` label is its region"
        );
    }
    let summary = match super::run::summary_mode(&args) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::INVALID_CONFIG;
        }
    };
    let request = match submission(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::INVALID_CONFIG;
        }
    };
    let api = match client(&url, args.token_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    runtime.block_on(async move {
        let accepted = match api.submit(&request).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: the fleet refused the test: {e}");
                return if e.status().is_some_and(|s| s.as_u16() == 400) {
                    exit::INVALID_CONFIG
                } else {
                    exit::FAILURE
                };
            }
        };
        let shares: Vec<String> = accepted
            .allocation
            .iter()
            .map(|a| format!("{} {}", a.agent, a.share))
            .collect();
        eprintln!(
            "test {} accepted by {}: {} agent(s) [{}], starts in {}",
            accepted.id,
            accepted.origin,
            accepted.allocation.len(),
            shares.join(", "),
            accepted.starts_in
        );
        let opts = FollowOptions {
            quiet: args.quiet,
            no_color: args.no_color,
            summary_export: args.summary_export.clone(),
            junit: args.junit.clone(),
            report: args.report.clone().map(|file| (file, args.plan.clone())),
            summary,
        };
        follow(&api, &accepted.id, &opts).await
    })
}

/// `volley tests`, `volley abort ID`, `volley members`.
pub fn client_command(args: ClientArgs, what: ClientWhat, runtime: &tokio::runtime::Runtime) -> u8 {
    let api = match client(&args.agent, args.token_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async move {
        match what {
            ClientWhat::Tests => {
                let tests = api.list_tests().await?;
                println!(
                    "{:<22} {:<10} {:<16} {:>6}  NAME",
                    "ID", "PHASE", "ORIGIN", "AGENTS"
                );
                for t in tests {
                    println!(
                        "{:<22} {:<10} {:<16} {:>6}  {}",
                        t.id, t.phase, t.origin, t.agents, t.name
                    );
                }
            }
            ClientWhat::Abort(id) => {
                let r = api.abort(&id).await?;
                println!(
                    "aborted test {} (stops within a second on every agent)",
                    r.id
                );
            }
            ClientWhat::Members => {
                let members = api.members().await?;
                println!(
                    "{:<20} {:<9} {:<11} {:>8} {:>10} {:>8}  LABELS",
                    "NODE", "STATE", "IDENTITY", "CAPACITY", "CLOCK ms", "RTT ms"
                );
                for m in members {
                    let labels: Vec<String> =
                        m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "{:<20} {:<9} {:<11} {:>8.2} {:>10} {:>8}  {}{}",
                        m.node_id,
                        m.state,
                        if m.is_self {
                            "self"
                        } else {
                            m.identity.as_str()
                        },
                        m.capacity,
                        m.clock_offset_ms.map_or("-".into(), |o| format!("{o:+.2}")),
                        m.rtt_ms.map_or("-".into(), |r| format!("{r:.2}")),
                        labels.join(","),
                        m.problem.map(|p| format!("  ({p})")).unwrap_or_default()
                    );
                }
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    }
}

/// Which client command.
pub enum ClientWhat {
    Tests,
    Abort(String),
    Members,
}

/// `volley ca init`: writes a fleet CA, or prints it as a Kubernetes Secret.
pub fn ca_init(args: CaArgs) -> u8 {
    let ca = match crate::fleet::ca::FleetCa::generate(&args.name) {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    if args.k8s_secret {
        print!("{}", ca.secret_yaml(&args.secret_name, &args.namespace));
        return exit::OK;
    }
    match ca.write_to_dir(&args.out, args.force) {
        Ok(()) => {
            eprintln!(
                "wrote {0}/ca.crt and {0}/ca.key (keep ca.key secret: it lets an agent join the fleet)",
                args.out.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}
