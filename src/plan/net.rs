//! The network options of a plan, with k6's names: client certificates
//! (`tlsAuth`), TLS versions (`tlsVersion`) and cipher suites
//! (`tlsCipherSuites`), name resolution (`dns`), source addresses
//! (`localIPs`) and the proxy (`proxy`, a Volley option; k6 reads only the
//! environment, which Volley also does, see `engine::http::proxy`).
//!
//! Values here are validated and typed; the rustls side of TLS is built
//! from them in `engine::http::tls`.

use std::net::IpAddr;
use std::time::Duration;

/// Every network option; the defaults are k6's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetOptions {
    /// `tlsAuth`: client certificates, in the order written.
    pub tls_auth: Vec<TlsAuth>,
    /// `tlsVersion`: the versions offered.
    pub tls_versions: TlsVersions,
    /// `tlsCipherSuites`: the TLS 1.2 suites offered (k6's names), or all
    /// of them. As in Go, TLS 1.3 suites are not configurable.
    pub tls12_cipher_suites: Option<Vec<CipherSuite>>,
    /// `dns`: how host names are resolved.
    pub dns: DnsOptions,
    /// `localIPs` / `--local-ips`: source addresses, handed to VUs in turn.
    pub local_ips: LocalIps,
    /// `proxy`: the proxy for every request, instead of the environment's.
    pub proxy: Option<ProxyOption>,
    /// Where requests may go: the machine's policy (`--egress-allow`,
    /// `--egress-deny`), never the plan's. Compiling gives the default
    /// (link-local and cloud metadata denied); `volley run` and each agent
    /// put their own in before anything is sent.
    pub egress: std::sync::Arc<super::egress::EgressPolicy>,
}

/// One `tlsAuth` entry: a certificate chain and its key (PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsAuth {
    /// Presented to these hosts only (exact names or `*.example.com`);
    /// empty: to any host whose server asks for a certificate.
    pub domains: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for TlsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAuth")
            .field("domains", &self.domains)
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl TlsAuth {
    /// True when this certificate is for `host` (lower-case).
    pub fn is_for(&self, host: &str) -> bool {
        self.domains.iter().any(|d| domain_matches(d, host))
    }
}

/// `example.com` matches itself; `*.example.com` matches one or more
/// labels in front of `example.com`, not `example.com` itself.
fn domain_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|front| front.len() > 1 && front.ends_with('.')),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// A TLS protocol version, by k6's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub const NAMES: &str = "tls1.0, tls1.1, tls1.2, tls1.3";

    pub fn parse(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "tls1.0" => TlsVersion::Tls10,
            "tls1.1" => TlsVersion::Tls11,
            "tls1.2" => TlsVersion::Tls12,
            "tls1.3" => TlsVersion::Tls13,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "tls1.0",
            TlsVersion::Tls11 => "tls1.1",
            TlsVersion::Tls12 => "tls1.2",
            TlsVersion::Tls13 => "tls1.3",
        }
    }
}

/// The inclusive range of versions offered. Volley's TLS speaks 1.2 and
/// 1.3: a range reaching below 1.2 offers what it can of it, a range
/// entirely below 1.2 is refused when the plan loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    pub min: TlsVersion,
    pub max: TlsVersion,
}

impl Default for TlsVersions {
    fn default() -> Self {
        TlsVersions {
            min: TlsVersion::Tls12,
            max: TlsVersion::Tls13,
        }
    }
}

impl TlsVersions {
    pub fn offers(&self, v: TlsVersion) -> bool {
        self.min <= v && v <= self.max
    }
}

/// The TLS 1.2 suites Volley's TLS implements, by k6's (Go's) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuite {
    EcdheEcdsaAes128Gcm,
    EcdheEcdsaAes256Gcm,
    EcdheEcdsaChacha20,
    EcdheRsaAes128Gcm,
    EcdheRsaAes256Gcm,
    EcdheRsaChacha20,
}

/// What a name in `tlsCipherSuites` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteName {
    /// A TLS 1.2 suite Volley offers.
    Tls12(CipherSuite),
    /// A TLS 1.3 suite: accepted and, as in k6, without effect.
    Tls13,
    /// A suite k6 knows that Volley's TLS does not implement (CBC, RC4,
    /// 3DES, RSA key exchange).
    Unsupported,
}

