//! Helpers of the tests of Volley's pages (`tests/pictures_*.rs`):
//! headless Chromium and a small PNG decoder, plus the checks every page
//! must pass (rendered, no page or console errors, charts drawn).
#![allow(dead_code)]

pub mod chromium;
pub mod png;

use std::time::Duration;

/// The chart canvases of every page.
pub const CHARTS: [&str; 4] = ["chart-rps", "chart-vus", "chart-latency", "chart-errors"];

/// Asserts the page rendered, caught no error and logged nothing.
pub fn assert_clean(run: &chromium::Run) {
    assert!(
        chromium::attr(&run.dom, "<body", "data-rendered").is_some(),
        "the page's script never finished a render:\n{}",
        run.dom
    );
    assert!(
        !run.dom.contains("data-page-errors"),
        "the page caught errors: {}",
        run.dom
            .split("id=\"page-errors\"")
            .nth(1)
            .unwrap_or_default()
    );
    let problems = run.console_problems();
    assert!(problems.is_empty(), "console: {problems:#?}");
}

/// Takes a screenshot of `url` and asserts each chart's box (as the page
/// reports it in `data-box`) holds drawn lines.
pub fn assert_charts_drawn(url: &str, dom: &str, budget: Duration) {
    let (bytes, run) = chromium::screenshot(url, budget);
    let problems = run.console_problems();
    assert!(problems.is_empty(), "console while screenshotting: {problems:#?}");
    let image = png::decode(&bytes).expect("the screenshot decodes");
    assert_eq!(
        (image.width, image.height),
        (chromium::WINDOW.0 as usize, chromium::WINDOW.1 as usize)
    );
    for chart in CHARTS {
        let marker = format!("id=\"{chart}\"");
        let boxed = chromium::attr(dom, &marker, "data-box")
            .unwrap_or_else(|| panic!("{chart} has no data-box"));
        let b: Vec<usize> = boxed
            .split(',')
            .map(|v| v.parse().expect("a number"))
            .collect();
        let drawn = image.saturated_in(b[0], b[1], b[2], b[3]);
        assert!(
            drawn > 200,
            "{chart} at {boxed}: only {drawn} coloured pixels in the screenshot"
        );
    }
    // The page's background around the charts is not coloured: the count
    // above is the charts', not the whole page's.
    assert!(image.saturated_in(0, 0, 8, 8) == 0);
}
