//! `volley demo --cross-region`: in-region vs cross-region in one command,
//! on loopback. Two built-in targets stand for two regions' services:
//! `us-east`, and `eu-west` answering 40 ms later (the target's
//! `added_latency`, as if 40 ms away). This machine sends from `us-east`
//! (`volley run --region us-east`) a plan whose `targets` name both; the
//! summary's REGION MATRIX shows the cross-region cell about 40 ms above
//! the in-region one, and a threshold names that cell.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Parser;

use super::args::{Cli, Command, DemoArgs};
use super::exit;
use crate::target::{self, TargetConfig};

/// The emulated distance between the two regions.
pub const CROSS_REGION_LATENCY: Duration = Duration::from_millis(40);

pub fn run(args: DemoArgs, runtime: &tokio::runtime::Runtime) -> u8 {
    let dir = std::env::temp_dir().join(format!("volley-demo-regions-{}", std::process::id()));
    let code = demo(&args, &dir, runtime);
    let _ = std::fs::remove_dir_all(&dir);
    match code {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    }
}

fn demo(args: &DemoArgs, dir: &Path, runtime: &tokio::runtime::Runtime) -> anyhow::Result<u8> {
    let duration = crate::plan::parse_duration(&args.duration)
        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    let targets = Targets::start()?;
    eprintln!(
        "us-east target: http://{}/   eu-west target: http://{}/ (+{} ms per answer)",
        targets.near,
        targets.far,
        CROSS_REGION_LATENCY.as_millis()
    );
    std::fs::create_dir_all(dir)?;
    let plan_path = dir.join("regions.yaml");
    std::fs::write(
        &plan_path,
        plan(targets.near, targets.far, args.rate, duration),
    )?;
    let mut argv: Vec<String> = vec![
        "volley".into(),
        "run".into(),
        plan_path.display().to_string(),
        "--region".into(),
        "us-east".into(),
    ];
    if args.no_color {
        argv.push("--no-color".into());
    }
    if let Some(path) = &args.summary_export {
        argv.push("--summary-export".into());
        argv.push(path.display().to_string());
    }
    let run_args = match Cli::try_parse_from(&argv)?.command {
        Command::Run(a) => a,
        _ => anyhow::bail!("the demo's own `volley run` arguments did not parse as a run"),
    };
    eprintln!(
        "running from region us-east against both targets for {}",
        args.duration
    );
    let code = super::run::run(run_args, runtime);
    let (near, far) = targets.stop();
    eprintln!("us-east target served {near} requests, eu-west target {far}");
    Ok(code)
}

/// The two targets, served by a thread of their own so that their timers
/// never wait for the engine's.
struct Targets {
    near: SocketAddr,
    far: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<(u64, u64)>>,
}

impl Targets {
    fn start() -> anyhow::Result<Targets> {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("demo-targets".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = addr_tx.send(Err(anyhow::anyhow!("target runtime: {e}")));
                        return (0, 0);
                    }
                };
                rt.block_on(async move {
                    let local: SocketAddr = ([127, 0, 0, 1], 0).into();
                    let near = target::spawn(local, TargetConfig::default()).await;
                    let far = target::spawn(
                        local,
                        TargetConfig {
                            added_latency: CROSS_REGION_LATENCY,
                            ..TargetConfig::default()
                        },
                    )
                    .await;
                    let (near, far) = match (near, far) {
                        (Ok(n), Ok(f)) => (n, f),
                        (Err(e), _) | (_, Err(e)) => {
                            let _ = addr_tx.send(Err(anyhow::anyhow!("{e}")));
                            return (0, 0);
                        }
                    };
                    let _ = addr_tx.send(Ok((near.addr, far.addr)));
                    let _ = stop_rx.await;
                    let counts = (near.stats.requests(), far.stats.requests());
                    near.shutdown().await;
                    far.shutdown().await;
                    counts
                })
            })?;
        let (near, far) = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow::anyhow!("the demo's targets did not start within 10 s"))??;
        Ok(Targets {
            near,
            far,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Stops both targets; the requests each served.
    fn stop(mut self) -> (u64, u64) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or((0, 0))
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// One request per target per iteration at `rate` iterations a second;
/// thresholds on the whole test and on two cells of the matrix.
fn plan(near: SocketAddr, far: SocketAddr, rate: u64, duration: Duration) -> String {
    let duration = crate::plan::format_duration(duration);
    let delay = CROSS_REGION_LATENCY.as_millis();
    format!(
        r#"targets:
  us-east: http://{near}
  eu-west: http://{far}
scenarios:
  regions:
    executor: constant-arrival-rate
    rate: {rate}
    duration: {duration}
    preAllocatedVUs: 20
    maxVUs: 200
flow:
  - request:
      name: json
      url: /json
      check:
        - status: 200
thresholds:
  http_req_failed: ["rate<0.01"]
  "http_req_duration{{region:us-east,target_region:us-east}}": ["p(95)<250"]
  "http_req_duration{{region:us-east,target_region:eu-west}}": ["p(50)>={delay}"]
"#
    )
}
