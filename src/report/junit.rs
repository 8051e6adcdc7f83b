//! `--junit FILE`: a test's thresholds and checks as JUnit XML, the
//! format CI servers (Jenkins, GitLab, GitHub Actions reporters) read:
//!
//! ```xml
//! <testsuites name="volley" tests="3" failures="1" errors="0" time="10.002">
//!   <testsuite name="thresholds" tests="2" failures="1" errors="0" skipped="0" time="10.002">
//!     <testcase name="http_req_duration - p(95)&lt;200" classname="thresholds.http_req_duration" time="0">
//!       <failure type="threshold" message="p(95)=612.31 does not meet p(95)&lt;200"/>
//!     </testcase>
//!   ...
//! ```
//!
//! A threshold is a test case named as k6's JUnit helper (jslib
//! `k6-summary`) names it, `METRIC - EXPRESSION`; a failed threshold has a
//! `failure` with the observed value. A check is a test case in the
//! `checks` suite, named by its group path and name; a check that failed
//! at least once has a `failure` saying how often. Both suites are always
//! present, empty when the test had none.

use std::fmt::Write as _;

use crate::metrics::Summary;

/// The JUnit document of `summary`.
pub fn junit_xml(summary: &Summary) -> String {
    let time = format!("{:.3}", summary.duration.as_secs_f64());
    let mut thresholds = String::new();
    let mut threshold_failures = 0;
    for t in &summary.thresholds {
        let metric = t.key.split('{').next().unwrap_or(&t.key);
        let _ = write!(
            thresholds,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
            escape(&format!("{} - {}", t.key, t.source)),
            escape(&format!("thresholds.{metric}")),
        );
        if t.ok {
            thresholds.push_str("/>\n");
            continue;
        }
        threshold_failures += 1;
        let observed = match t.observed {
            Some(v) => format!("{}={}", t.aggregation, round(v)),
            None => format!("{}: no data", t.aggregation),
        };
        let aborted = if t.aborted {
            "; it stopped the test (abortOnFail)"
        } else {
            ""
        };
        let _ = write!(
            thresholds,
            ">\n      <failure type=\"threshold\" message=\"{}\"/>\n    </testcase>\n",
            escape(&format!("{observed} does not meet {}{aborted}", t.source)),
        );
    }
    let mut checks = String::new();
    let mut check_failures = 0;
    for c in &summary.checks {
        let name = if c.group.is_empty() {
            c.name.clone()
        } else {
            format!("{} / {}", c.group, c.name)
        };
        let _ = write!(
            checks,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
            escape(&name),
            escape(&format!("checks{}", c.group.replace("::", "."))),
        );
        if c.fails == 0 {
            checks.push_str("/>\n");
            continue;
        }
        check_failures += 1;
        let total = c.passes + c.fails;
        let _ = write!(
            checks,
            ">\n      <failure type=\"check\" message=\"{}\"/>\n    </testcase>\n",
            escape(&format!("{} of {total} failed", c.fails)),
        );
    }
    let suite = |name: &str, tests: usize, failures: usize, cases: &str| {
        format!(
            "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
             skipped=\"0\" time=\"{time}\">\n{cases}  </testsuite>\n"
        )
    };
    let tests = summary.thresholds.len() + summary.checks.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"volley\" tests=\"{tests}\" failures=\"{}\" errors=\"0\" time=\"{time}\">\n\
         {}{}</testsuites>\n",
        threshold_failures + check_failures,
        suite(
            "thresholds",
            summary.thresholds.len(),
            threshold_failures,
            &thresholds
        ),
        suite("checks", summary.checks.len(), check_failures, &checks),
    )
}

/// At most six significant decimals, without trailing zeros.
fn round(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// Text for an XML attribute: markup characters as entities, and control
/// characters XML 1.0 cannot hold as spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
