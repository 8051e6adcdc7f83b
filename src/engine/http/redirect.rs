//! Following redirects as k6 (Go's client) does: which statuses redirect,
//! what the next request is (RFC 3986 reference resolution of `Location`,
//! 301/302/303 turn a request other than GET/HEAD into a body-less GET,
//! 307/308 keep the method and body), and which headers follow it.
//!
//! Pure: the VU loops (YAML and script) send each hop and record it.

use http::{HeaderName, Method, header};

/// Longest `Location` followed; a longer one ends the chain with an error.
const MAX_LOCATION_BYTES: usize = 8192;

/// Why a redirect cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error(
        "redirect to {location:?}: unsupported scheme; Volley follows http:// and https:// only"
    )]
    UnsupportedScheme { location: String },
    #[error("redirect with a Location of {len} bytes (at most {MAX_LOCATION_BYTES} are followed)")]
    TooLong { len: usize },
}

/// The request a redirect leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub url: String,
    pub method: Method,
    /// False: the body is dropped (and with it `Content-Type` and
    /// `Content-Encoding`).
    pub keep_body: bool,
    /// The hop leaves the original host's domain: credentials and cookies
    /// given as headers are not sent on (Go strips them too).
    pub foreign: bool,
    /// The hop goes to another host: a custom `Host` header is not sent on.
    pub other_host: bool,
}

/// True for the statuses Go's client follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The next request after a `status` response with `location` to
/// `method current`.
pub fn next_hop(
    method: &Method,
    status: u16,
    current: &str,
    location: &str,
) -> Result<Hop, RedirectError> {
    if location.len() > MAX_LOCATION_BYTES {
        return Err(RedirectError::TooLong {
            len: location.len(),
        });
    }
    let url = resolve(current, location.trim());
    let scheme_ok = url
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        || url
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
    if !scheme_ok {
        return Err(RedirectError::UnsupportedScheme {
            location: location.to_owned(),
        });
    }
    let keep = matches!(status, 307 | 308);
    let (method, keep_body) = if keep || *method == Method::GET || *method == Method::HEAD {
        (method.clone(), keep)
    } else {
        (Method::GET, false)
    };
    let (from, to) = (host_of(current), host_of(&url));
    let other_host = from != to;
    let foreign = !same_or_sub_domain(from, to);
    Ok(Hop {
        url,
        method,
        keep_body,
        foreign,
        other_host,
    })
}

/// Whether header `name` of the original request goes on to `hop`.
pub fn carries(name: &HeaderName, hop: &Hop) -> bool {
    if !hop.keep_body && (*name == header::CONTENT_TYPE || *name == header::CONTENT_ENCODING) {
        return false;
    }
    if hop.other_host && *name == header::HOST {
        return false;
    }
    !(hop.foreign
        && (*name == header::AUTHORIZATION
            || *name == header::WWW_AUTHENTICATE
            || *name == header::COOKIE))
}

/// RFC 3986 §5.2: `reference` resolved against the absolute `base`;
/// fragments are dropped (they are never sent).
pub fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.split('#').next().unwrap_or("");
    if has_scheme(reference) {
        return reference.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(net) = reference.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let rest = rest.split('#').next().unwrap_or("");
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(auth_end);
    let (base_path, base_query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    let origin = format!("{scheme}://{authority}");
    if reference.is_empty() {
        return match base_query {
            Some(q) => format!("{origin}{base_path}?{q}"),
            None => format!("{origin}{base_path}"),
        };
    }
    if reference.starts_with('?') {
        let path = if base_path.is_empty() { "/" } else { base_path };
        return format!("{origin}{path}{reference}");
    }
    let (ref_path, ref_query) = match reference.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (reference, None),
    };
    let merged = if ref_path.starts_with('/') {
        ref_path.to_owned()
    } else {
        let dir = match base_path.rfind('/') {
            Some(i) => &base_path[..=i],
            None => "/",
        };
        format!("{dir}{ref_path}")
    };
    let mut out = origin;
    out.push_str(&remove_dot_segments(&merged));
    if let Some(q) = ref_query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(i) if i > 0 => {
            let scheme = &s[..i];
            scheme.as_bytes()[0].is_ascii_alphabetic()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        _ => false,
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// The lower-cased host of an absolute URL (no user info, no port).
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.to_ascii_lowercase()
}

/// Go's rule for forwarding sensitive headers: the new host is the old one
/// or a subdomain of it.
fn same_or_sub_domain(from: String, to: String) -> bool {
    to == from || (to.len() > from.len() && to.ends_with(&format!(".{from}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_as_rfc_3986_says() {
        let base = "http://a/b/c/d;p?q";
        // RFC 3986 §5.4.1 normal examples (those that apply to HTTP URLs).
        for (r, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("https://x.test/y", "https://x.test/y"),
        ] {
            assert_eq!(resolve(base, r), want, "reference {r:?}");
        }
        assert_eq!(resolve("http://h:8080", "x"), "http://h:8080/x");
        assert_eq!(resolve("http://h:8080?a=1", "?b=2"), "http://h:8080/?b=2");
    }

    #[test]
    fn see_other_turns_post_into_get_and_307_keeps_it() {
        let post = Method::POST;
        for status in [301, 302, 303] {
            let hop = next_hop(&post, status, "http://a.test/form", "/done").expect("follows");
            assert_eq!(hop.method, Method::GET);
            assert!(!hop.keep_body);
            assert_eq!(hop.url, "http://a.test/done");
        }
        for status in [307, 308] {
            let hop = next_hop(&post, status, "http://a.test/form", "/again").expect("follows");
            assert_eq!(hop.method, Method::POST);
            assert!(hop.keep_body);
        }
        let head = next_hop(&Method::HEAD, 302, "http://a.test/", "/x").expect("follows");
        assert_eq!(head.method, Method::HEAD);
        assert!(is_redirect(308) && !is_redirect(300) && !is_redirect(304));
    }

    #[test]
    fn other_schemes_and_huge_locations_are_refused() {
        let e = next_hop(&Method::GET, 302, "http://a.test/", "ftp://a.test/f").unwrap_err();
        assert!(e.to_string().contains("ftp://a.test/f"), "{e}");
        let long = format!("/{}", "x".repeat(MAX_LOCATION_BYTES));
        assert!(matches!(
            next_hop(&Method::GET, 302, "http://a.test/", &long),
            Err(RedirectError::TooLong { .. })
        ));
    }

    #[test]
    fn credentials_stay_within_the_domain() {
        let to_sub = next_hop(&Method::GET, 302, "http://a.test/", "http://api.a.test/").unwrap();
        assert!(!to_sub.foreign);
        assert!(carries(&header::AUTHORIZATION, &to_sub));
        let away = next_hop(
            &Method::GET,
            302,
            "http://user:pw@a.test:80/",
            "http://b.test/",
        )
        .unwrap();
        assert!(away.foreign);
        assert!(!carries(&header::AUTHORIZATION, &away));
        assert!(!carries(&header::COOKIE, &away));
        assert!(carries(&header::ACCEPT, &away));
        let see_other = next_hop(&Method::POST, 303, "http://a.test/", "/x").unwrap();
        assert!(!carries(&header::CONTENT_TYPE, &see_other));
        assert!(
            carries(&header::HOST, &see_other),
            "same host: a custom Host stays"
        );
        assert!(
            !carries(&header::HOST, &to_sub),
            "another host: it does not"
        );
    }
}
