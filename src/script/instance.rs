//! A script's modules compiled once per realm and instantiated once per VU.
//!
//! The VUs of a realm share its context (see [`realm`](super::realm)), yet
//! each has its own instance of the script's modules, as in k6 where every
//! VU evaluates the script in a runtime of its own: module-level variables
//! are per VU. A module is compiled once per realm into a [`Template`]
//! (never linked, never evaluated) and [`instantiate`]d for each VU under
//! a name of its own (`JS_CloneModule`, Volley's patch to QuickJS:
//! `vendor/rquickjs-sys/PATCHES.md`). Instances share the template's
//! compiled code: a VU pays for its closures and variables, not for
//! another copy of the bytecode. Error positions name the template's file
//! (the code's own debug information), never the instance's name.
//!
//! Together with [`execution`](super::execution), the one place with
//! `unsafe` code.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{CString, c_char};
use std::ptr::NonNull;

use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Module, Result, qjs};

unsafe extern "C" {
    /// A new, unlinked instance of a compiled module (Volley's patch).
    fn JS_CloneModule(
        ctx: *mut qjs::JSContext,
        m: *mut qjs::JSModuleDef,
        name: *const c_char,
    ) -> *mut qjs::JSModuleDef;
}

/// With `JS_EVAL_FLAG_COMPILE_ONLY`, compile a module without resolving
/// its imports (Volley's patch; `quickjs.h`).
const JS_EVAL_FLAG_UNRESOLVED: u32 = 1 << 9;

/// A module compiled in a realm's context and never linked: what each VU's
/// instance is made from. Valid while the context lives (QuickJS frees a
/// context's modules with it); the realm that compiled it keeps it no
/// longer than its context.
#[derive(Clone, Copy)]
pub struct Template(NonNull<qjs::JSModuleDef>);

/// Compiles `source` as the module `name` (its file, for error positions)
/// without linking or evaluating it. A syntax error is the context's
/// pending exception (`Error::Exception`, read with `catch`).
pub fn compile(ctx: &Ctx<'_>, name: &str, source: &str) -> Result<Template> {
    let name = CString::new(name)?;
    // QuickJS reads up to a terminating NUL past the given length.
    let source = CString::new(source)?;
    let flags = qjs::JS_EVAL_TYPE_MODULE
        | qjs::JS_EVAL_FLAG_STRICT
        | qjs::JS_EVAL_FLAG_COMPILE_ONLY
        | JS_EVAL_FLAG_UNRESOLVED;
    // SAFETY: `ctx` is a live context; both strings outlive the call.
    let value = unsafe {
        qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            source.as_ptr(),
            source.as_bytes().len() as _,
            name.as_ptr(),
            flags as i32,
        )
    };
    // SAFETY: a value QuickJS just returned: an exception or a module.
    unsafe {
        if qjs::JS_VALUE_GET_TAG(value) != qjs::JS_TAG_MODULE {
            qjs::JS_FreeValue(ctx.as_raw().as_ptr(), value);
            return Err(Error::Exception);
        }
        // The context's module list keeps the module; this reference is
        // not needed (modules are freed with their context, whatever
        // their count).
        let ptr = qjs::JS_VALUE_GET_PTR(value).cast::<qjs::JSModuleDef>();
        NonNull::new(ptr).map(Template).ok_or(Error::Unknown)
    }
}

thread_local! {
    /// The template [`instantiate`] hands to its load function.
    static CLONING: Cell<*mut qjs::JSModuleDef> = const { Cell::new(std::ptr::null_mut()) };
}

/// A new instance of `template` named `name`, which must be unique in the
/// context: ready to be evaluated (its imports resolve from `name`).
pub fn instantiate<'js>(
    ctx: &Ctx<'js>,
    template: Template,
    name: &str,
) -> Result<Module<'js, Declared>> {
    unsafe extern "C" fn clone(
        ctx: *mut qjs::JSContext,
        name: *const c_char,
    ) -> *mut qjs::JSModuleDef {
        let template = CLONING.get();
        if template.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `template` was set by `instantiate` just before, from a
        // live template of this context; `name` is a C string.
        unsafe { JS_CloneModule(ctx, template, name) }
    }
    CLONING.set(template.0.as_ptr());
    // SAFETY: `clone` returns a module of `ctx` or null with an exception
    // pending, as `from_load_fn` requires.
    let module = unsafe { Module::from_load_fn(ctx.clone(), name, clone) };
    CLONING.set(std::ptr::null_mut());
    module
}
