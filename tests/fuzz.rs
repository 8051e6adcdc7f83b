//! The hostile-input suite's fuzz targets: one per decoder or parser that bytes from the network
//! (or the data directory) reach, each fed mutated inputs (see [`fuzzer`] for the mutator, the
//! bounds and the knobs). A target passes when every input is refused or accepted cleanly: no
//! panic, no hang, within the time and memory bounds, and the decoder's own properties hold
//! (a decoded snapshot re-encodes to a snapshot that decodes equal, an opened datagram is the
//! sealed payload, an intervals file splits into exactly its bytes).
//!
//! Reached from the network: API submit bodies (JSON form and raw plans, then the plan as the
//! agent loads it), plans (YAML and JSON, deep nesting and aliases), data files (CSV, JSON), fleet
//! messages (the JSON header of every message, with the plan bundle or the snapshot it carries),
//! QUIC transport frames (framing and envelope, both sides), interval snapshots and their
//! histograms, gossip datagrams (authentication) and gossiped entries (a member's key-values,
//! announcements). From the data directory: intervals files. chitchat's own message codec is
//! private to chitchat and reached only by authenticated datagrams.
//!
//! By default the whole suite takes a few seconds; `VOLLEY_FUZZ_ITERS=200000 cargo test --release
//! --test fuzz` runs it for longer.

mod fuzzer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fuzzer::{Check, Counting, Target, run};
use volley::fleet::keys::{Announcement, MemberInfo};
use volley::fleet::membership::GossipKey;
use volley::fleet::participant::load_bundle;
use volley::fleet::protocol::{self, Message, PlanBundle, Response};
use volley::fleet::transport::{PeerStamps, Reply, Request};
use volley::metrics::wire::hdr;
use volley::metrics::{HttpSample, Recorder, RecorderOptions, Sample, Snapshot, Timings};
use volley::plan::{CheckId, RequestId};

#[global_allocator]
static ALLOC: Counting = Counting;

// === seeds ===

const CSV: &str = "user,password\nann,s3cret\nbob,\"quoted, with comma\"\n";
const JSON_DATA: &str = r#"[{"user":"ann","password":"s3cret"},{"user":"bob","password":"x"}]"#;

