//! The built-in metrics: k6's names and types, plus Volley's own few.
//!
//! Every built-in metric is listed here, once. Plans refer to metrics by
//! these names in thresholds; the summary groups them by [`Section`].
//! Scripts add their own (`k6/metrics`): [`custom`] registers one for the
//! life of the process, and [`Metric::Custom`] carries it by reference, so
//! a metric stays a small `Copy` value either way.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// k6's four metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// A sum (`count`, `rate` per second).
    Counter,
    /// A last value with its min and max.
    Gauge,
    /// A share of true samples.
    Rate,
    /// A distribution (HDR histogram).
    Trend,
}

/// What a metric's values mean, for formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// Plain numbers.
    Default,
    /// Durations, recorded in microseconds, shown and thresholded in ms.
    Time,
    /// Bytes.
    Data,
}

/// Where the summary shows a metric (k6 ≥ 1.0 layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Http,
    Execution,
    Network,
}

/// Every built-in metric, and a script's custom ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    HttpReqs,
    HttpReqDuration,
    HttpReqBlocked,
    HttpReqConnecting,
    HttpReqTlsHandshaking,
    HttpReqSending,
    HttpReqWaiting,
    HttpReqReceiving,
    HttpReqFailed,
    /// Volley: latency measured from the request's *intended* send time
    /// (open-model scenarios only), the coordinated-omission-free view that
    /// wrk2 reports next to the plain one.
    HttpReqDurationIntended,
    IterationDuration,
    Iterations,
    DroppedIterations,
    DataSent,
    DataReceived,
    Vus,
    VusMax,
    Checks,
    GroupDuration,
    /// A script's metric (`new Trend('login_time', true)`).
    Custom(&'static CustomMetric),
}

/// A custom metric: its name, type and unit, fixed once registered.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomMetric {
    pub name: &'static str,
    pub kind: MetricKind,
    pub unit: Unit,
}

/// Most custom metrics one process registers.
pub const MAX_CUSTOM: usize = 1000;

fn registry() -> &'static Mutex<HashMap<&'static str, &'static CustomMetric>> {
    static REGISTRY: OnceLock<Mutex<HashMap<&'static str, &'static CustomMetric>>> =
        OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// Registers (or finds) the custom metric `name`. k6's rules: a name of
/// letters, digits and `_` (not starting with a digit, at most 128), not a
/// built-in's, and one type per name.
pub fn custom(name: &str, kind: MetricKind, unit: Unit) -> Result<Metric, String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "invalid metric name \"{name}\": use letters, digits and _ (not first), at most 128 characters"
        ));
    }
    if Metric::ALL.iter().any(|m| m.name() == name) {
        return Err(format!(
            "\"{name}\" is a built-in metric; give the custom metric another name"
        ));
    }
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(m) = reg.get(name) {
        if m.kind != kind || m.unit != unit {
            return Err(format!(
                "metric \"{name}\" already exists as a {:?} of {:?} values",
                m.kind, m.unit
            ));
        }
        return Ok(Metric::Custom(m));
    }
    if reg.len() >= MAX_CUSTOM {
        return Err(format!(
            "too many custom metrics (at most {MAX_CUSTOM}); \"{name}\" was not created"
        ));
    }
    // Leaked on purpose: bounded by MAX_CUSTOM, and every series key of
    // the process may point at it.
    let m: &'static CustomMetric = Box::leak(Box::new(CustomMetric {
        name: Box::leak(name.to_string().into_boxed_str()),
        kind,
        unit,
    }));
    reg.insert(m.name, m);
    Ok(Metric::Custom(m))
}

