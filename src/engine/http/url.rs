//! Absolute `http://` / `https://` URLs taken apart into what a request
//! needs: scheme, host, port, `Host` authority, request target and basic
//! credentials.
//!
//! [`Target::parse_into`] reuses the target's strings, so a VU that
//! re-renders URLs every iteration does not allocate once they have grown.
//! The path and query are sent as given, except that bytes that cannot
//! appear in a request line (controls, space, non-ASCII, `"<>\^`{|}`) are
//! percent-encoded, as browsers and Go's client do.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Why a URL cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("no scheme; expected an absolute URL like http://host/path")]
    MissingScheme,
    #[error("unsupported scheme {0:?}; expected http:// or https://")]
    UnsupportedScheme(String),
    #[error("no host; expected http://host[:port]/path")]
    EmptyHost,
    #[error(
        "invalid host {0:?}; expected a DNS name (letters, digits, '-', '.', '_'; IDNs in punycode), an IPv4 address or a bracketed IPv6 address"
    )]
    InvalidHost(String),
    #[error("invalid port {0:?}; expected a number from 1 to 65535")]
    InvalidPort(String),
    #[error("not a valid request URI ({0})")]
    NotAUri(String),
}

/// A parsed absolute URL, in the pieces a request uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// Lower-cased host name or IP literal without brackets: the pool key
    /// and the TLS server name.
    pub host: String,
    /// Set when the host is an IP literal: no DNS lookup is needed.
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// The `Host` header value: the host (bracketed if IPv6) and the port
    /// unless it is the scheme's default.
    pub authority: String,
    /// The request target: path and query, never empty (`/` at least).
    pub path: String,
    /// `Basic …` credentials from `user:password@`, empty when the URL has
    /// none.
    pub authorization: String,
}

impl Target {
    /// Parses `url` into `self`, reusing its buffers. On error `self` is
    /// left in an unspecified (but valid) state.
    pub fn parse_into(&mut self, url: &str) -> Result<(), UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::MissingScheme)?;
        self.scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(UrlError::UnsupportedScheme(scheme.to_owned()));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let host_port = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                self.set_basic_auth(userinfo);
                host_port
            }
            None => {
                self.authorization.clear();
                authority
            }
        };
        let (host, port) = split_host_port(host_port)?;
        self.port = match port {
            None | Some("") => self.scheme.default_port(),
            Some(p) => parse_port(p)?,
        };
        self.set_host(host)?;
        self.authority.clear();
        match self.ip {
            Some(IpAddr::V6(_)) => {
                self.authority.push('[');
                self.authority.push_str(&self.host);
                self.authority.push(']');
            }
            _ => self.authority.push_str(&self.host),
        }
        if self.port != self.scheme.default_port() {
            // Writing to a String cannot fail.
            let _ = write!(self.authority, ":{}", self.port);
        }
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        self.path.clear();
        if !tail.starts_with('/') {
            self.path.push('/');
        }
        encode_target(tail, &mut self.path);
        Ok(())
    }

    /// The URL as `scheme://authority/path?query`, for HTTP/2 URIs.
    pub fn uri_string(&self) -> String {
        format!("{}://{}{}", self.scheme.as_str(), self.authority, self.path)
    }

    fn set_host(&mut self, host: &str) -> Result<(), UrlError> {
        self.host.clear();
        if host.is_empty() {
            return Err(UrlError::EmptyHost);
        }
        if let Some(inner) = host.strip_prefix('[') {
            let v6 = inner
                .strip_suffix(']')
                .and_then(|s| s.parse::<Ipv6Addr>().ok())
                .ok_or_else(|| UrlError::InvalidHost(host.to_owned()))?;
            self.ip = Some(IpAddr::V6(v6));
            // Canonical form, so that `[::1]` and `[0::1]` share a pool entry.
            let _ = write!(self.host, "{v6}");
            return Ok(());
        }
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err(UrlError::InvalidHost(host.to_owned()));
        }
        self.ip = host.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
        self.host.push_str(host);
        self.host.make_ascii_lowercase();
        Ok(())
    }

    fn set_basic_auth(&mut self, userinfo: &str) {
        let mut credentials = Vec::with_capacity(userinfo.len());
        crate::escape::decode(userinfo.as_bytes(), &mut credentials);
        self.authorization.clear();
        self.authorization.push_str("Basic ");
        base64::Engine::encode_string(
            &base64::engine::general_purpose::STANDARD,
            &credentials,
            &mut self.authorization,
        );
    }
}

/// Splits `host[:port]` / `[v6][:port]`.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), UrlError> {
    if s.starts_with('[') {
        let close = s
            .find(']')
            .ok_or_else(|| UrlError::InvalidHost(s.to_owned()))?;
        let (host, after) = s.split_at(close + 1);
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(UrlError::InvalidHost(s.to_owned())),
        };
    }
    Ok(match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    })
}

fn parse_port(p: &str) -> Result<u16, UrlError> {
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidPort(p.to_owned()));
    }
    match p.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(UrlError::InvalidPort(p.to_owned())),
    }
}

