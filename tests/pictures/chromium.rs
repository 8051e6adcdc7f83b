//! Headless Chromium (Debian's `chromium`, installed by `scripts/test`) as
//! a test instrument: a page's DOM after its scripts ran, a screenshot,
//! and what the page wrote to its console. Every run has its own user
//! data directory and a deadline.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The window both the DOM and the screenshot are taken in, so boxes read
/// from the DOM are where the screenshot has them.
pub const WINDOW: (u32, u32) = (1280, 1600);

/// Longest a Chromium run may take.
const LIMIT: Duration = Duration::from_secs(60);

/// What a Chromium run left.
pub struct Run {
    pub dom: String,
    /// Chromium's log (`--enable-logging=stderr`): the page's console
    /// messages and uncaught errors show here.
    pub log: String,
}

impl Run {
    /// Console lines and uncaught errors of the page: Volley's pages write
    /// nothing to the console, so any line is a problem.
    pub fn console_problems(&self) -> Vec<String> {
        self.log
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_owned)
            .collect()
    }
}

fn chromium() -> Command {
    let found = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("chromium is installed (scripts/test installs Debian's chromium)");
    Command::new(found)
}

fn run(profile: &Path, extra: &[String], url: &str, budget: Duration) -> Run {
    let mut cmd = chromium();
    cmd.args([
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
    .arg(format!("--virtual-time-budget={}", budget.as_millis()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("chromium starts");
    let deadline = Instant::now() + LIMIT;
    let out = loop {
        match child.try_wait() {
            Ok(Some(_)) => break child.wait_with_output().expect("chromium's output"),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("chromium's output");
                panic!(
                    "chromium did not end within {LIMIT:?} on {url}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Err(e) => panic!("waiting for chromium: {e}"),
        }
    };
    assert!(
        out.status.success(),
        "chromium failed on {url}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        log: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The DOM of `url` once its scripts had `budget` of (virtual) time.
pub fn dump_dom(url: &str, budget: Duration) -> Run {
    let profile = tempfile::tempdir().expect("a profile directory");
    run(profile.path(), &["--dump-dom".to_owned()], url, budget)
}

/// A PNG screenshot of `url` after `budget`, with the run's log.
pub fn screenshot(url: &str, budget: Duration) -> (Vec<u8>, Run) {
    let profile = tempfile::tempdir().expect("a profile directory");
    let file = profile.path().join("shot.png");
    let run = run(
        profile.path(),
        &[format!("--screenshot={}", file.display())],
        url,
        budget,
    );
    let png = std::fs::read(&file).expect("chromium wrote the screenshot");
    (png, run)
}

/// The value of `attr` on the element whose opening tag contains
/// `marker` (e.g. `id="chart-rps"`).
pub fn attr(dom: &str, marker: &str, attr: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    let tag = &dom[start..end];
    let key = format!("{attr}=\"");
    let from = tag.find(&key)? + key.len();
    let to = from + tag[from..].find('"')?;
    Some(tag[from..to].to_owned())
}
