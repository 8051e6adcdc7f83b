//! `--out opentelemetry` (also `experimental-opentelemetry`): the settings,
//! from k6's `K6_OTEL_*` variables (`OTEL_SERVICE_NAME` too, as k6 reads
//! it) or from `opentelemetry=KEY=VALUE&KEY=VALUE` with k6's JSON option
//! names, which win. The second form is what a fleet test's output travels
//! as ([`OtelConfig::to_arg`]).
//!
//! As in k6, exports use TLS unless `…_INSECURE=true` (plaintext HTTP, or
//! gRPC over HTTP/2 without TLS); the `tls*` options choose whom to trust
//! and which client certificate to present.

use std::time::Duration;

use crate::outputs::push::PushTls;

/// How the metrics travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// OTLP/gRPC (k6's default).
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
}

/// The output's settings, k6's variable names in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelConfig {
    /// (`K6_OTEL_EXPORTER_TYPE`: `grpc` or `http`, default `grpc`.)
    pub exporter: Exporter,
    /// `HOST:PORT` (`K6_OTEL_GRPC_EXPORTER_ENDPOINT`, `localhost:4317`).
    pub grpc_endpoint: String,
    /// (`K6_OTEL_GRPC_EXPORTER_INSECURE`, default false.)
    pub grpc_insecure: bool,
    /// `HOST:PORT` (`K6_OTEL_HTTP_EXPORTER_ENDPOINT`, `localhost:4318`).
    pub http_endpoint: String,
    /// (`K6_OTEL_HTTP_EXPORTER_URL_PATH`, `/v1/metrics`.)
    pub http_path: String,
    /// (`K6_OTEL_HTTP_EXPORTER_INSECURE`, default false.)
    pub http_insecure: bool,
    /// How often the totals are sent (`K6_OTEL_EXPORT_INTERVAL`, 10 s).
    pub export_interval: Duration,
    /// (`K6_OTEL_FLUSH_INTERVAL`, 1 s: how often k6 hands samples to the
    /// SDK; Volley's intervals play that part, so it is checked only.)
    pub flush_interval: Duration,
    /// (`K6_OTEL_METRIC_PREFIX`, none.)
    pub metric_prefix: String,
    /// (`K6_OTEL_SERVICE_NAME` or `OTEL_SERVICE_NAME`, `k6`.)
    pub service_name: String,
    /// (`K6_OTEL_SERVICE_VERSION`, Volley's version.)
    pub service_version: String,
    /// Sent with every export (`K6_OTEL_HEADERS`, `k1=v1,k2=v2` with
    /// %-escapes).
    pub headers: Vec<(String, String)>,
    /// Over TLS (`K6_OTEL_TLS_INSECURE_SKIP_VERIFY`, `K6_OTEL_TLS_CERTIFICATE`:
    /// a CA file, `K6_OTEL_TLS_CLIENT_CERTIFICATE` and
    /// `K6_OTEL_TLS_CLIENT_KEY`).
    pub tls: PushTls,
}

/// k6's JSON option names with their variables, in the order
/// [`OtelConfig::to_arg`] writes them.
const OPTIONS: [(&str, &str); 16] = [
    ("exporterType", "K6_OTEL_EXPORTER_TYPE"),
    ("grpcExporterEndpoint", "K6_OTEL_GRPC_EXPORTER_ENDPOINT"),
    ("grpcExporterInsecure", "K6_OTEL_GRPC_EXPORTER_INSECURE"),
    ("httpExporterEndpoint", "K6_OTEL_HTTP_EXPORTER_ENDPOINT"),
    ("httpExporterURLPath", "K6_OTEL_HTTP_EXPORTER_URL_PATH"),
    ("httpExporterInsecure", "K6_OTEL_HTTP_EXPORTER_INSECURE"),
    ("exportInterval", "K6_OTEL_EXPORT_INTERVAL"),
    ("flushInterval", "K6_OTEL_FLUSH_INTERVAL"),
    ("metricPrefix", "K6_OTEL_METRIC_PREFIX"),
    ("serviceName", "K6_OTEL_SERVICE_NAME"),
    ("serviceVersion", "K6_OTEL_SERVICE_VERSION"),
    ("headers", "K6_OTEL_HEADERS"),
    ("tlsInsecureSkipVerify", "K6_OTEL_TLS_INSECURE_SKIP_VERIFY"),
    ("tlsCertificate", "K6_OTEL_TLS_CERTIFICATE"),
    ("tlsClientCertificate", "K6_OTEL_TLS_CLIENT_CERTIFICATE"),
    ("tlsClientKey", "K6_OTEL_TLS_CLIENT_KEY"),
];

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            exporter: Exporter::Grpc,
            grpc_endpoint: "localhost:4317".into(),
            grpc_insecure: false,
            http_endpoint: "localhost:4318".into(),
            http_path: "/v1/metrics".into(),
            http_insecure: false,
            export_interval: Duration::from_secs(10),
            flush_interval: Duration::from_secs(1),
            metric_prefix: String::new(),
            service_name: "k6".into(),
            service_version: env!("CARGO_PKG_VERSION").into(),
            headers: Vec::new(),
            tls: PushTls::default(),
        }
    }
}

