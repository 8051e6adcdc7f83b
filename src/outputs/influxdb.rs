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
//! This module owns the hyper client that talks to InfluxDB.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::metrics::points::PointEncoder;
use crate::metrics::points::influx::{LineProtocol, TagField};
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
/// Tries of one write before its points count as not delivered.
const ATTEMPTS: u32 = 4;
/// The first retry's wait; each next one doubles it.
const BACKOFF: Duration = Duration::from_millis(250);
/// Budget of one request, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the end of a run waits for the last writes.
const FINAL_LIMIT: Duration = Duration::from_secs(15);

/// The output's settings, k6's names in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxConfig {
    /// `http://host:port` plus any path prefix, no trailing `/` (`addr`).
    pub base: String,
    /// (`db`, the URL's last path segment.)
    pub db: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// (`pushInterval`, 1 s.)
    pub push_interval: Duration,
    /// (`concurrentWrites`, 4.)
    pub concurrent_writes: usize,
    /// Points in one write request at most (`payloadSize`, 100 000).
    pub payload_size: u64,
    /// (`tagsAsFields`, `vu,iter,url`.)
    pub tags_as_fields: Vec<TagField>,
    /// (`retention`, `consistency`: passed on to `/write` when set.)
    pub retention: Option<String>,
    pub consistency: Option<String>,
    /// (Volley's `layout`: `intervals` or `samples`.)
    pub layout: Layout,
}

/// What a point stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One point per series per interval, with its statistics.
    Intervals,
    /// One point per sample, k6's layout.
    Samples,
}

impl InfluxConfig {
    /// From `influxdb[=URL]` and k6's `K6_INFLUXDB_*` variables; the URL's
    /// parts and query options win over the variables, as in k6.
    pub fn parse(arg: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut c = InfluxConfig {
            base: "http://localhost:8086".into(),
            db: "k6".into(),
            username: env("K6_INFLUXDB_USERNAME"),
            password: env("K6_INFLUXDB_PASSWORD"),
            push_interval: Duration::from_secs(1),
            concurrent_writes: 4,
            payload_size: 100_000,
            tags_as_fields: ["vu", "iter", "url"]
                .iter()
                .map(|t| TagField::parse(t))
                .collect::<Result<_, _>>()?,
            retention: env("K6_INFLUXDB_RETENTION"),
            consistency: env("K6_INFLUXDB_CONSISTENCY"),
            layout: Layout::Intervals,
        };
        let mut options: Vec<(String, String, String)> = Vec::new();
        for (var, key) in [
            ("K6_INFLUXDB_PUSH_INTERVAL", "pushInterval"),
            ("K6_INFLUXDB_CONCURRENT_WRITES", "concurrentWrites"),
            ("K6_INFLUXDB_PAYLOAD_SIZE", "payloadSize"),
            ("K6_INFLUXDB_TAGS_AS_FIELDS", "tagsAsFields"),
            ("VOLLEY_INFLUXDB_LAYOUT", "layout"),
        ] {
            if let Some(v) = env(var) {
                options.push((var.to_owned(), key.to_owned(), v));
            }
        }
        if let Some(addr) = env("K6_INFLUXDB_ADDR") {
            c.set_url(&addr, false, &mut options, "K6_INFLUXDB_ADDR")?;
        }
        if let Some(db) = env("K6_INFLUXDB_DB") {
            c.db = db;
        }
        if let Some(url) = arg.filter(|a| !a.is_empty()) {
            c.set_url(url, true, &mut options, "--out influxdb")?;
        }
        for (from, key, value) in options {
            c.set_option(&key, &value)
                .map_err(|e| format!("--out influxdb: {from} {value:?}: {e}"))?;
        }
        if c.db.is_empty() {
            return Err(
                "--out influxdb: no database; expected influxdb=http://HOST:PORT/DATABASE".into(),
            );
        }
        Ok(c)
    }

