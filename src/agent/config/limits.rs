//! The admission and memory settings: `--max-vus`, `--max-rate`, `--max-duration` (what a plan may
//! ask of this agent; each replaces the value derived from its memory, CPUs or Volley's default)
//! and `--memory-ceiling` (the resident memory at which a running test is stopped). `volley run`
//! reads the same variables for local runs ([`LimitSettings::from_env`]).

use std::borrow::Cow;
use std::time::Duration;

use super::error::ConfigErrors;
use super::load::{Loader, Lookup};
use super::names::Setting;
use super::parse::{self, Expected};
use super::{AgentArgs, OsFiles, Source};
use crate::plan::admission::{Knobs, MachineLimits};

/// Largest accepted `--max-vus`: far beyond any machine's memory.
const MAX_VUS: u64 = 1_000_000_000;
/// Largest accepted `--max-rate` (iterations per second).
const MAX_RATE: f64 = 1e10;
/// Longest accepted `--max-duration`.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Smallest accepted `--memory-ceiling`: below it nothing runs at all.
const MIN_CEILING: u64 = 1 << 20;
/// Share of the memory limit the resident memory may reach while a test runs, when
/// `--memory-ceiling` is not set.
pub const DEFAULT_CEILING_PERCENT: u64 = 90;

/// What plans may ask of this machine and when a running test is stopped; `None` derives the
/// value from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LimitSettings {
    /// Most VUs (else from memory).
    pub max_vus: Option<u64>,
    /// Most iterations per second (else from CPUs).
    pub max_rate: Option<f64>,
    /// Longest test (else 7 days).
    pub max_duration: Option<Duration>,
    /// Resident memory (bytes) at which a running test is stopped (else 90 % of the memory
    /// limit).
    pub memory_ceiling: Option<u64>,
}

// === impl LimitSettings ===

impl LimitSettings {
    /// The limit variables alone (`VOLLEY_MAX_VUS`, ...), for `volley run` on this machine.
    pub fn from_env(env: &dyn Source) -> Result<LimitSettings, ConfigErrors> {
        let args = AgentArgs::default();
        let mut loader = Loader::new(&args, env, &OsFiles);
        let limits = loader.limits();
        let errors = loader.into_errors();
        match limits {
            Some(limits) if errors.is_empty() => Ok(limits),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// A machine's admission limits: its capacity, with these settings over the derived values.
    pub fn machine(&self, cpus: f64, memory_bytes: Option<u64>, knobs: Knobs) -> MachineLimits {
        MachineLimits {
            max_vus: self.max_vus,
            max_rate: self.max_rate,
            max_duration: self.max_duration,
            ..MachineLimits::from_capacity(cpus, memory_bytes, knobs)
        }
    }

    /// The resident memory at which a running test is stopped: the setting, else
    /// [`DEFAULT_CEILING_PERCENT`] of the memory limit; `None` when neither is known.
    pub fn ceiling(&self, memory_bytes: Option<u64>) -> Option<u64> {
        self.memory_ceiling
            .or_else(|| memory_bytes.map(|m| m / 100 * DEFAULT_CEILING_PERCENT))
    }
}

// === impl Loader ===

impl Loader<'_> {
    /// The limit settings; `None` when one was rejected (the errors say why).
    pub(super) fn limits(&mut self) -> Option<LimitSettings> {
        let args = self.args;
        let max_vus = self.optional(Setting::MAX_VUS, args.max_vus.as_ref(), vus);
        let max_rate = self.optional(Setting::MAX_RATE, args.max_rate.as_ref(), rate);
        let max_duration = self.optional(Setting::MAX_DURATION, args.max_duration.as_ref(), |s| {
            parse::duration_within(s, Duration::from_secs(1), MAX_DURATION)
        });
        let memory_ceiling = self.optional(
            Setting::MEMORY_CEILING,
            args.memory_ceiling.as_ref(),
            ceiling,
        );
        Some(LimitSettings {
            max_vus: max_vus?,
            max_rate: max_rate?,
            max_duration: max_duration?,
            memory_ceiling: memory_ceiling?,
        })
    }

    /// A setting without a default: outer `None` when the given value was rejected.
    fn optional<T>(
        &mut self,
        setting: Setting,
        flag: Option<&String>,
        parse: impl FnOnce(&str) -> Result<T, Expected>,
    ) -> Option<Option<T>> {
        match self.lookup(setting, flag, parse) {
            Lookup::Unset => Some(None),
            Lookup::Invalid => None,
            Lookup::Value(value, _) => Some(Some(value)),
        }
    }
}

/// A VU count: a whole number from 1 to [`MAX_VUS`].
fn vus(s: &str) -> Result<u64, Expected> {
    match s.parse::<u64>() {
        Ok(n) if (1..=MAX_VUS).contains(&n) => Ok(n),
        _ => Err(Cow::Owned(format!(
            "a whole number of VUs from 1 to {MAX_VUS}, like 20000"
        ))),
    }
}

/// Iterations per second: a positive number up to [`MAX_RATE`].
fn rate(s: &str) -> Result<f64, Expected> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => Ok(r),
        _ => Err(Cow::Borrowed(
            "a positive number of iterations per second up to 1e10, like 200000 or 2.5e6",
        )),
    }
}

