//! A virtual user: one HTTP client with its own connections, its captured
//! variables, and the loop over one iteration's ops.
//!
//! A VU is plain data moved between tasks (the executors own scheduling);
//! running an iteration borrows it mutably. If an iteration's future is
//! dropped (graceful stop ran out), the client discards any connection that
//! was mid-request, so the VU stays usable.

// Some functions here return an `async move` block instead of being an
// `async fn`: an `async fn` moves its arguments into locals and its future
// then holds them twice (ARCHITECTURE.md, invariant 19).
#![allow(clippy::manual_async_fn)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

mod batch;
mod exchange;

use super::http::batch::Lanes;
use super::http::cookies::CookieJar;
use super::http::follow::Chain;
use super::http::{HttpClientConfig, OutRequest, Response, VuClient};
use super::program::{Op, Prepared, sleep_duration};
use super::sink::SampleSink;
use crate::metrics::Sample;
use crate::plan::{DataMode, MetricValue, Plan, RenderContext};
use exchange::Buffers;

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
    /// What `setup` captured, by variable slot: every VU starts with it.
    pub setup_values: std::sync::OnceLock<Vec<Option<String>>>,
}

impl Shared {
    /// What the VUs of a run of `plan` share (`script` for a plan from one).
    pub fn new(
        plan: Arc<Plan>,
        http: HttpClientConfig,
        script: Option<Arc<crate::script::ScriptRun>>,
    ) -> Shared {
        Shared {
            program: super::program::Program::new(&plan),
            plan,
            http: Arc::new(http),
            data_cursor: AtomicU64::new(0),
            script,
            setup_values: std::sync::OnceLock::new(),
        }
    }
}

/// One virtual user. What only a request in flight needs is in its `Work`
/// (and the client's own work state), made on demand and dropped before a
/// sleep: a sleeping VU holds its connections, cookies and variables, not
/// buffers.
pub struct Vu {
    /// 1-based, unique across scenarios and (with segments) across agents.
    pub id: u64,
    client: VuClient,
    vars: Vec<Option<String>>,
    pub sink: SampleSink,
    work: Option<Box<Work>>,
    /// The extra clients of this VU's batches.
    lanes: Lanes,
    /// The VU's cookies (emptied before each iteration unless
    /// `noCookiesReset`).
    jar: CookieJar,
    /// The first check that failed since [`Vu::lifecycle`] began.
    failed_check: Option<crate::plan::CheckId>,
    /// `http_req_duration` of the VU's last single request.
    last_duration: std::time::Duration,
    /// A script VU: its JavaScript runtime on a script worker.
    script: Option<Box<crate::script::ScriptVu>>,
}

/// A VU's state while it sends a single request.
#[derive(Default)]
struct Work {
    /// Where the request's templates are rendered, made by the first
    /// request that has any.
    bufs: Option<Box<Buffers>>,
    /// Headers of a request with cookies or of a redirect hop.
    hop_headers: Vec<(http::HeaderName, String)>,
    response: Response,
    /// The redirect chain being followed, if any.
    chain: Option<Box<Chain>>,
}

/// What a request's hops share: the first hop's request as sent.
fn follow<'a>(
    request: &'a crate::plan::Request,
    sent: &exchange::Rendered<'a>,
    at: &Where<'a>,
) -> exchange::Follow<'a> {
    exchange::Follow {
        request,
        url: sent.url,
        headers: sent.headers,
        lag: at.lag,
        http: at.http,
    }
}

/// What an iteration's steps share: what its templates may read besides
/// the VU's own state, and how its requests are sent and recorded. The
/// steps borrow it, so a VU's task keeps one copy.
struct Where<'a> {
    iter: u64,
    scenario: &'a str,
    row: Option<&'a [String]>,
    /// Open model: how late the iteration started.
    lag: Option<std::time::Duration>,
    http: &'a crate::plan::HttpOptions,
}

impl<'a> Where<'a> {
    /// Where iteration `spec` of VU `vu`, started at `started`, stands:
    /// its data row (taken now) and how late it is.
    fn iteration(shared: &'a Shared, spec: &IterationSpec, started: Instant, vu: u64) -> Self {
        let plan = &shared.plan;
        let row = plan.data.as_ref().map(|d| {
            let i = match d.mode {
                DataMode::Sequential => {
                    let n = shared.data_cursor.fetch_add(1, Ordering::Relaxed);
                    (n % d.rows.len() as u64) as usize
                }
                DataMode::Random => fastrand::usize(..d.rows.len()),
                DataMode::UniquePerVu => ((vu - 1) % d.rows.len() as u64) as usize,
            };
            d.rows[i].as_slice()
        });
        Where {
            iter: spec.iter,
            scenario: &plan.scenarios[spec.scenario].name,
            row,
            lag: spec.intended.map(|i| started.saturating_duration_since(i)),
            http: &plan.http,
        }
    }

