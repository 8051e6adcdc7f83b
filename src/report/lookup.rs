//! Matching a threshold's metric key as the user wrote it
//! (`http_req_duration{ status: 200 }`) to the summary's metric
//! (`http_req_duration{status:200}`): same name, same tag set, spacing and
//! tag order aside.

use crate::metrics::{MetricSummary, Summary};

/// A metric key split into its name and sorted tag filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MetricKey {
    pub(crate) name: String,
    pub(crate) tags: Vec<(String, String)>,
}

impl MetricKey {
    /// Parses `name` or `name{k:v,...}`. Never fails: a tag without `:`
    /// becomes a tag with an empty value, so an odd key still groups with
    /// itself.
    pub(crate) fn parse(key: &str) -> MetricKey {
        let (name, rest) = match key.split_once('{') {
            Some((name, rest)) => (name, rest),
            None => (key, ""),
        };
        let inner = rest.trim().trim_end_matches('}');
        let mut tags: Vec<(String, String)> = inner
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| match part.split_once(':') {
                Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
                None => (part.trim().to_owned(), String::new()),
            })
            .collect();
        tags.sort();
        MetricKey {
            name: name.trim().to_owned(),
            tags,
        }
    }

    pub(crate) fn of(metric: &MetricSummary) -> MetricKey {
        let mut tags = metric.tags.clone();
        tags.sort();
        MetricKey {
            name: metric.name.clone(),
            tags,
        }
    }
}

/// The summary's metric for a key as written, if there is one.
pub(crate) fn find<'a>(summary: &'a Summary, key: &str) -> Option<&'a MetricSummary> {
    let wanted = MetricKey::parse(key);
    summary.metrics.iter().find(|m| MetricKey::of(m) == wanted)
}

/// k6's summary order: by parent name, then by the tag part, so that
/// submetrics follow their parent. Byte order equals k6's locale order for
/// the lowercase, underscore-separated names metrics have.
pub(crate) fn k6_order(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |key: &str| -> (String, String) {
        match key.find('{') {
            Some(at) => (key[..at].to_owned(), key[at..].to_owned()),
            None => (key.to_owned(), String::new()),
        }
    };
    split(a).cmp(&split(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricValues;

    #[test]
    fn spacing_and_tag_order_do_not_matter() {
        let written = MetricKey::parse("http_req_duration{ status: 200 , method:GET }");
        let metric = MetricSummary {
            name: "http_req_duration".into(),
            tags: vec![
                ("status".into(), "200".into()),
                ("method".into(), "GET".into()),
            ],
            values: MetricValues::Counter {
                count: 1.0,
                rate: 1.0,
            },
        };
        assert_eq!(written, MetricKey::of(&metric));
        assert_ne!(
            MetricKey::parse("http_req_duration"),
            MetricKey::of(&metric)
        );
        assert_eq!(MetricKey::parse("vus").tags, Vec::<(String, String)>::new());
    }

    #[test]
    fn submetrics_sort_after_their_parent() {
        let mut keys = vec![
            "http_reqs",
            "http_req_duration{status:200}",
            "http_req_duration",
            "http_req_duration{expected_response:true}",
            "data_sent",
        ];
        keys.sort_by(|a, b| k6_order(a, b));
        assert_eq!(
            keys,
            [
                "data_sent",
                "http_req_duration",
                "http_req_duration{expected_response:true}",
                "http_req_duration{status:200}",
                "http_reqs",
            ]
        );
    }
}
