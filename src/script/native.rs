//! The native functions behind k6's modules, installed as `__volley` in
//! every runtime, and the globals (`open`, `console`, `__ENV`, `__VU`,
//! `__ITER`) set up by the prelude.
//!
//! Natives get the runtime's [`VuState`] through an `Rc<RefCell<_>>`: a
//! runtime and its state live on one coroutine, on one thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Function, IntoJs, Object, Value};
use tokio::time::Instant;

use super::host::{Host, Sources};
use super::vu::{HttpCall, Resume, Yield, suspend};
use crate::engine::sink::SampleSink;
use crate::metrics::{ErrorKind, HttpSample, Sample};
use crate::plan::dynamic::RequestDesc;
use crate::plan::{GroupId, RequestId};

/// Which part of the lifecycle a runtime is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Init,
    Setup,
    Vu,
    Teardown,
}

/// What the natives of one runtime read and write.
pub struct VuState {
    pub stage: Stage,
    pub vu: u64,
    pub iter: u64,
    pub iter_in_scenario: u64,
    pub iteration_in_test: u64,
    pub scenario: usize,
    pub sources: Arc<Sources>,
    pub script_dir: std::path::PathBuf,
    /// `None` only while reading `options` (there is no plan yet).
    pub host: Option<Arc<Host>>,
    pub sink: Option<SampleSink>,
    /// The current group path (`::a::b`) and when each level began.
    pub group: String,
    pub group_starts: Vec<(Instant, usize)>,
    /// Request descriptors by hash, so a repeated request allocates nothing.
    request_ids: HashMap<u64, Vec<(RequestDesc, RequestId)>>,
    check_ids: HashMap<(String, String, Vec<(String, String)>), crate::plan::CheckId>,
    group_ids: HashMap<String, GroupId>,
    /// Set when the driver asked the iteration to stop.
    pub stopping: bool,
    /// When the current open-model iteration was meant to start.
    pub intended: Option<Instant>,
}

impl VuState {
    pub fn new(
        stage: Stage,
        vu: u64,
        sources: Arc<Sources>,
        script_dir: std::path::PathBuf,
        host: Option<Arc<Host>>,
        sink: Option<SampleSink>,
    ) -> VuState {
        VuState {
            stage,
            vu,
            iter: 0,
            iter_in_scenario: 0,
            iteration_in_test: 0,
            scenario: 0,
            sources,
            script_dir,
            host,
            sink,
            group: String::new(),
            group_starts: Vec::new(),
            request_ids: HashMap::new(),
            check_ids: HashMap::new(),
            group_ids: HashMap::new(),
            stopping: false,
            intended: None,
        }
    }

    fn push(&mut self, sample: Sample) {
        if let Some(sink) = &mut self.sink {
            sink.push(sample);
        }
    }

    /// The scenario samples are tagged with: setup and teardown use the
    /// first scenario with a `::setup`/`::teardown` group, as k6 tags them.
    fn request_id(&mut self, method: &str, name: &str, tags: &[(String, String)]) -> RequestId {
        let Some(host) = &self.host else {
            return RequestId(crate::plan::dynamic::UNKNOWN);
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.scenario, &self.group, method, name, tags).hash(&mut h);
        let bucket = self.request_ids.entry(h.finish()).or_default();
        if let Some((_, id)) = bucket.iter().find(|(d, _)| {
            d.scenario == self.scenario
                && d.group == self.group
                && d.method == method
                && d.name == name
                && d.tags == tags
        }) {
            return *id;
        }
        let desc = RequestDesc {
            scenario: self.scenario,
            name: name.to_string(),
            method: method.to_string(),
            group: self.group.clone(),
            tags: tags.to_vec(),
        };
        let id = host.plan.dynamic.request_id(&desc);
        bucket.push((desc, id));
        id
    }
}

type State = Rc<RefCell<VuState>>;

