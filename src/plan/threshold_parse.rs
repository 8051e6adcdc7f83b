//! Parsing thresholds in k6 syntax into [`Threshold`]s and checking that the
//! aggregation fits the metric's type (k6 docs, "Thresholds").
//!
//! Key: `metric` or `metric{tag:value,tag2:"value, with comma"}`.
//! Expression: `<aggregation> <op> <number>` with optional whitespace:
//! `p(95)<200`, `rate < 0.01`, `count>=500`.

use std::time::Duration;

use super::threshold::{Aggregation, Op, Threshold};
use crate::catalog::{Metric, MetricKind};

/// Parses one threshold (without `abortOnFail`; the caller sets it).
/// The error text says what is wrong and what would fit.
pub fn parse_threshold(key: &str, expression: &str) -> Result<Threshold, String> {
    let (metric_name, tags) = parse_key(key)?;
    let metric = Metric::from_name(&metric_name).ok_or_else(|| {
        let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!(
            "unknown metric \"{}\" (known: {})",
            metric_name.escape_debug(),
            known.join(", ")
        )
    })?;
    let (aggregation, op, value) = parse_expression(expression)?;
    check_fits(metric, aggregation)?;
    Ok(Threshold {
        metric: metric_name,
        tags,
        key: key.trim().to_string(),
        source: expression.trim().to_string(),
        aggregation,
        op,
        value,
        abort_on_fail: false,
        delay_abort_eval: Duration::ZERO,
    })
}

type Tags = Vec<(String, String)>;

/// `name` or `name{k:v,...}`.
fn parse_key(key: &str) -> Result<(String, Tags), String> {
    let key = key.trim();
    let (name, filter) = match key.find('{') {
        Some(open) => {
            let Some(inner) = key[open + 1..].strip_suffix('}') else {
                return Err(
                    "a tag filter must end with \"}\", like http_req_duration{status:200}".into(),
                );
            };
            (key[..open].trim(), Some(inner))
        }
        None => (key, None),
    };
    if name.is_empty() {
        return Err("names no metric".into());
    }
    let tags = match filter {
        Some(inner) => parse_tag_filter(inner)?,
        None => Vec::new(),
    };
    Ok((name.to_string(), tags))
}

/// `k:v,k2:"v2"`: values may be quoted with `"` or `'` to hold `,` or `}`.
fn parse_tag_filter(inner: &str) -> Result<Tags, String> {
    let mut tags = Vec::new();
    let mut rest = inner.trim();
    if rest.is_empty() {
        return Err("has an empty tag filter \"{}\"".into());
    }
    while !rest.is_empty() {
        let Some(colon) = rest.find(':') else {
            return Err(format!(
                "tag filter \"{}\" is not tag:value",
                rest.escape_debug()
            ));
        };
        let tag = rest[..colon].trim();
        if tag.is_empty() {
            return Err("a tag filter names no tag before \":\"".into());
        }
        let after = rest[colon + 1..].trim_start();
        let (value, remainder) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &after[1..];
                let Some(close) = body.find(q) else {
                    return Err(format!(
                        "unterminated quote in tag filter value of \"{tag}\""
                    ));
                };
                (body[..close].to_string(), body[close + 1..].trim_start())
            }
            _ => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        tags.push((tag.to_string(), value));
        rest = match remainder.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if remainder.is_empty() => remainder,
            None => {
                return Err(format!(
                    "unexpected \"{}\" after the value of tag \"{tag}\"",
                    remainder.escape_debug()
                ));
            }
        };
    }
    Ok(tags)
}

const EXPRESSION: &str = "an expression like p(95)<200, rate<0.01 or count>=500";

/// `<aggregation> <op> <number>`.
fn parse_expression(expr: &str) -> Result<(Aggregation, Op, f64), String> {
    let text = expr.trim();
    let op_at = text.find(['<', '>', '=', '!']).ok_or_else(|| {
        format!("has no comparison (<, <=, >, >=, ==, !=); expected {EXPRESSION}")
    })?;
    let (lhs, rest) = text.split_at(op_at);
    // k6 also accepts `===` (the same as `==` for numbers); longest first.
    let (op, rhs) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("===", Op::Eq),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .into_iter()
    .find_map(|(sym, op)| rest.strip_prefix(sym).map(|r| (op, r)))
    .ok_or_else(|| "has an unknown comparison; expected one of <, <=, >, >=, ==, !=".to_string())?;
    let aggregation = parse_aggregation(lhs.trim())?;
    let rhs = rhs.trim();
    let value = rhs
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            format!(
                "compares with \"{}\", expected a number on the right",
                rhs.escape_debug()
            )
        })?;
    Ok((aggregation, op, value))
}

fn parse_aggregation(s: &str) -> Result<Aggregation, String> {
    Ok(match s {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "rate" => Aggregation::Rate,
        "count" => Aggregation::Count,
        "value" => Aggregation::Value,
        _ => {
            let Some(n) = s
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
            else {
                return Err(format!(
                    "unknown aggregation \"{}\"; expected avg, min, max, med, p(N), rate, count or value",
                    s.escape_debug()
                ));
            };
            match n.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Aggregation::Percentile(p),
                _ => {
                    return Err(format!(
                        "percentile \"{}\" is not a number between 0 and 100",
                        n.escape_debug()
                    ));
                }
            }
        }
    })
}

