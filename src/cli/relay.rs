//! `volley relay`: forward TCP and UDP from one address to another with added delay and jitter
//! (see [`crate::relay`]), until Ctrl+C or SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::exit;
use crate::plan::duration::{format_duration, parse_duration};
use crate::relay::{self, Delay, Limits, RelayConfig};

/// `volley relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on (TCP and/or UDP), e.g. `0.0.0.0:7946`.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// Where to forward, `HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Delay added to every packet or chunk in each direction (`30ms`).
    #[arg(long, default_value = "0ms")]
    pub delay: String,
    /// Up to this much more or less per packet (uniform), never reordering a flow.
    #[arg(long, default_value = "0ms")]
    pub jitter: String,
    /// The delay from `--to` back to the client, when it differs from `--delay`.
    #[arg(long, value_name = "DURATION")]
    pub back_delay: Option<String>,
    /// The jitter from `--to` back to the client, when it differs from `--jitter`.
    #[arg(long, value_name = "DURATION")]
    pub back_jitter: Option<String>,
    /// Relay TCP (with neither `--tcp` nor `--udp`: both).
    #[arg(long)]
    pub tcp: bool,
    /// Relay UDP, one flow per client address (with neither `--tcp` nor `--udp`: both).
    #[arg(long)]
    pub udp: bool,
    /// Seed of the jitter: the same seed replays the same delays [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Bytes queued per direction of a connection or flow before TCP stops reading and UDP drops.
    #[arg(long, default_value_t = Limits::default().max_queued_bytes)]
    pub max_queued_bytes: usize,
    /// UDP flows (client addresses) at once.
    #[arg(long, default_value_t = Limits::default().max_udp_flows)]
    pub max_flows: usize,
}

/// Checks the flags into a relay configuration; errors name the flag and value.
fn config(args: &RelayArgs, to: SocketAddr) -> Result<RelayConfig, String> {
    let duration = |flag: &str, value: &str| {
        parse_duration(value).map_err(|e| format!("invalid --{flag}: {e}"))
    };
    let direction = |flag: &str, delay: Duration, jitter: Duration| {
        Delay::new(delay, jitter).map_err(|e| format!("invalid --{flag}: {e}"))
    };
    let delay = duration("delay", &args.delay)?;
    let jitter = duration("jitter", &args.jitter)?;
    let back_delay = match &args.back_delay {
        Some(v) => duration("back-delay", v)?,
        None => delay,
    };
    let back_jitter = match &args.back_jitter {
        Some(v) => duration("back-jitter", v)?,
        None => jitter,
    };
    if args.max_flows == 0 {
        return Err("invalid --max-flows: got 0, expected at least 1".into());
    }
    let both = !args.tcp && !args.udp;
    Ok(RelayConfig {
        listen: args.listen,
        to,
        forward: direction("jitter", delay, jitter)?,
        back: direction("back-jitter", back_delay, back_jitter)?,
        tcp: args.tcp || both,
        udp: args.udp || both,
        seed: args.seed.unwrap_or_else(|| fastrand::u64(..)),
        limits: Limits {
            max_queued_bytes: args.max_queued_bytes,
            max_udp_flows: args.max_flows,
            ..Limits::default()
        },
    })
}

pub fn run(args: RelayArgs, runtime: &tokio::runtime::Runtime) -> u8 {
    runtime.block_on(async move {
        let to = match tokio::net::lookup_host(&args.to)
            .await
            .map(|mut a| a.next())
        {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                eprintln!("error: invalid --to: {:?} has no address", args.to);
                return exit::INVALID_CONFIG;
            }
            Err(e) => {
                eprintln!(
                    "error: invalid --to: got {:?}, expected HOST:PORT ({e})",
                    args.to
                );
                return exit::INVALID_CONFIG;
            }
        };
        let config = match config(&args, to) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID_CONFIG;
            }
        };
        let (forward, back, seed) = (config.forward, config.back, config.seed);
        let handle = match relay::spawn(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILURE;
            }
        };
        let show = |d: Delay| {
            format!(
                "{} ± {}",
                format_duration(d.delay),
                format_duration(d.jitter)
            )
        };
        let protocols: Vec<&str> = [("tcp", handle.tcp_addr), ("udp", handle.udp_addr)]
            .iter()
            .filter(|(_, a)| a.is_some())
            .map(|(p, _)| *p)
            .collect();
        let listen = handle.tcp_addr.or(handle.udp_addr).unwrap_or(args.listen);
        eprintln!(
            "volley relay: {} {listen} → {to}, {} there and {} back (seed {seed}); Ctrl+C stops",
            protocols.join("+"),
            show(forward),
            show(back)
        );
        // One machine-readable line for scripts and test harnesses.
        println!(
            "{}",
            serde_json::json!({
                "event": "ready",
                "tcp": handle.tcp_addr.map(|a| a.to_string()),
                "udp": handle.udp_addr.map(|a| a.to_string()),
                "seed": seed,
            })
        );
        let _ = std::io::stdout().flush();
        if !super::signals::wait_for_signal().await {
            // Signals cannot be watched: the process is stopped by being killed.
            std::future::pending::<()>().await;
        }
        eprintln!("relay stopped: {}", handle.stats.describe());
        handle.shutdown().await;
        exit::OK
    })
}