    /// `http[s]://[user:password@]host:port[/prefix]/db[?options]`.
    fn set_url(
        &mut self,
        url: &str,
        with_db: bool,
        options: &mut Vec<(String, String, String)>,
        from: &str,
    ) -> Result<(), String> {
        let expected = "expected http://HOST:PORT/DATABASE";
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{from} {url:?}: not a URL ({e}); {expected}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https" | "udp") => {
                return Err(format!(
                    "{from} {url:?}: only http:// InfluxDB addresses are supported by Volley yet"
                ));
            }
            _ => return Err(format!("{from} {url:?}: {expected}")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{from} {url:?}: no host; {expected}"))?
            .as_str();
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                let (name, password) = match user.split_once(':') {
                    Some((n, p)) => (n, Some(p)),
                    None => (user, None),
                };
                self.username = Some(name.to_owned());
                self.password = password.map(str::to_owned);
                host
            }
            None => authority,
        };
        let path = uri.path().trim_end_matches('/');
        let (prefix, db) = match path.rsplit_once('/') {
            Some((prefix, db)) if with_db => (prefix, db),
            _ => (path, ""),
        };
        self.base = format!("http://{host}{prefix}");
        if with_db && !db.is_empty() {
            self.db = db.to_owned();
        }
        for pair in uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            options.push((format!("{from} ?{k}="), k.to_owned(), v.to_owned()));
        }
        Ok(())
    }

    fn set_option(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "pushInterval" => {
                self.push_interval = crate::plan::parse_duration(value)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("expected a positive duration such as 1s")?;
            }
            "concurrentWrites" => {
                self.concurrent_writes = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or("expected a whole number from 1 to 64")?;
            }
            "payloadSize" => {
                self.payload_size = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("expected a positive whole number of points")?;
            }
            "tagsAsFields" => {
                self.tags_as_fields = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(TagField::parse)
                    .collect::<Result<_, _>>()?;
            }
            "layout" => {
                self.layout = match value {
                    "intervals" => Layout::Intervals,
                    "samples" => Layout::Samples,
                    _ => return Err("expected intervals or samples".into()),
                };
            }
            "retention" => self.retention = Some(value.to_owned()),
            "consistency" => self.consistency = Some(value.to_owned()),
            other => {
                return Err(format!(
                    "unknown option {other:?}; expected pushInterval, concurrentWrites, \
                     payloadSize, tagsAsFields, retention, consistency or layout"
                ));
            }
        }
        Ok(())
    }

    /// `http://host:port/db`, for the header and messages (no password).
    pub fn label(&self) -> String {
        format!("{}/{}", self.base, self.db)
    }

    /// The URL [`InfluxConfig::parse`] reads back as this configuration
    /// (with no variables set), every option explicit: what a fleet test's
    /// output travels as.
    pub fn to_url(&self) -> String {
        let mut url = self.base.clone();
        if let Some(user) = &self.username {
            let password = self
                .password
                .as_ref()
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            url = url.replacen("http://", &format!("http://{user}{password}@"), 1);
        }
        url.push('/');
        url.push_str(&self.db);
        let mut options = vec![
            format!("pushInterval={}", url_duration(self.push_interval)),
            format!("concurrentWrites={}", self.concurrent_writes),
            format!("payloadSize={}", self.payload_size),
        ];
        if self.layout == Layout::Samples {
            options.push("layout=samples".into());
            let fields: Vec<String> = self
                .tags_as_fields
                .iter()
                .map(TagField::to_string)
                .collect();
            options.push(format!("tagsAsFields={}", fields.join(",")));
        }
        if let Some(rp) = &self.retention {
            options.push(format!("retention={rp}"));
        }
        if let Some(c) = &self.consistency {
            options.push(format!("consistency={c}"));
        }
        format!("{url}?{}", options.join("&"))
    }

    /// The backend's host name or address.
    pub fn host(&self) -> Option<String> {
        let uri: Uri = self.base.parse().ok()?;
        uri.host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
    }
}

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

/// A duration as a URL's query can carry it (ASCII: no `µs`).
fn url_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else {
        format!("{nanos}ns")
    }
}

/// Why points waiting for the backend were dropped.
const BEHIND: &str = "the backend could not keep up (too many points waiting)";

/// Points not delivered, by reason.
type Losses = BTreeMap<String, u64>;

/// A running InfluxDB output.
pub struct InfluxOutput {
    label: String,
    tx: Option<mpsc::Sender<Batch>>,
    thread: Option<JoinHandle<Losses>>,
    pending_keys: Vec<SeriesKey>,
    dropped_full: u64,
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
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("volley-influxdb".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let mut losses = Losses::new();
                        losses.insert(format!("cannot start its runtime ({e}); nothing sent"), 0);
                        return losses;
                    }
                };
                runtime.block_on(push_loop(config, egress, rx))
            })
            .map_err(|e| format!("--out {label}: cannot start its thread: {e}"))?;
        Ok(InfluxOutput {
            label,
            tx: Some(tx),
            thread: Some(thread),
            pending_keys: Vec::new(),
            dropped_full: 0,
        })
    }
}

