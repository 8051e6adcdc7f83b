//! The native functions behind k6's modules, installed as `__volley` in
//! every realm, and the globals (`open`, `console`, `__ENV`, `__VU`,
//! `__ITER`) set up by the prelude.
//!
//! - this file: the VU's state, lifecycle natives (`check`, `group`,
//!   `sleep`, `k6/execution`, `open`, `SharedArray`, `console`);
//! - `http`: `__volley.request` and `batch`, behind `k6/http`;
//! - `exchange`: one request's hops (cookies, redirects, Digest, samples);
//! - `codec`: base64, digests, HMAC, random bytes (`k6/encoding`,
//!   `k6/crypto`).
//!
//! The natives are installed once per realm (a context several VUs share,
//! see [`realm`](super::realm)) and act for the VU running when called:
//! they find its [`VuState`] through [`current`](super::current) (an
//! `Rc<RefCell<_>>`: a VU and its state live on one coroutine, on one
//! thread). What k6 keeps per VU in JavaScript lives in the VU's record
//! ([`record`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Function, IntoJs, Object, Value};
use tokio::time::Instant;

mod codec;
mod cookies;
mod exchange;
mod handles;
mod html;
mod http;
pub mod record;

pub use cookies::Jars;

use super::host::Host;
use super::sources::Sources;
use super::vu::{Resume, Yield, suspend};
use crate::engine::sink::SampleSink;
use crate::metrics::Sample;
use crate::plan::dynamic::RequestDesc;
use crate::plan::{GroupId, RequestId};

/// Most ids a VU caches per kind; past it the cache starts over.
const MAX_CACHED: usize = 4096;

/// A check as a VU caches it: name, group path, the script's tags.
type CheckKey = (String, String, Vec<(String, String)>);

/// A custom metric series as a VU caches it: metric index, group, tags.
type SeriesKey = (usize, String, Vec<(String, String)>);

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
    check_ids: HashMap<CheckKey, crate::plan::CheckId>,
    /// Custom metrics this runtime declared, by the index scripts hold.
    metrics: Vec<crate::metrics::Metric>,
    /// Custom metric series by (metric index, group, tags).
    series_ids: HashMap<SeriesKey, u32>,
    group_ids: HashMap<String, GroupId>,
    /// Tags the script set with `exec.vu.metrics.tags` (sorted by key):
    /// every later request, check and custom metric sample of the VU
    /// carries them, under its own tags of the same name.
    pub vu_tags: Vec<(String, String)>,
    /// Set when the driver asked the iteration to stop.
    pub stopping: bool,
    /// Set when this iteration called `exec.test.abort()`.
    pub aborting: bool,
    /// When the current open-model iteration was meant to start.
    pub intended: Option<Instant>,
    /// The VU's cookie jar (`http.cookieJar()`), emptied before each
    /// iteration and lifecycle function unless `noCookiesReset`.
    pub jar: crate::engine::http::cookies::CookieJar,
    /// The jars scripts created with `new http.CookieJar()`: the realm's.
    pub jars: Rc<RefCell<Jars>>,
    /// The statuses a response callback set with
    /// `http.setResponseCallback` expects (`None`: 200–399, as k6).
    pub default_expected: Option<Vec<(u16, u16)>>,
    /// The VU's own JavaScript values in the realm it shares (see
    /// [`record`]): `__ENV`, timers, the `randomSeed` stream.
    pub record: Option<rquickjs::Persistent<Object<'static>>>,
}

