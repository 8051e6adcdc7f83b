//! Pure parsers for single setting values (ids, labels, addresses, seeds, durations, numbers,
//! modes). Each returns the typed value or the expected form, worded to follow "… is not".

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::plan::{format_duration, parse_duration};

/// What a value should have looked like, completing "`"value"` is not …".
pub(crate) type Expected = Cow<'static, str>;

/// Expected form of node and cluster ids.
pub(crate) const ID_FORM: &str = "an id of 1-63 characters from a-z, A-Z, 0-9, '.', '_' and '-'";

/// A node or cluster id: 1-63 characters `[a-zA-Z0-9._-]`, safe in gossip keys, file names and
/// certificate names.
pub(crate) fn id(s: &str) -> Result<String, Expected> {
    let ok = (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Cow::Borrowed(ID_FORM))
    }
}

/// One `key=value` label. Keys are `[a-z0-9._/-]+`; values may be empty but hold no `,`, `=`,
/// whitespace or control characters (they travel in comma lists).
pub(crate) fn label(item: &str) -> Result<(String, String), Expected> {
    let Some((key, value)) = item.split_once('=') else {
        return Err(Cow::Borrowed("key=value (no '=' found), like pool=load"));
    };
    let (key, value) = (key.trim(), value.trim());
    let key_ok = !key.is_empty()
        && key.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'/' | b'-')
        });
    if !key_ok {
        return Err(Cow::Borrowed(
            "key=value with a key of a-z, 0-9, '.', '_', '/' and '-' only, like pool=load",
        ));
    }
    if value
        .chars()
        .any(|c| c == ',' || c == '=' || c.is_whitespace() || c.is_control())
    {
        return Err(Cow::Borrowed(
            "key=value with a value without ',', '=', spaces or control characters, like pool=load",
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// A Kubernetes equality label selector (`key=value,key=value`), as the API's
/// `labelSelector` takes it: keys are an optional DNS-subdomain prefix and `/`
/// then a name of at most 63 characters, values at most 63 characters of
/// `A-Za-z0-9`, `-`, `_` and `.`.
pub(crate) fn label_selector(s: &str) -> Result<String, Expected> {
    const FORM: &str = "key=value requirements joined by commas, like \
                        app.kubernetes.io/name=volley,app.kubernetes.io/instance=perf";
    let name_ok = |n: &str| {
        (1..=63).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let mut items = Vec::new();
    for item in list(s) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(Cow::Borrowed(FORM));
        };
        let (key, value) = (key.trim(), value.trim());
        let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
        let prefix_ok = prefix.len() <= 253
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
        if !name_ok(name) || !prefix_ok || !(value.is_empty() || name_ok(value)) {
            return Err(Cow::Borrowed(FORM));
        }
        items.push(format!("{key}={value}"));
    }
    if items.is_empty() {
        return Err(Cow::Borrowed(FORM));
    }
    Ok(items.join(","))
}

/// A node id, or a Kubernetes node name too long for one: node names may
/// have up to 253 characters (a DNS subdomain), ids 63. A longer valid node
/// name becomes its first 46 characters, `-` and 16 hex digits of its
/// SHA-256: the same name always maps to the same id, so a restarted agent
/// rejoins as itself, and two names that share their first 46 characters
/// stay apart.
pub(crate) fn node_id(s: &str) -> Result<String, Expected> {
    if s.len() <= 63 {
        return id(s);
    }
    let dns_subdomain = (64..=253).contains(&s.len())
        && s.split('.').all(|part| {
            (1..=63).contains(&part.len())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if !dns_subdomain {
        return Err(Cow::Owned(format!(
            "{ID_FORM}, or a Kubernetes node name (a DNS name of up to 253 characters)"
        )));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let head = s[..46].trim_end_matches(['.', '-']);
    Ok(format!("{head}-{hex}"))
}

/// Splits a comma list into trimmed, non-empty items (a trailing comma is harmless).
pub(crate) fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|item| !item.is_empty())
}

const ADDRESS_FORM: &str =
    "an IP address and port, like 0.0.0.0:7946, 10.0.0.7:7946 or [fd00::7]:7946";

/// An `ip:port` socket address. IPv6 may come without brackets (`fd00::7:7946`, what
/// `$(POD_IP):7946` gives on an IPv6 pod): the last `:` then separates the port.
pub(crate) fn socket_addr(s: &str) -> Result<SocketAddr, Expected> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let unbracketed = s.rsplit_once(':').and_then(|(ip, port)| {
        let ip = ip.parse::<Ipv6Addr>().ok()?;
        let port = port.parse::<u16>().ok()?;
        Some(SocketAddr::new(IpAddr::V6(ip), port))
    });
    unbracketed.ok_or(Cow::Borrowed(ADDRESS_FORM))
}

/// A seed: where to reach an agent's gossip port, by DNS name or IP address. Names are resolved
/// when joining, not here, so a seed may name a Service that has no endpoints yet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seed {
    /// DNS name or IP address (IPv6 without brackets).
    host: String,
    /// Gossip port, 1-65535.
    port: u16,
}

// === impl Seed ===

impl Seed {
    /// The DNS name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The seed as an address when its host is an IP address (no DNS lookup needed).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip = self.host.parse::<IpAddr>().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

/// `host:port`, with IPv6 hosts in brackets: the form a resolver (`to_socket_addrs`) accepts.
impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

const SEED_PORT: &str = "host:port (port must be 1-65535)";

/// One seed `host:port`: a DNS name, an IPv4 address or an IPv6 address (bracketed or not), and a
/// port 1-65535.
pub(crate) fn seed(s: &str) -> Result<Seed, Expected> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((host, port)) = rest.split_once("]:") else {
            return Err(Cow::Borrowed(
                "host:port (a bracketed IPv6 host needs a port after it, like [fd00::7]:7946)",
            ));
        };
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(Cow::Borrowed(
                "host:port (brackets hold an IPv6 address, like [fd00::7]:7946)",
            ));
        }
        (host, port)
    } else {
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(Cow::Borrowed(
                "host:port (no port given), like volley-gossip.volley.svc.cluster.local:7946",
            ));
        };
        (host, port)
    };
    let port = match port.parse::<u32>() {
        Ok(port @ 1..=65535) => u16::try_from(port).map_err(|_| Cow::Borrowed(SEED_PORT))?,
        _ => return Err(Cow::Borrowed(SEED_PORT)),
    };
    if host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
        return Err(Cow::Borrowed(
            "host:port with a host that is a DNS name or an IP address (IPv6 in brackets), like \
             agent-0.volley.svc:7946 or [fd00::7]:7946",
        ));
    }
    Ok(Seed {
        host: host.to_owned(),
        port,
    })
}

