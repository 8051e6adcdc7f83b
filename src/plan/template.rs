//! Templates: strings with `${...}` placeholders, compiled once at load.
//!
//! Supported placeholders (anything else is a load error naming the field):
//! `${env.NAME}` (resolved at load: `-e NAME=value`, then the scenario's
//! `env`, then the process environment), `${vu}`, `${iter}`, `${scenario}`,
//! `${NAME}` for a variable written by a `capture`, `${random(a,b)}` (an
//! integer in `[a, b]`), `${uuid}` (a random v4 UUID) and `${data.COLUMN}`
//! (a cell of the iteration's data row). `$${` writes a literal `${`.
//!
//! Rendering is on the hot path: it walks pre-split parts and appends to a
//! caller-owned buffer, with no parsing and no allocation beyond the buffer.

use std::fmt::Write as _;

use super::types::VarSlot;

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The text as written in the plan, for display and for the `name` tag.
    source: String,
    parts: Vec<Part>,
}

/// One piece of a compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Vu,
    Iter,
    Scenario,
    Var(VarSlot),
    /// Inclusive bounds, `min <= max`.
    Random {
        min: i64,
        max: i64,
    },
    Uuid,
    /// Column index into [`super::DataSet::columns`].
    Data(u16),
    /// The inner part's text, escaped for a form body (`form:`).
    FormEncoded(Box<Part>),
}

/// Everything a template may read while rendering, borrowed from the VU.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// 1-based VU number, unique across the whole (fleet-wide) test.
    pub vu: u64,
    /// 0-based iteration number of this VU in this scenario.
    pub iter: u64,
    pub scenario: &'a str,
    /// Captured variables by slot; `None` renders as the empty string.
    pub vars: &'a [Option<String>],
    /// The iteration's data row, if the plan has data.
    pub row: Option<&'a [String]>,
}

impl Template {
    /// Builds a template from already-parsed parts (the parser lives in
    /// `plan::compile`). Adjacent literals should already be joined.
    pub fn from_parts(source: impl Into<String>, parts: Vec<Part>) -> Self {
        Template {
            source: source.into(),
            parts,
        }
    }

