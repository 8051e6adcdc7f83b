//! `__volley.request`: the native behind every `k6/http` call. It checks
//! the arguments, suspends the VU while its client sends the request, records
//! the sample and hands the response back as one array (see `Response` in
//! `js/http.js`).

use std::time::Duration;

use rquickjs::{Ctx, Function, IntoJs, Object, Value};

use super::cookies::with_jar;
use super::{Stage, State, bytes_of, ms, throw};
use crate::engine::http::Response;
use crate::engine::http::follow::{self, Chain, unix_now};
use crate::engine::http::redirect;
use crate::metrics::{ErrorKind, HttpSample, Sample};
use crate::script::vu::{HttpCall, Resume, Yield, suspend};

pub(super) fn install<'js>(ctx: &Ctx<'js>, v: &Object<'js>, state: &State) -> rquickjs::Result<()> {
    let s = state.clone();
    v.set(
        "request",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  method: String,
                  url: String,
                  payload: Value<'js>,
                  meta: Value<'js>,
                  out: rquickjs::Array<'js>|
                  -> rquickjs::Result<rquickjs::Array<'js>> {
                // `meta` is null (a plain request) or `[headers, tags,
                // timeout, responseType]`; `out` is a 12-slot array literal
                // from the caller, filled in place (cheaper than growing a
                // new array slot by slot).
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
                    out,
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
                    call.expected = m.get::<Option<Vec<Vec<u16>>>>(7)?.map(|ranges| {
                        ranges
                            .into_iter()
                            .filter_map(|r| Some((*r.first()?, *r.get(1)?)))
                            .collect()
                    });
                }
                request(&ctx, &s, call)
            },
        )?,
    )?;

    v.set(
        "statusText",
        Function::new(ctx.clone(), |status: u16| -> String {
            match http::StatusCode::from_u16(status) {
                Ok(s) if status != 0 => {
                    format!("{} {}", status, s.canonical_reason().unwrap_or(""))
                }
                _ => String::new(),
            }
        })?,
    )?;
    Ok(())
}

/// k6's error code for a failed request or a 4xx/5xx status.
pub fn error_code(error: Option<ErrorKind>, status: u16) -> u32 {
    match error {
        Some(ErrorKind::Dns) => 1100,
        Some(ErrorKind::ConnectRefused) => 1212,
        Some(ErrorKind::Connect) => 1210,
        Some(ErrorKind::Timeout) => 1050,
        Some(ErrorKind::Reset) => 1000,
        Some(ErrorKind::Tls) => 1300,
        Some(ErrorKind::Protocol) => 1000,
        Some(ErrorKind::InvalidUrl) => 1020,
        None if status >= 400 => 1000 + u32::from(status),
        None => 0,
    }
}

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
struct JsRequest<'js> {
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
    /// Statuses that count as expected (`expectedStatuses`); `None`: 200–399.
    /// Empty (a null callback): every response, as k6 then emits no failures.
    expected: Option<Vec<(u16, u16)>>,
    /// Where to put the response.
    out: rquickjs::Array<'js>,
}

