//! Rendering the fleet CA as a Kubernetes `Secret` manifest (for `volley ca init --k8s-secret`).

/// Standard base64 (RFC 4648 §4, with `=` padding), as Kubernetes expects in `Secret.data`.
pub(crate) fn base64_encode(input: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, input)
}

/// A YAML double-quoted scalar for `s` (JSON string syntax is valid YAML), so any name is safe.
fn yaml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The `Secret` manifest holding `ca.crt` and `ca.key`.
pub(crate) fn render(name: &str, namespace: &str, cert_pem: &str, key_pem: &str) -> String {
    format!(
        "apiVersion: v1\n\
         kind: Secret\n\
         metadata:\n  \
           name: {name}\n  \
           namespace: {namespace}\n  \
           labels:\n    \
             app.kubernetes.io/part-of: volley\n    \
             app.kubernetes.io/component: fleet-ca\n\
         type: Opaque\n\
         data:\n  \
           ca.crt: {crt}\n  \
           ca.key: {key}\n",
        name = yaml_string(name),
        namespace = yaml_string(namespace),
        crt = base64_encode(cert_pem.as_bytes()),
        key = base64_encode(key_pem.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Vec<u8> {
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).expect("valid base64")
    }

    #[test]
    fn secret_is_valid_yaml_with_both_keys() {
        let yaml = render("volley-ca", "load: \"test\"", "CERT PEM\n", "KEY PEM\n");
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&yaml).expect("rendered YAML parses");
        assert_eq!(doc["kind"].as_str(), Some("Secret"));
        assert_eq!(doc["type"].as_str(), Some("Opaque"));
        assert_eq!(doc["metadata"]["name"].as_str(), Some("volley-ca"));
        assert_eq!(
            doc["metadata"]["namespace"].as_str(),
            Some("load: \"test\"")
        );
        let crt = doc["data"]["ca.crt"].as_str().expect("ca.crt present");
        let key = doc["data"]["ca.key"].as_str().expect("ca.key present");
        assert_eq!(decode(crt), b"CERT PEM\n");
        assert_eq!(decode(key), b"KEY PEM\n");
    }
}
