//! A VU's cookie jar (RFC 6265, as Go's `net/http/cookiejar` without a
//! public-suffix list, which k6 uses): `Set-Cookie` parsing, storage with
//! domain, path, expiry and `Secure`, and the `Cookie` header for a URL.
//!
//! Pure: the current time is an argument (Unix seconds). Bounded: a jar
//! holds at most [`MAX_COOKIES`] cookies (the oldest go first) of at most
//! [`MAX_COOKIE_BYTES`] each, whatever a server sends.

use std::fmt::Write as _;

/// Cookies one jar keeps; past this the least recently created is dropped.
pub const MAX_COOKIES: usize = 1000;
/// Longest cookie kept: name, value, domain and path together (RFC 6265
/// §6.1 asks for at least 4096 bytes of name and value).
pub const MAX_COOKIE_BYTES: usize = 4096;

/// One `Set-Cookie` header, parsed (what `Response.cookies` shows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// The `Domain` attribute without a leading dot; empty when absent.
    pub domain: String,
    /// The `Path` attribute; empty when absent.
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// `Max-Age` in seconds, when given (0 or less deletes the cookie).
    pub max_age: Option<i64>,
    /// `Expires` as Unix seconds, when given and parsable.
    pub expires: Option<i64>,
}

impl SetCookie {
    /// Parses one `Set-Cookie` value; `None` when it has no `name=` part.
    pub fn parse(header: &str) -> Option<SetCookie> {
        let mut parts = header.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return None;
        }
        let mut value = value.trim();
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value = &value[1..value.len() - 1];
        }
        let mut c = SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            ..SetCookie::default()
        };
        for attr in parts {
            let (key, val) = match attr.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (attr.trim(), ""),
            };
            if key.eq_ignore_ascii_case("domain") {
                c.domain = val.trim_start_matches('.').to_ascii_lowercase();
            } else if key.eq_ignore_ascii_case("path") {
                c.path = val.to_owned();
            } else if key.eq_ignore_ascii_case("secure") {
                c.secure = true;
            } else if key.eq_ignore_ascii_case("httponly") {
                c.http_only = true;
            } else if key.eq_ignore_ascii_case("max-age") {
                // RFC 6265 §5.2.2: an optional '-' and digits, else ignored.
                let digits = val.strip_prefix('-').unwrap_or(val);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    c.max_age = Some(val.parse::<i64>().unwrap_or(if val.starts_with('-') {
                        i64::MIN
                    } else {
                        i64::MAX
                    }));
                }
            } else if key.eq_ignore_ascii_case("expires") {
                c.expires = parse_cookie_date(val);
            }
        }
        Some(c)
    }

    /// When the cookie expires (Unix seconds), `None` for a session cookie.
    /// `Max-Age` wins over `Expires` (RFC 6265 §5.3 step 3).
    pub fn expiry(&self, now: i64) -> Option<i64> {
        match self.max_age {
            Some(age) if age <= 0 => Some(i64::MIN),
            Some(age) => Some(now.saturating_add(age)),
            None => self.expires,
        }
    }
}

/// One stored cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// Lower-case, no leading dot.
    pub domain: String,
    /// Sent only to exactly `domain`, not to its subdomains.
    pub host_only: bool,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// Unix seconds; `None` for a session cookie.
    pub expires: Option<i64>,
    /// Order of creation, for the `Cookie` header's order.
    created: u64,
}

/// The URL a cookie is stored from or sent to.
#[derive(Debug, Clone, Copy)]
pub struct CookieUrl<'a> {
    pub https: bool,
    /// Lower-case host name or IP literal (no brackets).
    pub host: &'a str,
    /// The request target; any query is ignored.
    pub path: &'a str,
}

/// A VU's cookies.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
    next: u64,
}

impl CookieJar {
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Forgets every cookie (k6 does this before each iteration).
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// Stores the cookie of one `Set-Cookie` header received from `url`.
    /// Returns false when it was refused (unparsable, too large, or a
    /// `Domain` the host does not belong to).
    pub fn store_header(&mut self, url: CookieUrl<'_>, header: &str, now: i64) -> bool {
        match SetCookie::parse(header) {
            Some(c) => self.store(url, &c, now),
            None => false,
        }
    }

