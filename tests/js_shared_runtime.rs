//! Many script VUs on one worker thread, sharing its QuickJS runtime: each
//! keeps its own state and frames while the others are suspended inside
//! JavaScript, the run ends when they do, and the bounds (deep recursion,
//! a busy loop, unbounded allocation) end one VU's iteration, never the
//! process; a VU closing (its context collected later) disturbs no other.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{base, export, start_target, stderr, stdout, volley, volley_async};

/// Longest any run here may take; it is killed past this.
const LIMIT: Duration = Duration::from_secs(60);

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the script");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

/// Runs `script` against `target_url` (its `TARGET_URL`); it must exit 0.
/// Returns its `--summary-export`, written in `dir`.
async fn run_passing(script: &str, dir: &tempfile::TempDir, target_url: &str) -> serde_json::Value {
    let summary = dir.path().join("summary.json");
    let out = volley_async(
        vec![
            "run".into(),
            "-q".into(),
            "-e".into(),
            format!("TARGET_URL={target_url}"),
            "--summary-export".into(),
            summary.to_string_lossy().into_owned(),
            script.to_owned(),
        ],
        LIMIT,
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    export(&summary)
}

/// 24 VUs on (at most) two worker threads take turns inside JavaScript:
/// each one's module state, globals and backtraces are its own, and the run
/// ends once they are done.
const TAKING_TURNS: &str = r#"
import http from 'k6/http';
import { check, sleep } from 'k6';

export const options = { vus: 24, iterations: 96, thresholds: { checks: ['rate==1'] } };

let calls = 0;
const me = __VU;

function inner() {
  http.get(__ENV.TARGET_URL);
  sleep(0.005);
  return new Error('here').stack;
}

export default function () {
  calls += 1;
  const stack = inner();
  const frames = stack.split('\n').filter((l) => l.trim().startsWith('at '));
  check(frames, {
    'module state is the VU own': () => calls === __ITER + 1 && me === __VU,
    'a backtrace names only its own frames': (f) =>
      f.length === 2 && f[0].includes('inner') && f[1].includes('default'),
  });
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vus_sharing_a_runtime_keep_their_own_state_and_frames() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(dir.path(), "turns.js", TAKING_TURNS);
    let doc = run_passing(&script, &dir, &format!("{}/", base(&target))).await;
    assert_eq!(doc["metrics"]["iterations"]["count"], 96.0);
    assert_eq!(doc["metrics"]["http_reqs"]["count"], 96.0);
    // Both checks in every iteration, none failed.
    assert_eq!(doc["metrics"]["checks"]["passes"], 192, "{doc}");
    assert_eq!(doc["metrics"]["checks"]["fails"], 0, "{doc}");
}

/// 600 VUs: more than one realm (256 VUs each) per worker thread on
/// machines with up to two CPUs. Whatever
/// k6 keeps per VU stays per VU although the VUs of a realm share its
/// context: module state (also of a local module), a wrapped `http.get`
/// (the default export object is each VU's own), `__ENV` changes, timers,
/// the response callback and the `randomSeed` stream.
const PER_VU: &str = r#"
import http from 'k6/http';
import { check, randomSeed } from 'k6';
import { count, counted } from './counter.js';

export const options = {
  scenarios: { each: { executor: 'per-vu-iterations', vus: 600, iterations: 2 } },
  thresholds: { checks: ['rate==1'] },
};

const get = http.get;
let wrapped = 0;
http.get = (url, params) => { wrapped += 1; return get(url, params); };
__ENV.MINE = String(__VU);
if (__VU % 2 === 0) http.setResponseCallback(http.expectedStatuses(404));
randomSeed(__VU);
const first = Math.random();

export default function () {
  count();
  const r = http.get(`${__ENV.TARGET_URL}/status/404`);
  let fired = 0;
  setTimeout(() => { fired = __VU; }, 1);
  randomSeed(__VU);
  check(r, {
    'module state is the VU own': () => counted() === __ITER + 1 && wrapped === __ITER + 1,
    '__ENV is the VU own': () => __ENV.MINE === String(__VU),
    'randomSeed is the VU own': () => Math.random() === first,
  });
  return new Promise((resolve) => setTimeout(() => {
    check(fired, { 'timers are the VU own': (f) => f === __VU });
    resolve();
  }, 2));
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vus_sharing_a_realm_keep_what_k6_keeps_per_vu() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    write(
        dir.path(),
        "counter.js",
        "let n = 0;\nexport function count() { n += 1; }\nexport function counted() { return n; }\n",
    );
    let script = write(dir.path(), "per_vu.js", PER_VU);
    let doc = run_passing(&script, &dir, &base(&target)).await;
    assert_eq!(doc["metrics"]["iterations"]["count"], 1200.0, "{doc}");
    assert_eq!(doc["metrics"]["checks"]["passes"], 4800, "{doc}");
    assert_eq!(doc["metrics"]["checks"]["fails"], 0, "{doc}");
    // Odd VUs kept k6's default callback (a 404 failed), even VUs expect
    // 404: each VU ran 2 iterations, so half of the requests failed.
    assert_eq!(doc["metrics"]["http_req_failed"]["passes"], 600, "{doc}");
}

#[test]
fn deep_recursion_ends_the_iteration_not_the_process() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // With PAUSE, the recursion sleeps now and then on its way down, so
    // the VUs take turns on their thread with frames on their stacks.
    let script = write(
        dir.path(),
        "recursion.js",
        "import { sleep } from 'k6';\n\
         export const options = { vus: 4, iterations: 8 };\n\
         function down(n) { if (__ENV.PAUSE && n % 50 === 0) sleep(0.001); return 1 + down(n + 1); }\n\
         export default function () { down(0); }\n",
    );
    for pause in ["", "1"] {
        let env = format!("PAUSE={pause}");
        let out = volley(&["run", "-q", "-e", &env, &script], LIMIT);
        assert_eq!(
            out.status.code(),
            Some(0),
            "PAUSE={pause}: {}",
            stderr(&out)
        );
        let text = stdout(&out);
        let line = text
            .lines()
            .find(|l| l.contains("Maximum call stack size exceeded"))
            .unwrap_or_else(|| panic!("PAUSE={pause}: no error line in {text}"));
        assert!(
            line.trim_start().starts_with('8'),
            "PAUSE={pause}: every iteration ends in the error: {line}"
        );
    }
}

