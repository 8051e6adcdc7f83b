//! A fleet test's outputs: which `--out` values a fleet test may have, in
//! the form they travel in (one canonical value each, with the options the
//! submitting machine's `K6_*` variables set folded in), and opening them
//! on the origin.
//!
//! Only outputs that take the fleet's merged intervals and write to a
//! network backend qualify: a per-sample output needs every sample, which
//! stays on the agents, and a file output would write on an agent's disk
//! whatever path a submitter names.

use std::sync::Arc;

use super::IntervalOutput;
use super::influxdb::{InfluxOutput, Layout};
use super::otel::OtelOutput;
use super::prometheus_rw::PromRwOutput;
use super::spec::{self, OutputSpec};
use crate::plan::egress::EgressPolicy;

/// Parses one `--out` value for a fleet test; `env` reads the `K6_*`
/// option variables (the submitter's own, or none on an agent for a
/// submitted value: an agent's variables must not go to a submitter's
/// backend).
pub fn parse(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    vars: &[(String, String)],
) -> Result<OutputSpec, String> {
    let spec = spec::parse(value, env, vars)?;
    match &spec {
        OutputSpec::Influx(c) if c.layout == Layout::Intervals => Ok(spec),
        OutputSpec::Otel(c) if c.tls.ca_file.is_some() || c.tls.client_cert.is_some() => {
            Err(format!(
                "--out {value:?}: tlsCertificate, tlsClientCertificate and tlsClientKey name \
                 files on this machine, which the agent writing a fleet test's outputs cannot \
                 read; a fleet's collector must be trusted by the public roots (or \
                 tlsInsecureSkipVerify=true)"
            ))
        }
        OutputSpec::Otel(_) => Ok(spec),
        OutputSpec::PromRw(c) if c.tls.client_cert.is_some() => Err(format!(
            "--out {value:?}: clientCertificate and clientCertificateKey name files on this \
             machine, which the agent writing a fleet test's outputs cannot read"
        )),
        OutputSpec::PromRw(_) => Ok(spec),
        OutputSpec::Influx(_) => Err(format!(
            "--out {value:?}: a fleet test writes the fleet's merged intervals; \
             layout=samples needs every sample, which stays on the agents"
        )),
        other => Err(format!(
            "--out {value:?}: a fleet test writes its merged intervals to a network backend \
             (influxdb=http://HOST:8086/DB, opentelemetry or experimental-prometheus-rw); {} writes {} on this machine, which the agents \
             cannot do for you: use --summary-export FILE or --junit FILE for the fleet's \
             merged results",
            other.name(),
            if other.name() == "volley-json" {
                "a file"
            } else {
                "every sample"
            }
        )),
    }
}

/// The value as it travels to an agent: every option explicit.
pub fn canonical(spec: &OutputSpec) -> Option<String> {
    match spec {
        OutputSpec::Influx(c) => Some(format!("influxdb={}", c.to_url())),
        OutputSpec::Otel(c) => Some(format!("opentelemetry={}", c.to_arg())),
        OutputSpec::PromRw(c) => Some(format!("experimental-prometheus-rw={}", c.to_arg())),
        _ => None,
    }
}

/// The backend's host, for the agent's egress policy.
pub fn host(spec: &OutputSpec) -> Option<String> {
    match spec {
        OutputSpec::Influx(c) => c.host(),
        OutputSpec::Otel(c) => c.host(),
        OutputSpec::PromRw(c) => c.host(),
        _ => None,
    }
}

/// Starts the outputs of a fleet test; every request they make is checked
/// against `egress` (resolved addresses included).
pub fn open(
    specs: &[OutputSpec],
    egress: &Arc<EgressPolicy>,
) -> Result<Vec<Box<dyn IntervalOutput>>, String> {
    let mut outputs: Vec<Box<dyn IntervalOutput>> = Vec::new();
    for spec in specs {
        match spec {
            OutputSpec::Influx(c) => {
                outputs.push(Box::new(InfluxOutput::start(
                    spec.describe(),
                    c.clone(),
                    Some(egress.clone()),
                )?));
            }
            OutputSpec::Otel(c) => {
                outputs.push(Box::new(OtelOutput::start(
                    spec.describe(),
                    c.clone(),
                    Some(egress.clone()),
                )?));
            }
            OutputSpec::PromRw(c) => {
                outputs.push(Box::new(PromRwOutput::start(
                    spec.describe(),
                    c.clone(),
                    Some(egress.clone()),
                )?));
            }
            other => {
                return Err(format!(
                    "--out {}: not an output of a fleet test",
                    other.describe()
                ));
            }
        }
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn only_interval_outputs_to_a_backend() {
        for refused in [
            "json=out.json",
            "csv=out.csv",
            "volley-json=out.jsonl",
            "influxdb=http://h:8086/db?layout=samples",
        ] {
            let e = parse(refused, &none, &[]).expect_err(refused);
            assert!(e.contains("a fleet test"), "{e}");
        }
        let ca = "opentelemetry=exporterType=http&tlsCertificate=/etc/ca.pem";
        let e = parse(ca, &none, &[]).expect_err(ca);
        assert!(e.contains("files on this machine"), "{e}");
        let skip = "opentelemetry=exporterType=http&tlsInsecureSkipVerify=true";
        assert!(parse(skip, &none, &[]).is_ok());
        let spec =
            parse("influxdb=http://u:p@influx.example:8086/perf", &none, &[]).expect("valid");
        assert_eq!(host(&spec).as_deref(), Some("influx.example"));
    }

    #[test]
    fn the_submitters_variables_travel_in_the_canonical_value() {
        let env = |k: &str| match k {
            "K6_INFLUXDB_PUSH_INTERVAL" => Some("5s".to_owned()),
            "K6_INFLUXDB_USERNAME" => Some("writer".to_owned()),
            "K6_INFLUXDB_PASSWORD" => Some("pw".to_owned()),
            _ => None,
        };
        let spec = parse("influxdb=http://127.0.0.1:8086/perf", &env, &[]).expect("valid");
        let value = canonical(&spec).expect("a network output");
        assert_eq!(
            value,
            "influxdb=http://writer:pw@127.0.0.1:8086/perf?pushInterval=5000ms&concurrentWrites=4&payloadSize=100000"
        );
        // Read back on the agent without any variables: the same output.
        assert_eq!(parse(&value, &none, &[]).expect("valid"), spec);
    }
}
