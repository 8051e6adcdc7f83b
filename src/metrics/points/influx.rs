//! InfluxDB 1.x line protocol for `--out influxdb`, as k6 writes it: the
//! measurement is the metric's name, the tags are the sample's tags minus
//! the tags written as fields (`url` by default) and minus empty values,
//! the fields are `value` and those tags, the time is in nanoseconds:
//!
//! ```text
//! http_reqs,method=GET,name=http://h/x,status=200 url="http://h/x",value=1 1796564470441485349
//! ```
//!
//! A point per sample, as k6 writes them, so that the queries of k6's
//! dashboards (`count(value)`, `sum(value)`, `mean(value)`,
//! `percentile(value, 95)`) hold. InfluxDB keeps one point per series
//! and time, and Volley stamps a batch of samples with one time, so each
//! series' points get times at least 1 ns apart: no sample overwrites
//! another.

use super::PointEncoder;
use crate::metrics::recorder::Point;
use crate::metrics::snapshot::SeriesKey;

/// How a tag written as a field is typed (k6's `tagsAsFields`
/// suffixes: `url`, `url:string`, `vu:int`, `x:float`, `ok:bool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Int,
    Float,
    Bool,
}

/// One entry of `tagsAsFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagField {
    pub tag: String,
    pub kind: FieldType,
}

impl TagField {
    /// `name` or `name:int|float|bool|string`.
    pub fn parse(s: &str) -> Result<TagField, String> {
        let (tag, kind) = match s.split_once(':') {
            None => (s, FieldType::String),
            Some((tag, "string")) => (tag, FieldType::String),
            Some((tag, "int")) => (tag, FieldType::Int),
            Some((tag, "float")) => (tag, FieldType::Float),
            Some((tag, "bool")) => (tag, FieldType::Bool),
            Some((_, other)) => {
                return Err(format!(
                    "{s:?}: unknown type {other:?}; expected TAG or TAG:int, TAG:float, \
                     TAG:bool, TAG:string"
                ));
            }
        };
        if tag.is_empty() {
            return Err(format!("{s:?}: the tag name is empty"));
        }
        Ok(TagField {
            tag: tag.to_owned(),
            kind,
        })
    }
}

impl std::fmt::Display for TagField {
    /// As [`TagField::parse`] reads it: `url`, `vu:int`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            FieldType::String => return f.write_str(&self.tag),
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
        };
        write!(f, "{}:{kind}", self.tag)
    }
}

/// Encoder of line-protocol points.
pub struct LineProtocol {
    fields: Vec<TagField>,
    /// Per series id: `measurement,tags ` and the fields before `value`.
    series: Vec<(Vec<u8>, Vec<u8>)>,
    /// Per series id: the last time written, so the next is later.
    last_ns: Vec<u128>,
}

impl LineProtocol {
    pub fn new(fields: Vec<TagField>) -> LineProtocol {
        LineProtocol {
            fields,
            series: Vec::new(),
            last_ns: Vec::new(),
        }
    }
}

impl PointEncoder for LineProtocol {
    fn add_series(&mut self, key: &SeriesKey, _out: &mut Vec<u8>) {
        let mut head = Vec::new();
        escape(key.metric.name(), b", ", &mut head);
        let mut fields = Vec::new();
        for (k, v) in key.tags.iter() {
            if let Some(f) = self.fields.iter().find(|f| f.tag == k) {
                field(k, v, f.kind, &mut fields);
                continue;
            }
            if v.is_empty() {
                continue;
            }
            head.push(b',');
            escape(k, b",= ", &mut head);
            head.push(b'=');
            escape(v, b",= ", &mut head);
        }
        head.push(b' ');
        self.series.push((head, fields));
        self.last_ns.push(0);
    }