impl InfluxOutput {
    /// Hands a batch to the thread without waiting; a full queue drops it
    /// (counted). Series a dropped batch introduced are sent again with
    /// the next one.
    fn hand_over(&mut self, batch: Batch) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(b) | TrySendError::Closed(b)) => {
                self.dropped_full += b.points();
                if let Batch::Samples { new_keys, .. } = b {
                    self.pending_keys = new_keys;
                }
            }
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
        drop(self.tx.take());
        let mut losses = Losses::new();
        if let Some(thread) = self.thread.take() {
            match super::join_within(thread, FINAL_LIMIT + Duration::from_secs(5)) {
                Ok(l) => losses = l,
                Err(super::Unjoined::Failed) => {
                    losses.insert("its thread failed; points may be missing".into(), 0);
                }
                Err(super::Unjoined::StillRunning) => {
                    losses.insert("its thread did not end; points may be missing".into(), 0);
                }
            }
        }
        if self.dropped_full > 0 {
            *losses
                .entry("the output's queue was full (it could not keep up with the samples)".into())
                .or_default() += self.dropped_full;
        }
        losses
            .into_iter()
            .map(|(reason, n)| match n {
                0 => format!("--out {}: {reason}", self.label),
                n => format!("--out {}: {n} points dropped: {reason}", self.label),
            })
            .collect()
    }
}

