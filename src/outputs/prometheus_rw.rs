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
//! a time limit; an unreachable backend never fails a test. The thread,
//! its runtime and its queue are an `outputs::worker`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::push::{self, Failure, PushClient};
use super::worker::{self, FINAL_LIMIT, Worker};
use crate::metrics::Snapshot;
use crate::metrics::remote_write::{Push, RemoteWrite, TrendStat};
use crate::plan::egress::EgressPolicy;

mod arg;
mod config;
pub use config::PromRwConfig;

/// Intervals waiting for the output's thread before new ones are dropped.
const QUEUE: usize = 64;
/// Budget of one request (k6's remote-write timeout is 5 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Samples not delivered, by reason.
type Losses = worker::Losses<u64>;

/// A running remote-write output.
pub struct PromRwOutput {
    /// Its thread; the intervals its queue dropped.
    worker: Worker<Snapshot, u64>,
}

impl super::IntervalOutput for PromRwOutput {
    /// `tags` are not written yet: remote write is a local run's output
    /// (a fleet test's origin passes the test id).
    fn write(&mut self, snapshot: &Snapshot, tags: &[(&str, &str)]) {
        if tags.is_empty() {
            self.send(snapshot);
        } else {
            // A fleet test's labels (`testid`, and `region` or `agent`).
            self.send(&snapshot.with_tags(tags));
        }
    }

    fn finish(mut self: Box<Self>) -> Vec<String> {
        self.close()
    }
}

impl PromRwOutput {
    /// Starts the output's thread. With `egress`, every request first
    /// resolves the endpoint and checks each address against the policy
    /// (a fleet test's outputs: the agent's policy).
    pub fn start(
        label: String,
        config: PromRwConfig,
        egress: Option<Arc<EgressPolicy>>,
    ) -> Result<PromRwOutput, String> {
        let stats = TrendStat::parse_list(&config.trend_stats)?;
        let mut rw = RemoteWrite::new(stats);
        if config.trend_as_native_histogram {
            rw = rw.with_native_histograms();
        }
        let writer = Writer::new(&config, egress).map_err(|e| format!("--out {label}: {e}"))?;
        let worker = Worker::start(label, "volley-prom-rw", QUEUE, move |rx| {
            push_loop(config, writer, rw, rx)
        })?;
        Ok(PromRwOutput { worker })
    }

    /// Hands over one interval; never waits (a full queue drops it,
    /// counted).
    pub fn send(&mut self, snapshot: &Snapshot) {
        let _ = self.worker.send(snapshot.clone(), 1);
    }

    /// Sends the last interval's values (within the time limit) and
    /// closes; the notes for the summary.
    fn close(&mut self) -> Vec<String> {
        let worker::Closed { losses, dropped } = self.worker.close("samples");
        let label = self.worker.label();
        let mut notes: Vec<String> = losses
            .into_iter()
            .map(|(reason, n)| match n {
                0 => format!("--out {label}: {reason}"),
                n => format!("--out {label}: {n} samples not delivered: {reason}"),
            })
            .collect();
        if dropped > 0 {
            notes.push(format!(
                "--out {label}: {dropped} intervals dropped: the output's queue was full (it \
                 could not keep up); the totals it sent miss them"
            ));
        }
        notes
    }
}

/// The output's thread: folds intervals in, pushes every interval, one
/// request at a time, and accounts for every sample.
async fn push_loop(
    config: PromRwConfig,
    writer: Writer,
    mut rw: RemoteWrite,
    mut rx: mpsc::Receiver<Snapshot>,
) -> Losses {
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
    let late = worker::late();
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
    client: PushClient,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    egress: Option<Arc<EgressPolicy>>,
}

impl Writer {
    fn new(c: &PromRwConfig, egress: Option<Arc<EgressPolicy>>) -> Result<Writer, String> {
        let mut headers = push::headers(&c.headers)?;
        if let Some(auth) = c
            .username
            .as_deref()
            .and_then(|user| push::basic_auth(user, c.password.as_deref()))
        {
            headers.push((AUTHORIZATION, auth));
        }
        if let Some(token) = &c.bearer_token {
            let v = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "K6_PROMETHEUS_RW_BEARER_TOKEN is not a valid header value")?;
            headers.retain(|(n, _)| *n != AUTHORIZATION);
            headers.push((AUTHORIZATION, v));
        }
        Ok(Writer {
            client: push::client(false, &c.tls)?,
            url: c.url.clone(),
            headers,
            egress,
        })
    }

    /// Sends one push, retried with back-off; its sample count and why it
    /// was lost, if it was.
    async fn send(self, batch: Push) -> (u64, Result<(), String>) {
        let body = Bytes::from(batch.body);
        let outcome = push::with_retries(|| self.post(body.clone())).await;
        (batch.samples, outcome)
    }

    async fn post(&self, body: Bytes) -> Result<(), Failure> {
        push::check_egress(self.egress.as_deref(), &self.url).await?;
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
        push::exchange(&self.client, req, &self.url, REQUEST_TIMEOUT)
            .await?
            .outcome(
                &self.url,
                |s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS,
                |s| match s {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(
                        "check K6_PROMETHEUS_RW_USERNAME, K6_PROMETHEUS_RW_PASSWORD or \
                         K6_PROMETHEUS_RW_BEARER_TOKEN",
                    ),
                    StatusCode::NOT_FOUND => Some(
                        "Prometheus takes remote writes at /api/v1/write only when started with \
                         --web.enable-remote-write-receiver",
                    ),
                    _ => None,
                },
            )
    }
}
