//! `--http-debug[=full]`: each exchange written out as k6 prints it (Go's
//! request and response dumps), with credentials and cookie values
//! redacted so a log can be shared. Pure: the client prints the text.

use std::fmt::Write as _;

use super::{OutRequest, Response};
use crate::plan::HttpDebug;

/// Most body bytes shown per message with `full`.
const MAX_BODY: usize = 64 << 10;

/// Header values that never reach a log.
fn is_secret(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

/// The request and response of one exchange, as text.
pub fn dump(req: &OutRequest<'_>, resp: &Response, level: HttpDebug) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Request:\n{} {} HTTP/1.1",
        req.method,
        redact_url(req.url)
    );
    for (name, value) in req.headers {
        let shown = if is_secret(name.as_str()) {
            "[redacted]"
        } else {
            value
        };
        let _ = writeln!(s, "{name}: {shown}");
    }
    if level == HttpDebug::Full && !req.body.is_empty() {
        let _ = writeln!(s, "\n{}", body_text(req.body));
    }
    match (&resp.failure, resp.status) {
        (Some(f), _) => {
            let _ = writeln!(s, "\nRequest failed: {f}");
        }
        (None, status) => {
            let version = match resp.http_version {
                http::Version::HTTP_2 => "HTTP/2.0",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            };
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("");
            let _ = writeln!(s, "\nResponse:\n{version} {status} {reason}");
            for (name, value) in &resp.headers {
                let value = String::from_utf8_lossy(value.as_bytes());
                let shown = if is_secret(name.as_str()) {
                    "[redacted]"
                } else {
                    value.as_ref()
                };
                let _ = writeln!(s, "{name}: {shown}");
            }
            if level == HttpDebug::Full && !resp.body.is_empty() {
                let _ = writeln!(s, "\n{}", body_text(&resp.body));
            }
        }
    }
    s
}

/// `http://user:password@host/…` → `http://****:****@host/…`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://****:****@{host}{}", &rest[end..]),
        None => url.to_owned(),
    }
}

fn body_text(body: &[u8]) -> String {
    let shown = &body[..body.len().min(MAX_BODY)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if body.len() > MAX_BODY {
        let _ = write!(text, "\n[{} more bytes]", body.len() - MAX_BODY);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue, Method};

    #[test]
    fn secrets_stay_out_of_the_log() {
        let headers = vec![
            (http::header::AUTHORIZATION, "Bearer t0ken".to_owned()),
            (HeaderName::from_static("x-trace"), "abc".to_owned()),
        ];
        let req = OutRequest {
            method: &Method::POST,
            url: "http://me:pw@api.test/login",
            headers: &headers,
            body: b"user=me",
            timeout: std::time::Duration::from_secs(1),
            keep_body: true,
            keep_headers: true,
        };
        let mut resp = Response {
            status: 302,
            body: b"moved".to_vec(),
            ..Response::default()
        };
        resp.headers.push((
            http::header::SET_COOKIE,
            HeaderValue::from_static("sid=secret"),
        ));
        let heads = dump(&req, &resp, HttpDebug::Headers);
        assert!(
            heads.contains("POST http://****:****@api.test/login HTTP/1.1"),
            "{heads}"
        );
        assert!(heads.contains("authorization: [redacted]") && heads.contains("x-trace: abc"));
        assert!(heads.contains("HTTP/1.1 302 Found") && heads.contains("set-cookie: [redacted]"));
        assert!(!heads.contains("t0ken") && !heads.contains("secret") && !heads.contains("pw@"));
        assert!(!heads.contains("user=me"), "bodies only with full");
        let full = dump(&req, &resp, HttpDebug::Full);
        assert!(full.contains("user=me") && full.contains("moved"));
    }
}
