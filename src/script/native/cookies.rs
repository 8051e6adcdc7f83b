//! Cookie natives behind `k6/http`: `http.cookieJar()` (the VU's jar),
//! `new http.CookieJar()` (a jar of its own, dropped when its object is
//! collected), their methods, and the parsing behind `Response.cookies`.

use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Object, Value};

use std::cell::RefCell;
use std::rc::Rc;

use super::handles::Handles;
use super::{State, current_vu, throw};
use crate::engine::http::cookies::{CookieJar, CookieUrl, SetCookie, parse_cookie_date};
use crate::engine::http::follow::unix_now;

/// Jars of `new http.CookieJar()` a realm's VUs may hold at once; they are
/// freed when their objects are collected (a `FinalizationRegistry` in
/// `js/http.js`, whose callback may run while any VU of the realm runs:
/// the jars are the realm's, not a VU's).
const MAX_JARS: usize = 10_000;

/// The jars a realm's scripts created, by the handle their objects hold.
#[derive(Debug)]
pub struct Jars(Handles<CookieJar>);

impl Default for Jars {
    fn default() -> Jars {
        Jars(Handles::new(MAX_JARS))
    }
}

/// Runs `f` on the jar `handle` names: a script's own, or the VU's when
/// null. A handle that names no jar (never from `js/http.js`) gets an
/// empty one.
pub(super) fn with_jar<R>(
    state: &State,
    handle: Option<u32>,
    f: impl FnOnce(&mut CookieJar) -> R,
) -> R {
    let mut st = state.borrow_mut();
    match handle {
        None => f(&mut st.jar),
        Some(h) => {
            let jars = Rc::clone(&st.jars);
            drop(st);
            let mut jars = jars.borrow_mut();
            match jars.0.get_mut(h) {
                Some(jar) => f(jar),
                None => f(&mut CookieJar::default()),
            }
        }
    }
}

/// The parts of `url` a jar matches on, or a JavaScript error.
fn url_parts(ctx: &Ctx<'_>, url: &str) -> rquickjs::Result<(bool, String, String)> {
    let mut target = crate::engine::http::url::Target::default();
    target
        .parse_into(url)
        .map_err(|e| throw(ctx, &format!("invalid cookie URL {url:?}: {e}")))?;
    Ok((
        target.scheme == crate::engine::http::url::Scheme::Https,
        target.host,
        target.path,
    ))
}

fn cookie_url<'a>(parts: &'a (bool, String, String)) -> CookieUrl<'a> {
    CookieUrl {
        https: parts.0,
        host: &parts.1,
        path: &parts.2,
    }
}