/// A script's tags object (`{k: v}`, values stringified), sorted by key.
fn tag_pairs(tags: Option<Value<'_>>) -> rquickjs::Result<Vec<(String, String)>> {
    let Some(obj) = tags.and_then(|t| t.into_object()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for pair in obj.props::<String, rquickjs::Coerced<String>>() {
        let (k, v) = pair?;
        out.push((k, v.0));
    }
    out.sort();
    Ok(out)
}

fn throw(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_message(ctx, message)
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Bytes from a string or an array of byte values (binary data reaches the
/// natives as plain arrays).
fn bytes_of(v: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
    if let Some(s) = v.as_string() {
        return Ok(s.to_string()?.into_bytes());
    }
    if v.is_array() {
        return Vec::<u8>::from_js(v.ctx(), v.clone());
    }
    if v.is_null() || v.is_undefined() {
        return Ok(Vec::new());
    }
    Ok(rquickjs::Coerced::<String>::from_js(v.ctx(), v.clone())?
        .0
        .into_bytes())
}

use rquickjs::FromJs;

/// Parses a timeout param: a number of milliseconds or a duration string.
fn timeout_of(v: &Value<'_>, default: Duration) -> Result<Duration, String> {
    if let Some(n) = v.as_number() {
        if n.is_finite() && n > 0.0 {
            return Ok(Duration::from_secs_f64(n / 1000.0));
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

/// Installs `__volley` and the prelude's globals into `ctx`.
pub fn install<'js>(
    ctx: &Ctx<'js>,
    state: &State,
    env: &std::collections::BTreeMap<String, String>,
) -> rquickjs::Result<()> {
    let v = Object::new(ctx.clone())?;
    let globals = ctx.globals();

    let env_obj = Object::new(ctx.clone())?;
    for (k, val) in env {
        env_obj.set(k.as_str(), val.as_str())?;
    }
    globals.set("__ENV", env_obj)?;

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
                let (headers, tags, timeout, response_type) = match meta.into_array() {
                    Some(m) => (
                        m.get::<Vec<Vec<String>>>(0)?,
                        m.get::<Vec<Vec<String>>>(1)?,
                        m.get::<Value>(2).unwrap_or_else(|_| undefined()),
                        m.get::<Option<String>>(3).ok().flatten(),
                    ),
                    None => (Vec::new(), Vec::new(), undefined(), None),
                };
                let call = JsRequest {
                    method,
                    url,
                    payload,
                    headers,
                    tags,
                    timeout,
                    response_type,
                    out,
                };
                request(&ctx, &s, call)
            },
        )?,
    )?;

    let s = state.clone();
    v.set(
        "sleep",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, secs: f64| -> rquickjs::Result<()> {
                if s.borrow().stage == Stage::Init {
                    return Err(throw(&ctx, "sleep() is not allowed in the init context"));
                }
                if !secs.is_finite() || secs <= 0.0 {
                    return Ok(());
                }
                let d = Duration::from_secs_f64(secs.min(86_400.0));
                if let Some(sink) = &mut s.borrow_mut().sink {
                    sink.flush();
                }
                match suspend(Yield::Sleep(d)) {
                    Resume::Slept => Ok(()),
                    _ => {
                        s.borrow_mut().stopping = true;
                        Err(throw(&ctx, "iteration interrupted"))
                    }
                }
            },
        )?,
    )?;

    let s = state.clone();
    v.set(
        "check",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  name: String,
                  ok: bool,
                  tags: Opt<Value<'js>>|
                  -> rquickjs::Result<()> {
                let mut st = s.borrow_mut();
                if st.stage == Stage::Init {
                    return Err(throw(&ctx, "check() is not allowed in the init context"));
                }
                let Some(host) = st.host.clone() else {
                    return Ok(());
                };
                let tags = tag_pairs(tags.0)?;
                let key = (name, st.group.clone(), tags);
                let id = match st.check_ids.get(&key) {
                    Some(id) => *id,
                    None => {
                        let id = host
                            .plan
                            .dynamic
                            .check_id(&key.0, st.scenario, &key.1, &key.2);
                        st.check_ids.insert(key, id);
                        id
                    }
                };
                st.push(Sample::Check { check: id, ok });
                Ok(())
            },
        )?,
    )?;

    let s = state.clone();
    v.set(
        "groupStart",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<()> {
                let mut st = s.borrow_mut();
                if st.stage == Stage::Init {
                    return Err(throw(&ctx, "group() is not allowed in the init context"));
                }
                if name.contains("::") {
                    return Err(throw(&ctx, "group and check names may not contain '::'"));
                }
                let len = st.group.len();
                st.group.push_str("::");
                st.group.push_str(&name);
                st.group_starts.push((Instant::now(), len));
                Ok(())
            },
        )?,
    )?;

    let s = state.clone();
    v.set(
        "groupEnd",
        Function::new(ctx.clone(), move || {
            let mut st = s.borrow_mut();
            let Some((started, len)) = st.group_starts.pop() else {
                return;
            };
            let path = st.group.clone();
            st.group.truncate(len);
            let Some(host) = st.host.clone() else { return };
            let id = match st.group_ids.get(&path) {
                Some(id) => *id,
                None => {
                    let id = host.plan.dynamic.group_id(&path, st.scenario);
                    st.group_ids.insert(path, id);
                    id
                }
            };
            st.push(Sample::Group {
                group: id,
                duration: started.elapsed(),
            });
        })?,
    )?;

    let s = state.clone();
    v.set(
        "state",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<Object<'js>> {
                let st = s.borrow();
                if st.stage == Stage::Init {
                    return Err(throw(
                        &ctx,
                        "k6/execution's vu and scenario are not available in the init context",
                    ));
                }
                let o = Object::new(ctx.clone())?;
                o.set("vu", st.vu as f64)?;
                o.set("iter", st.iter as f64)?;
                o.set("iterInScenario", st.iter_in_scenario as f64)?;
                o.set("iterationInTest", st.iteration_in_test as f64)?;
                if let Some(host) = &st.host {
                    let sc = host.plan.scenarios.get(st.scenario);
                    o.set("scenario", sc.map(|s| s.name.clone()).unwrap_or_default())?;
                    o.set(
                        "executor",
                        sc.map(|s| s.executor.kind().to_string())
                            .unwrap_or_default(),
                    )?;
                    o.set("elapsedMs", ms(host.started.elapsed()))?;
                    o.set("scenarioStart", 0.0)?;
                }
                Ok(o)
            },
        )?,
    )?;

    let s = state.clone();
    v.set(
        "abort",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, message: String| -> rquickjs::Result<()> {
                let st = s.borrow();
                if st.stage == Stage::Init {
                    return Err(throw(
                        &ctx,
                        "exec.test.abort() is not allowed in the init context",
                    ));
                }
                if let Some(host) = &st.host {
                    let reason = if message.is_empty() {
                        "test aborted".to_string()
                    } else {
                        format!("test aborted: {message}")
                    };
                    host.abort(reason);
                }
                // The iteration ends here but still counts, as in k6; the
                // run stops through the host.
                Err(throw(&ctx, "test aborted"))
            },
        )?,
    )?;

    let s = state.clone();
    v.set(
        "markFailed",
        Function::new(ctx.clone(), move |message: String| {
            if let Some(host) = &s.borrow().host {
                eprintln!("test marked as failed: {message}");
                host.mark_failed();
            }
        })?,
    )?;

    let s = state.clone();
    v.set(
        "open",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, path: String, mode: Opt<String>| -> rquickjs::Result<Value<'js>> {
                let st = s.borrow();
                if st.stage != Stage::Init {
                    return Err(throw(&ctx, "open() can only be called in the init context (outside functions the script exports)"));
                }
                let p = Path::new(&path);
                let full = if p.is_absolute() { p.to_path_buf() } else { st.script_dir.join(p) };
                let bytes = st.sources.file(&full).map_err(|e| throw(&ctx, &e))?;
                if mode.0.as_deref() == Some("b") {
                    bytes.as_slice().to_vec().into_js(&ctx)
                } else {
                    String::from_utf8_lossy(&bytes).into_owned().into_js(&ctx)
                }
            },
        )?,
    )?;

    let s = state.clone();
    v.set(
        "shared",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String, build: Function<'js>| -> rquickjs::Result<String> {
                let host = s.borrow().host.clone();
                match host {
                    Some(host) => host
                        .shared_array(&name, || {
                            build.call::<_, String>(()).map_err(|e| e.to_string())
                        })
                        .map(|t| t.to_string())
                        .map_err(|e| throw(&ctx, &e)),
                    None => build.call::<_, String>(()),
                }
            },
        )?,
    )?;

    v.set(
        "log",
        Function::new(ctx.clone(), |level: String, message: String| {
            eprintln!("{level}: {message}");
        })?,
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

    v.set(
        "utf8",
        Function::new(ctx.clone(), |bytes: Vec<u8>| {
            String::from_utf8_lossy(&bytes).into_owned()
        })?,
    )?;

    v.set(
        "b64encode",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, input: Value<'js>, enc: String| -> rquickjs::Result<String> {
                let data = bytes_of(&input)?;
                let engine = b64_engine(&enc).ok_or_else(|| {
                    throw(
                        &ctx,
                        &format!(
                            "unknown base64 encoding \"{enc}\"; expected std, rawstd, url or rawurl"
                        ),
                    )
                })?;
                Ok(engine.encode(data))
            },
        )?,
    )?;

    v.set(
        "b64decode",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             input: String,
             enc: String,
             format: String|
             -> rquickjs::Result<Value<'js>> {
                let engine = b64_engine(&enc).ok_or_else(|| {
                    throw(
                        &ctx,
                        &format!(
                            "unknown base64 encoding \"{enc}\"; expected std, rawstd, url or rawurl"
                        ),
                    )
                })?;
                let data = engine
                    .decode(input.trim_end_matches(if enc.starts_with("raw") { "=" } else { "" }))
                    .map_err(|e| throw(&ctx, &format!("b64decode: {e}")))?;
                if format == "s" {
                    String::from_utf8_lossy(&data).into_owned().into_js(&ctx)
                } else {
                    data.into_js(&ctx)
                }
            },
        )?,
    )?;

    v.set(
        "digest",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             alg: String,
             input: Value<'js>,
             enc: String|
             -> rquickjs::Result<Value<'js>> {
                let data = bytes_of(&input)?;
                let out = digest(&alg, &data)
                    .ok_or_else(|| throw(&ctx, &format!("unknown hash algorithm \"{alg}\"")))?;
                encode_out(&ctx, out, &enc)
            },
        )?,
    )?;

    v.set(
        "hmac",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, alg: String, secret: Value<'js>, data: Value<'js>, enc: String| -> rquickjs::Result<Value<'js>> {
                let key = bytes_of(&secret)?;
                let data = bytes_of(&data)?;
                let alg_ring = match alg.as_str() {
                    "sha1" => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                    "sha256" => ring::hmac::HMAC_SHA256,
                    "sha384" => ring::hmac::HMAC_SHA384,
                    "sha512" => ring::hmac::HMAC_SHA512,
                    other => return Err(throw(&ctx, &format!("unsupported HMAC algorithm \"{other}\"; expected sha1, sha256, sha384 or sha512"))),
                };
                let k = ring::hmac::Key::new(alg_ring, &key);
                let tag = ring::hmac::sign(&k, &data);
                encode_out(&ctx, tag.as_ref().to_vec(), &enc)
            },
        )?,
    )?;

    v.set(
        "randomBytes",
        Function::new(ctx.clone(), |n: f64| -> Vec<u8> {
            let n = if n.is_finite() && n > 0.0 {
                (n as usize).min(1 << 20)
            } else {
                0
            };
            (0..n).map(|_| fastrand::u8(..)).collect()
        })?,
    )?;

    globals.set("__volley", v)?;
    ctx.eval::<(), _>(PRELUDE)?;
    Ok(())
}

