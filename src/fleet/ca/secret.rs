//! Rendering the fleet CA as a Kubernetes `Secret` manifest (for `volley ca init --k8s-secret`),
//! with the small standard base64 encoder it needs.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4, with `=` padding), as Kubernetes expects in `Secret.data`.
pub(crate) fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
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

    /// Test-side decoder, to check that what we encode comes back unchanged.
    fn decode(s: &str) -> Vec<u8> {
        let value = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32);
        let mut out = Vec::new();
        for quad in s.as_bytes().chunks(4) {
            let vals: Vec<u32> = quad.iter().filter_map(|&c| value(c)).collect();
            let n = vals
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, v)| acc | (v << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..vals.len().saturating_sub(1)]);
        }
        out
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64_encode(plain.as_bytes()), encoded, "input {plain:?}");
        }
        assert_eq!(base64_encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    proptest::proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let encoded = base64_encode(&bytes);
            proptest::prop_assert_eq!(encoded.len() % 4, 0);
            proptest::prop_assert_eq!(decode(&encoded), bytes);
        }
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
