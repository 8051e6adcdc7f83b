//! The target's session routes, for redirect and cookie tests (after
//! httpbin): `/redirect/N` answers 302 to `/redirect/N-1` until
//! `/redirect/0` (200), `/cookies/set?a=1&b=2` sets those cookies (path
//! `/`) and redirects to `/cookies`, which answers the cookies it got as a
//! JSON object. Names and values are taken as written (no percent-decoding)
//! and must be valid cookie text. `/digest-auth/auth/USER/PASSWORD`
//! challenges with HTTP Digest (MD5, `qop=auth`) and answers 200 to a
//! correct response for those credentials.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::TargetBody;
use super::routes::{JSON, TEXT, respond};
use super::stats::TargetStats;

/// Most cookies one `/cookies/set` sets.
const MAX_SET: usize = 50;

/// `/redirect/N`.
pub(super) fn redirect(n: u64, stats: &Arc<TargetStats>) -> Response<TargetBody> {
    if n == 0 {
        return respond(
            StatusCode::OK,
            TEXT,
            TargetBody::full(Bytes::from_static(b"redirected\n"), stats),
        );
    }
    let mut r = respond(
        StatusCode::FOUND,
        TEXT,
        TargetBody::full(Bytes::new(), stats),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/redirect/{}", n - 1)) {
        r.headers_mut().insert(LOCATION, location);
    }
    r
}

/// `/cookies`: `{"name": "value", …}` of the request's `Cookie` headers.
pub(super) fn cookies(req: &Request<Incoming>, stats: &Arc<TargetStats>) -> Response<TargetBody> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for value in req.headers().get_all(COOKIE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                map.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    let doc = serde_json::to_vec(&map).unwrap_or_else(|_| b"{}".to_vec());
    respond(
        StatusCode::OK,
        JSON,
        TargetBody::full(Bytes::from(doc), stats),
    )
}

/// `/cookies/set?name=value&…`: a 302 to `/cookies` setting each cookie.
pub(super) fn set_cookies(
    query: &str,
    stats: &Arc<TargetStats>,
) -> Result<Response<TargetBody>, String> {
    let mut values = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        let valid_value = value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b));
        if !valid_name || !valid_value {
            return Err(format!(
                "/cookies/set: {pair:?} is not NAME=VALUE with a cookie name and value (letters, digits, no spaces, ';' or ',')\n"
            ));
        }
        let header = HeaderValue::from_str(&format!("{name}={value}; Path=/"))
            .map_err(|_| format!("/cookies/set: {pair:?} cannot be a header value\n"))?;
        values.push(header);
        if values.len() > MAX_SET {
            return Err(format!("/cookies/set: at most {MAX_SET} cookies at once\n"));
        }
    }
    let mut r = respond(
        StatusCode::FOUND,
        TEXT,
        TargetBody::full(Bytes::new(), stats),
    );
    let headers = r.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static("/cookies"));
    for v in values {
        headers.append(SET_COOKIE, v);
    }
    Ok(r)
}

/// The realm `/digest-auth` challenges with.
const REALM: &str = "volley-target";

/// `/digest-auth/auth/USER/PASSWORD`: 401 with a challenge until the
/// request carries a correct Digest answer for USER and PASSWORD.
pub(super) fn digest_auth(
    req: &Request<Incoming>,
    param: &str,
    stats: &Arc<TargetStats>,
) -> Result<Response<TargetBody>, String> {
    let mut parts = param.splitn(3, '/');
    let (Some("auth"), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "/digest-auth/{param}: expected /digest-auth/auth/USER/PASSWORD\n"
        ));
    };
    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Digest "));
    if let Some(params) = given
        && answer_is_right(params, user, password, req.method().as_str(), uri)
    {
        let doc = format!(r#"{{"authenticated":true,"user":"{user}"}}"#);
        return Ok(respond(
            StatusCode::OK,
            JSON,
            TargetBody::full(Bytes::from(doc), stats),
        ));
    }
    let nonce: String = (0..16)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect();
    let mut r = respond(
        StatusCode::UNAUTHORIZED,
        TEXT,
        TargetBody::full(Bytes::from_static(b"digest credentials required\n"), stats),
    );
    let challenge = format!(
        r#"Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="volley", algorithm=MD5"#
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    Ok(r)
}

/// Checks a Digest answer's `response` (any nonce is accepted: the target
/// keeps no state between requests).
fn answer_is_right(params: &str, user: &str, password: &str, method: &str, uri: &str) -> bool {
    let field = |key: &str| -> Option<String> {
        params.split(',').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
    };
    let (Some(name), Some(nonce), Some(nc), Some(cnonce), Some(response), Some(u)) = (
        field("username"),
        field("nonce"),
        field("nc"),
        field("cnonce"),
        field("response"),
        field("uri"),
    ) else {
        return false;
    };
    let md5 = |s: String| crate::report::md5_hex(s.as_bytes());
    let ha1 = md5(format!("{user}:{REALM}:{password}"));
    let ha2 = md5(format!("{method}:{uri}"));
    let want = md5(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    name == user && u == uri && response == want
}
