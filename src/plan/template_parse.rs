//! Parsing `${...}` templates into [`Part`]s at load time (the syntax is
//! documented in [`super::template`]), and turning a `json:` body into one
//! template.
//!
//! `${env.NAME}` is resolved here, once: its value becomes literal text.
//! Everything else (`${vu}`, captured variables, data cells, ...) becomes a
//! part that the engine fills per iteration.

use std::collections::BTreeMap;

use super::error::PlanError;
use super::template::{Part, Template};
use super::types::VarSlot;

/// Where `${env.NAME}` looks, highest precedence first: `-e`, the
/// scenario's `env`, the plan's `env`, the process environment.
pub(crate) struct EnvChain<'a> {
    pub layers: Vec<&'a BTreeMap<String, String>>,
}

impl EnvChain<'_> {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.layers
            .iter()
            .find_map(|layer| layer.get(name).map(String::as_str))
    }
}

/// What a template may refer to.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub env: &'a EnvChain<'a>,
    /// Variables captured anywhere in the flow, by name.
    pub vars: &'a BTreeMap<String, VarSlot>,
    /// Columns of the data file, if the plan has one.
    pub data_columns: Option<&'a [String]>,
}

/// A parsed template and its display text: the source with `${env.*}`
/// replaced by the values (used for the default `name` tag, so that
/// `${env.TARGET_URL}` shows up as the URL it is).
#[derive(Debug)]
pub(crate) struct Parsed {
    pub template: Template,
    pub display: String,
}

const PLACEHOLDERS: &str = "${vu}, ${iter}, ${scenario}, ${uuid}, ${env.NAME}, ${data.COLUMN}, ${random(a,b)} or a captured variable";

/// Parses one template field. `path` names the field in errors.
pub(crate) fn parse_template(
    src: &str,
    scope: &Scope<'_>,
    path: &str,
) -> Result<Parsed, PlanError> {
    let (parts, display) = parse_parts(src, scope, path)?;
    Ok(Parsed {
        template: Template::from_parts(src, parts),
        display,
    })
}

/// Splits `src` into joined literals and placeholders.
fn parse_parts(src: &str, scope: &Scope<'_>, path: &str) -> Result<(Vec<Part>, String), PlanError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut display = String::new();
    let mut rest = src;
    let mut position = 1usize;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("$${") {
            literal.push_str("${");
            display.push_str("$${");
            rest = after;
            position += 3;
            continue;
        }
        if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(template_error(src, path, position, "unterminated \"${\""));
            };
            let inner = &after[..end];
            let written = &rest[..end + 3];
            match resolve(inner.trim(), scope, src, path, position)? {
                Resolved::Text(text) => {
                    literal.push_str(text);
                    display.push_str(text);
                }
                Resolved::Part(part) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    display.push_str(written);
                }
            }
            position += written.chars().count();
            rest = &after[end + 1..];
            continue;
        }
        let c = rest.chars().next().expect("invariant: rest is not empty");
        literal.push(c);
        display.push(c);
        rest = &rest[c.len_utf8()..];
        position += 1;
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok((parts, display))
}

enum Resolved<'a> {
    Text(&'a str),
    Part(Part),
}

