//! `volley run script.js` and `volley inspect script.js` as a user meets
//! them: k6's option precedence (flags over `K6_*` over the script), the
//! derived plan, and the bad scripts that must end with a clear message and
//! k6's exit code, never with load left running or a hung process (a busy
//! loop in an iteration, unbounded allocation, a remote import, a missing
//! `exec` function, `open()` outside init, setup data JSON cannot carry).
//! The k6 side-by-side corpus is `js_k6_compat.rs`.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{base, export, start_target, stderr, stdout};

/// Longest any run here may take; it is killed past this.
const LIMIT: Duration = Duration::from_secs(60);

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the script");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

/// Runs the binary with `args` and extra environment, killed past [`LIMIT`].
fn volley(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_volley"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the volley binary starts");
    let deadline = Instant::now() + LIMIT;
    loop {
        match child.try_wait().expect("wait for volley") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect volley's output");
                panic!(
                    "volley {args:?} ran past {LIMIT:?}; stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    child.wait_with_output().expect("collect volley's output")
}

async fn volley_async(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        volley(&args, &env)
    })
    .await
    .expect("the blocking task running volley")
}

/// `volley run -q -e TARGET_URL=<target>/ FLAGS… SCRIPT`.
async fn run_quiet_against(
    target: &volley::target::TargetHandle,
    script: String,
    flags: &[&str],
) -> Output {
    let url = format!("TARGET_URL={}/", base(target));
    let mut args: Vec<String> = vec!["run".into(), "-q".into(), "-e".into(), url];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    args.push(script);
    volley_async(args, Vec::new()).await
}