/// A DNS name: dot-separated labels of 1-63 letters, digits, `-` or `_` (not starting or ending
/// with `-`), at most 253 characters, an optional final dot.
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A positive, finite capacity weight.
pub(crate) fn capacity(s: &str) -> Result<f64, Expected> {
    match s.parse::<f64>() {
        Ok(c) if c.is_finite() && c > 0.0 && c <= 1e9 => Ok(c),
        _ => Err(Cow::Borrowed(
            "a positive number (this agent's weight in every test's share), like 4 or 2.5",
        )),
    }
}

/// A duration in k6's notation (the plan's parser: `500ms`, `1m30s`, a bare number is
/// milliseconds) within `[min, max]`.
/// Most API connections served at once: 1 to 65536.
pub(crate) fn connections(s: &str) -> Result<usize, Expected> {
    match s.parse::<usize>() {
        Ok(n) if (1..=65_536).contains(&n) => Ok(n),
        _ => Err(Cow::Borrowed(
            "a whole number of connections from 1 to 65536, like 256",
        )),
    }
}

pub(crate) fn duration_within(s: &str, min: Duration, max: Duration) -> Result<Duration, Expected> {
    match parse_duration(s) {
        Ok(d) if (min..=max).contains(&d) => Ok(d),
        _ => Err(Cow::Owned(format!(
            "a duration from {} to {}, like 500ms, 2s or 1m30s",
            format_duration(min),
            format_duration(max)
        ))),
    }
}