fn resolve<'s>(
    inner: &str,
    scope: &Scope<'s>,
    src: &str,
    path: &str,
    position: usize,
) -> Result<Resolved<'s>, PlanError> {
    match inner {
        "vu" => return Ok(Resolved::Part(Part::Vu)),
        "iter" => return Ok(Resolved::Part(Part::Iter)),
        "scenario" => return Ok(Resolved::Part(Part::Scenario)),
        "uuid" => return Ok(Resolved::Part(Part::Uuid)),
        "" => {
            return Err(template_error(
                src,
                path,
                position,
                "empty placeholder \"${}\"",
            ));
        }
        _ => {}
    }
    if let Some(name) = inner.strip_prefix("env.") {
        let name = name.trim();
        if name.is_empty() {
            return Err(template_error(
                src,
                path,
                position,
                "\"${env.}\" names no variable",
            ));
        }
        return match scope.env.get(name) {
            Some(value) => Ok(Resolved::Text(value)),
            None => Err(PlanError::UnknownEnv {
                path: path.to_string(),
                name: name.to_string(),
            }),
        };
    }
    if let Some(column) = inner.strip_prefix("data.") {
        return resolve_data(column.trim(), scope, path).map(Resolved::Part);
    }
    if let Some(args) = inner
        .strip_prefix("random(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return parse_random(args)
            .map(Resolved::Part)
            .map_err(|message| template_error(src, path, position, &message));
    }
    if is_identifier(inner) {
        return match scope.vars.get(inner) {
            Some(slot) => Ok(Resolved::Part(Part::Var(*slot))),
            None => Err(PlanError::UnknownVariable {
                path: path.to_string(),
                name: inner.to_string(),
                known: scope.vars.keys().cloned().collect(),
            }),
        };
    }
    Err(template_error(
        src,
        path,
        position,
        &format!(
            "unknown placeholder \"${{{}}}\" (expected {PLACEHOLDERS})",
            inner.escape_debug()
        ),
    ))
}

fn resolve_data(column: &str, scope: &Scope<'_>, path: &str) -> Result<Part, PlanError> {
    let Some(columns) = scope.data_columns else {
        // Setup and teardown are no iteration: they take no row.
        let lifecycle = ["setup[", "teardown["].iter().any(|p| path.starts_with(p));
        let why = if lifecycle {
            "is not available in setup or teardown, which run without a data row"
        } else {
            "needs a `data:` section with a data file"
        };
        return Err(PlanError::field(
            path,
            format!("\"${{data.{}}}\" {why}", column.escape_debug()),
        ));
    };
    match columns.iter().position(|c| c == column) {
        Some(index) => {
            let index = u16::try_from(index).expect("invariant: data loading caps columns at u16");
            Ok(Part::Data(index))
        }
        None => Err(PlanError::field(
            path,
            format!(
                "unknown data column \"{}\" (columns: {})",
                column.escape_debug(),
                columns.join(", ")
            ),
        )),
    }
}

fn parse_random(args: &str) -> Result<Part, String> {
    let mut bounds = args.split(',');
    let (Some(a), Some(b), None) = (bounds.next(), bounds.next(), bounds.next()) else {
        return Err(format!(
            "\"${{random({})}}\" needs two integers, like ${{random(1,100)}}",
            args.escape_debug()
        ));
    };
    let parse = |s: &str| {
        s.trim().parse::<i64>().map_err(|_| {
            format!(
                "\"${{random({})}}\": \"{}\" is not an integer",
                args.escape_debug(),
                s.trim().escape_debug()
            )
        })
    };
    let (min, max) = (parse(a)?, parse(b)?);
    if min > max {
        return Err(format!(
            "\"${{random({min},{max})}}\": the first bound must not exceed the second"
        ));
    }
    Ok(Part::Random { min, max })
}

/// Names of captured variables: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Placeholder words a captured variable may not shadow.
pub(crate) const RESERVED_NAMES: [&str; 7] =
    ["vu", "iter", "scenario", "uuid", "env", "data", "random"];

fn template_error(src: &str, path: &str, position: usize, message: &str) -> PlanError {
    PlanError::Template {
        path: path.to_string(),
        source_text: src.to_string(),
        position,
        message: message.to_string(),
    }
}

/// Compiles a `json:` body: the value is serialized as JSON, and each
/// string leaf is a template whose literal text is JSON-escaped. Keys are
/// not templates.
///
/// Placeholder values are inserted as they render, unescaped: `${vu}`,
/// `${iter}`, `${uuid}` and `${random}` can never need escaping, but a
/// captured value or data cell holding `"` or `\` would break the JSON.
pub(crate) fn parse_json_body(
    value: &serde_json::Value,
    scope: &Scope<'_>,
    path: &str,
) -> Result<Template, PlanError> {
    let mut builder = PartsBuilder::default();
    json_value(value, scope, path, &mut builder)?;
    Ok(Template::from_parts(value.to_string(), builder.finish()))
}

