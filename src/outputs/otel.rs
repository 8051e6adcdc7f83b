//! `--out opentelemetry`: OTLP metrics pushed to a collector over OTLP/HTTP
//! (protobuf bodies) or OTLP/gRPC (HTTP/2 without TLS), with k6's options
//! (`otel_config`) and k6's metric shapes (`metrics::otlp`).
//!
//! Each interval is added into running totals per series (cumulative
//! temporality, as k6's SDK exports); every export interval the totals are
//! encoded and handed to the output's own thread (with its own small
//! runtime) through a bounded queue that drops rather than waits. The
//! thread sends one export at a time, in order, each retried with back-off
//! on a network error, a 5xx / 429 answer or a retryable gRPC status; the
//! end of the run gives the last exports a time limit. Because each export
//! carries the totals so far, a lost export costs resolution, not totals,
//! as long as a later one arrives; every export not delivered is still
//! counted with its reason for the summary. An unreachable collector never
//! fails a test. The thread, its runtime and its queue are an
//! `outputs::worker`.
//!
//! This module (its `send`) owns the hyper clients that talk to the
//! collector.

use std::ops::AddAssign;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio::time::Instant;

use super::otel_config::OtelConfig;
use super::worker::{self, FINAL_LIMIT, Worker};
use crate::metrics::Snapshot;
use crate::metrics::otlp::{Cumulative, Naming};
use crate::plan::egress::EgressPolicy;

/// Exports waiting for the thread before new ones are dropped.
const QUEUE: usize = 16;
/// Series in one request at most: a histogram's data point takes about
/// 400 bytes, so a request stays well under the 4 MiB a gRPC server takes
/// by default.
const MAX_SERIES: usize = 2000;

/// One export: its requests, each with the data points it holds.
struct Export {
    requests: Vec<(Bytes, u64)>,
}

impl Export {
    fn points(&self) -> u64 {
        self.requests.iter().map(|(_, n)| n).sum()
    }
}

/// Export requests and the data points they hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Requests {
    requests: u64,
    points: u64,
}

impl AddAssign for Requests {
    fn add_assign(&mut self, other: Requests) {
        self.requests += other.requests;
        self.points += other.points;
    }
}

/// Export requests not delivered, by reason.
type Losses = worker::Losses<Requests>;

/// A running OpenTelemetry output.
pub struct OtelOutput {
    totals: Cumulative,
    export_every_ns: u64,
    /// End of the interval the last export covered, Unix ns.
    exported_to_ns: Option<u64>,
    /// Its thread; the requests of the exports its queue dropped.
    worker: Worker<Export, Requests>,
    /// Tells the thread when the run ended.
    end: watch::Sender<Option<Instant>>,
}

impl OtelOutput {
    /// Starts the output's thread. With `egress`, every export first
    /// resolves the collector and checks each address against the policy
    /// (a fleet test's outputs).
    pub fn start(
        label: String,
        config: OtelConfig,
        egress: Option<Arc<EgressPolicy>>,
    ) -> Result<OtelOutput, String> {
        let sender = Sender::new(&config, egress).map_err(|e| format!("--out {label}: {e}"))?;
        let (end_tx, end_rx) = watch::channel(None);
        let worker = Worker::start(label, "volley-otel", QUEUE, move |rx| {
            push_loop(sender, rx, end_rx)
        })?;
        Ok(OtelOutput {
            totals: Cumulative::new(Naming {
                service_name: config.service_name.clone(),
                service_version: config.service_version.clone(),
                metric_prefix: config.metric_prefix.clone(),
            }),
            export_every_ns: u64::try_from(config.export_interval.as_nanos()).unwrap_or(u64::MAX),
            exported_to_ns: None,
            worker,
            end: end_tx,
        })
    }

    /// Encodes the totals and hands them over without waiting; a full
    /// queue drops the export (counted).
    fn export(&mut self) {
        self.exported_to_ns = Some(self.totals.end_unix_ns());
        let export = Export {
            requests: self
                .totals
                .encode(MAX_SERIES)
                .into_iter()
                .map(|(body, n)| (Bytes::from(body), n))
                .collect(),
        };
        let cost = Requests {
            requests: export.requests.len() as u64,
            points: export.points(),
        };
        let _ = self.worker.send(export, cost);
    }
}

impl super::IntervalOutput for OtelOutput {
    fn write(&mut self, snapshot: &Snapshot, tags: &[(&str, &str)]) {
        self.totals.add(snapshot, tags);
        let end = self.totals.end_unix_ns();
        // The first export one export interval after the run's start.
        let last = self
            .exported_to_ns
            .unwrap_or_else(|| self.totals.start_unix_ns());
        if end.saturating_sub(last) >= self.export_every_ns {
            self.export();
        }
    }

    fn finish(mut self: Box<Self>) -> Vec<String> {
        if self.totals.is_fresh() {
            self.export();
        }
        // Ignored when the thread is gone: then nothing waits for it.
        let _ = self.end.send(Some(Instant::now()));
        let worker::Closed {
            mut losses,
            dropped,
        } = self.worker.close("exports");
        if dropped.requests > 0 {
            losses.insert(
                "the output's queue was full (the collector could not keep up)".into(),
                dropped,
            );
        }
        let label = self.worker.label();
        losses
            .into_iter()
            .map(|(reason, Requests { requests, points })| match requests {
                0 => format!("--out {label}: {reason}"),
                1 => format!(
                    "--out {label}: 1 export request ({points} data points) not delivered: {reason}"
                ),
                n => format!(
                    "--out {label}: {n} export requests ({points} data points) not delivered: \
                     {reason}"
                ),
            })
            .collect()
    }
}

/// The output's thread: sends exports one at a time, in order, until the
/// channel closes; from the end of the run (`end` says when that was) what
/// is left, the export under way included, gets FINAL_LIMIT in all.
async fn push_loop(
    sender: Sender,
    mut rx: mpsc::Receiver<Export>,
    mut end: watch::Receiver<Option<Instant>>,
) -> Losses {
    let late = format!(
        "the collector had not taken them {} s after the end of the test",
        FINAL_LIMIT.as_secs()
    );
    let mut losses = Losses::new();
    let mut lose = |reason: &str, points: u64| {
        *losses.entry(reason.to_owned()).or_default() += Requests {
            requests: 1,
            points,
        };
    };
    loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            () = time_is_up(&mut end) => None,
        };
        let Some(export) = next else { break };
        for (body, points) in export.requests {
            let result = tokio::select! {
                result = sender.send_with_retries(body) => result,
                () = time_is_up(&mut end) => Err(late.clone()),
            };
            if let Err(reason) = result {
                lose(&reason, points);
            }
        }
    }
    // Exports still queued when the time ran out.
    while let Ok(export) = rx.try_recv() {
        for (_, points) in export.requests {
            lose(&late, points);
        }
    }
    losses
}

/// Ends FINAL_LIMIT after the run's end; never before the run has ended.
async fn time_is_up(end: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let ended = *end.borrow_and_update();
        if let Some(at) = ended {
            tokio::time::sleep_until(at + FINAL_LIMIT).await;
            return;
        }
        if end.changed().await.is_err() {
            // The output was dropped without finishing: nothing to wait for.
            std::future::pending::<()>().await;
        }
    }
}

mod send;

use send::Sender;
