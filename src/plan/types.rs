//! The validated, typed test plan: what every module after `plan/` sees.
//!
//! Nothing here holds a raw string that still needs parsing: durations are
//! [`Duration`]s, methods are [`http::Method`]s, templates are compiled, and
//! thresholds are parsed. A `Plan` is immutable once built; the engine shares
//! it behind an `Arc`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};

use super::template::Template;
use super::threshold::Threshold;
use crate::catalog::Metric;

mod response;

pub use response::*;

/// A complete, validated test plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenarios, sorted by name (k6 runs them concurrently, each from its
    /// own `startTime`). Never empty.
    pub scenarios: Vec<Scenario>,
    /// Pass/fail criteria, in the order they were written.
    pub thresholds: Vec<Threshold>,
    /// Options that shape every HTTP request of the plan.
    pub http: HttpOptions,
    /// Rows of the plan's data file, if it has one.
    pub data: Option<Arc<DataSet>>,
    /// Statistics shown for trends in the summary (`summaryTrendStats`).
    pub summary_trend_stats: Vec<TrendStat>,
    /// Names of the variables that `capture` steps write, indexed by
    /// [`VarSlot`]. Templates refer to them by slot, never by name.
    pub vars: Vec<String>,
    /// Every request step of every scenario, indexed by [`RequestId`], so
    /// that a sample can name its request with a `u32`.
    pub requests: Vec<Arc<Request>>,
    /// Every check of every request, indexed by [`CheckId`].
    pub checks: Vec<CheckInfo>,
    /// Every group of every scenario, indexed by [`GroupId`].
    pub groups: Vec<GroupInfo>,
    /// Requests, checks and groups a script declares as it runs, with ids
    /// after the ones above.
    pub dynamic: Arc<super::dynamic::DynamicCatalog>,
    /// `systemTags`: which tags Volley sets on samples.
    pub system_tags: super::system_tags::SystemTags,
    /// Custom metrics the plan declares (`metrics:`), in document order.
    pub metrics: Vec<Metric>,
    /// `setup:`: run once before the VUs start (requests tagged with the
    /// first scenario and the group `::setup`, as k6 tags them).
    pub setup: Option<Arc<Flow>>,
    /// `teardown:`: run once after the VUs end, group `::teardown`.
    pub teardown: Option<Arc<Flow>>,
    /// The variables `setup` captures: every VU (and teardown) starts with
    /// their values, and no flow may capture into them.
    pub setup_vars: Vec<VarSlot>,
    /// `targets:`: one endpoint per region, in document order; empty when
    /// the plan has none. With targets, each scenario's flow holds one copy
    /// of the written flow per target, in this order.
    pub targets: Vec<Target>,
}

/// One entry of `targets:`: a region and the endpoint serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The region's name (`eu-west`): the `target_region` tag.
    pub region: String,
    /// Absolute `http(s)://` URL without a trailing `/`, query or
    /// fragment; a flow's request paths are appended to it.
    pub url: String,
}

/// The region tag of a plan with `targets` when no region was given (a
/// single machine's `volley run` without `--region`).
pub const LOCAL_REGION: &str = "local";

impl Plan {
    /// Tags every sample of a plan with `targets` with the region of the
    /// machine running it (`region:`): an agent's `region` label, or
    /// `volley run --region`. A plan without targets is left alone.
    pub fn set_agent_region(&mut self, region: &str) {
        if self.targets.is_empty() {
            return;
        }
        for s in &mut self.scenarios {
            match s.tags.iter_mut().find(|(k, _)| k == REGION_TAG) {
                Some(slot) => slot.1 = region.to_string(),
                None => s.tags.push((REGION_TAG.to_string(), region.to_string())),
            }
        }
    }
}

/// The tag naming the region a sample was sent from.
pub const REGION_TAG: &str = "region";
/// The tag naming the region of the target a request went to.
pub const TARGET_REGION_TAG: &str = "target_region";

/// k6's default `maxRedirects`.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// k6's default `batch`: requests of one batch in flight at once.
pub const DEFAULT_BATCH: u32 = 20;

/// k6's default `batchPerHost`: of those, to one host.
pub const DEFAULT_BATCH_PER_HOST: u32 = 6;

