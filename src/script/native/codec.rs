//! `k6/encoding` and `k6/crypto` natives: base64 in k6's four alphabets,
//! MD5/SHA digests, HMAC, random bytes; and for `k6/http`, body
//! compression and multipart boundaries. Binary data arrives as arrays of
//! byte values and leaves as ArrayBuffers.

use base64::Engine as _;
use rquickjs::{Ctx, Function, IntoJs, Object, Value};

use super::{bytes_of, throw};

pub(super) fn install<'js>(ctx: &Ctx<'js>, v: &Object<'js>) -> rquickjs::Result<()> {
    v.set(
        "compress",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, codings: String, input: Value<'js>| -> rquickjs::Result<Vec<u8>> {
                let data = bytes_of(&input)?;
                crate::engine::http::encoding::compress(&codings, &data)
                    .map_err(|e| throw(&ctx, &e))
            },
        )?,
    )?;

    // A multipart boundary as Go's mime/multipart makes one: 30 random
    // bytes in hex.
    v.set(
        "boundary",
        Function::new(ctx.clone(), || {
            (0..30)
                .map(|_| format!("{:02x}", fastrand::u8(..)))
                .collect::<String>()
        })?,
    )?;

    v.set(
        "unixNanos",
        Function::new(ctx.clone(), || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or_else(|_| "0".to_owned(), |d| d.as_nanos().to_string())
        })?,
    )?;

    // RFC 3986 reference resolution, as redirects use it (submitForm's
    // action, clickLink's href).
    v.set(
        "resolveUrl",
        Function::new(ctx.clone(), |base: String, reference: String| {
            crate::engine::http::redirect::resolve(&base, &reference)
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
                let engine = b64_engine(&enc).map_err(|e| throw(&ctx, &e))?;
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
                let engine = b64_engine(&enc).map_err(|e| throw(&ctx, &e))?;
                let data = engine
                    .decode(input.trim_end_matches(if enc.starts_with("raw") { "=" } else { "" }))
                    .map_err(|e| throw(&ctx, &format!("b64decode: {e}")))?;
                if format == "s" {
                    String::from_utf8_lossy(&data).into_owned().into_js(&ctx)
                } else {
                    Ok(rquickjs::ArrayBuffer::new(ctx.clone(), data)?.into_value())
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
            // The system's randomness, as k6's crypto/rand: scripts make
            // tokens and ids of it.
            let mut bytes = vec![0u8; n];
            if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err()
            {
                bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
            }
            bytes
        })?,
    )?;

    Ok(())
}

/// The base64 alphabet k6 names `enc`.
fn b64_engine(enc: &str) -> Result<base64::engine::GeneralPurpose, String> {
    use base64::engine::general_purpose as gp;
    match enc {
        "std" | "" => Ok(gp::STANDARD),
        "rawstd" => Ok(gp::STANDARD_NO_PAD),
        "url" => Ok(gp::URL_SAFE),
        "rawurl" => Ok(gp::URL_SAFE_NO_PAD),
        _ => Err(format!(
            "unknown base64 encoding \"{enc}\"; expected std, rawstd, url or rawurl"
        )),
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
        "binary" | "" => Ok(rquickjs::ArrayBuffer::new(ctx.clone(), out)?.into_value()),
        other => Err(throw(
            ctx,
            &format!(
                "unknown output encoding \"{other}\"; expected hex, base64, base64url, base64rawurl or binary"
            ),
        )),
    }
}
