//! k6 scripts on a fleet of real `volley agent` processes on loopback: the
//! script travels with its local modules and opened files, `setup()` runs
//! once for the whole fleet (one login, its token seen by every agent's
//! VUs), `teardown()` once after the end, and `exec.test.abort()` in one
//! VU on one agent stops every agent, with `volley run --agent` exiting
//! 108 as k6 does.

mod fleet;

use std::sync::Arc;
use std::time::Duration;

use fleet::{Fleet, FleetOptions, results, target};
use tokio::time::Instant;
use volley::api::SubmitRequest;
use volley::script::bundle::ScriptBundle;
use volley::target::{Route, TargetStats};

const LOGIN_SCRIPT: &str = r#"
import http from 'k6/http';
import { check } from 'k6';
import { label } from './lib/label.js';

const users = JSON.parse(open('./users.json'));

export const options = {
  scenarios: { main: { executor: 'shared-iterations', vus: 6, iterations: 60, maxDuration: '30s' } },
  thresholds: { checks: ['rate==1'] },
};

export function setup() {
  const res = http.get(`${__ENV.TARGET_URL}/json`);
  return { token: res.json().token };
}

export default function (data) {
  const res = http.get(`${__ENV.TARGET_URL}/headers`, {
    headers: { Authorization: `Bearer ${data.token}` },
    tags: { name: label },
  });
  check(res, {
    'the token from setup() is sent': (r) => r.json().authorization === `Bearer ${data.token}`,
    'the opened file travelled': () => users.length === 2 && users[1] === 'bob',
  });
}

export function teardown(data) {
  http.get(`${__ENV.TARGET_URL}/status/204`);
}
"#;

fn write_login_script(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("lib")).expect("lib/");
    std::fs::write(
        dir.join("lib/label.js"),
        "export const label = 'with-token';\n",
    )
    .expect("module");
    std::fs::write(dir.join("users.json"), r#"["alice", "bob"]"#).expect("data file");
    let main = dir.join("login.js");
    std::fs::write(&main, LOGIN_SCRIPT).expect("script");
    main
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_logs_in_once_and_every_agents_vus_send_its_token() {
    let target = target().await;
    let fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    let main = write_login_script(fleet.dir());
    let env = [("TARGET_URL".to_owned(), format!("http://{}", target.addr))];
    let script = volley::script::load(&main, env.clone().into_iter().collect())
        .expect("the script loads here");
    let request = SubmitRequest {
        env: env.into_iter().collect(),
        script: Some(Box::new(
            ScriptBundle::from_script(&script).expect("it bundles"),
        )),
        ..SubmitRequest::default()
    };
    // Submitted to the second agent: any agent accepts a script.
    let view = fleet.run_to_seal(1, &request).await;
    assert!(view.passed, "{}", view.text);
    assert_eq!(
        results::root_check(&view.k6_export, "the token from setup() is sent"),
        (60, 0),
        "{}",
        view.text
    );
    assert_eq!(
        results::root_check(&view.k6_export, "the opened file travelled"),
        (60, 0)
    );
    // One login for the whole fleet; every iteration reached the target.
    assert_eq!(target.stats.route(Route::Json), 1, "setup() ran once");
    assert_eq!(target.stats.route(Route::Headers), 60);
    results::assert_every_agent_sent(&view.summary, 3);
    // teardown() runs once, after the seal.
    fleet
        .wait_route_once("teardown() ran", &target.stats, Route::Status)
        .await
        .expect("teardown() runs once");
}

const ABORT_SCRIPT: &str = r#"
import http from 'k6/http';
import { sleep } from 'k6';
import exec from 'k6/execution';

export const options = {
  scenarios: { main: { executor: 'constant-vus', vus: 6, duration: '30s' } },
};

export default function () {
  http.get(`${__ENV.TARGET_URL}/`);
  if (exec.vu.idInTest === 5 && exec.vu.iterationInScenario === 20) {
    http.get(`${__ENV.TARGET_URL}/status/299`);
    exec.test.abort('enough');
  }
  sleep(0.05);
}
"#;

/// Polls the target until its request count has not grown for `settle`;
/// how long after `since` it last grew.
async fn quiet_after(stats: &TargetStats, since: Instant, settle: Duration) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = stats.requests();
    let mut last_change = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = stats.requests();
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= settle {
            break;
        }
    }
    last_change.saturating_duration_since(since)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_abort_in_one_vu_stops_the_fleet_and_exits_108() {
    let target = target().await;
    let fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    let main = fleet.dir().join("abort.js");
    std::fs::write(&main, ABORT_SCRIPT).expect("script");
    let cli = fleet.run_cli([
        "-e".into(),
        format!("TARGET_URL=http://{}", target.addr),
        main.display().to_string(),
    ]);
    let stats = Arc::clone(&target.stats);
    let aborted_at = fleet
        .wait_for("VU 5 aborts", Duration::from_secs(30), || {
            let stats = Arc::clone(&stats);
            async move { Ok((stats.route(Route::Status) > 0).then(Instant::now)) }
        })
        .await
        .expect("the aborting VU reached its iteration");
    let stopped_after = quiet_after(&target.stats, aborted_at, Duration::from_millis(500)).await;
    let out = tokio::time::timeout(Duration::from_secs(30), cli.wait_with_output())
        .await
        .expect("volley run --agent ends")
        .expect("its output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("load stopped {stopped_after:?} after the abort\n{stderr}");
    assert!(
        stopped_after < Duration::from_secs(1),
        "every agent stopped within 1 s of exec.test.abort(): {stopped_after:?}\n{}",
        fleet.logs()
    );
    assert_eq!(out.status.code(), Some(108), "{stderr}");
    assert!(
        stderr.contains("exec.test.abort()") && stderr.contains("enough"),
        "{stderr}"
    );
}

/// An agent whose load generator runs out of CPU is named in the fleet's
/// summary: agent-0 is pinned to one CPU (`taskset`, every thread) and
/// its VUs compute without pause; agent-1 is pinned to the other CPU. It
/// takes 6 of the 8 VUs (capacity 3:1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_agent_is_named_in_the_fleet_summary() {
    let fleet = Fleet::start(
        2,
        FleetOptions {
            capacities: vec![3.0, 1.0],
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    // Each agent on a CPU of its own: agent-1 must not take agent-0's CPU
    // (a generator starved by another process is not what this measures).
    for (agent, cpu) in [(0, "0"), (1, "1")] {
        let pinned = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpu])
            .arg(fleet.agents[agent].pid().to_string())
            .output()
            .expect("taskset (util-linux) runs");
        assert!(pinned.status.success(), "{pinned:?}");
    }
    let path = fleet.dir().join("busy.js");
    std::fs::write(
        &path,
        "export const options = { vus: 8, duration: '6s' };\n\
         export default function () { const t = Date.now(); let x = 0; while (Date.now() - t < 50) { x += 1; } }\n",
    )
    .expect("write the script");
    let script = volley::script::load(&path, Default::default()).expect("the script loads");
    let request = SubmitRequest {
        script: Some(Box::new(
            ScriptBundle::from_script(&script).expect("it bundles"),
        )),
        ..SubmitRequest::default()
    };
    let view = fleet.run_to_seal(1, &request).await;
    assert!(
        view.text
            .contains("agent agent-0: the load generator was saturated: it used")
            && view.text.contains("of its 1 CPU(s)"),
        "{}",
        view.text
    );
}
