//! `GET /metrics`: the numbers the agent hands over ([`PromSnapshot`])
//! rendered as Prometheus text exposition format 0.0.4.
//!
//! Every family gets `# HELP` and `# TYPE` before its samples; names are
//! `volley_*` in base units (seconds, bytes), counters end in `_total`;
//! label values are escaped (`\\`, `\"`, `\n`) because test ids, phases,
//! states and scenario names come from outside.
//!
//! An agent exports its own share of a test, labelled by test id and
//! scenario: counters, and the request latency as a histogram
//! (`volley_test_http_req_duration_seconds_bucket{le=…}`) whose buckets
//! come from the share's HDR histogram, so that Prometheus can add every
//! agent's buckets and read fleet-wide quantiles. No quantile is exported
//! as a gauge: quantiles of several agents cannot be combined. Beside it,
//! the generator's own load: its CPU time, the CPUs it may use and its
//! scheduling lag (a probe that asks to wake every 20 ms).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics::exposition::Buckets;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the agent reports for `/metrics`; the API renders the text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromSnapshot {
    /// Members gossip considers alive (this agent included).
    pub members_live: u64,
    /// Members gossip declared dead but still remembers.
    pub members_dead: u64,
    /// Tests this agent knows of, by phase (`running`, `passed`, ...).
    pub tests_by_phase: BTreeMap<String, u64>,
    /// This agent's share of its latest test, if it ran one.
    #[serde(default)]
    pub share: Option<ShareFigures>,
    /// The generator's own load.
    #[serde(default)]
    pub generator: GeneratorFigures,
    /// This agent's state (`ready`, `busy`, `draining`, ...).
    pub agent_state: String,
    /// This agent's capacity weight.
    pub capacity: f64,
    /// Time since the agent started.
    pub uptime: Duration,
    /// Build version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// Gossip datagrams dropped before chitchat saw them, by reason
    /// (`malformed`, `bad_tag`, `stale`).
    #[serde(default)]
    pub gossip_rejected: BTreeMap<String, u64>,
    /// Authenticated gossip datagrams handed to chitchat.
    #[serde(default)]
    pub gossip_accepted: u64,
    /// Gossip datagrams this agent could not send.
    #[serde(default)]
    pub gossip_send_failed: u64,
    /// Gossip incarnations whose QUIC certificate named another node.
    #[serde(default)]
    pub identity_mismatches: u64,
}

/// This agent's own share of a test, since the share started (kept after
/// the test ends until the next one starts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareFigures {
    pub test_id: String,
    pub running: bool,
    /// VUs at work now.
    pub vus: u64,
    pub scenarios: Vec<ScenarioFigures>,
}

/// One scenario of a share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioFigures {
    pub scenario: String,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub data_sent: u64,
    pub data_received: u64,
    /// `http_req_duration` in buckets.
    pub duration: Buckets,
}

/// Whether the generator itself is the bottleneck.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorFigures {
    /// CPU time of the process so far; `None` where it cannot be read.
    pub cpu_seconds: Option<f64>,
    /// CPUs the process may use (affinity and cgroup quota).
    pub cpus: f64,
    /// How late the lag probe woke up.
    pub lag: Buckets,
}

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// Appends one metric family: HELP, TYPE, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

// === impl PromSnapshot ===

