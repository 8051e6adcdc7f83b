//! `--out influxdb=http://host:8086/db`: InfluxDB 1.x line protocol pushed
//! over HTTP (`POST /write?db=…&precision=ns`) with k6's options. By
//! default a point per series per interval (`metrics::points::
//! influx_interval`), so the backend's load does not grow with the request
//! rate; with `layout=samples` a point per sample, as k6 writes them
//! (`metrics::points::influx`), for k6's own dashboards.
//!
//! At the start the database is created (`CREATE DATABASE`, as k6 does;
//! a failure there is only noted). Points are pushed every push interval
//! with at most `concurrentWrites` requests in flight, each retried with
//! back-off on a network error or a 5xx answer. Nothing here can slow the
//! load: batches reach this output's own thread (with its own small
//! runtime) through a bounded queue that drops rather than waits, points
//! waiting for the backend are bounded too, and the end of the run gives
//! the last pushes a time limit. Every point not delivered is counted with
//! its reason for the summary; an unreachable backend never fails a test.
//!
//! Requests go through `outputs::push`, and the thread is an
//! `outputs::worker`, both shared with the other push outputs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

mod config;

pub use config::{InfluxConfig, Layout};

use super::push::{self, Failure, PushClient};
use super::worker::{self, FINAL_LIMIT, Worker};
use crate::metrics::points::PointEncoder;
use crate::metrics::points::influx::LineProtocol;
use crate::metrics::points::influx_interval::write_interval;
use crate::metrics::{Point, SeriesKey, Snapshot};
use crate::plan::egress::EgressPolicy;

/// Batches waiting for the output's thread before new ones are dropped.
const QUEUE: usize = 256;
/// Points encoded and waiting for the backend before new ones are dropped
/// (about 40 MB of lines).
const MAX_WAITING_POINTS: u64 = 250_000;
/// Bytes in one write request at most: well under InfluxDB's default
/// `max-body-size` (25 MB), which answers 413 past it.
const PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Budget of one request, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the output's thread is sent.
enum Batch {
    /// Samples' points (`layout=samples`), encoded on the output's thread.
    Samples {
        time_unix_ns: u128,
        new_keys: Vec<SeriesKey>,
        points: Vec<Point>,
    },
    /// An interval's lines, already encoded, and how many.
    Lines { lines: Vec<u8>, points: u64 },
}

impl Batch {
    fn points(&self) -> u64 {
        match self {
            Batch::Samples { points, .. } => points.len() as u64,
            Batch::Lines { points, .. } => *points,
        }
    }
}

/// Why points waiting for the backend were dropped.
const BEHIND: &str = "the backend could not keep up (too many points waiting)";

/// Points not delivered, by reason.
type Losses = worker::Losses<u64>;

/// A running InfluxDB output.
pub struct InfluxOutput {
    /// Its thread; the points of the batches its queue dropped.
    worker: Worker<Batch, u64>,
    /// Series a dropped batch introduced, sent again with the next one.
    pending_keys: Vec<SeriesKey>,
}

impl InfluxOutput {
    /// Starts the output's thread; the database is created from there.
    /// With `egress`, every request first resolves the backend and checks
    /// each address against the policy (a fleet test's outputs: the agent's
    /// policy, as for the plan's requests).
    pub fn start(
        label: String,
        config: InfluxConfig,
        egress: Option<Arc<EgressPolicy>>,
    ) -> Result<InfluxOutput, String> {
        let writer = Writer::new(&config, egress).map_err(|e| format!("--out {label}: {e}"))?;
        let worker = Worker::start(label, "volley-influxdb", QUEUE, move |rx| {
            push_loop(config, writer, rx)
        })?;
        Ok(InfluxOutput {
            worker,
            pending_keys: Vec::new(),
        })
    }
}

impl InfluxOutput {
    /// Hands a batch to the thread without waiting; a full queue drops it
    /// (counted). Series a dropped batch introduced are sent again with
    /// the next one.
    fn hand_over(&mut self, batch: Batch) {
        let points = batch.points();
        if let Err(Batch::Samples { new_keys, .. }) = self.worker.send(batch, points) {
            self.pending_keys = new_keys;
        }
    }
}

impl super::PointOutput for InfluxOutput {
    fn send(&mut self, time_unix_ns: u128, new_keys: &[SeriesKey], points: &[Point]) {
        let mut keys = std::mem::take(&mut self.pending_keys);
        keys.extend_from_slice(new_keys);
        self.hand_over(Batch::Samples {
            time_unix_ns,
            new_keys: keys,
            points: points.to_vec(),
        });
    }

