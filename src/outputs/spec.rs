//! `--out NAME[=ARG]` (and `K6_OUT`): which outputs a run writes, with
//! k6's names and options, checked before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use super::influxdb::InfluxConfig;
use super::otel_config::OtelConfig;
use super::prometheus_rw::PromRwConfig;
use crate::metrics::points::k6_csv::TimeFormat;

/// The outputs Volley writes, as `--out` names them.
pub const KNOWN: [&str; 6] = [
    "json",
    "csv",
    "influxdb",
    "experimental-prometheus-rw",
    "opentelemetry",
    "volley-json",
];

/// k6's outputs Volley does not write yet.
const NOT_YET: [&str; 3] = ["web-dashboard", "cloud", "statsd"];

/// Where a per-sample output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    /// A file; gzip-compressed when its name ends in `.gz`, as in k6.
    File(PathBuf),
}

impl Dest {
    fn of(arg: &str) -> Dest {
        if arg == "-" {
            Dest::Stdout
        } else {
            Dest::File(PathBuf::from(arg))
        }
    }

    /// How the header and messages name it.
    pub fn label(&self) -> String {
        match self {
            Dest::Stdout => "stdout".into(),
            Dest::File(p) => p.display().to_string(),
        }
    }
}

/// One output asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// k6's JSON lines, one per sample.
    Json { dest: Dest },
    /// k6's CSV, one row per sample, written out every `save_interval`.
    Csv {
        dest: Dest,
        time_format: TimeFormat,
        save_interval: Duration,
    },
    /// Volley's own per-interval aggregate lines.
    VolleyJson { path: PathBuf },
    /// InfluxDB 1.x, a point per series and interval or per sample.
    Influx(InfluxConfig),
    /// Prometheus remote write, per-interval aggregates.
    PromRw(PromRwConfig),
    /// OTLP metrics to an OpenTelemetry collector, per interval.
    Otel(OtelConfig),
}

impl OutputSpec {
    /// `--out`'s name of the output.
    pub fn name(&self) -> &'static str {
        match self {
            OutputSpec::Json { .. } => "json",
            OutputSpec::Csv { .. } => "csv",
            OutputSpec::VolleyJson { .. } => "volley-json",
            OutputSpec::Influx(_) => "influxdb",
            OutputSpec::PromRw(_) => "experimental-prometheus-rw",
            OutputSpec::Otel(_) => "opentelemetry",
        }
    }

    /// The header's `output:` entry, `json (out.json)`.
    pub fn describe(&self) -> String {
        let dest = match self {
            OutputSpec::Json { dest } | OutputSpec::Csv { dest, .. } => dest.label(),
            OutputSpec::VolleyJson { path } => path.display().to_string(),
            OutputSpec::Influx(c) => c.label(),
            OutputSpec::PromRw(c) => c.url.clone(),
            OutputSpec::Otel(c) => c.label(),
        };
        format!("{} ({dest})", self.name())
    }
}

