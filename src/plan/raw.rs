//! The plan file as written: a serde mirror of the YAML/JSON document with
//! k6's camelCase option names and `deny_unknown_fields` everywhere.
//!
//! Values are checked only as far as their own type goes (a count is a
//! non-negative integer, a duration parses); rules that involve several
//! fields (which executor takes which parameter, shortcuts versus
//! `scenarios`) belong to `compile`.

pub mod batch;
pub mod check;
pub mod metric;
pub mod multipart;
pub mod values;

use serde::Deserialize;

pub use batch::RawBatch;
pub use check::{CHECK_KINDS, RawCheck, RawJsonCheck};
pub use metric::{RawMetricStep, RawMetricType, RawRequestMetric, WrittenMetricSpec};
pub use multipart::RawPart;

pub use values::{
    Count, DurationValue, HeaderSpec, OrderedMap, RequestShort, Scalar, SleepSpec, StatusSpec,
    ThresholdList, ThresholdSpec,
};

/// The whole document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPlan {
    /// Shortcut: VUs of the `default` scenario.
    pub vus: Option<Count>,
    /// Shortcut: a `constant-vus` scenario (or `maxDuration` with `iterations`).
    pub duration: Option<DurationValue>,
    /// Shortcut: a `shared-iterations` scenario.
    pub iterations: Option<Count>,
    /// Shortcut: a `ramping-vus` scenario.
    pub stages: Option<Vec<RawStage>>,
    pub scenarios: Option<OrderedMap<RawScenario>>,
    pub thresholds: Option<OrderedMap<ThresholdList>>,
    pub discard_response_bodies: Option<bool>,
    #[serde(rename = "insecureSkipTLSVerify")]
    pub insecure_skip_tls_verify: Option<bool>,
    pub user_agent: Option<String>,
    pub no_connection_reuse: Option<bool>,
    pub http2_prior_knowledge: Option<bool>,
    /// Default request timeout.
    pub timeout: Option<DurationValue>,
    pub max_redirects: Option<Count>,
    pub no_cookies_reset: Option<bool>,
    /// Statuses that are not failures (`http_req_failed`), as k6's
    /// `http.expectedStatuses`: codes and `{min, max}` ranges.
    pub expected_statuses: Option<Vec<RawExpectedStatus>>,
    /// `{"name": "ip", "name:port": "ip:port"}`: addresses used instead of
    /// DNS.
    pub hosts: Option<OrderedMap<String>>,
    /// `tlsAuth`: client certificates (PEM), each for some domains or all.
    pub tls_auth: Option<Vec<RawTlsAuth>>,
    /// `tlsVersion`: `"tls1.3"` or `{min, max}`.
    pub tls_version: Option<serde_json::Value>,
    /// `tlsCipherSuites`: k6's (Go's) suite names.
    pub tls_cipher_suites: Option<Vec<String>>,
    /// `dns`: `{ttl, select, policy}` or k6's `"ttl=5m,select=random"` form.
    pub dns: Option<serde_json::Value>,
    /// `localIPs`: `"10.0.0.1-10.0.0.9,10.1.0.0/30"` or a list of those.
    #[serde(rename = "localIPs")]
    pub local_ips: Option<serde_json::Value>,
    /// `systemTags`: the system tags samples carry (k6's names).
    pub system_tags: Option<Vec<String>>,
    /// `secretHeaders`: header names whose values are secrets (besides
    /// `Authorization`, `Cookie`, `Proxy-Authorization`): never kept at rest.
    pub secret_headers: Option<Vec<String>>,
    /// `rps`: requests per second, all VUs together.
    pub rps: Option<Count>,
    /// `proxy`: a URL, or `{http, https, noProxy}`.
    pub proxy: Option<serde_json::Value>,
    /// Most requests of a batch in flight at once (k6: 20).
    pub batch: Option<Count>,
    /// Most of them to one host (k6: 6; 0 is no limit).
    pub batch_per_host: Option<Count>,
    pub summary_trend_stats: Option<Vec<String>>,
    pub data: Option<RawData>,
    pub env: Option<OrderedMap<Scalar>>,
    pub tags: Option<OrderedMap<Scalar>>,
    /// `targets: {us-east: URL, eu-west: URL}`: one endpoint per region;
    /// every flow runs once against each, its URLs relative to it.
    pub targets: Option<OrderedMap<String>>,
    /// Custom metrics by name (`orders: counter`).
    pub metrics: Option<OrderedMap<WrittenMetricSpec>>,
    /// The flow of the shortcut scenario, and of every scenario without one.
    pub flow: Option<Vec<RawStep>>,
    /// Run once before the VUs start; its captures are read-only variables
    /// of every flow.
    pub setup: Option<Vec<RawStep>>,
    /// Run once after the VUs end (after an abort too).
    pub teardown: Option<Vec<RawStep>>,
    /// Set when the plan comes from a script's `options` (never from a
    /// document): the names the script exports, which scenarios name with
    /// `exec` instead of having a `flow`.
    #[serde(skip)]
    pub script_exports: Option<Vec<String>>,
}

