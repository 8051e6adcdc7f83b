//! One `k6/http` request as the script asked for it: its arguments
//! checked ([`parse`], [`Exchange::prepare`]), then each hop sent with the
//! jar's cookies and a Digest answer where due, stored, recorded, and the
//! next redirect decided ([`Exchange::call`], [`Exchange::after`]); a
//! batch runs the same exchanges in parallel rounds ([`run_batch`]).

use std::time::Duration;

use rquickjs::{Ctx, Value};

use super::cookies::with_jar;
use super::{Stage, State, bytes_of, throw};
use crate::engine::http::Response;
use crate::engine::http::follow::{self, Chain, unix_now};
use crate::engine::http::{digest, redirect};
use crate::metrics::{HttpSample, Sample};
use crate::script::vu::{HttpCall, Resume, Yield, suspend};

/// Parses a timeout param: a number of milliseconds or a duration string.
fn timeout_of(v: &Value<'_>, default: Duration) -> Result<Duration, String> {
    if let Some(n) = v.as_number() {
        if let Some(d) = Duration::try_from_secs_f64(n / 1000.0)
            .ok()
            .filter(|d| !d.is_zero())
        {
            return Ok(d);
        }
        return Err(format!(
            "timeout {n} is not a positive number of milliseconds"
        ));
    }
    if let Some(s) = v.as_string() {
        let s = s.to_string().map_err(|e| e.to_string())?;
        return crate::plan::parse_duration(&s).map_err(|e| format!("timeout \"{s}\": {e}"));
    }
    Ok(default)
}

/// The arguments of `__volley.request`, as `k6/http` normalised them.
pub(super) struct JsRequest<'js> {
    method: String,
    url: String,
    /// A string, an array of byte values, or null.
    payload: Value<'js>,
    headers: Vec<Vec<String>>,
    tags: Vec<Vec<String>>,
    /// Milliseconds, a duration string, or null for the plan's default.
    timeout: Value<'js>,
    /// `text` (default), `binary` or `none`.
    response_type: Option<String>,
    /// `redirects`: this request's limit instead of `maxRedirects`.
    redirects: Option<f64>,
    /// `cookies`: `(name, value, replace)`, sent but not stored.
    cookies: Vec<(String, String, bool)>,
    /// `jar`: a jar of its own instead of the VU's.
    jar: Option<u32>,
    /// Statuses that count as expected (`expectedStatuses`); `None`: the
    /// VU's default (200–399 unless `http.setResponseCallback` said).
    /// Empty (a null callback): every response, as k6 then emits no failures.
    expected: Option<Vec<(u16, u16)>>,
    /// `auth`: `basic` (the URL's credentials, the default) or `digest`.
    auth: Option<String>,
}

/// The arguments of one request as `k6/http` passes them: `meta` is null
/// or `[headers, tags, timeout, responseType, redirects, cookies, jar,
/// expectedStatuses]`.
pub(super) fn parse<'js>(
    ctx: &Ctx<'js>,
    method: String,
    url: String,
    payload: Value<'js>,
    meta: Value<'js>,
) -> rquickjs::Result<JsRequest<'js>> {
    let undefined = || Value::new_undefined(ctx.clone());
    let mut call = JsRequest {
        method,
        url,
        payload,
        headers: Vec::new(),
        tags: Vec::new(),
        timeout: undefined(),
        response_type: None,
        redirects: None,
        cookies: Vec::new(),
        jar: None,
        expected: None,
        auth: None,
    };
    if let Some(m) = meta.into_array() {
        call.headers = m.get::<Vec<Vec<String>>>(0)?;
        call.tags = m.get::<Vec<Vec<String>>>(1)?;
        call.timeout = m.get::<Value>(2).unwrap_or_else(|_| undefined());
        call.response_type = m.get::<Option<String>>(3).ok().flatten();
        call.redirects = m.get::<Option<f64>>(4).ok().flatten();
        for c in m
            .get::<Option<Vec<rquickjs::Array>>>(5)?
            .unwrap_or_default()
        {
            call.cookies.push((c.get(0)?, c.get(1)?, c.get(2)?));
        }
        call.jar = m.get::<Option<u32>>(6)?;
        call.auth = m.get::<Option<String>>(8).ok().flatten();
        call.expected = m.get::<Option<Vec<Vec<u16>>>>(7)?.map(|ranges| {
            ranges
                .into_iter()
                .filter_map(|r| Some((*r.first()?, *r.get(1)?)))
                .collect()
        });
    }
    Ok(call)
}