#[test]
fn one_vu_allocating_without_bound_fails_its_iteration_and_the_others_go_on() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "hog.js",
        "import { sleep } from 'k6';\n\
         export const options = { scenarios: { s: { executor: 'per-vu-iterations', vus: 4, iterations: 3 } } };\n\
         export default function () {\n\
           if (__VU === 1 && __ITER === 0) {\n\
             const keep = [];\n\
             while (true) { keep.push(new Array(1 << 16).fill(7)); }\n\
           }\n\
           sleep(0.01);\n\
           const mine = new Array(1000).fill(__VU);\n\
           if (mine[999] !== __VU) throw new Error('lost my array');\n\
         }\n",
    );
    let summary = dir.path().join("summary.json");
    let out = volley(
        &[
            "run",
            "-q",
            "--summary-export",
            &summary.to_string_lossy(),
            &script,
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("out of memory"))
        .unwrap_or_else(|| panic!("no out-of-memory line in {text}"));
    assert!(line.trim_start().starts_with('1'), "only the hog's: {line}");
    assert!(!text.contains("lost my array"), "{text}");
    // The failed iteration counts, as in k6; every other one ran.
    assert_eq!(export(&summary)["metrics"]["iterations"]["count"], 12.0);
}

#[test]
fn one_vus_busy_loop_leaves_the_others_running_and_is_cut_at_the_graceful_stop() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(
        dir.path(),
        "busy.js",
        "import { sleep } from 'k6';\n\
         export const options = { scenarios: { s: { executor: 'constant-vus', vus: 4,\n\
           duration: '1s', gracefulStop: '200ms' } } };\n\
         export default function () {\n\
           if (__VU === 1) { while (true) {} }\n\
           sleep(0.05);\n\
         }\n",
    );
    let summary = dir.path().join("summary.json");
    let started = std::time::Instant::now();
    let out = volley(
        &[
            "run",
            "-q",
            "--summary-export",
            &summary.to_string_lossy(),
            &script,
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the busy VU was cut at the graceful stop"
    );
    // The three others iterate about every 50 ms for a second; the busy
    // one's iteration is interrupted and does not count.
    let iterations = export(&summary)["metrics"]["iterations"]["count"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(iterations >= 15.0, "the others went on: {iterations}");
}

/// VUs close while others of their thread go on (ramping down, then up
/// again): a closed VU's context stays in the runtime until QuickJS
/// collects it, which happens while another VU runs and allocates.
const RAMPING: &str = r#"
import { sleep } from 'k6';

export const options = {
  scenarios: {
    s: {
      executor: 'ramping-vus',
      startVUs: 16,
      stages: [
        { duration: '300ms', target: 16 },
        { duration: '300ms', target: 2 },
        { duration: '600ms', target: 2 },
        { duration: '300ms', target: 12 },
      ],
      gracefulRampDown: '0s',
    },
  },
};

const mine = { vu: __VU, fns: [] };
mine.self = mine;
for (let i = 0; i < 20; i++) mine.fns.push(() => mine.vu + i);
Promise.resolve().then(() => { mine.ready = true; });

export default function () {
  const garbage = [];
  for (let i = 0; i < 2000; i++) garbage.push({ i, pair: [i, mine], f: () => i });
  if (!mine.ready || mine.fns[3]() !== __VU + 3) throw new Error('lost my state');
  sleep(0.005);
}
"#;

#[test]
fn vus_closing_while_others_run_leave_them_their_state() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write(dir.path(), "ramping.js", RAMPING);
    let summary = dir.path().join("summary.json");
    let out = volley(
        &[
            "run",
            "-q",
            "--summary-export",
            &summary.to_string_lossy(),
            &script,
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("lost my state"), "{text}");
    let iterations = export(&summary)["metrics"]["iterations"]["count"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(iterations >= 20.0, "the VUs iterated: {iterations}");
}
