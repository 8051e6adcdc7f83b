//! k6's system tags (`systemTags`, `--system-tags`, `K6_SYSTEM_TAGS`):
//! which of the tags Volley sets itself the samples carry. The default is
//! k6's set. Fewer tags mean fewer series (and no thresholds or summary
//! lines that filter on the dropped ones).
//!
//! Volley keeps one aggregate per tag combination, so the tags k6 has
//! that make a series per VU, per iteration or per address (`vu`, `iter`,
//! `ip`) are refused with a reason rather than accepted and ignored.

use std::fmt;

/// A set of system tags.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SystemTags(u32);

/// One system tag, by k6's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemTag {
    Proto,
    Subproto,
    Status,
    Method,
    Url,
    Name,
    Group,
    Check,
    Error,
    ErrorCode,
    TlsVersion,
    Scenario,
    Service,
    ExpectedResponse,
}

const ALL: [(SystemTag, &str); 14] = [
    (SystemTag::Proto, "proto"),
    (SystemTag::Subproto, "subproto"),
    (SystemTag::Status, "status"),
    (SystemTag::Method, "method"),
    (SystemTag::Url, "url"),
    (SystemTag::Name, "name"),
    (SystemTag::Group, "group"),
    (SystemTag::Check, "check"),
    (SystemTag::Error, "error"),
    (SystemTag::ErrorCode, "error_code"),
    (SystemTag::TlsVersion, "tls_version"),
    (SystemTag::Scenario, "scenario"),
    (SystemTag::Service, "service"),
    (SystemTag::ExpectedResponse, "expected_response"),
];

/// k6's system tags Volley does not set, and why.
const REFUSED: [(&str, &str); 4] = [
    ("vu", "one series per VU"),
    ("iter", "one series per iteration"),
    ("ip", "one series per remote address; not supported yet"),
    ("ocsp_status", "OCSP stapling is not checked"),
];

impl SystemTag {
    /// The tag k6 calls `name`, if it is a system tag.
    pub fn from_name(name: &str) -> Option<SystemTag> {
        ALL.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    pub fn name(self) -> &'static str {
        ALL.iter().find(|(t, _)| *t == self).map_or("", |(_, n)| n)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl SystemTags {
    /// k6's default: every tag above (`vu`, `iter`, `ip` and `ocsp_status`
    /// are off by default in k6 too).
    pub fn k6_default() -> SystemTags {
        SystemTags(ALL.iter().fold(0, |b, (t, _)| b | t.bit()))
    }

    pub fn none() -> SystemTags {
        SystemTags(0)
    }

    pub fn has(self, tag: SystemTag) -> bool {
        self.0 & tag.bit() != 0
    }

    /// The set named by `names` (k6's names, any order, repeats allowed);
    /// `Err((name, why))` for a name Volley does not take.
    pub fn parse<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<SystemTags, (String, String)> {
        let mut bits = 0;
        for raw in names {
            let name = raw.trim();
            if name.is_empty() {
                continue;
            }
            if let Some((t, _)) = ALL.iter().find(|(_, n)| *n == name) {
                bits |= t.bit();
            } else if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
                return Err((
                    name.to_owned(),
                    format!(
                        "not supported by Volley ({why}); k6's other system tags: {}",
                        names_list()
                    ),
                ));
            } else {
                return Err((name.to_owned(), format!("one of {}", names_list())));
            }
        }
        Ok(SystemTags(bits))
    }
}

fn names_list() -> String {
    ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}

impl Default for SystemTags {
    fn default() -> Self {
        SystemTags::k6_default()
    }
}

impl fmt::Debug for SystemTags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(ALL.iter().filter(|(t, _)| self.has(*t)).map(|(_, n)| n))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_k6s_and_a_list_replaces_it() {
        let all = SystemTags::k6_default();
        assert!(all.has(SystemTag::Url) && all.has(SystemTag::TlsVersion));
        let some = SystemTags::parse(["status", " method", "", "status"]).unwrap();
        assert!(some.has(SystemTag::Status) && some.has(SystemTag::Method));
        assert!(!some.has(SystemTag::Scenario));
        assert_eq!(format!("{some:?}"), r#"{"status", "method"}"#);
        assert_eq!(SystemTag::ErrorCode.name(), "error_code");
    }

    #[test]
    fn per_vu_tags_and_typos_are_refused_with_a_reason() {
        let (name, why) = SystemTags::parse(["status", "vu"]).unwrap_err();
        assert_eq!(name, "vu");
        assert!(why.contains("one series per VU"), "{why}");
        let (name, why) = SystemTags::parse(["stauts"]).unwrap_err();
        assert_eq!(name, "stauts");
        assert!(why.starts_with("one of proto"), "{why}");
    }
}
