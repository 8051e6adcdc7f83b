//! Options as k6 reads them, and the errors for bad ones.

use super::*;

fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn k6_defaults_are_tls_unless_plaintext_is_asked_for() {
    let c = OtelConfig::parse("opentelemetry", None, &vars(&[])).expect("valid");
    assert!(
        c.url().starts_with("https://localhost:4317/"),
        "{}",
        c.url()
    );
    assert_eq!(c.label(), "grpc, localhost:4317");
    let c = OtelConfig::parse(
        "opentelemetry",
        None,
        &vars(&[
            ("K6_OTEL_EXPORTER_TYPE", "http"),
            ("K6_OTEL_TLS_CERTIFICATE", "/etc/ca.pem"),
            ("K6_OTEL_TLS_CLIENT_CERTIFICATE", "/etc/me.pem"),
            ("K6_OTEL_TLS_CLIENT_KEY", "/etc/me.key"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.url(), "https://localhost:4318/v1/metrics");
    assert_eq!(c.tls.ca_file, Some("/etc/ca.pem".into()));
    assert_eq!(
        c.tls.client_cert,
        Some(("/etc/me.pem".into(), "/etc/me.key".into()))
    );
    // The TLS options travel in the argument too.
    let back = OtelConfig::parse("opentelemetry", Some(&c.to_arg()), &vars(&[])).expect("valid");
    assert_eq!(back, c);
    let c = OtelConfig::parse(
        "opentelemetry",
        None,
        &vars(&[("K6_OTEL_GRPC_EXPORTER_INSECURE", "true")]),
    )
    .expect("valid");
    assert_eq!(c.exporter, Exporter::Grpc);
    assert_eq!(c.grpc_endpoint, "localhost:4317");
    assert_eq!(c.export_interval, Duration::from_secs(10));
    assert_eq!(c.service_name, "k6");
    assert_eq!(
        c.url(),
        "http://localhost:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    );
}

#[test]
fn k6_variables() {
    let c = OtelConfig::parse(
        "experimental-opentelemetry",
        None,
        &vars(&[
            ("K6_OTEL_EXPORTER_TYPE", "http"),
            ("K6_OTEL_HTTP_EXPORTER_ENDPOINT", "127.0.0.1:9999"),
            ("K6_OTEL_HTTP_EXPORTER_URL_PATH", "/otlp/v1/metrics"),
            ("K6_OTEL_HTTP_EXPORTER_INSECURE", "1"),
            ("K6_OTEL_EXPORT_INTERVAL", "2s"),
            ("K6_OTEL_METRIC_PREFIX", "k6_"),
            ("OTEL_SERVICE_NAME", "from-otel"),
            ("K6_OTEL_SERVICE_VERSION", "9"),
            ("K6_OTEL_HEADERS", "x-team=perf,authorization=Bearer%20abc"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.exporter, Exporter::Http);
    assert_eq!(c.url(), "http://127.0.0.1:9999/otlp/v1/metrics");
    assert_eq!(c.export_interval, Duration::from_secs(2));
    assert_eq!(c.service_name, "from-otel");
    assert_eq!(c.service_version, "9");
    assert_eq!(
        c.headers,
        [
            ("x-team".to_owned(), "perf".to_owned()),
            ("authorization".to_owned(), "Bearer abc".to_owned())
        ]
    );
    assert_eq!(c.host().as_deref(), Some("127.0.0.1"));
    // Read back from its argument with no variables: the same.
    let arg = c.to_arg();
    assert_eq!(
        OtelConfig::parse("opentelemetry", Some(&arg), &vars(&[])).expect("valid"),
        c,
        "{arg}"
    );
}

#[test]
fn bad_values_name_the_variable_and_the_expected_form() {
    let bad = |var: &'static str, value: &'static str| {
        let pairs = [("K6_OTEL_GRPC_EXPORTER_INSECURE", "true"), (var, value)];
        OtelConfig::parse("opentelemetry", None, &vars(&pairs)).expect_err(var)
    };
    let e = bad("K6_OTEL_EXPORTER_TYPE", "udp");
    assert!(
        e.contains("K6_OTEL_EXPORTER_TYPE \"udp\"") && e.contains("expected grpc or http"),
        "{e}"
    );
    let e = bad("K6_OTEL_GRPC_EXPORTER_ENDPOINT", "http://collector:4317");
    assert!(e.contains("expected HOST:PORT"), "{e}");
    let e = bad("K6_OTEL_GRPC_EXPORTER_ENDPOINT", "collector");
    assert!(e.contains("expected HOST:PORT"), "{e}");
    let e = bad("K6_OTEL_EXPORT_INTERVAL", "0s");
    assert!(e.contains("positive duration"), "{e}");
    let e = bad("K6_OTEL_HEADERS", "novalue");
    assert!(e.contains("expected NAME=VALUE"), "{e}");
    let e = bad("K6_OTEL_TLS_CLIENT_KEY", "/me.key");
    assert!(e.contains("go together"), "{e}");
    let e = bad("K6_OTEL_TLS_INSECURE_SKIP_VERIFY", "maybe");
    assert!(e.contains("true or false"), "{e}");
    let e = bad("K6_OTEL_SERVICE_NAME", "");
    assert!(e.contains("empty"), "{e}");
    let e = OtelConfig::parse("opentelemetry", Some("bogus=1"), &vars(&[])).expect_err("key");
    assert!(e.contains("unknown option \"bogus\""), "{e}");
}
