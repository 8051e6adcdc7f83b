//! What a JavaScript VU costs in memory under each way of hosting it in
//! QuickJS, measured: the numbers behind the "JavaScript" decision in
//! ARCHITECTURE.md.
//!
//! ```sh
//! cargo run --release --example js_contexts -- own 1000 modules
//! cargo run --release --example js_contexts -- shared 1000 modules
//! cargo run --release --example js_contexts -- shared 1000 bare
//! cargo run --release --example js_contexts -- realm 1000 modules
//! ```
//!
//! `own`: a runtime per VU, each with a full context (Volley at first);
//! `shared`: one runtime, a context per VU (Volley next); `realm`: one
//! runtime and one context, k6's modules loaded once, the script compiled
//! once and instantiated per VU (Volley now, `src/script/realm.rs`; without
//! its per-VU facades and records). `modules`: each context loads
//! k6's `k6` and `k6/http` modules (Volley's, from `src/script/js`) and a
//! two-line script, as `scripts/k6-sleep.js` does; `bare`: the context
//! alone. Prints the resident memory added per VU. The natives behind the
//! modules are a stub: this measures the JavaScript side only.

use rquickjs::loader::{BuiltinResolver, ImportAttributes, Loader};
use rquickjs::module::Declared;
use rquickjs::{Context, Ctx, Module, Runtime};
use volley::script::instance;

const K6: &str = include_str!("../src/script/js/k6.js");
const HTTP: &str = include_str!("../src/script/js/http.js");
const SCRIPT: &str = "import http from 'k6/http';\nimport { sleep } from 'k6';\n\
                      export default function () { http.get('http://127.0.0.1/'); sleep(1); }\n";
const STUB: &str = "globalThis.__volley = new Proxy({}, { get: () => () => 0 }); undefined";

/// Gives `k6` and `k6/http` to every context that asks (rquickjs's
/// `BuiltinLoader` hands each source out once per runtime).
struct K6Modules;

impl Loader for K6Modules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let source = if name == "k6" { K6 } else { HTTP };
        Module::declare(ctx.clone(), name, source)
    }
}

fn runtime() -> anyhow::Result<Runtime> {
    let rt = Runtime::new()?;
    let resolver = BuiltinResolver::default()
        .with_module("k6")
        .with_module("k6/http");
    rt.set_loader(resolver, K6Modules);
    Ok(rt)
}

fn context(rt: &Runtime, modules: bool, vu: usize) -> anyhow::Result<Context> {
    let ctx = Context::full(rt)?;
    if modules {
        ctx.with(|ctx| -> anyhow::Result<()> {
            let caught = |e: rquickjs::Error| anyhow::anyhow!("{e}: {:?}", ctx.catch());
            ctx.eval::<(), _>(STUB).map_err(caught)?;
            let module =
                Module::declare(ctx.clone(), format!("script-{vu}"), SCRIPT).map_err(caught)?;
            let (_module, promise) = module.eval().map_err(caught)?;
            promise.finish::<()>().map_err(caught)
        })?;
    }
    Ok(ctx)
}

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("empty VmRSS line"))?
        .parse()?)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: js_contexts own|shared VUS modules|bare, or js_contexts realm VUS modules";
    let (Some(mode), Some(vus), Some(load)) = (args.first(), args.get(1), args.get(2)) else {
        anyhow::bail!(usage);
    };
    let vus: usize = vus.parse()?;
    let modules = match load.as_str() {
        "modules" => true,
        "bare" => false,
        _ => anyhow::bail!(usage),
    };
    let before = rss_kib()?;
    let mut runtimes = Vec::new();
    let mut contexts = Vec::new();
    match mode.as_str() {
        "own" => {
            for vu in 0..vus {
                let rt = runtime()?;
                contexts.push(context(&rt, modules, vu)?);
                runtimes.push(rt);
            }
        }
        "shared" => {
            let rt = runtime()?;
            for vu in 0..vus {
                contexts.push(context(&rt, modules, vu)?);
            }
            runtimes.push(rt);
        }
        "realm" if modules => {
            let rt = runtime()?;
            let ctx = Context::full(&rt)?;
            ctx.with(|ctx| -> anyhow::Result<()> {
                let caught = |e: rquickjs::Error| anyhow::anyhow!("{e}: {:?}", ctx.catch());
                ctx.eval::<(), _>(STUB).map_err(caught)?;
                let template = instance::compile(&ctx, "script", SCRIPT).map_err(caught)?;
                for vu in 0..vus {
                    let module = instance::instantiate(&ctx, template, &format!("script#vu={vu}"))
                        .map_err(caught)?;
                    let (_module, promise) = module.eval().map_err(caught)?;
                    promise.finish::<()>().map_err(caught)?;
                }
                Ok(())
            })?;
            contexts.push(ctx);
            runtimes.push(rt);
        }
        _ => anyhow::bail!(usage),
    }
    let per_vu = (rss_kib()? - before) as f64 / vus.max(1) as f64;
    println!("{mode}: {vus} VUs, {load}: {per_vu:.1} KiB of RSS per VU");
    Ok(())
}
