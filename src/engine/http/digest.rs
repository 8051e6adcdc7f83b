//! HTTP Digest authentication (RFC 7616, MD5 and `qop=auth`), as k6's
//! `auth: "digest"` does it: the first request goes without credentials,
//! its 401's `WWW-Authenticate: Digest …` challenge is answered once.
//! Pure; the VU loop sends both requests and records both.

use std::fmt::Write as _;

/// A server's Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `auth` when the server offers it; `None` for RFC 2069 digests.
    pub qop: Option<String>,
    pub algorithm: String,
}

/// Parses a `WWW-Authenticate` value; `None` unless it is a Digest
/// challenge with a nonce and an MD5 algorithm Volley can answer.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Challenge {
        algorithm: "MD5".into(),
        ..Challenge::default()
    };
    for (k, v) in params_of(params) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => c.realm = v,
            "nonce" => c.nonce = v,
            "opaque" => c.opaque = Some(v),
            "algorithm" => c.algorithm = v,
            "qop" => {
                c.qop = v
                    .split(',')
                    .map(str::trim)
                    .find(|q| q.eq_ignore_ascii_case("auth"))
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    let md5 = c.algorithm.eq_ignore_ascii_case("md5");
    (md5 && !c.nonce.is_empty()).then_some(c)
}

/// `key=value` and `key="quoted, value"` pairs, comma separated.
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The `Authorization` value answering `c` for `method uri` (the request
/// target, path and query) with the given client nonce.
pub fn authorization(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let md5 = |s: &str| crate::report::md5_hex(s.as_bytes());
    let ha1 = md5(&format!("{user}:{}:{password}", c.realm));
    let ha2 = md5(&format!("{method}:{uri}"));
    let nc = "00000001";
    let response = match &c.qop {
        Some(qop) => md5(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", c.nonce)),
        None => md5(&format!("{ha1}:{}:{ha2}", c.nonce)),
    };
    let mut h = format!(
        r#"Digest username="{}", realm="{}", nonce="{}", uri="{}", algorithm=MD5, response="{response}""#,
        escape(user),
        escape(&c.realm),
        escape(&c.nonce),
        escape(uri)
    );
    if let Some(qop) = &c.qop {
        let _ = write!(h, r#", qop={qop}, nc={nc}, cnonce="{cnonce}""#);
    }
    if let Some(opaque) = &c.opaque {
        let _ = write!(h, r#", opaque="{}""#, escape(opaque));
    }
    h
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `user:password` from a URL's user info, percent-decoded, and the URL
/// without it (Digest must not send the credentials as Basic).
pub fn split_credentials(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (userinfo, host) = rest[..end].rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let clean = format!("{scheme}://{host}{}", &rest[end..]);
    Some((percent_decode(user), percent_decode(password), clean))
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    crate::escape::decode(s.as_bytes(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example_answers_as_published() {
        // RFC 2617 §3.5: Mufasa / Circle Of Life.
        let c = parse_challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .expect("a digest challenge");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        let h = authorization(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert!(
            h.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{h}"
        );
        assert!(h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
        assert!(h.contains("nc=00000001"));
    }

    #[test]
    fn other_schemes_and_algorithms_are_not_answered() {
        assert!(parse_challenge(r#"Basic realm="x""#).is_none());
        assert!(parse_challenge(r#"Digest realm="x", nonce="n", algorithm=SHA-256"#).is_none());
        assert!(parse_challenge(r#"Digest realm="x""#).is_none());
    }

    #[test]
    fn credentials_leave_the_url() {
        assert_eq!(
            split_credentials("http://us%40er:p%3Ass@h.test:8080/a?b"),
            Some((
                "us@er".into(),
                "p:ss".into(),
                "http://h.test:8080/a?b".into()
            ))
        );
        assert_eq!(split_credentials("http://h.test/"), None);
    }
}
