//! The HTML pages as strings: the report (one self-contained file, its data
//! embedded), the live dashboard (the same page, fed by polling) and the
//! agent's `/ui`. The styles and scripts are assets compiled in with
//! `include_str!`, inlined into each page: nothing is fetched from
//! anywhere but the page's own origin (the report: nothing at all, which
//! its Content-Security-Policy enforces).
//!
//! Everything from the plan or the run reaches the page as JSON inside a
//! `<script type="application/json">`, with `<`, `>`, `&` and the two
//! JavaScript line separators escaped, so no value can close the script
//! element; the page's script puts values into the DOM as text, never as
//! markup.

use serde::Serialize;

use super::model::ReportData;

const STYLE: &str = include_str!("assets/style.css");
const CHARTS: &str = include_str!("assets/charts.js");
const REPORT_JS: &str = include_str!("assets/report.js");
const REPORT_HTML: &str = include_str!("assets/report.html");
const UI_JS: &str = include_str!("assets/ui.js");
const UI_HTML: &str = include_str!("assets/ui.html");

/// The report file's policy: inline styles and scripts, images from data
/// URLs, and no connection anywhere.
pub const REPORT_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; img-src data:; connect-src 'none'; base-uri 'none'; \
     form-action 'none'";

/// A live page's policy: as the report's, plus requests to its own origin.
pub const LIVE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'";

/// How a report page gets its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageConfig {
    /// `None`: the embedded data is all there is (a report file).
    /// `Some`: poll this same-origin URL for fresh data.
    pub live_url: Option<String>,
    /// How often to poll, in milliseconds.
    pub period_ms: u64,
}

/// The report page: a file (`config.live_url` is `None`) or the live
/// dashboard.
pub fn report_page(data: &ReportData, config: &PageConfig) -> String {
    let csp = match config.live_url {
        Some(_) => LIVE_CSP,
        None => REPORT_CSP,
    };
    fill(
        REPORT_HTML,
        &[
            ("CSP", csp.to_owned()),
            ("TITLE", html_text(&format!("Volley: {}", data.meta.source))),
            ("STYLE", STYLE.to_owned()),
            ("DATA", json_in_script(data)),
            ("CONFIG", json_in_script(config)),
            ("SCRIPT", format!("{CHARTS}\n{REPORT_JS}")),
        ],
    )
}

/// The agent's `/ui` page: no data embedded, it asks the API.
pub fn ui_page() -> String {
    fill(
        UI_HTML,
        &[
            ("CSP", LIVE_CSP.to_owned()),
            ("STYLE", STYLE.to_owned()),
            ("SCRIPT", format!("{CHARTS}\n{UI_JS}")),
        ],
    )
}

/// `value` as JSON that can sit inside a `<script>` element: `<`, `>` and
/// `&` as `\u003c`, `\u003e`, `\u0026` (so `</script>` or `<!--` in a
/// value cannot end or confuse the element), U+2028 and U+2029 escaped too.
/// The result parses to the same value.
pub fn json_in_script<T: Serialize>(value: &T) -> String {
    // Serialising these plain data types cannot fail; an empty object
    // keeps the page working if it ever did.
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped for HTML text and attribute values.
pub fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces each `@@NAME@@` of `template` with its value, in one pass, so
/// a value is never scanned for markers itself. An unknown marker is left
/// as it is.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("@@") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let replaced = after.find("@@").and_then(|end| {
            let name = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (v, end))
        });
        match replaced {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("@@");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::model::Meta;

    fn data(source: &str) -> ReportData {
        ReportData {
            meta: Meta {
                source: source.to_owned(),
                execution: "local".into(),
                test_id: None,
                start_unix_ms: 1,
                duration_ms: 2.0,
                vus_max: 3,
                status: "passed".into(),
                generated_unix_ms: 4,
            },
            timeline: Vec::new(),
            scenarios: vec!["</script><script>alert(1)</script>".into()],
            summary: None,
            fleet: None,
        }
    }

    #[test]
    fn embedded_json_cannot_close_its_script_element_and_parses_back() {
        let text = json_in_script(&data("a</script>&<!--\u{2028}"));
        assert!(!text.contains('<'), "{text}");
        assert!(!text.contains('>'));
        assert!(!text.contains('&'));
        assert!(!text.contains('\u{2028}'));
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back["meta"]["source"], "a</script>&<!--\u{2028}");
        assert_eq!(back["scenarios"][0], "</script><script>alert(1)</script>");
    }

    #[test]
    fn the_report_page_is_self_contained() {
        let page = report_page(
            &data("plan <b>.yaml"),
            &PageConfig {
                live_url: None,
                period_ms: 1000,
            },
        );
        assert!(page.starts_with("<!doctype html>"));
        assert!(!page.contains("@@"), "every marker filled");
        assert!(page.contains("connect-src 'none'"));
        assert!(page.contains("<title>Volley: plan &lt;b&gt;.yaml</title>"));
        // One closing script tag per script element: the data's did not add any.
        assert_eq!(page.matches("</script>").count(), 3);
        for remote in ["http://", "https://", "src=\"", "@import", "url("] {
            assert!(!page.contains(remote), "{remote} in the page");
        }
    }

    #[test]
    fn the_ui_page_fetches_only_its_own_origin() {
        let page = ui_page();
        assert!(!page.contains("@@"));
        assert!(page.contains("connect-src 'self'"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn markers_in_values_are_not_filled_again() {
        let out = fill(
            "a@@X@@b@@Y@@c@@",
            &[("X", "@@Y@@".into()), ("Y", "y".into())],
        );
        assert_eq!(out, "a@@Y@@byc@@");
    }
}