const PRELUDE: &str = r#"
(() => {
  const v = globalThis.__volley;
  const fmt = (args) => args.map((a) => {
    if (typeof a === 'string') return a;
    if (a instanceof Error) return String(a);
    try { const s = JSON.stringify(a); return s === undefined ? String(a) : s; } catch (e) { return String(a); }
  }).join(' ');
  globalThis.console = {
    log: (...a) => v.log('INFO', fmt(a)),
    info: (...a) => v.log('INFO', fmt(a)),
    debug: (...a) => v.log('DEBUG', fmt(a)),
    warn: (...a) => v.log('WARN', fmt(a)),
    error: (...a) => v.log('ERROR', fmt(a)),
  };
  globalThis.open = (path, mode) => {
    const r = v.open(String(path), mode === undefined ? '' : String(mode));
    return typeof r === 'string' ? r : new Uint8Array(r).buffer;
  };
  globalThis.global = globalThis;
})();
"#;

fn b64_engine(enc: &str) -> Option<base64::engine::GeneralPurpose> {
    use base64::engine::general_purpose as gp;
    match enc {
        "std" | "" => Some(gp::STANDARD),
        "rawstd" => Some(gp::STANDARD_NO_PAD),
        "url" => Some(gp::URL_SAFE),
        "rawurl" => Some(gp::URL_SAFE_NO_PAD),
        _ => None,
    }
}

