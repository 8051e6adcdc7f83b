//! Which requests go through a proxy, and which proxy.
//!
//! As k6 (Go's `ProxyFromEnvironment`): `HTTP_PROXY` for `http://` URLs,
//! `HTTPS_PROXY` for `https://` URLs, `NO_PROXY` for the hosts that go
//! direct (upper-case names first, then lower-case), and requests to
//! `localhost` or a loopback address never use an environment proxy. The
//! plan's `proxy` option replaces the environment and, having been asked
//! for explicitly, also applies to loopback addresses.
//!
//! An `http://` request through a proxy is sent to it in absolute form
//! (`GET http://host/path`); an `https://` one goes through a `CONNECT`
//! tunnel, then TLS to the target as usual (see [`super::stream`]).

use std::net::IpAddr;

use super::url::{Scheme, Target};
use crate::plan::net::ProxyOption;

/// One proxy: where to connect, and its `Proxy-Authorization`.
#[derive(Clone)]
pub struct Proxy {
    /// The proxy's own address (its scheme is `http`).
    pub target: Target,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({}:{})", self.target.host, self.target.port)
    }
}

impl Proxy {
    fn parse(url: &str) -> Option<Proxy> {
        // Go takes `host:port` without a scheme as an http proxy.
        let owned;
        let url = if url.contains("://") {
            url
        } else {
            owned = format!("http://{url}");
            &owned
        };
        let mut target = Target::default();
        target.parse_into(url).ok()?;
        (target.scheme == Scheme::Http).then_some(Proxy { target })
    }

    /// `Basic …` for `Proxy-Authorization`, empty without credentials.
    pub fn authorization(&self) -> &str {
        &self.target.authorization
    }
}

/// The proxies of a run.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
    /// From the environment: loopback targets go direct.
    from_env: bool,
}

/// Why the proxy settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "{source_name}: not an http:// proxy URL (https:// and socks5:// proxies are not supported)"
)]
pub struct ProxyError {
    source_name: &'static str,
}

impl Proxies {
    /// From the plan's option if set, else from `env` (the process
    /// environment, passed in so tests can give their own).
    pub fn new(
        option: Option<&ProxyOption>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Proxies, ProxyError> {
        let parse = |url: Option<&String>, source_name| match url.filter(|u| !u.is_empty()) {
            None => Ok(None),
            Some(u) => Proxy::parse(u).map(Some).ok_or(ProxyError { source_name }),
        };
        if let Some(o) = option {
            return Ok(Proxies {
                http: parse(o.http.as_ref(), "proxy.http")?,
                https: parse(o.https.as_ref(), "proxy.https")?,
                no_proxy: NoProxy::parse(&o.no_proxy),
                from_env: false,
            });
        }
        let var = |upper: &str, lower: &str| env(upper).or_else(|| env(lower));
        Ok(Proxies {
            http: parse(var("HTTP_PROXY", "http_proxy").as_ref(), "HTTP_PROXY")?,
            https: parse(var("HTTPS_PROXY", "https_proxy").as_ref(), "HTTPS_PROXY")?,
            no_proxy: NoProxy::parse(&var("NO_PROXY", "no_proxy").unwrap_or_default()),
            from_env: true,
        })
    }

    /// The proxy a request to `target` goes through, if any.
    pub fn for_target(&self, target: &Target) -> Option<&Proxy> {
        let proxy = match target.scheme {
            Scheme::Http => self.http.as_ref(),
            Scheme::Https => self.https.as_ref(),
        }?;
        if self.from_env
            && (target.host == "localhost" || target.ip.is_some_and(|ip| ip.is_loopback()))
        {
            return None;
        }
        (!self.no_proxy.matches(&target.host, target.ip, target.port)).then_some(proxy)
    }
}

/// `NO_PROXY` as Go reads it: `*`; `name` (itself and its subdomains);
/// `.name` or `*.name` (subdomains only); IPs and CIDR blocks (IP
/// literal hosts only); each with an optional `:port`.
#[derive(Debug, Clone, Default)]
struct NoProxy {
    all: bool,
    entries: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone)]
struct NoProxyEntry {
    rule: Rule,
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum Rule {
    Block(IpAddr, u32),
    /// `.suffix`, and whether the bare name matches too.
    Domain(String, bool),
}

impl NoProxy {
    fn parse(s: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for raw in s.split(',').map(|e| e.trim().to_ascii_lowercase()) {
            if raw.is_empty() {
                continue;
            }
            if raw == "*" {
                out.all = true;
                continue;
            }
            if let Some(rule) = block(&raw) {
                out.entries.push(NoProxyEntry { rule, port: None });
                continue;
            }
            if let Ok(ip) = raw.trim_matches(['[', ']']).parse::<IpAddr>() {
                let bits = if ip.is_ipv4() { 32 } else { 128 };
                out.entries.push(NoProxyEntry {
                    rule: Rule::Block(ip, bits),
                    port: None,
                });
                continue;
            }
            let (host, port) = match raw.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                    Ok(port) => (h.trim_matches(['[', ']']).to_owned(), Some(port)),
                    Err(_) => continue,
                },
                _ => (raw.clone(), None),
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                let bits = if ip.is_ipv4() { 32 } else { 128 };
                out.entries.push(NoProxyEntry {
                    rule: Rule::Block(ip, bits),
                    port,
                });
                continue;
            }
            let host = host.strip_prefix('*').unwrap_or(&host);
            let rule = match host.strip_prefix('.') {
                Some(_) => Rule::Domain(host.to_owned(), false),
                None => Rule::Domain(format!(".{host}"), true),
            };
            out.entries.push(NoProxyEntry { rule, port });
        }
        out
    }

    fn matches(&self, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
        self.all
            || self.entries.iter().any(|e| {
                e.port.is_none_or(|p| p == port)
                    && match &e.rule {
                        Rule::Block(net, bits) => ip.is_some_and(|ip| in_block(ip, *net, *bits)),
                        Rule::Domain(suffix, bare) => {
                            ip.is_none()
                                && (host.ends_with(suffix.as_str())
                                    || (*bare && host == &suffix[1..]))
                        }
                    }
            })
    }
}

