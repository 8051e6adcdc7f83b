//! One logical request as k6 sends it: the `Cookie` header from the VU's
//! jar (plus per-request cookies), the `Set-Cookie`s of every hop stored
//! before the next, and redirects followed up to the request's limit, each
//! hop its own request in the metrics.
//!
//! Pure: [`Chain`] says what to send next; the VU loops (YAML plans in
//! `engine::vu`, scripts in `script::native::http`) send each hop, record
//! it and ask the chain again.

use http::{HeaderName, Method, header};

use super::Response;
use super::cookies::{CookieJar, CookieUrl};
use super::error::RequestError;
use super::redirect::{self, Hop};

/// Where a request's redirect chain stands.
#[derive(Debug)]
pub struct Chain {
    /// The hop to send now.
    pub method: Method,
    pub url: String,
    /// False once a redirect dropped the body.
    pub keep_body: bool,
    /// Hops followed so far (0: the original request).
    pub hops: u32,
    /// A hop left the original domain: sensitive headers stay behind.
    foreign: bool,
    /// A hop went to another host: a custom `Host` header stays behind.
    other_host: bool,
    max: u32,
    /// The limit stopped the chain on a redirect (k6 returns that 3xx).
    pub limit_hit: bool,
}

impl Chain {
    pub fn new(method: &Method, url: &str, max_redirects: u32) -> Chain {
        Chain {
            method: method.clone(),
            url: url.to_owned(),
            keep_body: true,
            hops: 0,
            foreign: false,
            other_host: false,
            max: max_redirects,
            limit_hit: false,
        }
    }

    /// Looks at the response to the current hop: true when the next hop is
    /// to be sent (the chain now describes it). A redirect that cannot be
    /// followed turns `resp` into a failure.
    pub fn advance(&mut self, resp: &mut Response) -> bool {
        if resp.error.is_some() || !redirect::is_redirect(resp.status) {
            return false;
        }
        // An empty Location is no redirect (Go returns the 3xx as it is).
        let Some(location) = resp.header("location").filter(|l| !l.trim().is_empty()) else {
            return false;
        };
        if self.hops >= self.max {
            self.limit_hit = self.max > 0;
            return false;
        }
        match redirect::next_hop(&self.method, resp.status, &self.url, location) {
            Ok(hop) => {
                let Hop {
                    url,
                    method,
                    keep_body,
                    foreign,
                    other_host,
                } = hop;
                self.url = url;
                self.method = method;
                self.keep_body &= keep_body;
                self.foreign |= foreign;
                self.other_host |= other_host;
                self.hops += 1;
                true
            }
            Err(e) => {
                resp.fail(RequestError::Redirect(e));
                false
            }
        }
    }

    /// The headers of the current hop: the original ones, less those a
    /// redirect does not carry.
    pub fn headers_into(
        &self,
        original: &[(HeaderName, String)],
        out: &mut Vec<(HeaderName, String)>,
    ) {
        let hop = Hop {
            url: String::new(),
            method: self.method.clone(),
            keep_body: self.keep_body,
            foreign: self.foreign,
            other_host: self.other_host,
        };
        out.extend(
            original
                .iter()
                .filter(|(n, _)| self.hops == 0 || redirect::carries(n, &hop))
                .cloned(),
        );
    }
}

/// A URL's parts the jar matches on; `None` for a URL that is not
/// `http(s)://host…`.
fn cookie_url(url: &str, host_buf: &mut String) -> Option<(bool, usize)> {
    let (scheme, rest) = url.split_once("://")?;
    let https = scheme.eq_ignore_ascii_case("https");
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host_buf.clear();
    host_buf.push_str(host);
    host_buf.make_ascii_lowercase();
    Some((https, url.len() - rest.len() + end))
}

/// Runs `f` on the jar's view of `url`.
fn with_url<R>(url: &str, f: impl FnOnce(CookieUrl<'_>) -> R) -> Option<R> {
    let mut host = String::new();
    let (https, path_at) = cookie_url(url, &mut host)?;
    let path = match &url[path_at..] {
        p if p.starts_with('/') => p,
        _ => "/",
    };
    Some(f(CookieUrl {
        https,
        host: &host,
        path,
    }))
}

/// The `Cookie` header for `url`: the jar's cookies (those not `replace`d
/// by a request cookie of the same name), then the request's own
/// `(name, value, replace)` cookies. `None` when there is none.
pub fn cookie_header(
    jar: &mut CookieJar,
    request_cookies: &[(String, String, bool)],
    url: &str,
    now: impl FnOnce() -> i64,
) -> Option<String> {
    if jar.is_empty() && request_cookies.is_empty() {
        return None;
    }
    let mut out = String::new();
    if !jar.is_empty() {
        let now = now();
        with_url(url, |u| {
            for c in jar.matching(u, now) {
                let replaced = request_cookies
                    .iter()
                    .any(|(n, _, replace)| *replace && *n == c.name);
                if !replaced {
                    if !out.is_empty() {
                        out.push_str("; ");
                    }
                    out.push_str(&c.name);
                    out.push('=');
                    out.push_str(&c.value);
                }
            }
        });
    }
    for (name, value, _) in request_cookies {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    (!out.is_empty()).then_some(out)
}

/// Adds the jar's `cookies` to a request's headers: after a `Cookie` header
/// the request already has (as Go's `AddCookie` does), or as a new one.
pub fn add_cookie_header(headers: &mut Vec<(HeaderName, String)>, cookies: String) {
    match headers.iter_mut().find(|(n, _)| *n == header::COOKIE) {
        Some((_, v)) if !v.is_empty() => {
            v.push_str("; ");
            v.push_str(&cookies);
        }
        Some((_, v)) => *v = cookies,
        None => headers.push((header::COOKIE, cookies)),
    }
}

/// The value of the jar's cookie `name` as it would be sent to `url`.
pub fn cookie_value(jar: &mut CookieJar, url: &str, name: &str, now: i64) -> Option<String> {
    with_url(url, |u| {
        jar.matching(u, now)
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.value.clone())
    })
    .flatten()
}

/// Stores every `Set-Cookie` of `resp`, received from `url`, in the jar
/// (`now` is read only when there is one).
pub fn store_cookies(jar: &mut CookieJar, url: &str, resp: &Response, now: impl FnOnce() -> i64) {
    let mut set = resp
        .headers
        .iter()
        .filter(|(n, _)| *n == header::SET_COOKIE)
        .peekable();
    if set.peek().is_none() {
        return;
    }
    let now = now();
    with_url(url, |u| {
        for (_, v) in set {
            if let Ok(text) = v.to_str() {
                jar.store_header(u, text, now);
            }
        }
    });
}

/// `url` with any `user:password@` replaced by `****:****@`, as k6 shows
/// URLs in tags (borrowed when there is nothing to hide).
pub fn masked(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://****:****@{host}{}", &rest[end..]).into(),
        None => url.into(),
    }
}