fn digest(alg: &str, data: &[u8]) -> Option<Vec<u8>> {
    use ring::digest as d;
    let algorithm = match alg {
        "md5" => {
            let hex = crate::report::md5_hex(data);
            return (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
        }
        "sha1" => &d::SHA1_FOR_LEGACY_USE_ONLY,
        "sha256" => &d::SHA256,
        "sha384" => &d::SHA384,
        "sha512" => &d::SHA512,
        _ => return None,
    };
    Some(d::digest(algorithm, data).as_ref().to_vec())
}

fn encode_out<'js>(ctx: &Ctx<'js>, out: Vec<u8>, enc: &str) -> rquickjs::Result<Value<'js>> {
    match enc {
        "hex" => out
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_js(ctx),
        "base64" => base64::engine::general_purpose::STANDARD
            .encode(&out)
            .into_js(ctx),
        "base64url" => base64::engine::general_purpose::URL_SAFE
            .encode(&out)
            .into_js(ctx),
        "base64rawurl" => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&out)
            .into_js(ctx),
        "binary" | "" => out.into_js(ctx),
        other => Err(throw(
            ctx,
            &format!(
                "unknown output encoding \"{other}\"; expected hex, base64, base64url, base64rawurl or binary"
            ),
        )),
    }
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
    let name = match tag_pairs.iter().position(|(k, _)| k == "name") {
        Some(i) => tag_pairs.remove(i).1,
        None => url.clone(),
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
    let call = HttpCall {
        method: method_v,
        url: url.clone(),
        headers: hs,
        body,
        timeout,
        keep_body,
    };
    let resp = match suspend(Yield::Http(Box::new(call))) {
        Resume::Http(r) => r,
        _ => {
            state.borrow_mut().stopping = true;
            return Err(throw(ctx, "iteration interrupted"));
        }
    };
    let id = state.borrow_mut().request_id(&method, &name, &tag_pairs);
    let expected = resp.error.is_none() && (200..400).contains(&resp.status);
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
        resp.body.as_slice().into_js(ctx)?
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
    let items: [Value<'js>; 12] = [
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
