//! `batch:` as written: the requests of one batch step, as a plain list or
//! under `requests:` (room for batch-wide fields later).

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::RawRequest;

/// The requests of a `batch` step, and how they were written (for field
/// paths: `batch[1]` or `batch.requests[1]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawBatch {
    pub requests: Vec<RawRequest>,
    /// Written as `{requests: [...]}`.
    pub keyed: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Keyed {
    requests: Vec<RawRequest>,
}

impl<'de> Deserialize<'de> for RawBatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of requests, or {requests: [...]}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawBatch, A::Error> {
                Ok(RawBatch {
                    requests: Vec::deserialize(SeqAccessDeserializer::new(seq))?,
                    keyed: false,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawBatch, A::Error> {
                Ok(RawBatch {
                    requests: Keyed::deserialize(MapAccessDeserializer::new(map))?.requests,
                    keyed: true,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBatch, E> {
                Err(E::custom(format!(
                    "got \"{}\", expected a list of requests, or {{requests: [...]}}",
                    v.escape_debug()
                )))
            }
        }
        d.deserialize_any(V)
    }
}
