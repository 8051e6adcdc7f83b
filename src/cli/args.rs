//! The command line: clap definitions only. Values stay close to the flags;
//! `cli::run` and friends resolve them into plans and settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Volley: distributed HTTP load testing with k6's vocabulary.
#[derive(Debug, Parser)]
#[command(name = "volley", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How log lines on stderr are written: `text` (colours only on a
    /// terminal, never with `NO_COLOR`) or `json` (one object a line, for
    /// log collectors).
    #[arg(long, global = true, env = "VOLLEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once per process: boxing the agent's flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a test plan (or a quick GET test of a URL) on this machine.
    Run(RunArgs),
    /// Serve the built-in HTTP target (for trying Volley, examples and tests).
    Target(TargetArgs),
    /// Check a plan and print what it would run, without sending anything.
    Inspect(InspectArgs),
    /// Run a long-lived fleet agent (one per load node).
    Agent(crate::agent::config::AgentArgs),
    /// List the fleet's tests.
    Tests(ClientArgs),
    /// Abort a fleet test everywhere.
    Abort(AbortArgs),
    /// Show the fleet's live members, capacities and clock offsets.
    Members(ClientArgs),
    /// Start 3 agents and a target on loopback, run an example plan, show the merged results.
    Demo(DemoArgs),
    /// Forward TCP and UDP to another address with added delay and jitter (emulated links).
    Relay(super::relay::RelayArgs),
    /// Fleet certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Print the LoadTest CustomResourceDefinition (YAML).
    Crd,
}

/// Talking to a running agent.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Any agent's API, e.g. `http://127.0.0.1:7070`.
    #[arg(long, env = "VOLLEY_AGENT", default_value = "http://127.0.0.1:7070")]
    pub agent: String,
    /// File holding the API bearer token (else `VOLLEY_TOKEN`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// `volley abort`.
#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The test id.
    pub id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `volley demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long the example test runs.
    #[arg(long, default_value = "6s")]
    pub duration: String,
    /// Arrival rate of the example test (iterations per second, whole fleet).
    #[arg(long, default_value_t = 300)]
    pub rate: u64,
    /// No colors.
    #[arg(long)]
    pub no_color: bool,
    /// In-region vs cross-region instead: one machine in region us-east,
    /// two built-in targets (us-east, and eu-west 40 ms away), the region
    /// matrix printed.
    #[arg(long)]
    pub cross_region: bool,
    /// `--cross-region`: write the summary (with its `matrix`) as k6's
    /// export JSON to this file.
    #[arg(long, value_name = "PATH", requires = "cross_region")]
    pub summary_export: Option<PathBuf>,
}

/// `volley ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a fleet CA (ca.crt, ca.key), or print it as a Kubernetes Secret.
    Init(CaArgs),
}

/// `volley ca init`.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// Directory to write ca.crt and ca.key into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// The CA's common name.
    #[arg(long, default_value = "volley fleet CA")]
    pub name: String,
    /// Print a Kubernetes Secret (ca.crt, ca.key) instead of writing files.
    #[arg(long)]
    pub k8s_secret: bool,
    /// The Secret's namespace.
    #[arg(long, default_value = "volley")]
    pub namespace: String,
    /// The Secret's name.
    #[arg(long, default_value = "volley-ca")]
    pub secret_name: String,
}