/// Options that apply to every request (k6's top-level HTTP options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// `discardResponseBodies`: bodies are read and counted but not kept,
    /// unless a check or capture of that request needs them.
    pub discard_response_bodies: bool,
    /// `insecureSkipTLSVerify`: accept any server certificate.
    pub insecure_skip_tls_verify: bool,
    /// `userAgent`: sent unless a request sets its own `User-Agent`.
    pub user_agent: String,
    /// `noConnectionReuse`: a new connection for every request.
    pub no_connection_reuse: bool,
    /// `http2PriorKnowledge` (Volley): speak HTTP/2 over plain TCP (h2c)
    /// without negotiation. Over TLS, HTTP/2 is chosen by ALPN anyway.
    pub http2_prior_knowledge: bool,
    /// Default per-request timeout (k6: 60 s).
    pub timeout: Duration,
    /// `maxRedirects`: redirects followed per request (k6: 10); each hop
    /// is a request of its own in the metrics.
    pub max_redirects: u32,
    /// `noCookiesReset`: keep a VU's cookies from one iteration to the
    /// next (k6 empties the jar before each iteration).
    pub no_cookies_reset: bool,
    /// `expectedStatuses`: inclusive ranges of statuses that are not
    /// failures (k6's default: 200–399). A transport error is status 0.
    pub expected_statuses: Vec<(u16, u16)>,
    /// `--http-debug`: every request and response written to stderr.
    pub http_debug: Option<HttpDebug>,
    /// `hosts`: names (or `name:port`) answered with these addresses
    /// instead of DNS, as k6's option does.
    pub hosts: Vec<HostOverride>,
    /// TLS, DNS, source-address and proxy options.
    pub net: super::net::NetOptions,
    /// `rps` / `--rps`: requests per second of the whole test, all VUs
    /// together (each agent of a fleet takes its share).
    pub rps: Option<u64>,
    /// `batch`: most requests of one batch in flight at once (at least 1).
    pub batch: u32,
    /// `batchPerHost`: most of them to one host; 0 is no limit, as in k6.
    pub batch_per_host: u32,
}

/// One `hosts` entry: `name` (any port, or only `port`) connects to
/// `addr` (the request's port when `addr` has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOverride {
    pub name: String,
    pub port: Option<u16>,
    pub ip: std::net::IpAddr,
    pub to_port: Option<u16>,
}

impl HttpOptions {
    /// Where `host:port` connects to by the `hosts` option, if it names it
    /// (a `name:port` entry wins over a bare `name`).
    pub fn host_override(&self, host: &str, port: u16) -> Option<std::net::SocketAddr> {
        let exact = self
            .hosts
            .iter()
            .find(|h| h.port == Some(port) && h.name.eq_ignore_ascii_case(host));
        let any = || {
            self.hosts
                .iter()
                .find(|h| h.port.is_none() && h.name.eq_ignore_ascii_case(host))
        };
        exact
            .or_else(any)
            .map(|h| std::net::SocketAddr::new(h.ip, h.to_port.unwrap_or(port)))
    }
}

/// k6's default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for HttpOptions {
    /// k6's defaults (what a plan that sets no HTTP option gets).
    fn default() -> HttpOptions {
        HttpOptions {
            discard_response_bodies: false,
            insecure_skip_tls_verify: false,
            user_agent: format!("volley/{}", env!("CARGO_PKG_VERSION")),
            no_connection_reuse: false,
            http2_prior_knowledge: false,
            timeout: DEFAULT_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            no_cookies_reset: false,
            expected_statuses: vec![(200, 399)],
            http_debug: None,
            hosts: Vec::new(),
            net: super::net::NetOptions::default(),
            rps: None,
            batch: DEFAULT_BATCH,
            batch_per_host: DEFAULT_BATCH_PER_HOST,
        }
    }
}

#[cfg(test)]
impl HttpOptions {
    /// k6's defaults with a 5 s timeout and a test user agent.
    pub(crate) fn for_tests() -> HttpOptions {
        HttpOptions {
            user_agent: "volley-test".into(),
            timeout: Duration::from_secs(5),
            ..HttpOptions::default()
        }
    }
}

/// How much of each exchange `--http-debug` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpDebug {
    /// Request and response heads (secrets redacted).
    Headers,
    /// Heads and bodies (`--http-debug=full`).
    Full,
}

/// One scenario: an executor and the flow each of its iterations runs.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The key in the `scenarios` map (`default` for the shortcut form).
    pub name: String,
    /// Index of this scenario in [`Plan::scenarios`].
    pub index: usize,
    /// How iterations are scheduled.
    pub executor: Executor,
    /// Offset of this scenario from the start of the test.
    pub start_time: Duration,
    /// How long iterations still running at the scenario's end may finish.
    pub graceful_stop: Duration,
    /// Tags added to every sample of this scenario (besides `scenario`).
    pub tags: Tags,
    /// The scenario's `env`, already applied to its templates; kept for
    /// display and for the fleet, which re-derives nothing from it.
    pub env: BTreeMap<String, String>,
    /// The steps every iteration runs (empty for a script's scenario).
    pub flow: Arc<Flow>,
    /// For a plan from a script: the exported function each iteration
    /// calls (`exec`, `default` unless the scenario names another).
    pub exec: Option<String>,
}