#[derive(Default)]
struct PartsBuilder {
    parts: Vec<Part>,
    literal: String,
}

impl PartsBuilder {
    fn text(&mut self, s: &str) {
        self.literal.push_str(s);
    }

    fn part(&mut self, part: Part) {
        match part {
            Part::Literal(s) => self.literal.push_str(&s),
            other => {
                if !self.literal.is_empty() {
                    self.parts
                        .push(Part::Literal(std::mem::take(&mut self.literal)));
                }
                self.parts.push(other);
            }
        }
    }

    fn finish(mut self) -> Vec<Part> {
        if !self.literal.is_empty() {
            self.parts.push(Part::Literal(self.literal));
        }
        self.parts
    }
}

fn json_value(
    value: &serde_json::Value,
    scope: &Scope<'_>,
    path: &str,
    out: &mut PartsBuilder,
) -> Result<(), PlanError> {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let (parts, _) = parse_parts(s, scope, path)?;
            out.text("\"");
            for part in parts {
                match part {
                    Part::Literal(text) => out.text(json_string_body(&text).as_str()),
                    other => out.part(other),
                }
            }
            out.text("\"");
        }
        Value::Array(items) => {
            out.text("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.text(",");
                }
                json_value(item, scope, &format!("{path}[{i}]"), out)?;
            }
            out.text("]");
        }
        Value::Object(map) => {
            out.text("{");
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.text(",");
                }
                out.text(&Value::String(key.clone()).to_string());
                out.text(":");
                json_value(item, scope, &format!("{path}.{key}"), out)?;
            }
            out.text("}");
        }
        scalar => out.text(&scalar.to_string()),
    }
    Ok(())
}

