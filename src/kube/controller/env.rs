//! A test's `${env.NAME}` values: `spec.envFrom` (whole Secrets and
//! ConfigMaps), then `spec.env` (literals) and `spec.envValueFrom` (one key
//! each), read through the API when the test starts, as the kubelet fills a
//! container's environment.
//!
//! Values never leave this module except in the returned map, which goes
//! into the submit (to the agents over mutual TLS; at rest they are
//! redacted, see `fleet::redact`). Messages name the field path, the
//! object and the key, and list an object's keys, never a value.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;

use super::conditions::Reason;
use crate::kube::crd::{EnvFromSource, EnvVarSource, KeySelector, LoadTestSpec, ObjectRef};
use crate::kube::error::{Call, Refusals, classify};

/// Where the values are read.
pub struct Sources<'a> {
    pub secrets: &'a Api<Secret>,
    pub configmaps: &'a Api<ConfigMap>,
    pub refusals: &'a Refusals,
    /// The test's namespace, for messages.
    pub namespace: &'a str,
}

/// A Secret or a ConfigMap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Secret,
    ConfigMap,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::ConfigMap => "configmaps",
        }
    }
}

/// An object's keys and their bytes; `None` when it does not exist.
type Fetched = Option<BTreeMap<String, Vec<u8>>>;

/// A failure, as the status shows it.
pub type EnvError = (Reason, String);

/// The env values of `spec`, or the reason and message the test fails
/// with. Each object is read once however often it is named.
pub async fn resolve(
    spec: &LoadTestSpec,
    sources: &Sources<'_>,
) -> Result<BTreeMap<String, String>, EnvError> {
    check(spec)?;
    let mut cache: HashMap<(Kind, String), Fetched> = HashMap::new();
    let mut env = BTreeMap::new();

    for (i, from) in spec.env_from.iter().enumerate() {
        let (kind, field, r) = from_ref(from, i)?;
        let Some(keys) = fetch(&mut cache, sources, kind, &r.name, &field).await? else {
            if r.optional == Some(true) {
                continue;
            }
            return Err(not_found(&field, kind, &r.name, sources.namespace));
        };
        let prefix = from.prefix.as_deref().unwrap_or("");
        for (key, bytes) in keys {
            let value = text(bytes, &field, kind, &r.name, &key)?;
            env.insert(format!("{prefix}{key}"), value);
        }
    }

    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));

    for (name, source) in &spec.env_value_from {
        let (kind, field, selector) = value_ref(source, name)?;
        let Some(keys) = fetch(&mut cache, sources, kind, &selector.name, &field).await? else {
            if selector.optional == Some(true) {
                continue;
            }
            return Err(not_found(&field, kind, &selector.name, sources.namespace));
        };
        let Some(bytes) = keys.get(&selector.key) else {
            if selector.optional == Some(true) {
                continue;
            }
            return Err((
                Reason::ReferenceNotFound,
                format!(
                    "{field}.key: {} {:?} has no key {:?} ({})",
                    kind.name(),
                    selector.name,
                    selector.key,
                    keys_of(&keys)
                ),
            ));
        };
        let value = text(bytes.clone(), &field, kind, &selector.name, &selector.key)?;
        env.insert(name.clone(), value);
    }
    Ok(env)
}

/// What the CRD's schema says, checked again: the API server may not
/// enforce it (an older CRD, or validation off).
fn check(spec: &LoadTestSpec) -> Result<(), EnvError> {
    let invalid = |m: String| (Reason::InvalidSpec, m);
    for name in spec.env_value_from.keys() {
        if name.is_empty() {
            return Err(invalid(
                "spec.envValueFrom: an empty variable name; expected a name like API_KEY".into(),
            ));
        }
        if spec.env.contains_key(name) {
            return Err(invalid(format!(
                "spec.envValueFrom.{name}: also set in spec.env; keep one of the two"
            )));
        }
    }
    for (i, from) in spec.env_from.iter().enumerate() {
        from_ref(from, i)?;
    }
    for (name, source) in &spec.env_value_from {
        value_ref(source, name)?;
    }
    Ok(())
}

/// The object an `envFrom` entry names, with its field path.
fn from_ref(from: &EnvFromSource, i: usize) -> Result<(Kind, String, &ObjectRef), EnvError> {
    let (kind, field, r) = match (&from.secret_ref, &from.config_map_ref) {
        (Some(r), None) => (Kind::Secret, format!("spec.envFrom[{i}].secretRef"), r),
        (None, Some(r)) => (
            Kind::ConfigMap,
            format!("spec.envFrom[{i}].configMapRef"),
            r,
        ),
        (Some(_), Some(_)) | (None, None) => {
            return Err((
                Reason::InvalidSpec,
                format!(
                    "spec.envFrom[{i}]: set exactly one of secretRef {{name}} and \
                     configMapRef {{name}}"
                ),
            ));
        }
    };
    if r.name.trim().is_empty() {
        return Err((
            Reason::InvalidSpec,
            format!(
                "{field}.name: is empty; expected the name of a {} in the LoadTest's namespace",
                kind.name()
            ),
        ));
    }
    Ok((kind, field, r))
}