/// k6's executors, with their parameters validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    /// A fixed number of VUs loop for a duration.
    ConstantVus { vus: u64, duration: Duration },
    /// VUs follow `stages` linearly from `start_vus`.
    RampingVus {
        start_vus: u64,
        stages: Vec<Stage>,
        graceful_ramp_down: Duration,
    },
    /// `rate` iterations start every `time_unit`, whatever the response times.
    ConstantArrivalRate {
        rate: u64,
        time_unit: Duration,
        duration: Duration,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
    /// The arrival rate follows `stages` linearly from `start_rate`.
    RampingArrivalRate {
        start_rate: u64,
        time_unit: Duration,
        stages: Vec<Stage>,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
    /// Each of `vus` VUs runs `iterations` iterations.
    PerVuIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
    /// `vus` VUs share `iterations` iterations between them.
    SharedIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
}

/// One stage of a ramping executor: reach `target` linearly over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub duration: Duration,
    /// VUs for `ramping-vus`, iterations per time unit for `ramping-arrival-rate`.
    pub target: u64,
}

/// Ordered `key=value` tags.
pub type Tags = Vec<(String, String)>;

/// The steps of one iteration.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    pub steps: Vec<Step>,
}

/// One step of a flow.
#[derive(Debug, Clone)]
pub enum Step {
    Request(Arc<Request>),
    Sleep(Sleep),
    Group(Group),
    /// Requests sent in parallel (k6's `http.batch`), within the `batch`
    /// and `batchPerHost` options; the step ends when every one has.
    Batch(Vec<Arc<Request>>),
    /// A value added to a custom metric.
    Metric(MetricStep),
}

/// A named sub-list of steps; its run time is recorded as `group_duration`.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub steps: Vec<Step>,
}

/// A pause inside an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sleep {
    Fixed(Duration),
    /// A uniformly random pause in `[min, max]`.
    Uniform {
        min: Duration,
        max: Duration,
    },
}

/// One HTTP request step, with everything needed to send it and judge the answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: RequestId,
    /// Where the request is written in the plan (`flow[0].get`), for
    /// refusals found after compiling (the egress policy).
    pub path: String,
    pub method: Method,
    pub url: Template,
    /// Headers in the order written; `User-Agent` is added from
    /// [`HttpOptions::user_agent`] when absent, `Content-Type` from `json`,
    /// `form` or `multipart`.
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Option<Body>,
    /// `compression`: the codings applied to the body, in order (`gzip`,
    /// `deflate`); `Content-Encoding` is set to match.
    pub compression: Option<String>,
    /// The `name` tag: the request's own `name`, else the URL template's source.
    pub name: String,
    /// Index of the scenario this request belongs to.
    pub scenario: usize,
    /// The enclosing group path in k6 form (`""`, `"::login"`, `"::a::b"`).
    pub group: String,
    pub timeout: Duration,
    /// `redirects`: this request's own limit instead of `maxRedirects`.
    pub redirects: Option<u32>,
    /// Extra tags of this request.
    pub tags: Tags,
    pub checks: Vec<Check>,
    pub captures: Vec<Capture>,
    /// True when a check or capture reads the body, so it must be kept even
    /// under `discardResponseBodies`.
    pub needs_body: bool,
    /// `metrics`: values of the final response added to custom metrics.
    pub metrics: Vec<RequestMetric>,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// Text: `body`, `json` or `form`, compiled to one template.
    Text(Template),
    /// `multipart`: fields and files.
    Multipart(Box<super::multipart::Multipart>),
}

impl Body {
    /// The template of a text body.
    pub fn text(&self) -> Option<&Template> {
        match self {
            Body::Text(t) => Some(t),
            Body::Multipart(_) => None,
        }
    }

    /// The bytes every request sends when nothing in the body varies.
    pub fn as_static(&self) -> Option<Vec<u8>> {
        match self {
            Body::Text(t) => t.as_static().map(|s| s.as_bytes().to_vec()),
            Body::Multipart(m) => m.as_static(),
        }
    }
}

/// Index of a request in [`Plan::requests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u32);

/// Index of a check in [`Plan::checks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(pub u32);

/// Index of a group in [`Plan::groups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u32);

/// Index of a captured variable in [`Plan::vars`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarSlot(pub u16);

/// Where a check lives, for tagging its samples (`check`, `group`, `scenario`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInfo {
    pub name: String,
    pub scenario: usize,
    pub group: String,
}

/// Where a group lives, for tagging `group_duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Full k6 group path (`"::a::b"`).
    pub path: String,
    pub scenario: usize,
}

