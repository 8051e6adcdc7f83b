//! The remote-write output's options as one argument, with k6's JSON
//! option names: `experimental-prometheus-rw=url=…&pushInterval=5s&…`.
//! It is what a fleet test's output travels as ([`PromRwConfig::to_arg`]):
//! the submitter's `K6_PROMETHEUS_RW_*` variables folded in, since the
//! agent that writes the output must not read its own.

use std::time::Duration;

use super::config::{PromRwConfig, parse_bool};
use crate::escape::{decode_strict, option_value};
use crate::metrics::remote_write::TrendStat;

/// k6's option names, in the order [`PromRwConfig::to_arg`] writes them.
const KEYS: [&str; 12] = [
    "url",
    "pushInterval",
    "trendStats",
    "staleMarkers",
    "trendAsNativeHistogram",
    "insecureSkipTLSVerify",
    "headers",
    "username",
    "password",
    "bearerToken",
    "clientCertificate",
    "clientCertificateKey",
];

impl PromRwConfig {
    /// Applies `url=…&KEY=VALUE…` (values %-escaped where they hold `&`,
    /// `=`, `,` or `%`).
    pub(super) fn apply_arg(&mut self, arg: &str) -> Result<(), String> {
        let name = "--out experimental-prometheus-rw";
        for pair in arg.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair
                .split_once('=')
                .ok_or_else(|| format!("{name}: {pair:?} is not KEY=VALUE"))?;
            let value = decode_strict(raw).map_err(|e| format!("{name}: {pair:?}: {e}"))?;
            self.set(key, &value)
                .map_err(|e| format!("{name}: {key}={value:?}: {e}"))?;
        }
        if let Some((cert, key)) = &self.tls.client_cert
            && (cert.as_os_str().is_empty() || key.as_os_str().is_empty())
        {
            return Err(format!(
                "{name}: clientCertificate and clientCertificateKey go together"
            ));
        }
        Ok(())
    }

    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        let flag = |v: &str| parse_bool(v).ok_or("expected true or false");
        match key {
            "url" => self.url = v.to_owned(),
            "pushInterval" => {
                self.push_interval = crate::plan::parse_duration(v)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("expected a positive duration such as 5s")?;
            }
            "trendStats" => {
                TrendStat::parse_list(v)?;
                self.trend_stats = v.to_owned();
            }
            "staleMarkers" => self.stale_markers = flag(v)?,
            "trendAsNativeHistogram" => self.trend_as_native_histogram = flag(v)?,
            "insecureSkipTLSVerify" => self.tls.insecure_skip_verify = flag(v)?,
            "headers" => {
                self.headers.clear();
                for pair in v.split(',').filter(|p| !p.is_empty()) {
                    let (name, value) = pair
                        .split_once(':')
                        .ok_or_else(|| format!("header {pair:?}: expected NAME:VALUE"))?;
                    let (name, value) = (decode_strict(name)?, decode_strict(value)?);
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                        || http::HeaderValue::from_str(&value).is_err()
                    {
                        return Err(format!("header {name:?}: not a valid HTTP header"));
                    }
                    self.headers.push((name, value));
                }
            }
            "username" => self.username = Some(v.to_owned()),
            "password" => self.password = Some(v.to_owned()),
            "bearerToken" => self.bearer_token = Some(v.to_owned()).filter(|t| !t.is_empty()),
            "clientCertificate" | "clientCertificateKey" => {
                let (mut cert, mut pem_key) = self.tls.client_cert.take().unwrap_or_default();
                if key == "clientCertificate" {
                    cert = v.into();
                } else {
                    pem_key = v.into();
                }
                self.tls.client_cert = Some((cert, pem_key));
            }
            other => {
                return Err(format!(
                    "unknown option {other:?}; expected one of {}",
                    KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The argument [`PromRwConfig::parse`] reads back as this
    /// configuration with no variables set, every option explicit.
    pub fn to_arg(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{}:{}", option_value(k), option_value(v)))
            .collect();
        let path = |p: Option<&std::path::PathBuf>| p.map(|p| p.display().to_string());
        let values: [Option<String>; 12] = [
            Some(self.url.clone()),
            Some(millis(self.push_interval)),
            Some(self.trend_stats.clone()),
            Some(self.stale_markers.to_string()),
            Some(self.trend_as_native_histogram.to_string()),
            Some(self.tls.insecure_skip_verify.to_string()),
            Some(headers.join(",")).filter(|h| !h.is_empty()),
            self.username.clone(),
            self.password.clone(),
            self.bearer_token.clone(),
            path(self.tls.client_cert.as_ref().map(|(c, _)| c)),
            path(self.tls.client_cert.as_ref().map(|(_, k)| k)),
        ];
        KEYS.iter()
            .zip(values)
            .filter_map(|(key, v)| v.map(|v| format!("{key}={}", option_value(&v))))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The endpoint's host name or address.
    pub fn host(&self) -> Option<String> {
        let uri: http::Uri = self.url.parse().ok()?;
        uri.host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
    }
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_submitters_variables_travel_in_the_argument() {
        let env = |k: &str| {
            let v = match k {
                "K6_PROMETHEUS_RW_SERVER_URL" => "https://prom.example/api/v1/write",
                "K6_PROMETHEUS_RW_PUSH_INTERVAL" => "2s",
                "K6_PROMETHEUS_RW_TREND_STATS" => "p(95),max",
                "K6_PROMETHEUS_RW_STALE_MARKERS" => "true",
                "K6_PROMETHEUS_RW_USERNAME" => "u&1",
                "K6_PROMETHEUS_RW_PASSWORD" => "p=w%",
                "K6_PROMETHEUS_RW_HTTP_HEADERS" => "X-Scope-OrgID:team&1=2:3",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let c = PromRwConfig::parse(None, &env, &[]).expect("valid");
        let arg = c.to_arg();
        assert!(
            arg.starts_with("url=https://prom.example/api/v1/write&pushInterval=2000ms&"),
            "{arg}"
        );
        let back = PromRwConfig::parse(Some(&arg), &none, &[]).expect("reads back");
        assert_eq!(back, c);
        assert_eq!(back.host().as_deref(), Some("prom.example"));
    }

    #[test]
    fn the_argument_wins_and_bad_options_are_named() {
        let env = |k: &str| (k == "K6_PROMETHEUS_RW_PUSH_INTERVAL").then(|| "9s".to_owned());
        let c = PromRwConfig::parse(Some("url=http://p:9090/w&pushInterval=1s"), &env, &[])
            .expect("valid");
        assert_eq!(c.push_interval, Duration::from_secs(1));
        assert_eq!(c.url, "http://p:9090/w");
        let e = |arg: &str| PromRwConfig::parse(Some(arg), &none, &[]).expect_err(arg);
        assert!(e("url=http://p/w&pushInterval=0s").contains("positive duration"));
        assert!(e("url=http://p/w&staleMarkers=yes").contains("true or false"));
        assert!(e("url=http://p/w&batch=2").contains("unknown option \"batch\""));
        assert!(e("url=http://p/w&headers=nocolon").contains("NAME:VALUE"));
        assert!(e("url=http://p/w&clientCertificate=/c.pem").contains("go together"));
        assert!(e("url=p:9090").contains("expected http://HOST:PORT"));
    }
}
