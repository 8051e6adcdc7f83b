//! k6's system tags on samples: the default set (with `proto`, `url`,
//! `error_code` and, over TLS, `tls_version`), and `systemTags` /
//! `--system-tags` choosing fewer.

mod common;

use std::collections::BTreeMap;

use common::{base, run, run_yaml, start_target};
use volley::engine::RunResult;
use volley::metrics::Metric;
use volley::plan::{Format, FsFiles, LoadOptions, Overrides};

/// The tags of every `http_reqs` series, by request name.
fn request_tags(r: &RunResult) -> BTreeMap<String, BTreeMap<String, String>> {
    r.total
        .series()
        .filter(|(k, _)| k.metric == Metric::HttpReqs)
        .map(|(k, _)| {
            let tags: BTreeMap<String, String> = k
                .tags
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            (tags.get("name").cloned().unwrap_or_default(), tags)
        })
        .collect()
}

/// The tag names of each `http_reqs` series, sorted.
fn tag_names(r: &RunResult) -> Vec<Vec<String>> {
    let mut all: Vec<Vec<String>> = r
        .total
        .series()
        .filter(|(k, _)| k.metric == Metric::HttpReqs)
        .map(|(k, _)| k.tags.iter().map(|(a, _)| a.to_string()).collect())
        .collect();
    all.sort();
    all
}

fn yaml(base: &str, extra: &str) -> String {
    format!(
        r#"
iterations: 1
{extra}
flow:
  - get: {{url: "{base}/", name: home}}
  - get: "{base}/status/404"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_carry_k6s_system_tags() {
    let target = start_target().await;
    let base = base(&target);
    let tags = request_tags(&run_yaml(&yaml(&base, "")).await);
    let home = &tags["home"];
    assert_eq!(home["url"], format!("{base}/"));
    assert_eq!(home["proto"], "HTTP/1.1");
    assert_eq!(home["status"], "200");
    assert_eq!(home["method"], "GET");
    assert_eq!(home["scenario"], "default");
    assert_eq!(home["expected_response"], "true");
    assert!(!home.contains_key("error_code") && !home.contains_key("tls_version"));
    let missing = &tags[&format!("{base}/status/404")];
    assert_eq!(missing["error_code"], "1404");
    assert_eq!(missing["expected_response"], "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_tags_keep_only_the_tags_named() {
    let target = start_target().await;
    let base = base(&target);
    let r = run_yaml(&yaml(&base, "systemTags: [status, method]")).await;
    assert_eq!(
        tag_names(&r),
        vec![vec!["method".to_string(), "status".to_string()]; 2]
    );

    // --system-tags wins over the plan's list.
    let opts = LoadOptions {
        overrides: Overrides {
            system_tags: Some("status,proto".into()),
            ..Overrides::default()
        },
        ..LoadOptions::default()
    };
    let text = yaml(&base, "systemTags: [status, method]");
    let p = volley::plan::parse(&text, Format::Yaml, &opts, &FsFiles).unwrap();
    assert_eq!(
        tag_names(&run(p).await),
        vec![vec!["proto".to_string(), "status".to_string()]; 2]
    );

    // Tags that would make a series per VU are refused, with the path.
    let err = volley::plan::parse(
        &yaml(&base, "systemTags: [status, vu]"),
        Format::Yaml,
        &LoadOptions::default(),
        &FsFiles,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("systemTags[1]") && err.contains("one series per VU"),
        "{err}"
    );
}