impl OtelConfig {
    /// From `opentelemetry[=KEY=VALUE&...]` and the variables; `name` is
    /// the `--out` name used, for messages.
    pub fn parse(
        name: &str,
        arg: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut c = OtelConfig::default();
        if let Some(v) = env("OTEL_SERVICE_NAME") {
            c.set("serviceName", &v)
                .map_err(|e| format!("--out {name}: OTEL_SERVICE_NAME {v:?}: {e}"))?;
        }
        for (key, var) in OPTIONS {
            if let Some(v) = env(var) {
                c.set(key, &v)
                    .map_err(|e| format!("--out {name}: {var} {v:?}: {e}"))?;
            }
        }
        for pair in arg.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').ok_or_else(|| {
                format!(
                    "--out {name}: {pair:?} is not KEY=VALUE; expected {name}=KEY=VALUE&KEY=VALUE"
                )
            })?;
            let value = crate::escape::decode_strict(raw)
                .map_err(|e| format!("--out {name}: {pair:?}: {e}"))?;
            c.set(key, &value)
                .map_err(|e| format!("--out {name}: {key}={value:?}: {e}"))?;
        }
        c.validate(name)?;
        Ok(c)
    }

    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "exporterType" => {
                self.exporter = match v {
                    "grpc" => Exporter::Grpc,
                    "http" => Exporter::Http,
                    _ => return Err("expected grpc or http".into()),
                }
            }
            "grpcExporterEndpoint" => self.grpc_endpoint = endpoint(v, 4317)?,
            "grpcExporterInsecure" => self.grpc_insecure = boolean(v)?,
            "httpExporterEndpoint" => self.http_endpoint = endpoint(v, 4318)?,
            "httpExporterURLPath" => {
                if !v.starts_with('/') || v.parse::<http::uri::PathAndQuery>().is_err() {
                    return Err("expected a URL path such as /v1/metrics".into());
                }
                self.http_path = v.to_owned();
            }
            "httpExporterInsecure" => self.http_insecure = boolean(v)?,
            "exportInterval" => self.export_interval = positive(v)?,
            "flushInterval" => self.flush_interval = positive(v)?,
            "metricPrefix" => self.metric_prefix = v.to_owned(),
            "serviceName" => self.service_name = non_empty(v, "a service name")?,
            "serviceVersion" => self.service_version = non_empty(v, "a service version")?,
            "headers" => self.headers = headers(v)?,
            "tlsInsecureSkipVerify" => self.tls.insecure_skip_verify = boolean(v)?,
            "tlsCertificate" => self.tls.ca_file = Some(non_empty(v, "a PEM file")?.into()),
            "tlsClientCertificate" | "tlsClientKey" => {
                let path = std::path::PathBuf::from(non_empty(v, "a PEM file")?);
                // Paired in `validate`: an empty path is "not given".
                let (mut cert_file, mut key_file) = self.tls.client_cert.take().unwrap_or_default();
                if key == "tlsClientCertificate" {
                    cert_file = path;
                } else {
                    key_file = path;
                }
                self.tls.client_cert = Some((cert_file, key_file));
            }
            other => {
                let known: Vec<&str> = OPTIONS.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "unknown option {other:?}; expected one of {}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn validate(&self, name: &str) -> Result<(), String> {
        if let Some((cert, key)) = &self.tls.client_cert
            && (cert.as_os_str().is_empty() || key.as_os_str().is_empty())
        {
            return Err(format!(
                "--out {name}: K6_OTEL_TLS_CLIENT_CERTIFICATE and K6_OTEL_TLS_CLIENT_KEY \
                 (tlsClientCertificate, tlsClientKey) go together"
            ));
        }
        Ok(())
    }

    /// Whether exports go without TLS.
    fn insecure(&self) -> bool {
        match self.exporter {
            Exporter::Grpc => self.grpc_insecure,
            Exporter::Http => self.http_insecure,
        }
    }

    fn scheme(&self) -> &'static str {
        if self.insecure() { "http" } else { "https" }
    }

    /// The collector's `HOST:PORT`.
    pub fn endpoint(&self) -> &str {
        match self.exporter {
            Exporter::Grpc => &self.grpc_endpoint,
            Exporter::Http => &self.http_endpoint,
        }
    }

    /// The URL an export is sent to.
    pub fn url(&self) -> String {
        match self.exporter {
            Exporter::Grpc => format!(
                "{}://{}/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                self.scheme(),
                self.grpc_endpoint
            ),
            Exporter::Http => format!(
                "{}://{}{}",
                self.scheme(),
                self.http_endpoint,
                self.http_path
            ),
        }
    }

    /// `grpc, localhost:4317` / `http, http://localhost:4318/v1/metrics`,
    /// as k6's header says it.
    pub fn label(&self) -> String {
        match self.exporter {
            Exporter::Grpc if self.grpc_insecure => {
                format!("grpc (insecure), {}", self.grpc_endpoint)
            }
            Exporter::Grpc => format!("grpc, {}", self.grpc_endpoint),
            Exporter::Http => format!(
                "http, {}://{}{}",
                self.scheme(),
                self.http_endpoint,
                self.http_path
            ),
        }
    }

    /// The collector's host name or address.
    pub fn host(&self) -> Option<String> {
        let authority: http::uri::Authority = self.endpoint().parse().ok()?;
        Some(
            authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
    }

    /// The argument [`OtelConfig::parse`] reads back as this configuration
    /// with no variables set, every option explicit.
    pub fn to_arg(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    crate::escape::option_value(k),
                    crate::escape::option_value(v)
                )
            })
            .collect();
        let values = [
            match self.exporter {
                Exporter::Grpc => "grpc".to_owned(),
                Exporter::Http => "http".to_owned(),
            },
            self.grpc_endpoint.clone(),
            self.grpc_insecure.to_string(),
            self.http_endpoint.clone(),
            self.http_path.clone(),
            self.http_insecure.to_string(),
            format!("{}ms", self.export_interval.as_millis()),
            format!("{}ms", self.flush_interval.as_millis()),
            self.metric_prefix.clone(),
            self.service_name.clone(),
            self.service_version.clone(),
            headers.join(","),
            self.tls.insecure_skip_verify.to_string(),
            path(self.tls.ca_file.as_ref()),
            path(self.tls.client_cert.as_ref().map(|(c, _)| c)),
            path(self.tls.client_cert.as_ref().map(|(_, k)| k)),
        ];
        OPTIONS
            .iter()
            .zip(values)
            .filter(|((key, _), v)| {
                !(v.is_empty()
                    && (matches!(*key, "metricPrefix" | "headers") || key.starts_with("tls")))
                    && !(*key == "tlsInsecureSkipVerify" && v == "false")
            })
            .map(|((key, _), v)| format!("{key}={}", crate::escape::option_value(&v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A file's path as an option value; empty for none.
fn path(p: Option<&std::path::PathBuf>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

/// `HOST:PORT`, no scheme (k6 refuses one too).
fn endpoint(v: &str, default_port: u16) -> Result<String, String> {
    let expected = format!("expected HOST:PORT such as localhost:{default_port}, no scheme");
    if v.contains("://") {
        return Err(expected);
    }
    let authority: http::uri::Authority = v.parse().map_err(|_| expected.clone())?;
    if authority.port_u16().is_none() || authority.host().is_empty() || v.contains('@') {
        return Err(expected);
    }
    Ok(v.to_owned())
}

/// Go's `strconv.ParseBool`, which k6's variables go through.
fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn positive(v: &str) -> Result<Duration, String> {
    crate::plan::parse_duration(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a positive duration such as 10s".into())
}

fn non_empty(v: &str, what: &str) -> Result<String, String> {
    if v.is_empty() {
        Err(format!("expected {what}, not an empty value"))
    } else {
        Ok(v.to_owned())
    }
}

/// `k1=v1,k2=v2`, each part %-unescaped, as k6 reads `K6_OTEL_HEADERS`.
fn headers(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in v.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("header {pair:?}: expected NAME=VALUE,NAME=VALUE"))?;
        let (k, val) = (
            crate::escape::decode_strict(k.trim())?,
            crate::escape::decode_strict(val.trim())?,
        );
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(&val).is_err()
        {
            return Err(format!(
                "header {pair:?}: not a valid HTTP header name and value"
            ));
        }
        out.push((k, val));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
