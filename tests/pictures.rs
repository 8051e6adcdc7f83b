//! Volley's pages in a real browser (headless Chromium, Debian's
//! `chromium`, installed by `scripts/test`): the `--report` file of a local
//! run and of a fleet test, opened from `file://`; the `--dashboard` of a
//! local run while it goes; an agent's `/ui` while a fleet test runs and
//! after it. Each is checked for its structure, for numbers equal to the
//! run's summary export, for no page or console error, and for charts that
//! are drawn (pixels in the screenshot's chart areas). With
//! `VOLLEY_TEST_SCREENSHOTS=DIR` the screenshots are kept there.

mod browser;
mod common;
mod fleet;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use browser::chromium::{Browser, attr};
use browser::page::{assert_report_matches, file_url, header, http};
use browser::{assert_charts_drawn, assert_clean};
use common::{base, start_target, stderr, stdout, volley_async};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Longest wait for a page to show what a test expects.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// A request name that would break out of a `<script>` or inject markup
/// if the page did not escape what comes from the plan.
const HOSTILE: &str = "</script><img src=x onerror=alert(1)>";

fn plan_text(base: &str, vus: u32, duration: &str) -> String {
    format!(
        r#"
scenarios:
  main:
    executor: constant-vus
    vus: {vus}
    duration: {duration}
thresholds:
  http_req_failed: ["rate<0.01"]
  "http_req_duration{{name:{HOSTILE}}}": ["p(95)<60000"]
flow:
  - request:
      name: "{HOSTILE}"
      url: "{base}/json"
      check:
        - status: 200
  - get:
      url: "{base}/status/503"
      check:
        - status: 200
  - sleep: 50ms
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_file_works_offline_in_a_browser() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, plan_text(&base(&target), 2, "3s")).expect("plan written");
    let report = dir.path().join("out.html");
    let summary = dir.path().join("summary.json");
    let out = volley_async(
        vec![
            "run".into(),
            plan.display().to_string(),
            "--quiet".into(),
            "--report".into(),
            report.display().to_string(),
            "--summary-export".into(),
            summary.display().to_string(),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    target.shutdown().await;

    let html = std::fs::read_to_string(&report).expect("the report was written");
    // One file: nothing to fetch, and the plan's text cannot end a script.
    assert!(html.contains("connect-src 'none'"));
    for fetching in ["<script src", "<link", "http://", "https://", "url("] {
        assert!(!html.contains(fetching), "{fetching} in the report");
    }
    assert_eq!(html.matches("</script>").count(), 3);

    let export = common::export(&summary);
    let url = file_url(&report);
    let shown = plan.display().to_string();
    tokio::task::spawn_blocking(move || {
        let mut page = Browser::open(&url);
        page.wait_until("document.body.dataset.rendered", PAGE_WAIT);
        assert_clean(&mut page);
        let dom = page.dom();
        assert_eq!(
            attr(&dom, "id=\"status\"", "data-status").as_deref(),
            Some("failed")
        );
        assert!(dom.contains(&format!("<h1 id=\"title\">{shown}</h1>")));
        assert_report_matches(&dom, &export);
        // Two thresholds, one failed: http_req_failed (half the requests get 503).
        assert_eq!(dom.matches("data-threshold=").count(), 2);
        assert_eq!(dom.matches("data-ok=\"false\"").count(), 1);
        // The hostile name is shown as text, not run as markup.
        assert!(!dom.contains("<img"), "markup from the plan was injected");
        assert!(
            dom.contains("&lt;/script&gt;&lt;img src=x"),
            "the name shows as text"
        );
        assert!(dom.contains("data-scenario=\"main\""));
        assert!(dom.contains("status 503"), "the errors table");
        assert_charts_drawn(&mut page, "report");
    })
    .await
    .expect("the page checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_local_run_while_it_goes() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, plan_text(&base(&target), 1, "12s")).expect("plan written");
    // k6's variable for the report file, besides the dashboard.
    let export_file = dir.path().join("exported.html");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["run", "--quiet", "--no-thresholds"])
        .arg(&plan)
        .env("K6_WEB_DASHBOARD", "true")
        .env("K6_WEB_DASHBOARD_PORT", "0")
        .env("K6_WEB_DASHBOARD_EXPORT", &export_file)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("volley starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("stderr readable") {
            if let Some(url) = line.strip_prefix("dashboard: ") {
                return url.to_owned();
            }
        }
        panic!("volley ended without printing the dashboard's URL");
    })
    .await
    .expect("the dashboard's URL within 20 s");
    // Keep reading stderr so the child never blocks on it.
    let drain = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "loopback by default: {url}"
    );
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("an address");

    // The server takes GET only and serves two paths.
    let (status, headers, _) = tokio::task::spawn_blocking(move || http(addr, "POST", "/data"))
        .await
        .expect("asked");
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
    let (status, _, _) = tokio::task::spawn_blocking(move || http(addr, "GET", "/../etc/passwd"))
        .await
        .expect("asked");
    assert_eq!(status, 404);

    // Wait (bounded) until the data holds two intervals, so lines can be drawn.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = tokio::task::spawn_blocking(move || http(addr, "GET", "/data"))
            .await
            .expect("asked");
        assert_eq!(status, 200);
        let data: serde_json::Value = serde_json::from_str(&body).expect("JSON data");
        assert_eq!(data["meta"]["status"], "running");
        if data["timeline"].as_array().is_some_and(|t| t.len() >= 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no intervals on the dashboard: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::task::spawn_blocking(move || {
        let mut page = Browser::open(&url);
        // Rendered from the embedded data, then again from polls.
        page.wait_until("Number(document.body.dataset.rendered) >= 3", PAGE_WAIT);
        let first = page.eval("document.getElementById('chart-rps').dataset.points");
        page.wait_until(
            &format!("document.getElementById('chart-rps').dataset.points !== {first}"),
            PAGE_WAIT,
        );
        assert_clean(&mut page);
        let dom = page.dom();
        assert_eq!(
            attr(&dom, "id=\"status\"", "data-status").as_deref(),
            Some("running")
        );
        assert!(
            dom.contains("data-metric=\"http_reqs\""),
            "the summary so far"
        );
        assert!(dom.contains("data-check=\"status is 200\""));
        assert_charts_drawn(&mut page, "dashboard");
    })
    .await
    .expect("the page checked");

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the run ends within 30 s")
        .expect("volley ran");
    let rest = drain.await.unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{}", rest.join("\n"));
    let exported = std::fs::read_to_string(&export_file).expect("K6_WEB_DASHBOARD_EXPORT written");
    assert!(
        exported.contains("\"status\":\"passed\""),
        "the final verdict is in the file"
    );
    assert!(
        exported.contains("connect-src 'none'"),
        "the file is the offline report"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_report_and_the_agents_ui() {
    let target = fleet::target().await;
    let fleet = fleet::Fleet::start(
        2,
        fleet::FleetOptions {
            regions: vec!["eu-west".into(), "us-east".into()],
            ..fleet::FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms");
    let plan = fleet.dir().join("pictures.yaml");
    std::fs::write(
        &plan,
        plan_text(&format!("http://{}", target.addr), 2, "10s"),
    )
    .expect("plan written");
    let report = fleet.dir().join("fleet.html");
    let summary = fleet.dir().join("fleet-summary.json");
    let cli = fleet.run_cli([
        std::ffi::OsStr::new("--quiet"),
        std::ffi::OsStr::new("--report"),
        report.as_os_str(),
        std::ffi::OsStr::new("--summary-export"),
        summary.as_os_str(),
        plan.as_os_str(),
    ]);

    // /ui while the test runs: the page, its headers, and what it shows.
    let api = fleet.agents[1].api;
    let (status, headers, page) = tokio::task::spawn_blocking(move || http(api, "GET", "/ui"))
        .await
        .expect("asked");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        header(&headers, "content-security-policy")
            .is_some_and(|p| p.contains("connect-src 'self'"))
    );
    assert!(page.contains("id=\"members\""));
    let (status, _, _) = tokio::task::spawn_blocking(move || http(api, "POST", "/ui"))
        .await
        .expect("asked");
    assert_eq!(status, 405, "/ui is read-only");

    let client = fleet.client(1);
    let id = fleet
        .wait_for("a running test", Duration::from_secs(30), || async {
            let tests = client.list_tests().await.map_err(|e| e.to_string())?;
            let running = tests.iter().find(|t| t.phase == "running");
            match running {
                Some(t) => match client.get_test(&t.id).await {
                    // Three merged intervals: a page opened now starts with them.
                    Ok(v) if v.live.as_ref().is_some_and(|l| l.recent.len() >= 3) => {
                        Ok(Some(t.id.clone()))
                    }
                    Ok(v) => Err(format!("{v:?}")),
                    Err(e) => Err(e.to_string()),
                },
                None => Err(format!("{tests:?}")),
            }
        })
        .await
        .expect("the test runs");
    let ui = format!("http://{api}/ui");
    let agent_ids: Vec<String> = fleet.agents.iter().map(|a| a.id.clone()).collect();
    let page = tokio::task::spawn_blocking({
        let ui = ui.clone();
        let id = id.clone();
        move || {
            let mut page = Browser::open(&ui);
            // The first render already charts the intervals before the
            // page opened (the API's recent points), not only later polls.
            page.wait_until("document.getElementById('running-id')", PAGE_WAIT);
            let first: usize = page
                .eval("document.getElementById('chart-rps').dataset.points")
                .as_str()
                .and_then(|n| n.parse().ok())
                .expect("the rps chart was drawn");
            assert!(first >= 3, "{first} points at the first render");
            assert_clean(&mut page);
            let dom = page.dom();
            for agent in &agent_ids {
                assert!(
                    dom.contains(&format!("data-node=\"{agent}\"")),
                    "member {agent}"
                );
            }
            assert!(
                dom.contains("eu-west") && dom.contains("us-east"),
                "labels and regions"
            );
            assert!(dom.contains(&format!("<strong id=\"running-id\">{id}</strong>")));
            assert!(dom.contains("data-phase=\"running\""));
            assert!(dom.contains("id=\"running-regions\""));
            assert!(
                dom.contains(&format!("data-test=\"{id}\"")),
                "the test list"
            );
            assert_charts_drawn(&mut page, "ui-running");
            page
        }
    })
    .await
    .expect("the page checked");

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

    // The fleet's report file.
    let export = common::export(&summary);
    let url = file_url(&report);
    let agent_ids: Vec<String> = fleet.agents.iter().map(|a| a.id.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let mut report_page = Browser::open(&url);
        report_page.wait_until("document.body.dataset.rendered", PAGE_WAIT);
        assert_clean(&mut report_page);
        let dom = report_page.dom();
        assert_report_matches(&dom, &export);
        let points: usize = attr(&dom, "id=\"chart-rps\"", "data-points")
            .and_then(|n| n.parse().ok())
            .expect("the rps chart was drawn");
        assert!(
            points >= 6,
            "a point per merged interval of a 10 s test: {points}"
        );
        assert!(
            !dom.contains("<section id=\"fleet\" hidden"),
            "the fleet section shows"
        );
        let fleet_section = dom
            .split("<section id=\"fleet\"")
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .unwrap_or_default()
            .to_owned();
        assert!(
            fleet_section.contains("id=\"start-spread\">Start spread: ")
                && !fleet_section.contains("not known"),
            "{fleet_section}"
        );
        for region in ["eu-west", "us-east"] {
            assert!(
                dom.contains(&format!("data-dimension=\"region\" data-name=\"{region}\"")),
                "region {region} in the breakdown"
            );
        }
        for agent in &agent_ids {
            assert!(
                dom.contains(&format!("data-dimension=\"agent\" data-name=\"{agent}\"")),
                "agent {agent} in the breakdown"
            );
        }
        assert_charts_drawn(&mut report_page, "fleet-report");

        // After the test: the same /ui page lists it and shows its results.
        let mut page = page;
        page.wait_until("document.getElementById('past-text')", PAGE_WAIT);
        assert_clean(&mut page);
        let dom = page.dom();
        assert!(dom.contains(&format!("data-test=\"{id}\"")));
        assert!(dom.contains("http_reqs"));
    })
    .await
    .expect("the pages checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dashboard_settings_stop_the_run_before_it_starts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = dir.path().join("plan.yaml");
    // Never reached: the run must not start.
    std::fs::write(&plan, plan_text("http://127.0.0.1:9", 1, "1s")).expect("plan written");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = taken.local_addr().expect("its address").port().to_string();
    for (name, value, says) in [
        (
            "K6_WEB_DASHBOARD_PORT",
            "web",
            "K6_WEB_DASHBOARD_PORT=\"web\": expected a port number",
        ),
        (
            "K6_WEB_DASHBOARD_HOST",
            "localhost",
            "expected an IP address",
        ),
        (
            "K6_WEB_DASHBOARD_PORT",
            port.as_str(),
            "--dashboard: cannot listen on 127.0.0.1:",
        ),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
            .args(["run", "--quiet", "--dashboard"])
            .arg(&plan)
            .env(name, value)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(20), out)
            .await
            .expect("volley ends within 20 s")
            .expect("volley runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(104), "{name}={value}: {err}");
        assert!(err.contains(says), "{name}={value}: {err}");
    }
    drop(taken);

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["run", "--quiet", "--report"])
        .arg(dir.path().join("no-such-dir").join("r.html"))
        .arg(&plan)
        .stdin(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("volley ends within 20 s")
        .expect("volley runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "{err}");
    assert!(
        err.contains("--report (K6_WEB_DASHBOARD_EXPORT): cannot write"),
        "{err}"
    );
}
