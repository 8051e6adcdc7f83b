//! `--out experimental-prometheus-rw`: Prometheus remote write 1.0 with
//! k6's names and `K6_PROMETHEUS_RW_*` options. The samples are
//! per-interval aggregates (`metrics::remote_write`): one sample per series
//! per push, whatever the request rate.
//!
//! Interval snapshots reach this output's own thread (with its own small
//! runtime) through a bounded queue that drops rather than waits, so the
//! output never slows the load. Every push interval the series that saw
//! data are sent, one request at a time (remote write wants each series'
//! samples in time order), each retried with back-off on a network error,
//! a 5xx or a 429 answer. Values are cumulative, so a push that is lost is
//! made good by the next one, but it is still counted for the summary. The
//! end of the run gives the last push (and the stale markers, when asked)
//! a time limit; an unreachable backend never fails a test.

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::influxdb::root_cause;
use crate::metrics::Snapshot;
use crate::metrics::remote_write::{Push, RemoteWrite, TrendStat};

mod config;
pub use config::PromRwConfig;

/// Intervals waiting for the output's thread before new ones are dropped.
const QUEUE: usize = 64;
/// Tries of one push before its samples count as not delivered.
const ATTEMPTS: u32 = 4;
/// The first retry's wait; each next one doubles it.
const BACKOFF: Duration = Duration::from_millis(250);
/// Budget of one request (k6's remote-write timeout is 5 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a run waits for the last pushes.
const FINAL_LIMIT: Duration = Duration::from_secs(15);

/// Samples not delivered, by reason.
type Losses = BTreeMap<String, u64>;

/// A running remote-write output.
pub struct PromRwOutput {
    label: String,
    tx: Option<mpsc::Sender<Snapshot>>,
    thread: Option<JoinHandle<Losses>>,
    dropped_intervals: u64,
}

impl super::IntervalOutput for PromRwOutput {
    /// `tags` are not written yet: remote write is a local run's output
    /// (a fleet test's origin passes the test id).
    fn write(&mut self, snapshot: &Snapshot, _tags: &[(&str, &str)]) {
        self.send(snapshot);
    }

    fn finish(mut self: Box<Self>) -> Vec<String> {
        self.close()
    }
}

impl PromRwOutput {
    /// Starts the output's thread.
    pub fn start(label: String, config: PromRwConfig) -> Result<PromRwOutput, String> {
        let stats = TrendStat::parse_list(&config.trend_stats)?;
        let mut rw = RemoteWrite::new(stats);
        if config.trend_as_native_histogram {
            rw = rw.with_native_histograms();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("volley-prom-rw".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(push_loop(config, rw, rx)),
                    Err(e) => {
                        Losses::from([(format!("cannot start its runtime ({e}); nothing sent"), 0)])
                    }
                }
            })
            .map_err(|e| format!("--out {label}: cannot start its thread: {e}"))?;
        Ok(PromRwOutput {
            label,
            tx: Some(tx),
            thread: Some(thread),
            dropped_intervals: 0,
        })
    }

    /// Hands over one interval; never waits.
    pub fn send(&mut self, snapshot: &Snapshot) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(snapshot.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => self.dropped_intervals += 1,
        }
    }

    /// Sends the last interval's values (within the time limit) and
    /// closes; the notes for the summary.
    fn close(&mut self) -> Vec<String> {
        drop(self.tx.take());
        let mut losses = Losses::new();
        if let Some(thread) = self.thread.take() {
            match super::join_within(thread, FINAL_LIMIT + Duration::from_secs(5)) {
                Ok(l) => losses = l,
                Err(super::Unjoined::Failed) => {
                    losses.insert("its thread failed; samples may be missing".into(), 0);
                }
                Err(super::Unjoined::StillRunning) => {
                    losses.insert("its thread did not end; samples may be missing".into(), 0);
                }
            }
        }
        let mut notes: Vec<String> = losses
            .into_iter()
            .map(|(reason, n)| match n {
                0 => format!("--out {}: {reason}", self.label),
                n => format!("--out {}: {n} samples not delivered: {reason}", self.label),
            })
            .collect();
        if self.dropped_intervals > 0 {
            notes.push(format!(
                "--out {}: {} intervals dropped: the output's queue was full (it could not keep \
                 up); the totals it sent miss them",
                self.label, self.dropped_intervals
            ));
        }
        notes
    }
}