impl VuState {
    pub fn new(
        stage: Stage,
        vu: u64,
        sources: Arc<Sources>,
        script_dir: std::path::PathBuf,
        host: Option<Arc<Host>>,
        sink: Option<SampleSink>,
        jars: Rc<RefCell<Jars>>,
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
            metrics: Vec::new(),
            series_ids: HashMap::new(),
            group_ids: HashMap::new(),
            vu_tags: Vec::new(),
            stopping: false,
            aborting: false,
            intended: None,
            jar: Default::default(),
            jars,
            default_expected: None,
            record: None,
        }
    }

    pub(super) fn push(&mut self, sample: Sample) {
        if let Some(sink) = &mut self.sink {
            sink.push(sample);
        }
    }

    /// The scenario samples are tagged with: setup and teardown use the
    /// first scenario with a `::setup`/`::teardown` group, as k6 tags them.
    pub(super) fn request_id(
        &mut self,
        method: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> RequestId {
        let Some(host) = &self.host else {
            return RequestId(crate::plan::dynamic::UNKNOWN);
        };
        let merged;
        let tags = if self.vu_tags.is_empty() {
            tags
        } else {
            merged = with_vu_tags(&self.vu_tags, tags.to_vec());
            &merged
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.scenario, &self.group, method, name, tags).hash(&mut h);
        if self.request_ids.len() >= MAX_CACHED {
            // A script making endless distinct requests: keep the cache
            // bounded (the catalog answers the same ids again).
            self.request_ids.clear();
        }
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

pub(super) type State = Rc<RefCell<VuState>>;

/// A script's tags object (`{k: v}`, values stringified), sorted by key.
pub(super) fn tag_pairs(tags: Option<Value<'_>>) -> rquickjs::Result<Vec<(String, String)>> {
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

/// `tags` with the VU's own (`exec.vu.metrics.tags`) added under them:
/// a sample's own tag wins over the VU's of the same name.
pub(super) fn with_vu_tags(
    vu: &[(String, String)],
    mut tags: Vec<(String, String)>,
) -> Vec<(String, String)> {
    if vu.is_empty() {
        return tags;
    }
    for (k, v) in vu {
        if !tags.iter().any(|(t, _)| t == k) {
            tags.push((k.clone(), v.clone()));
        }
    }
    tags.sort();
    tags
}

pub(super) fn throw(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_message(ctx, message)
}

/// Bytes from a string or an array of byte values (binary data reaches the
/// natives as plain arrays).
pub(super) fn bytes_of(v: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
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

/// The running VU's state: natives run only on a VU's coroutine.
pub(super) fn current_vu(ctx: &Ctx<'_>) -> rquickjs::Result<State> {
    super::current::state().ok_or_else(|| throw(ctx, "no VU is running"))
}

/// Installs `__volley` and the prelude's globals into a realm's context
/// (`ctx`), once: the natives act for the VU running when called.
pub fn install<'js>(ctx: &Ctx<'js>, jars: &Rc<RefCell<Jars>>) -> rquickjs::Result<()> {
    let v = Object::new(ctx.clone())?;
    let globals = ctx.globals();

    http::install(ctx, &v)?;
    html::install(ctx, &v)?;
    cookies::install(ctx, &v, jars)?;
    codec::install(ctx, &v)?;
    record::install(ctx, &v)?;

    v.set(
        "sleep",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, secs: f64| -> rquickjs::Result<()> {
                let s = current_vu(&ctx)?;
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

    v.set(
        "check",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  name: String,
                  ok: bool,
                  tags: Opt<Value<'js>>|
                  -> rquickjs::Result<()> {
                let s = current_vu(&ctx)?;
                // Converting tags may run the script's getters: before the
                // state is borrowed.
                let tags = tag_pairs(tags.0)?;
                let mut st = s.borrow_mut();
                if st.stage == Stage::Init {
                    return Err(throw(&ctx, "check() is not allowed in the init context"));
                }
                let tags = with_vu_tags(&st.vu_tags, tags);
                let Some(host) = st.host.clone() else {
                    return Ok(());
                };
                let key = (name, st.group.clone(), tags);
                let id = match st.check_ids.get(&key) {
                    Some(id) => *id,
                    None => {
                        let id = host
                            .plan
                            .dynamic
                            .check_id(&key.0, st.scenario, &key.1, &key.2);
                        if st.check_ids.len() >= MAX_CACHED {
                            st.check_ids.clear();
                        }
                        st.check_ids.insert(key, id);
                        id
                    }
                };
                st.push(Sample::Check { check: id, ok });
                Ok(())
            },
        )?,
    )?;

    v.set(
        "metricDeclare",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String, kind: String, is_time: bool| -> rquickjs::Result<usize> {
                let s = current_vu(&ctx)?;
                let mut st = s.borrow_mut();
                if st.stage != Stage::Init {
                    return Err(throw(&ctx, "metrics must be declared in the init context (at the top level of the script)"));
                }
                let kind = match kind.as_str() {
                    "counter" => crate::metrics::MetricKind::Counter,
                    "gauge" => crate::metrics::MetricKind::Gauge,
                    "rate" => crate::metrics::MetricKind::Rate,
                    _ => crate::metrics::MetricKind::Trend,
                };
                let unit = if is_time { crate::metrics::Unit::Time } else { crate::metrics::Unit::Default };
                let metric = crate::metrics::catalog::custom(&name, kind, unit).map_err(|e| throw(&ctx, &e))?;
                st.metrics.push(metric);
                Ok(st.metrics.len() - 1)
            },
        )?,
    )?;

    v.set(
        "metricAdd",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  index: usize,
                  value: f64,
                  tags: Opt<Value<'js>>|
                  -> rquickjs::Result<()> {
                let s = current_vu(&ctx)?;
                let tags = tag_pairs(tags.0)?;
                let mut st = s.borrow_mut();
                if st.stage == Stage::Init {
                    return Err(throw(
                        &ctx,
                        "adding to metrics in the init context is not supported",
                    ));
                }
                let Some(metric) = st.metrics.get(index).copied() else {
                    return Err(throw(&ctx, "unknown metric"));
                };
                let tags = with_vu_tags(&st.vu_tags, tags);
                let Some(host) = st.host.clone() else {
                    return Ok(());
                };
                let key = (index, st.group.clone(), tags);
                let series = match st.series_ids.get(&key) {
                    Some(id) => *id,
                    None => {
                        let id =
                            host.plan
                                .dynamic
                                .series_id(metric.name(), st.scenario, &key.1, &key.2);
                        if st.series_ids.len() >= MAX_CACHED {
                            st.series_ids.clear();
                        }
                        st.series_ids.insert(key, id);
                        id
                    }
                };
                st.push(Sample::Custom { series, value });
                Ok(())
            },
        )?,
    )?;

    v.set(
        "groupStart",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<()> {
                let s = current_vu(&ctx)?;
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

    v.set(
        "groupEnd",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| -> rquickjs::Result<()> {
            let s = current_vu(&ctx)?;
            let mut st = s.borrow_mut();
            let Some((started, len)) = st.group_starts.pop() else {
                return Ok(());
            };
            let path = st.group.clone();
            st.group.truncate(len);
            let Some(host) = st.host.clone() else {
                return Ok(());
            };
            let id = match st.group_ids.get(&path) {
                Some(id) => *id,
                None => {
                    let id = host.plan.dynamic.group_id(&path, st.scenario);
                    if st.group_ids.len() >= MAX_CACHED {
                        st.group_ids.clear();
                    }
                    st.group_ids.insert(path, id);
                    id
                }
            };
            st.push(Sample::Group {
                group: id,
                duration: started.elapsed(),
            });
            Ok(())
        })?,
    )?;

    v.set(
        "state",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<Object<'js>> {
                let s = current_vu(&ctx)?;
                // Read everything first: setting properties may run the
                // script's setters, which must not meet a borrowed state.
                let (vu, iter, in_scenario, in_test, host, scenario, group) = {
                    let st = s.borrow();
                    if st.stage == Stage::Init {
                        return Err(throw(
                            &ctx,
                            "k6/execution's vu and scenario are not available in the init context",
                        ));
                    }
                    (
                        st.vu,
                        st.iter,
                        st.iter_in_scenario,
                        st.iteration_in_test,
                        st.host.clone(),
                        st.scenario,
                        st.group.clone(),
                    )
                };
                let o = Object::new(ctx.clone())?;
                o.set("vu", vu as f64)?;
                o.set("group", group)?;
                o.set("iter", iter as f64)?;
                o.set("iterInScenario", in_scenario as f64)?;
                o.set("iterationInTest", in_test as f64)?;
                if let Some(host) = &host {
                    let sc = host.plan.scenarios.get(scenario);
                    o.set("scenario", sc.map(|s| s.name.clone()).unwrap_or_default())?;
                    o.set(
                        "executor",
                        sc.map(|s| s.executor.kind().to_string())
                            .unwrap_or_default(),
                    )?;
                    let elapsed = host.test_run_duration();
                    o.set("elapsedMs", ms(elapsed))?;
                    let (completed, interrupted, active, initialised) = host.instance_counts();
                    o.set("iterationsCompleted", completed as f64)?;
                    o.set("iterationsInterrupted", interrupted as f64)?;
                    o.set("vusActive", active as f64)?;
                    o.set("vusInitialized", initialised as f64)?;
                    // k6: the scenario's start, in ms since the Unix epoch.
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, ms);
                    let offset = sc.map_or(Duration::ZERO, |s| s.start_time);
                    o.set("scenarioStart", now_ms - ms(elapsed) + ms(offset))?;
                }
                Ok(o)
            },
        )?,
    )?;

    v.set(
        "abort",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, message: String| -> rquickjs::Result<()> {
                let s = current_vu(&ctx)?;
                let mut st = s.borrow_mut();
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
                st.aborting = true;
                // The iteration ends here but still counts, as in k6; the
                // run stops through the host.
                Err(throw(&ctx, "test aborted"))
            },
        )?,
    )?;

    v.set(
        "markFailed",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, message: String| -> rquickjs::Result<()> {
                if let Some(host) = &current_vu(&ctx)?.borrow().host {
                    eprintln!("test marked as failed: {message}");
                    host.mark_failed();
                }
                Ok(())
            },
        )?,
    )?;

    v.set(
        "open",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, path: String, mode: Opt<String>| -> rquickjs::Result<Value<'js>> {
                let s = current_vu(&ctx)?;
                let st = s.borrow();
                if st.stage != Stage::Init {
                    return Err(throw(&ctx, "open() can only be called in the init context (outside functions the script exports)"));
                }
                let p = Path::new(&path);
                let full = if p.is_absolute() { p.to_path_buf() } else { st.script_dir.join(p) };
                let bytes = st.sources.file(&full).map_err(|e| throw(&ctx, &e))?;
                if mode.0.as_deref() == Some("b") {
                    // An ArrayBuffer, not an array of numbers (16 bytes a byte).
                    Ok(rquickjs::ArrayBuffer::new(ctx.clone(), bytes.as_slice().to_vec())?.into_value())
                } else {
                    String::from_utf8_lossy(&bytes).into_owned().into_js(&ctx)
                }
            },
        )?,
    )?;

    v.set(
        "shared",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String, build: Function<'js>| -> rquickjs::Result<String> {
                let s = current_vu(&ctx)?;
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
        "textSummary",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<String> {
                Ok(current_vu(&ctx)?
                    .borrow()
                    .host
                    .as_ref()
                    .and_then(|h| h.summary_text().map(str::to_string))
                    .unwrap_or_default())
            },
        )?,
    )?;

    v.set(
        "options",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<Value<'js>> {
                let s = current_vu(&ctx)?;
                let json = s
                    .borrow()
                    .host
                    .as_ref()
                    .map(|h| h.script.options.to_string())
                    .unwrap_or_else(|| "{}".into());
                ctx.json_parse(json)
            },
        )?,
    )?;

    v.set(
        "log",
        Function::new(ctx.clone(), |level: String, message: String| {
            eprintln!("{level}: {message}");
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
    return r;
  };
  globalThis.global = globalThis;

  // WebCrypto's randomness, which k6 has as the global `crypto`:
  // randomUUID() (version 4) and getRandomValues(); not `subtle`.
  if (globalThis.crypto === undefined) {
    const hex = (b) => b.toString(16).padStart(2, '0');
    const integers = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
      Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
    globalThis.crypto = {
      getRandomValues(a) {
        if (!integers.some((T) => a instanceof T)) {
          throw new TypeError('crypto.getRandomValues: expected an integer typed array');
        }
        if (a.byteLength > 65536) {
          throw new RangeError(`crypto.getRandomValues: ${a.byteLength} bytes asked for, at most 65536`);
        }
        new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(v.randomBytes(a.byteLength));
        return a;
      },
      randomUUID() {
        const b = v.randomBytes(16);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        const h = b.map(hex).join('');
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      },
    };
  }

  // What k6 keeps per VU, for VUs sharing this realm: the globals read the
  // running VU's record (see native/record.rs).
  globalThis.__volley_newRecord = (env) => ({ env: Object.assign({}, env), timers: [], nextTimer: 1, pending: [], random: undefined });
  const accessor = (name, get, set) => Object.defineProperty(globalThis, name, { get, set, configurable: true });
  accessor('__VU', () => v.vuId(), undefined);
  accessor('__ITER', () => v.iter(), undefined);
  accessor('__ENV', () => v.vu().env, (env) => { v.vu().env = env; });

  // Timers (k6/timers, also globals in k6): a queue by due time per VU; the
  // VU fires them after the iteration's function returned, sleeping until
  // each is due, and the iteration ends when none is left (as k6's event
  // loop does). `__volley_timerStep` fires one and says if more remain.
  const add = (fn, ms, args, repeat) => {
    if (typeof fn !== 'function') throw new TypeError('a timer needs a function');
    const r = v.vu();
    const delay = Math.max(0, Number(ms) || 0);
    const id = r.nextTimer++;
    r.timers.push({ id, due: Date.now() + delay, delay, fn, args, repeat });
    r.timers.sort((a, b) => a.due - b.due || a.id - b.id);
    return id;
  };
  const clear = (id) => {
    const timers = v.vu().timers;
    const i = timers.findIndex((t) => t.id === id);
    if (i >= 0) timers.splice(i, 1);
  };
  globalThis.setTimeout = (fn, ms, ...args) => add(fn, ms, args, false);
  globalThis.setInterval = (fn, ms, ...args) => add(fn, ms, args, true);
  globalThis.clearTimeout = clear;
  globalThis.clearInterval = clear;
  globalThis.__volley_loopStep = () => {
    const r = v.vu();
    // Queued http.asyncRequest calls first, all at once: the VU waits
    // for them as k6's event loop would.
    if (r.pending.length > 0) {
      const queued = r.pending.splice(0);
      let raws;
      try {
        raws = v.batch(queued.map((q) => q.entry), queued.map((q) => q.out));
      } catch (e) {
        if (v.stopping()) throw e;
        // Refused before anything was sent: each alone says which.
        for (const q of queued) {
          try { q.resolve(v.batch([q.entry], [q.out])[0]); } catch (one) {
            if (v.stopping()) throw one;
            q.reject(one);
          }
        }
        return true;
      }
      queued.forEach((q, i) => q.resolve(raws[i]));
      return true;
    }
    const timers = r.timers;
    if (timers.length === 0) return false;
    const t = timers[0];
    const wait = t.due - Date.now();
    if (wait > 0) v.sleep(wait / 1000);
    const i = timers.indexOf(t);
    if (i < 0) return timers.length > 0;
    timers.splice(i, 1);
    if (t.repeat) {
      t.due = Math.max(t.due + Math.max(t.delay, 1), Date.now());
      timers.push(t);
      timers.sort((a, b) => a.due - b.due || a.id - b.id);
    }
    t.fn(...t.args);
    return timers.length > 0;
  };
  globalThis.__volley_timersClear = () => { const r = v.vu(); r.timers.length = 0; r.pending.length = 0; };
})();
"#;

pub use http::error_code;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