fn request<'js>(
    ctx: &Ctx<'js>,
    state: &State,
    call: JsRequest<'js>,
) -> rquickjs::Result<rquickjs::Array<'js>> {
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
        out,
    } = call;
    let (host, stage) = {
        let st = state.borrow();
        (st.host.clone(), st.stage)
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
    let body = bytes_of(&payload)?;
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
    let binary = response_type == Some("binary");
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
    let mut chain: Option<Chain> = None;
    let mut hop_headers = Vec::new();
    let resp = loop {
        let (hop_method, hop_url) = match &chain {
            Some(c) => (c.method.clone(), c.url.as_str()),
            None => (method_v.clone(), url.as_str()),
        };
        hop_headers.clear();
        match &chain {
            Some(c) => c.headers_into(&hs, &mut hop_headers),
            None => hop_headers.extend_from_slice(&hs),
        }
        let now = unix_now();
        if let Some(c) = with_jar(state, jar, |j| {
            follow::cookie_header(j, &cookies, hop_url, now)
        }) {
            follow::add_cookie_header(&mut hop_headers, c);
        }
        let call = HttpCall {
            method: hop_method,
            url: hop_url.to_owned(),
            headers: std::mem::take(&mut hop_headers),
            body: if chain.as_ref().is_none_or(|c| c.keep_body) {
                body.clone()
            } else {
                Vec::new()
            },
            timeout,
            keep_body,
        };
        let mut resp = match suspend(Yield::Http(Box::new(call))) {
            Resume::Http(r) => r,
            _ => {
                state.borrow_mut().stopping = true;
                return Err(throw(ctx, "iteration interrupted"));
            }
        };
        with_jar(state, jar, |j| {
            follow::store_cookies(j, hop_url, &resp, now);
        });
        let hop_name = if explicit_name { &name } else { hop_url };
        let id =
            state
                .borrow_mut()
                .request_id(hop_url_method(&chain, &method), hop_name, &tag_pairs);
        if max_redirects > 0 && redirect::is_redirect(resp.status) {
            let c = chain.get_or_insert_with(|| Chain::new(&method_v, &url, max_redirects));
            if c.advance(&mut resp) {
                record(state, id, &resp, expected.as_deref());
                continue;
            }
            if c.limit_hit && redirects.is_none() {
                warn_redirect_limit(&url, max_redirects);
            }
        }
        record(state, id, &resp, expected.as_deref());
        break resp;
    };
    let final_url = chain.as_ref().filter(|c| c.hops > 0).map(|c| c.url.clone());
    // The response crosses into JavaScript as one array (see `Response`
    // in js/http.js): setting a dozen named properties from Rust costs an
    // atom lookup each, an array literal's slots cost nothing.
    let proto: u8 = match resp.http_version {
        http::Version::HTTP_2 => 2,
        http::Version::HTTP_10 => 10,
        _ => 11,
    };
    // Headers travel as one `Name\nvalue\nName\nvalue` string, split only
    // if the script reads `res.headers` (HTTP forbids newlines in both).
    let mut flat = String::new();
    for (n, v) in &resp.headers {
        if !flat.is_empty() {
            flat.push('\n');
        }
        canonical_into(n.as_str(), &mut flat);
        flat.push('\n');
        flat.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    let body = if resp.error.is_some() || !keep_body {
        Value::new_null(ctx.clone())
    } else if binary {
        rquickjs::ArrayBuffer::new(ctx.clone(), resp.body.clone())?.into_value()
    } else {
        String::from_utf8_lossy(&resp.body).into_js(ctx)?
    };
    let message = match (&resp.failure, resp.error) {
        (Some(f), _) => f.to_string(),
        (None, Some(e)) => e.name().to_string(),
        _ => String::new(),
    };
    let tm = resp.timings;
    let o = out;
    let items: [Value<'js>; 13] = [
        resp.status.into_js(ctx)?,
        proto.into_js(ctx)?,
        body,
        message.into_js(ctx)?,
        error_code(resp.error, resp.status).into_js(ctx)?,
        ms(tm.blocked).into_js(ctx)?,
        ms(tm.connecting).into_js(ctx)?,
        ms(tm.tls_handshaking).into_js(ctx)?,
        ms(tm.sending).into_js(ctx)?,
        ms(tm.waiting).into_js(ctx)?,
        ms(tm.receiving).into_js(ctx)?,
        flat.into_js(ctx)?,
        final_url.into_js(ctx)?,
    ];
    for (i, item) in items.into_iter().enumerate() {
        o.set(i, item)?;
    }
    Ok(o)
}

/// The method of the hop about to be recorded.
fn hop_url_method<'a>(chain: &'a Option<Chain>, original: &'a str) -> &'a str {
    chain.as_ref().map_or(original, |c| c.method.as_str())
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
        None => (200..400).contains(&status),
        Some([]) => true,
        Some(r) => r.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status)),
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
    }));
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

/// `content-type` → `Content-Type`, as k6 shows header names.
fn canonical_into(name: &str, out: &mut String) {
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
}