impl Metric {
    /// All metrics, in summary order within each section.
    pub const ALL: [Metric; 19] = [
        Metric::HttpReqBlocked,
        Metric::HttpReqConnecting,
        Metric::HttpReqDuration,
        Metric::HttpReqDurationIntended,
        Metric::HttpReqFailed,
        Metric::HttpReqReceiving,
        Metric::HttpReqSending,
        Metric::HttpReqTlsHandshaking,
        Metric::HttpReqWaiting,
        Metric::HttpReqs,
        Metric::DroppedIterations,
        Metric::GroupDuration,
        Metric::IterationDuration,
        Metric::Iterations,
        Metric::Vus,
        Metric::VusMax,
        Metric::Checks,
        Metric::DataReceived,
        Metric::DataSent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::HttpReqs => "http_reqs",
            Metric::HttpReqDuration => "http_req_duration",
            Metric::HttpReqBlocked => "http_req_blocked",
            Metric::HttpReqConnecting => "http_req_connecting",
            Metric::HttpReqTlsHandshaking => "http_req_tls_handshaking",
            Metric::HttpReqSending => "http_req_sending",
            Metric::HttpReqWaiting => "http_req_waiting",
            Metric::HttpReqReceiving => "http_req_receiving",
            Metric::HttpReqFailed => "http_req_failed",
            Metric::HttpReqDurationIntended => "http_req_duration_intended",
            Metric::IterationDuration => "iteration_duration",
            Metric::Iterations => "iterations",
            Metric::DroppedIterations => "dropped_iterations",
            Metric::DataSent => "data_sent",
            Metric::DataReceived => "data_received",
            Metric::Vus => "vus",
            Metric::VusMax => "vus_max",
            Metric::Checks => "checks",
            Metric::GroupDuration => "group_duration",
            Metric::Custom(c) => c.name,
        }
    }

    /// A built-in metric, or a custom one registered in this process.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .or_else(|| {
                registry()
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(name)
                    .map(|c| Metric::Custom(c))
            })
    }

    /// Is this a script's metric?
    pub fn is_custom(self) -> bool {
        matches!(self, Metric::Custom(_))
    }

    pub fn kind(self) -> MetricKind {
        match self {
            Metric::HttpReqs
            | Metric::Iterations
            | Metric::DroppedIterations
            | Metric::DataSent
            | Metric::DataReceived => MetricKind::Counter,
            Metric::Vus | Metric::VusMax => MetricKind::Gauge,
            Metric::HttpReqFailed | Metric::Checks => MetricKind::Rate,
            Metric::HttpReqDuration
            | Metric::HttpReqBlocked
            | Metric::HttpReqConnecting
            | Metric::HttpReqTlsHandshaking
            | Metric::HttpReqSending
            | Metric::HttpReqWaiting
            | Metric::HttpReqReceiving
            | Metric::HttpReqDurationIntended
            | Metric::IterationDuration
            | Metric::GroupDuration => MetricKind::Trend,
            Metric::Custom(c) => c.kind,
        }
    }

    pub fn unit(self) -> Unit {
        if let Metric::Custom(c) = self {
            return c.unit;
        }
        match self.kind() {
            MetricKind::Trend => Unit::Time,
            _ if matches!(self, Metric::DataSent | Metric::DataReceived) => Unit::Data,
            _ => Unit::Default,
        }
    }

    /// Where the summary shows it; `None` for custom metrics (k6 lists
    /// them first, under CUSTOM).
    pub fn section(self) -> Option<Section> {
        Some(match self {
            Metric::Custom(_) => return None,
            Metric::DataSent | Metric::DataReceived => Section::Network,
            Metric::IterationDuration
            | Metric::Iterations
            | Metric::DroppedIterations
            | Metric::Vus
            | Metric::VusMax
            | Metric::GroupDuration
            | Metric::Checks => Section::Execution,
            _ => Section::Http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }

    #[test]
    fn k6_types() {
        assert_eq!(Metric::HttpReqs.kind(), MetricKind::Counter);
        assert_eq!(Metric::HttpReqFailed.kind(), MetricKind::Rate);
        assert_eq!(Metric::Vus.kind(), MetricKind::Gauge);
        assert_eq!(Metric::HttpReqWaiting.kind(), MetricKind::Trend);
        assert_eq!(Metric::DataSent.unit(), Unit::Data);
        assert_eq!(Metric::from_name("nope"), None);
    }

    #[test]
    fn custom_metrics_register_once_with_k6_name_rules() {
        let t = custom("catalog_test_login", MetricKind::Trend, Unit::Time).expect("valid");
        assert_eq!(t.name(), "catalog_test_login");
        assert_eq!(
            (t.kind(), t.unit(), t.section()),
            (MetricKind::Trend, Unit::Time, None)
        );
        assert_eq!(Metric::from_name("catalog_test_login"), Some(t));
        assert_eq!(
            custom("catalog_test_login", MetricKind::Trend, Unit::Time),
            Ok(t)
        );
        assert!(custom("catalog_test_login", MetricKind::Counter, Unit::Default).is_err());
        assert!(custom("http_reqs", MetricKind::Counter, Unit::Default).is_err());
        assert!(custom("9lives", MetricKind::Counter, Unit::Default).is_err());
        assert!(custom("a-b", MetricKind::Counter, Unit::Default).is_err());
    }
}
