//! `tlsAuth`, `tlsVersion`, `tlsCipherSuites`, `dns`, `localIPs` and
//! `proxy` → [`NetOptions`], each value checked with its field path.

use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::plan::duration::parse_duration;
use crate::plan::error::PlanError;
use crate::plan::net::{
    CipherSuite, DnsOptions, DnsPolicy, DnsSelect, IpRange, LocalIps, NetOptions, ProxyOption,
    SuiteName, TlsAuth, TlsVersion, TlsVersions,
};
use crate::plan::raw::{RawPlan, RawTlsAuth};

pub fn net_options(raw: &RawPlan) -> Result<NetOptions, PlanError> {
    let tls_versions = match &raw.tls_version {
        None | Some(Value::Null) => TlsVersions::default(),
        Some(v) => tls_versions(v)?,
    };
    Ok(NetOptions {
        tls_auth: raw
            .tls_auth
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, a)| tls_auth(i, a))
            .collect::<Result<_, _>>()?,
        tls_versions,
        tls12_cipher_suites: match &raw.tls_cipher_suites {
            None => None,
            Some(names) => Some(cipher_suites(names, tls_versions)?),
        },
        dns: match &raw.dns {
            None | Some(Value::Null) => DnsOptions::default(),
            Some(v) => dns(v)?,
        },
        local_ips: match &raw.local_ips {
            None | Some(Value::Null) => LocalIps::default(),
            Some(v) => local_ips_value(v)?,
        },
        proxy: match &raw.proxy {
            None | Some(Value::Null) => None,
            Some(v) => Some(proxy(v)?),
        },
        egress: Default::default(),
    })
}

fn tls_auth(i: usize, raw: &RawTlsAuth) -> Result<TlsAuth, PlanError> {
    let path = |field: &str| format!("tlsAuth[{i}].{field}");
    let certs = CertificateDer::pem_slice_iter(raw.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PlanError::invalid(path("cert"), e.to_string(), "PEM certificates"))?;
    if certs.is_empty() {
        return Err(PlanError::invalid(
            path("cert"),
            excerpt(&raw.cert),
            "a PEM certificate chain (-----BEGIN CERTIFICATE----- blocks)",
        ));
    }
    if raw.password.is_some() || raw.key.contains("ENCRYPTED") {
        return Err(PlanError::invalid(
            path("key"),
            "an encrypted key",
            "an unencrypted PEM key (decrypt it with `openssl pkey -in key.pem -out plain.pem`); `password` is not supported",
        ));
    }
    if let Err(e) = PrivateKeyDer::from_pem_slice(raw.key.as_bytes()) {
        return Err(PlanError::invalid(
            path("key"),
            format!("{} ({e})", excerpt(&raw.key)),
            "a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)",
        ));
    }
    let mut domains = Vec::new();
    for (j, d) in raw.domains.iter().flatten().enumerate() {
        let bare = d.strip_prefix("*.").unwrap_or(d);
        if bare.is_empty() || bare.contains(['*', '/', ':', ' ']) {
            return Err(PlanError::invalid(
                format!("tlsAuth[{i}].domains[{j}]"),
                d,
                "a host name or *.name",
            ));
        }
        domains.push(d.to_ascii_lowercase());
    }
    Ok(TlsAuth {
        domains,
        cert_pem: raw.cert.clone(),
        key_pem: raw.key.clone(),
    })
}

/// The first line of a PEM value, for messages (never the key material).
fn excerpt(pem: &str) -> String {
    let first = pem.lines().next().unwrap_or_default();
    if first.starts_with("-----") {
        first.to_owned()
    } else {
        format!("{} characters that are not PEM", pem.len())
    }
}