/// A memory size as Kubernetes writes one (`1536Mi`, `2Gi`, `2G`, bytes), at least 1 MiB.
fn ceiling(s: &str) -> Result<u64, Expected> {
    match crate::kube::quantity::parse_memory(s) {
        Ok(bytes) if bytes >= MIN_CEILING => Ok(bytes),
        _ => Err(Cow::Borrowed(
            "a memory size of at least 1Mi, like 1536Mi, 2Gi or 2G (bytes without a unit)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::MapSource;

    #[test]
    fn values_parse_within_their_ranges() {
        assert_eq!(vus("20000"), Ok(20_000));
        for bad in ["0", "-1", "1.5", "ten", "1000000001"] {
            assert!(vus(bad).is_err(), "{bad:?}");
        }
        assert_eq!(rate("2.5e6"), Ok(2_500_000.0));
        for bad in ["0", "-3", "NaN", "inf", "1e11", "fast"] {
            assert!(rate(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ceiling("1536Mi"), Ok(1536 << 20));
        assert_eq!(ceiling("2G"), Ok(2_000_000_000));
        for bad in ["1Ki", "-1Gi", "lots", ""] {
            assert!(ceiling(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_runs_read_the_same_variables() {
        let env: MapSource = [
            ("VOLLEY_MAX_VUS", "5000"),
            ("VOLLEY_MAX_RATE", "1e6"),
            ("VOLLEY_MAX_DURATION", "48h"),
        ]
        .into_iter()
        .collect();
        let limits = LimitSettings::from_env(&env).expect("valid limits");
        assert_eq!(limits.max_vus, Some(5000));
        assert_eq!(limits.max_rate, Some(1e6));
        assert_eq!(limits.max_duration, Some(Duration::from_secs(48 * 3600)));
        assert_eq!(limits.memory_ceiling, None);

        let bad: MapSource = [("VOLLEY_MAX_VUS", "lots"), ("VOLLEY_MAX_RATE", "0")]
            .into_iter()
            .collect();
        let report = LimitSettings::from_env(&bad)
            .expect_err("both are refused")
            .to_string();
        assert!(
            report.contains("VOLLEY_MAX_VUS: \"lots\" is not a whole number"),
            "{report}"
        );
        assert!(
            report.contains("VOLLEY_MAX_RATE: \"0\" is not a positive number"),
            "{report}"
        );
    }

    #[test]
    fn the_ceiling_defaults_to_most_of_the_memory_limit() {
        let unset = LimitSettings::default();
        assert_eq!(unset.ceiling(Some(1000 << 20)), Some(900 << 20));
        assert_eq!(unset.ceiling(None), None);
        let set = LimitSettings {
            memory_ceiling: Some(64 << 20),
            ..LimitSettings::default()
        };
        assert_eq!(set.ceiling(Some(1 << 40)), Some(64 << 20));
    }
}