/// One request as the script asked for it, and where its redirect chain
/// stands: [`Exchange::call`] is the next hop to send, [`Exchange::after`]
/// takes its response.
pub(super) struct Exchange {
    method_name: String,
    method: http::Method,
    url: String,
    headers: Vec<(http::HeaderName, String)>,
    /// The `name` tag (the URL unless the script set one) and whether the
    /// script set it: a set name names every hop.
    name: String,
    explicit_name: bool,
    tags: Vec<(String, String)>,
    /// Shared by every hop without a copy.
    body: bytes::Bytes,
    timeout: Duration,
    pub(super) keep_body: bool,
    pub(super) binary: bool,
    max_redirects: u32,
    redirects_given: bool,
    cookies: Vec<(String, String, bool)>,
    jar: Option<u32>,
    expected: Option<Vec<(u16, u16)>>,
    chain: Option<Chain>,
    /// `auth: "digest"`: the URL's credentials, kept out of the URL.
    digest: Option<DigestAuth>,
    /// The hops' time so far (the timeout is the whole chain's).
    spent: Duration,
}

/// Where a Digest exchange stands.
struct DigestAuth {
    user: String,
    password: String,
    /// The host that challenged and the `Authorization` answering it.
    answer: Option<(String, String)>,
}

impl Exchange {
    /// Checks the arguments (a JavaScript error for bad ones).
    pub(super) fn prepare<'js>(
        ctx: &Ctx<'js>,
        state: &State,
        call: JsRequest<'js>,
    ) -> rquickjs::Result<Exchange> {
        let JsRequest {
            method,
            url,
            payload,
            headers,
            tags,
            timeout,
            response_type,
            redirects,
            cookies,
            jar,
            expected,
            auth,
        } = call;
        let (host, stage, expected) = {
            let st = state.borrow();
            // No callback of the request's own: the VU's default.
            let expected = expected.or_else(|| st.default_expected.clone());
            (st.host.clone(), st.stage, expected)
        };
        if stage == Stage::Init {
            return Err(throw(
                ctx,
                "Making http requests in the init context is not supported",
            ));
        }
        let Some(host) = host else {
            return Err(throw(ctx, "no HTTP client in this context"));
        };
        let plan_http = &host.plan.http;
        let timeout = timeout_of(&timeout, plan_http.timeout).map_err(|e| throw(ctx, &e))?;
        let method_v = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| throw(ctx, &format!("invalid HTTP method \"{method}\"")))?;
        let mut hs = Vec::with_capacity(headers.len());
        for h in headers {
            let [name, value]: [String; 2] = match h.try_into() {
                Ok(pair) => pair,
                Err(_) => continue,
            };
            match http::HeaderName::from_bytes(name.as_bytes()) {
                Ok(n) => hs.push((n, value)),
                Err(_) => return Err(throw(ctx, &format!("invalid header name \"{name}\""))),
            }
        }
        let mut tag_pairs: Vec<(String, String)> = tags
            .into_iter()
            .filter_map(|t| <[String; 2]>::try_from(t).ok().map(|[k, v]| (k, v)))
            .collect();
        // A `name` tag names every hop of a redirect chain; without one each
        // hop is named by its own URL (k6).
        let (name, explicit_name) = match tag_pairs.iter().position(|(k, _)| k == "name") {
            Some(i) => (tag_pairs.remove(i).1, true),
            None => (url.clone(), false),
        };
        tag_pairs.sort();
        let body = bytes::Bytes::from(bytes_of(&payload)?);
        let response_type = match response_type.as_deref() {
            None | Some("") => None,
            Some(t @ ("text" | "binary" | "none")) => Some(t),
            Some(other) => {
                return Err(throw(
                    ctx,
                    &format!("unknown responseType \"{other}\"; expected text, binary or none"),
                ));
            }
        };
        let keep_body = match response_type {
            Some("none") => false,
            Some(_) => true,
            None => !plan_http.discard_response_bodies,
        };
        let max_redirects = match redirects {
            None => plan_http.max_redirects,
            Some(n) if (0.0..=1000.0).contains(&n) => n as u32,
            Some(n) => {
                return Err(throw(
                    ctx,
                    &format!("redirects {n} is not a number of redirects from 0 to 1000"),
                ));
            }
        };
        let mut url = url;
        let digest = match auth.as_deref() {
            None | Some("") | Some("basic") => None,
            Some("digest") => {
                let Some((user, password, clean)) = digest::split_credentials(&url) else {
                    return Err(throw(
                        ctx,
                        &format!(
                            "auth: \"digest\" needs credentials in the URL (http://user:password@host/…); {url} has none"
                        ),
                    ));
                };
                url = clean;
                Some(DigestAuth {
                    user,
                    password,
                    answer: None,
                })
            }
            Some(other) => {
                return Err(throw(
                    ctx,
                    &format!(
                        "auth \"{other}\" is not supported; expected basic or digest (NTLM is not supported)"
                    ),
                ));
            }
        };
        Ok(Exchange {
            method_name: method,
            method: method_v,
            url,
            headers: hs,
            name,
            explicit_name,
            tags: tag_pairs,
            body,
            timeout,
            keep_body,
            binary: response_type == Some("binary"),
            max_redirects,
            redirects_given: redirects.is_some(),
            cookies,
            jar,
            expected,
            chain: None,
            digest,
            spent: Duration::ZERO,
        })
    }

    /// The URL of the hop to send now.
    fn hop_url(&self) -> &str {
        self.chain.as_ref().map_or(&self.url, |c| &c.url)
    }

    /// The hop to send now, with the jar's cookies for its URL.
    fn call(&self, state: &State) -> HttpCall {
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        match &self.chain {
            Some(c) => c.headers_into(&self.headers, &mut headers),
            None => headers.extend_from_slice(&self.headers),
        }
        let url = self.hop_url();
        if let Some(c) = with_jar(state, self.jar, |j| {
            follow::cookie_header(j, &self.cookies, url, unix_now)
        }) {
            follow::add_cookie_header(&mut headers, c);
        }
        // A Digest answer goes only to the host that asked for it.
        if let Some(d) = &self.digest
            && let Some((host, answer)) = &d.answer
            && host_of(url) == host.as_str()
        {
            headers.retain(|(n, _)| *n != http::header::AUTHORIZATION);
            headers.push((http::header::AUTHORIZATION, answer.clone()));
        }
        let keep_body = self.chain.as_ref().is_none_or(|c| c.keep_body);
        HttpCall {
            method: self
                .chain
                .as_ref()
                .map_or(&self.method, |c| &c.method)
                .clone(),
            url: url.to_owned(),
            headers,
            body: if keep_body {
                self.body.clone()
            } else {
                bytes::Bytes::new()
            },
            // k6's timeout covers the whole chain of redirects.
            timeout: self.timeout.saturating_sub(self.spent),
            keep_body: self.keep_body,
        }
    }

    /// Takes the response to the hop just sent: stores its cookies,
    /// records it, and says whether a redirect is to be followed (the
    /// exchange then describes the next hop).
    fn after(&mut self, state: &State, resp: &mut Response) -> bool {
        self.spent = self.spent.saturating_add(resp.timings.total());
        let url = self.hop_url().to_owned();
        with_jar(state, self.jar, |j| {
            follow::store_cookies(j, &url, resp, unix_now)
        });
        let hop_name = if self.explicit_name {
            std::borrow::Cow::Borrowed(self.name.as_str())
        } else {
            follow::masked(&url)
        };
        let method = self
            .chain
            .as_ref()
            .map_or(self.method_name.as_str(), |c| c.method.as_str());
        let id = state.borrow_mut().request_id(method, &hop_name, &self.tags);
        if resp.status == 401
            && let Some(d) = &mut self.digest
            && d.answer.is_none()
            && let Some(challenge) = resp
                .headers
                .iter()
                .filter(|(n, _)| *n == http::header::WWW_AUTHENTICATE)
                .find_map(|(_, v)| v.to_str().ok().and_then(digest::parse_challenge))
        {
            // The challenge counts as expected (k6); the answer goes next.
            let uri = request_target(&url);
            let method = self.chain.as_ref().map_or(&self.method, |c| &c.method);
            let cnonce: String = (0..8)
                .map(|_| format!("{:02x}", fastrand::u8(..)))
                .collect();
            d.answer = Some((
                host_of(&url).to_owned(),
                digest::authorization(
                    &challenge,
                    &d.user,
                    &d.password,
                    method.as_str(),
                    uri,
                    &cnonce,
                ),
            ));
            record(state, id, resp, Some(&[(401, 401)]));
            return true;
        }
        let mut follow_on = false;
        if self.max_redirects > 0 && redirect::is_redirect(resp.status) {
            let c = self
                .chain
                .get_or_insert_with(|| Chain::new(&self.method, &self.url, self.max_redirects));
            follow_on = c.advance(resp);
            if !follow_on && c.limit_hit && !self.redirects_given {
                warn_redirect_limit(&self.url, self.max_redirects);
            }
        }
        record(state, id, resp, self.expected.as_deref());
        follow_on
    }

    /// One request and its redirects, the VU suspended for each hop.
    pub(super) fn run(&mut self, ctx: &Ctx<'_>, state: &State) -> rquickjs::Result<Box<Response>> {
        loop {
            let call = self.call(state);
            let mut resp = match suspend(Yield::Http(Box::new(call))) {
                Resume::Http(r) => r,
                _ => return Err(interrupted(ctx, state)),
            };
            if !self.after(state, &mut resp) {
                return Ok(resp);
            }
        }
    }

    /// The URL the response came from, when redirects moved it.
    pub(super) fn final_url(&self) -> Option<String> {
        self.chain
            .as_ref()
            .filter(|c| c.hops > 0)
            .map(|c| c.url.clone())
    }
}