fn tls_versions(v: &Value) -> Result<TlsVersions, PlanError> {
    let version = |path: &str, v: Option<&Value>| -> Result<Option<TlsVersion>, PlanError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => TlsVersion::parse(s).map(Some).ok_or_else(|| {
                PlanError::invalid(path, s, format!("one of {}", TlsVersion::NAMES))
            }),
            Some(other) => Err(PlanError::invalid(
                path,
                other.to_string(),
                format!("one of {}", TlsVersion::NAMES),
            )),
        }
    };
    let versions = match v {
        Value::String(_) => {
            let one = version("tlsVersion", Some(v))?.unwrap_or(TlsVersion::Tls13);
            TlsVersions { min: one, max: one }
        }
        Value::Object(map) => {
            if let Some(k) = map.keys().find(|k| *k != "min" && *k != "max") {
                return Err(PlanError::invalid(
                    format!("tlsVersion.{k}"),
                    k,
                    "min or max",
                ));
            }
            let d = TlsVersions::default();
            TlsVersions {
                min: version("tlsVersion.min", map.get("min"))?.unwrap_or(TlsVersion::Tls10),
                max: version("tlsVersion.max", map.get("max"))?.unwrap_or(d.max),
            }
        }
        other => {
            return Err(PlanError::invalid(
                "tlsVersion",
                other.to_string(),
                "a version like \"tls1.2\" or {min: tls1.2, max: tls1.3}",
            ));
        }
    };
    if versions.min > versions.max {
        return Err(PlanError::invalid(
            "tlsVersion",
            format!(
                "min {} above max {}",
                versions.min.name(),
                versions.max.name()
            ),
            "min ≤ max",
        ));
    }
    if versions.max < TlsVersion::Tls12 {
        return Err(PlanError::invalid(
            "tlsVersion.max",
            versions.max.name(),
            "tls1.2 or tls1.3 (Volley's TLS does not speak TLS 1.0 or 1.1)",
        ));
    }
    Ok(versions)
}

fn cipher_suites(names: &[String], versions: TlsVersions) -> Result<Vec<CipherSuite>, PlanError> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = format!("tlsCipherSuites[{i}]");
        match CipherSuite::classify(name) {
            Some(SuiteName::Tls12(s)) => out.push(s),
            Some(SuiteName::Tls13) => {}
            Some(SuiteName::Unsupported) => {
                return Err(PlanError::invalid(
                    path,
                    name,
                    format!(
                        "a suite Volley's TLS implements ({}); CBC, RC4, 3DES and RSA key exchange suites are not",
                        CipherSuite::supported_names()
                    ),
                ));
            }
            None => {
                return Err(PlanError::invalid(
                    path,
                    name,
                    format!(
                        "a cipher suite name as k6 writes it ({})",
                        CipherSuite::supported_names()
                    ),
                ));
            }
        }
    }
    if out.is_empty() && !versions.offers(TlsVersion::Tls13) {
        return Err(PlanError::invalid(
            "tlsCipherSuites",
            names.join(","),
            "at least one TLS 1.2 suite when tlsVersion allows only TLS 1.2",
        ));
    }
    Ok(out)
}

const DNS_FORM: &str = "{ttl, select, policy} or \"ttl=5m,select=random,policy=preferIPv4\"";

fn dns(v: &Value) -> Result<DnsOptions, PlanError> {
    let mut out = DnsOptions::default();
    let mut set = |key: &str, value: &Value| -> Result<(), PlanError> {
        let path = format!("dns.{key}");
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if key == "ttl" => format!("{n}ms"),
            other => other.to_string(),
        };
        match key {
            "ttl" => out.ttl = dns_ttl(&path, &text)?,
            "select" => {
                out.select = match text.as_str() {
                    "first" => DnsSelect::First,
                    "random" => DnsSelect::Random,
                    "roundRobin" => DnsSelect::RoundRobin,
                    _ => {
                        return Err(PlanError::invalid(
                            path,
                            text,
                            "first, random or roundRobin",
                        ));
                    }
                }
            }
            "policy" => {
                out.policy = match text.as_str() {
                    "preferIPv4" => DnsPolicy::PreferIpv4,
                    "preferIPv6" => DnsPolicy::PreferIpv6,
                    "onlyIPv4" => DnsPolicy::OnlyIpv4,
                    "onlyIPv6" => DnsPolicy::OnlyIpv6,
                    "any" => DnsPolicy::Any,
                    _ => {
                        return Err(PlanError::invalid(
                            path,
                            text,
                            "preferIPv4, preferIPv6, onlyIPv4, onlyIPv6 or any",
                        ));
                    }
                }
            }
            _ => return Err(PlanError::invalid(path, key, "ttl, select or policy")),
        }
        Ok(())
    };
    match v {
        Value::Object(map) => {
            for (k, value) in map {
                set(k, value)?;
            }
        }
        Value::String(s) => {
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, value) = part
                    .split_once('=')
                    .ok_or_else(|| PlanError::invalid("dns", part, DNS_FORM))?;
                set(k.trim(), &Value::String(value.trim().to_owned()))?;
            }
        }
        other => return Err(PlanError::invalid("dns", other.to_string(), DNS_FORM)),
    }
    Ok(out)
}

