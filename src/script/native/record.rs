//! A VU's record: the JavaScript values k6 keeps per VU, for VUs that share
//! a realm (see [`realm`](crate::script::realm)). The prelude's globals
//! read it through the natives here: `__VU`, `__ITER` and `__ENV` are
//! accessors on the shared global object, timers and the `randomSeed`
//! stream live in the record, the response callback and the cookie jar in
//! the VU's state.

use std::collections::BTreeMap;

use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Object, Persistent, Value};

use super::{Stage, State, current_vu, throw};

/// Most tags a VU may set with `exec.vu.metrics.tags`, and the longest
/// (name and value): each distinct set is a series of every metric.
const MAX_VU_TAGS: usize = 64;
const MAX_VU_TAG_LEN: usize = 1024;

/// The running VU's record.
pub fn record<'js>(ctx: &Ctx<'js>, state: &State) -> rquickjs::Result<Object<'js>> {
    let saved = state.borrow().record.clone();
    match saved {
        Some(p) => p.restore(ctx),
        None => Err(throw(ctx, "the VU has no record yet")),
    }
}

/// Makes the VU's record (the prelude's `__volley_newRecord`), with a copy
/// of `env` (the realm's `__ENV` object) as its `__ENV`.
pub fn create<'js>(ctx: &Ctx<'js>, state: &State, env: Object<'js>) -> rquickjs::Result<()> {
    let make: Function = ctx.globals().get("__volley_newRecord")?;
    let record: Object = make.call((env,))?;
    state.borrow_mut().record = Some(Persistent::save(ctx, record));
    Ok(())
}

/// Puts `env` into the VU's `__ENV` (a scenario's `env`, for VU code).
pub fn merge_env(
    ctx: &Ctx<'_>,
    state: &State,
    env: &BTreeMap<String, String>,
) -> rquickjs::Result<()> {
    let env_obj: Object = record(ctx, state)?.get("env")?;
    for (k, v) in env {
        env_obj.set(k.as_str(), v.as_str())?;
    }
    Ok(())
}

/// `__volley.vu`, `vuId`, `iter` and `defaultExpected`.
pub(super) fn install<'js>(ctx: &Ctx<'js>, v: &Object<'js>) -> rquickjs::Result<()> {
    v.set(
        "vu",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>| -> rquickjs::Result<Object<'js>> { record(&ctx, &current_vu(&ctx)?) },
        )?,
    )?;
    v.set(
        "vuId",
        Function::new(ctx.clone(), |ctx: Ctx<'js>| -> rquickjs::Result<f64> {
            Ok(current_vu(&ctx)?.borrow().vu as f64)
        })?,
    )?;
    // exec.vu.metrics.tags: the VU's own tags, read and written one at a time.
    v.set(
        "vuTags",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>| -> rquickjs::Result<Vec<Vec<String>>> {
                Ok(current_vu(&ctx)?
                    .borrow()
                    .vu_tags
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.clone()])
                    .collect())
            },
        )?,
    )?;
    v.set(
        "setVuTag",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, key: String, value: Option<String>| -> rquickjs::Result<()> {
                let s = current_vu(&ctx)?;
                let mut st = s.borrow_mut();
                let tags = &mut st.vu_tags;
                let others = tags.iter().filter(|(k, _)| *k != key).count();
                if let Some(value) = &value
                    && (others >= MAX_VU_TAGS || key.len() + value.len() > MAX_VU_TAG_LEN)
                {
                    // Refused: the tag keeps the value it had.
                    return Err(throw(
                        &ctx,
                        &format!(
                            "exec.vu.metrics.tags: at most {MAX_VU_TAGS} tags of {MAX_VU_TAG_LEN} bytes each"
                        ),
                    ));
                }
                tags.retain(|(k, _)| *k != key);
                if let Some(value) = value {
                    tags.push((key, value));
                    tags.sort();
                }
                Ok(())
            },
        )?,
    )?;
    // Whether the VU's iteration is being cut (a native it called was
    // interrupted): the event loop then lets the interruption through
    // rather than rejecting a promise the script could catch.
    v.set(
        "stopping",
        Function::new(ctx.clone(), |ctx: Ctx<'js>| -> rquickjs::Result<bool> {
            Ok(current_vu(&ctx)?.borrow().stopping)
        })?,
    )?;
    v.set(
        "iter",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>| -> rquickjs::Result<Value<'js>> {
                let s = current_vu(&ctx)?;
                let st = s.borrow();
                // As k6: a number in VU code, undefined in init and lifecycle
                // functions.
                Ok(match st.stage {
                    Stage::Vu => Value::new_float(ctx.clone(), st.iter as f64),
                    _ => Value::new_undefined(ctx.clone()),
                })
            },
        )?,
    )?;
    v.set(
        "defaultExpected",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, ranges: Opt<Vec<Vec<u16>>>| -> rquickjs::Result<()> {
                let ranges = ranges.0.map(|r| {
                    r.into_iter()
                        .filter_map(|r| Some((*r.first()?, *r.get(1)?)))
                        .collect()
                });
                current_vu(&ctx)?.borrow_mut().default_expected = ranges;
                Ok(())
            },
        )?,
    )?;
    Ok(())
}