/// Asserts that a run exited 0, showing what it printed otherwise.
fn assert_passed(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

fn count(doc: &serde_json::Value, metric: &str) -> f64 {
    doc["metrics"][metric]["count"].as_f64().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_k6_environment_which_beats_the_script() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "precedence.js",
        "import http from 'k6/http';\n\
         export const options = { iterations: 1 };\n\
         export default function () { http.get(__ENV.TARGET_URL); }\n",
    );
    let url = format!("TARGET_URL={}/", base(&target));
    // (environment, flags, iterations k6 runs with them)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], f64);
    let cases: [Case; 3] = [
        (&[], &[], 1.0),
        (&[("K6_ITERATIONS", "2")], &[], 2.0),
        (&[("K6_ITERATIONS", "2")], &["-i", "3"], 3.0),
    ];
    for (i, (env, flags, want)) in cases.into_iter().enumerate() {
        let summary = dir.path().join(format!("s{i}.json"));
        let mut args = vec![
            "run".to_string(),
            "-q".into(),
            "-e".into(),
            url.clone(),
            "--summary-export".into(),
            summary.to_string_lossy().into_owned(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(script.clone());
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = volley_async(args, env).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(count(&export(&summary), "iterations"), want, "case {i}");
    }
}

#[test]
fn inspect_shows_the_plan_a_script_makes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "inspect.js",
        "export const options = {\n\
           scenarios: { api: { executor: 'constant-vus', vus: 3, duration: '10s', exec: 'api' } },\n\
           thresholds: { http_req_duration: ['p(95)<200'] },\n\
           blacklistIPs: ['10.0.0.0/8'],\n\
         };\n\
         export function api() {}\n\
         export default function () {}\n",
    );
    let out = volley(&["inspect", &script], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("api: constant-vus"), "{text}");
    assert!(text.contains("runs api()"), "{text}");
    assert!(
        text.contains("threshold http_req_duration: p(95)<200"),
        "{text}"
    );
    assert!(
        text.contains("script exports: api, default, options"),
        "{text}"
    );
    assert!(text.contains("left out): blacklistIPs"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_loop_in_an_iteration_is_interrupted_at_the_graceful_stop() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "busy.js",
        "export const options = { scenarios: { s: { executor: 'constant-vus', vus: 2,\n\
           duration: '500ms', gracefulStop: '200ms' } } };\n\
         export default function () { while (true) {} }\n",
    );
    let summary = dir.path().join("s.json");
    let started = Instant::now();
    let out = volley_async(
        vec![
            "run".into(),
            "-q".into(),
            "--summary-export".into(),
            summary.to_string_lossy().into_owned(),
            script,
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run ended at its graceful stop, not at the test's limit"
    );
    assert_eq!(
        count(&export(&summary), "iterations"),
        0.0,
        "interrupted iterations do not count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_ends_the_iteration_not_the_process() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "hog.js",
        "export const options = { iterations: 2 };\n\
         export default function () {\n\
           const keep = [];\n\
           while (true) { keep.push(new Array(1 << 16).fill(7)); }\n\
         }\n",
    );
    let out = volley_async(vec!["run".into(), "-q".into(), script], Vec::new()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("SCRIPT ERRORS"), "{text}");
    assert!(text.contains("out of memory"), "{text}");
}

#[test]
fn bad_scripts_get_a_clear_message_and_k6_exit_codes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cases: [(&str, &str, i32, &str); 5] = [
        (
            "remote.js",
            "import x from 'https://example.com/lib.js';\nexport default function () {}\n",
            107,
            "https://example.com/lib.js",
        ),
        (
            "noexec.js",
            "export const options = { scenarios: { a: { executor: 'shared-iterations', exec: 'nope' } } };\n\
             export default function () {}\n",
            104,
            "scenarios.a.exec",
        ),
        (
            "setupfn.js",
            "export function setup() { return { f: () => 1 }; }\nexport default function () {}\n",
            255,
            "setup",
        ),
        (
            "setupthrows.js",
            "export function setup() { throw new Error('login failed'); }\nexport default function () {}\n",
            107,
            "login failed",
        ),
        (
            "badmetric.js",
            "import { Counter } from 'k6/metrics';\nconst c = new Counter('http_reqs');\nexport default function () {}\n",
            107,
            "built-in metric",
        ),
    ];
    for (name, text, code, says) in cases {
        let script = write(dir.path(), name, text);
        let out = volley(&["run", "-q", &script], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{name}: {err}");
        assert!(err.contains(says), "{name}: expected {says:?} in {err}");
    }
}

#[test]
fn open_outside_init_fails_the_iteration_and_is_counted_once_per_message() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write(dir.path(), "data.txt", "hello");
    let script = write(
        dir.path(),
        "open.js",
        "const early = open('./data.txt');\n\
         export const options = { iterations: 3 };\n\
         export default function () { if (early !== 'hello') throw new Error('bad'); open('./data.txt'); }\n",
    );
    let out = volley(&["run", "-q", &script], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("open() can only be called in the init context"))
        .unwrap_or_else(|| panic!("no error line in {text}"));
    assert!(
        line.trim_start().starts_with('3'),
        "counted 3 times: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_summary_outputs_replace_the_default_summary() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("summary.json");
    let junit = dir.path().join("junit.xml");
    let script = write(
        dir.path(),
        "summary.js",
        &format!(
            "import http from 'k6/http';\n\
             import {{ jUnit, textSummary }} from 'https://jslib.k6.io/k6-summary/0.0.2/index.js';\n\
             export const options = {{ iterations: 2, thresholds: {{ http_req_failed: ['rate<0.5'] }} }};\n\
             export function setup() {{ return {{ token: 'abc' }}; }}\n\
             export default function () {{ http.get(__ENV.TARGET_URL); }}\n\
             export function handleSummary(data) {{\n\
               return {{\n\
                 stdout: 'reqs=' + data.metrics.http_reqs.values.count + ' token=' + data.setup_data.token + '\\n' + textSummary(data),\n\
                 {json:?}: JSON.stringify(data),\n\
                 {junit:?}: jUnit(data),\n\
               }};\n\
             }}\n",
            json = json.to_string_lossy(),
            junit = junit.to_string_lossy(),
        ),
    );
    let out = run_quiet_against(&target, script, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("reqs=2 token=abc\n"), "{text}");
    assert_eq!(
        text.matches("TOTAL RESULTS").count(),
        1,
        "textSummary, and no default summary: {text}"
    );
    let data = export(&json);
    assert_eq!(data["metrics"]["http_req_failed"]["type"], "rate");
    assert_eq!(
        data["metrics"]["http_req_failed"]["thresholds"]["rate<0.5"]["ok"],
        true
    );
    assert_eq!(data["metrics"]["http_req_duration"]["contains"], "time");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(xml.contains("http_req_failed - rate&lt;0.5"), "{xml}");
}

#[test]
fn hostile_scripts_end_cleanly_with_k6_codes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // (script, exit code, text the output must hold)
    let cases: [(&str, &str, i32, &str); 6] = [
        (
            "vu_init_fails.js",
            "if (__VU === 2) { throw new Error('VU 2 cannot start'); }\n\
             export const options = { vus: 2, duration: '30s' };\n\
             export default function () {}\n",
            107,
            "VU 2 cannot start",
        ),
        (
            "reentrant_getters.js",
            "import { check } from 'k6';\n\
             export const options = { iterations: 2 };\n\
             export default function () {\n\
               check(1, { a: true }, { get x() { check(1, { b: true }); return 'y'; } });\n\
               throw { toJSON() { check(1, { c: true }); return 'thrown'; } };\n\
             }\n",
            0,
            "thrown",
        ),
        (
            "abort_in_setup.js",
            "import exec from 'k6/execution';\n\
             export function setup() { exec.test.abort('no login'); }\n\
             export default function () {}\n",
            108,
            "no login",
        ),
        (
            "absurd_timeout.js",
            "import http from 'k6/http';\n\
             export const options = { iterations: 1 };\n\
             export default function () { http.get('http://127.0.0.1:9/', { timeout: 1e300 }); }\n",
            0,
            "",
        ),
        (
            "negative_setup_timeout.js",
            "export const options = { setupTimeout: -1 };\n\
             export function setup() {}\n\
             export default function () {}\n",
            104,
            "options.setupTimeout",
        ),
        (
            "async_default.js",
            "export const options = { iterations: 2 };\n\
             export default async function () { await null; throw new Error('after await'); }\n",
            0,
            "after await",
        ),
    ];
    for (name, text, code, says) in cases {
        let script = write(dir.path(), name, text);
        let out = volley(&["run", &script], &[]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(code), "{name}: {all}");
        assert!(all.contains(says), "{name}: expected {says:?} in {all}");
    }
}

#[test]
fn teardown_past_its_timeout_is_cut_and_the_run_ends() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "slow_teardown.js",
        "import { sleep } from 'k6';\n\
         export const options = { iterations: 1, teardownTimeout: '500ms' };\n\
         export default function () {}\n\
         export function teardown() { sleep(3600); }\n",
    );
    let started = Instant::now();
    let out = volley(&["run", "-q", &script], &[]);
    assert_eq!(out.status.code(), Some(101), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("teardown() execution timed out"),
        "{}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run ended soon after the time-out: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_scenario_env_reaches_env_in_its_vu_code() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "scenario_env.js",
        "import { check } from 'k6';\n\
         export const options = { scenarios: { s: { executor: 'shared-iterations', iterations: 2,\n\
           env: { GREETING: 'hi' } } }, thresholds: { checks: ['rate==1'] } };\n\
         export default function () { check(__ENV.GREETING, { 'scenario env seen': (g) => g === 'hi' }); }\n",
    );
    let out = volley(&["run", "-q", &script], &[]);
    assert_passed(&out);
}

