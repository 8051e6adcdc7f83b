//! `--out experimental-prometheus-rw`'s settings from k6's
//! `K6_PROMETHEUS_RW_*` variables and the optional argument (the server
//! URL, or k6's JSON option names as `url=…&pushInterval=…`, the form a
//! fleet test's output travels as: see `arg`), checked before the run
//! starts.

use std::time::Duration;

use http::Uri;
use http::header::{HeaderName, HeaderValue};

use crate::metrics::remote_write::TrendStat;
use crate::outputs::push::PushTls;

/// The output's settings, k6's variables in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromRwConfig {
    /// (`K6_PROMETHEUS_RW_SERVER_URL`, `http://localhost:9090/api/v1/write`.)
    pub url: String,
    /// (`K6_PROMETHEUS_RW_PUSH_INTERVAL`, 5 s.)
    pub push_interval: Duration,
    /// (`K6_PROMETHEUS_RW_TREND_STATS`, `p(99)`), checked.
    pub trend_stats: String,
    /// (`K6_PROMETHEUS_RW_HEADERS_<NAME>`, `K6_PROMETHEUS_RW_HTTP_HEADERS`.)
    pub headers: Vec<(String, String)>,
    /// (`K6_PROMETHEUS_RW_USERNAME`, `K6_PROMETHEUS_RW_PASSWORD`.)
    pub username: Option<String>,
    pub password: Option<String>,
    /// (`K6_PROMETHEUS_RW_BEARER_TOKEN`.)
    pub bearer_token: Option<String>,
    /// Over `https://`: (`K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY`) and a
    /// client certificate (`K6_PROMETHEUS_RW_CLIENT_CERTIFICATE`,
    /// `K6_PROMETHEUS_RW_CLIENT_CERTIFICATE_KEY`, PEM files).
    pub tls: PushTls,
    /// (`K6_PROMETHEUS_RW_STALE_MARKERS`, false.)
    pub stale_markers: bool,
    /// Trends as native histograms instead of statistics
    /// (`K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM`, false; Prometheus
    /// needs `--enable-feature=native-histograms`).
    pub trend_as_native_histogram: bool,
}

impl PromRwConfig {
    /// From `experimental-prometheus-rw[=URL or =url=…&KEY=VALUE…]`, k6's
    /// variables (`env`) and every variable set (`vars`, for the
    /// `K6_PROMETHEUS_RW_HEADERS_*` family); the argument wins.
    pub fn parse(
        arg: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        vars: &[(String, String)],
    ) -> Result<PromRwConfig, String> {
        let arg = arg.filter(|a| !a.is_empty());
        let options = arg.filter(|a| a.starts_with("url="));
        let mut c = Self::from_env(arg.filter(|_| options.is_none()), env, vars)?;
        if let Some(options) = options {
            c.apply_arg(options)?;
        }
        check_url(&c.url)?;
        Ok(c)
    }

    fn from_env(
        url: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        vars: &[(String, String)],
    ) -> Result<PromRwConfig, String> {
        let url = url
            .map(str::to_owned)
            .or_else(|| env("K6_PROMETHEUS_RW_SERVER_URL"))
            .unwrap_or_else(|| "http://localhost:9090/api/v1/write".into());
        let push_interval = match env("K6_PROMETHEUS_RW_PUSH_INTERVAL") {
            None => Duration::from_secs(5),
            Some(v) => crate::plan::parse_duration(&v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!(
                        "--out experimental-prometheus-rw: K6_PROMETHEUS_RW_PUSH_INTERVAL {v:?}: \
                         expected a positive duration such as 5s"
                    )
                })?,
        };
        let trend_stats = env("K6_PROMETHEUS_RW_TREND_STATS").unwrap_or_else(|| "p(99)".into());
        TrendStat::parse_list(&trend_stats).map_err(|e| {
            format!(
                "--out experimental-prometheus-rw: K6_PROMETHEUS_RW_TREND_STATS {trend_stats:?}: {e}"
            )
        })?;
        let flag = |var: &str| -> Result<bool, String> {
            match env(var) {
                None => Ok(false),
                Some(v) => parse_bool(&v).ok_or_else(|| {
                    format!("--out experimental-prometheus-rw: {var} {v:?}: expected true or false")
                }),
            }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut add_header = |name: &str, value: &str, from: &str| -> Result<(), String> {
            if HeaderName::from_bytes(name.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                return Err(format!(
                    "--out experimental-prometheus-rw: {from}: {name:?} is not a valid HTTP header"
                ));
            }
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_owned(), value.to_owned()));
            Ok(())
        };
        let mut prefixed: Vec<&(String, String)> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("K6_PROMETHEUS_RW_HEADERS_"))
            .collect();
        prefixed.sort();
        for (k, v) in prefixed {
            let name = &k["K6_PROMETHEUS_RW_HEADERS_".len()..];
            add_header(name, v, k)?;
        }
        if let Some(list) = env("K6_PROMETHEUS_RW_HTTP_HEADERS") {
            for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
                let (name, value) = pair.split_once(':').ok_or_else(|| {
                    format!(
                        "--out experimental-prometheus-rw: K6_PROMETHEUS_RW_HTTP_HEADERS: \
                         {pair:?} is not NAME:VALUE"
                    )
                })?;
                add_header(name.trim(), value.trim(), "K6_PROMETHEUS_RW_HTTP_HEADERS")?;
            }
        }
        Ok(PromRwConfig {
            url,
            push_interval,
            trend_stats,
            headers,
            username: env("K6_PROMETHEUS_RW_USERNAME"),
            password: env("K6_PROMETHEUS_RW_PASSWORD"),
            bearer_token: env("K6_PROMETHEUS_RW_BEARER_TOKEN").filter(|t| !t.is_empty()),
            tls: PushTls {
                insecure_skip_verify: flag("K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY")?,
                ca_file: None,
                client_cert: match (
                    env("K6_PROMETHEUS_RW_CLIENT_CERTIFICATE"),
                    env("K6_PROMETHEUS_RW_CLIENT_CERTIFICATE_KEY"),
                ) {
                    (Some(cert), Some(key)) => Some((cert.into(), key.into())),
                    (None, None) => None,
                    _ => {
                        return Err("--out experimental-prometheus-rw: \
                                    K6_PROMETHEUS_RW_CLIENT_CERTIFICATE and \
                                    K6_PROMETHEUS_RW_CLIENT_CERTIFICATE_KEY go together"
                            .into());
                    }
                },
            },
            stale_markers: flag("K6_PROMETHEUS_RW_STALE_MARKERS")?,
            trend_as_native_histogram: flag("K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM")?,
        })
    }
}