    fn finish(self: Box<Self>) -> Vec<String> {
        self.close()
    }
}

impl super::IntervalOutput for InfluxOutput {
    fn write(&mut self, snapshot: &Snapshot, tags: &[(&str, &str)]) {
        let mut lines = Vec::new();
        let points = write_interval(snapshot, tags, &mut lines);
        if points > 0 {
            self.hand_over(Batch::Lines { lines, points });
        }
    }

    fn finish(self: Box<Self>) -> Vec<String> {
        self.close()
    }
}

impl InfluxOutput {
    /// Ends the thread (its last pushes within their time limit) and says
    /// what was not delivered.
    fn close(mut self) -> Vec<String> {
        let worker::Closed {
            mut losses,
            dropped,
        } = self.worker.close("points");
        if dropped > 0 {
            *losses
                .entry("the output's queue was full (it could not keep up with the samples)".into())
                .or_default() += dropped;
        }
        let label = self.worker.label();
        losses
            .into_iter()
            .map(|(reason, n)| match n {
                0 => format!("--out {label}: {reason}"),
                n => format!("--out {label}: {n} points dropped: {reason}"),
            })
            .collect()
    }
}

/// The output's thread: encodes batches, pushes them every interval,
/// accounts for every point.
async fn push_loop(config: InfluxConfig, client: Writer, mut rx: mpsc::Receiver<Batch>) -> Losses {
    let mut losses = Losses::new();
    // k6 goes on when the database cannot be created (it may exist, with
    // a user allowed to write but not to create); said only if writes fail.
    let created = client.create_database().await;
    let mut encoder = LineProtocol::new(config.tags_as_fields.clone());
    // The payload being filled, and payloads ready to be sent.
    let mut lines: Vec<u8> = Vec::new();
    let mut lines_points: u64 = 0;
    let mut ready: VecDeque<(Vec<u8>, u64)> = VecDeque::new();
    // Points in `lines` and `ready`, bounded by MAX_WAITING_POINTS.
    let mut waiting: u64 = 0;
    let mut writes = Writes {
        client,
        concurrent: config.concurrent_writes,
        tasks: JoinSet::new(),
        points: 0,
    };
    let mut ticker = tokio::time::interval(config.push_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(Batch::Samples { time_unix_ns, new_keys, points }) => {
                    for key in &new_keys {
                        encoder.add_series(key, &mut lines);
                    }
                    let n = points.len() as u64;
                    if waiting + n > MAX_WAITING_POINTS {
                        *losses.entry(BEHIND.into()).or_default() += n;
                        continue;
                    }
                    waiting += n;
                    // A batch holds up to 256 samples' points: cut payloads
                    // inside it too.
                    let mut rest = &points[..];
                    while !rest.is_empty() {
                        let room = config.payload_size.saturating_sub(lines_points).max(1);
                        let take = usize::try_from(room).unwrap_or(usize::MAX).min(rest.len());
                        let (now, later) = rest.split_at(take);
                        encoder.write(time_unix_ns, now, &mut lines);
                        lines_points += now.len() as u64;
                        if lines_points >= config.payload_size || lines.len() >= PAYLOAD_BYTES {
                            ready.push_back((std::mem::take(&mut lines), std::mem::take(&mut lines_points)));
                        }
                        rest = later;
                    }
                }
                Some(Batch::Lines { lines: encoded, points: n }) => {
                    if waiting + n > MAX_WAITING_POINTS {
                        *losses.entry(BEHIND.into()).or_default() += n;
                        continue;
                    }
                    waiting += n;
                    for line in encoded.split_inclusive(|&b| b == b'\n') {
                        lines.extend_from_slice(line);
                        lines_points += 1;
                        if lines_points >= config.payload_size || lines.len() >= PAYLOAD_BYTES {
                            ready.push_back((std::mem::take(&mut lines), std::mem::take(&mut lines_points)));
                        }
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if lines_points > 0 {
                    ready.push_back((std::mem::take(&mut lines), std::mem::take(&mut lines_points)));
                }
            }
            Some(done) = writes.tasks.join_next(), if !writes.tasks.is_empty() => {
                if let Ok(done) = done {
                    writes.account(&mut losses, done);
                }
            }
        }
        writes.start(&mut ready, &mut waiting);
    }
    // The end: what is left, within the time limit.
    if lines_points > 0 {
        ready.push_back((std::mem::take(&mut lines), lines_points));
    }
    let deadline = Instant::now() + FINAL_LIMIT;
    loop {
        writes.start(&mut ready, &mut waiting);
        match tokio::time::timeout_at(deadline, writes.tasks.join_next()).await {
            Ok(Some(Ok(done))) => writes.account(&mut losses, done),
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                // Writes still under way are abandoned, and what was not
                // sent yet: their points count as not delivered.
                writes.tasks.abort_all();
                *losses.entry(worker::late()).or_default() += writes.points + waiting;
                break;
            }
        }
    }
    if let Err(e) = created
        && !losses.is_empty()
        && !losses.contains_key(&e)
    {
        losses.insert(format!("(CREATE DATABASE at the start failed too: {e})"), 0);
    }
    losses
}