/// The key an `envValueFrom` entry names, with its field path.
fn value_ref<'a>(
    source: &'a EnvVarSource,
    name: &str,
) -> Result<(Kind, String, &'a KeySelector), EnvError> {
    let (kind, field, selector) = match (&source.secret_key_ref, &source.config_map_key_ref) {
        (Some(s), None) => (
            Kind::Secret,
            format!("spec.envValueFrom.{name}.secretKeyRef"),
            s,
        ),
        (None, Some(s)) => (
            Kind::ConfigMap,
            format!("spec.envValueFrom.{name}.configMapKeyRef"),
            s,
        ),
        (Some(_), Some(_)) | (None, None) => {
            return Err((
                Reason::InvalidSpec,
                format!(
                    "spec.envValueFrom.{name}: set exactly one of secretKeyRef {{name, key}} \
                     and configMapKeyRef {{name, key}}"
                ),
            ));
        }
    };
    for (part, value, expected) in [
        (
            "name",
            &selector.name,
            "the name of an object in the LoadTest's namespace",
        ),
        ("key", &selector.key, "one of the object's keys"),
    ] {
        if value.trim().is_empty() {
            return Err((
                Reason::InvalidSpec,
                format!("{field}.{part}: is empty; expected {expected}"),
            ));
        }
    }
    Ok((kind, field, selector))
}

/// Reads one object (once per resolve).
async fn fetch(
    cache: &mut HashMap<(Kind, String), Fetched>,
    sources: &Sources<'_>,
    kind: Kind,
    name: &str,
    field: &str,
) -> Result<Fetched, EnvError> {
    if let Some(found) = cache.get(&(kind, name.to_string())) {
        return Ok(found.clone());
    }
    let got = match kind {
        Kind::Secret => sources.secrets.get_opt(name).await.map(|s| {
            s.map(|s| {
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect()
            })
        }),
        Kind::ConfigMap => sources.configmaps.get_opt(name).await.map(|cm| {
            cm.map(|cm| {
                let mut keys: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                keys.extend(
                    cm.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                keys
            })
        }),
    };
    let found = got.map_err(|e| {
        let err = classify(
            Call {
                verb: "get",
                resource: kind.resource(),
                name,
                namespace: Some(sources.namespace),
            },
            e,
        );
        if sources
            .refusals
            .report_if_forbidden(&err, "env values from Secrets and ConfigMaps")
        {
            (
                Reason::ReferenceForbidden,
                format!(
                    "{field}.name: the agents' service account may not get {} {name:?} in \
                     namespace {:?} (403); grant it get on {} (a rule with resourceNames must \
                     name {name:?}: the chart's rbac.secretNames), or set the value in spec.env",
                    kind.resource(),
                    sources.namespace,
                    kind.resource()
                ),
            )
        } else {
            (
                Reason::TestError,
                format!("{field}.name: cannot read {} {name:?}: {err}", kind.name()),
            )
        }
    })?;
    cache.insert((kind, name.to_string()), found.clone());
    Ok(found)
}

fn not_found(field: &str, kind: Kind, name: &str, namespace: &str) -> EnvError {
    (
        Reason::ReferenceNotFound,
        format!(
            "{field}.name: {} {name:?} not found in namespace {namespace:?}; it must be in the \
             LoadTest's own namespace (or mark the reference optional: true)",
            kind.name()
        ),
    )
}

/// A value as text; binary values are refused, naming where they are.
fn text(
    bytes: Vec<u8>,
    field: &str,
    kind: Kind,
    name: &str,
    key: &str,
) -> Result<String, EnvError> {
    String::from_utf8(bytes).map_err(|_| {
        (
            Reason::InvalidSpec,
            format!(
                "{field}: key {key:?} of {} {name:?} is not UTF-8 text; env values must be text",
                kind.name()
            ),
        )
    })
}

/// `its keys: a, b` or `it has no keys`.
fn keys_of(keys: &BTreeMap<String, Vec<u8>>) -> String {
    if keys.is_empty() {
        return "it has no keys".to_string();
    }
    let names: Vec<&str> = keys.keys().map(String::as_str).collect();
    format!("its keys: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(name: &str, key: &str) -> KeySelector {
        KeySelector {
            name: name.into(),
            key: key.into(),
            optional: None,
        }
    }

    #[test]
    fn a_name_in_env_and_env_value_from_is_refused() {
        let mut spec = LoadTestSpec::inline("x");
        spec.env.insert("API_KEY".into(), "literal".into());
        spec.env_value_from.insert(
            "API_KEY".into(),
            EnvVarSource {
                secret_key_ref: Some(selector("api", "token")),
                config_map_key_ref: None,
            },
        );
        let (reason, message) = check(&spec).expect_err("conflict");
        assert_eq!(reason, Reason::InvalidSpec);
        assert_eq!(
            message,
            "spec.envValueFrom.API_KEY: also set in spec.env; keep one of the two"
        );
    }

    #[test]
    fn each_source_names_exactly_one_object() {
        let mut spec = LoadTestSpec::inline("x");
        spec.env_value_from.insert(
            "TOKEN".into(),
            EnvVarSource {
                secret_key_ref: Some(selector("a", "b")),
                config_map_key_ref: Some(selector("c", "d")),
            },
        );
        let (_, message) = check(&spec).expect_err("two sources");
        assert!(
            message.starts_with("spec.envValueFrom.TOKEN: set exactly one of"),
            "{message}"
        );

        let mut spec = LoadTestSpec::inline("x");
        spec.env_from.push(EnvFromSource {
            prefix: None,
            secret_ref: None,
            config_map_ref: None,
        });
        let (_, message) = check(&spec).expect_err("no source");
        assert!(
            message.starts_with("spec.envFrom[0]: set exactly one of"),
            "{message}"
        );

        let mut spec = LoadTestSpec::inline("x");
        spec.env_value_from.insert(
            "TOKEN".into(),
            EnvVarSource {
                secret_key_ref: Some(selector("api", " ")),
                config_map_key_ref: None,
            },
        );
        let (_, message) = check(&spec).expect_err("empty key");
        assert_eq!(
            message,
            "spec.envValueFrom.TOKEN.secretKeyRef.key: is empty; expected one of the object's keys"
        );
    }
}
