//! Module resolution: k6's built-in modules, the helper libraries scripts
//! import by URL, and the script's own local modules.
//!
//! - `k6`, `k6/http`, `k6/html`, `k6/execution`, `k6/encoding`,
//!   `k6/crypto`, `k6/data`, `k6/metrics` are Volley's ES modules in `js/`,
//!   over the natives.
//! - `https://jslib.k6.io/k6-utils/<version>/index.js` and
//!   `https://jslib.k6.io/k6-summary/<version>/index.js` resolve to Volley's
//!   built-in copies: machines running tests are often offline. Any other
//!   remote import is refused, naming the URL and how to vendor it.
//! - `./x.js`, `../x.js` and absolute paths are read from disk (once per
//!   process, then shared by every VU) relative to the importing module.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Module, Result};

use super::current;
use super::instance;
use super::realm::{instance_name, split_name};
use super::sources::{Sources, normalize};

/// Built-in module names and their sources.
const BUILTINS: [(&str, &str); 12] = [
    ("k6", include_str!("js/k6.js")),
    ("k6/timers", include_str!("js/timers.js")),
    ("k6/http", include_str!("js/http.js")),
    ("k6/html", include_str!("js/html.js")),
    ("k6/execution", include_str!("js/execution.js")),
    ("k6/encoding", include_str!("js/encoding.js")),
    ("k6/crypto", include_str!("js/crypto.js")),
    ("k6/data", include_str!("js/data.js")),
    ("k6/metrics", include_str!("js/metrics.js")),
    ("volley:form", include_str!("js/form.js")),
    ("volley:k6-utils", include_str!("js/k6-utils.js")),
    ("volley:k6-summary", include_str!("js/k6-summary.js")),
];

/// k6 modules Volley does not have yet, with what to do instead.
const MISSING: [(&str, &str); 3] = [
    ("k6/ws", "WebSockets are not supported"),
    ("k6/net/grpc", "gRPC is not supported"),
    ("k6/browser", "browser tests are not supported"),
];

fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The resolver and loader installed in every worker runtime of a script.
///
/// k6's modules are loaded once per realm under their own names; a VU
/// imports them through a facade of its own (`k6/http#vu=3`). The
/// script's modules are instances per VU (`/s/lib.js#vu=3`) of templates
/// compiled once per realm (see [`realm`](super::realm)). Imports resolve
/// for the VU running, whose init (or dynamic `import()`) loads them.
pub struct ScriptModules {
    pub sources: Arc<Sources>,
}

/// A facade over k6 module `name` (whose code is `source`) for one VU: the
/// same exports, and a default export object of the VU's own, if the
/// module has a default export.
fn facade_source(name: &str, source: &str) -> String {
    let mut facade = format!("export * from '{name}';\n");
    if source.contains("export default") {
        facade.push_str(&format!(
            "import d from '{name}';\n\
             export default Object.create(Object.getPrototypeOf(d), Object.getOwnPropertyDescriptors(d));\n"
        ));
    }
    facade
}

/// The name `specifier`, imported from the module named `base` by the VU
/// with instance number `vu`, loads.
pub fn resolve_for(
    base: &str,
    specifier: &str,
    vu: Option<u32>,
) -> std::result::Result<String, String> {
    let (base, base_vu) = split_name(base);
    let target = resolve_specifier(base, specifier)?;
    // A facade or a k6 module importing a k6 module: the realm's one.
    if builtin(&target).is_some() && (builtin(base).is_some() || base_vu.is_none() && vu.is_none())
    {
        return Ok(target);
    }
    match base_vu.or(vu) {
        Some(n) => Ok(instance_name(&target, n)),
        None => Ok(target),
    }
}

