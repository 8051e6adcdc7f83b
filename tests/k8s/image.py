"""Cheap sanity checks of deploy/Dockerfile, for a machine with no
container engine: the build command it runs must fit the Cargo package.

- it builds `cargo build --release --locked --bin volley` and the package
  has a `volley` binary target;
- every locked dependency's `rust-version` fits the builder image's Rust;
- the runtime stage runs the binary at /usr/local/bin/volley as uid 65532,
  with `agent` as the default command;
- the dockerignore does not drop what the build needs.
"""

from __future__ import annotations

import fnmatch
import json
import pathlib
import re
import subprocess

BUILD_COMMAND = "cargo build --release --locked --bin volley"


def _version(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def cargo_metadata(root: pathlib.Path) -> dict:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=root, check=True, capture_output=True, text=True, timeout=300,
    )
    return json.loads(out.stdout)


def check_dockerfile(root: pathlib.Path, metadata: dict) -> list[str]:
    text = (root / "deploy" / "Dockerfile").read_text()
    # Join continuation lines so a RUN split over lines reads as one.
    joined = re.sub(r"\\\n\s*", " ", text)
    problems = []
    builder = re.search(r"^FROM\s+rust:(\d+\.\d+)[^\s]*\s+AS\s+build", joined, re.M | re.I)
    if builder is None:
        return ["no `FROM rust:X.Y... AS build` stage"]
    builder_rust = _version(builder.group(1))
    if BUILD_COMMAND not in joined:
        problems.append(f"the build stage does not run `{BUILD_COMMAND}`")
    for needed in ('ENTRYPOINT ["/usr/local/bin/volley"]', 'CMD ["agent"]', "USER 65532"):
        if needed not in joined:
            problems.append(f"missing `{needed}`")
    if "COPY --from=build" not in joined or "/usr/local/bin/volley" not in joined:
        problems.append("the runtime stage does not copy the binary to /usr/local/bin/volley")

    ours = [p for p in metadata["packages"] if p["name"] == "volley" and p["source"] is None]
    if len(ours) != 1:
        problems.append("cargo metadata does not list the volley package")
    else:
        bins = [t["name"] for t in ours[0]["targets"] if "bin" in t["kind"]]
        if "volley" not in bins:
            problems.append(f"the package has no `volley` binary (binaries: {bins})")
        own = ours[0].get("rust_version")
        if own and _version(own) > builder_rust:
            problems.append(f"package rust-version {own} is newer than the builder's Rust {builder.group(1)}")
    too_new = sorted(f"{p['name']} {p['version']} needs Rust {p['rust_version']}"
                     for p in metadata["packages"]
                     if p.get("rust_version") and _version(p["rust_version"]) > builder_rust)
    if too_new:
        problems.append(f"locked dependencies newer than the builder's Rust {builder.group(1)}: {too_new}")
    return problems


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        candidates = [pat, pat.removeprefix("**/")]
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, c) for c in candidates for prefix in prefixes):
            ignored = not negate
    return ignored


def check_dockerignore(root: pathlib.Path) -> list[str]:
    lines = (root / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    problems = [f"{needed} would be left out of the build context"
                for needed in ("Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs")
                if _ignored(needed, patterns)]
    problems += [f"{dropped} would be sent to the build context"
                 for dropped in ("target/debug/volley", ".git/HEAD")
                 if not _ignored(dropped, patterns)]
    return problems