    /// What templates render with, for VU `vu` with its variables.
    fn context(&self, vu: u64, vars: &'a [Option<String>]) -> RenderContext<'a> {
        RenderContext {
            vu,
            iter: self.iter,
            scenario: self.scenario,
            vars,
            row: self.row,
        }
    }
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
            script: script.map(Box::new),
            id,
            client: VuClient::for_vu(shared.http.clone(), id),
            vars: shared
                .setup_values
                .get()
                .cloned()
                .unwrap_or_else(|| vec![None; shared.plan.vars.len()]),
            failed_check: None,
            sink,
            work: None,
            lanes: Lanes::default(),
            last_duration: std::time::Duration::ZERO,
            jar: CookieJar::default(),
        }
    }

    /// Runs one iteration to its end and records it. Dropping the future
    /// interrupts it; the caller then records the interruption.
    pub fn iterate(&mut self, shared: &Shared, spec: &IterationSpec) -> impl Future<Output = ()> {
        async move {
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
            if !shared.plan.http.no_cookies_reset {
                self.jar.clear();
            }
            // Made apart: only `at` is kept while the steps run.
            let at = Where::iteration(shared, spec, started, self.id);
            self.run_ops(&shared.program.scenarios[spec.scenario], &at, false)
                .await;
            self.sink.push(Sample::Iteration {
                scenario: scenario_index(spec.scenario),
                duration: started.elapsed(),
                interrupted: false,
            });
            self.sink.flush_if_stale();
        }
    }

    /// Runs `ops` in order; with `stop_on_failed_check`, stops after the
    /// request whose check failed first (setup's assertions).
    fn run_ops(
        &mut self,
        ops: &[Op],
        at: &Where<'_>,
        stop_on_failed_check: bool,
    ) -> impl Future<Output = ()> {
        async move {
            let mut group_starts: Vec<Instant> = Vec::new();
            for op in ops {
                match op {
                    // Boxed: a request's future is large and a VU's task
                    // would otherwise hold its space while the VU sleeps.
                    Op::Request(p) => Box::pin(self.request(p, at)).await,
                    Op::Batch(ps) => Box::pin(self.batch(ps, at)).await,
                    Op::Metric { series, value } => {
                        let value = match value {
                            MetricValue::Fixed(v) => Some(*v),
                            MetricValue::Template(t) => {
                                exchange::metric_number(&t.render(&at.context(self.id, &self.vars)))
                            }
                        };
                        if let Some(value) = value {
                            self.sink.push(Sample::Custom {
                                series: *series,
                                value,
                            });
                        }
                    }
                    Op::Sleep(s) => {
                        let pause = sleep_duration(*s);
                        // A sleeping VU holds no samples back (nor their memory).
                        if pause >= FLUSH_BEFORE_SLEEP {
                            self.sink.flush();
                            self.work = None;
                            self.client.release_buffers();
                            self.lanes.release_buffers();
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
                if stop_on_failed_check && self.failed_check.is_some() {
                    return;
                }
            }
        }
    }

    /// Runs the plan's `setup` (`teardown` when `!setup`) once, as VU 0:
    /// with setup, stops at the first failed check and returns it.
    pub async fn lifecycle(
        &mut self,
        shared: &Shared,
        setup: bool,
    ) -> Option<crate::plan::CheckId> {
        let (ops, name) = if setup {
            (&shared.program.setup, "setup")
        } else {
            (&shared.program.teardown, "teardown")
        };
        let at = Where {
            iter: 0,
            scenario: name,
            row: None,
            lag: None,
            http: &shared.plan.http,
        };
        self.failed_check = None;
        self.run_ops(ops, &at, setup).await;
        self.sink.flush();
        self.failed_check
    }

    /// The variables `setup` captured, the others empty: what every VU
    /// starts with.
    pub fn setup_values(&self, slots: &[crate::plan::VarSlot]) -> Vec<Option<String>> {
        let mut out = vec![None; self.vars.len()];
        for s in slots {
            let i = usize::from(s.0);
            if let (Some(slot), Some(v)) = (out.get_mut(i), self.vars.get(i)) {
                *slot = v.clone();
            }
        }
        out
    }

    fn request(&mut self, p: &Prepared, at: &Where<'_>) -> impl Future<Output = ()> {
        async move {
            let r = &p.request;
            let Vu {
                id,
                client,
                vars,
                sink,
                work,
                jar,
                failed_check,
                last_duration,
                ..
            } = self;
            let Work {
                bufs,
                hop_headers,
                response,
                chain,
            } = &mut **work.get_or_insert_with(Box::default);
            let cx = at.context(*id, vars);
            let sent = exchange::render(p, &cx, bufs);
            let cookies = exchange::with_cookies(jar, sent.headers, sent.url, hop_headers);
            *chain = None;
            // The timeout covers the whole redirect chain, as k6's does.
            let mut spent = std::time::Duration::ZERO;
            // One await for the first hop and every redirect: the state a
            // request keeps across it is only what it sends; the rest is made
            // again after each response.
            loop {
                let timeout = r.timeout.saturating_sub(spent);
                let hop = match chain {
                    None => OutRequest {
                        method: &r.method,
                        url: sent.url,
                        headers: if cookies { hop_headers } else { sent.headers },
                        body: sent.body,
                        timeout,
                        keep_body: p.keep_body,
                        keep_headers: p.keep_headers,
                    },
                    Some(c) => OutRequest {
                        method: &c.method,
                        url: &c.url,
                        headers: hop_headers,
                        body: if c.keep_body { sent.body } else { &[] },
                        timeout,
                        keep_body: p.keep_body,
                        keep_headers: p.keep_headers,
                    },
                };
                client.send(&hop, response).await;
                spent = spent.saturating_add(response.timings.total());
                let f = follow(r, &sent, at);
                if !exchange::follow_on(&f, chain, response, jar, sink, hop_headers)
                    || chain.is_none()
                {
                    break;
                }
            }
            *last_duration = response.timings.duration();
            let outcome = exchange::Outcome {
                sink,
                vars,
                jar,
                failed_check,
            };
            exchange::finish(p, &follow(r, &sent, at), response, outcome);
        }
    }

    /// How long the VU's last request took (`http_req_duration`), zero
    /// before its first: what the open model expects a request to take
    /// right now.
    pub fn last_request_duration(&self) -> std::time::Duration {
        self.last_duration
    }

    /// Drops every connection (end of the VU's life, or a fresh start).
    pub fn close(&mut self) {
        self.client.close_all();
        self.lanes.close_all();
    }
}

/// Scenario indexes travel as `u16` in samples; plans never get near that.
pub fn scenario_index(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests;
