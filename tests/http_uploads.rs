//! `multipart:` bodies in YAML plans, checked by an independent parser:
//! Python's own MIME parser (`tests/fixtures/multipart_checker.py`) reads
//! every upload and answers with the parts it found. Files with every byte
//! value (CR, LF and boundary-like lines included) must arrive intact,
//! fields must render per VU, and Volley's body must parse exactly as the
//! one real k6 1.1.0 sends for the same fields and files (as a set of parts:
//! k6 orders them as Go iterates a map, differently per request; Volley
//! sorts them by name).

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use common::servers::{MultipartChecker, multipart_checker};
use common::{check_counts, plan_in, run};

/// A binary file with every byte value, line ends and a boundary-like line.
fn photo() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.extend_from_slice(b"\r\n--not-a-boundary\r\n\r\n--\r\n\n\r");
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    bytes
}

const NOTES: &[u8] = "notes: é, ü, 中文\nsecond line\n".as_bytes();

fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn write_files(dir: &Path) {
    std::fs::create_dir_all(dir.join("files")).expect("a files directory");
    std::fs::write(dir.join("files/photo.bin"), photo()).expect("photo written");
    std::fs::write(dir.join("files/notes.txt"), NOTES).expect("notes written");
}

/// The parts the checker must report for the plan's static fields.
fn expected_parts() -> Value {
    json!([
        {"name": "notes", "filename": "notes.txt", "contentType": "application/octet-stream",
         "size": NOTES.len(), "sha256": sha256(NOTES), "text": null},
        {"name": "photo", "filename": "photo.png", "contentType": "image/png",
         "size": photo().len(), "sha256": sha256(&photo()), "text": null},
        {"name": "title", "filename": null, "contentType": null,
         "size": 9, "sha256": sha256(b"Q3 report"), "text": "Q3 report"},
    ])
}

fn upload_plan(checker: &MultipartChecker, extra_field: &str, flow_head: &str) -> String {
    format!(
        r#"
{flow_head}
flow:
  - post:
      url: "{url}/upload"
      multipart:
        title: Q3 report
        photo: {{file: files/photo.bin, filename: photo.png, contentType: image/png}}
        notes: {{file: ./files/notes.txt}}
{extra_field}
      check:
        - {{status: 200}}
        - {{json: {{pointer: /closed, equals: true}}, name: closing boundary}}
        - {{json: {{pointer: /defects, equals: 0}}, name: no defects}}
        - {{json: {{pointer: /parts/1/sha256, equals: "{photo_sha}"}}, name: photo intact}}
"#,
        url = checker.url(),
        photo_sha = sha256(&photo()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_fields_arrive_intact_and_fields_render_per_vu() {
    let checker = multipart_checker().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_files(dir.path());
    let yaml = upload_plan(
        &checker,
        "        who: \"vu-${vu}\"",
        "scenarios:\n  main: {executor: per-vu-iterations, vus: 2, iterations: 2}",
    );
    let result = run(plan_in(dir.path(), &yaml)).await;
    for check in [
        "status is 200",
        "closing boundary",
        "no defects",
        "photo intact",
    ] {
        assert_eq!(check_counts(&result, check), (4, 0), "{check}");
    }
    let log = checker.log().await;
    assert_eq!(log.len(), 4, "{log:?}");
    let mut who = Vec::new();
    for answer in &log {
        let parts = answer["parts"].as_array().expect("parts");
        let names: Vec<&str> = parts.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["notes", "photo", "title", "who"], "sorted by name");
        assert_eq!(Value::from(parts[..3].to_vec()), expected_parts());
        who.push(parts[3]["text"].as_str().unwrap_or_default().to_owned());
    }
    who.sort();
    assert_eq!(who, ["vu-1", "vu-1", "vu-2", "vu-2"]);
}

const K6_SCRIPT: &str = r#"
import http from 'k6/http';
import { check } from 'k6';

const photo = open(__ENV.DIR + '/files/photo.bin', 'b');
const notes = open(__ENV.DIR + '/files/notes.txt', 'b');

export const options = { vus: 1, iterations: 1 };

export default function () {
  const res = http.post(__ENV.CHECKER + '/upload', {
    title: 'Q3 report',
    photo: http.file(photo, 'photo.png', 'image/png'),
    notes: http.file(notes, 'notes.txt'),
  });
  check(res, { 'status is 200': (r) => r.status === 200 });
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_upload_parses_exactly_as_the_one_k6_sends() {
    let k6 = common::k6::k6_binary();
    let checker = multipart_checker().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_files(dir.path());
    let script = dir.path().join("upload.js");
    std::fs::write(&script, K6_SCRIPT).expect("script written");
    let k6_run = tokio::process::Command::new(&k6)
        .args(["run", "--quiet", "--no-summary", "--no-usage-report", "-e"])
        .arg(format!("DIR={}", dir.path().display()))
        .arg("-e")
        .arg(format!("CHECKER={}", checker.url()))
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), k6_run)
        .await
        .expect("k6 ends within a minute")
        .expect("k6 runs");
    assert!(
        out.status.success(),
        "k6: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = run(plan_in(
        dir.path(),
        &upload_plan(&checker, "", "iterations: 1"),
    ))
    .await;
    assert_eq!(check_counts(&result, "photo intact"), (1, 0));

    let log = checker.log().await;
    assert_eq!(log.len(), 2, "one upload each: {log:?}");
    // k6 writes the parts in Go's map order, which varies per request;
    // Volley sorts them by name. Compared as sets of parts:
    let k6_parts = by_name(&log[0]["parts"]);
    assert_eq!(k6_parts, expected_parts(), "k6's upload");
    assert_eq!(log[1]["parts"], k6_parts, "Volley's upload parses as k6's");
    assert_eq!(log[1]["defects"], log[0]["defects"]);
    assert_eq!(log[1]["closed"], log[0]["closed"]);
}

fn by_name(parts: &Value) -> Value {
    let mut parts = parts.as_array().cloned().unwrap_or_default();
    parts.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Value::from(parts)
}