const SUITES: [(&str, CipherSuite); 6] = [
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::EcdheEcdsaAes128Gcm,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::EcdheEcdsaAes256Gcm,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        CipherSuite::EcdheEcdsaChacha20,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::EcdheRsaAes128Gcm,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::EcdheRsaAes256Gcm,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        CipherSuite::EcdheRsaChacha20,
    ),
];

const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// k6's legacy suites (`lib/tlsconfig.go`), known but not implemented.
const LEGACY_SUITES: [&str; 16] = [
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

impl CipherSuite {
    /// Classifies a name from `tlsCipherSuites`; `None`: not a suite k6
    /// knows.
    pub fn classify(name: &str) -> Option<SuiteName> {
        if let Some((_, s)) = SUITES.iter().find(|(n, _)| *n == name) {
            Some(SuiteName::Tls12(*s))
        } else if TLS13_SUITES.contains(&name) {
            Some(SuiteName::Tls13)
        } else if LEGACY_SUITES.contains(&name) {
            Some(SuiteName::Unsupported)
        } else {
            None
        }
    }

    /// The TLS 1.2 suites Volley offers, comma-separated, for messages.
    pub fn supported_names() -> String {
        SUITES
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `dns: {ttl, select, policy}`; k6's default is
/// `ttl=5m,select=random,policy=preferIPv4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsOptions {
    /// How long an answer is reused; `None`: for the whole test (`inf`).
    pub ttl: Option<Duration>,
    pub select: DnsSelect,
    pub policy: DnsPolicy,
}

impl Default for DnsOptions {
    fn default() -> Self {
        DnsOptions {
            ttl: Some(Duration::from_secs(300)),
            select: DnsSelect::Random,
            policy: DnsPolicy::PreferIpv4,
        }
    }
}

/// Which of the answer's addresses a new connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsSelect {
    First,
    Random,
    RoundRobin,
}

/// Which address families an answer keeps, and which comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsPolicy {
    PreferIpv4,
    PreferIpv6,
    OnlyIpv4,
    OnlyIpv6,
    /// The resolver's order, both families.
    Any,
}

impl DnsPolicy {
    /// The addresses of an answer this policy uses, in its order: only
    /// the preferred family when it has any, as k6 does.
    pub fn filter(self, addrs: &mut Vec<std::net::SocketAddr>) {
        let (keep_v4, keep_v6) = match self {
            DnsPolicy::Any => return,
            DnsPolicy::OnlyIpv4 => (true, false),
            DnsPolicy::OnlyIpv6 => (false, true),
            DnsPolicy::PreferIpv4 => {
                let any_v4 = addrs.iter().any(|a| a.is_ipv4());
                (true, !any_v4)
            }
            DnsPolicy::PreferIpv6 => {
                let any_v6 = addrs.iter().any(|a| a.is_ipv6());
                (!any_v6, true)
            }
        };
        addrs.retain(|a| (a.is_ipv4() && keep_v4) || (a.is_ipv6() && keep_v6));
    }
}

/// `localIPs`: source addresses (single addresses, `a-b` ranges and
/// CIDR blocks, in the order written). VU `n` uses address `(n-1) mod
/// total`, as in k6.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalIps {
    ranges: Vec<IpRange>,
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    first: IpAddr,
    /// Addresses in the range, at least 1.
    len: u128,
}

impl IpRange {
    /// `first..=last`; `None` when the families differ or `last < first`.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<IpRange> {
        let (a, b) = (ip_number(first), ip_number(last));
        (first.is_ipv4() == last.is_ipv4() && a <= b).then(|| IpRange {
            first,
            len: (b - a).saturating_add(1),
        })
    }

    fn nth(&self, n: u128) -> IpAddr {
        let x = ip_number(self.first) + n;
        match self.first {
            // In range: `first + n` with `n < len` does not pass `last`.
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(x as u32)),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(x)),
        }
    }
}

