//! The entry points: [`parse`] a plan's text, [`load_file`] from disk,
//! [`from_url`] for `volley run URL`. Syntax and schema errors from serde
//! are turned into [`PlanError`]s with the field path and position.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_path_to_error::{Path as SerdePath, Segment};

use super::compile::compile;
use super::data::{FileSource, FsFiles};
use super::error::PlanError;
use super::raw::{RawPlan, RawRequest, RawStep, RequestShort};
use super::types::{Plan, Stage};

/// Everything besides the plan text that shapes the result.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-e KEY=VALUE` values; win over everything.
    pub cli_env: BTreeMap<String, String>,
    /// A snapshot of the process environment (the caller reads it; plan/
    /// never calls std::env).
    pub process_env: BTreeMap<String, String>,
    /// Directory that relative data-file paths are resolved against (the
    /// plan file's directory).
    pub base_dir: PathBuf,
    /// k6 CLI overrides (`--vus`, `--duration`, `--iterations`, `--stage`),
    /// applied like k6 does (see `compile::executor`).
    pub overrides: Overrides,
}

/// k6's execution flags. `duration`, `iterations` or `stages` replace the
/// plan's scenarios with one `default` scenario; `vus` alone only replaces
/// the plan's top-level `vus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub vus: Option<u64>,
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    pub stages: Option<Vec<Stage>>,
    /// `--tag NAME=VALUE`: over the plan's top-level `tags`.
    pub tags: Vec<(String, String)>,
    /// `--no-thresholds`: the plan's thresholds are left out.
    pub no_thresholds: bool,
    /// `--local-ips`: over the plan's `localIPs`.
    pub local_ips: Option<String>,
    /// `--dns` (k6's `ttl=…,select=…,policy=…`): over the plan's `dns`.
    pub dns: Option<String>,
    /// `--rps`: over the plan's `rps` (0: no cap).
    pub rps: Option<u64>,
    /// `--system-tags` (comma-separated): over the plan's `systemTags`.
    pub system_tags: Option<String>,
    /// k6's HTTP option flags (`--user-agent`, `--max-redirects`, ...).
    pub http: HttpOverrides,
}

/// k6's flags (and `K6_*` variables) for HTTP options; each replaces the
/// plan's or script's value when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpOverrides {
    pub user_agent: Option<String>,
    pub max_redirects: Option<u32>,
    pub insecure_skip_tls_verify: bool,
    pub no_connection_reuse: bool,
    pub discard_response_bodies: bool,
    pub no_cookies_reset: bool,
}

/// The syntax of a plan's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    /// JSON is valid YAML, but JSON syntax errors read better from a JSON parser.
    Json,
}

