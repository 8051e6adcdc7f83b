//! The InfluxDB output's settings: the `--out influxdb=URL` argument and
//! k6's `K6_INFLUXDB_*` variables, read the way k6 reads them, and the
//! canonical URL that carries them to a fleet's origin.

use std::time::Duration;

use http::Uri;

use crate::metrics::points::influx::TagField;
use crate::outputs::push::PushTls;

/// The output's settings, k6's names in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxConfig {
    /// `http://host:port` plus any path prefix, no trailing `/` (`addr`).
    pub base: String,
    /// (`db`, the URL's last path segment.)
    pub db: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// (`pushInterval`, 1 s.)
    pub push_interval: Duration,
    /// (`concurrentWrites`, 4.)
    pub concurrent_writes: usize,
    /// Points in one write request at most (`payloadSize`, 100 000).
    pub payload_size: u64,
    /// Over `https://`, any certificate is accepted with `insecure`
    /// (`K6_INFLUXDB_INSECURE`, false); else the public roots.
    pub tls: PushTls,
    /// (`tagsAsFields`, `vu,iter,url`.)
    pub tags_as_fields: Vec<TagField>,
    /// (`retention`, `consistency`: passed on to `/write` when set.)
    pub retention: Option<String>,
    pub consistency: Option<String>,
    /// (Volley's `layout`: `intervals` or `samples`.)
    pub layout: Layout,
}

/// What a point stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One point per series per interval, with its statistics.
    Intervals,
    /// One point per sample, k6's layout.
    Samples,
}

impl InfluxConfig {
    /// From `influxdb[=URL]` and k6's `K6_INFLUXDB_*` variables; the URL's
    /// parts and query options win over the variables, as in k6.
    pub fn parse(arg: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut c = InfluxConfig {
            base: "http://localhost:8086".into(),
            db: "k6".into(),
            username: env("K6_INFLUXDB_USERNAME"),
            password: env("K6_INFLUXDB_PASSWORD"),
            push_interval: Duration::from_secs(1),
            concurrent_writes: 4,
            payload_size: 100_000,
            tags_as_fields: ["vu", "iter", "url"]
                .iter()
                .map(|t| TagField::parse(t))
                .collect::<Result<_, _>>()?,
            retention: env("K6_INFLUXDB_RETENTION"),
            consistency: env("K6_INFLUXDB_CONSISTENCY"),
            layout: Layout::Intervals,
            tls: PushTls::default(),
        };
        let mut options: Vec<(String, String, String)> = Vec::new();
        for (var, key) in [
            ("K6_INFLUXDB_PUSH_INTERVAL", "pushInterval"),
            ("K6_INFLUXDB_CONCURRENT_WRITES", "concurrentWrites"),
            ("K6_INFLUXDB_PAYLOAD_SIZE", "payloadSize"),
            ("K6_INFLUXDB_TAGS_AS_FIELDS", "tagsAsFields"),
            ("VOLLEY_INFLUXDB_LAYOUT", "layout"),
            ("K6_INFLUXDB_INSECURE", "insecure"),
        ] {
            if let Some(v) = env(var) {
                options.push((var.to_owned(), key.to_owned(), v));
            }
        }
        if let Some(addr) = env("K6_INFLUXDB_ADDR") {
            c.set_url(&addr, false, &mut options, "K6_INFLUXDB_ADDR")?;
        }
        if let Some(db) = env("K6_INFLUXDB_DB") {
            c.db = db;
        }
        if let Some(url) = arg.filter(|a| !a.is_empty()) {
            c.set_url(url, true, &mut options, "--out influxdb")?;
        }
        for (from, key, value) in options {
            c.set_option(&key, &value)
                .map_err(|e| format!("--out influxdb: {from} {value:?}: {e}"))?;
        }
        if c.db.is_empty() {
            return Err(
                "--out influxdb: no database; expected influxdb=http://HOST:PORT/DATABASE".into(),
            );
        }
        Ok(c)
    }