    fn write(&mut self, time_unix_ns: u128, points: &[Point], out: &mut Vec<u8>) {
        for p in points {
            let i = p.series as usize;
            let (Some((head, fields)), Some(last)) = (self.series.get(i), self.last_ns.get_mut(i))
            else {
                continue;
            };
            if !p.value.is_finite() {
                continue;
            }
            let t = time_unix_ns.max(last.saturating_add(1));
            *last = t;
            out.extend_from_slice(head);
            out.extend_from_slice(fields);
            out.extend_from_slice(b"value=");
            out.extend_from_slice(p.value.to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(t.to_string().as_bytes());
            out.push(b'\n');
        }
    }
}

/// A tag written as a field, followed by its comma. A value that does not
/// parse as its type is left out, as k6 does.
fn field(key: &str, value: &str, kind: FieldType, out: &mut Vec<u8>) {
    let text = match kind {
        FieldType::String => {
            let mut s = Vec::with_capacity(value.len() + 2);
            s.push(b'"');
            for c in value.bytes() {
                if c == b'"' || c == b'\\' {
                    s.push(b'\\');
                }
                s.push(c);
            }
            s.push(b'"');
            s
        }
        FieldType::Int => match value.parse::<i64>() {
            Ok(n) => format!("{n}i").into_bytes(),
            Err(_) => return,
        },
        FieldType::Float => match value.parse::<f64>() {
            Ok(x) if x.is_finite() => x.to_string().into_bytes(),
            _ => return,
        },
        FieldType::Bool => match value.parse::<bool>() {
            Ok(b) => b.to_string().into_bytes(),
            Err(_) => return,
        },
    };
    escape(key, b",= ", out);
    out.push(b'=');
    out.extend_from_slice(&text);
    out.push(b',');
}

/// Backslash before each of `special`; line breaks become spaces (they
/// would end the line), escaped too.
pub(super) fn escape(s: &str, special: &[u8], out: &mut Vec<u8>) {
    for c in s.bytes() {
        let c = if c == b'\n' || c == b'\r' { b' ' } else { c };
        if special.contains(&c) || c == b'\\' {
            out.push(b'\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::Metric;
    use crate::metrics::tags::TagSet;

    fn encode(fields: &[&str], tags: &[(&str, &str)], points: &[(u32, f64)], t: u128) -> String {
        let fields = fields
            .iter()
            .map(|f| TagField::parse(f).expect("valid"))
            .collect();
        let mut enc = LineProtocol::new(fields);
        let mut out = Vec::new();
        let key = SeriesKey::new(Metric::HttpReqs, TagSet::from_pairs(tags.iter().copied()));
        enc.add_series(&key, &mut out);
        let points: Vec<Point> = points
            .iter()
            .map(|&(series, value)| Point { series, value })
            .collect();
        enc.write(t, &points, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn k6s_layout_with_url_as_a_field() {
        let tags = [
            ("group", ""),
            ("method", "GET"),
            ("name", "http://h/x"),
            ("status", "200"),
            ("url", "http://h/x"),
        ];
        assert_eq!(
            encode(&["vu", "iter", "url"], &tags, &[(0, 1.0)], 7),
            "http_reqs,method=GET,name=http://h/x,status=200 url=\"http://h/x\",value=1 7\n"
        );
    }

    #[test]
    fn points_of_a_series_never_share_a_time() {
        let lines = encode(
            &[],
            &[("status", "200")],
            &[(0, 1.0), (0, 2.5), (0, 1.0)],
            100,
        );
        assert_eq!(
            lines,
            "http_reqs,status=200 value=1 100\nhttp_reqs,status=200 value=2.5 101\nhttp_reqs,status=200 value=1 102\n"
        );
    }

    #[test]
    fn escaping_and_typed_fields() {
        let tags = [
            ("name", "a b,c=d"),
            ("vu", "7"),
            ("ok", "yes"),
            ("note", "say \"hi\"\\"),
        ];
        let line = encode(&["vu:int", "ok:bool", "note"], &tags, &[(0, 0.5)], 1);
        assert_eq!(
            line,
            "http_reqs,name=a\\ b\\,c\\=d note=\"say \\\"hi\\\"\\\\\",vu=7i,value=0.5 1\n"
        );
        assert!(TagField::parse("vu:integer").is_err());
        assert!(TagField::parse(":int").is_err());
    }

    #[test]
    fn values_influxdb_cannot_hold_are_left_out() {
        assert_eq!(encode(&[], &[], &[(0, f64::NAN), (9, 1.0)], 1), "");
    }
}