    /// Stores a parsed cookie received from (or set for) `url`; an expired
    /// one deletes its stored namesake.
    pub fn store(&mut self, url: CookieUrl<'_>, c: &SetCookie, now: i64) -> bool {
        if c.name.len() + c.value.len() + c.domain.len() + c.path.len() > MAX_COOKIE_BYTES {
            return false;
        }
        let host = url.host;
        let (domain, host_only) = if c.domain.is_empty() {
            (host.to_owned(), true)
        } else if domain_matches(host, &c.domain) && (c.domain == host || !is_ip(host)) {
            (c.domain.clone(), false)
        } else {
            return false;
        };
        let path = if c.path.starts_with('/') {
            c.path.clone()
        } else {
            default_path(url.path).to_owned()
        };
        let expires = c.expiry(now);
        let same = self
            .cookies
            .iter()
            .position(|k| k.name == c.name && k.domain == domain && k.path == path);
        if expires.is_some_and(|e| e <= now) {
            if let Some(i) = same {
                self.cookies.remove(i);
            }
            return true;
        }
        let created = match same {
            Some(i) => self.cookies.remove(i).created,
            None => {
                self.next += 1;
                self.next
            }
        };
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        // Kept in creation order, so the header needs a stable sort by path only.
        let at = self.cookies.partition_point(|k| k.created < created);
        self.cookies.insert(
            at,
            Cookie {
                name: c.name.clone(),
                value: c.value.clone(),
                domain,
                host_only,
                path,
                secure: c.secure,
                http_only: c.http_only,
                expires,
                created,
            },
        );
        true
    }

    /// The cookies to send to `url`: longest path first, then oldest first
    /// (RFC 6265 §5.4). Expired cookies are dropped on the way.
    pub fn matching(&mut self, url: CookieUrl<'_>, now: i64) -> Vec<&Cookie> {
        self.cookies.retain(|c| c.expires.is_none_or(|e| e > now));
        let path = url.path.split(['?', '#']).next().unwrap_or("/");
        let mut out: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| {
                (!c.secure || url.https)
                    && if c.host_only {
                        c.domain == url.host
                    } else {
                        domain_matches(url.host, &c.domain)
                    }
                    && path_matches(path, &c.path)
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        out
    }

    /// Appends the `Cookie` header value for `url` to `out` (`a=1; b=2`);
    /// false when no cookie matches.
    pub fn header_into(&mut self, url: CookieUrl<'_>, now: i64, out: &mut String) -> bool {
        let start = out.len();
        for c in self.matching(url, now) {
            if out.len() > start {
                out.push_str("; ");
            }
            let _ = write!(out, "{}={}", c.name, c.value);
        }
        out.len() > start
    }

    /// Deletes the cookies named `name` (every one when `None`) that would
    /// be sent to `url`.
    pub fn remove(&mut self, url: CookieUrl<'_>, name: Option<&str>, now: i64) {
        let doomed: Vec<u64> = self
            .matching(url, now)
            .into_iter()
            .filter(|c| name.is_none_or(|n| c.name == n))
            .map(|c| c.created)
            .collect();
        self.cookies.retain(|c| !doomed.contains(&c.created));
    }
}

/// RFC 6265 §5.1.3: `host` is `domain` or a subdomain of it (never for IPs
/// unless equal).
fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain
        || (!is_ip(host)
            && host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// RFC 6265 §5.1.4 path-match.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// RFC 6265 §5.1.4 default path: the request path up to its last `/`.
fn default_path(target: &str) -> &str {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return "/";
    }
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// RFC 6265 §5.1.1: the lenient cookie date (`Wed, 21 Oct 2015 07:28:00
/// GMT`, `Wed, 21-Oct-15 …` and other orders) as Unix seconds.
pub fn parse_cookie_date(s: &str) -> Option<i64> {
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    let tokens = s
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty());
    for tok in tokens {
        if time.is_none()
            && let Some(t) = parse_hms(tok)
        {
            time = Some(t);
        } else if day.is_none()
            && (1..=2).contains(&leading_digits(tok))
            && let Ok(d) = tok[..leading_digits(tok)].parse::<u8>()
        {
            day = Some(d);
        } else if month.is_none()
            && let Some(m) = month_of(tok)
        {
            month = Some(m);
        } else if year.is_none() && (2..=4).contains(&leading_digits(tok)) {
            let y: i32 = tok[..leading_digits(tok)].parse().ok()?;
            year = Some(match y {
                70..=99 => y + 1900,
                0..=69 => y + 2000,
                _ => y,
            });
        }
    }
    let (h, m, sec) = time?;
    let (day, month, year) = (day?, month?, year?);
    if !(1..=31).contains(&day) || year < 1601 || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let t = time::Time::from_hms(h, m, sec).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

fn leading_digits(tok: &str) -> usize {
    tok.bytes().take_while(u8::is_ascii_digit).count()
}

fn parse_hms(tok: &str) -> Option<(u8, u8, u8)> {
    let mut it = tok.split(':');
    let mut field = || -> Option<u8> {
        let f = it.next()?;
        if f.is_empty() || f.len() > 2 {
            return None;
        }
        f.parse().ok()
    };
    let t = (field()?, field()?, field()?);
    it.next().is_none().then_some(t)
}

fn month_of(tok: &str) -> Option<u8> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = tok.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == prefix)
        .map(|i| i as u8 + 1)
}

#[cfg(test)]
mod tests;