fn block(s: &str) -> Option<Rule> {
    let (ip, bits) = s.split_once('/')?;
    let ip = ip.parse::<IpAddr>().ok()?;
    let bits = bits.parse::<u32>().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Rule::Block(ip, bits))
}

fn in_block(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn target(url: &str) -> Target {
        let mut t = Target::default();
        t.parse_into(url).unwrap();
        t
    }

    fn from_env(vars: &[(&str, &str)]) -> Proxies {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::new(None, |k| vars.get(k).cloned()).unwrap()
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_target(&target(url))
            .map(|p| format!("{}:{}", p.target.host, p.target.port))
    }

    #[test]
    fn the_environment_picks_a_proxy_per_scheme() {
        let p = from_env(&[
            ("HTTP_PROXY", "http://plain:3128"),
            ("https_proxy", "tunnel:8080"),
        ]);
        assert_eq!(via(&p, "http://api.test/").as_deref(), Some("plain:3128"));
        assert_eq!(via(&p, "https://api.test/").as_deref(), Some("tunnel:8080"));
        let upper_first = from_env(&[("HTTP_PROXY", "a:1"), ("http_proxy", "b:2")]);
        assert_eq!(via(&upper_first, "http://x/").as_deref(), Some("a:1"));
        assert_eq!(via(&from_env(&[]), "http://x/"), None);
    }

    #[test]
    fn loopback_goes_direct_unless_the_plan_says_otherwise() {
        let env = from_env(&[("HTTP_PROXY", "http://p:3128")]);
        assert_eq!(via(&env, "http://localhost:8080/"), None);
        assert_eq!(via(&env, "http://127.0.0.1:8080/"), None);
        assert_eq!(via(&env, "http://[::1]:8080/"), None);
        let option = ProxyOption {
            http: Some("http://p:3128".into()),
            https: None,
            no_proxy: String::new(),
        };
        let planned = Proxies::new(Some(&option), |_| None).unwrap();
        assert_eq!(
            via(&planned, "http://127.0.0.1:8080/").as_deref(),
            Some("p:3128")
        );
        assert_eq!(via(&planned, "https://127.0.0.1:8080/"), None);
    }

    #[test]
    fn no_proxy_reads_as_go_reads_it() {
        let p = from_env(&[
            ("HTTP_PROXY", "p:1"),
            (
                "NO_PROXY",
                "example.com, .sub.test, *.wild.test, 10.0.0.0/8, 192.168.1.7, api.test:8080, [fd00::1]",
            ),
        ]);
        let direct = |url: &str| via(&p, url).is_none();
        assert!(direct("http://example.com/"));
        assert!(direct("http://a.example.com/"));
        assert!(!direct("http://badexample.com/"));
        assert!(direct("http://x.sub.test/"));
        assert!(!direct("http://sub.test/"));
        assert!(direct("http://x.wild.test/"));
        assert!(!direct("http://wild.test/"));
        assert!(direct("http://10.1.2.3/"));
        assert!(!direct("http://11.1.2.3/"));
        assert!(direct("http://192.168.1.7/"));
        assert!(direct("http://api.test:8080/"));
        assert!(!direct("http://api.test:8081/"));
        assert!(direct("http://[fd00::1]/"));
        let all = from_env(&[("HTTP_PROXY", "p:1"), ("NO_PROXY", "*")]);
        assert_eq!(via(&all, "http://anything/"), None);
    }

    #[test]
    fn credentials_become_proxy_authorization_and_stay_out_of_debug() {
        let p = from_env(&[("HTTPS_PROXY", "http://user:p%40ss@p:3128")]);
        let proxy = p.for_target(&target("https://api.test/")).unwrap();
        assert_eq!(proxy.authorization(), "Basic dXNlcjpwQHNz");
        assert!(!format!("{p:?}").contains("dXNl"));
    }

    #[test]
    fn unusable_proxy_urls_are_errors() {
        let err = Proxies::new(None, |k| {
            (k == "HTTPS_PROXY").then(|| "socks5://p:1080".to_owned())
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("HTTPS_PROXY"), "{err}");
    }
}
