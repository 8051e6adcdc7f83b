//! The target's session routes, for redirect and cookie tests (after
//! httpbin): `/redirect/N` answers 302 to `/redirect/N-1` until
//! `/redirect/0` (200), `/cookies/set?a=1&b=2` sets those cookies (path
//! `/`) and redirects to `/cookies`, which answers the cookies it got as a
//! JSON object. Names and values are taken as written (no percent-decoding)
//! and must be valid cookie text.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
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