/// `s` escaped as the inside of a JSON string (without the quotes).
fn json_string_body(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::template::RenderContext;

    struct Fixture {
        env: BTreeMap<String, String>,
        vars: BTreeMap<String, VarSlot>,
        columns: Vec<String>,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                env: BTreeMap::from([("HOST".to_string(), "example.test".to_string())]),
                vars: BTreeMap::from([("token".to_string(), VarSlot(0))]),
                columns: vec!["user".into(), "pass".into()],
            }
        }

        fn parse(&self, src: &str) -> Result<Parsed, PlanError> {
            let env = EnvChain {
                layers: vec![&self.env],
            };
            let scope = Scope {
                env: &env,
                vars: &self.vars,
                data_columns: Some(&self.columns),
            };
            parse_template(src, &scope, "flow[0].request.url")
        }

        fn json(&self, v: serde_json::Value) -> Result<Template, PlanError> {
            let env = EnvChain {
                layers: vec![&self.env],
            };
            let scope = Scope {
                env: &env,
                vars: &self.vars,
                data_columns: Some(&self.columns),
            };
            parse_json_body(&v, &scope, "flow[0].request.json")
        }
    }

    fn render(t: &Template) -> String {
        let vars = vec![Some("T0K".to_string())];
        let row = vec!["ann".to_string(), "pw\"1".to_string()];
        t.render(&RenderContext {
            vu: 3,
            iter: 9,
            scenario: "main",
            vars: &vars,
            row: Some(&row),
        })
    }

    #[test]
    fn every_placeholder_kind() {
        let f = Fixture::new();
        let p = f
            .parse("http://${env.HOST}/u/${vu}/${iter}/${scenario}/${token}/${data.user}/${ random(5, 5) }")
            .expect("parses");
        assert_eq!(
            render(&p.template),
            "http://example.test/u/3/9/main/T0K/ann/5"
        );
        assert_eq!(
            p.display,
            "http://example.test/u/${vu}/${iter}/${scenario}/${token}/${data.user}/${ random(5, 5) }"
        );
        assert_eq!(
            p.template.parts()[0],
            Part::Literal("http://example.test/u/".into())
        );
        assert!(
            p.template.source().starts_with("http://${env.HOST}"),
            "source stays as written"
        );
    }

    #[test]
    fn env_only_templates_are_static_and_escapes_stay_literal() {
        let f = Fixture::new();
        let p = f.parse("https://${env.HOST}/a").expect("parses");
        assert_eq!(p.template.as_static(), Some("https://example.test/a"));
        let p = f.parse("cost: $${price} and $5").expect("parses");
        assert_eq!(p.template.as_static(), Some("cost: ${price} and $5"));
        let p = f.parse("").expect("parses");
        assert_eq!(p.template.as_static(), Some(""));
    }

    #[test]
    fn errors_name_the_field_and_position() {
        let f = Fixture::new();
        let e = f
            .parse("http://x/${vu")
            .expect_err("unterminated")
            .to_string();
        assert_eq!(
            e,
            r#"flow[0].request.url: unterminated "${" at character 10 of "http://x/${vu""#
        );
        let e = f.parse("/${tokn}").expect_err("unknown var").to_string();
        assert_eq!(
            e,
            r#"flow[0].request.url: unknown variable "${tokn}" (known: token)"#
        );
        let e = f
            .parse("/${env.NOPE}")
            .expect_err("unknown env")
            .to_string();
        assert!(
            e.starts_with(r#"flow[0].request.url: unknown env variable "${env.NOPE}""#),
            "{e}"
        );
        let e = f
            .parse("/${data.age}")
            .expect_err("unknown column")
            .to_string();
        assert!(
            e.contains("unknown data column \"age\" (columns: user, pass)"),
            "{e}"
        );
        let e = f.parse("/${random(9,1)}").expect_err("bounds").to_string();
        assert!(e.contains("must not exceed"), "{e}");
        let e = f.parse("/${random(a,1)}").expect_err("not int").to_string();
        assert!(e.contains("\"a\" is not an integer"), "{e}");
        let e = f.parse("/${}").expect_err("empty").to_string();
        assert!(e.contains("empty placeholder"), "{e}");
        let e = f.parse("/${foo.bar}").expect_err("unknown").to_string();
        assert!(e.contains("unknown placeholder \"${foo.bar}\""), "{e}");
        let e = f.parse("é${x").expect_err("unterminated").to_string();
        assert!(
            e.contains("at character 2"),
            "positions count characters: {e}"
        );
    }

    #[test]
    fn data_needs_a_data_section() {
        let env_map = BTreeMap::new();
        let env = EnvChain {
            layers: vec![&env_map],
        };
        let vars = BTreeMap::new();
        let scope = Scope {
            env: &env,
            vars: &vars,
            data_columns: None,
        };
        let e = parse_template("${data.user}", &scope, "flow[1].request.body")
            .expect_err("no data section")
            .to_string();
        assert!(
            e.starts_with("flow[1].request.body: \"${data.user}\" needs a `data:` section"),
            "{e}"
        );
        let e = parse_template("${x}", &scope, "p")
            .expect_err("no vars")
            .to_string();
        assert!(e.contains("no `capture` in this flow"), "{e}");
    }

    #[test]
    fn json_bodies_escape_literals_and_template_string_leaves() {
        let f = Fixture::new();
        let t = f
            .json(serde_json::json!({"user": "${data.user}", "n": 1, "q": "say \"hi\" ${vu}", "tags": ["${env.HOST}", null, true]}))
            .expect("parses");
        let body = render(&t);
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(parsed["user"], "ann");
        assert_eq!(parsed["q"], "say \"hi\" 3");
        assert_eq!(parsed["tags"][0], "example.test");
        assert_eq!(parsed["n"], 1);
        let e = f
            .json(serde_json::json!({"a": [{"b": "${nope}"}]}))
            .expect_err("unknown var")
            .to_string();
        assert!(
            e.starts_with("flow[0].request.json.a[0].b: unknown variable"),
            "{e}"
        );
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("token_2"));
        assert!(is_identifier("_x"));
        assert!(!is_identifier("2x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