/// An `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let expected = "expected http://HOST:PORT/api/v1/write";
    let uri: Uri = url.parse().map_err(|e| {
        format!("--out experimental-prometheus-rw: {url:?} is not a URL ({e}); {expected}")
    })?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(()),
        _ => Err(format!(
            "--out experimental-prometheus-rw: {url:?}: {expected}"
        )),
    }
}

/// Go's `strconv.ParseBool`, as k6 reads its boolean variables.
pub(super) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn k6_defaults_and_variables() {
        let c = PromRwConfig::parse(None, &none, &[]).expect("defaults");
        assert_eq!(c.url, "http://localhost:9090/api/v1/write");
        assert_eq!(c.push_interval, Duration::from_secs(5));
        assert_eq!(c.trend_stats, "p(99)");
        assert!(!c.stale_markers && c.tls == PushTls::default());

        let env = |k: &str| {
            Some(
                match k {
                    "K6_PROMETHEUS_RW_SERVER_URL" => "http://prom:9090/api/v1/write",
                    "K6_PROMETHEUS_RW_PUSH_INTERVAL" => "1s",
                    "K6_PROMETHEUS_RW_TREND_STATS" => "min,max,avg,p(90),p(95),med,count,sum",
                    "K6_PROMETHEUS_RW_STALE_MARKERS" => "true",
                    "K6_PROMETHEUS_RW_USERNAME" => "u",
                    "K6_PROMETHEUS_RW_PASSWORD" => "p",
                    "K6_PROMETHEUS_RW_HTTP_HEADERS" => "X-Scope-OrgID:tenant-2,X-B: b",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let vars = vec![(
            "K6_PROMETHEUS_RW_HEADERS_X-Scope-OrgID".to_owned(),
            "tenant-1".to_owned(),
        )];
        let c = PromRwConfig::parse(None, &env, &vars).expect("valid");
        assert_eq!(c.url, "http://prom:9090/api/v1/write");
        assert_eq!(c.push_interval, Duration::from_secs(1));
        assert!(c.stale_markers);
        assert_eq!(c.username.as_deref(), Some("u"));
        // The list wins over the single variables, as k6 applies it last.
        assert_eq!(
            c.headers,
            [
                ("X-Scope-OrgID".to_owned(), "tenant-2".to_owned()),
                ("X-B".to_owned(), "b".to_owned())
            ]
        );
        // The argument is the URL.
        let c = PromRwConfig::parse(Some("http://h:1/w"), &env, &[]).expect("valid");
        assert_eq!(c.url, "http://h:1/w");
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let with = |k: &'static str, v: &'static str| move |q: &str| (q == k).then(|| v.to_owned());
        let e = |env: &dyn Fn(&str) -> Option<String>| {
            PromRwConfig::parse(None, env, &[]).expect_err("refused")
        };
        assert!(e(&with("K6_PROMETHEUS_RW_SERVER_URL", "prom:9090")).contains("expected http://"));
        assert!(e(&with("K6_PROMETHEUS_RW_CLIENT_CERTIFICATE", "c.pem")).contains("go together"));
        assert!(e(&with("K6_PROMETHEUS_RW_PUSH_INTERVAL", "0s")).contains("positive duration"));
        let t = e(&with("K6_PROMETHEUS_RW_TREND_STATS", "p99"));
        assert!(t.contains("K6_PROMETHEUS_RW_TREND_STATS \"p99\""), "{t}");
        assert!(
            e(&with("K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM", "yes"))
                .contains("expected true or false")
        );
        assert!(
            e(&with("K6_PROMETHEUS_RW_STALE_MARKERS", "yes")).contains("expected true or false")
        );
        assert!(e(&with("K6_PROMETHEUS_RW_HTTP_HEADERS", "novalue")).contains("is not NAME:VALUE"));
        let c = PromRwConfig::parse(
            None,
            &with("K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM", "true"),
            &[],
        );
        assert!(c.is_ok_and(|c| c.trend_as_native_histogram));
    }
}
