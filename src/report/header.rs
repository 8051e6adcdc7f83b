//! What a run will do, printed before it starts, in k6's layout:
//!
//! ```text
//!      execution: local
//!         script: plan.yaml
//!         output: json (out.json)
//!
//!      scenarios: (100.00%) 1 scenario, 200 max VUs, 3m30s max duration (incl. graceful stop):
//!               * default: 200 looping VUs for 3m0s (gracefulStop: 30s)
//! ```
//!
//! Durations are written as k6 (Go) writes them (`3m0s`, `1m30s`, `500ms`),
//! and each executor is described with k6's words, so a reader of either
//! tool's logs sees the same thing.

use crate::plan::format_go_duration as go_duration;
use std::fmt::Write as _;
use std::time::Duration;

use super::ansi::Paint;
use crate::plan::{Executor, Plan, Scenario};

/// What the header says besides the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderInfo {
    /// `local` (or where the run goes).
    pub execution: String,
    /// The plan file, script or URL as given.
    pub source: String,
    /// Extra outputs (`json (out.json)`); empty prints `-`.
    pub outputs: Vec<String>,
    /// This instance's share of the test (the execution segment), 0..=1.
    pub share: f64,
}

/// The header block, ending with an empty line.
pub fn header(plan: &Plan, info: &HeaderInfo, color: bool) -> String {
    let paint = Paint::new(color);
    let value = |s: &str| paint.cyan(s);
    let mut out = String::new();
    let outputs = if info.outputs.is_empty() {
        "-".to_owned()
    } else {
        info.outputs.join(", ")
    };
    let _ = writeln!(out, "     execution: {}", value(&info.execution));
    let _ = writeln!(out, "        script: {}", value(&info.source));
    let _ = writeln!(out, "        output: {}\n", value(&outputs));
    let count = match plan.scenarios.len() {
        1 => "1 scenario".to_owned(),
        n => format!("{n} scenarios"),
    };
    let summary = format!(
        "({:.2}%) {count}, {} max VUs, {} max duration (incl. graceful stop):",
        info.share * 100.0,
        max_concurrent_vus(plan),
        go_duration(round_to_tenth(plan.max_duration())),
    );
    let _ = writeln!(out, "     scenarios: {}", value(&summary));
    // k6's order: by start time, then by name.
    let mut scenarios: Vec<&Scenario> = plan.scenarios.iter().collect();
    scenarios.sort_by(|a, b| (a.start_time, &a.name).cmp(&(b.start_time, &b.name)));
    for s in scenarios {
        let _ = writeln!(out, "              * {}: {}", s.name, describe(s));
    }
    out
}

/// k6's description of a scenario's executor and limits.
pub fn describe(s: &Scenario) -> String {
    let d = go_duration;
    let mut limits = Vec::new();
    if !s.start_time.is_zero() {
        limits.push(format!("startTime: {}", d(s.start_time)));
    }
    let text = match &s.executor {
        Executor::ConstantVus { vus, duration } => {
            format!("{vus} looping VUs for {}", d(*duration))
        }
        Executor::RampingVus {
            start_vus,
            stages,
            graceful_ramp_down,
        } => {
            let most = stages.iter().map(|st| st.target).fold(*start_vus, u64::max);
            limits.push(format!("gracefulRampDown: {}", d(*graceful_ramp_down)));
            format!(
                "Up to {most} looping VUs for {} over {} stages",
                d(s.executor.duration()),
                stages.len()
            )
        }
        Executor::PerVuIterations {
            vus,
            iterations,
            max_duration,
        } => {
            limits.push(format!("maxDuration: {}", d(*max_duration)));
            format!("{iterations} iterations for each of {vus} VUs")
        }
        Executor::SharedIterations {
            vus,
            iterations,
            max_duration,
        } => {
            limits.push(format!("maxDuration: {}", d(*max_duration)));
            format!("{iterations} iterations shared among {vus} VUs")
        }
        Executor::ConstantArrivalRate {
            rate,
            time_unit,
            duration,
            pre_allocated_vus,
            max_vus,
        } => {
            limits.push(format!("maxVUs: {pre_allocated_vus}-{max_vus}"));
            format!(
                "{:.2} iterations/s for {}",
                per_second(*rate, *time_unit),
                d(*duration)
            )
        }
        Executor::RampingArrivalRate {
            start_rate,
            time_unit,
            stages,
            pre_allocated_vus,
            max_vus,
        } => {
            let most = stages
                .iter()
                .map(|st| st.target)
                .fold(*start_rate, u64::max);
            limits.push(format!("maxVUs: {pre_allocated_vus}-{max_vus}"));
            format!(
                "Up to {:.2} iterations/s for {} over {} stages",
                per_second(most, *time_unit),
                d(s.executor.duration()),
                stages.len()
            )
        }
    };
    limits.push(format!("gracefulStop: {}", d(s.graceful_stop)));
    format!("{text} ({})", limits.join(", "))
}