/// The output's thread: folds intervals in, pushes every interval, one
/// request at a time, and accounts for every sample.
async fn push_loop(
    config: PromRwConfig,
    mut rw: RemoteWrite,
    mut rx: mpsc::Receiver<Snapshot>,
) -> Losses {
    let writer = match Writer::new(&config) {
        Ok(w) => w,
        Err(e) => return Losses::from([(e, 0)]),
    };
    let mut losses = Losses::new();
    // At most one push under way, and its sample count.
    let mut in_flight: JoinSet<(u64, Result<(), String>)> = JoinSet::new();
    let mut pending: u64 = 0;
    let mut ticker = tokio::time::interval(config.push_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(s) => rw.add_interval(&s),
                None => break,
            },
            _ = ticker.tick() => {
                // A push still under way: the next one carries these values.
                if in_flight.is_empty()
                    && let Some(push) = rw.take_push()
                {
                    pending = push.samples;
                    in_flight.spawn(writer.clone().send(push));
                }
            }
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                pending = 0;
                if let Ok((n, Err(reason))) = done {
                    *losses.entry(reason).or_default() += n;
                }
            }
        }
    }
    // The end: the last values (and stale markers), in order, within the
    // time limit.
    let deadline = Instant::now() + FINAL_LIMIT;
    let late = format!(
        "not delivered within {} s of the end of the test",
        FINAL_LIMIT.as_secs()
    );
    let mut on_time = settle(&mut in_flight, &mut pending, &mut losses, deadline, &late).await;
    let mut last: Vec<Push> = rw.take_push().into_iter().collect();
    if config.stale_markers {
        last.extend(rw.stale_markers());
    }
    for push in last {
        if !on_time {
            *losses.entry(late.clone()).or_default() += push.samples;
            continue;
        }
        pending = push.samples;
        in_flight.spawn(writer.clone().send(push));
        on_time = settle(&mut in_flight, &mut pending, &mut losses, deadline, &late).await;
    }
    if rw.merge_errors > 0 {
        losses.insert(
            format!(
                "{} intervals could not be added to its running totals (a histogram that cannot grow)",
                rw.merge_errors
            ),
            0,
        );
    }
    losses
}

/// Waits for the push under way until `deadline`; false when it had to
/// be abandoned (its samples count as `late`).
async fn settle(
    in_flight: &mut JoinSet<(u64, Result<(), String>)>,
    pending: &mut u64,
    losses: &mut Losses,
    deadline: Instant,
    late: &str,
) -> bool {
    loop {
        match tokio::time::timeout_at(deadline, in_flight.join_next()).await {
            Ok(None) => return true,
            Ok(Some(done)) => {
                *pending = 0;
                if let Ok((n, Err(reason))) = done {
                    *losses.entry(reason).or_default() += n;
                }
            }
            Err(_) => {
                in_flight.abort_all();
                *losses.entry(late.to_owned()).or_default() += std::mem::take(pending);
                return false;
            }
        }
    }
}

/// Writes to one remote-write endpoint.
#[derive(Clone)]
struct Writer {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Writer {
    fn new(c: &PromRwConfig) -> Result<Writer, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        let mut headers = Vec::new();
        for (name, value) in &c.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("header {name:?}: {e}"))?;
            let value = HeaderValue::from_str(value).map_err(|e| format!("header {name}: {e}"))?;
            headers.push((name, value));
        }
        if let Some(user) = &c.username {
            let pair = format!("{user}:{}", c.password.as_deref().unwrap_or(""));
            let token = base64::engine::general_purpose::STANDARD.encode(pair);
            if let Ok(v) = HeaderValue::from_str(&format!("Basic {token}")) {
                headers.push((AUTHORIZATION, v));
            }
        }
        if let Some(token) = &c.bearer_token {
            let v = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "K6_PROMETHEUS_RW_BEARER_TOKEN is not a valid header value")?;
            headers.retain(|(n, _)| *n != AUTHORIZATION);
            headers.push((AUTHORIZATION, v));
        }
        Ok(Writer {
            client,
            url: c.url.clone(),
            headers,
        })
    }

    /// Sends one push, retried with back-off; its sample count and why it
    /// was lost, if it was.
    async fn send(self, push: Push) -> (u64, Result<(), String>) {
        let body = Bytes::from(push.body);
        let mut wait = BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.post(body.clone()).await {
                Ok(()) => return (push.samples, Ok(())),
                Err(Failure::Final(reason)) => return (push.samples, Err(reason)),
                Err(Failure::Retry(reason)) => last = reason,
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        (push.samples, Err(last))
    }

    async fn post(&self, body: Bytes) -> Result<(), Failure> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.url)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header(
                http::header::USER_AGENT,
                concat!("volley/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::Final(format!("cannot build a request to {}: {e}", self.url)))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                Failure::Retry(format!("cannot reach {}: {}", self.url, root_cause(&e)))
            })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if status.is_success() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&body[..body.len().min(300)])
                .trim()
                .to_owned();
            let reason = format!("{} answered {status}: {text}", self.url);
            Err(
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    Failure::Retry(reason)
                } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    Failure::Final(format!(
                        "{reason} (check K6_PROMETHEUS_RW_USERNAME, K6_PROMETHEUS_RW_PASSWORD \
                         or K6_PROMETHEUS_RW_BEARER_TOKEN)"
                    ))
                } else if status == StatusCode::NOT_FOUND {
                    Failure::Final(format!(
                        "{reason} (Prometheus takes remote writes at /api/v1/write only when \
                         started with --web.enable-remote-write-receiver)"
                    ))
                } else {
                    Failure::Final(reason)
                },
            )
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Retry(format!(
                    "{} did not answer within {} s",
                    self.url,
                    REQUEST_TIMEOUT.as_secs()
                )))
            })
    }
}

/// Why a request failed, and whether another try may do better.
enum Failure {
    Retry(String),
    Final(String),
}