fn ip_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl LocalIps {
    pub fn new(ranges: Vec<IpRange>) -> LocalIps {
        LocalIps { ranges }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The source address of VU `vu` (1-based), if any are set.
    pub fn for_vu(&self, vu: u64) -> Option<IpAddr> {
        let total = self
            .ranges
            .iter()
            .fold(0u128, |t, r| t.saturating_add(r.len));
        if total == 0 {
            return None;
        }
        let mut n = u128::from(vu.saturating_sub(1)) % total;
        for r in &self.ranges {
            if n < r.len {
                return Some(r.nth(n));
            }
            n -= r.len;
        }
        None
    }
}

/// `proxy`: one URL for every request, or one per scheme, and the hosts
/// that go direct.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyOption {
    /// For `http://` requests (absolute-form requests to the proxy).
    pub http: Option<String>,
    /// For `https://` requests (a `CONNECT` tunnel).
    pub https: Option<String>,
    /// `noProxy`, in `NO_PROXY`'s form (`*`, names, `.suffix`, IPs,
    /// CIDR blocks, each with an optional `:port`).
    pub no_proxy: String,
}

impl std::fmt::Debug for ProxyOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Proxy URLs may carry credentials.
        f.debug_struct("ProxyOption")
            .field("http", &self.http.as_ref().map(|_| "<set>"))
            .field("https", &self.https.as_ref().map(|_| "<set>"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn wildcard_domains_need_a_label_in_front() {
        assert!(domain_matches("*.example.com", "a.example.com"));
        assert!(domain_matches("*.example.com", "a.b.example.com"));
        assert!(!domain_matches("*.example.com", "example.com"));
        assert!(!domain_matches("*.example.com", "badexample.com"));
        assert!(domain_matches("api.test", "API.test"));
        assert!(!domain_matches("api.test", "x.api.test"));
    }

    #[test]
    fn local_ips_go_round_the_vus() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.3".parse().unwrap();
        let c: IpAddr = "192.168.1.9".parse().unwrap();
        let ips = LocalIps::new(vec![
            IpRange::new(a, b).unwrap(),
            IpRange::new(c, c).unwrap(),
        ]);
        let got: Vec<String> = (1..=5)
            .map(|vu| ips.for_vu(vu).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "10.0.0.1",
                "10.0.0.2",
                "10.0.0.3",
                "192.168.1.9",
                "10.0.0.1"
            ]
        );
        assert_eq!(LocalIps::default().for_vu(1), None);
        assert!(IpRange::new(b, a).is_none());
        assert!(IpRange::new(a, "::1".parse().unwrap()).is_none());
        let v6 = IpRange::new("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap()).unwrap();
        assert_eq!(
            LocalIps::new(vec![v6]).for_vu(2).unwrap().to_string(),
            "fd00::2"
        );
    }

    #[test]
    fn policies_keep_the_families_k6_keeps() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        let run = |p: DnsPolicy, input: &[SocketAddr]| {
            let mut a = input.to_vec();
            p.filter(&mut a);
            a
        };
        assert_eq!(run(DnsPolicy::PreferIpv4, &[v6, v4]), [v4]);
        assert_eq!(run(DnsPolicy::PreferIpv4, &[v6]), [v6]);
        assert_eq!(run(DnsPolicy::PreferIpv6, &[v4, v6]), [v6]);
        assert_eq!(run(DnsPolicy::OnlyIpv4, &[v6]), [] as [SocketAddr; 0]);
        assert_eq!(run(DnsPolicy::OnlyIpv6, &[v4, v6]), [v6]);
        assert_eq!(run(DnsPolicy::Any, &[v6, v4]), [v6, v4]);
    }

    #[test]
    fn suites_are_classified_by_k6_names() {
        assert_eq!(
            CipherSuite::classify("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            Some(SuiteName::Tls12(CipherSuite::EcdheRsaAes128Gcm))
        );
        assert_eq!(
            CipherSuite::classify("TLS_AES_128_GCM_SHA256"),
            Some(SuiteName::Tls13)
        );
        assert_eq!(
            CipherSuite::classify("TLS_RSA_WITH_AES_128_CBC_SHA"),
            Some(SuiteName::Unsupported)
        );
        assert_eq!(CipherSuite::classify("TLS_NOPE"), None);
    }
}
