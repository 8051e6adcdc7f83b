//! `targets:`: one endpoint per region. Region names are checked (they
//! become tag values and threshold keys such as
//! `http_req_duration{region:us-east,target_region:eu-west}`), URLs must
//! be absolute `http(s)://` bases that a flow's request paths extend.

use super::super::error::PlanError;
use super::super::raw::OrderedMap;
use super::super::types::Target;

/// The expected form of a region name.
pub(crate) const REGION_FORM: &str =
    "a region name of 1-63 characters from a-z, A-Z, 0-9, '.', '_' and '-', like eu-west";

/// True when `name` is a region name Volley accepts in `targets` and
/// `--region`: 1-63 characters `[A-Za-z0-9._-]`, safe in tags, threshold
/// keys and agent labels.
pub fn is_region_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The plan's targets, in document order (empty without `targets:`).
pub(crate) fn targets(raw: Option<&OrderedMap<String>>) -> Result<Vec<Target>, PlanError> {
    let Some(map) = raw else {
        return Ok(Vec::new());
    };
    if map.0.is_empty() {
        return Err(PlanError::field(
            "targets",
            "needs at least one region, like `targets: {us-east: \"http://us.example.com\"}`",
        ));
    }
    let mut out = Vec::with_capacity(map.0.len());
    for (region, url) in &map.0 {
        if !is_region_name(region) {
            return Err(PlanError::invalid("targets", region, REGION_FORM));
        }
        out.push(Target {
            region: region.clone(),
            url: base_url(url, &format!("targets.{region}"))?,
        });
    }
    Ok(out)
}

/// An absolute `http(s)://host[:port][/path]` without query, fragment or
/// `$`, its trailing `/` removed.
fn base_url(url: &str, path: &str) -> Result<String, PlanError> {
    const EXPECTED: &str = "an absolute http:// or https:// URL without query or fragment, like http://us.example.com:8080";
    let uri = url
        .parse::<http::Uri>()
        .map_err(|_| PlanError::invalid(path, url, EXPECTED))?;
    let scheme_ok = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let host_ok = uri.host().is_some_and(|h| !h.is_empty());
    if !scheme_ok || !host_ok || uri.query().is_some() || url.contains(['#', '$']) {
        return Err(PlanError::invalid(path, url, EXPECTED));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The URL a flow's request sends to `target`: its path (which must start
/// with `/`) after the target's base.
pub(crate) fn target_url(target: &Target, written: &str, path: &str) -> Result<String, PlanError> {
    if !written.starts_with('/') {
        return Err(PlanError::invalid(
            path,
            written,
            "a path starting with `/`: with `targets`, a flow's URLs are relative to each target",
        ));
    }
    Ok(format!("{}{written}", target.url))
}
