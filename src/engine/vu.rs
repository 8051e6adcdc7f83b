//! A virtual user: one HTTP client with its own connections, its captured
//! variables, and the loop over one iteration's ops.
//!
//! A VU is plain data moved between tasks (the executors own scheduling);
//! running an iteration borrows it mutably. If an iteration's future is
//! dropped (graceful stop ran out), the client discards any connection that
//! was mid-request, so the VU stays usable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::check;
use super::http::cookies::CookieJar;
use super::http::follow::{self, Chain};
use super::http::{HttpClientConfig, OutRequest, Response, VuClient};
use super::program::{Op, Prepared, sleep_duration};
use super::sink::SampleSink;
use crate::metrics::{HttpSample, Sample};
use crate::plan::{CaptureSource, DataMode, Plan, RenderContext};

/// Sleeps at least this long ship the VU's pending samples first.
const FLUSH_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_millis(50);

/// What every VU of a run shares.
pub struct Shared {
    pub plan: Arc<Plan>,
    pub program: super::program::Program,
    pub http: Arc<HttpClientConfig>,
    /// Next row for `data.mode: sequential`, shared by every VU.
    pub data_cursor: AtomicU64,
    /// Set when the plan comes from a script: VUs run its functions.
    pub script: Option<Arc<crate::script::ScriptRun>>,
}

/// One virtual user.
pub struct Vu {
    /// 1-based, unique across scenarios and (with segments) across agents.
    pub id: u64,
    client: VuClient,
    vars: Vec<Option<String>>,
    pub sink: SampleSink,
    url: String,
    body: String,
    /// The rendered body compressed, for a request with `compression`.
    compressed: Vec<u8>,
    headers: Vec<(http::HeaderName, String)>,
    /// Headers of a request with cookies or of a redirect hop.
    hop_headers: Vec<(http::HeaderName, String)>,
    response: Response,
    /// The VU's cookies (emptied before each iteration unless
    /// `noCookiesReset`).
    jar: CookieJar,
    /// A script VU: its JavaScript runtime on a script worker.
    script: Option<crate::script::ScriptVu>,
}

/// What a request's templates may read besides the VU's own state.
struct Where<'a> {
    iter: u64,
    scenario: &'a str,
    row: Option<&'a [String]>,
}

/// Where one iteration stands in its scenario.
#[derive(Debug, Clone, Copy)]
pub struct IterationSpec {
    pub scenario: usize,
    /// This VU's iteration number in the scenario (`${iter}`).
    pub iter: u64,
    /// Open model: when the schedule meant this iteration to start.
    pub intended: Option<Instant>,
}

impl Vu {
    pub fn new(id: u64, shared: &Shared, sink: SampleSink) -> Vu {
        let script = shared.script.as_ref().map(|run| {
            run.take(id).unwrap_or_else(|| {
                crate::script::ScriptVu::spawn(
                    &run.workers,
                    Arc::clone(&run.host),
                    Arc::clone(&shared.http),
                    id,
                    sink.fork(),
                    crate::script::native::Stage::Vu,
                )
            })
        });
        Vu {
            script,
            id,
            client: VuClient::for_vu(shared.http.clone(), id),
            vars: vec![None; shared.plan.vars.len()],
            sink,
            url: String::new(),
            body: String::new(),
            compressed: Vec::new(),
            headers: Vec::new(),
            hop_headers: Vec::new(),
            response: Response::default(),
            jar: CookieJar::default(),
        }
    }

    /// Runs one iteration to its end and records it. Dropping the future
    /// interrupts it; the caller then records the interruption.
    pub async fn iterate(&mut self, shared: &Shared, spec: IterationSpec) {
        if let Some(script) = &mut self.script {
            let scenario = &shared.plan.scenarios[spec.scenario];
            let cmd = crate::script::vu::IterCmd {
                scenario: spec.scenario,
                exec: scenario.exec.clone().unwrap_or_else(|| "default".into()),
                iter_in_scenario: spec.iter,
                intended: spec.intended,
            };
            script.iterate(cmd).await;
            return;
        }
        let started = Instant::now();
        let lag = spec.intended.map(|i| started.saturating_duration_since(i));
        let plan = &shared.plan;
        if !plan.http.no_cookies_reset {
            self.jar.clear();
        }
        let scenario = &plan.scenarios[spec.scenario];
        let row_index = plan.data.as_ref().map(|d| match d.mode {
            DataMode::Sequential => {
                let n = shared.data_cursor.fetch_add(1, Ordering::Relaxed);
                (n % d.rows.len() as u64) as usize
            }
            DataMode::Random => fastrand::usize(..d.rows.len()),
            DataMode::UniquePerVu => ((self.id - 1) % d.rows.len() as u64) as usize,
        });
        let mut group_starts: Vec<Instant> = Vec::new();
        for op in &shared.program.scenarios[spec.scenario] {
            match op {
                Op::Request(p) => {
                    let row =
                        row_index.and_then(|i| plan.data.as_ref().map(|d| d.rows[i].as_slice()));
                    let at = Where {
                        iter: spec.iter,
                        scenario: &scenario.name,
                        row,
                    };
                    self.request(p, &at, lag, &shared.plan.http).await;
                }
                Op::Sleep(s) => {
                    let pause = sleep_duration(*s);
                    // A sleeping VU holds no samples back (nor their memory).
                    if pause >= FLUSH_BEFORE_SLEEP {
                        self.sink.flush();
                        self.client.release_buffers();
                    } else {
                        self.sink.flush_if_stale();
                    }
                    tokio::time::sleep(pause).await;
                }
                Op::GroupStart(_) => group_starts.push(Instant::now()),
                Op::GroupEnd(g) => {
                    if let Some(t) = group_starts.pop() {
                        self.sink.push(Sample::Group {
                            group: *g,
                            duration: t.elapsed(),
                        });
                    }
                }
            }
        }
        self.sink.push(Sample::Iteration {
            scenario: scenario_index(spec.scenario),
            duration: started.elapsed(),
            interrupted: false,
        });
        self.sink.flush_if_stale();
    }