/// True for bytes that may not appear raw in a request target.
fn needs_encoding(b: u8) -> bool {
    b <= b' '
        || b >= 0x7f
        || matches!(
            b,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

fn encode_target(raw: &str, out: &mut String) {
    if !raw.bytes().any(needs_encoding) {
        out.push_str(raw);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw.as_bytes() {
        if needs_encoding(b) {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(url: &str) -> Result<Target, UrlError> {
        let mut t = Target::default();
        t.parse_into(url).map(|()| t)
    }

    #[test]
    fn plain_http_with_defaults() {
        let t = parse("http://Example.COM").unwrap();
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.host, "example.com");
        assert_eq!(t.port, 80);
        assert_eq!(t.authority, "example.com");
        assert_eq!(t.path, "/");
        assert_eq!(t.ip, None);
        assert!(t.authorization.is_empty());
    }

    #[test]
    fn https_port_path_query_fragment() {
        let t = parse("HTTPS://api.test:8443/v1/items?id=3&x=y#frag").unwrap();
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.port, 8443);
        assert_eq!(t.authority, "api.test:8443");
        assert_eq!(t.path, "/v1/items?id=3&x=y");
        let default_port = parse("https://api.test:443/").unwrap();
        assert_eq!(default_port.authority, "api.test");
        let query_only = parse("http://h?q=1").unwrap();
        assert_eq!(query_only.path, "/?q=1");
        let empty_port = parse("http://h:/x").unwrap();
        assert_eq!(empty_port.port, 80);
    }

    #[test]
    fn ip_literals_skip_dns() {
        let v4 = parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(v4.ip, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(v4.authority, "127.0.0.1:8080");
        let v6 = parse("http://[0::1]:9000/a").unwrap();
        assert_eq!(v6.ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.authority, "[::1]:9000");
        let v6_default = parse("http://[::1]").unwrap();
        assert_eq!(v6_default.authority, "[::1]");
        assert_eq!(v6_default.port, 80);
    }

    #[test]
    fn credentials_become_basic_auth() {
        let t = parse("http://user:p%40ss@host/").unwrap();
        // base64("user:p@ss")
        assert_eq!(t.authorization, "Basic dXNlcjpwQHNz");
        assert_eq!(t.host, "host");
        // A later URL without credentials clears them.
        let mut reused = t.clone();
        reused.parse_into("http://host/").unwrap();
        assert!(reused.authorization.is_empty());
    }

    #[test]
    fn unsafe_bytes_are_percent_encoded() {
        let t = parse("http://h/a b/\u{e9}?q=\"x\"").unwrap();
        assert_eq!(t.path, "/a%20b/%C3%A9?q=%22x%22");
        let kept = parse("http://h/a%20b?x=1&y=%2F").unwrap();
        assert_eq!(kept.path, "/a%20b?x=1&y=%2F");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert_eq!(parse("example.com/x"), Err(UrlError::MissingScheme));
        assert_eq!(
            parse("ftp://h/"),
            Err(UrlError::UnsupportedScheme("ftp".into()))
        );
        assert_eq!(parse("http:///x"), Err(UrlError::EmptyHost));
        assert_eq!(parse("http://:80/x"), Err(UrlError::EmptyHost));
        assert_eq!(parse("http://h:0/"), Err(UrlError::InvalidPort("0".into())));
        assert_eq!(
            parse("http://h:70000/"),
            Err(UrlError::InvalidPort("70000".into()))
        );
        assert_eq!(
            parse("http://h:8a/"),
            Err(UrlError::InvalidPort("8a".into()))
        );
        assert_eq!(
            parse("http://ex ample/"),
            Err(UrlError::InvalidHost("ex ample".into()))
        );
        assert_eq!(
            parse("http://h\u{e9}.test/"),
            Err(UrlError::InvalidHost("h\u{e9}.test".into()))
        );
        assert_eq!(
            parse("http://[::1/"),
            Err(UrlError::InvalidHost("[::1".into()))
        );
        assert_eq!(
            parse("http://[nope]/"),
            Err(UrlError::InvalidHost("[nope]".into()))
        );
        assert!(
            UrlError::UnsupportedScheme("ftp".into())
                .to_string()
                .contains("http://")
        );
    }

    proptest! {
        #[test]
        fn any_input_parses_or_errors_without_panicking(url in "\\PC{0,60}") {
            let mut t = Target::default();
            let _ = t.parse_into(&url);
        }

        #[test]
        fn parsed_targets_are_sendable(
            host in "[a-z0-9][a-z0-9.-]{0,20}",
            port in 1u16..,
            path in "\\PC{0,30}",
        ) {
            let url = format!("http://{host}:{port}/{path}");
            let t = parse(&url).unwrap();
            prop_assert_eq!(t.port, port);
            prop_assert!(t.path.starts_with('/'));
            prop_assert!(t.path.bytes().all(|b| !needs_encoding(b)));
            prop_assert!(!t.authority.is_empty());
        }
    }
}
