//! Custom metrics as written: declared under `metrics:` (`orders: counter`
//! or `{type: trend, isTime: true}`), fed by a `metric` step
//! (`{name, add}`) or by a request's `metrics: [{name, value}]`.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::values::{OrderedMap, Scalar};

/// k6's four metric types, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawMetricType {
    Counter,
    Gauge,
    Rate,
    Trend,
}

/// One declaration: its type and whether its values are times (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetricSpec {
    #[serde(rename = "type")]
    pub kind: RawMetricType,
    pub is_time: Option<bool>,
}

impl<'de> Deserialize<'de> for WrittenMetricSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WrittenMetricSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("counter, gauge, rate, trend, or {type: trend, isTime: true}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WrittenMetricSpec, E> {
                let kind = RawMetricType::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(WrittenMetricSpec(RawMetricSpec {
                    kind,
                    is_time: None,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<WrittenMetricSpec, A::Error> {
                RawMetricSpec::deserialize(MapAccessDeserializer::new(map)).map(WrittenMetricSpec)
            }
        }
        d.deserialize_any(V)
    }
}

/// A declaration in either of its written forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenMetricSpec(pub RawMetricSpec);

/// `- metric: {name, add, tags}`: one value added to a declared metric.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetricStep {
    pub name: String,
    /// A number, `true`/`false` (rates), or a template rendering to one.
    pub add: Scalar,
    pub tags: Option<OrderedMap<Scalar>>,
}

/// One entry of a request's `metrics:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestMetric {
    pub name: String,
    /// Read as written (`duration`, `tls_handshaking`, `checks`).
    pub value: crate::plan::types::ResponseValue,
}
