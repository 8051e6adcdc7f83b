//! One request step of a plan as the VU sends it, in pieces that a single
//! request and a batch share: the parts rendered ([`render`]), the jar's
//! cookies added ([`with_cookies`]), each hop's cookies stored and the next
//! redirect decided and recorded ([`follow_on`]), and the final response
//! recorded, checked, captured from and added to custom metrics
//! ([`finish`]).

use http::HeaderName;

use super::super::check;
use super::super::http::Response;
use super::super::http::cookies::CookieJar;
use super::super::http::follow::{self, Chain};
use super::super::http::redirect;
use super::super::program::Prepared;
use super::super::sink::SampleSink;
use crate::metrics::{HttpSample, Sample};
use crate::plan::{Body, CaptureSource, HttpOptions, RenderContext, Request, ResponseValue};

/// Buffers a request's templated parts are rendered into (a VU reuses
/// one set for its single requests). Boxed and made on first use: a
/// request without placeholders needs none, and every VU at work would
/// otherwise carry their 120 bytes.
#[derive(Default)]
pub(super) struct Buffers {
    url: String,
    body: String,
    /// A multipart body as rendered.
    bytes: Vec<u8>,
    /// The rendered body compressed, for a request with `compression`.
    compressed: Vec<u8>,
    headers: Vec<(HeaderName, String)>,
}

/// A request's URL, headers and body as sent first: static parts from the
/// program, the others rendered into [`Buffers`].
pub(super) struct Rendered<'a> {
    pub url: &'a str,
    pub headers: &'a [(HeaderName, String)],
    pub body: &'a [u8],
}

pub(super) fn render<'a>(
    p: &'a Prepared,
    cx: &RenderContext<'_>,
    bufs: &'a mut Option<Box<Buffers>>,
) -> Rendered<'a> {
    let r = &p.request;
    let static_body: Option<&[u8]> = match (&p.static_body, &r.body) {
        (Some(b), _) => Some(b),
        (None, None) => Some(&[]),
        (None, Some(_)) => None,
    };
    if let (Some(url), Some(headers), Some(body)) = (&p.static_url, &p.static_headers, static_body)
    {
        return Rendered { url, headers, body };
    }
    let Buffers {
        url,
        body,
        bytes,
        compressed,
        headers,
    } = &mut **bufs.get_or_insert_with(Box::default);
    let url: &str = match &p.static_url {
        Some(u) => u,
        None => {
            url.clear();
            r.url.render_into(cx, url);
            url
        }
    };
    let headers: &[(HeaderName, String)] = match &p.static_headers {
        Some(h) => h,
        None => {
            headers.clear();
            for (name, value) in &r.headers {
                headers.push((name.clone(), value.render(cx)));
            }
            headers
        }
    };
    let body: &[u8] = match (&p.static_body, &r.body) {
        (Some(b), _) => b,
        (None, Some(b)) => {
            let raw: &[u8] = match b {
                Body::Text(t) => {
                    body.clear();
                    t.render_into(cx, body);
                    body.as_bytes()
                }
                Body::Multipart(m) => {
                    bytes.clear();
                    m.render_into(cx, bytes, body);
                    bytes
                }
            };
            match &r.compression {
                // Validated at load: compressing into memory does not fail.
                Some(c) => {
                    *compressed =
                        super::super::http::encoding::compress(c, raw).unwrap_or_default();
                    compressed
                }
                None => raw,
            }
        }
        (None, None) => &[],
    };
    Rendered { url, headers, body }
}

/// Fills `out` with `headers` plus the jar's `Cookie` header for `url`
/// when it has cookies for it; false (and `out` untouched) when not.
pub(super) fn with_cookies(
    jar: &mut CookieJar,
    headers: &[(HeaderName, String)],
    url: &str,
    out: &mut Vec<(HeaderName, String)>,
) -> bool {
    let Some(cookies) = follow::cookie_header(jar, &[], url, follow::unix_now) else {
        return false;
    };
    out.clear();
    out.extend_from_slice(headers);
    follow::add_cookie_header(out, cookies);
    true
}

/// What a request's hops share while its redirect chain is followed.
pub(super) struct Follow<'a> {
    pub request: &'a Request,
    /// The URL of the first hop.
    pub url: &'a str,
    /// The rendered headers (without cookies).
    pub headers: &'a [(HeaderName, String)],
    pub lag: Option<std::time::Duration>,
    pub http: &'a HttpOptions,
}

/// After the response to the current hop: stores its cookies and, when it
/// is a redirect to follow, records it and puts the next hop's headers in
/// `hop_headers` (its method and URL are the chain's). True when there is
/// a next hop to send.
pub(super) fn follow_on(
    f: &Follow<'_>,
    chain: &mut Option<Box<Chain>>,
    resp: &mut Response,
    jar: &mut CookieJar,
    sink: &mut SampleSink,
    hop_headers: &mut Vec<(HeaderName, String)>,
) -> bool {
    let sent_to = chain.as_ref().map_or(f.url, |c| c.url.as_str());
    follow::store_cookies(jar, sent_to, resp, follow::unix_now);
    let max = f.request.redirects.unwrap_or(f.http.max_redirects);
    if chain.is_none() {
        if max == 0 || !redirect::is_redirect(resp.status) {
            return false;
        }
        // Boxed: rare, and a VU keeps its request state between requests.
        *chain = Some(Box::new(Chain::new(&f.request.method, f.url, max)));
    }
    let Some(c) = chain.as_mut() else {
        return false;
    };
    if !c.advance(resp) {
        return false;
    }
    // Rare: each hop is recorded as its own request, then sent.
    record(sink, f.request.id, resp, f.lag, &f.http.expected_statuses);
    hop_headers.clear();
    c.headers_into(f.headers, hop_headers);
    if let Some(cookies) = follow::cookie_header(jar, &[], &c.url, follow::unix_now) {
        follow::add_cookie_header(hop_headers, cookies);
    }
    true
}

