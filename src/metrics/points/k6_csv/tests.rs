//! k6 CSV rows: the header, tag columns, extra tags, quoting and times.

use super::*;
use crate::metrics::recorder::{Recorder, RecorderOptions};
use crate::metrics::tests::fixture::{self, HOME};

#[test]
fn header_and_rows_as_k6_writes_them() {
    let mut r = Recorder::new(&fixture::plan(), RecorderOptions::default());
    r.capture_points();
    r.record(&fixture::ok(HOME, 10));
    let points = r.take_points();
    let mut enc = K6Csv::new(TimeFormat::Unix);
    let mut out = Vec::new();
    enc.start(&mut out);
    for key in r.keys_from(0) {
        enc.add_series(key, &mut out);
    }
    enc.write(1_796_564_470_441_485_349, &points, &mut out);
    let text = String::from_utf8(out).expect("utf-8");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header.join(","),
        "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,\
         method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), points.len());
    let reqs = rows
        .iter()
        .find(|r| &r[0] == "http_reqs")
        .expect("http_reqs row");
    assert_eq!(&reqs[1], "1796564470");
    assert_eq!(&reqs[2], "1.000000");
    let col = |name: &str| header.iter().position(|h| h == name).expect("column");
    assert_eq!(&reqs[col("status")], "200");
    assert_eq!(&reqs[col("method")], "GET");
    assert_eq!(&reqs[col("expected_response")], "true");
    assert_eq!(&reqs[col("extra_tags")], "kind=page&team=a");
    assert_eq!(&reqs[col("metadata")], "");
    let duration = rows
        .iter()
        .find(|r| &r[0] == "http_req_duration")
        .expect("duration row");
    assert_eq!(&duration[2], "10.000000");
}

#[test]
fn time_formats_and_quoting() {
    let t = 1_796_564_470_441_485_349;
    let f = |s: &str| TimeFormat::parse(s).expect("known").format(t);
    assert_eq!(f("unix"), "1796564470");
    assert_eq!(f("unix_milli"), "1796564470441");
    assert_eq!(f("unix_micro"), "1796564470441485");
    assert_eq!(f("unix_nano"), "1796564470441485349");
    assert_eq!(f("rfc3339"), "2026-12-06T13:41:10Z");
    assert_eq!(f("rfc3339_nano"), "2026-12-06T13:41:10.441485349Z");
    assert_eq!(TimeFormat::parse("iso"), None);
    let q = |s: &str| {
        let mut out = Vec::new();
        cell(s, &mut out);
        String::from_utf8(out).expect("utf-8")
    };
    assert_eq!(q("plain"), "plain");
    assert_eq!(q("a,b"), "\"a,b\"");
    assert_eq!(q("say \"hi\""), "\"say \"\"hi\"\"\"");
}
