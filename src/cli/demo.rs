//! `volley demo`: a whole fleet on loopback in one command. Starts the
//! built-in target and three agents (capacities 2:1:1, two regions),
//! submits an example plan to the second agent, follows it, and prints the
//! merged summary with the start spread. Nothing leaves 127.0.0.1.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::DemoArgs;
use super::exit;
use super::follow::{FollowOptions, follow};
use crate::agent::RunningAgent;
use crate::agent::config::{AgentArgs, AgentSettings, MapSource, OsFiles};
use crate::api::{ApiClient, SubmitRequest};
use crate::target::{self, TargetConfig};

pub fn run(args: DemoArgs, runtime: &tokio::runtime::Runtime) -> u8 {
    if args.cross_region {
        return super::demo_regions::run(args, runtime);
    }
    let dir = std::env::temp_dir().join(format!("volley-demo-{}", std::process::id()));
    let code = runtime.block_on(demo(&args, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    match code {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    }
}

async fn demo(args: &DemoArgs, dir: &Path) -> anyhow::Result<u8> {
    let duration = crate::plan::parse_duration(&args.duration)
        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    let target = target::spawn("127.0.0.1:0".parse()?, TargetConfig::default()).await?;
    eprintln!("target: http://{}/", target.addr);
    let ca = crate::fleet::ca::FleetCa::generate("volley demo CA")?;
    ca.write_to_dir(&dir.join("ca"), true)?;

    let specs = [
        ("agent-a", 2.0, "eu-west"),
        ("agent-b", 1.0, "eu-west"),
        ("agent-c", 1.0, "us-east"),
    ];
    let mut agents: Vec<RunningAgent> = Vec::new();
    for (i, (name, capacity, region)) in specs.iter().enumerate() {
        let seed = agents.first().map(|a| a.gossip_addr);
        let settings = demo_settings(dir, i, name, *capacity, region, seed)?;
        let agent = crate::agent::start(settings).await?;
        eprintln!(
            "{name}: api http://{}  gossip {}  quic {}  capacity {capacity}  region {region}",
            agent.api_addr, agent.gossip_addr, agent.quic_addr
        );
        agents.push(agent);
    }
    let entry = &agents[1];
    let api = ApiClient::new(&format!("http://{}", entry.api_addr), None)?;
    wait_for_members(&api, specs.len()).await?;
    eprintln!(
        "fleet formed: {} agents see each other; submitting to {}",
        specs.len(),
        entry.node_id
    );

    let plan = example_plan(target.addr, args.rate, duration);
    let accepted = api
        .submit(&SubmitRequest {
            plan,
            name: Some("demo".into()),
            lead_time: Some("1500ms".into()),
            ..SubmitRequest::default()
        })
        .await?;
    let shares: Vec<String> = accepted
        .allocation
        .iter()
        .map(|a| format!("{} {} ({} VUs max)", a.agent, a.share, a.vus.unwrap_or(0)))
        .collect();
    eprintln!(
        "test {} starts in {} on [{}]",
        accepted.id,
        accepted.starts_in,
        shares.join(", ")
    );
    let code = follow(
        &api,
        &accepted.id,
        &FollowOptions {
            quiet: false,
            no_color: args.no_color,
            summary_export: None,
            junit: None,
            report: None,
            summary: super::run::SummaryMode::Compact,
        },
    )
    .await;
    if let Ok(view) = api.get_test(&accepted.id).await
        && let Some(spread) = view.start_spread_ms
    {
        eprintln!("start spread across agents: {spread:.3} ms");
    }
    eprintln!(
        "target served {} requests in total",
        target.stats.requests()
    );
    for agent in agents {
        agent.shutdown().await;
    }
    target.shutdown().await;
    Ok(code)
}

fn demo_settings(
    dir: &Path,
    i: usize,
    name: &str,
    capacity: f64,
    region: &str,
    seed: Option<SocketAddr>,
) -> anyhow::Result<AgentSettings> {
    let ca = dir.join("ca");
    let mut env: BTreeMap<String, String> = [
        ("VOLLEY_NODE_ID", name.to_string()),
        ("VOLLEY_GOSSIP_LISTEN", "127.0.0.1:0".into()),
        ("VOLLEY_QUIC_LISTEN", "127.0.0.1:0".into()),
        ("VOLLEY_API_LISTEN", "127.0.0.1:0".into()),
        ("VOLLEY_CAPACITY", capacity.to_string()),
        ("VOLLEY_LABELS", format!("region={region}")),
        ("VOLLEY_CA_CERT", path(&ca.join("ca.crt"))),
        ("VOLLEY_CA_KEY", path(&ca.join("ca.key"))),
        ("VOLLEY_DATA_DIR", path(&dir.join(format!("data-{i}")))),
        ("VOLLEY_GOSSIP_INTERVAL", "100ms".into()),
        ("VOLLEY_KUBE", "off".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(seed) = seed {
        env.insert("VOLLEY_SEEDS".into(), seed.to_string());
    }
    let args = AgentArgs {
        no_auth: true,
        ..AgentArgs::default()
    };
    AgentSettings::load(&args, &MapSource(env), &OsFiles).map_err(|e| anyhow::anyhow!("{e}"))
}

fn path(p: &Path) -> String {
    PathBuf::from(p).display().to_string()
}

async fn wait_for_members(api: &ApiClient, n: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let members = api.members().await.unwrap_or_default();
        if members.len() >= n && members.iter().all(|m| m.state == "idle") {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("only {} of {n} agents joined within 15 s", members.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A warm-up at a quarter of the rate, then the main phase: both phases
/// start on every agent at the same instant.
fn example_plan(target: SocketAddr, rate: u64, duration: Duration) -> String {
    let warm = (rate / 4).max(1);
    let half = crate::plan::format_duration(duration / 2);
    format!(
        r#"scenarios:
  warmup:
    executor: constant-arrival-rate
    rate: {warm}
    duration: {half}
    preAllocatedVUs: 20
    maxVUs: 100
    flow: &flow
      - request:
          name: delay
          url: http://{target}/delay/5
          check:
            - status: 200
      - request:
          name: json
          url: http://{target}/json
          check:
            - json: {{pointer: /name, equals: volley}}
  main:
    executor: constant-arrival-rate
    startTime: {half}
    rate: {rate}
    duration: {half}
    preAllocatedVUs: 50
    maxVUs: 200
    flow: *flow
thresholds:
  http_req_duration: ["p(95)<250"]
  http_req_failed: ["rate<0.01"]
  checks: ["rate>0.99"]
"#
    )
}
