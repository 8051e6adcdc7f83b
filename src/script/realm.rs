//! A realm: one QuickJS context shared by up to [`VUS_PER_REALM`] VUs of a
//! worker thread.
//!
//! A context costs about 53 KiB with JavaScript's built-ins alone, and k6's
//! modules as JavaScript add as much again: a context per VU would cost more
//! than Sobek's runtime per VU in k6. So the VUs of a realm share its global
//! object, its built-ins, the natives behind k6's modules and one instance
//! of each of k6's modules, and each VU has its own instance of the
//! script's modules ([`instance`]: compiled once per
//! realm, instantiated per VU) and of a small facade over each k6 module it
//! imports (so `http.get = wrapper` in one VU's init wraps that VU's `http`
//! only). What k6 keeps per VU stays per VU: module-level variables, the
//! default export objects of k6's modules, `__VU`, `__ITER`, `__ENV`,
//! timers, the response callback, the cookie jar, the `randomSeed` stream
//! (a per-VU record the natives find through [`current`](super::current)).
//!
//! Not per VU, unlike k6: properties a script adds to `globalThis` or to a
//! built-in (`Array.prototype.x = …`) are seen by the other VUs of the
//! realm. Scripts assign such things in init, identically in every VU, so
//! sharing them changes nothing for them.
//!
//! A realm never frees a VU's module instances before the realm itself
//! (QuickJS frees modules with their context), so a realm takes
//! [`VUS_PER_REALM`] VUs in its life and is freed when the last of them
//! ends.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use rquickjs::{CatchResultExt, Context, Ctx, Object, Persistent, Runtime};

use super::error::{ScriptError, describe};
use super::instance::{self, Template};
use super::native::{self, Jars};

/// VUs a realm takes in its life: enough that a realm's own cost (its
/// context, k6's modules) is small per VU, few enough that the realm's
/// module list (searched linearly by QuickJS when a VU's imports resolve)
/// stays short.
pub const VUS_PER_REALM: u32 = 256;

/// A context shared by some of a worker's VUs.
pub struct Realm {
    /// The script's `__ENV` as first built: each VU's `__ENV` is a copy
    /// (sharing the strings). Dropped before the context.
    env: RefCell<Option<Persistent<Object<'static>>>>,
    context: Context,
    /// Instances given out so far (each VU's number in the realm).
    given: Cell<u32>,
    /// Whether the natives and the prelude are installed.
    prepared: Cell<bool>,
    /// Compiled modules by name, instantiated per VU.
    templates: RefCell<HashMap<String, Template>>,
    /// The cookie jars scripts create (`new http.CookieJar()`), shared by
    /// the realm's VUs: a jar is freed by a finalizer, which may run while
    /// any of them runs.
    pub jars: Rc<RefCell<Jars>>,
}

impl Realm {
    /// A new context in `rt`; its first VU [`prepare`](Realm::prepare)s it.
    pub fn new(rt: &Runtime) -> Result<Realm, ScriptError> {
        let context = Context::full(rt).map_err(|e| ScriptError::Runtime(e.to_string()))?;
        Ok(Realm {
            env: RefCell::new(None),
            context,
            given: Cell::new(0),
            prepared: Cell::new(false),
            templates: RefCell::default(),
            jars: Rc::new(RefCell::new(Jars::default())),
        })
    }

    /// Installs the natives and the prelude's globals, the first time: run
    /// by a VU that entered its execution (the prelude is JavaScript, run
    /// on the VU's coroutine).
    pub fn prepare(&self, ctx: &Ctx<'_>) -> Result<(), ScriptError> {
        if self.prepared.get() {
            return Ok(());
        }
        native::install(ctx, &self.jars)
            .catch(ctx)
            .map_err(|e| ScriptError::Runtime(describe(&e)))?;
        self.prepared.set(true);
        Ok(())
    }

    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The script's `env` as an object, built the first time: what each
    /// VU's `__ENV` starts as a copy of.
    pub fn env<'js>(
        &self,
        ctx: &Ctx<'js>,
        env: &BTreeMap<String, String>,
    ) -> rquickjs::Result<Object<'js>> {
        if let Some(saved) = self.env.borrow().clone() {
            return saved.restore(ctx);
        }
        let obj = Object::new(ctx.clone())?;
        for (k, v) in env {
            obj.set(k.as_str(), v.as_str())?;
        }
        *self.env.borrow_mut() = Some(Persistent::save(ctx, obj.clone()));
        Ok(obj)
    }

    /// A new VU's instance number, or `None` when the realm has taken all
    /// the VUs it will.
    pub fn admit(&self) -> Option<u32> {
        let n = self.given.get();
        if n >= VUS_PER_REALM {
            return None;
        }
        self.given.set(n + 1);
        Some(n)
    }

    /// The template of module `name`, compiled from `source()` the first
    /// time it is asked for. A syntax error is `ctx`'s pending exception.
    pub fn template(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        source: impl FnOnce() -> Result<std::sync::Arc<str>, String>,
    ) -> rquickjs::Result<Template> {
        if let Some(t) = self.templates.borrow().get(name) {
            return Ok(*t);
        }
        let source =
            source().map_err(|message| rquickjs::Error::new_loading_message(name, message))?;
        let t = instance::compile(ctx, name, &source)?;
        self.templates.borrow_mut().insert(name.to_string(), t);
        Ok(t)
    }
}

/// The name of VU instance `n`'s copy of the module `name`.
pub fn instance_name(name: &str, n: u32) -> String {
    format!("{name}{SUFFIX}{n}")
}

/// What an instance's module name ends with, before its number.
const SUFFIX: &str = "#vu=";

/// A module name without its instance suffix, and the instance number.
pub fn split_name(name: &str) -> (&str, Option<u32>) {
    match name.rsplit_once(SUFFIX) {
        Some((plain, n)) => match n.parse() {
            Ok(n) => (plain, Some(n)),
            Err(_) => (name, None),
        },
        None => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_split_back() {
        let n = instance_name("/s/lib.js", 17);
        assert_eq!(split_name(&n), ("/s/lib.js", Some(17)));
        assert_eq!(split_name("k6/http"), ("k6/http", None));
        assert_eq!(split_name("/s/odd#vu=x.js"), ("/s/odd#vu=x.js", None));
    }
}
