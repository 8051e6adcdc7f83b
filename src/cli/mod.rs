//! The `volley` command line: argument definitions, the local `run`, the
//! built-in `target`, exit codes and console output. The only place that
//! prints for humans and the only one that uses `anyhow`.

pub mod args;
mod demo;
mod demo_regions;
pub mod exit;
mod fleet;
mod follow;
mod inspect;
pub mod output;
pub mod relay;
pub mod report_out;
pub mod run;
mod script_out;
pub mod signals;
mod target;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let open_files = crate::os::raise_open_files();
    tracing::debug!(?open_files, "open-file limit");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    exit::code(dispatch(cli, &runtime))
}

/// Runs one parsed command on `runtime`; returns the exit code.
pub fn dispatch(cli: Cli, runtime: &tokio::runtime::Runtime) -> u8 {
    match cli.command {
        args::Command::Run(a) => run::run(a, runtime),
        args::Command::Target(a) => target::run(a, runtime),
        args::Command::Inspect(a) => inspect::run(a),
        args::Command::Agent(a) => fleet::agent(a, runtime),
        args::Command::Tests(a) => fleet::client_command(a, fleet::ClientWhat::Tests, runtime),
        args::Command::Abort(a) => {
            fleet::client_command(a.client, fleet::ClientWhat::Abort(a.id), runtime)
        }
        args::Command::Members(a) => fleet::client_command(a, fleet::ClientWhat::Members, runtime),
        args::Command::Demo(a) => demo::run(a, runtime),
        args::Command::Relay(a) => relay::run(a, runtime),
        args::Command::Ca(args::CaCommand::Init(a)) => fleet::ca_init(a),
        args::Command::Crd => {
            print!("{}", crate::kube::crd::crd_yaml());
            exit::OK
        }
    }
}

/// One tokio runtime sized to the CPUs this process may use (cgroup quota
/// and affinity); a current-thread runtime when that is one CPU, which is
/// cheaper per request than a one-worker scheduler.
pub fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus)
            .enable_all()
            .build()
    }
}

/// Log lines go to stderr, filtered by `RUST_LOG` (default `warn`): as
/// text, coloured only on a terminal and without `NO_COLOR`, or as JSON.
fn init_tracing(format: args::LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        args::LogFormat::Json => builder.json().try_init(),
        args::LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(ansi).try_init()
        }
    };
}