/// `exec.vu.metrics.tags` is bounded (64 tags, 1 KiB each): a refused
/// value is a catchable error and the tag keeps the value it had.
#[test]
fn vu_tags_are_bounded_and_a_refused_value_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "tag_bounds.js",
        "import exec from 'k6/execution';\n\
         import { check } from 'k6';\n\
         export const options = { iterations: 1, thresholds: { checks: ['rate==1'] } };\n\
         const refused = (f) => { try { f(); return false; } catch (e) { return true; } };\n\
         export default function () {\n\
           const tags = exec.vu.metrics.tags;\n\
           tags.step = 'a';\n\
           check(tags, { 'a 5 kB value is refused, the old one stays':\n\
             (t) => refused(() => { t.step = 'x'.repeat(5000); }) && t.step === 'a' });\n\
           for (let i = 0; i < 63; i++) tags['t' + i] = i;\n\
           check(tags, { 'a 65th tag is refused, a set one can change':\n\
             (t) => refused(() => { t.more = 1; }) && (t.step = 'b') && t.step === 'b' });\n\
         }\n",
    );
    let out = volley(&["run", "-q", &script], &[]);
    assert_passed(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_reads_serialises_and_takes_assignments_like_a_plain_object() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "response.js",
        "import http from 'k6/http';\n\
         import { check } from 'k6';\n\
         export const options = { iterations: 1, thresholds: { checks: ['rate==1'] } };\n\
         export default function () {\n\
           const r = http.get(__ENV.TARGET_URL + 'json');\n\
           const seen = JSON.parse(JSON.stringify(r));\n\
           check(r, {\n\
             'fields read': (x) => x.status === 200 && x.error === '' && x.error_code === 0,\n\
             'serialised': () => seen.status === 200 && seen.url === r.url && typeof seen.headers === 'object',\n\
             'request of a plain get': (x) => x.request.method === 'GET' && x.request.url === r.url,\n\
           });\n\
           r.status = 201;\n\
           check(r, { 'assignment sticks': (x) => x.status === 201 });\n\
         }\n",
    );
    let out = run_quiet_against(&target, script, &[]).await;
    assert_passed(&out);
}