/// Where `specifier`, imported from the module named `base`, points.
pub fn resolve_specifier(base: &str, specifier: &str) -> std::result::Result<String, String> {
    if builtin(specifier).is_some() {
        return Ok(specifier.to_string());
    }
    if let Some((_, hint)) = MISSING.iter().find(|(n, _)| *n == specifier) {
        return Err(format!(
            "module \"{specifier}\" is not supported by Volley yet: {hint}"
        ));
    }
    if specifier.starts_with("k6/x/") {
        return Err(format!(
            "module \"{specifier}\" is a k6 extension (xk6); Volley does not load extensions"
        ));
    }
    if specifier.starts_with("https://jslib.k6.io/k6-utils/") {
        return Ok("volley:k6-utils".to_string());
    }
    if specifier.starts_with("https://jslib.k6.io/k6-summary/") {
        return Ok("volley:k6-summary".to_string());
    }
    if specifier.starts_with("http://") || specifier.starts_with("https://") {
        return Err(format!(
            "remote module \"{specifier}\" cannot be fetched: Volley runs offline. Download it next to the script and import it by a relative path (import ... from './vendor/name.js')"
        ));
    }
    let spec = specifier.strip_prefix("file://").unwrap_or(specifier);
    if !(spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/')) {
        return Err(format!(
            "module \"{specifier}\" is neither a k6 module nor a path; local modules are imported by a path starting with ./ or ../"
        ));
    }
    let joined = if spec.starts_with('/') {
        PathBuf::from(spec)
    } else {
        let dir = Path::new(base).parent().unwrap_or(Path::new("."));
        dir.join(spec)
    };
    Ok(normalize(&joined).to_string_lossy().into_owned())
}

impl Resolver for ScriptModules {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<String> {
        let vu = current::running().map(|r| r.instance);
        resolve_for(base, name, vu).map_err(|message| {
            let _ = rquickjs::Exception::throw_message(ctx, &message);
            Error::new_resolving_message(base, name, message)
        })
    }
}

impl Loader for ScriptModules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<Module<'js, Declared>> {
        let (plain, vu) = split_name(name);
        let Some(_) = vu else {
            // One of k6's modules, once per realm.
            return match builtin(plain) {
                Some(source) => Module::declare(ctx.clone(), plain, source),
                None => Err(Error::new_loading_message(
                    name,
                    "only k6's modules are shared by a realm's VUs",
                )),
            };
        };
        let Some(realm) = current::running().map(|r| Rc::clone(&r.realm)) else {
            return Err(Error::new_loading_message(name, "no VU is loading modules"));
        };
        let template = if let Some(source) = builtin(plain) {
            let facade = format!("{plain}#facade");
            realm.template(ctx, &facade, || Ok(facade_source(plain, source).into()))?
        } else {
            realm.template(ctx, plain, || self.sources.module(Path::new(plain)))?
        };
        instance::instantiate(ctx, template, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_resolve_as_k6_does() {
        assert_eq!(
            resolve_specifier("/s/main.js", "k6/http").as_deref(),
            Ok("k6/http")
        );
        assert_eq!(
            resolve_specifier("/s/main.js", "./lib/a.js").as_deref(),
            Ok("/s/lib/a.js")
        );
        assert_eq!(
            resolve_specifier("/s/lib/a.js", "../b.js").as_deref(),
            Ok("/s/b.js")
        );
        assert_eq!(
            resolve_specifier("/s/main.js", "https://jslib.k6.io/k6-utils/1.4.0/index.js")
                .as_deref(),
            Ok("volley:k6-utils")
        );
        let remote = resolve_specifier("/s/main.js", "https://example.com/x.js").unwrap_err();
        assert!(remote.contains("https://example.com/x.js") && remote.contains("relative path"));
        assert!(resolve_specifier("/s/main.js", "lodash").is_err());
        assert!(
            resolve_specifier("/s/main.js", "k6/ws")
                .unwrap_err()
                .contains("not supported")
        );
    }

    #[test]
    fn a_vu_imports_its_own_instances_and_facades() {
        let main = instance_name("/s/main.js", 3);
        assert_eq!(
            resolve_for(&main, "./lib.js", Some(3)).as_deref(),
            Ok("/s/lib.js#vu=3")
        );
        assert_eq!(
            resolve_for(&main, "k6/http", Some(3)).as_deref(),
            Ok("k6/http#vu=3")
        );
        // The facade imports the realm's one k6/http.
        assert_eq!(
            resolve_for("k6/http#vu=3", "k6/http", Some(3)).as_deref(),
            Ok("k6/http")
        );
        // Dynamic import() resolves from the code's file: the VU running.
        assert_eq!(
            resolve_for("/s/main.js", "./lib.js", Some(4)).as_deref(),
            Ok("/s/lib.js#vu=4")
        );
        assert_eq!(
            resolve_for(
                &main,
                "https://jslib.k6.io/k6-utils/1.4.0/index.js",
                Some(3)
            )
            .as_deref(),
            Ok("volley:k6-utils#vu=3")
        );
    }
}