/// The output's thread: encodes batches, pushes them every interval,
/// accounts for every point.
async fn push_loop(
    config: InfluxConfig,
    egress: Option<Arc<EgressPolicy>>,
    mut rx: mpsc::Receiver<Batch>,
) -> Losses {
    let client = Writer::new(&config, egress);
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
    let mut in_flight: JoinSet<(u64, Result<(), String>)> = JoinSet::new();
    // Points in the writes under way.
    let mut in_flight_points: u64 = 0;
    let mut ticker = tokio::time::interval(config.push_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let account =
        |losses: &mut Losses, in_flight_points: &mut u64, done: (u64, Result<(), String>)| {
            *in_flight_points -= done.0;
            if let (n, Err(reason)) = done {
                *losses.entry(reason).or_default() += n;
            }
        };
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
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(done) = done {
                    account(&mut losses, &mut in_flight_points, done);
                }
            }
        }
        while in_flight.len() < config.concurrent_writes {
            let Some((payload, n)) = ready.pop_front() else {
                break;
            };
            waiting -= n;
            in_flight_points += n;
            in_flight.spawn(client.clone().write(payload, n));
        }
    }
    // The end: what is left, within the time limit.
    if lines_points > 0 {
        ready.push_back((std::mem::take(&mut lines), lines_points));
    }
    let deadline = Instant::now() + FINAL_LIMIT;
    loop {
        while in_flight.len() < config.concurrent_writes {
            let Some((payload, n)) = ready.pop_front() else {
                break;
            };
            waiting -= n;
            in_flight_points += n;
            in_flight.spawn(client.clone().write(payload, n));
        }
        match tokio::time::timeout_at(deadline, in_flight.join_next()).await {
            Ok(Some(Ok(done))) => account(&mut losses, &mut in_flight_points, done),
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                // Writes still under way are abandoned, and what was not
                // sent yet: their points count as not delivered.
                in_flight.abort_all();
                *losses
                    .entry(format!(
                        "not delivered within {} s of the end of the test",
                        FINAL_LIMIT.as_secs()
                    ))
                    .or_default() += in_flight_points + waiting;
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

/// Writes to one InfluxDB.
#[derive(Clone)]
struct Writer {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    write_path: String,
    db: String,
    auth: Option<HeaderValue>,
    egress: Option<Arc<EgressPolicy>>,
}

impl Writer {
    fn new(c: &InfluxConfig, egress: Option<Arc<EgressPolicy>>) -> Writer {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
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
        let auth = c.username.as_ref().and_then(|user| {
            let pair = format!("{user}:{}", c.password.as_deref().unwrap_or(""));
            let token = base64::engine::general_purpose::STANDARD.encode(pair);
            HeaderValue::from_str(&format!("Basic {token}")).ok()
        });
        Writer {
            client,
            base: c.base.clone(),
            write_path,
            db: c.db.clone(),
            auth,
            egress,
        }
    }

    /// Resolves the backend and checks every address against the egress
    /// policy, when there is one.
    async fn check_egress(&self) -> Result<(), Failure> {
        let Some(policy) = &self.egress else {
            return Ok(());
        };
        let uri: Uri = self
            .base
            .parse()
            .map_err(|e| Failure::Final(format!("{}: not a URL ({e})", self.base)))?;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Failure::Retry(format!("cannot resolve {host}: {e}")))?;
        for addr in addrs {
            policy
                .check(Some(host), Some(addr.ip()))
                .map_err(|d| Failure::Final(format!("the agent's egress policy refuses {d}")))?;
        }
        Ok(())
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
        let mut wait = BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.post(&self.write_path, body.clone()).await {
                Ok(()) => return (points, Ok(())),
                Err(Failure::Final(reason)) => return (points, Err(reason)),
                Err(Failure::Retry(reason)) => last = reason,
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        (points, Err(last))
    }

    async fn post(&self, path: &str, body: Bytes) -> Result<(), Failure> {
        self.check_egress().await?;
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
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                Failure::Retry(format!("cannot reach {}: {}", self.base, root_cause(&e)))
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
            let reason = format!("InfluxDB at {} answered {status}: {text}", self.base);
            Err(
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    Failure::Retry(reason)
                } else if status == StatusCode::UNAUTHORIZED {
                    Failure::Final(format!(
                        "{reason} (check K6_INFLUXDB_USERNAME and K6_INFLUXDB_PASSWORD; InfluxDB 2.x \
                     needs its v1 compatibility API)"
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
                    "InfluxDB at {} did not answer within {} s",
                    self.base,
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

/// The innermost cause of an error ("connection refused").
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_and_variables_as_k6_reads_them() {
        let c = InfluxConfig::parse(Some("http://u:p@127.0.0.1:8086/prefix/loadtests?pushInterval=2s&concurrentWrites=2&tagsAsFields=url,vu:int"), &none)
            .expect("valid");
        assert_eq!(c.base, "http://127.0.0.1:8086/prefix");
        assert_eq!(c.db, "loadtests");
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p"));
        assert_eq!(c.push_interval, Duration::from_secs(2));
        assert_eq!(c.concurrent_writes, 2);
        assert_eq!(c.tags_as_fields.len(), 2);
        assert_eq!(c.label(), "http://127.0.0.1:8086/prefix/loadtests");

        let env = |k: &str| match k {
            "K6_INFLUXDB_ADDR" => Some("http://influx:8086".to_owned()),
            "K6_INFLUXDB_DB" => Some("perf".to_owned()),
            "K6_INFLUXDB_PUSH_INTERVAL" => Some("5s".to_owned()),
            "K6_INFLUXDB_CONCURRENT_WRITES" => Some("8".to_owned()),
            "K6_INFLUXDB_TAGS_AS_FIELDS" => Some("url".to_owned()),
            _ => None,
        };
        let c = InfluxConfig::parse(None, &env).expect("valid");
        assert_eq!(c.label(), "http://influx:8086/perf");
        assert_eq!(c.push_interval, Duration::from_secs(5));
        assert_eq!(c.concurrent_writes, 8);
        // The URL wins over the variables.
        let c = InfluxConfig::parse(Some("http://other:8086/k6db?pushInterval=1s"), &env)
            .expect("valid");
        assert_eq!(c.label(), "http://other:8086/k6db");
        assert_eq!(c.push_interval, Duration::from_secs(1));
        let c = InfluxConfig::parse(None, &none).expect("defaults");
        assert_eq!(c.label(), "http://localhost:8086/k6");
        assert_eq!(c.layout, Layout::Intervals);
        let c = InfluxConfig::parse(Some("http://h:8086/db?layout=samples"), &none).expect("valid");
        assert_eq!(c.layout, Layout::Samples);
        let env = |k: &str| (k == "VOLLEY_INFLUXDB_LAYOUT").then(|| "samples".to_owned());
        let c = InfluxConfig::parse(None, &env).expect("valid");
        assert_eq!(c.layout, Layout::Samples);
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let e = |arg: &str| InfluxConfig::parse(Some(arg), &none).expect_err(arg);
        assert!(e("influx:8086/db").contains("expected http://HOST:PORT/DATABASE"));
        assert!(e("https://h:8086/db").contains("only http://"));
        assert!(e("http://h:8086/db?concurrentWrites=0").contains("from 1 to 64"));
        assert!(e("http://h:8086/db?pushInterval=soon").contains("positive duration"));
        assert!(e("http://h:8086/db?tagsAsFields=vu:integer").contains("unknown type"));
        assert!(e("http://h:8086/db?batch=1").contains("unknown option"));
        assert!(e("http://h:8086/db?layout=points").contains("intervals or samples"));
        let env = |k: &str| (k == "K6_INFLUXDB_CONCURRENT_WRITES").then(|| "x".to_owned());
        let err = InfluxConfig::parse(Some("http://h:8086/db"), &env).expect_err("bad env");
        assert!(err.contains("K6_INFLUXDB_CONCURRENT_WRITES \"x\""), "{err}");
    }
}