/// `http.batch`: every request's hops sent in parallel rounds (the first
/// round all requests, then the redirects of those that have one).
pub(super) fn run_batch(
    ctx: &Ctx<'_>,
    state: &State,
    exchanges: &mut [Exchange],
) -> rquickjs::Result<Vec<Response>> {
    let mut done: Vec<Option<Response>> = exchanges.iter().map(|_| None).collect();
    let mut active: Vec<usize> = (0..exchanges.len()).collect();
    while !active.is_empty() {
        let calls = active.iter().map(|&i| exchanges[i].call(state)).collect();
        let responses = match suspend(Yield::Batch(calls)) {
            Resume::Batch(r) => r,
            _ => return Err(interrupted(ctx, state)),
        };
        let mut next = Vec::new();
        for (i, mut resp) in active.into_iter().zip(responses) {
            if exchanges[i].after(state, &mut resp) {
                next.push(i);
            } else {
                done[i] = Some(resp);
            }
        }
        active = next;
    }
    Ok(done.into_iter().map(Option::unwrap_or_default).collect())
}

fn interrupted(ctx: &Ctx<'_>, state: &State) -> rquickjs::Error {
    state.borrow_mut().stopping = true;
    throw(ctx, "iteration interrupted")
}

/// Records one response (a redirect hop or the final one).
fn record(
    state: &State,
    id: crate::plan::RequestId,
    resp: &Response,
    ranges: Option<&[(u16, u16)]>,
) {
    // k6 checks a transport error as status 0.
    let status = if resp.error.is_some() { 0 } else { resp.status };
    let expected = match ranges {
        None => Some((200..400).contains(&status)),
        // `setResponseCallback(null)`: not judged at all.
        Some([]) => None,
        Some(r) => Some(r.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))),
    };
    let intended = state.borrow().intended;
    state.borrow_mut().push(Sample::Http(HttpSample {
        request: id,
        status: resp.status,
        error: resp.error,
        expected,
        timings: resp.timings,
        intended: intended.map(|i| i.elapsed()),
        bytes_sent: resp.bytes_sent,
        bytes_received: resp.bytes_received,
        proto: resp.proto_code(),
        tls: resp.tls_code(),
    }));
}

/// `host:port` of an absolute URL (what a Digest answer is scoped to).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// The request target (path and query) of an absolute URL.
fn request_target(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        _ => "/",
    }
}

/// k6 warns (once here, not per request) when the default limit stopped a
/// redirect chain and returned the last 3xx.
fn warn_redirect_limit(url: &str, max: u32) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "WARN: stopped after {max} redirects of {url} and returned the redirection; pass {{ redirects: n }} in the request params or set maxRedirects to change the limit (shown once)"
        );
    }
}