impl Format {
    /// `.json` → JSON, anything else → YAML.
    pub fn for_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Parses and validates a plan. Data files are read through `files`,
/// relative to `opts.base_dir`.
pub fn parse(
    text: &str,
    format: Format,
    opts: &LoadOptions,
    files: &dyn FileSource,
) -> Result<Plan, PlanError> {
    let raw = match format {
        Format::Yaml => parse_yaml(text)?,
        Format::Json => parse_json(text)?,
    };
    compile(raw, opts, files)
}

/// Reads a plan file: the format follows the extension and relative data
/// paths resolve against the file's directory (`opts.base_dir` is ignored).
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Plan, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::ReadPlan {
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let opts = LoadOptions {
        base_dir,
        ..opts.clone()
    };
    parse(&text, Format::for_path(path), &opts, &FsFiles)
}

/// The plan of `volley run URL`: one GET of `url` per iteration, shaped by
/// `opts.overrides` (no flags: one VU, one iteration, as k6). The URL is
/// taken literally (`${` is not a placeholder here) and is its own `name`.
pub fn from_url(url: &str, opts: &LoadOptions) -> Result<Plan, PlanError> {
    let parsed = url.parse::<http::Uri>().ok();
    let scheme_ok = parsed
        .as_ref()
        .and_then(|u| u.scheme_str())
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    if !scheme_ok
        || parsed
            .as_ref()
            .and_then(|u| u.host())
            .is_none_or(str::is_empty)
    {
        return Err(PlanError::invalid(
            "URL",
            url,
            "an absolute http:// or https:// URL",
        ));
    }
    let request = RawRequest {
        url: url.replace("${", "$${"),
        name: Some(url.to_string()),
        ..RawRequest::default()
    };
    let raw = RawPlan {
        flow: Some(vec![RawStep {
            get: Some(RequestShort::Full(Box::new(request))),
            ..RawStep::default()
        }]),
        ..RawPlan::default()
    };
    compile(raw, opts, &FsFiles)
}

/// A plan from a script's `options` (already JSON): the same schema as a
/// plan document, with scenarios naming the script's `exports` by `exec`.
pub fn from_script_options(
    options: serde_json::Value,
    exports: Vec<String>,
    opts: &LoadOptions,
) -> Result<Plan, PlanError> {
    let mut raw =
        serde_path_to_error::deserialize::<_, RawPlan>(options).map_err(|e| PlanError::Schema {
            path: path_string(e.path()),
            line: None,
            column: None,
            message: e.inner().to_string(),
        })?;
    raw.flow = Some(Vec::new());
    raw.script_exports = Some(exports);
    compile(raw, opts, &FsFiles)
}

fn parse_yaml(text: &str) -> Result<RawPlan, PlanError> {
    if let Some((line, column)) = super::depth::too_deep(text) {
        return Err(PlanError::Syntax {
            format: "YAML",
            line,
            column,
            message: format!(
                "nesting deeper than {} levels; a plan never needs that many",
                super::depth::MAX_DEPTH
            ),
            snippet: snippet(text, line, column),
        });
    }
    if super::alias::expands_too_far(text) {
        let (line, column) = super::alias::first_alias(text);
        return Err(PlanError::Syntax {
            format: "YAML",
            line,
            column,
            message: format!(
                "its aliases (`*name`) expand the document past {} values; a plan never needs \
                 that many",
                super::alias::budget(text.len())
            ),
            snippet: snippet(text, line, column),
        });
    }
    // Well-formedness first, so that a syntax error (or a repeated key)
    // is reported as such and not as a schema mismatch.
    let mut value = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        PlanError::Syntax {
            format: "YAML",
            line,
            column,
            message: clean_message(&e.to_string(), "", Some((line, column))),
            snippet: snippet(text, line, column),
        }
    })?;
    if has_merge_keys(&value) {
        // Merge keys (`<<: *base`) only exist on the value tree, which has
        // no positions: errors in such plans carry the path alone.
        value.apply_merge().map_err(|e| PlanError::Schema {
            path: ".".into(),
            line: None,
            column: None,
            message: clean_message(&e.to_string(), ".", None),
        })?;
        return serde_path_to_error::deserialize::<_, RawPlan>(value).map_err(|e| {
            let path = path_string(e.path());
            PlanError::Schema {
                message: clean_message(&e.inner().to_string(), &path, None),
                line: None,
                column: None,
                path,
            }
        });
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, RawPlan>(de).map_err(|e| {
        let path = path_string(e.path());
        let position = e.inner().location().map(|l| (l.line(), l.column()));
        PlanError::Schema {
            message: clean_message(&e.inner().to_string(), &path, position),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            path,
        }
    })
}

/// True when some mapping has a `<<` key.
fn has_merge_keys(value: &serde_yaml_ng::Value) -> bool {
    use serde_yaml_ng::Value;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Mapping(m) => {
                if m.contains_key("<<") {
                    return true;
                }
                stack.extend(m.values());
            }
            Value::Sequence(items) => stack.extend(items.iter()),
            Value::Tagged(t) => stack.push(&t.value),
            _ => {}
        }
    }
    false
}

fn parse_json(text: &str) -> Result<RawPlan, PlanError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = serde_path_to_error::deserialize::<_, RawPlan>(&mut de)
        .map_err(|e| json_error(text, path_string(e.path()), e.inner()))?;
    de.end().map_err(|e| json_error(text, ".".into(), &e))?;
    Ok(raw)
}

fn json_error(text: &str, path: String, e: &serde_json::Error) -> PlanError {
    let (line, column) = (e.line(), e.column());
    let message = clean_message(&e.to_string(), &path, Some((line, column)));
    if matches!(e.classify(), serde_json::error::Category::Data) {
        PlanError::Schema {
            path,
            line: Some(line),
            column: Some(column),
            message,
        }
    } else {
        PlanError::Syntax {
            format: "JSON",
            line,
            column,
            message,
            snippet: snippet(text, line, column),
        }
    }
}

/// `scenarios.main.stages[2].target`, or `.` for the root.
fn path_string(path: &SerdePath) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() { ".".into() } else { out }
}