/// `http.setResponseCallback(null)` leaves responses unjudged, as in k6
/// 1.1.0 (seen): no `expected_response` tag and no `http_req_failed`
/// sample, while a request with a callback of its own is still judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_response_callback_leaves_responses_unjudged() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "null_callback.js",
        "import http from 'k6/http';\n\
         export const options = { iterations: 2 };\n\
         http.setResponseCallback(null);\n\
         export default function () {\n\
           http.get(__ENV.TARGET_URL + 'status/500');\n\
           http.get(__ENV.TARGET_URL + 'status/503', { responseCallback: http.expectedStatuses(200) });\n\
           let refused = '';\n\
           try { http.expectedStatuses(); } catch (e) { refused = String(e); }\n\
           if (!refused.includes('no arguments')) throw new Error('expectedStatuses() accepted: ' + refused);\n\
         }\n",
    );
    let export_path = dir.path().join("summary.json");
    let summary = export_path.to_string_lossy().into_owned();
    let out = run_quiet_against(&target, script, &["--summary-export", &summary]).await;
    assert_passed(&out);
    let doc = export(&export_path);
    assert_eq!(count(&doc, "http_reqs"), 4.0, "{doc}");
    assert_eq!(count(&doc, "iterations"), 2.0, "{doc}");
    // Only the two 503s had a callback: both unexpected.
    let failed = &doc["metrics"]["http_req_failed"];
    assert_eq!(
        (failed["passes"].as_u64(), failed["fails"].as_u64()),
        (Some(2), Some(0)),
        "{doc}"
    );
    // No response was expected: the sub-metric k6 always adds is empty.
    let expected = &doc["metrics"]["http_req_duration{expected_response:true}"];
    assert!(expected.get("p(95)").is_none_or(|p| p == 0.0), "{doc}");
}

/// A request's timeout covers its whole redirect chain, as k6's does: four
/// hops of 300 ms each fit no 700 ms timeout, though each would alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_covers_the_whole_redirect_chain() {
    let target = common::start_target_with(volley::target::TargetConfig {
        added_latency: Duration::from_millis(300),
        ..volley::target::TargetConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "chain_timeout.js",
        "import http from 'k6/http';\n\
         import { check } from 'k6';\n\
         export const options = { iterations: 1, thresholds: { checks: ['rate==1'] } };\n\
         export default function () {\n\
           const url = __ENV.TARGET_URL + 'redirect/3';\n\
           const [b] = http.batch([['GET', url, null, { timeout: '700ms' }]]);\n\
           for (const r of [http.get(url, { timeout: '700ms' }), b]) {\n\
             check(r, { 'cut on the third hop': (x) => x.error_code === 1050 && x.status === 0 });\n\
           }\n\
           check(http.get(url, { timeout: '2s' }), { 'whole chain in 2 s': (x) => x.status === 200 });\n\
         }\n",
    );
    let out = run_quiet_against(&target, script, &[]).await;
    assert_passed(&out);
}

