//! What the tests of Volley's pages (`tests/pictures.rs`) share: headless
//! Chromium over the DevTools protocol and a small PNG decoder, plus the
//! checks every page must pass (rendered, no page or console errors,
//! charts drawn).
#![allow(dead_code)]

pub mod chromium;
pub mod page;
pub mod png;

use chromium::{Browser, attr};

/// The chart canvases of every page.
pub const CHARTS: [&str; 4] = ["chart-rps", "chart-vus", "chart-latency", "chart-errors"];

/// Asserts the page caught no error and wrote nothing to its console.
pub fn assert_clean(browser: &mut Browser) {
    let problems = browser.problems();
    assert!(problems.is_empty(), "console and exceptions: {problems:#?}");
    let dom = browser.dom();
    let errors = attr(&dom, "<body", "data-page-errors");
    assert!(
        errors.is_none(),
        "the page caught {errors:?} errors: {}",
        dom.split("<ul id=\"page-errors\"")
            .nth(1)
            .and_then(|rest| rest.split("</ul>").next())
            .unwrap_or_default()
    );
}

/// Takes a screenshot and asserts each chart's plot area (as the page
/// reports it in `data-box`) holds drawn lines. With
/// `VOLLEY_TEST_SCREENSHOTS=DIR` the screenshot is kept as `DIR/NAME.png`
/// for a person to look at.
pub fn assert_charts_drawn(browser: &mut Browser, name: &str) {
    let dom = browser.dom();
    let shot = browser.screenshot();
    if let Some(dir) = std::env::var_os("VOLLEY_TEST_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, &shot)
            .unwrap_or_else(|e| panic!("cannot keep the screenshot {}: {e}", path.display()));
    }
    let image = png::decode(&shot).expect("the screenshot decodes");
    assert_eq!(
        (image.width, image.height),
        (chromium::WINDOW.0 as usize, chromium::WINDOW.1 as usize)
    );
    for chart in CHARTS {
        let marker = format!("id=\"{chart}\"");
        let boxed =
            attr(&dom, &marker, "data-box").unwrap_or_else(|| panic!("{chart} has no data-box"));
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
    // The page's corner is background: the counts above are the charts'.
    assert_eq!(image.saturated_in(0, 0, 8, 8), 0);
}
