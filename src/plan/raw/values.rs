//! Leaf values of the plan file with their own serde rules: counts,
//! durations, scalars, ordered maps and the few "this or that" shapes
//! (`status: 200` or `status: [200, 201]`).
//!
//! Each type checks its value while deserializing, so the error carries the
//! field path and position that `serde_path_to_error` and the YAML/JSON
//! parser know, and reads `got "-5", expected a non-negative integer`
//! instead of serde's `invalid value: integer `-5`, expected u64`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::RawRequest;
use crate::plan::duration::{duration_from_millis_f64, parse_duration};

/// Rejects value kinds a visitor does not take with `got a map, expected
/// …` (its `expecting` text), so every type error reads the same way.
/// Kinds: `bool`, `null`, `numbers`, `list`, `map`.
macro_rules! reject {
    ($($kind:ident)*) => { $( reject!(@ $kind); )* };
    (@ bool) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Err(got(&self, v))
        }
    };
    (@ null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(got(&self, "null"))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(got(&self, "null"))
        }
    };
    (@ numbers) => {
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Err(got(&self, v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(got(&self, v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(got(&self, v))
        }
    };
    (@ list) => {
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(got(&self, "a list"))
        }
    };
    (@ map) => {
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(got(&self, "a map"))
        }
    };
}

/// `got WHAT, expected EXPECTING`.
fn got<'de, V: Visitor<'de>, E: de::Error>(visitor: &V, what: impl fmt::Display) -> E {
    E::custom(format!("got {what}, expected {}", Expecting(visitor)))
}

/// Displays a visitor's `expecting` text.
struct Expecting<'a, V>(&'a V);

impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
}

fn got_text<E: de::Error>(v: &str, expected: &str) -> E {
    E::custom(format!("got \"{}\", expected {expected}", v.escape_debug()))
}

// === impl Count ===

/// A non-negative integer (VUs, iterations, targets, rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64);

const COUNT: &str = "a non-negative integer";

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(COUNT)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| got_text(&v.to_string(), COUNT))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| got_text(&v.to_string(), "an integer below 2^64"))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Count, E> {
                Err(got_text(&v.to_string(), COUNT))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
                    Ok(Count(v as u64))
                } else {
                    Err(got_text(&v.to_string(), COUNT))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
                Err(got_text(v, "a non-negative integer (a number, not text)"))
            }
            reject!(bool null list map);
        }
        d.deserialize_any(V)
    }
}

// === impl DurationValue ===

/// A duration: a k6 string (`30s`, `1m30s`) or a number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like 250ms, 30s, 1m30s or 1.5h")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                parse_duration(v).map(DurationValue).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<DurationValue, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<DurationValue, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                duration_from_millis_f64(v)
                    .map(DurationValue)
                    .map_err(E::custom)
            }
            reject!(bool null list map);
        }
        d.deserialize_any(V)
    }
}

// === impl Scalar ===

/// Text written as a string, number or boolean (`PORT: 8080` in `env`),
/// kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            reject!(null list map);
        }
        d.deserialize_any(V)
    }
}

// === impl OrderedMap ===