impl PromSnapshot {
    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);

        Family::start(
            &mut out,
            "volley_build_info",
            Kind::Gauge,
            "Always 1; the version label tells which Volley build serves.",
        )
        .sample(&[("version", &self.version)], 1.0);

        Family::start(
            &mut out,
            "volley_uptime_seconds",
            Kind::Gauge,
            "Seconds since this agent started.",
        )
        .sample(&[], self.uptime.as_secs_f64());

        Family::start(
            &mut out,
            "volley_agent_state",
            Kind::Gauge,
            "1 for this agent's current state.",
        )
        .sample(&[("state", &self.agent_state)], 1.0);

        Family::start(
            &mut out,
            "volley_agent_capacity",
            Kind::Gauge,
            "This agent's capacity weight: its share of every test is proportional to it.",
        )
        .sample(&[], self.capacity);

        let mut members = Family::start(
            &mut out,
            "volley_members",
            Kind::Gauge,
            "Fleet members this agent knows, by liveness.",
        );
        members.sample(&[("liveness", "live")], self.members_live as f64);
        members.sample(&[("liveness", "dead")], self.members_dead as f64);

        let mut tests = Family::start(
            &mut out,
            "volley_tests",
            Kind::Gauge,
            "Tests this agent knows, by phase.",
        );
        for (phase, count) in &self.tests_by_phase {
            tests.sample(&[("phase", phase)], *count as f64);
        }

        let mut rejected = Family::start(
            &mut out,
            "volley_gossip_rejected_packets_total",
            Kind::Counter,
            "Gossip datagrams dropped before chitchat saw them, by reason: malformed (not a Volley gossip datagram), bad_tag (another fleet's key or tampered), stale (outside the replay window).",
        );
        for (reason, count) in &self.gossip_rejected {
            rejected.sample(&[("reason", reason)], *count as f64);
        }
        Family::start(
            &mut out,
            "volley_gossip_accepted_packets_total",
            Kind::Counter,
            "Authenticated gossip datagrams handed to chitchat.",
        )
        .sample(&[], self.gossip_accepted as f64);
        Family::start(
            &mut out,
            "volley_gossip_send_failures_total",
            Kind::Counter,
            "Gossip datagrams this agent could not send (too large once authenticated, or a socket error).",
        )
        .sample(&[], self.gossip_send_failed as f64);
        Family::start(
            &mut out,
            "volley_gossip_identity_mismatches_total",
            Kind::Counter,
            "Gossip incarnations whose QUIC endpoint presented another node's certificate (impostors).",
        )
        .sample(&[], self.identity_mismatches as f64);

        self.render_generator(&mut out);
        self.render_share(&mut out);
        out
    }

    /// CPU time, CPUs and scheduling lag: `rate(volley_process_cpu_seconds_total[1m])
    /// / volley_cpus_available` is the share of its CPUs the generator used.
    fn render_generator(&self, out: &mut String) {
        let g = &self.generator;
        let mut cpu = Family::start(
            out,
            "volley_process_cpu_seconds_total",
            Kind::Counter,
            "CPU time this agent's process has used.",
        );
        if let Some(secs) = g.cpu_seconds {
            cpu.sample(&[], secs);
        }
        Family::start(
            out,
            "volley_cpus_available",
            Kind::Gauge,
            "CPUs this agent may use (affinity and cgroup quota); divide the CPU time's rate by it for the share used.",
        )
        .sample(&[], g.cpus);
        Family::start(
            out,
            "volley_scheduler_lag_seconds",
            Kind::Histogram,
            "How late a probe that asks to wake every 20 ms woke up: how long ready work waits for a thread. A 99th percentile of 10 ms or more means the generator distorts latencies.",
        )
        .histogram(&[], &g.lag);
    }

    /// The `volley_test_*` families: declared always, with samples once
    /// this agent ran a share.
    fn render_share(&self, out: &mut String) {
        let share = self.share.as_ref();
        let test = share.map(|s| [("test", s.test_id.as_str())]);
        let test: &[(&str, &str)] = test.as_ref().map_or(&[], |l| l.as_slice());
        let scenarios = share.map_or(&[][..], |s| s.scenarios.as_slice());
        let mut running = Family::start(
            out,
            "volley_test_running",
            Kind::Gauge,
            "1 while this agent runs its share of the test, 0 once it ended.",
        );
        if let Some(s) = share {
            running.sample(test, if s.running { 1.0 } else { 0.0 });
        }
        let mut vus = Family::start(
            out,
            "volley_test_vus",
            Kind::Gauge,
            "Virtual users this agent runs in the test now.",
        );
        if let Some(s) = share {
            vus.sample(test, s.vus as f64);
        }
        type Get = fn(&ScenarioFigures) -> u64;
        let counters: [(&'static str, &str, Get); 5] = [
            (
                "volley_test_http_requests_total",
                "HTTP requests this agent sent in the test, by scenario.",
                |s| s.requests,
            ),
            (
                "volley_test_http_requests_failed_total",
                "HTTP requests of the test that failed (http_req_failed), by scenario.",
                |s| s.failed,
            ),
            (
                "volley_test_iterations_total",
                "Iterations this agent completed in the test, by scenario.",
                |s| s.iterations,
            ),
            (
                "volley_test_data_sent_bytes_total",
                "Bytes this agent sent in the test, by scenario.",
                |s| s.data_sent,
            ),
            (
                "volley_test_data_received_bytes_total",
                "Bytes this agent received in the test, by scenario.",
                |s| s.data_received,
            ),
        ];
        for (name, help, get) in counters {
            let mut family = Family::start(out, name, Kind::Counter, help);
            for s in scenarios {
                family.sample(&[test[0], ("scenario", &s.scenario)], get(s) as f64);
            }
        }
        let mut duration = Family::start(
            out,
            "volley_test_http_req_duration_seconds",
            Kind::Histogram,
            "http_req_duration of this agent's requests in the test, by scenario; buckets from its HDR histogram (sum them over agents for fleet-wide quantiles).",
        );
        for s in scenarios {
            duration.histogram(&[test[0], ("scenario", &s.scenario)], &s.duration);
        }
    }
}

// === impl Family ===

impl<'a> Family<'a> {
    fn start(out: &'a mut String, name: &'static str, kind: Kind, help: &str) -> Self {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        };
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_help(out, help);
        out.push('\n');
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Self { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.sample_named("", labels, value);
    }

    /// A histogram's `_bucket` (with `le`, `+Inf` last), `_sum` and
    /// `_count` samples.
    fn histogram(&mut self, labels: &[(&str, &str)], b: &Buckets) {
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let les: Vec<String> = b
            .bounds
            .iter()
            .map(|x| {
                let mut s = String::new();
                push_value(&mut s, *x);
                s
            })
            .collect();
        for (le, n) in les.iter().zip(&b.cumulative) {
            with_le.push(("le", le));
            self.sample_named("_bucket", &with_le, *n as f64);
            with_le.pop();
        }
        with_le.push(("le", "+Inf"));
        self.sample_named("_bucket", &with_le, b.count as f64);
        self.sample_named("_sum", labels, b.sum_seconds);
        self.sample_named("_count", labels, b.count as f64);
    }

    fn sample_named(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(self.name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(key);
                self.out.push_str("=\"");
                escape_label_value(self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(self.out, value);
        self.out.push('\n');
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes backslash and line feed.
fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Sample values as Prometheus parses them: `NaN`, `+Inf`, `-Inf`, or a
/// plain decimal.
fn push_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests;