/// The VU state a final response updates.
pub(super) struct Outcome<'a> {
    pub sink: &'a mut SampleSink,
    pub vars: &'a mut [Option<String>],
    pub jar: &'a mut CookieJar,
    /// Set to the first check that fails (if still unset).
    pub failed_check: &'a mut Option<crate::plan::CheckId>,
}

/// Records the final response of `p` (sent first to `url`), then its
/// checks and captures.
pub(super) fn finish(p: &Prepared, f: &Follow<'_>, resp: &Response, out: Outcome<'_>) {
    let r = &p.request;
    record(out.sink, r.id, resp, f.lag, &f.http.expected_statuses);
    if r.checks.is_empty() && r.captures.is_empty() && p.metrics.is_empty() {
        return;
    }
    let json = if p.parse_json {
        serde_json::from_slice::<serde_json::Value>(&resp.body).ok()
    } else {
        None
    };
    let mut all_ok = true;
    for c in &r.checks {
        let ok = check::evaluate(&c.kind, resp, json.as_ref());
        all_ok &= ok;
        if !ok && out.failed_check.is_none() {
            *out.failed_check = Some(c.id);
        }
        out.sink.push(Sample::Check { check: c.id, ok });
    }
    for &(series, what) in &p.metrics {
        let value = response_value(what, resp, all_ok);
        out.sink.push(Sample::Custom { series, value });
    }
    for c in &r.captures {
        let slot = usize::from(c.var.0);
        let value = match &c.source {
            CaptureSource::Cookie(name) => {
                follow::cookie_value(out.jar, f.url, name, follow::unix_now())
            }
            source => check::capture(source, resp, json.as_ref()),
        };
        if let Some(v) = out.vars.get_mut(slot) {
            *v = value;
        }
    }
}

/// A request's `metrics` value: timings in milliseconds, the status (0
/// without a response), or 1/0 for "every check passed".
fn response_value(what: ResponseValue, resp: &Response, all_ok: bool) -> f64 {
    let t = &resp.timings;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    match what {
        ResponseValue::Duration => ms(t.duration()),
        ResponseValue::Waiting => ms(t.waiting),
        ResponseValue::Blocked => ms(t.blocked),
        ResponseValue::Connecting => ms(t.connecting),
        ResponseValue::TlsHandshaking => ms(t.tls_handshaking),
        ResponseValue::Sending => ms(t.sending),
        ResponseValue::Receiving => ms(t.receiving),
        ResponseValue::Status if resp.error.is_some() => 0.0,
        ResponseValue::Status => f64::from(resp.status),
        ResponseValue::Checks => f64::from(u8::from(all_ok)),
    }
}

/// What a `metric` step's rendered template adds: a number, or `true` and
/// `false` as 1 and 0; anything else adds nothing.
pub(super) fn metric_number(text: &str) -> Option<f64> {
    match text.trim() {
        "true" => Some(1.0),
        "false" => Some(0.0),
        t => t.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// Records one response (a hop or the final one) of request `id`.
fn record(
    sink: &mut SampleSink,
    id: crate::plan::RequestId,
    resp: &Response,
    lag: Option<std::time::Duration>,
    expected_statuses: &[(u16, u16)],
) {
    // A transport error is checked as status 0, as k6 does.
    let status = if resp.error.is_some() { 0 } else { resp.status };
    let expected = Some(
        expected_statuses
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&status)),
    );
    sink.push(Sample::Http(HttpSample {
        request: id,
        status: resp.status,
        error: resp.error,
        expected,
        timings: resp.timings,
        intended: lag.map(|l| l + resp.timings.duration()),
        bytes_sent: resp.bytes_sent,
        bytes_received: resp.bytes_received,
        proto: resp.proto_code(),
        tls: resp.tls_code(),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_numbers_are_numbers_or_booleans() {
        assert_eq!(metric_number(" 42.5 "), Some(42.5));
        assert_eq!(metric_number("true"), Some(1.0));
        assert_eq!(metric_number("false"), Some(0.0));
        assert_eq!(metric_number(""), None, "an empty capture adds nothing");
        assert_eq!(metric_number("12 items"), None);
        assert_eq!(metric_number("inf"), None);
        assert_eq!(metric_number("NaN"), None);
    }

    #[test]
    fn response_values_are_milliseconds_status_or_check_outcome() {
        let mut r = Response {
            status: 201,
            ..Response::default()
        };
        r.timings.waiting = std::time::Duration::from_micros(1500);
        r.timings.receiving = std::time::Duration::from_micros(500);
        r.timings.blocked = std::time::Duration::from_millis(3);
        assert_eq!(response_value(ResponseValue::Duration, &r, true), 2.0);
        assert_eq!(response_value(ResponseValue::Waiting, &r, true), 1.5);
        assert_eq!(response_value(ResponseValue::Blocked, &r, true), 3.0);
        assert_eq!(response_value(ResponseValue::Status, &r, true), 201.0);
        assert_eq!(response_value(ResponseValue::Checks, &r, true), 1.0);
        assert_eq!(response_value(ResponseValue::Checks, &r, false), 0.0);
        r.error = Some(crate::metrics::ErrorKind::Reset);
        assert_eq!(
            response_value(ResponseValue::Status, &r, false),
            0.0,
            "no response is status 0, as k6 checks it"
        );
    }
}