/// `volley run`: k6's flags where k6 has them.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A plan file (YAML or JSON), a k6 script (.js) or an http(s):// URL.
    pub plan: String,
    /// Run this many VUs (replaces the plan's scenarios, as in k6).
    #[arg(short = 'u', long, env = "K6_VUS")]
    pub vus: Option<u64>,
    /// Run for this long, in k6 form (`30s`, `1m30s`).
    #[arg(short = 'd', long, env = "K6_DURATION")]
    pub duration: Option<String>,
    /// Run this many iterations in total, shared by the VUs.
    #[arg(short = 'i', long, env = "K6_ITERATIONS")]
    pub iterations: Option<u64>,
    /// A ramping stage `DURATION:TARGET`; repeat for more (K6_STAGES:
    /// comma-separated).
    #[arg(short = 's', long = "stage", env = "K6_STAGES", value_delimiter = ',')]
    pub stages: Vec<String>,
    /// `KEY=VALUE` for `${env.KEY}` in the plan; repeat for more.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Write the end-of-test summary as k6's JSON export to FILE.
    #[arg(long, value_name = "FILE", env = "K6_SUMMARY_EXPORT")]
    pub summary_export: Option<PathBuf>,
    /// Write the thresholds and checks as JUnit XML test cases to FILE (a
    /// failed threshold, or a check that failed, is a `failure`).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a one-file HTML report (charts, thresholds, checks, metrics;
    /// works offline) to FILE at the end, also for fleet tests.
    #[arg(long, value_name = "FILE", env = "K6_WEB_DASHBOARD_EXPORT")]
    pub report: Option<PathBuf>,
    /// Serve a live dashboard while a local test runs, at
    /// http://127.0.0.1:5665 (K6_WEB_DASHBOARD_HOST, K6_WEB_DASHBOARD_PORT;
    /// refreshed every K6_WEB_DASHBOARD_PERIOD, 1s).
    #[arg(long, env = "K6_WEB_DASHBOARD")]
    pub dashboard: bool,
    /// Trend statistics to show, e.g. `avg,min,med,max,p(90),p(99)`.
    #[arg(long, value_name = "STATS", env = "K6_SUMMARY_TREND_STATS")]
    pub summary_trend_stats: Option<String>,
    /// An output, `NAME[=ARG]`; repeat for more (else `K6_OUT`,
    /// comma-separated): `json=FILE` (k6's JSON lines, a line per sample;
    /// no FILE or `-`: stdout), `csv=FILE` (k6's CSV; or
    /// `csv=fileName=FILE,saveInterval=1s,timeFormat=unix`),
    /// `influxdb=http://HOST:8086/DB` (InfluxDB 1.x, `K6_INFLUXDB_*`),
    /// `opentelemetry` (OTLP over gRPC or HTTP, `K6_OTEL_*`),
    /// `volley-json=FILE` (Volley's per-interval aggregates). A file name
    /// ending in `.gz` is gzip-compressed. With `--agent`, the origin
    /// writes the fleet's merged intervals (`influxdb`, `opentelemetry`).
    #[arg(short = 'o', long = "out", value_name = "NAME=ARG")]
    pub out: Vec<String>,
    /// With `--agent`: one series set for the whole `fleet` (default), or
    /// one per `region` or per `agent` in the outputs
    #[arg(long, value_name = "fleet|region|agent", requires = "agent")]
    pub out_by: Option<String>,
    /// A tag `NAME=VALUE` on every sample of the test; repeat for more (they
    /// win over the plan's or script's `tags`).
    #[arg(long = "tag", value_name = "NAME=VALUE")]
    pub tags: Vec<String>,
    /// The region this machine sends from, for a plan with `targets`: the
    /// `region` tag of every sample (default `local`; agents use their
    /// `region` label).
    #[arg(long, env = "VOLLEY_REGION", value_name = "NAME")]
    pub region: Option<String>,
    /// Write every request and response head to stderr (`full`: bodies
    /// too); credentials and cookie values are redacted.
    #[arg(long, value_name = "full", num_args = 0..=1, default_missing_value = "headers", env = "K6_HTTP_DEBUG")]
    pub http_debug: Option<String>,
    /// Source addresses for the VUs' connections, handed out in turn:
    /// addresses, ranges `a-b` and CIDR blocks, comma-separated.
    #[arg(long, value_name = "IPS", env = "K6_LOCAL_IPS")]
    pub local_ips: Option<String>,
    /// Name resolution, k6's form: `ttl=5m,select=random,policy=preferIPv4`
    /// (ttl: `inf`, `0` or a duration; select: first, random, roundRobin;
    /// policy: preferIPv4, preferIPv6, onlyIPv4, onlyIPv6, any).
    #[arg(long, value_name = "SPEC", env = "K6_DNS")]
    pub dns: Option<String>,
    /// The system tags samples carry, comma-separated (k6's names; the
    /// default is k6's set).
    #[arg(long, value_name = "TAGS", env = "K6_SYSTEM_TAGS")]
    pub system_tags: Option<String>,
    /// The `User-Agent` sent unless a request sets its own.
    #[arg(long, value_name = "UA", env = "K6_USER_AGENT")]
    pub user_agent: Option<String>,
    /// Redirects followed per request (k6's default: 10).
    #[arg(long, value_name = "N", env = "K6_MAX_REDIRECTS", value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub max_redirects: Option<u32>,
    /// Accept any server certificate.
    #[arg(long, env = "K6_INSECURE_SKIP_TLS_VERIFY")]
    pub insecure_skip_tls_verify: bool,
    /// A new connection for every request.
    #[arg(long, env = "K6_NO_CONNECTION_REUSE")]
    pub no_connection_reuse: bool,
    /// Read and count response bodies without keeping them.
    #[arg(long, env = "K6_DISCARD_RESPONSE_BODIES")]
    pub discard_response_bodies: bool,
    /// Keep each VU's cookies from one iteration to the next.
    #[arg(long, env = "K6_NO_COOKIES_RESET")]
    pub no_cookies_reset: bool,
    /// At most this many requests per second, all VUs together (0: no cap).
    #[arg(long, value_name = "N", env = "K6_RPS")]
    pub rps: Option<u64>,
    /// Do not judge thresholds: the test passes whatever they say.
    #[arg(long, env = "K6_NO_THRESHOLDS")]
    pub no_thresholds: bool,
    /// Print no end-of-test summary (`--summary-export` is still written).
    #[arg(long, env = "K6_NO_SUMMARY")]
    pub no_summary: bool,
    /// `compact` (the default; `legacy` is the same here) or `disabled`.
    #[arg(long, value_name = "MODE", env = "K6_SUMMARY_MODE")]
    pub summary_mode: Option<String>,
    /// No header and no progress
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// No colors in the output.
    #[arg(long, env = "K6_NO_COLOR")]
    pub no_color: bool,
    /// This instance's share of the load, e.g. `1/3:2/3` (k6 execution segment).
    #[arg(long, value_name = "FROM:TO")]
    pub execution_segment: Option<String>,
    /// The full list of cut points shared by every instance, e.g. `0,1/3,2/3,1`.
    #[arg(long, value_name = "CUTS")]
    pub execution_segment_sequence: Option<String>,
    /// Run on a fleet: submit to this agent's API (any agent) instead of running here.
    #[arg(long, value_name = "URL")]
    pub agent: Option<String>,
    /// File holding the API bearer token (else `VOLLEY_TOKEN`).
    #[arg(long, requires = "agent")]
    pub token_file: Option<PathBuf>,
    /// Only agents with these labels, `region=eu,pool=load` (fleet runs).
    #[arg(long, requires = "agent")]
    pub selector: Vec<String>,
    /// Refuse to start with fewer agents (fleet runs).
    #[arg(long, requires = "agent")]
    pub min_agents: Option<u32>,
    /// Time between submission and the synchronised start (fleet runs).
    #[arg(long, requires = "agent")]
    pub lead_time: Option<String>,
}

/// `volley target`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Address to listen on.
    #[arg(short, long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with a self-signed certificate made at start.
    #[arg(long)]
    pub tls: bool,
    /// Extra DNS names or IPs for the self-signed certificate.
    #[arg(long = "tls-name")]
    pub tls_names: Vec<String>,
    /// Connections the kernel may queue before they are accepted (capped
    /// at `net.core.somaxconn`).
    #[arg(long, default_value_t = crate::target::DEFAULT_BACKLOG)]
    pub backlog: u32,
    /// Hold every answer this long first (`40ms`): the target looks as far
    /// away as a remote region.
    #[arg(long, value_name = "DURATION")]
    pub added_latency: Option<String>,
}

/// `volley inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A plan file (YAML or JSON), or a k6 script (.js).
    pub plan: PathBuf,
    /// `KEY=VALUE` for `${env.KEY}`; repeat for more.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
}
