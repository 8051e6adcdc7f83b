//! The CRD shipped in `deploy/crd.yaml` and in the Helm chart must be exactly
//! what the `LoadTest` Rust type generates: a field added in Rust but not in
//! the installed CRD would be pruned by the apiserver without a word.

use std::path::{Path, PathBuf};

/// Files that must hold the generated CRD, relative to the package root.
const COPIES: [&str; 2] = [
    "deploy/crd.yaml",
    "chart/volley/crds/loadtests.volley.dev.yaml",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first line where two texts differ, to point a reader at the change.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut exp = expected.lines();
    let mut act = actual.lines();
    let mut line = 1;
    loop {
        match (exp.next(), act.next()) {
            (None, None) => return "only line endings differ".into(),
            (e, a) if e != a => {
                return format!(
                    "line {line}: generated {:?}, file has {:?}",
                    e.unwrap_or("<end of file>"),
                    a.unwrap_or("<end of file>")
                );
            }
            _ => line += 1,
        }
    }
}

fn check(generated: &str, rel: &str) -> Result<(), String> {
    let path = root().join(rel);
    let on_disk = std::fs::read_to_string(&path)
        .map_err(|e| format!("{rel}: cannot read {}: {e}", path.display()))?;
    if on_disk == generated {
        return Ok(());
    }
    Err(format!(
        "{rel} is out of date with src/kube/crd.rs ({}).\n  \
         Regenerate it: cargo run -- crd > deploy/crd.yaml && \
         cp deploy/crd.yaml chart/volley/crds/loadtests.volley.dev.yaml\n  \
         (or: cargo test --test crd_drift -- --ignored write_crd_files)",
        first_difference(generated, &on_disk)
    ))
}

#[test]
fn shipped_crds_match_the_rust_type() {
    let generated = volley::kube::crd::crd_yaml();
    let failures: Vec<String> = COPIES
        .iter()
        .filter_map(|rel| check(&generated, rel).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn drift_is_reported_with_the_fix() {
    let generated = volley::kube::crd::crd_yaml();
    let edited = generated.replacen("shortNames:\n    - lt", "shortNames:\n    - ltx", 1);
    assert_ne!(edited, generated, "the edit must change the text");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("crd.yaml");
    std::fs::write(&file, &edited).expect("write");
    let rel = file.to_str().expect("utf-8 temp path");
    // `root().join` of an absolute path is that path.
    let err = check(&generated, rel).expect_err("drift detected");
    assert!(err.contains("cargo run -- crd > deploy/crd.yaml"), "{err}");
    assert!(err.contains("\"    - lt\""), "{err}");
    assert!(err.contains("\"    - ltx\""), "{err}");
}

/// Writes the generated CRD into every shipped copy. Run it after changing
/// `src/kube/crd.rs`: `cargo test --test crd_drift -- --ignored write_crd_files`.
#[test]
#[ignore = "writes files; run by hand to regenerate the shipped CRDs"]
fn write_crd_files() {
    let generated = volley::kube::crd::crd_yaml();
    for rel in COPIES {
        let path = root().join(rel);
        if let Some(dir) = Path::new(&path).parent() {
            std::fs::create_dir_all(dir).expect("create the CRD directory");
        }
        std::fs::write(&path, &generated).expect("write the CRD file");
        println!("wrote {}", path.display());
    }
}
