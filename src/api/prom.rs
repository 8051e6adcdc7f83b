//! `GET /metrics`: the numbers the agent hands over ([`PromSnapshot`])
//! rendered as Prometheus text exposition format 0.0.4.
//!
//! Every family gets `# HELP` and `# TYPE` before its samples; names are
//! `volley_*` in base units (seconds); label values are escaped (`\\`,
//! `\"`, `\n`) because test ids, phases and states come from outside.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// The test this agent is generating load for, if any.
    pub current_test: Option<CurrentTest>,
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

/// This agent's numbers for the test it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentTest {
    pub id: String,
    pub rps: f64,
    pub vus: u64,
    pub requests: u64,
    pub failed: u64,
    pub p95_ms: f64,
}

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
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

        self.render_current_test(&mut out);
        out
    }

    /// The `volley_test_*` families: declared always, with one sample each
    /// while a test runs.
    fn render_current_test(&self, out: &mut String) {
        let test = self.current_test.as_ref();
        let label = test.map(|t| [("test", t.id.as_str())]);
        let labels: &[(&str, &str)] = label.as_ref().map_or(&[], |l| l.as_slice());
        let families: [(&'static str, Kind, &str, Option<f64>); 5] = [
            (
                "volley_test_requests_per_second",
                Kind::Gauge,
                "This agent's HTTP request rate in the current test.",
                test.map(|t| t.rps),
            ),
            (
                "volley_test_vus",
                Kind::Gauge,
                "Virtual users this agent runs in the current test.",
                test.map(|t| t.vus as f64),
            ),
            (
                "volley_test_http_requests_total",
                Kind::Counter,
                "HTTP requests this agent sent in the current test.",
                test.map(|t| t.requests as f64),
            ),
            (
                "volley_test_http_requests_failed_total",
                Kind::Counter,
                "HTTP requests of the current test that failed (http_req_failed).",
                test.map(|t| t.failed as f64),
            ),
            (
                "volley_test_http_req_duration_p95_seconds",
                Kind::Gauge,
                "p(95) of this agent's http_req_duration in the current test.",
                test.map(|t| t.p95_ms / 1000.0),
            ),
        ];
        for (name, kind, help, value) in families {
            let mut family = Family::start(out, name, kind, help);
            if let Some(value) = value {
                family.sample(labels, value);
            }
        }
    }
}

// === impl Family ===

impl<'a> Family<'a> {
    fn start(out: &'a mut String, name: &'static str, kind: Kind, help: &str) -> Self {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
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
        self.out.push_str(self.name);
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
mod tests {
    use super::*;

    fn snapshot() -> PromSnapshot {
        PromSnapshot {
            members_live: 3,
            members_dead: 1,
            tests_by_phase: BTreeMap::from([("passed".into(), 2), ("running".into(), 1)]),
            current_test: Some(CurrentTest {
                id: "t-\"1\"\\\n".into(),
                rps: 1500.5,
                vus: 40,
                requests: 90_000,
                failed: 12,
                p95_ms: 250.0,
            }),
            agent_state: "busy".into(),
            capacity: 2.0,
            uptime: Duration::from_millis(61_500),
            version: "0.1.0".into(),
            gossip_rejected: BTreeMap::from([
                ("bad_tag".into(), 7),
                ("malformed".into(), 3),
                ("stale".into(), 0),
            ]),
            gossip_accepted: 42,
            gossip_send_failed: 1,
            identity_mismatches: 2,
        }
    }

    #[test]
    fn renders_every_family_with_help_and_type_first() {
        let text = snapshot().render();
        for line in [
            "volley_build_info{version=\"0.1.0\"} 1",
            "volley_uptime_seconds 61.5",
            "volley_agent_state{state=\"busy\"} 1",
            "volley_agent_capacity 2",
            "volley_members{liveness=\"live\"} 3",
            "volley_members{liveness=\"dead\"} 1",
            "volley_tests{phase=\"passed\"} 2",
            "volley_tests{phase=\"running\"} 1",
            "# TYPE volley_gossip_rejected_packets_total counter",
            "volley_gossip_rejected_packets_total{reason=\"bad_tag\"} 7",
            "volley_gossip_rejected_packets_total{reason=\"malformed\"} 3",
            "volley_gossip_rejected_packets_total{reason=\"stale\"} 0",
            "volley_gossip_accepted_packets_total 42",
            "volley_gossip_send_failures_total 1",
            "volley_gossip_identity_mismatches_total 2",
            "# TYPE volley_test_http_requests_total counter",
            "volley_test_http_req_duration_p95_seconds{test=\"t-\\\"1\\\"\\\\\\n\"} 0.25",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample's family was declared just before.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().expect("name").to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().expect("name");
                assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
            }
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn idle_agent_declares_test_families_without_samples() {
        let idle = PromSnapshot {
            current_test: None,
            tests_by_phase: BTreeMap::new(),
            ..snapshot()
        };
        let text = idle.render();
        assert!(text.contains("# TYPE volley_test_vus gauge"));
        assert!(
            !text.lines().any(|l| l.starts_with("volley_test_")),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("volley_tests{")),
            "{text}"
        );
    }

    #[test]
    fn special_values_use_prometheus_spelling() {
        let mut out = String::new();
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, 1e21] {
            push_value(&mut out, value);
            out.push(' ');
        }
        assert_eq!(out, "NaN +Inf -Inf -0.5 1000000000000000000000 ");
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        let mut out = String::new();
        escape_help(&mut out, "a\\b\n\"c\"");
        assert_eq!(out, "a\\\\b\\n\"c\"");
    }
}
