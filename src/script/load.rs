//! Loading a script: its init context runs once (`__VU = 0`), in a
//! runtime of its own on a coroutine of the calling thread, to read
//! `options` and what it exports.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use rquickjs::{CatchResultExt, Value};

use super::coroutine::{self, Resume, Yield};
use super::current;
use super::error::ScriptError;
use super::execution::with_context;
use super::host::Script;
use super::native::Stage;
use super::sources::{MAX_SOURCE, Sources, normalize};
use super::vu::{self, INIT_TIME_LIMIT, Spawn, describe};
use super::worker::WorkerRuntime;

/// Reads the script's `options` and exports by running its init context
/// once, with `__VU = 0`.
pub fn load(path: &Path, env: BTreeMap<String, String>) -> Result<Script, ScriptError> {
    let meta = std::fs::metadata(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_SOURCE {
        return Err(ScriptError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_SOURCE,
        });
    }
    let abs = std::path::absolute(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let path = normalize(&abs);
    let sources = Arc::new(Sources::default());
    sources
        .module(&path)
        .map_err(|e| ScriptError::Init(e.to_string()))?;
    let script = Script {
        path,
        exports: Vec::new(),
        options: serde_json::Value::Object(serde_json::Map::new()),
        env,
        sources,
    };
    read_options(script)
}

/// The exports and `options` the init context found.
type OptionsOut = Arc<Mutex<Option<(Vec<String>, serde_json::Value)>>>;

/// Runs the init context once (`__VU = 0`) and reads `options` and the
/// exported names.
pub fn read_options(mut script: Script) -> Result<Script, ScriptError> {
    let worker = Rc::new(WorkerRuntime::new(&script.sources)?);
    let spawn = Spawn {
        script: Arc::new(script.clone()),
        host: None,
        stage: Stage::Init,
        vu: 0,
        sink: None,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let result: OptionsOut = Arc::default();
    let out = Arc::clone(&result);
    let mut co = vu::coroutine(move || options_body(spawn, out));
    let mut y = coroutine::resume(&mut co, Resume::Start(worker));
    // A long init gives the thread back now and then; nothing else waits.
    while let Some(Yield::Preempted) = y {
        y = coroutine::resume(&mut co, Resume::Continue);
    }
    if let Some(Yield::Ready(Err(e))) = y {
        return Err(e);
    }
    while !co.is_done() {
        let _ = coroutine::resume(&mut co, Resume::Stop);
    }
    let taken = result.lock().unwrap_or_else(PoisonError::into_inner).take();
    let (exports, options) =
        taken.ok_or_else(|| ScriptError::Init("the init context did not finish".into()))?;
    script.exports = exports;
    script.options = options;
    Ok(script)
}

fn options_body(mut s: Spawn, out: OptionsOut) -> Yield {
    let Some(worker) = coroutine::started() else {
        return Yield::Closed;
    };
    let (realm, instance, _hosted) = match worker.join() {
        Ok(c) => c,
        Err(e) => return Yield::Ready(Err(e)),
    };
    let state = vu::vu_state(&mut s, &realm);
    let deadline = std::time::Instant::now() + INIT_TIME_LIMIT;
    let should_stop = Box::new(move || std::time::Instant::now() > deadline);
    let running = current::Running {
        should_stop,
        state: Rc::clone(&state),
        realm: Rc::clone(&realm),
        instance,
    };
    let r = with_context(realm.context(), |ctx| -> Result<(), ScriptError> {
        let _entered = vu::enter(&ctx, running);
        let ns = vu::init(&ctx, &state, &s.script, instance)?;
        let mut exports = Vec::new();
        for k in ns.keys::<String>() {
            exports.push(k.map_err(|e| ScriptError::Init(e.to_string()))?);
        }
        let options = match ns.get::<_, Value>("options") {
            Ok(v) if v.is_object() => {
                let text = ctx
                    .json_stringify(v)
                    .catch(&ctx)
                    .map_err(|e| ScriptError::Options(format!("options: {}", describe(&e))))?
                    .map(|s| s.to_string())
                    .transpose()
                    .map_err(|e| ScriptError::Options(e.to_string()))?
                    .unwrap_or_else(|| "{}".into());
                serde_json::from_str(&text)
                    .map_err(|e| ScriptError::Options(format!("options: {e}")))?
            }
            _ => serde_json::Value::Object(serde_json::Map::new()),
        };
        *out.lock().unwrap_or_else(PoisonError::into_inner) = Some((exports, options));
        Ok(())
    });
    match r {
        Ok(()) => Yield::Ready(Ok(())),
        Err(e) => Yield::Ready(Err(e)),
    }
}
