//! [`PlanError`]: everything that can be wrong with a plan, as one line a
//! person can act on.
//!
//! Every variant names where the problem is: the field path in the plan
//! (`scenarios.main.stages[2].target`), a CLI flag (`--vus`), the data file,
//! or a line and column for syntax errors. The CLI maps any `PlanError` to
//! k6's exit code 104 (invalid configuration).

use std::fmt;
use std::path::PathBuf;

/// Why a plan could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan file itself could not be read.
    #[error("cannot read plan {}: {}", quote_path(path), io_reason(source))]
    ReadPlan {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The text is not well-formed YAML or JSON. `snippet` is the offending
    /// line with a caret under `column`, when the position is known.
    #[error(
        "{format} syntax error at line {line} column {column}: {message}{}",
        Snippet(snippet)
    )]
    Syntax {
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
    },

    /// The document is well-formed but does not fit the plan schema
    /// (unknown field, wrong type, value in the wrong form). The position
    /// is known for YAML and JSON input.
    #[error("{}{}{message}", Position(*line, *column), PathPrefix(path))]
    Schema {
        path: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },

    /// A value has the right type but is not acceptable.
    #[error("{path}: got {}, expected {expected}", quote(value))]
    Invalid {
        path: String,
        value: String,
        expected: String,
    },

    /// Fields that cannot be used together, a missing required field, or a
    /// rule that spans several fields.
    #[error("{path}: {message}")]
    Field { path: String, message: String },

    /// `executor` names no k6 executor Volley runs.
    #[error(
        "{path}: unknown executor {}; expected one of {}",
        quote(value),
        EXECUTORS.join(", ")
    )]
    UnknownExecutor { path: String, value: String },

    /// A template names a variable that no `capture` in its flow writes.
    #[error("{path}: unknown variable {} ({})", quote(&format!("${{{name}}}")), KnownVars(known))]
    UnknownVariable {
        path: String,
        name: String,
        known: Vec<String>,
    },

    /// `${env.NAME}` with `NAME` set nowhere.
    #[error(
        "{path}: unknown env variable {}; set it with -e {name}=VALUE, in `env:`, or in the environment",
        quote(&format!("${{env.{name}}}"))
    )]
    UnknownEnv { path: String, name: String },

    /// A template that does not parse (unterminated `${`, bad placeholder).
    /// `position` is the 1-based character position in the field's text.
    #[error("{path}: {message} at character {position} of {}", quote(source_text))]
    Template {
        path: String,
        source_text: String,
        position: usize,
        message: String,
    },

    /// A threshold key or expression that does not parse or does not fit
    /// its metric.
    #[error("{path}: {}: {message}", quote(expression))]
    Threshold {
        path: String,
        expression: String,
        message: String,
    },

    /// The data file could not be read.
    #[error("data.file: cannot read {}: {}", quote_path(file), io_reason(source))]
    DataRead {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The data file was read but its content is unusable.
    #[error("data.file: {}: {message}", quote_path(file))]
    Data { file: PathBuf, message: String },
}

/// The executors Volley accepts, in k6's documentation order.
pub const EXECUTORS: [&str; 6] = [
    "constant-vus",
    "ramping-vus",
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "per-vu-iterations",
    "shared-iterations",
];

impl PlanError {
    /// The field path (or CLI flag) the error is about, if it has one.
    pub fn path(&self) -> Option<&str> {
        match self {
            PlanError::Schema { path, .. }
            | PlanError::Invalid { path, .. }
            | PlanError::Field { path, .. }
            | PlanError::UnknownExecutor { path, .. }
            | PlanError::UnknownVariable { path, .. }
            | PlanError::UnknownEnv { path, .. }
            | PlanError::Template { path, .. }
            | PlanError::Threshold { path, .. } => Some(path),
            PlanError::DataRead { .. } | PlanError::Data { .. } => Some("data.file"),
            PlanError::ReadPlan { .. } | PlanError::Syntax { .. } => None,
        }
    }

    pub(crate) fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        PlanError::Field {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(
        path: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        PlanError::Invalid {
            path: path.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }
}

/// `"text"` with quotes, backslashes and control characters escaped, so a
/// value always reads as one token on one line.
pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

fn quote_path(p: &std::path::Path) -> String {
    quote(&p.display().to_string())
}

/// An I/O error's text without the `(os error N)` suffix, which tells a
/// person nothing more.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

struct Snippet<'a>(&'a str);

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "\n{}", self.0)
        }
    }
}

struct Position(Option<usize>, Option<usize>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(l), Some(c)) => write!(f, "line {l} column {c}: "),
            (Some(l), None) => write!(f, "line {l}: "),
            _ => Ok(()),
        }
    }
}

struct PathPrefix<'a>(&'a str);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() || self.0 == "." {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

struct KnownVars<'a>(&'a [String]);

impl fmt::Display for KnownVars<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("no `capture` in this flow defines a variable")
        } else {
            write!(f, "known: {}", self.0.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_path() {
        let e = PlanError::invalid(
            "scenarios.main.stages[2].target",
            "-5",
            "a non-negative integer",
        );
        assert_eq!(
            e.to_string(),
            r#"scenarios.main.stages[2].target: got "-5", expected a non-negative integer"#
        );
        let e = PlanError::UnknownExecutor {
            path: "scenarios.main.executor".into(),
            value: "constant-vu".into(),
        };
        assert!(e.to_string().starts_with(
            r#"scenarios.main.executor: unknown executor "constant-vu"; expected one of constant-vus, ramping-vus,"#
        ));
        let e = PlanError::UnknownVariable {
            path: "flow[0].request.url".into(),
            name: "tokn".into(),
            known: vec!["token".into()],
        };
        assert_eq!(
            e.to_string(),
            r#"flow[0].request.url: unknown variable "${tokn}" (known: token)"#
        );
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn io_errors_drop_the_os_code() {
        let e = PlanError::DataRead {
            file: "users.csv".into(),
            source: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            e.to_string(),
            r#"data.file: cannot read "users.csv": No such file or directory"#
        );
        assert_eq!(e.path(), Some("data.file"));
    }

    #[test]
    fn schema_errors_lead_with_the_position() {
        let e = PlanError::Schema {
            path: "scenarios.main.vu".into(),
            line: Some(4),
            column: Some(3),
            message: r#"unknown field "vu", expected one of "executor""#.into(),
        };
        assert_eq!(
            e.to_string(),
            r#"line 4 column 3: scenarios.main.vu: unknown field "vu", expected one of "executor""#
        );
        let e = PlanError::Schema {
            path: ".".into(),
            line: None,
            column: None,
            message: "x".into(),
        };
        assert_eq!(e.to_string(), "x");
    }
}