/// k6's table of aggregations per metric type.
fn check_fits(metric: Metric, aggregation: Aggregation) -> Result<(), String> {
    let (kind, fits, allowed) = match metric.kind() {
        MetricKind::Counter => (
            "counter",
            matches!(aggregation, Aggregation::Count | Aggregation::Rate),
            "count, rate",
        ),
        MetricKind::Gauge => ("gauge", matches!(aggregation, Aggregation::Value), "value"),
        MetricKind::Rate => ("rate", matches!(aggregation, Aggregation::Rate), "rate"),
        MetricKind::Trend => (
            "trend",
            matches!(
                aggregation,
                Aggregation::Avg
                    | Aggregation::Min
                    | Aggregation::Max
                    | Aggregation::Med
                    | Aggregation::Percentile(_)
            ),
            "avg, min, max, med, p(N)",
        ),
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{} is a {kind} metric; its thresholds use {allowed}",
            metric.name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k6_examples_parse() {
        let t = parse_threshold("http_req_duration", "p(95)<200").expect("parses");
        assert_eq!(t.aggregation, Aggregation::Percentile(95.0));
        assert_eq!((t.op, t.value), (Op::Lt, 200.0));
        assert!(t.tags.is_empty());
        let t = parse_threshold("http_req_failed", " rate < 0.01 ").expect("parses");
        assert_eq!(
            (t.aggregation, t.op, t.value),
            (Aggregation::Rate, Op::Lt, 0.01)
        );
        assert_eq!(t.source, "rate < 0.01");
        let t = parse_threshold("http_reqs", "count>=500").expect("parses");
        assert_eq!((t.aggregation, t.op), (Aggregation::Count, Op::Ge));
        let t = parse_threshold("vus", "value!=0").expect("parses");
        assert_eq!((t.aggregation, t.op), (Aggregation::Value, Op::Ne));
        let t = parse_threshold("iterations", "count===6").expect("k6 accepts ===");
        assert_eq!(
            (t.aggregation, t.op, t.value),
            (Aggregation::Count, Op::Eq, 6.0)
        );
        let t = parse_threshold("http_req_duration", "p( 99.9 ) == 1e3").expect("parses");
        assert_eq!(
            (t.aggregation, t.value),
            (Aggregation::Percentile(99.9), 1000.0)
        );
    }

    #[test]
    fn submetric_keys() {
        let t = parse_threshold("http_req_duration{scenario:main, status:200}", "avg<1")
            .expect("parses");
        assert_eq!(t.metric, "http_req_duration");
        assert_eq!(
            t.tags,
            vec![
                ("scenario".to_string(), "main".to_string()),
                ("status".to_string(), "200".to_string())
            ]
        );
        assert_eq!(t.key, "http_req_duration{scenario:main, status:200}");
        let t = parse_threshold("checks{check:\"a, b}\"}", "rate>0.9").expect("parses");
        assert_eq!(t.tags, vec![("check".to_string(), "a, b}".to_string())]);
        let t = parse_threshold("http_req_duration{url:http://x/y}", "avg<1").expect("parses");
        assert_eq!(t.tags, vec![("url".to_string(), "http://x/y".to_string())]);
    }

    #[test]
    fn mistakes_say_what_fits() {
        let cases = [
            (
                "http_req_durations",
                "p(95)<1",
                "unknown metric \"http_req_durations\"",
            ),
            (
                "http_req_failed",
                "p(95)<1",
                "http_req_failed is a rate metric; its thresholds use rate",
            ),
            (
                "http_reqs",
                "avg<1",
                "counter metric; its thresholds use count, rate",
            ),
            ("vus", "max<1", "gauge metric; its thresholds use value"),
            (
                "http_req_duration",
                "count<1",
                "trend metric; its thresholds use avg, min, max, med, p(N)",
            ),
            (
                "http_req_duration",
                "p(101)<1",
                "not a number between 0 and 100",
            ),
            (
                "http_req_duration",
                "p(NaN)<1",
                "not a number between 0 and 100",
            ),
            ("http_req_duration", "p95<1", "unknown aggregation \"p95\""),
            ("http_req_duration", "avg 200", "has no comparison"),
            ("http_req_duration", "avg=<200", "unknown comparison"),
            (
                "http_req_duration",
                "avg<fast",
                "expected a number on the right",
            ),
            (
                "http_req_duration",
                "avg<inf",
                "expected a number on the right",
            ),
            (
                "http_req_duration{status:200",
                "avg<1",
                "must end with \"}\"",
            ),
            ("http_req_duration{}", "avg<1", "empty tag filter"),
            ("http_req_duration{status}", "avg<1", "is not tag:value"),
            ("{a:b}", "avg<1", "names no metric"),
            ("checks{check:'x}", "rate<1", "unterminated quote"),
            ("checks{check:'x' y}", "rate<1", "unexpected \"y\""),
        ];
        for (key, expr, want) in cases {
            let err = parse_threshold(key, expr).expect_err(key);
            assert!(err.contains(want), "{key} {expr}: {err}");
        }
    }
}
