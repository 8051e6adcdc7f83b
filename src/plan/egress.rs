//! The egress policy: where a machine's requests may go. Rules are CIDRs
//! (`10.0.0.0/8`, `fd00::/8`, one address) or host patterns (`example.com`,
//! `*.example.com`), in an allow list and a deny list.
//!
//! A destination is a host name, an address, or both (a name and the
//! address it resolved to). It is refused when any deny rule matches its
//! name or its address (deny wins over allow); when the allow list is not
//! empty, it must match an allow rule. The deny list starts with
//! [`DEFAULT_DENY`] (link-local addresses and the cloud metadata services)
//! unless the agent drops the defaults explicitly.
//!
//! Checked twice: when a test is accepted, against the host names a plan's
//! request URLs name literally ([`EgressPolicy::check_plan`]; templated
//! hosts are only known when sent), and by the HTTP client when it
//! connects, after DNS, so scripts, redirects and the `hosts` option are
//! covered too. Pure: no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use super::template::{Part, Template};
use super::types::{Plan, Request};

/// What is denied unless the agent drops the defaults: link-local
/// addresses (IPv4 and IPv6; 169.254.169.254 is the metadata service of
/// AWS, GCP, Azure, OpenStack and others), AWS's IPv6 metadata address,
/// Alibaba Cloud's metadata address, and GCP's metadata host names (a name
/// rule also holds when a proxy resolves the name).
pub const DEFAULT_DENY: [&str; 7] = [
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
    "metadata.google.internal",
    "*.metadata.google.internal",
    "metadata",
];

/// The form of one rule, for error messages.
pub const RULE_FORM: &str = "a CIDR (10.0.0.0/8, fd00::/8), an IP address, or a host name \
     (example.com) or pattern (*.example.com), separated by commas";

/// One allow or deny rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Addresses in a network.
    Net(Cidr),
    /// Host names.
    Host(HostPattern),
}

/// An address range: `addr` with only its first `prefix` bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A host name, or with `*.` every name below it (not the name itself).
/// Lower case, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    name: String,
    subdomains: bool,
}

/// The allow and deny lists one machine applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The destination as checked: `name`, `address` or `name (address)`.
    pub destination: String,
    /// The address checked, if one was.
    pub address: Option<IpAddr>,
    /// The deny rule it matched; `None`: it matched no allow rule.
    pub rule: Option<Rule>,
}

/// A request of a plan whose literal host is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDenial {
    /// The request's field path (`flow[0].get`, `scenarios.api.flow[2].request`).
    pub path: String,
    /// The host its URL names.
    pub host: String,
    pub denial: Denial,
}

// === impl Rule ===

impl Rule {
    /// Parses one rule (see [`RULE_FORM`]).
    pub fn parse(text: &str) -> Result<Rule, String> {
        let text = text.trim();
        let bad = |why: &str| format!("{text:?} {why}; expected {RULE_FORM}");
        if text.is_empty() {
            return Err(bad("is empty"));
        }
        if let Some((addr, prefix)) = text.split_once('/') {
            let addr = parse_ip(addr).ok_or_else(|| bad("is not an IP address before the /"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad(&format!("has a prefix length that is not 0 to {max}")))?;
            return Ok(Rule::Net(Cidr::new(addr, prefix)));
        }
        if let Some(addr) = parse_ip(text) {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            return Ok(Rule::Net(Cidr::new(addr, prefix)));
        }
        let (subdomains, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(bad("is neither an address, a CIDR nor a host name"));
        }
        Ok(Rule::Host(HostPattern { name, subdomains }))
    }

    /// Parses a comma-separated list of rules; blank entries are skipped.
    pub fn parse_list(text: &str) -> Result<Vec<Rule>, String> {
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Rule::parse)
            .collect()
    }

    /// Whether this rule matches the host name `host` (normalised) or the
    /// address `ip` (canonical).
    fn matches(&self, host: Option<&str>, ip: Option<IpAddr>) -> bool {
        match self {
            Rule::Net(net) => ip.is_some_and(|ip| net.contains(ip)),
            Rule::Host(pattern) => host.is_some_and(|h| pattern.matches(h)),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Net(net) => write!(f, "{}/{}", net.addr, net.prefix),
            Rule::Host(p) if p.subdomains => write!(f, "*.{}", p.name),
            Rule::Host(p) => f.write_str(&p.name),
        }
    }
}

/// An address, with or without brackets (`[::1]`).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

// === impl Cidr ===