/// `--dns`: k6's `ttl=…,select=…,policy=…` form; errors name the flag.
pub fn dns_flag(s: &str) -> Result<DnsOptions, PlanError> {
    dns(&Value::String(s.to_owned())).map_err(|e| match e {
        PlanError::Invalid {
            path,
            value,
            expected,
        } => PlanError::Invalid {
            path: path.replacen("dns", "--dns", 1),
            value,
            expected,
        },
        other => other,
    })
}

/// `inf` (for the whole test), `0` (never cached) or a duration.
fn dns_ttl(path: &str, text: &str) -> Result<Option<Duration>, PlanError> {
    match text {
        "inf" => Ok(None),
        "0" => Ok(Some(Duration::ZERO)),
        _ => parse_duration(text).map(Some).map_err(|_| {
            PlanError::invalid(path, text, "inf, 0, a duration like 5m or milliseconds")
        }),
    }
}

const LOCAL_IPS_FORM: &str = "addresses, ranges a-b or CIDR blocks, comma-separated (e.g. \"10.0.0.1-10.0.0.9,10.1.0.0/30\")";

fn local_ips_value(v: &Value) -> Result<LocalIps, PlanError> {
    match v {
        Value::String(s) => local_ips("localIPs", s),
        Value::Array(items) => {
            let mut ranges = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("localIPs[{i}]");
                let Value::String(s) = item else {
                    return Err(PlanError::invalid(path, item.to_string(), LOCAL_IPS_FORM));
                };
                ranges.extend(parse_ranges(&path, s)?);
            }
            Ok(LocalIps::new(ranges))
        }
        other => Err(PlanError::invalid(
            "localIPs",
            other.to_string(),
            LOCAL_IPS_FORM,
        )),
    }
}

/// k6's `--local-ips` form; `path` names where it came from.
pub fn local_ips(path: &str, s: &str) -> Result<LocalIps, PlanError> {
    Ok(LocalIps::new(parse_ranges(path, s)?))
}

fn parse_ranges(path: &str, s: &str) -> Result<Vec<IpRange>, PlanError> {
    let bad = |part: &str| PlanError::invalid(path, part, LOCAL_IPS_FORM);
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let range = if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>());
            match (a, b) {
                (Ok(a), Ok(b)) => IpRange::new(a, b).ok_or_else(|| bad(part))?,
                _ => return Err(bad(part)),
            }
        } else if let Some((ip, bits)) = part.split_once('/') {
            let ip = ip.parse::<IpAddr>().map_err(|_| bad(part))?;
            let bits = bits.parse::<u32>().map_err(|_| bad(part))?;
            cidr(ip, bits).ok_or_else(|| bad(part))?
        } else {
            let ip = part.parse::<IpAddr>().map_err(|_| bad(part))?;
            IpRange::new(ip, ip).ok_or_else(|| bad(part))?
        };
        out.push(range);
    }
    Ok(out)
}

fn cidr(ip: IpAddr, bits: u32) -> Option<IpRange> {
    match ip {
        IpAddr::V4(v4) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            let first = u32::from(v4) & mask;
            let last = first | !mask;
            IpRange::new(
                IpAddr::V4(first.into()),
                IpAddr::V4(std::net::Ipv4Addr::from(last)),
            )
        }
        IpAddr::V6(v6) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            let first = u128::from(v6) & mask;
            let last = first | !mask;
            IpRange::new(IpAddr::V6(first.into()), IpAddr::V6(last.into()))
        }
        _ => None,
    }
}