    /// `http[s]://[user:password@]host:port[/prefix]/db[?options]`.
    fn set_url(
        &mut self,
        url: &str,
        with_db: bool,
        options: &mut Vec<(String, String, String)>,
        from: &str,
    ) -> Result<(), String> {
        let expected = "expected http://HOST:PORT/DATABASE or https://…";
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{from} {url:?}: not a URL ({e}); {expected}"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s,
            Some("udp") => {
                return Err(format!(
                    "{from} {url:?}: InfluxDB over UDP is not supported by Volley; {expected}"
                ));
            }
            _ => return Err(format!("{from} {url:?}: {expected}")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{from} {url:?}: no host; {expected}"))?
            .as_str();
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                let (name, password) = match user.split_once(':') {
                    Some((n, p)) => (n, Some(p)),
                    None => (user, None),
                };
                self.username = Some(name.to_owned());
                self.password = password.map(str::to_owned);
                host
            }
            None => authority,
        };
        let path = uri.path().trim_end_matches('/');
        let (prefix, db) = match path.rsplit_once('/') {
            Some((prefix, db)) if with_db => (prefix, db),
            _ => (path, ""),
        };
        self.base = format!("{scheme}://{host}{prefix}");
        if with_db && !db.is_empty() {
            self.db = db.to_owned();
        }
        for pair in uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            options.push((format!("{from} ?{k}="), k.to_owned(), v.to_owned()));
        }
        Ok(())
    }

    fn set_option(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "pushInterval" => {
                self.push_interval = crate::plan::parse_duration(value)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("expected a positive duration such as 1s")?;
            }
            "concurrentWrites" => {
                self.concurrent_writes = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or("expected a whole number from 1 to 64")?;
            }
            "payloadSize" => {
                self.payload_size = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("expected a positive whole number of points")?;
            }
            "tagsAsFields" => {
                self.tags_as_fields = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(TagField::parse)
                    .collect::<Result<_, _>>()?;
            }
            "layout" => {
                self.layout = match value {
                    "intervals" => Layout::Intervals,
                    "samples" => Layout::Samples,
                    _ => return Err("expected intervals or samples".into()),
                };
            }
            "insecure" => {
                self.tls.insecure_skip_verify = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("expected true or false".into()),
                };
            }
            "retention" => self.retention = Some(value.to_owned()),
            "consistency" => self.consistency = Some(value.to_owned()),
            other => {
                return Err(format!(
                    "unknown option {other:?}; expected pushInterval, concurrentWrites, \
                     payloadSize, tagsAsFields, retention, consistency, insecure or layout"
                ));
            }
        }
        Ok(())
    }

    /// `http://host:port/db`, for the header and messages (no password).
    pub fn label(&self) -> String {
        format!("{}/{}", self.base, self.db)
    }

    /// The URL [`InfluxConfig::parse`] reads back as this configuration
    /// (with no variables set), every option explicit: what a fleet test's
    /// output travels as.
    pub fn to_url(&self) -> String {
        let mut url = self.base.clone();
        if let Some(user) = &self.username {
            let password = self
                .password
                .as_ref()
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            url = url.replacen("://", &format!("://{user}{password}@"), 1);
        }
        url.push('/');
        url.push_str(&self.db);
        let mut options = vec![
            format!("pushInterval={}", url_duration(self.push_interval)),
            format!("concurrentWrites={}", self.concurrent_writes),
            format!("payloadSize={}", self.payload_size),
        ];
        if self.layout == Layout::Samples {
            options.push("layout=samples".into());
            let fields: Vec<String> = self
                .tags_as_fields
                .iter()
                .map(TagField::to_string)
                .collect();
            options.push(format!("tagsAsFields={}", fields.join(",")));
        }
        if self.tls.insecure_skip_verify {
            options.push("insecure=true".into());
        }
        if let Some(rp) = &self.retention {
            options.push(format!("retention={rp}"));
        }
        if let Some(c) = &self.consistency {
            options.push(format!("consistency={c}"));
        }
        format!("{url}?{}", options.join("&"))
    }

    /// The backend's host name or address.
    pub fn host(&self) -> Option<String> {
        let uri: Uri = self.base.parse().ok()?;
        uri.host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
    }
}