/// The parser's message without what the error already says elsewhere:
/// the trailing ` at line L column C`, a leading `path: ` (the YAML parser
/// adds its own), and with serde's backticks turned into double quotes.
fn clean_message(message: &str, path: &str, position: Option<(usize, usize)>) -> String {
    let mut text = message;
    if let Some((line, column)) = position {
        text = text
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(text);
    }
    if !path.is_empty() && path != "." {
        let cuts = path
            .char_indices()
            .filter(|(_, c)| matches!(c, '.' | '['))
            .map(|(i, _)| i)
            .chain([path.len()]);
        let mut prefixes: Vec<&str> = cuts.map(|i| &path[..i]).filter(|p| !p.is_empty()).collect();
        prefixes.reverse();
        if let Some(rest) = prefixes
            .iter()
            .find_map(|p| text.strip_prefix(&format!("{p}: ")))
        {
            text = rest;
        }
    }
    let mut text = text.replace('`', "\"");
    // serde's "invalid type: sequence, expected struct RawRequest" reads
    // like the loader's own "got a list, expected a map".
    if let Some(rest) = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|p| text.strip_prefix(p))
    {
        let rest = [
            ("unit value", "null"),
            ("sequence", "a list"),
            ("map", "a map"),
        ]
        .iter()
        .find_map(|(serde, ours)| rest.strip_prefix(serde).map(|r| format!("{ours}{r}")))
        .unwrap_or_else(|| rest.to_string());
        text = format!("got {rest}");
    }
    match text.find("expected struct ") {
        Some(at) => {
            let name_start = at + "expected struct ".len();
            let name_len = text[name_start..]
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(text.len() - name_start);
            format!(
                "{}expected a map{}",
                &text[..at],
                &text[name_start + name_len..]
            )
        }
        None => text,
    }
}

/// The line of `text` at `line` (1-based) with a caret under `column`,
/// cut to a window around the column for long (minified) lines.
fn snippet(text: &str, line: usize, column: usize) -> String {
    const WINDOW: usize = 60;
    let Some(source) = line.checked_sub(1).and_then(|l| text.lines().nth(l)) else {
        return String::new();
    };
    let chars: Vec<char> = source
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let caret_at = column.saturating_sub(1).min(chars.len());
    let start = caret_at.saturating_sub(WINDOW);
    let end = (caret_at + WINDOW).min(chars.len());
    let shown: String = chars[start..end].iter().collect();
    let lead = if start > 0 { "…" } else { "" };
    let pad = " ".repeat(caret_at - start + lead.chars().count());
    format!("  {lead}{shown}\n  {pad}^")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_parser_messages() {
        assert_eq!(
            clean_message(
                "scenarios.main: unknown field `vu`, expected `vus` at line 4 column 5",
                "scenarios.main.vu",
                Some((4, 5))
            ),
            "unknown field \"vu\", expected \"vus\""
        );
        assert_eq!(
            clean_message(
                "stages[1].target: got \"-5\" at line 6 column 17",
                "stages[1].target",
                Some((6, 17))
            ),
            "got \"-5\""
        );
        assert_eq!(clean_message("plain", ".", None), "plain");
        assert_eq!(
            clean_message("invalid type: string \"x\", expected a boolean", ".", None),
            "got string \"x\", expected a boolean"
        );
        assert_eq!(
            clean_message(
                "invalid type: unit value, expected struct RawPlan",
                ".",
                None
            ),
            "got null, expected a map"
        );
        assert_eq!(
            clean_message(
                "invalid type: sequence, expected struct RawRequest at line 1 column 2",
                "x",
                Some((1, 2))
            ),
            "got a list, expected a map"
        );
    }

    #[test]
    fn snippets_point_at_the_column() {
        assert_eq!(snippet("a: 1\nb: [\n", 2, 4), "  b: [\n     ^");
        assert_eq!(snippet("x", 9, 1), "");
        let long = format!("{}X", "a".repeat(200));
        let s = snippet(&long, 1, 201);
        assert!(s.contains('X') && s.contains('…'), "{s}");
        let caret_line = s.lines().nth(1).expect("two lines");
        let text_line = s.lines().next().expect("two lines");
        assert_eq!(
            caret_line.chars().count() - 1,
            text_line.chars().position(|c| c == 'X').expect("X shown"),
            "caret under the column"
        );
    }

    #[test]
    fn format_by_extension() {
        assert_eq!(Format::for_path(Path::new("a/b.JSON")), Format::Json);
        assert_eq!(Format::for_path(Path::new("a/b.yaml")), Format::Yaml);
        assert_eq!(Format::for_path(Path::new("plan")), Format::Yaml);
    }
}
