//! `volley run --junit FILE`: the thresholds and checks of a real run as
//! JUnit XML, validated with `xmllint --schema` (Debian's libxml2-utils,
//! installed by `scripts/test`) against the JUnit schema in
//! `tests/fixtures/junit/junit.xsd`, and read back with XPath as a CI
//! server reads it: a test case per threshold and per check, a failure
//! for each failed threshold and each check that failed. Once for a local
//! run, once for a fleet test (`volley run --agent`), whose file holds
//! the fleet's merged results.

mod common;
mod fleet;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{base, start_target, stderr, stdout, volley_async};

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/junit/junit.xsd"
);

/// `xmllint` with `args`; its stdout, after checking it succeeded.
fn xmllint(args: &[&str]) -> String {
    let out = Command::new("xmllint")
        .args(args)
        .output()
        .expect("xmllint runs (scripts/test installs Debian's libxml2-utils)");
    assert!(
        out.status.success(),
        "xmllint {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn count(file: &Path, xpath: &str) -> f64 {
    let path = file.to_str().expect("a UTF-8 path");
    xmllint(&["--xpath", &format!("count({xpath})"), path])
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("count({xpath}): {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_and_checks_are_junit_test_cases() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 5
thresholds:
  http_req_duration: ["p(95)<5000"]
  "http_req_duration{{status:200}}": ["max<60000"]
  http_req_failed: ["rate<0.01"]
flow:
  - get:
      url: "{base}/json"
      check:
        - status: 200
  - get:
      url: "{base}/status/503"
      check:
        - status: 200
"#,
            base = base(&target)
        ),
    )
    .expect("plan written");
    let junit = dir.path().join("junit.xml");
    let out = volley_async(
        vec![
            "run".into(),
            plan.display().to_string(),
            "--quiet".into(),
            "--junit".into(),
            junit.display().to_string(),
        ],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    let path = junit.to_str().expect("a UTF-8 path");
    xmllint(&["--noout", "--schema", SCHEMA, path]);

    assert_eq!(count(&junit, "/testsuites/testsuite"), 2.0);
    assert_eq!(
        count(&junit, "//testsuite[@name='thresholds']/testcase"),
        3.0
    );
    // Both steps' `status: 200` are one check, as k6 counts a name in a group.
    assert_eq!(count(&junit, "//testsuite[@name='checks']/testcase"), 1.0);
    // http_req_failed fails (half the requests get 503); so does the check.
    assert_eq!(count(&junit, "//testcase/failure"), 2.0);
    assert_eq!(
        count(&junit, "/testsuites[@tests='4' and @failures='2']"),
        1.0
    );
    assert_eq!(
        count(
            &junit,
            "//testcase[@name='http_req_failed - rate&lt;0.01']/failure[@type='threshold']"
        ),
        0.0,
        "XPath sees the unescaped name"
    );
    assert_eq!(
        count(
            &junit,
            "//testcase[@name='http_req_failed - rate<0.01']/failure[@type='threshold']"
        ),
        1.0
    );
    assert_eq!(
        count(
            &junit,
            "//testcase[@name='http_req_duration - p(95)<5000' and not(failure)]"
        ),
        1.0
    );
    assert_eq!(
        count(
            &junit,
            "//failure[@type='check' and @message='10 of 20 failed']"
        ),
        1.0,
        "{}",
        std::fs::read_to_string(&junit).unwrap_or_default()
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_test_writes_its_merged_results_as_junit() {
    let target = fleet::target().await;
    let fleet = fleet::Fleet::start(2, fleet::FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan = fleet.dir().join("junit-plan.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"
scenarios:
  shared:
    executor: shared-iterations
    vus: 2
    iterations: 10
    maxDuration: 30s
thresholds:
  http_req_failed: ["rate<0.01"]
  iterations: ["count==10"]
flow:
  - get:
      url: "http://{addr}/json"
      check:
        - status: 200
  - get:
      url: "http://{addr}/status/503"
      check:
        - status: 200
"#,
            addr = target.addr
        ),
    )
    .expect("plan written");
    let junit = fleet.dir().join("fleet-junit.xml");
    let cli = fleet.run_cli([
        std::ffi::OsStr::new("--quiet"),
        std::ffi::OsStr::new("--junit"),
        junit.as_os_str(),
        plan.as_os_str(),
    ]);
    let out = tokio::time::timeout(Duration::from_secs(60), cli.wait_with_output())
        .await
        .expect("volley run --agent ends within 60 s")
        .expect("volley run --agent runs");
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        fleet.logs()
    );
    let path = junit.to_str().expect("a UTF-8 path");
    xmllint(&["--noout", "--schema", SCHEMA, path]);
    assert_eq!(
        count(&junit, "//testsuite[@name='thresholds']/testcase"),
        2.0
    );
    assert_eq!(
        count(
            &junit,
            "//testcase[@name='iterations - count==10' and not(failure)]"
        ),
        1.0,
        "every agent's iterations, merged"
    );
    assert_eq!(
        count(
            &junit,
            "//failure[@type='check' and @message='10 of 20 failed']"
        ),
        1.0,
        "{}",
        std::fs::read_to_string(&junit).unwrap_or_default()
    );
    assert_eq!(
        count(&junit, "/testsuites[@tests='3' and @failures='2']"),
        1.0
    );
}
