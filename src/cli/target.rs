//! `volley target`: serve the built-in HTTP target until Ctrl+C.

use super::args::TargetArgs;
use super::exit;
use crate::target::{self, TargetConfig, TargetStats};

pub fn run(args: TargetArgs, runtime: &tokio::runtime::Runtime) -> u8 {
    runtime.block_on(async move {
        let listener = match target::bind(args.listen, args.backlog) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return exit::FAILURE;
            }
        };
        let addr = listener
            .local_addr()
            .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
        let scheme = if args.tls { "https" } else { "http" };
        let added_latency = match args
            .added_latency
            .as_deref()
            .map(crate::plan::parse_duration)
        {
            None => std::time::Duration::ZERO,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                eprintln!("error: --added-latency: {e}");
                return exit::INVALID_CONFIG;
            }
        };
        let config = TargetConfig {
            tls: args.tls,
            tls_names: args.tls_names,
            backlog: args.backlog,
            added_latency,
            ..TargetConfig::default()
        };
        eprintln!(
            "volley target listening on {scheme}://{addr}/ (HTTP/1.1 and HTTP/2; Ctrl+C stops)"
        );
        eprintln!("routes: / /bytes/N /delay/MS /status/CODE /json /echo /headers /stall /drop");
        let stats = std::sync::Arc::new(TargetStats::default());
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match target::serve(listener, config, stats.clone(), shutdown).await {
            Ok(()) => {
                eprintln!("served {} requests", stats.requests());
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::FAILURE
            }
        }
    })
}
