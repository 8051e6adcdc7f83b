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
//! fails a test.
//!
//! This module (its `send`) owns the hyper clients that talk to the
//! collector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::otel_config::OtelConfig;
use crate::metrics::Snapshot;
use crate::metrics::otlp::{Cumulative, Naming};
use crate::plan::egress::EgressPolicy;

/// Exports waiting for the thread before new ones are dropped.
const QUEUE: usize = 16;
/// Series in one request at most: a histogram's data point takes about
/// 400 bytes, so a request stays well under the 4 MiB a gRPC server takes
/// by default.
const MAX_SERIES: usize = 2000;
/// How long the end of a run waits for the last exports.
const FINAL_LIMIT: Duration = Duration::from_secs(15);

/// One export: its requests, each with the data points it holds.
struct Export {
    requests: Vec<(Bytes, u64)>,
}

impl Export {
    fn points(&self) -> u64 {
        self.requests.iter().map(|(_, n)| n).sum()
    }
}

/// Exports and their data points not delivered, by reason.
type Losses = BTreeMap<String, (u64, u64)>;

/// A running OpenTelemetry output.
pub struct OtelOutput {
    label: String,
    totals: Cumulative,
    export_every_ns: u64,
    /// End of the interval the last export covered, Unix ns.
    exported_to_ns: Option<u64>,
    tx: Option<mpsc::Sender<Export>>,
    /// Tells the thread when the run ended.
    end: watch::Sender<Option<Instant>>,
    thread: Option<JoinHandle<Losses>>,
    dropped_full: (u64, u64),
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
        let (tx, rx) = mpsc::channel(QUEUE);
        let (end_tx, end_rx) = watch::channel(None);
        let thread = std::thread::Builder::new()
            .name("volley-otel".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(push_loop(sender, rx, end_rx)),
                    Err(e) => Losses::from([(
                        format!("cannot start its runtime ({e}); nothing sent"),
                        (0, 0),
                    )]),
                }
            })
            .map_err(|e| format!("--out {label}: cannot start its thread: {e}"))?;
        Ok(OtelOutput {
            label,
            totals: Cumulative::new(Naming {
                service_name: config.service_name.clone(),
                service_version: config.service_version.clone(),
                metric_prefix: config.metric_prefix.clone(),
            }),
            export_every_ns: u64::try_from(config.export_interval.as_nanos()).unwrap_or(u64::MAX),
            exported_to_ns: None,
            tx: Some(tx),
            end: end_tx,
            thread: Some(thread),
            dropped_full: (0, 0),
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
        let Some(tx) = &self.tx else { return };
        if let Err(TrySendError::Full(e) | TrySendError::Closed(e)) = tx.try_send(export) {
            self.dropped_full.0 += e.requests.len() as u64;
            self.dropped_full.1 += e.points();
        }
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
        drop(self.tx.take());
        let mut losses = Losses::new();
        if let Some(thread) = self.thread.take() {
            match super::join_within(thread, FINAL_LIMIT + Duration::from_secs(5)) {
                Ok(l) => losses = l,
                Err(super::Unjoined::Failed) => {
                    losses.insert("its thread failed; exports may be missing".into(), (0, 0));
                }
                Err(super::Unjoined::StillRunning) => {
                    losses.insert(
                        "its thread did not end; exports may be missing".into(),
                        (0, 0),
                    );
                }
            }
        }
        if self.dropped_full.0 > 0 {
            losses.insert(
                "the output's queue was full (the collector could not keep up)".into(),
                self.dropped_full,
            );
        }
        losses
            .into_iter()
            .map(|(reason, (exports, points))| match exports {
                0 => format!("--out {}: {reason}", self.label),
                1 => format!(
                    "--out {}: 1 export request ({points} data points) not delivered: {reason}",
                    self.label
                ),
                n => format!(
                    "--out {}: {n} export requests ({points} data points) not delivered: {reason}",
                    self.label
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
        let e = losses.entry(reason.to_owned()).or_default();
        e.0 += 1;
        e.1 += points;
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