/// Rows of a CSV or JSON data file, and how iterations pick them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSet {
    pub columns: Vec<String>,
    /// Every row has exactly `columns.len()` cells.
    pub rows: Vec<Vec<String>>,
    pub mode: DataMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// Iterations take rows in order, shared across VUs, wrapping around.
    Sequential,
    /// Each iteration takes a uniformly random row.
    Random,
    /// VU n always uses row n-1; the plan fails to load if VUs can exceed rows.
    UniquePerVu,
}

/// A statistic shown for trends (`summaryTrendStats`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrendStat {
    Avg,
    Min,
    Med,
    Max,
    Count,
    /// `p(N)`, N in [0, 100].
    Percentile(f64),
}

impl TrendStat {
    /// k6's spelling: `avg`, `p(95)`, `p(99.9)`.
    pub fn label(&self) -> String {
        match self {
            TrendStat::Avg => "avg".into(),
            TrendStat::Min => "min".into(),
            TrendStat::Med => "med".into(),
            TrendStat::Max => "max".into(),
            TrendStat::Count => "count".into(),
            TrendStat::Percentile(p) => format!("p({p})"),
        }
    }

    /// k6's default: `avg, min, med, max, p(90), p(95)`.
    pub fn k6_defaults() -> Vec<TrendStat> {
        vec![
            TrendStat::Avg,
            TrendStat::Min,
            TrendStat::Med,
            TrendStat::Max,
            TrendStat::Percentile(90.0),
            TrendStat::Percentile(95.0),
        ]
    }
}

impl Executor {
    /// k6's executor name (`constant-vus`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Executor::ConstantVus { .. } => "constant-vus",
            Executor::RampingVus { .. } => "ramping-vus",
            Executor::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Executor::RampingArrivalRate { .. } => "ramping-arrival-rate",
            Executor::PerVuIterations { .. } => "per-vu-iterations",
            Executor::SharedIterations { .. } => "shared-iterations",
        }
    }

    /// True for the open-model (arrival-rate) executors.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. }
        )
    }

    /// The most VUs this executor can ever have (k6's `maxVUs` requirement).
    pub fn max_vus(&self) -> u64 {
        match self {
            Executor::ConstantVus { vus, .. }
            | Executor::PerVuIterations { vus, .. }
            | Executor::SharedIterations { vus, .. } => *vus,
            Executor::RampingVus {
                start_vus, stages, ..
            } => stages.iter().map(|s| s.target).fold(*start_vus, u64::max),
            Executor::ConstantArrivalRate { max_vus, .. }
            | Executor::RampingArrivalRate { max_vus, .. } => *max_vus,
        }
    }

    /// VUs initialised before the test starts, as k6 does: every VU the
    /// executor can use, but only the pre-allocated ones of an
    /// arrival-rate executor (k6 adds the rest mid-test).
    pub fn initial_vus(&self) -> u64 {
        match self {
            Executor::ConstantArrivalRate {
                pre_allocated_vus, ..
            }
            | Executor::RampingArrivalRate {
                pre_allocated_vus, ..
            } => *pre_allocated_vus,
            _ => self.max_vus(),
        }
    }

    /// Nominal run time, before `gracefulStop` (for iteration-based
    /// executors: `maxDuration`).
    pub fn duration(&self) -> Duration {
        match self {
            Executor::ConstantVus { duration, .. }
            | Executor::ConstantArrivalRate { duration, .. } => *duration,
            Executor::RampingVus { stages, .. } | Executor::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|s| s.duration).sum()
            }
            Executor::PerVuIterations { max_duration, .. }
            | Executor::SharedIterations { max_duration, .. } => *max_duration,
        }
    }
}

impl Scenario {
    /// Latest instant, from the test start, at which this scenario may still
    /// run: `startTime + duration + gracefulStop` (+ `gracefulRampDown`).
    pub fn max_end(&self) -> Duration {
        let ramp = match &self.executor {
            Executor::RampingVus {
                graceful_ramp_down, ..
            } => *graceful_ramp_down,
            _ => Duration::ZERO,
        };
        self.start_time + self.executor.duration() + self.graceful_stop.max(ramp)
    }
}

impl Plan {
    /// Nominal length of the whole test (longest `startTime + duration`).
    pub fn nominal_duration(&self) -> Duration {
        self.scenarios
            .iter()
            .map(|s| s.start_time + s.executor.duration())
            .max()
            .unwrap_or_default()
    }

    /// Hard upper bound on the test's run time, graceful stops included.
    pub fn max_duration(&self) -> Duration {
        self.scenarios
            .iter()
            .map(Scenario::max_end)
            .max()
            .unwrap_or_default()
    }
}
