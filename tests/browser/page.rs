//! What the page tests ask of a page and a server: a `file://` URL, a
//! one-shot HTTP/1.1 request, and the report's structure and numbers
//! against a run's summary export.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::CHARTS;
use super::chromium::attr;

pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// A one-shot HTTP/1.1 request: status line, headers (lower-case names)
/// and body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut tcp = TcpStream::connect(addr).expect("connects");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    )
    .expect("request sent");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).expect("answer read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The `data-value` of a metric's statistic in the report's metric table.
pub fn stat(dom: &str, metric: &str, name: &str) -> f64 {
    let row_at = dom
        .find(&format!("data-metric=\"{metric}\""))
        .unwrap_or_else(|| panic!("no row for {metric}"));
    let row = &dom[row_at..];
    let row = &row[..row.find("</tr>").expect("the row ends")];
    attr(row, &format!("data-stat=\"{name}\""), "data-value")
        .unwrap_or_else(|| panic!("{metric} has no {name}"))
        .parse()
        .expect("a number")
}

fn number(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// The page parts every report shows, numbers against the summary export.
pub fn assert_report_matches(dom: &str, export: &serde_json::Value) {
    for section in [
        "charts",
        "thresholds",
        "checks",
        "scenarios",
        "errors",
        "metrics",
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{section}\"")),
            "section {section}"
        );
    }
    let metrics = &export["metrics"];
    assert_eq!(
        stat(dom, "http_reqs", "count"),
        number(&metrics["http_reqs"]["count"])
    );
    assert_eq!(
        stat(dom, "checks", "passes"),
        number(&metrics["checks"]["passes"])
    );
    assert_eq!(
        stat(dom, "checks", "fails"),
        number(&metrics["checks"]["fails"])
    );
    assert_eq!(
        stat(dom, "iterations", "count"),
        number(&metrics["iterations"]["count"])
    );
    let p95 = stat(dom, "http_req_duration", "p(95)");
    assert!(
        (p95 - number(&metrics["http_req_duration"]["p(95)"])).abs() < 1e-9,
        "p(95) {p95} against {}",
        metrics["http_req_duration"]["p(95)"]
    );
    for chart in CHARTS {
        let points: usize = attr(dom, &format!("id=\"{chart}\""), "data-points")
            .unwrap_or_else(|| panic!("{chart} was not drawn"))
            .parse()
            .expect("a count");
        assert!(points >= 2, "{chart}: {points} points");
    }
}