/// A duration as a URL's query can carry it (ASCII: no `µs`).
fn url_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_and_variables_as_k6_reads_them() {
        let c = InfluxConfig::parse(Some("http://u:p@127.0.0.1:8086/prefix/loadtests?pushInterval=2s&concurrentWrites=2&tagsAsFields=url,vu:int"), &none)
            .expect("valid");
        assert_eq!(c.base, "http://127.0.0.1:8086/prefix");
        assert_eq!(c.db, "loadtests");
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p"));
        assert_eq!(c.push_interval, Duration::from_secs(2));
        assert_eq!(c.concurrent_writes, 2);
        assert_eq!(c.tags_as_fields.len(), 2);
        assert_eq!(c.label(), "http://127.0.0.1:8086/prefix/loadtests");

        let env = |k: &str| match k {
            "K6_INFLUXDB_ADDR" => Some("http://influx:8086".to_owned()),
            "K6_INFLUXDB_DB" => Some("perf".to_owned()),
            "K6_INFLUXDB_PUSH_INTERVAL" => Some("5s".to_owned()),
            "K6_INFLUXDB_CONCURRENT_WRITES" => Some("8".to_owned()),
            "K6_INFLUXDB_TAGS_AS_FIELDS" => Some("url".to_owned()),
            _ => None,
        };
        let c = InfluxConfig::parse(None, &env).expect("valid");
        assert_eq!(c.label(), "http://influx:8086/perf");
        assert_eq!(c.push_interval, Duration::from_secs(5));
        assert_eq!(c.concurrent_writes, 8);
        // The URL wins over the variables.
        let c = InfluxConfig::parse(Some("http://other:8086/k6db?pushInterval=1s"), &env)
            .expect("valid");
        assert_eq!(c.label(), "http://other:8086/k6db");
        assert_eq!(c.push_interval, Duration::from_secs(1));
        let c = InfluxConfig::parse(None, &none).expect("defaults");
        assert_eq!(c.label(), "http://localhost:8086/k6");
        assert_eq!(c.layout, Layout::Intervals);
        let c = InfluxConfig::parse(Some("http://h:8086/db?layout=samples"), &none).expect("valid");
        assert_eq!(c.layout, Layout::Samples);
        let env = |k: &str| (k == "VOLLEY_INFLUXDB_LAYOUT").then(|| "samples".to_owned());
        let c = InfluxConfig::parse(None, &env).expect("valid");
        assert_eq!(c.layout, Layout::Samples);
    }

    #[test]
    fn https_and_insecure_travel_in_the_url() {
        let c = InfluxConfig::parse(Some("https://u:p@influx.example:8086/perf"), &|k: &str| {
            (k == "K6_INFLUXDB_INSECURE").then(|| "true".to_owned())
        })
        .expect("valid");
        assert_eq!(c.base, "https://influx.example:8086");
        assert!(c.tls.insecure_skip_verify);
        let url = c.to_url();
        assert!(
            url.starts_with("https://u:p@influx.example:8086/perf?"),
            "{url}"
        );
        assert_eq!(InfluxConfig::parse(Some(&url), &none), Ok(c));
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let e = |arg: &str| InfluxConfig::parse(Some(arg), &none).expect_err(arg);
        assert!(e("influx:8086/db").contains("expected http://HOST:PORT/DATABASE"));
        assert!(e("udp://h:8089/db").contains("not supported"));
        assert!(e("https://h:8086/db?insecure=yes").contains("true or false"));
        assert!(e("http://h:8086/db?concurrentWrites=0").contains("from 1 to 64"));
        assert!(e("http://h:8086/db?pushInterval=soon").contains("positive duration"));
        assert!(e("http://h:8086/db?tagsAsFields=vu:integer").contains("unknown type"));
        assert!(e("http://h:8086/db?batch=1").contains("unknown option"));
        assert!(e("http://h:8086/db?layout=points").contains("intervals or samples"));
        let env = |k: &str| (k == "K6_INFLUXDB_CONCURRENT_WRITES").then(|| "x".to_owned());
        let err = InfluxConfig::parse(Some("http://h:8086/db"), &env).expect_err("bad env");
        assert!(err.contains("K6_INFLUXDB_CONCURRENT_WRITES \"x\""), "{err}");
    }
}
