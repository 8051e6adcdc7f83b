//! Module resolution: k6's built-in modules, the helper libraries scripts
//! import by URL, and the script's own local modules.
//!
//! - `k6`, `k6/http`, `k6/execution`, `k6/encoding`, `k6/crypto`,
//!   `k6/data`, `k6/metrics` are Volley's ES modules in `js/`, over the
//!   natives.
//! - `https://jslib.k6.io/k6-utils/<version>/index.js` and
//!   `https://jslib.k6.io/k6-summary/<version>/index.js` resolve to Volley's
//!   built-in copies: machines running tests are often offline. Any other
//!   remote import is refused, naming the URL and how to vendor it.
//! - `./x.js`, `../x.js` and absolute paths are read from disk (once per
//!   process, then shared by every VU) relative to the importing module.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Module, Result};

use super::sources::{Sources, normalize};

/// Built-in module names and their sources.
const BUILTINS: [(&str, &str); 10] = [
    ("k6", include_str!("js/k6.js")),
    ("k6/timers", include_str!("js/timers.js")),
    ("k6/http", include_str!("js/http.js")),
    ("k6/execution", include_str!("js/execution.js")),
    ("k6/encoding", include_str!("js/encoding.js")),
    ("k6/crypto", include_str!("js/crypto.js")),
    ("k6/data", include_str!("js/data.js")),
    ("k6/metrics", include_str!("js/metrics.js")),
    ("volley:k6-utils", include_str!("js/k6-utils.js")),
    ("volley:k6-summary", include_str!("js/k6-summary.js")),
];

/// k6 modules Volley does not have yet, with what to do instead.
const MISSING: [(&str, &str); 4] = [
    (
        "k6/html",
        "parse the body with a regular expression or findBetween()",
    ),
    ("k6/ws", "WebSockets are not supported"),
    ("k6/net/grpc", "gRPC is not supported"),
    ("k6/browser", "browser tests are not supported"),
];

fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The resolver and loader installed in every runtime of a script.
pub struct ScriptModules {
    pub sources: Arc<Sources>,
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
        resolve_specifier(base, name).map_err(|message| {
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
        if let Some(source) = builtin(name) {
            return Module::declare(ctx.clone(), name, source);
        }
        match self.sources.module(Path::new(name)) {
            Ok(source) => Module::declare(ctx.clone(), name, source.as_bytes()),
            Err(message) => Err(Error::new_loading_message(name, message)),
        }
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
}