/// One entry of `expectedStatuses`: a code or an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RawExpectedStatus {
    Code(u16),
    Range { min: u16, max: u16 },
}

/// One `tlsAuth` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsAuth {
    pub cert: String,
    pub key: String,
    pub password: Option<String>,
    pub domains: Option<Vec<String>>,
}

/// One `{duration, target}` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub duration: DurationValue,
    pub target: Count,
}

/// One entry of `scenarios`: the union of every executor's parameters;
/// `compile` rejects the ones the named executor does not take.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawScenario {
    pub executor: String,
    pub start_time: Option<DurationValue>,
    pub graceful_stop: Option<DurationValue>,
    pub tags: Option<OrderedMap<Scalar>>,
    pub env: Option<OrderedMap<Scalar>>,
    pub flow: Option<Vec<RawStep>>,
    /// A script's exported function that each iteration calls (scripts only).
    pub exec: Option<String>,
    pub vus: Option<Count>,
    pub duration: Option<DurationValue>,
    pub iterations: Option<Count>,
    pub max_duration: Option<DurationValue>,
    #[serde(rename = "startVUs")]
    pub start_vus: Option<Count>,
    pub stages: Option<Vec<RawStage>>,
    pub graceful_ramp_down: Option<DurationValue>,
    pub rate: Option<Count>,
    pub time_unit: Option<DurationValue>,
    pub start_rate: Option<Count>,
    #[serde(rename = "preAllocatedVUs")]
    pub pre_allocated_vus: Option<Count>,
    #[serde(rename = "maxVUs")]
    pub max_vus: Option<Count>,
}

/// `data: {file, format, mode}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    pub file: String,
    pub format: Option<DataFormat>,
    pub mode: Option<RawDataMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawDataMode {
    Sequential,
    Random,
    UniquePerVu,
}

/// One flow step: a map with exactly one of these keys (`compile` checks
/// that exactly one is set). The method keys are shortcuts for `request`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub request: Option<RawRequest>,
    pub get: Option<RequestShort>,
    pub post: Option<RequestShort>,
    pub put: Option<RequestShort>,
    pub patch: Option<RequestShort>,
    pub delete: Option<RequestShort>,
    pub head: Option<RequestShort>,
    pub options: Option<RequestShort>,
    pub sleep: Option<SleepSpec>,
    pub group: Option<RawGroup>,
    /// Requests sent in parallel (k6's `http.batch`).
    pub batch: Option<RawBatch>,
    /// A value added to a custom metric.
    pub metric: Option<RawMetricStep>,
}

/// The step keys, for messages.
pub const STEP_KINDS: &str =
    "request, get, post, put, patch, delete, head, options, sleep, group, batch, metric";

/// `request: {...}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    pub method: Option<String>,
    pub url: String,
    pub headers: Option<OrderedMap<Scalar>>,
    pub body: Option<String>,
    /// Any value, sent as JSON; its string leaves are templates.
    #[serde(default, deserialize_with = "values::present_json")]
    pub json: Option<serde_json::Value>,
    /// Fields sent form-encoded (`application/x-www-form-urlencoded`);
    /// values are templates.
    pub form: Option<OrderedMap<Scalar>>,
    /// Fields sent as `multipart/form-data`: text (templates) or files.
    pub multipart: Option<OrderedMap<RawPart>>,
    pub name: Option<String>,
    pub timeout: Option<DurationValue>,
    /// Redirects this request follows (instead of `maxRedirects`).
    pub redirects: Option<Count>,
    /// `gzip`, `deflate` or a comma list: the body is compressed.
    pub compression: Option<String>,
    pub tags: Option<OrderedMap<Scalar>>,
    pub check: Option<Vec<RawCheck>>,
    pub capture: Option<Vec<RawCapture>>,
    /// Values of the final response added to custom metrics.
    pub metrics: Option<Vec<RawRequestMetric>>,
}

/// `group: {name, flow}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    pub flow: Vec<RawStep>,
}

/// One capture: the variable and exactly one source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    pub var: String,
    pub json: Option<String>,
    pub header: Option<String>,
    pub regex: Option<String>,
    pub cookie: Option<String>,
}

/// The capture source keys, for messages.
pub const CAPTURE_KINDS: &str = "json, header, regex, cookie";