/// The `--out` values, or `K6_OUT` (comma-separated, as k6 reads it) when
/// no `--out` is given.
pub fn requested(flags: &[String], env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    env("K6_OUT")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Parses one `--out` value; `env` reads k6's option variables
/// (`K6_CSV_FILENAME`, ...) and `vars` lists them all (for families such
/// as `K6_PROMETHEUS_RW_HEADERS_*`).
pub fn parse(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    vars: &[(String, String)],
) -> Result<OutputSpec, String> {
    let (name, arg) = match value.split_once('=') {
        Some((name, arg)) => (name, Some(arg)),
        None => (value, None),
    };
    match name {
        "json" => Ok(OutputSpec::Json {
            dest: Dest::of(arg.filter(|a| !a.is_empty()).unwrap_or("-")),
        }),
        "csv" => csv(arg, env),
        "influxdb" => InfluxConfig::parse(arg, env).map(OutputSpec::Influx),
        "experimental-prometheus-rw" => PromRwConfig::parse(arg, env, vars).map(OutputSpec::PromRw),
        "opentelemetry" | "experimental-opentelemetry" => {
            OtelConfig::parse(name, arg, env).map(OutputSpec::Otel)
        }
        "volley-json" => match arg.filter(|a| !a.is_empty()) {
            Some(file) => Ok(OutputSpec::VolleyJson {
                path: PathBuf::from(file),
            }),
            None => Err(format!("--out {value:?}: expected volley-json=FILE")),
        },
        _ if NOT_YET.contains(&name) => Err(format!(
            "--out {value:?}: the {name} output is not supported by Volley yet; known outputs: {}",
            KNOWN.join(", ")
        )),
        _ => Err(format!(
            "--out {value:?}: unknown output {name:?}; known outputs: {} (as NAME or NAME=ARG)",
            KNOWN.join(", ")
        )),
    }
}

/// `csv`, `csv=FILE` or `csv=fileName=FILE,saveInterval=1s,timeFormat=unix`
/// over `K6_CSV_FILENAME`, `K6_CSV_SAVE_INTERVAL`, `K6_CSV_TIME_FORMAT`.
fn csv(arg: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<OutputSpec, String> {
    let mut file = env("K6_CSV_FILENAME").unwrap_or_else(|| "file.csv".into());
    let mut interval = env("K6_CSV_SAVE_INTERVAL").map(|v| ("K6_CSV_SAVE_INTERVAL", v));
    let mut format = env("K6_CSV_TIME_FORMAT").map(|v| ("K6_CSV_TIME_FORMAT", v));
    match arg {
        None | Some("") => {}
        Some(a) if !a.contains('=') => file = a.to_owned(),
        Some(a) => {
            for pair in a.split(',') {
                match pair.split_once('=') {
                    Some(("fileName", v)) => file = v.to_owned(),
                    Some(("saveInterval", v)) => interval = Some(("saveInterval", v.to_owned())),
                    Some(("timeFormat", v)) => format = Some(("timeFormat", v.to_owned())),
                    _ => {
                        return Err(format!(
                            "--out csv={a:?}: {pair:?} is not an option; expected FILE or \
                             fileName=FILE,saveInterval=DURATION,timeFormat=FORMAT"
                        ));
                    }
                }
            }
        }
    }
    if file.is_empty() {
        return Err("--out csv: the file name is empty; expected csv=FILE".into());
    }
    let save_interval = match interval {
        None => Duration::from_secs(1),
        Some((from, v)) => crate::plan::parse_duration(&v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                format!("--out csv: {from} {v:?}: expected a positive duration such as 1s")
            })?,
    };
    let time_format = match format {
        None => TimeFormat::default(),
        Some((from, v)) => TimeFormat::parse(&v).ok_or_else(|| {
            format!(
                "--out csv: {from} {v:?}: expected unix, unix_milli, unix_micro, unix_nano, \
                 rfc3339 or rfc3339_nano"
            )
        })?,
    };
    Ok(OutputSpec::Csv {
        dest: Dest::of(&file),
        time_format,
        save_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn json_and_volley_json() {
        assert_eq!(
            parse("json=out.json", &none, &[]),
            Ok(OutputSpec::Json {
                dest: Dest::File("out.json".into())
            })
        );
        assert_eq!(
            parse("json", &none, &[]),
            Ok(OutputSpec::Json { dest: Dest::Stdout })
        );
        assert_eq!(
            parse("volley-json=i.json", &none, &[]),
            Ok(OutputSpec::VolleyJson {
                path: "i.json".into()
            })
        );
        let e = parse("volley-json", &none, &[]).expect_err("needs a file");
        assert!(e.contains("expected volley-json=FILE"), "{e}");
    }

    #[test]
    fn csv_from_the_argument_or_k6_variables() {
        let csv = |dest: &str, time_format, secs| OutputSpec::Csv {
            dest: Dest::File(dest.into()),
            time_format,
            save_interval: Duration::from_secs(secs),
        };
        assert_eq!(
            parse("csv", &none, &[]),
            Ok(csv("file.csv", TimeFormat::Unix, 1))
        );
        assert_eq!(
            parse("csv=a.csv.gz", &none, &[]),
            Ok(csv("a.csv.gz", TimeFormat::Unix, 1))
        );
        assert_eq!(
            parse(
                "csv=fileName=b.csv,saveInterval=5s,timeFormat=rfc3339",
                &none,
                &[]
            ),
            Ok(csv("b.csv", TimeFormat::Rfc3339, 5))
        );
        let env = |k: &str| match k {
            "K6_CSV_FILENAME" => Some("env.csv".to_owned()),
            "K6_CSV_TIME_FORMAT" => Some("unix_nano".to_owned()),
            _ => None,
        };
        assert_eq!(
            parse("csv", &env, &[]),
            Ok(csv("env.csv", TimeFormat::UnixNano, 1))
        );
        let e = parse("csv=fileName=b.csv,timeFormat=iso", &none, &[]).expect_err("bad format");
        assert!(
            e.contains("timeFormat \"iso\"") && e.contains("rfc3339_nano"),
            "{e}"
        );
        let e = parse("csv=fileName=b.csv,every=1s", &none, &[]).expect_err("bad key");
        assert!(e.contains("\"every=1s\" is not an option"), "{e}");
        let e = parse("csv=saveInterval=0s", &none, &[]).expect_err("zero");
        assert!(e.contains("positive duration"), "{e}");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = parse("jsn=x", &none, &[]).expect_err("unknown");
        assert!(e.contains("unknown output \"jsn\""), "{e}");
        assert!(
            e.contains(
                "json, csv, influxdb, experimental-prometheus-rw, opentelemetry, volley-json"
            ),
            "{e}"
        );
        let e = parse("cloud", &none, &[]).expect_err("not yet");
        assert!(e.contains("not supported by Volley yet"), "{e}");
    }

    #[test]
    fn k6_out_when_no_flag() {
        let env = |k: &str| (k == "K6_OUT").then(|| "json=a.json, csv=b.csv".to_owned());
        assert_eq!(requested(&[], &env), ["json=a.json", "csv=b.csv"]);
        assert_eq!(requested(&["csv".to_owned()], &env), ["csv"]);
        assert!(requested(&[], &none).is_empty());
    }
}
