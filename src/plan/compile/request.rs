//! One request step: method, URL, headers, body, checks and captures.

use std::sync::Arc;

use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderName, HeaderValue, Method};

use super::super::error::PlanError;
use super::super::raw::{CAPTURE_KINDS, RawCapture, RawRequest, Scalar};
use super::super::template::{Part, Template};
use super::super::template_parse::{parse_json_body, parse_template};
use super::super::types::{
    Body, Capture, CaptureSource, Check, REGION_TAG, Request, TARGET_REGION_TAG,
};
use super::check::{check_kind, check_pointer, header_name, regex_reason};
use super::flow::{FlowContext, Registry, exactly_one};
use super::tags;

/// A request as written under `request:` or a method shortcut.
pub(crate) struct RequestInput<'a> {
    pub raw: &'a RawRequest,
    /// `get`, `post`, ... when written as a shortcut.
    pub forced_method: Option<&'static str>,
    /// The URL of the `get: URL` form (then `raw` is empty).
    pub url_only: Option<&'a str>,
}

pub(crate) fn compile_request(
    input: RequestInput<'_>,
    path: &str,
    group: &str,
    cx: &FlowContext<'_>,
    registry: &mut Registry,
) -> Result<Arc<Request>, PlanError> {
    let raw = input.raw;
    let id = registry.next_request_id(path)?;
    let method = method(raw, input.forced_method, path)?;

    let url_path = format!("{path}.url");
    let written = input.url_only.unwrap_or(&raw.url);
    let joined = match cx.target {
        Some(target) => Some(super::targets::target_url(target, written, &url_path)?),
        None => None,
    };
    let url_text = joined.as_deref().unwrap_or(written);
    let url = parse_template(url_text, &cx.scope, &url_path)?;
    check_url(&url.template, &url_path)?;

    let mut headers = Vec::new();
    for (name, Scalar(value)) in raw.headers.iter().flat_map(|h| h.0.iter()) {
        let header_path = format!("{path}.headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            PlanError::invalid(
                &header_path,
                name,
                "a header name of letters, digits and !#$%&'*+-.^_`|~",
            )
        })?;
        let value = parse_template(value, &cx.scope, &header_path)?.template;
        if let Some(fixed) = value.as_static() {
            HeaderValue::from_str(fixed).map_err(|_| {
                PlanError::invalid(
                    &header_path,
                    fixed,
                    "a header value without control characters",
                )
            })?;
        }
        headers.push((header, value));
    }

    let given = [
        raw.body.is_some(),
        raw.json.is_some(),
        raw.form.is_some(),
        raw.multipart.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(PlanError::field(
            path,
            "has more than one of `body`, `json`, `form` and `multipart`; use one",
        ));
    }
    let content_type = |headers: &mut Vec<(HeaderName, Template)>, value: &str| {
        if !headers.iter().any(|(n, _)| n == CONTENT_TYPE) {
            headers.push((CONTENT_TYPE, Template::literal(value)));
        }
    };
    let body = if let Some(text) = &raw.body {
        Some(Body::Text(
            parse_template(text, &cx.scope, &format!("{path}.body"))?.template,
        ))
    } else if let Some(value) = &raw.json {
        content_type(&mut headers, "application/json");
        Some(Body::Text(parse_json_body(
            value,
            &cx.scope,
            &format!("{path}.json"),
        )?))
    } else if let Some(fields) = &raw.multipart {
        let body = super::multipart::compile(fields, &format!("{path}.multipart"), cx)?;
        content_type(&mut headers, &body.content_type());
        Some(Body::Multipart(Box::new(body)))
    } else if let Some(fields) = &raw.form {
        content_type(&mut headers, "application/x-www-form-urlencoded");
        let mut compiled = Vec::new();
        for (name, Scalar(value)) in &fields.0 {
            let field_path = format!("{path}.form.{name}");
            compiled.push((
                name.clone(),
                parse_template(value, &cx.scope, &field_path)?.template,
            ));
        }
        Some(Body::Text(Template::form(&compiled)))
    } else {
        None
    };
    let compression = match &raw.compression {
        None => None,
        Some(list) => {
            let codings: Vec<String> = list
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect();
            if codings
                .iter()
                .any(|c| !matches!(c.as_str(), "gzip" | "deflate" | "br" | "zstd"))
            {
                return Err(PlanError::invalid(
                    format!("{path}.compression"),
                    list,
                    "gzip, deflate, br, zstd, or a comma list of them",
                ));
            }
            if body.is_none() {
                return Err(PlanError::field(
                    format!("{path}.compression"),
                    "is set on a request without a body; add `body`, `json`, `form` or `multipart`, or drop it",
                ));
            }
            let joined = codings.join(", ");
            if !headers
                .iter()
                .any(|(n, _)| *n == http::header::CONTENT_ENCODING)
            {
                headers.push((
                    http::header::CONTENT_ENCODING,
                    Template::literal(joined.clone()),
                ));
            }
            Some(joined)
        }
    };
    if !cx.http.user_agent.is_empty() && !headers.iter().any(|(n, _)| n == USER_AGENT) {
        headers.push((USER_AGENT, Template::literal(cx.http.user_agent.clone())));
    }

    let name = match &raw.name {
        Some(name) if name.trim().is_empty() => {
            return Err(PlanError::invalid(
                format!("{path}.name"),
                name,
                "a non-empty name",
            ));
        }
        Some(name) => name.clone(),
        None => url.display.clone(),
    };
    let timeout = match raw.timeout {
        Some(t) if t.0.is_zero() => {
            return Err(PlanError::invalid(
                format!("{path}.timeout"),
                "0s",
                "a positive duration",
            ));
        }
        Some(t) => t.0,
        None => cx.http.timeout,
    };
    let mut tags = tags(raw.tags.as_ref(), &format!("{path}.tags"))?;
    if let Some(target) = cx.target {
        if tags.iter().any(|(k, _)| k == REGION_TAG) {
            return Err(PlanError::field(
                format!("{path}.tags.region"),
                "with `targets`, tag \"region\" is set by Volley (the agent's region label, or `volley run --region`)",
            ));
        }
        tags.push((TARGET_REGION_TAG.to_string(), target.region.clone()));
    }

    let mut checks = Vec::new();
    for (j, check) in raw.check.iter().flatten().enumerate() {
        let check_path = format!("{path}.check[{j}]");
        let (kind, derived) = check_kind(check, &check_path)?;
        let name = match &check.name {
            Some(n) if n.trim().is_empty() => {
                return Err(PlanError::invalid(
                    format!("{check_path}.name"),
                    n,
                    "a non-empty check name",
                ));
            }
            Some(n) => n.clone(),
            None => derived,
        };
        let id = registry.check_id(cx.scenario, group, &name, &check_path)?;
        checks.push(Check { id, name, kind });
    }

    let mut captures = Vec::new();
    for (j, capture) in raw.capture.iter().flatten().enumerate() {
        captures.push(compile_capture(
            capture,
            &format!("{path}.capture[{j}]"),
            cx,
        )?);
    }

    let needs_body = checks.iter().any(|c| c.kind.reads_body())
        || captures.iter().any(|c| {
            matches!(
                c.source,
                CaptureSource::JsonPointer(_) | CaptureSource::Regex(_)
            )
        });

    let request = Arc::new(Request {
        id,
        path: path.to_owned(),
        method,
        url: url.template,
        headers,
        body,
        name,
        scenario: cx.scenario,
        group: group.to_string(),
        timeout,
        compression,
        redirects: super::redirect_limit(raw.redirects, &format!("{path}.redirects"))?,
        tags,
        checks,
        captures,
        needs_body,
        metrics: super::metric::request_metrics(
            raw.metrics.as_ref(),
            &format!("{path}.metrics"),
            cx,
        )?,
    });
    registry.requests.push(Arc::clone(&request));
    Ok(request)
}

