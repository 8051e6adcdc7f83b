//! `multipart:` request bodies: each field is text (a template) or a file
//! part `{file, filename, contentType}`.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// One field of a `multipart:` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPart {
    /// Text: a template, sent as a plain form field.
    Field(String),
    /// A file's bytes.
    File(RawFilePart),
}

/// `{file, filename, contentType}`: a file read once at load.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFilePart {
    /// Path of the file, relative to the plan's directory.
    pub file: String,
    /// The part's `filename`; default: the file's own name.
    pub filename: Option<String>,
    /// The part's `Content-Type`; default `application/octet-stream`.
    pub content_type: Option<String>,
}

impl<'de> Deserialize<'de> for RawPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPart;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text, or a file part {file, filename, contentType}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPart, E> {
                Ok(RawPart::Field(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawPart, E> {
                Ok(RawPart::Field(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawPart, E> {
                Ok(RawPart::Field(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPart, E> {
                Ok(RawPart::Field(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPart, E> {
                Ok(RawPart::Field(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawPart, E> {
                Ok(RawPart::Field(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPart, A::Error> {
                RawFilePart::deserialize(MapAccessDeserializer::new(map)).map(RawPart::File)
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawPart, E> {
                Err(E::custom(
                    "got null, expected text, or a file part {file, filename, contentType}",
                ))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<RawPart, A::Error> {
                Err(de::Error::custom(
                    "got a list, expected text, or a file part {file, filename, contentType}",
                ))
            }
        }
        d.deserialize_any(V)
    }
}