/// A keyword out of `choices` (case-insensitive).
pub(crate) fn keyword<T: Copy>(
    s: &str,
    choices: &[(&str, T)],
    expected: &'static str,
) -> Result<T, Expected> {
    choices
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(s))
        .map(|(_, value)| *value)
        .ok_or(Cow::Borrowed(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_alphabet_and_length() {
        assert_eq!(
            id("ip-10-0-1-23.eu-west-1_a").as_deref(),
            Ok("ip-10-0-1-23.eu-west-1_a")
        );
        assert!(id(&"a".repeat(63)).is_ok());
        for bad in ["", "has space", "naïve", "a/b", "x:y", &"a".repeat(64)] {
            assert_eq!(id(bad), Err(Cow::Borrowed(ID_FORM)), "{bad:?}");
        }
    }

    #[test]
    fn labels_check_key_and_value() {
        assert_eq!(label("pool=load"), Ok(("pool".into(), "load".into())));
        assert_eq!(
            label("topology.kubernetes.io/zone=eu-1a"),
            Ok(("topology.kubernetes.io/zone".into(), "eu-1a".into()))
        );
        assert_eq!(label("empty="), Ok(("empty".into(), String::new())));
        assert!(label("pool").unwrap_err().contains("no '='"));
        assert!(label("Pool=x").unwrap_err().contains("a-z, 0-9"));
        assert!(label("=x").unwrap_err().contains("a-z, 0-9"));
        assert!(label("a=b=c").unwrap_err().contains("without ','"));
        assert!(label("a=b c").unwrap_err().contains("spaces"));
    }

    #[test]
    fn long_node_names_map_to_stable_ids() {
        assert_eq!(node_id("worker-1"), Ok("worker-1".into()));
        let long = format!("{}x.eu-west-1.compute.internal", "ip-10-0-1-23-".repeat(4));
        assert!(long.len() > 63);
        let mapped = node_id(&long).expect("a valid node name");
        assert!(mapped.len() <= 63, "{mapped}");
        assert!(id(&mapped).is_ok(), "{mapped} is a valid id");
        assert!(mapped.starts_with("ip-10-0-1-23-ip-10-0-1-23-"), "{mapped}");
        assert_eq!(node_id(&long), Ok(mapped.clone()), "stable");
        let other = long.replace("internal", "internax");
        assert_ne!(
            node_id(&other).expect("valid"),
            mapped,
            "names differ, ids differ"
        );
        // Still refused: not a DNS name, or too long even for one.
        assert!(node_id(&"Upper".repeat(20)).is_err());
        assert!(node_id(&"a".repeat(254)).is_err());
        assert!(node_id("bad id!").is_err());
    }

    #[test]
    fn label_selectors_are_equality_requirements() {
        assert_eq!(
            label_selector("app.kubernetes.io/name=volley , app.kubernetes.io/instance=perf"),
            Ok("app.kubernetes.io/name=volley,app.kubernetes.io/instance=perf".into())
        );
        assert_eq!(label_selector("tier="), Ok("tier=".into()));
        for bad in [
            "",
            "name",
            "a=b c",
            "Bad/x=y",
            &format!("k={}", "v".repeat(64)),
        ] {
            assert!(label_selector(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn lists_skip_blank_items() {
        let items: Vec<&str> = list(" a=1 ,, b=2 ,").collect();
        assert_eq!(items, ["a=1", "b=2"]);
        assert_eq!(list("").count(), 0);
    }

    #[test]
    fn socket_addrs_take_ipv6_with_or_without_brackets() {
        assert_eq!(
            socket_addr("0.0.0.0:7946"),
            Ok("0.0.0.0:7946".parse().unwrap())
        );
        assert_eq!(
            socket_addr("[fd00::7]:7946"),
            Ok("[fd00::7]:7946".parse().unwrap())
        );
        assert_eq!(
            socket_addr("fd00::7:7946"),
            Ok("[fd00::7]:7946".parse().unwrap())
        );
        assert_eq!(socket_addr(":::7946"), Ok("[::]:7946".parse().unwrap()));
        for bad in [
            "",
            "7946",
            "localhost:7946",
            "1.2.3.4",
            "1.2.3.4:65536",
            "fd00::7",
        ] {
            assert!(socket_addr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seeds_take_names_and_addresses() {
        let s = seed("volley-gossip.volley.svc.cluster.local:7946").unwrap();
        assert_eq!(
            (s.host(), s.port()),
            ("volley-gossip.volley.svc.cluster.local", 7946)
        );
        assert_eq!(s.socket_addr(), None);
        let v4 = seed("10.0.0.7:1").unwrap();
        assert_eq!(v4.socket_addr(), Some("10.0.0.7:1".parse().unwrap()));
        let v6 = seed("[fd00::7]:65535").unwrap();
        assert_eq!(v6.host(), "fd00::7");
        assert_eq!(v6.to_string(), "[fd00::7]:65535");
        assert_eq!(seed("fd00::7:7946").unwrap().to_string(), "[fd00::7]:7946");
        assert_eq!(seed("agent.:7").unwrap().to_string(), "agent.:7");
    }

    #[test]
    fn seeds_explain_what_is_wrong() {
        for (bad, says) in [
            ("agent-0:99999", "port must be 1-65535"),
            ("agent-0:0", "port must be 1-65535"),
            ("agent-0:http", "port must be 1-65535"),
            ("agent-0:", "port must be 1-65535"),
            ("agent-0", "no port"),
            ("[fd00::7]", "needs a port"),
            ("[agent]:7", "IPv6"),
            ("-agent:7", "DNS name"),
            ("a..b:7", "DNS name"),
            (":7946", "DNS name"),
            ("agent 0:7946", "DNS name"),
        ] {
            let err = seed(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn bounded_durations_name_the_range() {
        let (min, max) = (Duration::from_millis(10), Duration::from_secs(60));
        assert_eq!(duration_within("1m", min, max), Ok(max));
        let err = duration_within("2m", min, max).unwrap_err();
        assert_eq!(err, "a duration from 10ms to 1m, like 500ms, 2s or 1m30s");
        assert!(duration_within("5ms", min, max).is_err());
        assert!(duration_within("soon", min, max).is_err());
        assert_eq!(
            duration_within("1500", min, max),
            Ok(Duration::from_millis(1500))
        );
    }

    #[test]
    fn capacity_is_positive_and_finite() {
        assert_eq!(capacity("4"), Ok(4.0));
        assert_eq!(capacity("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "1e10", "four", ""] {
            assert!(capacity(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keywords_ignore_case() {
        let choices = [("on", true), ("off", false)];
        assert_eq!(keyword("ON", &choices, "on|off"), Ok(true));
        assert_eq!(
            keyword("maybe", &choices, "on|off"),
            Err(Cow::Borrowed("on|off"))
        );
    }
}