fn per_second(rate: u64, unit: Duration) -> f64 {
    if unit.is_zero() {
        0.0
    } else {
        rate as f64 / unit.as_secs_f64()
    }
}

/// The most VUs that can be allocated at one time: scenarios that overlap
/// (by `startTime` and their longest end) add up.
fn max_concurrent_vus(plan: &Plan) -> u64 {
    plan.scenarios
        .iter()
        .map(|at| {
            plan.scenarios
                .iter()
                .filter(|s| s.start_time <= at.start_time && at.start_time < s.max_end())
                .map(|s| s.executor.max_vus())
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
}

fn round_to_tenth(d: Duration) -> Duration {
    let tenths = (d.as_millis() + 50) / 100;
    Duration::from_millis(u64::try_from(tenths * 100).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{self, Format, FsFiles, LoadOptions};

    fn plan_of(yaml: &str) -> Plan {
        plan::parse(yaml, Format::Yaml, &LoadOptions::default(), &FsFiles)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(ms(500)), "500ms");
        assert_eq!(go_duration(ms(1_500)), "1.5s");
        assert_eq!(go_duration(ms(30_000)), "30s");
        assert_eq!(go_duration(ms(180_000)), "3m0s");
        assert_eq!(go_duration(ms(90_000)), "1m30s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
    }

    #[test]
    fn header_reads_like_k6s() {
        let plan = plan_of(
            "scenarios:\n  default:\n    executor: constant-vus\n    vus: 200\n    duration: 3m\n    \
             flow:\n      - request:\n          url: http://127.0.0.1/\n",
        );
        let info = HeaderInfo {
            execution: "local".into(),
            source: "plan.yaml".into(),
            outputs: vec![],
            share: 1.0,
        };
        assert_eq!(
            header(&plan, &info, false),
            "     execution: local\n        script: plan.yaml\n        output: -\n\n     \
             scenarios: (100.00%) 1 scenario, 200 max VUs, 3m30s max duration (incl. graceful stop):\n              \
             * default: 200 looping VUs for 3m0s (gracefulStop: 30s)\n"
        );
    }

    #[test]
    fn every_executor_is_described() {
        let plan = plan_of(
            "scenarios:\n\
             \x20 ramp:\n    executor: ramping-vus\n    stages:\n      - {duration: 10s, target: 20}\n      - {duration: 20s, target: 5}\n    flow: [{request: {url: http://h/}}]\n\
             \x20 each:\n    executor: per-vu-iterations\n    vus: 3\n    iterations: 4\n    flow: [{request: {url: http://h/}}]\n\
             \x20 shared:\n    executor: shared-iterations\n    vus: 2\n    iterations: 10\n    startTime: 5s\n    flow: [{request: {url: http://h/}}]\n\
             \x20 rate:\n    executor: constant-arrival-rate\n    rate: 30\n    timeUnit: 1m\n    duration: 1m\n    preAllocatedVUs: 5\n    maxVUs: 9\n    flow: [{request: {url: http://h/}}]\n\
             \x20 ramprate:\n    executor: ramping-arrival-rate\n    startRate: 1\n    stages: [{duration: 30s, target: 50}]\n    preAllocatedVUs: 2\n    maxVUs: 4\n    flow: [{request: {url: http://h/}}]\n",
        );
        let described: Vec<String> = plan.scenarios.iter().map(describe).collect();
        let expect = [
            "Up to 20 looping VUs for 30s over 2 stages (gracefulRampDown: 30s, gracefulStop: 30s)",
            "4 iterations for each of 3 VUs (maxDuration: 10m0s, gracefulStop: 30s)",
            "10 iterations shared among 2 VUs (startTime: 5s, maxDuration: 10m0s, gracefulStop: 30s)",
            "0.50 iterations/s for 1m0s (maxVUs: 5-9, gracefulStop: 30s)",
            "Up to 50.00 iterations/s for 30s over 1 stages (maxVUs: 2-4, gracefulStop: 30s)",
        ];
        for e in expect {
            assert!(
                described.iter().any(|d| d == e),
                "{e:?} not in {described:#?}"
            );
        }
    }

    #[test]
    fn overlapping_scenarios_add_their_vus() {
        let plan = plan_of(
            "scenarios:\n\
             \x20 a:\n    executor: constant-vus\n    vus: 10\n    duration: 10s\n    flow: [{request: {url: http://h/}}]\n\
             \x20 b:\n    executor: constant-vus\n    vus: 5\n    duration: 10s\n    startTime: 5s\n    flow: [{request: {url: http://h/}}]\n\
             \x20 c:\n    executor: constant-vus\n    vus: 7\n    duration: 10s\n    startTime: 2m\n    flow: [{request: {url: http://h/}}]\n",
        );
        assert_eq!(max_concurrent_vus(&plan), 15);
    }
}
