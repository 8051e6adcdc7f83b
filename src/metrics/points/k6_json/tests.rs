//! k6 JSON lines: k6 1.1's key order, declarations before points, values
//! in k6's units.

use std::time::Duration;

use super::*;
use crate::metrics::recorder::{Recorder, RecorderOptions};
use crate::metrics::sample::Sample;
use crate::metrics::tests::fixture::{self, CHECK_MAIN_OK, HOME};
use crate::plan::threshold::{Aggregation, Op};

fn encode(thresholds: &[Threshold], samples: &[Sample]) -> Vec<String> {
    let mut r = Recorder::new(&fixture::plan(), RecorderOptions::default());
    r.capture_points();
    r.record_all(samples);
    let points = r.take_points();
    let mut enc = K6Json::new(thresholds);
    let mut out = Vec::new();
    enc.start(&mut out);
    for key in r.keys_from(0) {
        enc.add_series(key, &mut out);
    }
    enc.write(1_796_564_470_441_485_349, &points, &mut out);
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn declarations_come_first_in_k6_key_order() {
    let lines = encode(&[], &[fixture::ok(HOME, 10)]);
    assert_eq!(
        lines[0],
        r#"{"type":"Metric","data":{"name":"http_reqs","type":"counter","contains":"default","thresholds":[],"submetrics":null},"metric":"http_reqs"}"#
    );
    let reqs = lines
        .iter()
        .find(|l| l.starts_with(r#"{"metric":"http_reqs","type":"Point""#))
        .expect("an http_reqs point");
    assert!(
        reqs.starts_with(
            r#"{"metric":"http_reqs","type":"Point","data":{"time":"2026-12-06T13:41:10.441485349Z","value":1,"tags":{"#
        ),
        "{reqs}"
    );
    let v: Json = serde_json::from_str(reqs).expect("json");
    assert_eq!(v["data"]["tags"]["status"], "200");
    assert_eq!(v["data"]["tags"]["group"], "");
    let duration = lines
        .iter()
        .find(|l| l.contains(r#""metric":"http_req_duration","type":"Point""#))
        .expect("a duration point");
    let v: Json = serde_json::from_str(duration).expect("json");
    assert_eq!(v["data"]["value"], 10);
    // Every line is JSON, every point's metric declared before it.
    let mut declared = HashSet::new();
    for l in &lines {
        let v: Json = serde_json::from_str(l).expect("json line");
        let metric = v["metric"].as_str().expect("metric").to_owned();
        match v["type"].as_str() {
            Some("Metric") => assert!(declared.insert(metric)),
            Some("Point") => assert!(declared.contains(&metric), "{l}"),
            other => panic!("type {other:?}"),
        }
    }
}

#[test]
fn thresholds_and_submetrics_are_declared_as_k6_does() {
    let mut abort = fixture::threshold("checks", &[], Aggregation::Rate, Op::Gt, 0.5);
    abort.abort_on_fail = true;
    let mut delayed = fixture::threshold("http_req_failed", &[], Aggregation::Rate, Op::Lt, 0.1);
    delayed.abort_on_fail = true;
    delayed.delay_abort_eval = Duration::from_secs(90);
    let thresholds = vec![
        fixture::threshold(
            "http_req_duration",
            &[],
            Aggregation::Percentile(95.0),
            Op::Lt,
            500.0,
        ),
        fixture::threshold(
            "http_req_duration",
            &[("status", "200")],
            Aggregation::Percentile(99.0),
            Op::Lt,
            900.0,
        ),
        abort,
        delayed,
    ];
    let enc = K6Json::new(&thresholds);
    assert_eq!(
        enc.declaration(Metric::HttpReqDuration),
        concat!(
            r#"{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time","thresholds":["p(95)<500"],"#,
            r#""submetrics":[{"name":"http_req_duration{status:200}","suffix":"status:200","tags":{"status":"200"}},"#,
            r#"{"name":"http_req_duration{expected_response:true}","suffix":"expected_response:true","tags":{"expected_response":"true"}}]},"metric":"http_req_duration"}"#,
            "\n"
        )
    );
    assert!(enc.declaration(Metric::Checks).contains(
        r#""thresholds":[{"threshold":"rate>0.5","abortOnFail":true,"delayAbortEval":null}]"#
    ));
    assert!(enc.declaration(Metric::HttpReqFailed).contains(
        r#""thresholds":[{"threshold":"rate<0.1","abortOnFail":true,"delayAbortEval":"1m30s"}]"#
    ));
    assert!(
        enc.declaration(Metric::DataSent)
            .contains(r#""type":"counter","contains":"data""#)
    );
}

#[test]
fn rates_and_gauges_are_points_too() {
    let lines = encode(
        &[],
        &[
            Sample::Check {
                check: CHECK_MAIN_OK,
                ok: false,
            },
            Sample::Vus { active: 3, max: 5 },
        ],
    );
    let point = |metric: &str| -> Json {
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!(r#"{{"metric":"{metric}","type":"Point""#)))
            .unwrap_or_else(|| panic!("{metric} point"));
        serde_json::from_str(l).expect("json")
    };
    assert_eq!(point("checks")["data"]["value"], 0);
    assert_eq!(point("vus")["data"]["value"], 3);
    assert_eq!(point("vus")["data"]["tags"], serde_json::json!({}));
    assert_eq!(point("vus_max")["data"]["value"], 5);
}

#[test]
fn go_durations() {
    assert_eq!(
        crate::plan::format_go_duration(Duration::from_millis(250)),
        "250ms"
    );
    assert_eq!(
        crate::plan::format_go_duration(Duration::from_secs(10)),
        "10s"
    );
    assert_eq!(
        crate::plan::format_go_duration(Duration::from_millis(1500)),
        "1.5s"
    );
    assert_eq!(
        crate::plan::format_go_duration(Duration::from_secs(3700)),
        "1h1m40s"
    );
}