/// The writes under way, at most `concurrent`, and the points they carry.
struct Writes {
    client: Writer,
    concurrent: usize,
    /// Each write ends with its point count and why they were lost, if
    /// they were.
    tasks: JoinSet<(u64, Result<(), String>)>,
    points: u64,
}

impl Writes {
    /// Starts writes of the payloads in `ready` while there is room; their
    /// points leave `waiting`.
    fn start(&mut self, ready: &mut VecDeque<(Vec<u8>, u64)>, waiting: &mut u64) {
        while self.tasks.len() < self.concurrent {
            let Some((payload, n)) = ready.pop_front() else {
                break;
            };
            *waiting -= n;
            self.points += n;
            self.tasks.spawn(self.client.clone().write(payload, n));
        }
    }

    /// A write that ended: its points no longer under way; lost ones
    /// counted with their reason.
    fn account(&mut self, losses: &mut Losses, (n, outcome): (u64, Result<(), String>)) {
        self.points -= n;
        if let Err(reason) = outcome {
            *losses.entry(reason).or_default() += n;
        }
    }
}

/// Writes to one InfluxDB.
#[derive(Clone)]
struct Writer {
    client: PushClient,
    base: String,
    /// `InfluxDB at …`, for messages.
    backend: String,
    write_path: String,
    db: String,
    auth: Option<HeaderValue>,
    egress: Option<Arc<EgressPolicy>>,
}

impl Writer {
    fn new(c: &InfluxConfig, egress: Option<Arc<EgressPolicy>>) -> Result<Writer, String> {
        let mut write_path = format!(
            "/write?db={}&precision=ns",
            crate::escape::query_value(&c.db)
        );
        if let Some(rp) = &c.retention {
            write_path.push_str(&format!("&rp={}", crate::escape::query_value(rp)));
        }
        if let Some(cl) = &c.consistency {
            write_path.push_str(&format!("&consistency={}", crate::escape::query_value(cl)));
        }
        Ok(Writer {
            client: push::client(false, &c.tls)?,
            base: c.base.clone(),
            backend: format!("InfluxDB at {}", c.base),
            write_path,
            db: c.db.clone(),
            auth: c
                .username
                .as_deref()
                .and_then(|user| push::basic_auth(user, c.password.as_deref())),
            egress,
        })
    }

    async fn create_database(&self) -> Result<(), String> {
        let q = format!("CREATE DATABASE \"{}\"", self.db.replace('"', "\\\""));
        let path = format!("/query?q={}", crate::escape::query_value(&q));
        self.post(&path, Bytes::new()).await.map_err(|f| match f {
            Failure::Retry(r) | Failure::Final(r) => r,
        })
    }

    /// Pushes `points` lines, retried with back-off; returns the count and
    /// why they were lost, if they were.
    async fn write(self, lines: Vec<u8>, points: u64) -> (u64, Result<(), String>) {
        let body = Bytes::from(lines);
        let outcome = push::with_retries(|| self.post(&self.write_path, body.clone())).await;
        (points, outcome)
    }

    async fn post(&self, path: &str, body: Bytes) -> Result<(), Failure> {
        push::check_egress(self.egress.as_deref(), &self.base).await?;
        let uri = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::Final(format!("cannot build a request to {uri}: {e}")))?;
        push::exchange(&self.client, req, &self.base, REQUEST_TIMEOUT)
            .await?
            .outcome(
                &self.backend,
                |s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS,
                |s| {
                    (s == StatusCode::UNAUTHORIZED).then_some(
                        "check K6_INFLUXDB_USERNAME and K6_INFLUXDB_PASSWORD; InfluxDB 2.x needs \
                         its v1 compatibility API",
                    )
                },
            )
    }
}