/// Plans as users write them, and shapes that once hurt: deep nesting, aliases, merge keys.
fn plan_seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plans");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|entries| {
            let mut paths: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect();
            paths.sort();
            paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
        })
        .unwrap_or_default();
    seeds.extend(
        [
            "vus: 2\nduration: 1s\nflow:\n  - get: http://127.0.0.1:1/\n",
            "vus: 1\niterations: 3\ndata: {file: users.csv, mode: unique-per-vu}\n\
             flow: [{post: {url: \"http://127.0.0.1:1/${data.user}\", body: \"${data.password}\"}}]\n",
            "scenarios:\n  open:\n    executor: ramping-arrival-rate\n    startRate: 1\n    \
             timeUnit: 1s\n    preAllocatedVUs: 2\n    stages: [{duration: 1s, target: 5}]\n    \
             flow: [{get: http://127.0.0.1:1/}]\nthresholds: {http_req_duration: [\"p(95)<200\"], \
             \"http_req_duration{scenario:open}\": [{threshold: \"p(99)<9\", abortOnFail: true}]}\n",
            "base: &b {vus: 1, duration: 1s}\nscenarios:\n  a:\n    <<: *b\n    executor: constant-vus\n    \
             flow: [{get: http://127.0.0.1:1/}]\n",
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
             c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
            "vus: 1\nduration: 1s\nflow:\n  - request:\n      url: http://127.0.0.1:1/\n      \
             check: [{status: 200}, {json: {pointer: /a, equals: 1}}, {regex: \"(a+)+$\"}]\n      \
             capture: [{var: t, json: /t}, {var: u, regex: \"u=(\\\\w+)\"}]\n  - sleep: {min: 1ms, max: 2ms}\n",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
    seeds.push(format!("{}1{}", "[".repeat(2000), "]".repeat(2000)).into_bytes());
    seeds.push(format!("{}x", "- ".repeat(1000)).into_bytes());
    seeds.push("{a: ".repeat(1000).into_bytes());
    seeds
}

const YAML_TOKENS: &[&[u8]] = &[
    b"scenarios:\n",
    b"executor: constant-arrival-rate\n",
    b"executor: ramping-vus\n",
    b"executor: shared-iterations\n",
    b"executor: per-vu-iterations\n",
    b"executor: externally-controlled\n",
    b"stages: [{duration: 1s, target: 9}]\n",
    b"rate: 1000000000000\n",
    b"vus: 1000000000\n",
    b"maxVUs: 18446744073709551615\n",
    b"duration: 999999h\n",
    b"timeUnit: 0s\n",
    b"gracefulStop: -1s\n",
    b"iterations: 0\n",
    b"thresholds: {http_req_duration: [\"p(99.9)<1\"]}\n",
    b"${env.A}",
    b"${data.user}",
    b"${vu}",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"!!binary ",
    b"!!str ",
    b"? ",
    b"---\n",
    b"...\n",
    b"|\n  ",
    b">-\n  ",
    b"[[[[[[[[",
    b"{a: {a: {a: ",
    b"\"\\u0000\"",
    b"1e999",
    b"-0x8000000000000000",
    b"p(95)<",
    b"rate>0.99",
    b"http://[::1]:0/",
    b"url: \"http://127.0.0.1:1/${",
    b"multipart: {f: {file: users.csv}}\n",
    b"data: {file: users.json}\n",
    b"batch:\n  - get: http://127.0.0.1:1/\n",
];

/// A bundle as the agent loads it, with both data files.
fn bundle(plan: String, format: &str) -> PlanBundle {
    PlanBundle {
        plan,
        format: format.to_owned(),
        env: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
        files: BTreeMap::from([
            ("users.csv".to_owned(), CSV.to_owned()),
            ("users.json".to_owned(), JSON_DATA.to_owned()),
        ]),
        uploads: BTreeMap::new(),
        script: None,
        setup_values: None,
    }
}

/// A real interval snapshot of a small plan: HTTP samples with errors, checks, iterations, VUs.
fn snapshot() -> Snapshot {
    let plan = load_bundle(&bundle(
        "vus: 1\nduration: 1s\nflow:\n  - request:\n      url: http://127.0.0.1:1/\n      \
         check: [{status: 200}]\n  - get: http://127.0.0.1:1/b\n"
            .to_owned(),
        "yaml",
    ))
    .expect("the snapshot's plan loads");
    let opts = RecorderOptions {
        extra_tags: vec![("agent".into(), "agent-0".into())],
        ..RecorderOptions::default()
    };
    let mut recorder = Recorder::new(&plan, opts);
    for ms in 1..40u64 {
        recorder.record(&Sample::Http(HttpSample {
            request: RequestId((ms % 2) as u32),
            status: if ms % 7 == 0 { 503 } else { 200 },
            error: None,
            expected: Some(ms % 7 != 0),
            timings: Timings {
                blocked: Duration::from_micros(ms),
                connecting: Duration::from_micros(ms / 2),
                tls_handshaking: Duration::ZERO,
                sending: Duration::from_micros(10),
                waiting: Duration::from_millis(ms),
                receiving: Duration::from_micros(ms * 3),
            },
            intended: None,
            bytes_sent: 80,
            bytes_received: 200 + ms,
            proto: 11,
            tls: 0,
        }));
    }
    recorder.record_all(&[
        Sample::Check {
            check: CheckId(0),
            ok: true,
        },
        Sample::Check {
            check: CheckId(0),
            ok: false,
        },
        Sample::Iteration {
            scenario: 0,
            duration: Duration::from_millis(120),
            interrupted: false,
        },
        Sample::Vus { active: 1, max: 1 },
    ]);
    recorder.take_interval(1_790_000_000_000, Duration::from_secs(1))
}

fn message_seeds() -> Vec<Vec<u8>> {
    let snap = snapshot().encode();
    let prepare = serde_json::json!({
        "type": "prepare",
        "test_id": "t-1",
        "name": "fuzz",
        "origin": "agent-0",
        "digest": "00",
        "bundle": bundle("vus: 1\nduration: 1s\nflow: [{get: http://127.0.0.1:1/}]\n".into(), "yaml"),
        "allocation": {"revision": 1, "shares": [{"agent": "agent-0", "weight": 100}]},
        "start_unix_ms": 1_790_000_000_000u64,
        "protocol": protocol::PROTOCOL_VERSION,
        "origin_addr": "127.0.0.1:4433",
    });
    let sealed = serde_json::json!({
        "type": "sealed",
        "meta": {"id": "t-1", "name": "fuzz", "origin": "agent-0", "submitted_unix_ms": 1,
                 "phase": "passed", "agents": ["agent-0"]},
        "summary": {"metrics": {}},
        "text": "ok",
    });
    let reallocate = serde_json::json!({
        "type": "reallocate",
        "test_id": "t-1",
        "allocation": {"revision": 2, "shares": [{"agent": "agent-1", "weight": 1}]},
        "effective_unix_ms": 5,
        "extra_iterations": {"agent-1": {"main": 3}},
    });
    let mut seeds = vec![
        protocol::encode(&prepare, &[]).to_vec(),
        protocol::encode(&sealed, &[]).to_vec(),
        protocol::encode(&reallocate, &[]).to_vec(),
        protocol::encode(
            &Message::Interval {
                test_id: "t-1".into(),
                agent: "agent-0".into(),
                seq: 3,
                to_relay: false,
            },
            &snap,
        )
        .to_vec(),
        protocol::encode(
            &Message::Abort {
                test_id: "t-1".into(),
                reason: "by hand".into(),
            },
            &[],
        )
        .to_vec(),
        protocol::encode(&Message::Identify, &[]).to_vec(),
        protocol::encode(
            &Message::Done {
                test_id: "t-1".into(),
                agent: "agent-0".into(),
                started_unix_us: 1,
                end: "completed".into(),
                intervals: 4,
                saturated: Some("the load generator was saturated: …".into()),
            },
            &[],
        )
        .to_vec(),
        protocol::encode(
            &Response::Identity {
                node_id: "agent-1".into(),
                generation: 7,
            },
            &[],
        )
        .to_vec(),
        protocol::encode(
            &Response::AlreadyOver {
                test_id: "t-1".into(),
                aborted: true,
                at_unix_ms: 9,
            },
            &[],
        )
        .to_vec(),
    ];
    seeds.push(vec![0xff, 0xff, 0xff, 0xff, b'{']);
    seeds
}

const JSON_TOKENS: &[&[u8]] = &[
    b"\"type\":\"prepare\"",
    b"\"type\":\"interval\"",
    b"\"type\":\"sealed\"",
    b"\"type\":\"commit\"",
    b"\"type\":\"done\"",
    b"\"allocation\":{\"revision\":0,\"shares\":[]}",
    b"\"weight\":18446744073709551615",
    b"\"start_unix_ms\":18446744073709551615",
    b"\"seq\":-1",
    b"\"format\":\"json\"",
    b"\"format\":\"js\"",
    b"\"script\":{}",
    b"\"plan\":\"vus: 1000000000\"",
    b"\"leadTime\":\"999999h\"",
    b"\"minAgents\":0",
    b"\"env\":{\"\":\"\"}",
    b"\"files\":{\"../../etc/passwd\":\"\"}",
    b"\\ud800",
    b"1e400",
    b"null",
    b"[[[[[[[[[[[[[[[[",
    b"{\"a\":{\"a\":{\"a\":",
];

const DATA_TOKENS: &[&[u8]] = &[
    b"\"",
    b"\"\"",
    b",",
    b"\r\n",
    b"\n",
    b"{\"user\":",
    b"[",
    b"]",
    b"null",
];
const FRAME_TOKENS: &[&[u8]] = &[b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01", b"\x02"];
const ENTRY_TOKENS: &[&[u8]] = &[
    b"\t",
    b"\n",
    b"NaN",
    b"inf",
    b"-1",
    b"1e308",
    b"[::1]:0",
    b"\"rev\":",
];
const RECORD_TOKENS: &[&[u8]] = &[b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"];

// === targets ===

/// `POST /v1/tests`: the input is `CT\0QUERY\0BODY` (missing parts are absent); the API reads it,
/// then the agent loads the plan it carries (a script's init is left out: it runs a JavaScript
/// runtime under its own time limit).
fn api_submit(input: &[u8]) -> Result<bool, String> {
    let mut parts = input.splitn(3, |b| *b == 0);
    let (ct, query, body) = match (parts.next(), parts.next(), parts.next()) {
        (Some(ct), Some(q), Some(body)) => (Some(ct), Some(String::from_utf8_lossy(q)), body),
        (Some(ct), Some(body), None) => (Some(ct), None, body),
        (Some(body), None, None) => (None, None, body),
        _ => return Ok(false),
    };
    let Ok(request) = volley::hostile::submit_body(ct, query.as_deref(), body) else {
        return Ok(false);
    };
    if request.script.is_some() {
        return Ok(false);
    }
    let format = match request.format {
        Some(volley::api::PlanFormat::Json) => "json",
        Some(volley::api::PlanFormat::Yaml) => "yaml",
        None if request.plan.trim_start().starts_with('{') => "json",
        None => "yaml",
    };
    Ok(load_bundle(&PlanBundle {
        plan: request.plan,
        format: format.to_owned(),
        env: request.env,
        files: request.files,
        uploads: request.uploads,
        script: None,
        setup_values: None,
    })
    .is_ok())
}

#[test]
fn fuzz_api_submit() {
    let mut seeds: Vec<Vec<u8>> = vec![
        b"application/json\0\0{\"plan\":\"vus: 1\\nduration: 1s\\nflow: [{get: http://127.0.0.1:1/}]\\n\",\
          \"leadTime\":\"1500ms\",\"name\":\"x\",\"minAgents\":1,\"env\":{\"A\":\"1\"},\
          \"files\":{\"users.csv\":\"user\\nann\\n\"}}"
            .to_vec(),
        b"application/json; charset=utf-8\0\0{\"plan\":\"{\\\"vus\\\":1,\\\"duration\\\":\\\"1s\\\",\
          \\\"flow\\\":[{\\\"get\\\":\\\"http://127.0.0.1:1/\\\"}]}\",\"format\":\"json\"}"
            .to_vec(),
        b"application/json\0\0{\"plan\":\"\",\"script\":{\"main\":\"x.js\",\"modules\":{}}}".to_vec(),
    ];
    for plan in plan_seeds().into_iter().take(4) {
        let mut raw = b"application/yaml\0name=fuzz&leadTime=2s&minAgents=1&env=A%3D1\0".to_vec();
        raw.extend_from_slice(&plan);
        seeds.push(raw);
        let mut bare = plan.clone();
        bare.retain(|b| *b != 0);
        seeds.push(bare);
    }
    run(Target {
        name: "api_submit",
        default_iters: 2000,
        max_len: 64 << 10,
        seeds,
        tokens: JSON_TOKENS,
        check: api_submit,
    });
}

fn plan_text(input: &[u8], format: &str) -> Result<bool, String> {
    let text = String::from_utf8_lossy(input).into_owned();
    Ok(load_bundle(&bundle(text, format)).is_ok())
}

#[test]
fn fuzz_plan_yaml() {
    run(Target {
        name: "plan_yaml",
        default_iters: 1500,
        max_len: 64 << 10,
        seeds: plan_seeds(),
        tokens: YAML_TOKENS,
        check: |input| plan_text(input, "yaml"),
    });
}

#[test]
fn fuzz_plan_json() {
    let mut seeds: Vec<Vec<u8>> = plan_seeds()
        .iter()
        .filter_map(|yaml| {
            let value: serde_json::Value = serde_yaml_ng::from_slice(yaml).ok()?;
            serde_json::to_vec_pretty(&value).ok()
        })
        .collect();
    seeds.push(format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes());
    run(Target {
        name: "plan_json",
        default_iters: 2000,
        max_len: 64 << 10,
        seeds,
        tokens: JSON_TOKENS,
        check: |input| plan_text(input, "json"),
    });
}

/// A data file: the first byte picks CSV or JSON, the rest is the file a plan names.
fn data_file(input: &[u8]) -> Result<bool, String> {
    let Some((kind, file)) = input.split_first() else {
        return Ok(false);
    };
    let (name, columns) = if kind % 2 == 0 {
        ("users.csv", "${data.user}")
    } else {
        ("users.json", "${data.user}${data.password}")
    };
    let mut b = bundle(
        format!(
            "vus: 2\niterations: 4\ndata: {{file: {name}, mode: unique-per-vu}}\n\
             flow: [{{post: {{url: \"http://127.0.0.1:1/\", body: \"{columns}\"}}}}]\n"
        ),
        "yaml",
    );
    b.files
        .insert(name.to_owned(), String::from_utf8_lossy(file).into_owned());
    Ok(load_bundle(&b).is_ok())
}

#[test]
fn fuzz_data_files() {
    let mut csv = vec![0u8];
    csv.extend_from_slice(CSV.as_bytes());
    let mut json = vec![1u8];
    json.extend_from_slice(JSON_DATA.as_bytes());
    let mut wide = vec![0u8];
    wide.extend_from_slice(format!("{}\n{}\n", "c,".repeat(500), "v,".repeat(500)).as_bytes());
    let mut nested = vec![1u8];
    nested.extend_from_slice(
        format!("[{{\"user\":{}1{}}}]", "[".repeat(200), "]".repeat(200)).as_bytes(),
    );
    run(Target {
        name: "data_files",
        default_iters: 1500,
        max_len: 64 << 10,
        seeds: vec![csv, json, wide, nested],
        tokens: DATA_TOKENS,
        check: data_file,
    });
}

/// A fleet message as a peer's handler reads it: the header, then what it carries (a Prepare's
/// bundle is loaded as the participant loads it, an Interval's snapshot decoded).
fn fleet_message(input: &[u8]) -> Result<bool, String> {
    let bytes = Bytes::copy_from_slice(input);
    let response = protocol::decode::<Response>(&bytes).is_ok();
    let message = match protocol::decode::<Message>(&bytes) {
        Ok((Message::Prepare { bundle, .. }, _)) => {
            let _ = bundle.digest();
            bundle.script.is_none() && load_bundle(&bundle).is_ok()
        }
        Ok((Message::Interval { .. }, payload)) => Snapshot::decode(&payload).is_ok(),
        Ok(_) => true,
        Err(_) => false,
    };
    Ok(response || message)
}

#[test]
fn fuzz_fleet_message() {
    run(Target {
        name: "fleet_message",
        default_iters: 5000,
        max_len: 64 << 10,
        seeds: message_seeds(),
        tokens: JSON_TOKENS,
        check: fleet_message,
    });
}

/// A QUIC stream's frame, read by either side; a small `max_message` makes size limits bite.
fn transport_frame(input: &[u8]) -> Result<bool, String> {
    let mut accepted = false;
    for max_message in [64, 8 << 20] {
        if let Ok(reading) = volley::hostile::transport_frame(input, max_message) {
            accepted = true;
            if let Ok(Request::App(body)) = reading.request {
                fleet_message(&body)?;
            }
            let _ = (reading.time_reply, reading.app_reply);
        }
    }
    Ok(accepted)
}

#[test]
fn fuzz_transport_frame() {
    let app = protocol::encode(&Message::Identify, &[]);
    let seeds = vec![
        volley::hostile::request_frame(Request::Time),
        volley::hostile::request_frame(Request::App(app.clone())),
        volley::hostile::reply_frame(Reply::Time(PeerStamps {
            received: 1_790_000_000_000_000_000,
            sent: -1,
        })),
        volley::hostile::reply_frame(Reply::App(app)),
        vec![0, 0, 0, 3, 1, 2, 9],
    ];
    run(Target {
        name: "transport_frame",
        default_iters: 10000,
        max_len: 4 << 10,
        seeds,
        tokens: FRAME_TOKENS,
        check: transport_frame,
    });
}

/// An interval snapshot: refused, or canonical (its re-encoding decodes to the same snapshot).
fn snapshot_bytes(input: &[u8]) -> Result<bool, String> {
    let Ok(snap) = Snapshot::decode(input) else {
        return Ok(false);
    };
    let again = Snapshot::decode(&snap.encode())
        .map_err(|e| format!("a decoded snapshot's encoding does not decode: {e}"))?;
    if again != snap {
        return Err("a decoded snapshot re-encodes to another snapshot".to_owned());
    }
    let mut merged = Snapshot::empty(snap.start_unix_ms, snap.duration);
    let _ = merged.merge_sources(&snap);
    Ok(true)
}

#[test]
fn fuzz_snapshot() {
    let real = snapshot();
    run(Target {
        name: "snapshot",
        default_iters: 6000,
        max_len: 64 << 10,
        seeds: vec![
            real.encode(),
            Snapshot::empty(0, Duration::new(3, 999_999_999)).encode(),
        ],
        tokens: &[],
        check: snapshot_bytes,
    });
}

#[test]
fn fuzz_histogram() {
    let mut h =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for v in [1u64, 7, 99, 1000, 123_456, 3_000_000_000] {
        h.record(v).expect("in range");
    }
    let mut seeds = Vec::new();
    let mut out = Vec::new();
    hdr::encode(&h, &mut out);
    seeds.push(out);
    let mut empty = Vec::new();
    hdr::encode(
        &hdrhistogram::Histogram::<u64>::new(3).expect("valid"),
        &mut empty,
    );
    seeds.push(empty);
    run(Target {
        name: "histogram",
        default_iters: 10000,
        max_len: 16 << 10,
        seeds,
        tokens: &[],
        check: |input| Ok(hdr::decode(input).is_ok()),
    });
}

const NOW_MS: u64 = 1_790_000_000_000;

fn gossip_key() -> GossipKey {
    GossipKey::derive(b"the fuzz suite's gossip secret, long enough").expect("a long secret")
}

/// A datagram on the gossip port: opened against the fleet's key; the mutated datagram is also
/// sealed as an insider would, and must open to exactly what was sealed.
fn gossip_datagram(input: &[u8]) -> Result<bool, String> {
    let key = gossip_key();
    let opened = key.open(NOW_MS, input).is_ok();
    let mut sealed = Vec::new();
    key.seal(NOW_MS, input, &mut sealed);
    match key.open(NOW_MS + 1, &sealed) {
        Ok(payload) if payload == input => Ok(opened),
        Ok(_) => Err("a sealed datagram opens to another payload".to_owned()),
        Err(reject) => Err(format!("a freshly sealed datagram is refused: {reject:?}")),
    }
}

#[test]
fn fuzz_gossip_datagram() {
    let key = gossip_key();
    let mut seeds = Vec::new();
    for (at, payload) in [
        (NOW_MS, &b"\x00\x01chitchat syn"[..]),
        (NOW_MS - 3_600_000, b"replayed an hour later"),
        (NOW_MS, b""),
    ] {
        let mut d = Vec::new();
        key.seal(at, payload, &mut d);
        seeds.push(d);
    }
    let mut other = Vec::new();
    GossipKey::derive(b"another fleet's secret, also long enough")
        .expect("a long secret")
        .seal(NOW_MS, b"impostor", &mut other);
    seeds.push(other);
    seeds.push(b"junk datagram".to_vec());
    run(Target {
        name: "gossip_datagram",
        default_iters: 8000,
        max_len: 2048,
        seeds,
        tokens: &[],
        check: gossip_datagram,
    });
}

/// A member's gossiped key-values, as lines `key\tvalue`; decoded as every agent decodes a peer's
/// entry, the announcement on its own too.
fn gossip_entry(input: &[u8]) -> Result<bool, String> {
    let text = String::from_utf8_lossy(input);
    let kv: BTreeMap<String, String> = text
        .split('\n')
        .filter_map(|line| {
            let (k, v) = line.split_once('\t')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect();
    let gossip: SocketAddr = "127.0.0.1:7000".parse().expect("an address");
    for value in kv.values() {
        let _ = Announcement::decode(value);
    }
    match MemberInfo::from_kv("agent-1", 3, gossip, &kv) {
        Ok(member) => {
            let _ = member.to_kv();
            Ok(member.validate().is_ok())
        }
        Err(_) => Ok(false),
    }
}

#[test]
fn fuzz_gossip_entry() {
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let mut member = MemberInfo::new("agent-1", 3, addr(7000), addr(8000), addr(9000), 2.5);
    member.test = Some("t-1".into());
    member.announcement = Some(Announcement {
        id: "t-1".into(),
        digest: "ab".repeat(32),
        origin: "agent-1".into(),
        start_ms: NOW_MS,
        rev: 2,
    });
    let lines = |m: &MemberInfo| -> Vec<u8> {
        m.to_kv()
            .iter()
            .map(|(k, v)| format!("{k}\t{v}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let seeds = vec![
        lines(&member),
        lines(&MemberInfo::new(
            "agent-2",
            1,
            addr(1),
            addr(2),
            addr(3),
            1.0,
        )),
    ];
    run(Target {
        name: "gossip_entry",
        default_iters: 8000,
        max_len: 8 << 10,
        seeds,
        tokens: ENTRY_TOKENS,
        check: gossip_entry,
    });
}

/// An intervals file of the data directory: split into exactly its bytes, each record's
/// snapshot decoded as a successor rebuilding results does.
fn intervals_file(input: &[u8]) -> Result<bool, String> {
    let (records, torn) = volley::hostile::intervals_file(input);
    let covered: usize = records.iter().map(|(_, p)| 12 + p.len()).sum();
    if covered + torn != input.len() {
        return Err(format!(
            "records cover {covered} bytes and the torn tail {torn}, of {}",
            input.len()
        ));
    }
    let mut decoded = 0;
    for (_, payload) in &records {
        decoded += usize::from(Snapshot::decode(payload).is_ok());
    }
    Ok(decoded > 0)
}

#[test]
fn fuzz_intervals_file() {
    let snap = snapshot().encode();
    let mut file = Vec::new();
    for seq in 0..3 {
        file.extend(volley::hostile::interval_record(seq, &snap).expect("small"));
    }
    let mut torn = file.clone();
    torn.truncate(file.len() - 7);
    run(Target {
        name: "intervals_file",
        default_iters: 1000,
        max_len: 64 << 10,
        seeds: vec![file, torn],
        tokens: RECORD_TOKENS,
        check: intervals_file,
    });
}

// === the fuzzer itself ===

/// A target whose second seed trips it, to show each bound is enforced.
fn planted(check: Check) -> Target {
    Target {
        name: "planted",
        default_iters: 10,
        max_len: 64,
        seeds: vec![b"fine".to_vec(), b"trip".to_vec()],
        tokens: &[],
        check,
    }
}

#[test]
#[should_panic(expected = "panic: planted fault")]
fn the_fuzzer_catches_a_panic() {
    run(planted(|input| {
        assert!(input != b"trip", "planted fault");
        Ok(true)
    }));
}

#[test]
#[should_panic(expected = "limit 67108864")]
fn the_fuzzer_catches_an_allocation_past_its_bound() {
    run(planted(|input| {
        let size = if input == b"trip" { 100 << 20 } else { 16 };
        Ok(std::hint::black_box(vec![0u8; size]).len() > 1)
    }));
}

#[test]
#[should_panic(expected = "twice, limit")]
fn the_fuzzer_catches_a_slow_input() {
    run(planted(|input| {
        if input == b"trip" {
            std::thread::sleep(fuzzer::TIME_LIMIT + Duration::from_millis(100));
        }
        Ok(true)
    }));
}