    async fn request(
        &mut self,
        p: &Prepared,
        at: &Where<'_>,
        lag: Option<std::time::Duration>,
        http: &crate::plan::HttpOptions,
    ) {
        let r = &p.request;
        let cx = RenderContext {
            vu: self.id,
            iter: at.iter,
            scenario: at.scenario,
            vars: &self.vars,
            row: at.row,
        };
        let url: &str = match &p.static_url {
            Some(u) => u,
            None => {
                self.url.clear();
                r.url.render_into(&cx, &mut self.url);
                &self.url
            }
        };
        let headers: &[(http::HeaderName, String)] = match &p.static_headers {
            Some(h) => h,
            None => {
                self.headers.clear();
                for (name, value) in &r.headers {
                    self.headers.push((name.clone(), value.render(&cx)));
                }
                &self.headers
            }
        };
        let body: &[u8] = match (&p.static_body, &r.body) {
            (Some(b), _) => b,
            (None, Some(t)) => {
                self.body.clear();
                t.render_into(&cx, &mut self.body);
                match &r.compression {
                    // Validated at load: compressing into memory does not fail.
                    Some(c) => {
                        self.compressed = super::http::encoding::compress(c, self.body.as_bytes())
                            .unwrap_or_default();
                        &self.compressed
                    }
                    None => self.body.as_bytes(),
                }
            }
            (None, None) => &[],
        };
        let mut out = OutRequest {
            method: &r.method,
            url,
            headers,
            body,
            timeout: r.timeout,
            keep_body: p.keep_body,
            keep_headers: p.keep_headers,
        };
        if let Some(cookies) = follow::cookie_header(&mut self.jar, &[], url, follow::unix_now) {
            self.hop_headers.clear();
            self.hop_headers.extend_from_slice(headers);
            follow::add_cookie_header(&mut self.hop_headers, cookies);
            out.headers = &self.hop_headers;
        }
        self.client.send(&out, &mut self.response).await;
        follow::store_cookies(&mut self.jar, url, &self.response, follow::unix_now);
        let max = r.redirects.unwrap_or(http.max_redirects);
        let expected = &http.expected_statuses;
        if max > 0 && super::http::redirect::is_redirect(self.response.status) {
            // Rare: each hop is recorded as its own request, then sent.
            let mut chain = Chain::new(&r.method, url, max);
            while chain.advance(&mut self.response) {
                record(&mut self.sink, r.id, &self.response, lag, expected);
                self.hop_headers.clear();
                chain.headers_into(headers, &mut self.hop_headers);
                if let Some(c) =
                    follow::cookie_header(&mut self.jar, &[], &chain.url, follow::unix_now)
                {
                    follow::add_cookie_header(&mut self.hop_headers, c);
                }
                let hop = OutRequest {
                    method: &chain.method,
                    url: &chain.url,
                    headers: &self.hop_headers,
                    body: if chain.keep_body { body } else { &[] },
                    timeout: r.timeout,
                    keep_body: p.keep_body,
                    keep_headers: p.keep_headers,
                };
                self.client.send(&hop, &mut self.response).await;
                follow::store_cookies(&mut self.jar, &chain.url, &self.response, follow::unix_now);
            }
        }
        record(&mut self.sink, r.id, &self.response, lag, expected);
        let resp = &self.response;
        if !r.checks.is_empty() || !r.captures.is_empty() {
            let json = if p.parse_json {
                serde_json::from_slice::<serde_json::Value>(&resp.body).ok()
            } else {
                None
            };
            for c in &r.checks {
                let ok = check::evaluate(&c.kind, resp, json.as_ref());
                self.sink.push(Sample::Check { check: c.id, ok });
            }
            for c in &r.captures {
                let slot = usize::from(c.var.0);
                let value = match &c.source {
                    CaptureSource::Cookie(name) => {
                        follow::cookie_value(&mut self.jar, url, name, follow::unix_now())
                    }
                    source => check::capture(source, resp, json.as_ref()),
                };
                if let Some(v) = self.vars.get_mut(slot) {
                    *v = value;
                }
            }
        }
    }

    /// How long the VU's last request took (`http_req_duration`), zero
    /// before its first: what the open model expects a request to take
    /// right now.
    pub fn last_request_duration(&self) -> std::time::Duration {
        self.response.timings.duration()
    }

    /// Drops every connection (end of the VU's life, or a fresh start).
    pub fn close(&mut self) {
        self.client.close_all();
    }
}

/// Records one response (a hop or the final one) of request `id`.
fn record(
    sink: &mut SampleSink,
    id: crate::plan::RequestId,
    resp: &Response,
    lag: Option<std::time::Duration>,
    expected_statuses: &[(u16, u16)],
) {
    // A transport error is checked as status 0, as k6 does.
    let status = if resp.error.is_some() { 0 } else { resp.status };
    let expected = expected_statuses
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&status));
    sink.push(Sample::Http(HttpSample {
        request: id,
        status: resp.status,
        error: resp.error,
        expected,
        timings: resp.timings,
        intended: lag.map(|l| l + resp.timings.duration()),
        bytes_sent: resp.bytes_sent,
        bytes_received: resp.bytes_received,
        proto: resp.proto_code(),
        tls: resp.tls_code(),
    }));
}

/// Scenario indexes travel as `u16` in samples; plans never get near that.
pub fn scenario_index(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}