/// A map that keeps the order it was written in and refuses repeated keys
/// (thresholds are reported in order; a repeated header or tag is a typo).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OrderedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some(Scalar(key)) = map.next_key::<Scalar>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!(
                            "duplicate key \"{}\"",
                            key.escape_debug()
                        )));
                    }
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(OrderedMap(entries))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap::default())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Err(got_text(v, "a map"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::custom("got a list, expected a map"))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

// === impl SleepSpec ===

/// `sleep: 1s` or `sleep: {min: 1s, max: 3s}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepSpec {
    Fixed(Duration),
    Range(SleepRange),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepRange {
    pub min: DurationValue,
    pub max: DurationValue,
}

impl<'de> Deserialize<'de> for SleepSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SleepSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like 1s, or {min: 1s, max: 3s}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SleepSpec, E> {
                parse_duration(v).map(SleepSpec::Fixed).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SleepSpec, A::Error> {
                SleepRange::deserialize(MapAccessDeserializer::new(map)).map(SleepSpec::Range)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SleepSpec, E> {
                Err(bare_sleep(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SleepSpec, E> {
                Err(bare_sleep(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SleepSpec, E> {
                Err(bare_sleep(v))
            }
            reject!(bool null list);
        }
        d.deserialize_any(V)
    }
}

/// k6's `sleep(1)` is in seconds while k6's duration options read bare
/// numbers as milliseconds; a unit removes the doubt.
fn bare_sleep<E: de::Error>(v: impl fmt::Display) -> E {
    E::custom(format!(
        "got {v}, expected a duration with a unit like {v}s or {v}ms (a bare number is ambiguous here)"
    ))
}

// === impl StatusSpec ===

/// `status: 200` or `status: [200, 201]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

const STATUS: &str = "an HTTP status code between 100 and 999";

/// One status code, range-checked.
struct Status(u16);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StatusSpec::deserialize(d)? {
            StatusSpec::One(code) => Ok(Status(code)),
            StatusSpec::Many(_) => Err(de::Error::custom(format!("got a list, expected {STATUS}"))),
        }
    }
}

fn status_code<E: de::Error>(v: i128) -> Result<u16, E> {
    match u16::try_from(v) {
        Ok(code) if (100..=999).contains(&code) => Ok(code),
        _ => Err(got_text(&v.to_string(), STATUS)),
    }
}

impl<'de> Deserialize<'de> for StatusSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{STATUS}, or a list of them")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusSpec, E> {
                status_code(i128::from(v)).map(StatusSpec::One)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusSpec, E> {
                status_code(i128::from(v)).map(StatusSpec::One)
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<StatusSpec, E> {
                Err(got_text(&v.to_string(), STATUS))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<StatusSpec, E> {
                status_code(v).map(StatusSpec::One)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StatusSpec, E> {
                Err(got_text(&v.to_string(), STATUS))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusSpec, E> {
                Err(got_text(v, "an HTTP status code (a number, not text)"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusSpec, A::Error> {
                let mut codes = Vec::new();
                while let Some(Status(code)) = seq.next_element::<Status>()? {
                    codes.push(code);
                }
                if codes.is_empty() {
                    return Err(de::Error::custom(format!(
                        "got an empty list, expected {STATUS}"
                    )));
                }
                Ok(StatusSpec::Many(codes))
            }
            reject!(bool null map);
        }
        d.deserialize_any(V)
    }
}

// === impl HeaderSpec ===

/// `header: Name` (present), `header: {name: X, equals: v}` or
/// `header: {name: X, matches: "regex"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSpec {
    Present(String),
    Compare(HeaderCompare),
}

/// `{name, equals}` or `{name, matches}` (`compile` wants exactly one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCompare {
    pub name: String,
    pub equals: Option<Scalar>,
    pub matches: Option<String>,
}

impl<'de> Deserialize<'de> for HeaderSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HeaderSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header name, {name: X, equals: value} or {name: X, matches: regex}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HeaderSpec, E> {
                Ok(HeaderSpec::Present(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HeaderSpec, A::Error> {
                HeaderCompare::deserialize(MapAccessDeserializer::new(map)).map(HeaderSpec::Compare)
            }
            reject!(numbers bool null list);
        }
        d.deserialize_any(V)
    }
}

// === impl ThresholdList ===

/// The expressions of one threshold key: a list whose items are either an
/// expression or `{threshold, abortOnFail, delayAbortEval}`. A single item
/// without the list is accepted too.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdList(pub Vec<ThresholdSpec>);

#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdSpec {
    Expr(String),
    Full(ThresholdFull),
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ThresholdFull {
    pub threshold: String,
    pub abort_on_fail: Option<bool>,
    pub delay_abort_eval: Option<DurationValue>,
}

struct ThresholdVisitor;

impl<'de> Visitor<'de> for ThresholdVisitor {
    type Value = ThresholdSpec;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an expression like \"p(95)<200\", or {threshold, abortOnFail, delayAbortEval}")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdSpec, E> {
        Ok(ThresholdSpec::Expr(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ThresholdSpec, A::Error> {
        ThresholdFull::deserialize(MapAccessDeserializer::new(map)).map(ThresholdSpec::Full)
    }
    reject!(numbers bool null);
}

impl<'de> Deserialize<'de> for ThresholdSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ThresholdVisitor)
    }
}

impl<'de> Deserialize<'de> for ThresholdList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ThresholdList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of threshold expressions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ThresholdList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<ThresholdSpec>()? {
                    items.push(item);
                }
                Ok(ThresholdList(items))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdList, E> {
                ThresholdVisitor
                    .visit_str(v)
                    .map(|t| ThresholdList(vec![t]))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ThresholdList, A::Error> {
                ThresholdVisitor
                    .visit_map(map)
                    .map(|t| ThresholdList(vec![t]))
            }
            reject!(numbers bool null);
        }
        d.deserialize_any(V)
    }
}

// === impl RequestShort ===

/// The value of a method shortcut: `get: URL` or `post: {url, json, ...}`.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestShort {
    Url(String),
    Full(Box<RawRequest>),
}

impl<'de> Deserialize<'de> for RequestShort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RequestShort;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a URL, or a request map {url, headers, body, ...}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestShort, E> {
                Ok(RequestShort::Url(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RequestShort, A::Error> {
                RawRequest::deserialize(MapAccessDeserializer::new(map))
                    .map(|r| RequestShort::Full(Box::new(r)))
            }
            reject!(numbers bool null list);
        }
        d.deserialize_any(V)
    }
}

/// `equals: null` must mean "equals JSON null", not "absent": wrap the
/// present value in `Some` whatever it is.
pub fn present_json<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}