/// Wall-clock seconds since the Unix epoch, for cookie expiry.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn redirect(status: u16, location: &str) -> Response {
        let mut r = Response {
            status,
            ..Response::default()
        };
        r.headers
            .push((header::LOCATION, HeaderValue::from_str(location).unwrap()));
        r
    }

    #[test]
    fn a_chain_follows_up_to_its_limit() {
        let mut chain = Chain::new(&Method::POST, "http://a.test/login", 2);
        assert!(chain.advance(&mut redirect(302, "/home")));
        assert_eq!(
            (chain.method.as_str(), chain.url.as_str()),
            ("GET", "http://a.test/home")
        );
        assert!(!chain.keep_body);
        assert!(chain.advance(&mut redirect(301, "next")));
        assert_eq!(chain.url, "http://a.test/next");
        let mut third = redirect(302, "/again");
        assert!(!chain.advance(&mut third));
        assert!(
            chain.limit_hit && third.error.is_none(),
            "k6 returns the last 3xx"
        );
        assert_eq!(chain.hops, 2);
    }

    #[test]
    fn credentials_are_masked_and_empty_locations_not_followed() {
        assert_eq!(
            masked("http://u:p@a.test:81/x?y"),
            "http://****:****@a.test:81/x?y"
        );
        assert_eq!(masked("http://a.test/u@x"), "http://a.test/u@x");
        let mut chain = Chain::new(&Method::GET, "http://a.test/", 10);
        assert!(!chain.advance(&mut redirect(302, " ")));
        assert_eq!(chain.hops, 0);
    }

    #[test]
    fn no_redirects_means_the_3xx_is_the_answer() {
        let mut chain = Chain::new(&Method::GET, "http://a.test/", 0);
        assert!(!chain.advance(&mut redirect(302, "/x")));
        assert!(!chain.limit_hit);
        let mut ok = Response {
            status: 200,
            ..Response::default()
        };
        assert!(!Chain::new(&Method::GET, "http://a.test/", 10).advance(&mut ok));
    }

    #[test]
    fn a_redirect_to_another_scheme_fails_the_request() {
        let mut chain = Chain::new(&Method::GET, "http://a.test/", 10);
        let mut r = redirect(302, "mailto:x@a.test");
        assert!(!chain.advance(&mut r));
        assert!(
            r.failure
                .as_ref()
                .is_some_and(|f| f.to_string().contains("mailto:"))
        );
    }

    #[test]
    fn headers_follow_within_the_domain_only() {
        let original = vec![
            (header::AUTHORIZATION, "Bearer t".to_owned()),
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::COOKIE, "manual=1".to_owned()),
            (header::ACCEPT, "*/*".to_owned()),
        ];
        let mut chain = Chain::new(&Method::POST, "http://a.test/", 10);
        let mut first = Vec::new();
        chain.headers_into(&original, &mut first);
        assert_eq!(first, original);
        add_cookie_header(&mut first, "sid=1".into());
        assert_eq!(first[2].1, "manual=1; sid=1");
        assert!(chain.advance(&mut redirect(303, "http://b.test/")));
        let mut hop = Vec::new();
        chain.headers_into(&original, &mut hop);
        let names: Vec<&str> = hop.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["accept"]);
    }

    #[test]
    fn cookies_are_sent_and_stored_per_url() {
        let mut jar = CookieJar::default();
        let mut r = Response::default();
        r.headers.push((
            header::SET_COOKIE,
            HeaderValue::from_static("sid=1; Path=/"),
        ));
        r.headers
            .push((header::SET_COOKIE, HeaderValue::from_static("theme=dark")));
        store_cookies(&mut jar, "http://User:pw@A.test:8080/app/login?x", &r, || 0);
        assert_eq!(
            cookie_header(&mut jar, &[], "http://a.test/app/page", || 0).as_deref(),
            Some("theme=dark; sid=1"),
            "the longer path (/app, the default) first"
        );
        assert_eq!(
            cookie_header(&mut jar, &[], "http://a.test/", || 0).as_deref(),
            Some("sid=1")
        );
        let own = [
            ("sid".to_owned(), "mine".to_owned(), true),
            ("x".to_owned(), "2".to_owned(), false),
        ];
        assert_eq!(
            cookie_header(&mut jar, &own, "http://a.test/", || 0).as_deref(),
            Some("sid=mine; x=2")
        );
        assert_eq!(
            cookie_header(&mut CookieJar::default(), &[], "http://a.test/", || 0),
            None
        );
    }
}