    /// A template without placeholders.
    pub fn literal(text: impl Into<String>) -> Self {
        let text = text.into();
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Literal(text.clone())]
        };
        Template {
            source: text,
            parts,
        }
    }

    /// The text as written in the plan.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The fixed text when the template has no placeholders, so callers can
    /// pre-render it once.
    pub fn as_static(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Appends the rendered text to `out`.
    pub fn render_into(&self, cx: &RenderContext<'_>, out: &mut String) {
        for part in &self.parts {
            render_part(part, cx, out);
        }
    }

    /// A form body (`application/x-www-form-urlencoded`) of `fields`, in
    /// k6's order (sorted by name, as Go's `url.Values` encodes): names and
    /// literal text escaped now, placeholders when rendered.
    pub fn form(fields: &[(String, Template)]) -> Template {
        let mut sorted: Vec<&(String, Template)> = fields.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut parts: Vec<Part> = Vec::new();
        let mut literal = String::new();
        let mut source = Vec::new();
        for (i, (name, value)) in sorted.into_iter().enumerate() {
            if i > 0 {
                literal.push('&');
            }
            crate::escape::form_value(name, &mut literal);
            literal.push('=');
            for part in value.parts() {
                match part {
                    Part::Literal(s) => crate::escape::form_value(s, &mut literal),
                    other => {
                        if !literal.is_empty() {
                            parts.push(Part::Literal(std::mem::take(&mut literal)));
                        }
                        parts.push(Part::FormEncoded(Box::new(other.clone())));
                    }
                }
            }
            source.push(format!("{name}={}", value.source()));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Template::from_parts(source.join("&"), parts)
    }

    /// Renders into a new string.
    pub fn render(&self, cx: &RenderContext<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        self.render_into(cx, &mut out);
        out
    }
}

fn render_part(part: &Part, cx: &RenderContext<'_>, out: &mut String) {
    match part {
        Part::Literal(s) => out.push_str(s),
        Part::Vu => push_u64(out, cx.vu),
        Part::Iter => push_u64(out, cx.iter),
        Part::Scenario => out.push_str(cx.scenario),
        Part::Var(slot) => {
            if let Some(Some(v)) = cx.vars.get(usize::from(slot.0)) {
                out.push_str(v);
            }
        }
        Part::Random { min, max } => {
            let _ = write!(out, "{}", fastrand::i64(*min..=*max));
        }
        Part::Uuid => push_uuid(out),
        Part::Data(col) => {
            if let Some(cell) = cx.row.and_then(|r| r.get(usize::from(*col))) {
                out.push_str(cell);
            }
        }
        Part::FormEncoded(inner) => {
            let mut raw = String::new();
            render_part(inner, cx, &mut raw);
            crate::escape::form_value(&raw, out);
        }
    }
}

fn push_u64(out: &mut String, v: u64) {
    let _ = write!(out, "{v}");
}

/// A random (version 4, variant 1) UUID in its usual 36-character form.
fn push_uuid(out: &mut String) {
    let mut b = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(vars: &'a [Option<String>], row: Option<&'a [String]>) -> RenderContext<'a> {
        RenderContext {
            vu: 7,
            iter: 3,
            scenario: "main",
            vars,
            row,
        }
    }

    #[test]
    fn renders_every_part_kind() {
        let t = Template::from_parts(
            "x",
            vec![
                Part::Literal("/u/".into()),
                Part::Vu,
                Part::Literal("/".into()),
                Part::Iter,
                Part::Literal("/".into()),
                Part::Scenario,
                Part::Literal("/".into()),
                Part::Var(VarSlot(1)),
                Part::Literal("/".into()),
                Part::Data(1),
            ],
        );
        let vars = vec![None, Some("tok".to_string())];
        let row = vec!["a".to_string(), "b".to_string()];
        assert_eq!(t.render(&cx(&vars, Some(&row))), "/u/7/3/main/tok/b");
    }

    #[test]
    fn missing_variables_render_empty() {
        let t = Template::from_parts("x", vec![Part::Var(VarSlot(4)), Part::Data(9)]);
        assert_eq!(t.render(&cx(&[], None)), "");
    }

    #[test]
    fn random_stays_in_bounds_and_uuid_is_v4() {
        let t = Template::from_parts("x", vec![Part::Random { min: -2, max: 2 }]);
        for _ in 0..200 {
            let v: i64 = t.render(&cx(&[], None)).parse().expect("an integer");
            assert!((-2..=2).contains(&v));
        }
        let u = Template::from_parts("x", vec![Part::Uuid]).render(&cx(&[], None));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn static_templates_are_recognised() {
        assert_eq!(Template::literal("abc").as_static(), Some("abc"));
        assert_eq!(Template::literal("").as_static(), Some(""));
        let t = Template::from_parts("${vu}", vec![Part::Vu]);
        assert_eq!(t.as_static(), None);
    }

    #[test]
    fn forms_are_sorted_and_escaped_as_go_escapes_them() {
        let fields = vec![
            (
                "user".to_string(),
                Template::from_parts("${1}", vec![Part::Var(VarSlot(0))]),
            ),
            ("a b".to_string(), Template::literal("x&y=z é")),
        ];
        let form = Template::form(&fields);
        assert_eq!(form.source(), "a b=x&y=z é&user=${1}");
        let vars = [Some("ann smith+1".to_string())];
        assert_eq!(
            form.render(&cx(&vars, None)),
            "a+b=x%26y%3Dz+%C3%A9&user=ann+smith%2B1"
        );
        let fixed = Template::form(&[("k".to_string(), Template::literal("v 1"))]);
        assert_eq!(fixed.as_static(), Some("k=v+1"));
    }
}