impl Cidr {
    /// `addr/prefix` with the bits after the prefix cleared; an IPv4-mapped
    /// IPv6 network (`::ffff:169.254.0.0/112`) becomes the IPv4 one, as
    /// addresses are matched in their IPv4 form.
    fn new(addr: IpAddr, prefix: u8) -> Cidr {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask32(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
        };
        Cidr { addr, prefix }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

// === impl HostPattern ===

impl HostPattern {
    /// `host` is lower case without a trailing dot.
    fn matches(&self, host: &str) -> bool {
        if !self.subdomains {
            return host == self.name;
        }
        host.strip_suffix(self.name.as_str())
            .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
    }
}

// === impl EgressPolicy ===

impl Default for EgressPolicy {
    /// Nothing allowed explicitly, [`DEFAULT_DENY`] denied.
    fn default() -> Self {
        EgressPolicy::new(Vec::new(), Vec::new(), true)
    }
}

impl EgressPolicy {
    /// `allow` and `deny`, with [`DEFAULT_DENY`] before `deny` when
    /// `default_deny`.
    pub fn new(allow: Vec<Rule>, deny: Vec<Rule>, default_deny: bool) -> EgressPolicy {
        let mut all = Vec::with_capacity(deny.len() + DEFAULT_DENY.len());
        if default_deny {
            all.extend(
                DEFAULT_DENY
                    .iter()
                    .map(|r| Rule::parse(r).expect("invariant: the default rules parse")),
            );
        }
        all.extend(deny);
        EgressPolicy { allow, deny: all }
    }

    /// Nothing denied at all (tests, embedding).
    pub fn open() -> EgressPolicy {
        EgressPolicy::new(Vec::new(), Vec::new(), false)
    }

    /// The allow rules (empty: everything not denied is allowed).
    pub fn allow(&self) -> &[Rule] {
        &self.allow
    }

    /// The deny rules, defaults included.
    pub fn deny(&self) -> &[Rule] {
        &self.deny
    }

    /// Checks a destination: a host name (or IP literal), the address it
    /// resolved to, or both. With a name alone (before DNS, or a target a
    /// proxy resolves), an allow list that has CIDRs cannot refuse it yet.
    pub fn check(&self, host: Option<&str>, ip: Option<IpAddr>) -> Result<(), Denial> {
        let name = host.map(|h| {
            let h = h.strip_suffix('.').unwrap_or(h);
            let h = h
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(h);
            h.to_ascii_lowercase()
        });
        let ip = ip
            .or_else(|| name.as_deref().and_then(|n| n.parse::<IpAddr>().ok()))
            .map(|ip| ip.to_canonical());
        let name = name.filter(|n| n.parse::<IpAddr>().is_err());
        let describe = || match (&name, ip) {
            (Some(n), Some(ip)) => format!("{n} ({ip})"),
            (Some(n), None) => n.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "(no destination)".to_owned(),
        };
        if let Some(rule) = self.deny.iter().find(|r| r.matches(name.as_deref(), ip)) {
            return Err(Denial {
                destination: describe(),
                address: ip,
                rule: Some(rule.clone()),
            });
        }
        if self.allow.is_empty() || self.allow.iter().any(|r| r.matches(name.as_deref(), ip)) {
            return Ok(());
        }
        let unresolved = ip.is_none() && self.allow.iter().any(|r| matches!(r, Rule::Net(_)));
        if unresolved {
            return Ok(());
        }
        Err(Denial {
            destination: describe(),
            address: ip,
            rule: None,
        })
    }

    /// Checks every request of `plan` whose URL names its host literally
    /// (templated hosts are checked when connecting), and the address the
    /// `hosts` option maps that host to. The first refused one.
    pub fn check_plan(&self, plan: &Plan) -> Result<(), Box<PlanDenial>> {
        for request in &plan.requests {
            self.check_request(plan, request)?;
        }
        Ok(())
    }

    fn check_request(&self, plan: &Plan, request: &Request) -> Result<(), Box<PlanDenial>> {
        let Some((host, port)) = literal_host(&request.url) else {
            return Ok(());
        };
        let refuse = |denial| {
            Box::new(PlanDenial {
                path: request.path.clone(),
                host: host.clone(),
                denial,
            })
        };
        let pinned = port.and_then(|p| plan.http.host_override(&host, p));
        self.check(Some(&host), pinned.map(|a| a.ip()))
            .map_err(refuse)
    }
}

/// `allow any; deny 169.254.0.0/16, ...`: the policy as an operator
/// reads it in the agent's start-up log.
impl fmt::Display for EgressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |rules: &[Rule]| {
            rules
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.allow.is_empty() {
            f.write_str("allow any")?;
        } else {
            write!(f, "allow {}", list(&self.allow))?;
        }
        if self.deny.is_empty() {
            f.write_str("; deny none")
        } else {
            write!(f, "; deny {}", list(&self.deny))
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) if DEFAULT_DENY.contains(&rule.to_string().as_str()) => write!(
                f,
                "{} is denied by egress policy (default deny rule {rule}: link-local and cloud metadata addresses)",
                self.destination
            ),
            Some(rule) => write!(
                f,
                "{} is denied by egress policy (deny rule {rule})",
                self.destination
            ),
            None => write!(
                f,
                "{} is denied by egress policy (it matches no allow rule)",
                self.destination
            ),
        }
    }
}

impl fmt::Display for PlanDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: host {:?}: {}", self.path, self.host, self.denial)
    }
}

/// The host (lower case) and port of a URL template whose scheme and
/// authority are literal: the whole URL, or a literal prefix that ends the
/// authority (`http://api.test/${path}`). The port is `None` when it is
/// not known (a malformed port).
fn literal_host(url: &Template) -> Option<(String, Option<u16>)> {
    let prefix = match url.as_static() {
        Some(whole) => whole,
        None => match url.parts().first() {
            Some(Part::Literal(prefix)) => prefix.as_str(),
            _ => return None,
        },
    };
    let (scheme, rest) = prefix.split_once("://")?;
    let end = rest.find(['/', '?', '#']);
    if end.is_none() && url.as_static().is_none() {
        return None;
    }
    let authority = &rest[..end.unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    let port = match port {
        None | Some("") => Some(default_port),
        Some(p) => p.parse().ok(),
    };
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests;
