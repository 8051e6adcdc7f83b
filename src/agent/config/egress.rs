//! The egress settings: `--egress-allow` and `--egress-deny` (comma-separated CIDRs, addresses and
//! host patterns) and `--egress-default-deny` (whether link-local and cloud metadata addresses,
//! [`DEFAULT_DENY`], are denied; on unless set to `false`). `volley run` reads the same variables
//! for local runs ([`egress_from_env`]), so a local run aimed at a metadata address by mistake is
//! refused too.

use std::borrow::Cow;
use std::sync::Arc;

use super::error::ConfigErrors;
use super::load::{Loader, Lookup};
use super::names::Setting;
use super::parse::Expected;
use super::{AgentArgs, OsFiles, Source};
use crate::plan::egress::{DEFAULT_DENY, EgressPolicy, Rule};

/// The egress variables alone (`VOLLEY_EGRESS_*`), for `volley run` on this machine.
pub fn egress_from_env(env: &dyn Source) -> Result<Arc<EgressPolicy>, ConfigErrors> {
    let args = AgentArgs::default();
    let mut loader = Loader::new(&args, env, &OsFiles);
    let egress = loader.egress();
    let errors = loader.into_errors();
    match egress {
        Some(egress) if errors.is_empty() => Ok(egress),
        _ => Err(ConfigErrors(errors)),
    }
}

// === impl Loader ===

impl Loader<'_> {
    /// The egress policy; `None` when a setting was rejected (the errors say why).
    pub(super) fn egress(&mut self) -> Option<Arc<EgressPolicy>> {
        let args = self.args;
        let allow = self.rules(Setting::EGRESS_ALLOW, args.egress_allow.as_ref());
        let deny = self.rules(Setting::EGRESS_DENY, args.egress_deny.as_ref());
        let defaults = match self.lookup(
            Setting::EGRESS_DEFAULT_DENY,
            args.egress_default_deny.as_ref(),
            boolean,
        ) {
            Lookup::Unset => Some(true),
            Lookup::Invalid => None,
            Lookup::Value(on, _) => Some(on),
        };
        Some(Arc::new(EgressPolicy::new(allow?, deny?, defaults?)))
    }

    fn rules(&mut self, setting: Setting, flag: Option<&String>) -> Option<Vec<Rule>> {
        match self.lookup(setting, flag, rules) {
            Lookup::Unset => Some(Vec::new()),
            Lookup::Invalid => None,
            Lookup::Value(rules, _) => Some(rules),
        }
    }
}

/// A comma-separated list of rules; blank entries are skipped.
fn rules(s: &str) -> Result<Vec<Rule>, Expected> {
    s.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            Rule::parse(entry).map_err(|_| {
                Cow::Owned(format!(
                    "a comma-separated list of CIDRs (10.0.0.0/8, fd00::/8), IP addresses and \
                     host names or patterns (api.example.com, *.example.com): {entry:?} is none \
                     of those"
                ))
            })
        })
        .collect()
}

/// `true` or `false` (also `on`/`off`, `1`/`0`).
fn boolean(s: &str) -> Result<bool, Expected> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        _ => Err(Cow::Owned(format!(
            "true or false (false drops the default deny rules: {})",
            DEFAULT_DENY.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::agent::config::MapSource;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("test addresses parse"))
    }

    #[test]
    fn unset_means_the_default_deny_list() {
        let policy = egress_from_env(&MapSource::default()).expect("no settings is valid");
        assert!(policy.allow().is_empty());
        assert_eq!(policy.deny().len(), DEFAULT_DENY.len());
        assert!(policy.check(None, ip("169.254.169.254")).is_err());
    }

    #[test]
    fn variables_set_the_lists_and_can_drop_the_defaults() {
        let env: MapSource = [
            ("VOLLEY_EGRESS_ALLOW", "10.0.0.0/8, *.corp.test"),
            ("VOLLEY_EGRESS_DENY", "10.9.0.0/16"),
            ("VOLLEY_EGRESS_DEFAULT_DENY", "false"),
        ]
        .into_iter()
        .collect();
        let policy = egress_from_env(&env).expect("valid settings");
        assert_eq!(policy.allow().len(), 2);
        assert_eq!(policy.deny().len(), 1);
        assert!(policy.check(None, ip("10.1.1.1")).is_ok());
        assert!(policy.check(None, ip("10.9.1.1")).is_err());
        assert!(
            policy.check(None, ip("169.254.169.254")).is_err(),
            "not allowed"
        );
    }

    #[test]
    fn bad_values_name_the_setting_the_value_and_the_form() {
        let env: MapSource = [
            ("VOLLEY_EGRESS_ALLOW", "10.0.0.0/8,10.0.0.0/40"),
            ("VOLLEY_EGRESS_DENY", "http://x.test/"),
            ("VOLLEY_EGRESS_DEFAULT_DENY", "maybe"),
        ]
        .into_iter()
        .collect();
        let report = egress_from_env(&env)
            .expect_err("all three are refused")
            .to_string();
        assert!(
            report.contains(
                "VOLLEY_EGRESS_ALLOW: \"10.0.0.0/8,10.0.0.0/40\" is not a comma-separated list"
            ),
            "{report}"
        );
        assert!(
            report.contains("\"10.0.0.0/40\" is none of those"),
            "{report}"
        );
        assert!(
            report.contains("VOLLEY_EGRESS_DENY: \"http://x.test/\""),
            "{report}"
        );
        assert!(
            report.contains("VOLLEY_EGRESS_DEFAULT_DENY: \"maybe\" is not true or false"),
            "{report}"
        );
    }
}