fn method(raw: &RawRequest, forced: Option<&str>, path: &str) -> Result<Method, PlanError> {
    let text = match (forced, &raw.method) {
        (Some(key), Some(_)) => {
            return Err(PlanError::field(
                format!("{path}.method"),
                format!("`{key}:` already sets the method; use `request:` to choose another"),
            ));
        }
        (Some(key), None) => key.to_string(),
        (None, Some(m)) => m.clone(),
        (None, None) => "GET".to_string(),
    };
    let upper = text.trim().to_ascii_uppercase();
    Method::from_bytes(upper.as_bytes()).map_err(|_| {
        PlanError::invalid(
            format!("{path}.method"),
            text,
            "an HTTP method like GET or POST",
        )
    })
}

/// A fixed URL must be absolute `http(s)://host...`; a templated one must
/// at least start with the scheme when it starts with text.
fn check_url(url: &Template, path: &str) -> Result<(), PlanError> {
    const EXPECTED: &str = "an absolute http:// or https:// URL";
    let has_scheme = |s: &str| {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    };
    if let Some(fixed) = url.as_static() {
        let uri = fixed
            .parse::<http::Uri>()
            .map_err(|_| PlanError::invalid(path, fixed, EXPECTED))?;
        let scheme_ok = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
        if !scheme_ok || uri.host().is_none_or(str::is_empty) {
            return Err(PlanError::invalid(path, fixed, EXPECTED));
        }
        return Ok(());
    }
    match url.parts().first() {
        Some(Part::Literal(prefix)) if !has_scheme(prefix) => {
            Err(PlanError::invalid(path, url.source(), EXPECTED))
        }
        _ => Ok(()),
    }
}

fn compile_capture(
    capture: &RawCapture,
    path: &str,
    cx: &FlowContext<'_>,
) -> Result<Capture, PlanError> {
    let var = *cx.scope.vars.get(&capture.var).ok_or_else(|| {
        PlanError::field(format!("{path}.var"), "was not registered for this flow")
    })?;
    exactly_one(
        &[
            ("json", capture.json.is_some()),
            ("header", capture.header.is_some()),
            ("regex", capture.regex.is_some()),
            ("cookie", capture.cookie.is_some()),
        ],
        path,
        &format!("has no source; expected one of {CAPTURE_KINDS}"),
        &format!("a capture has exactly one of {CAPTURE_KINDS}"),
    )?;
    let source = if let Some(pointer) = &capture.json {
        check_pointer(pointer, &format!("{path}.json"))?;
        CaptureSource::JsonPointer(pointer.clone())
    } else if let Some(name) = &capture.header {
        CaptureSource::Header(header_name(name, &format!("{path}.header"))?)
    } else if let Some(pattern) = &capture.regex {
        let regex = regex::Regex::new(pattern).map_err(|e| {
            PlanError::invalid(
                format!("{path}.regex"),
                pattern,
                format!("a valid regular expression ({})", regex_reason(&e)),
            )
        })?;
        CaptureSource::Regex(regex)
    } else if let Some(name) = &capture.cookie {
        if name.is_empty() || name.contains(['=', ';', ' ']) {
            return Err(PlanError::invalid(
                format!("{path}.cookie"),
                name,
                "a cookie name (no '=', ';' or spaces)",
            ));
        }
        CaptureSource::Cookie(name.clone())
    } else {
        return Err(PlanError::field(
            path,
            format!("has no source; expected one of {CAPTURE_KINDS}"),
        ));
    };
    Ok(Capture { var, source })
}
