//! The built-in metrics: k6's names and types, plus Volley's own few.
//!
//! Every metric Volley records is listed here, once. Plans refer to metrics
//! by these names in thresholds; the summary groups them by [`Section`].

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Every built-in metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
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
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
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
        }
    }

    pub fn unit(self) -> Unit {
        match self.kind() {
            MetricKind::Trend => Unit::Time,
            _ if matches!(self, Metric::DataSent | Metric::DataReceived) => Unit::Data,
            _ => Unit::Default,
        }
    }

    pub fn section(self) -> Section {
        match self {
            Metric::DataSent | Metric::DataReceived => Section::Network,
            Metric::IterationDuration
            | Metric::Iterations
            | Metric::DroppedIterations
            | Metric::Vus
            | Metric::VusMax
            | Metric::GroupDuration
            | Metric::Checks => Section::Execution,
            _ => Section::Http,
        }
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
}
