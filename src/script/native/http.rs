//! `__volley.request` and `__volley.batch`: the natives behind every
//! `k6/http` call. Each request is an [`Exchange`] (its hops, cookies and
//! samples); the response goes back to JavaScript as one array (see
//! `Response` in `js/http.js`).

use rquickjs::{Ctx, Function, IntoJs, Object, Value};

use super::exchange::{Exchange, parse, run_batch};
use super::{current_vu, ms};
use crate::engine::http::Response;
use crate::metrics::ErrorKind;

pub(super) fn install<'js>(ctx: &Ctx<'js>, v: &Object<'js>) -> rquickjs::Result<()> {
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
                let s = current_vu(&ctx)?;
                // `meta` is null (a plain request) or the normalised params
                // (see `parse`); `out` is a 13-slot array literal from the
                // caller, filled in place (cheaper than growing a new array
                // slot by slot).
                let call = parse(&ctx, method, url, payload, meta)?;
                let mut ex = Exchange::prepare(&ctx, &s, call)?;
                let resp = ex.run(&ctx, &s)?;
                fill(&ctx, &ex, &resp, out)
            },
        )?,
    )?;

    v.set(
        "batch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  list: Vec<rquickjs::Array<'js>>,
                  outs: Vec<rquickjs::Array<'js>>|
                  -> rquickjs::Result<Vec<rquickjs::Array<'js>>> {
                let s = current_vu(&ctx)?;
                // Each entry is `[method, url, payload, meta]` as for
                // `request`; all of them are sent in parallel.
                let mut exchanges = Vec::with_capacity(list.len());
                for entry in list {
                    let call = parse(
                        &ctx,
                        entry.get(0)?,
                        entry.get(1)?,
                        entry.get(2)?,
                        entry.get(3)?,
                    )?;
                    exchanges.push(Exchange::prepare(&ctx, &s, call)?);
                }
                let responses = run_batch(&ctx, &s, &mut exchanges)?;
                let mut filled = Vec::with_capacity(outs.len());
                for ((ex, resp), out) in exchanges.iter().zip(&responses).zip(outs) {
                    filled.push(fill(&ctx, ex, resp, out)?);
                }
                Ok(filled)
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
    ErrorKind::k6_code(error, status)
}

/// The response as the one array `Response` in js/http.js reads.
fn fill<'js>(
    ctx: &Ctx<'js>,
    ex: &Exchange,
    resp: &Response,
    out: rquickjs::Array<'js>,
) -> rquickjs::Result<rquickjs::Array<'js>> {
    let final_url = ex.final_url();
    let keep_body = ex.keep_body;
    let binary = ex.binary;
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
    // An IPv4 address travels as a number (no string to allocate); the
    // TLS suite as its code, named in JavaScript when read.
    let remote_ip = match resp.remote.map(|a| a.ip()) {
        Some(std::net::IpAddr::V4(v4)) => u32::from(v4).into_js(ctx)?,
        Some(v6) => v6.to_string().into_js(ctx)?,
        None => 0u32.into_js(ctx)?,
    };
    let (tls_version, tls_suite) = resp.tls.map_or((0u8, ""), |t| {
        let v = match t.version {
            crate::plan::net::TlsVersion::Tls13 => 13,
            _ => 12,
        };
        (v, t.suite_name())
    });
    let items: [Value<'js>; 17] = [
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
        remote_ip,
        resp.remote.map_or(0, |a| a.port()).into_js(ctx)?,
        tls_version.into_js(ctx)?,
        tls_suite.into_js(ctx)?,
    ];
    for (i, item) in items.into_iter().enumerate() {
        o.set(i, item)?;
    }
    Ok(o)
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