const PROXY_FORM: &str =
    "an http:// proxy URL, or {http: URL, https: URL, noProxy: \"host,.domain,10.0.0.0/8\"}";

fn proxy(v: &Value) -> Result<ProxyOption, PlanError> {
    match v {
        Value::String(url) => {
            let url = proxy_url("proxy", url)?;
            Ok(ProxyOption {
                http: Some(url.clone()),
                https: Some(url),
                no_proxy: String::new(),
            })
        }
        Value::Object(map) => {
            let mut out = ProxyOption {
                http: None,
                https: None,
                no_proxy: String::new(),
            };
            for (k, value) in map {
                let path = format!("proxy.{k}");
                let Value::String(s) = value else {
                    return Err(PlanError::invalid(path, value.to_string(), "a string"));
                };
                match k.as_str() {
                    "http" => out.http = Some(proxy_url(&path, s)?),
                    "https" => out.https = Some(proxy_url(&path, s)?),
                    "noProxy" => out.no_proxy = s.clone(),
                    _ => return Err(PlanError::invalid(path, k, "http, https or noProxy")),
                }
            }
            Ok(out)
        }
        other => Err(PlanError::invalid("proxy", other.to_string(), PROXY_FORM)),
    }
}

/// Checks the form only; the value may hold credentials, so messages
/// show the scheme, never the URL.
fn proxy_url(path: &str, url: &str) -> Result<String, PlanError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(PlanError::invalid(
            path,
            "a value without a scheme",
            PROXY_FORM,
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(PlanError::invalid(
            path,
            format!("{scheme}://…"),
            "an http:// proxy URL (https:// and socks5:// proxies are not supported)",
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return Err(PlanError::invalid(
            path,
            "http:// without a host",
            PROXY_FORM,
        ));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawPlan {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn err(yaml: &str) -> String {
        net_options(&raw(yaml)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_k6s() {
        let n = net_options(&raw("vus: 1")).unwrap();
        assert_eq!(n, NetOptions::default());
        assert_eq!(n.dns.ttl, Some(Duration::from_secs(300)));
        assert_eq!(n.dns.select, DnsSelect::Random);
    }

    #[test]
    fn tls_versions_take_one_name_or_a_range() {
        let n = net_options(&raw("tlsVersion: tls1.3")).unwrap();
        assert_eq!(n.tls_versions.min, TlsVersion::Tls13);
        let n = net_options(&raw("tlsVersion: {min: tls1.0, max: tls1.2}")).unwrap();
        assert!(n.tls_versions.offers(TlsVersion::Tls12));
        assert!(!n.tls_versions.offers(TlsVersion::Tls13));
        assert!(err("tlsVersion: tls1.1").contains("tlsVersion.max"));
        assert!(err("tlsVersion: ssl3").contains("one of tls1.0"));
        assert!(err("tlsVersion: {min: tls1.3, max: tls1.2}").contains("min ≤ max"));
        assert!(err("tlsVersion: {least: tls1.3}").contains("tlsVersion.least"));
    }

    #[test]
    fn cipher_suites_name_what_is_wrong() {
        let n = net_options(&raw(
            "tlsCipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]",
        ))
        .unwrap();
        assert_eq!(
            n.tls12_cipher_suites,
            Some(vec![CipherSuite::EcdheRsaAes128Gcm])
        );
        let e = err(
            "tlsCipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_128_CBC_SHA]",
        );
        assert!(e.contains("tlsCipherSuites[1]") && e.contains("CBC"), "{e}");
        assert!(err("tlsCipherSuites: [AES]").contains("tlsCipherSuites[0]"));
        let e = err("{tlsVersion: tls1.2, tlsCipherSuites: [TLS_AES_128_GCM_SHA256]}");
        assert!(e.contains("at least one TLS 1.2 suite"), "{e}");
    }

    #[test]
    fn dns_takes_a_map_or_k6s_string() {
        let n = net_options(&raw(
            "dns: {ttl: inf, select: roundRobin, policy: onlyIPv6}",
        ))
        .unwrap();
        assert_eq!(n.dns.ttl, None);
        assert_eq!(n.dns.select, DnsSelect::RoundRobin);
        assert_eq!(n.dns.policy, DnsPolicy::OnlyIpv6);
        let n = net_options(&raw("dns: \"ttl=0,select=first\"")).unwrap();
        assert_eq!(n.dns.ttl, Some(Duration::ZERO));
        assert_eq!(n.dns.select, DnsSelect::First);
        assert_eq!(n.dns.policy, DnsPolicy::PreferIpv4);
        let n = net_options(&raw("dns: {ttl: 1500}")).unwrap();
        assert_eq!(n.dns.ttl, Some(Duration::from_millis(1500)));
        assert!(err("dns: {select: fastest}").contains("dns.select"));
        assert!(err("dns: \"ttl\"").contains("ttl=5m"));
        assert!(err("dns: {ttl: soon}").contains("dns.ttl"));
        assert!(err("dns: {color: red}").contains("dns.color"));
    }

    #[test]
    fn local_ips_take_addresses_ranges_and_blocks() {
        let n = net_options(&raw("localIPs: \"127.0.0.2-127.0.0.3, 10.0.0.0/31,::1\"")).unwrap();
        let got: Vec<String> = (1..=6)
            .map(|vu| n.local_ips.for_vu(vu).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "127.0.0.2",
                "127.0.0.3",
                "10.0.0.0",
                "10.0.0.1",
                "::1",
                "127.0.0.2"
            ]
        );
        let n = net_options(&raw("localIPs: [127.0.0.5, 127.0.0.6]")).unwrap();
        assert_eq!(n.local_ips.for_vu(2).unwrap().to_string(), "127.0.0.6");
        assert!(err("localIPs: \"10.0.0.9-10.0.0.1\"").contains("10.0.0.9-10.0.0.1"));
        assert!(err("localIPs: [10.0.0.1, 7]").contains("localIPs[1]"));
        assert!(err("localIPs: \"10.0.0.0/33\"").contains("localIPs"));
        assert!(err("localIPs: \"10.0.0.1-::1\"").contains("localIPs"));
    }

    #[test]
    fn proxy_urls_are_checked_without_showing_credentials() {
        let n = net_options(&raw("proxy: http://u:secret@127.0.0.1:3128")).unwrap();
        let p = n.proxy.unwrap();
        assert_eq!(p.http, p.https);
        assert!(!format!("{p:?}").contains("secret"));
        let n = net_options(&raw(
            "proxy: {https: \"http://p:8080\", noProxy: \"localhost,.internal\"}",
        ))
        .unwrap();
        let p = n.proxy.unwrap();
        assert_eq!(p.http, None);
        assert_eq!(p.no_proxy, "localhost,.internal");
        let e = err("proxy: socks5://u:secret@p:1080");
        assert!(e.contains("socks5://…") && !e.contains("secret"), "{e}");
        assert!(err("proxy: {ftp: \"http://p\"}").contains("proxy.ftp"));
        assert!(err("proxy: http://").contains("without a host"));
    }

    #[test]
    fn tls_auth_keys_are_never_echoed() {
        let e = err("tlsAuth: [{cert: nope, key: \"secret-key-material\"}]");
        assert!(e.contains("tlsAuth[0].cert"), "{e}");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let doc = serde_json::json!({
            "tlsAuth": [{"cert": cert.pem(), "key": "secret-key-material", "domains": ["api.test"]}]
        });
        let e = net_options(&serde_json::from_value(doc).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tlsAuth[0].key") && !e.contains("secret-key"),
            "{e}"
        );
        let doc = serde_json::json!({
            "tlsAuth": [{"cert": cert.pem(), "key": key.serialize_pem(), "domains": ["*.API.test"]}]
        });
        let n = net_options(&serde_json::from_value(doc).unwrap()).unwrap();
        assert!(n.tls_auth[0].is_for("x.api.test"));
        assert!(!format!("{:?}", n.tls_auth[0]).contains("PRIVATE"));
        let doc = serde_json::json!({
            "tlsAuth": [{"cert": cert.pem(), "key": key.serialize_pem(), "password": "x"}]
        });
        let e = net_options(&serde_json::from_value(doc).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unencrypted"), "{e}");
    }
}