/// Requests `http.asyncRequest` queued before the VU awaits them are in
/// flight together: this server answers no request before it holds two at
/// once, so requests sent one after the other would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_requests_awaited_together_are_in_flight_together() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds a loopback port");
    let port = listener.local_addr().expect("bound").port();
    let (pair_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = tokio::spawn(async move {
        // At most a handful of connections, each answered once.
        for _ in 0..8 {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (pair_tx, open) = (pair_tx.clone(), open.clone());
            let mut paired = pair_tx.subscribe();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf).await;
                if open.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2 == 1 {
                    let _ = pair_tx.send(());
                } else {
                    let _ = tokio::time::timeout(Duration::from_secs(10), paired.recv()).await;
                }
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "together.js",
        "import http from 'k6/http';\n\
         import { check } from 'k6';\n\
         export const options = { iterations: 1, thresholds: { checks: ['rate==1'] } };\n\
         export default async function () {\n\
           const url = __ENV.PAIR_URL;\n\
           const rs = await Promise.all([\n\
             http.asyncRequest('GET', url, null, { timeout: '3s' }),\n\
             http.asyncRequest('GET', url, null, { timeout: '3s' }),\n\
           ]);\n\
           check(rs, { 'both answered': (r) => r.every((x) => x.status === 200) });\n\
         }\n",
    );
    let url = format!("PAIR_URL=http://127.0.0.1:{port}/");
    let out = volley_async(
        vec!["run".into(), "-q".into(), "-e".into(), url, script],
        Vec::new(),
    )
    .await;
    server.abort();
    assert_passed(&out);
}

#[test]
fn every_vu_is_initialised_before_the_load_starts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Each VU's init ends after a busy 200 ms; k6 initialises every VU
    // before the start, so no scenario starts before any init ended.
    let script = write(
        dir.path(),
        "prewarm.js",
        "const t0 = Date.now();\n\
         while (Date.now() - t0 < 200) {}\n\
         const initEnd = Date.now();\n\
         import exec from 'k6/execution';\n\
         import { check } from 'k6';\n\
         export const options = { vus: 3, iterations: 6, thresholds: { checks: ['rate==1'] } };\n\
         export default function () {\n\
           check(exec.scenario.startTime, { 'started after init': (s) => s >= initEnd - 1 });\n\
         }\n",
    );
    let out = volley(&["run", "-q", &script], &[]);
    assert_passed(&out);
}

/// Credentials in a URL never reach a tag (k6 masks them), and cookies
/// named like Object.prototype's members are plain cookies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_stay_out_of_tags_and_odd_cookie_names_are_cookies() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("dir");
    let host = target.addr.to_string();
    let script = write(
        dir.path(),
        "masked.js",
        &format!(
            r#"
import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ iterations: 1 }};
export default function () {{
  http.get('http://alice:s3cret@{host}/headers');
  const r = http.get('http://{host}/cookies/set?constructor=1&toString=2', {{ redirects: 0 }});
  check(r, {{ 'odd names parse': (x) => x.cookies.constructor[0].value === '1' && x.cookies.toString[0].value === '2' }});
  const jar = http.cookieJar();
  check(jar.cookiesForURL('http://{host}/'), {{ 'odd names in the jar': (c) => c.constructor[0] === '1' }});
}}
"#
        ),
    );
    let lines = dir.path().join("out.jsonl");
    let out = volley_async(
        vec![
            "run".into(),
            "--quiet".into(),
            "--out".into(),
            format!("json={}", lines.display()),
            script,
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = std::fs::read_to_string(&lines).expect("json lines");
    assert!(
        !json.contains("s3cret"),
        "a password in the results: {json}"
    );
    assert!(json.contains("****:****@"), "{json}");
    assert!(
        stdout(&out).contains("✓ odd names parse"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("✓ odd names in the jar"),
        "{}",
        stdout(&out)
    );
}