pub(super) fn install<'js>(
    ctx: &Ctx<'js>,
    v: &Object<'js>,
    jars: &Rc<RefCell<Jars>>,
) -> rquickjs::Result<()> {
    let s = Rc::clone(jars);
    v.set(
        "jarNew",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
            s.borrow_mut().0.add(CookieJar::default()).ok_or_else(|| {
                throw(
                    &ctx,
                    &format!("more than {MAX_JARS} cookie jars alive in one VU; create jars once and reuse them"),
                )
            })
        })?,
    )?;
    let s = Rc::clone(jars);
    v.set(
        "jarFree",
        Function::new(ctx.clone(), move |handle: u32| {
            s.borrow_mut().0.release(handle)
        })?,
    )?;

    v.set(
        "jarCookies",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: Option<u32>, url: String| {
                let s = current_vu(&ctx)?;
                let parts = url_parts(&ctx, &url)?;
                let pairs: Vec<(String, String)> = with_jar(&s, handle, |jar| {
                    jar.matching(cookie_url(&parts), unix_now())
                        .into_iter()
                        .map(|c| (c.name.clone(), c.value.clone()))
                        .collect()
                });
                // Grouped here, not by reading `out` back: a cookie named
                // `constructor` must not find Object.prototype's.
                let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
                for (name, value) in pairs {
                    match grouped.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, values)) => values.push(value),
                        None => grouped.push((name, vec![value])),
                    }
                }
                let out = Object::new(ctx.clone())?;
                for (name, values) in grouped {
                    out.set(name, values)?;
                }
                Ok::<_, rquickjs::Error>(out)
            },
        )?,
    )?;

    v.set(
        "jarSet",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: Option<u32>,
                  url: String,
                  name: String,
                  value: String,
                  opts: Opt<Object<'js>>| {
                let s = current_vu(&ctx)?;
                let parts = url_parts(&ctx, &url)?;
                let mut c = SetCookie {
                    name,
                    value,
                    ..SetCookie::default()
                };
                if let Some(o) = opts.0 {
                    c.domain = o
                        .get::<_, Option<String>>("domain")?
                        .unwrap_or_default()
                        .trim_start_matches('.')
                        .to_ascii_lowercase();
                    c.path = o.get::<_, Option<String>>("path")?.unwrap_or_default();
                    c.secure = o.get::<_, Option<bool>>("secure")?.unwrap_or(false);
                    c.http_only = o.get::<_, Option<bool>>("http_only")?.unwrap_or(false);
                    c.max_age = o.get::<_, Option<f64>>("max_age")?.map(|n| n as i64);
                    if let Some(text) = o.get::<_, Option<String>>("expires")? {
                        c.expires = Some(parse_cookie_date(&text).ok_or_else(|| {
                            throw(
                                &ctx,
                                &format!(
                                    "cookie {:?}: expires {text:?} is not a date like \"Mon, 02 Jan 2006 15:04:05 GMT\"",
                                    c.name
                                ),
                            )
                        })?);
                    }
                }
                if c.name.is_empty() || c.name.contains(['=', ';', ' ']) {
                    return Err(throw(
                        &ctx,
                        &format!("invalid cookie name {:?}", c.name),
                    ));
                }
                let stored = with_jar(&s, handle, |jar| {
                    jar.store(cookie_url(&parts), &c, unix_now())
                });
                if !stored {
                    return Err(throw(
                        &ctx,
                        &format!(
                            "cookie {:?} cannot be set for {url}: its domain {:?} does not match the URL's host, or it is larger than 4096 bytes",
                            c.name, c.domain
                        ),
                    ));
                }
                Ok(())
            },
        )?,
    )?;

    v.set(
        "jarDelete",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: Option<u32>, url: String, name: Opt<String>| {
                let s = current_vu(&ctx)?;
                let parts = url_parts(&ctx, &url)?;
                with_jar(&s, handle, |jar| {
                    jar.remove(cookie_url(&parts), name.0.as_deref(), unix_now());
                });
                Ok::<_, rquickjs::Error>(())
            },
        )?,
    )?;

    v.set(
        "parseSetCookies",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, headers: Vec<String>| {
            let mut grouped: Vec<(String, Vec<Object<'js>>)> = Vec::new();
            for h in headers {
                let Some(c) = SetCookie::parse(&h) else {
                    continue;
                };
                let o = Object::new(ctx.clone())?;
                o.set("name", c.name.as_str())?;
                o.set("value", c.value.as_str())?;
                o.set("domain", c.domain.as_str())?;
                o.set("path", c.path.as_str())?;
                o.set("http_only", c.http_only)?;
                o.set("secure", c.secure)?;
                o.set("max_age", c.max_age.unwrap_or(0) as f64)?;
                o.set("expires", c.expires.map_or(0.0, |e| e as f64 * 1000.0))?;
                match grouped.iter_mut().find(|(n, _)| *n == c.name) {
                    Some((_, list)) => list.push(o),
                    None => grouped.push((c.name.clone(), vec![o])),
                }
            }
            let out = Object::new(ctx.clone())?;
            for (name, list) in grouped {
                out.set(name, list)?;
            }
            Ok::<_, rquickjs::Error>(Value::from_object(out))
        })?,
    )?;
    Ok(())
}
