"""Validate custom resources against Volley's own CRD, offline.

The apiserver validates a LoadTest against the CRD's openAPIV3Schema, with
OpenAPI's `nullable`, its server-side field validation rejecting unknown
fields (kubectl's default since 1.27), and the CEL rules in
`x-kubernetes-validations`. This module does the same with `jsonschema`:
it rewrites the schema into plain JSON Schema and evaluates the CEL rules
it knows (an unknown rule is an error, so that a new rule in the Rust type
cannot go unchecked here).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import jsonschema


def _has(obj: dict, field: str) -> bool:
    # CEL's has() is true for a present field, even when it holds null.
    return isinstance(obj, dict) and field in obj


# CEL rules the checker can evaluate, by their exact text.
KNOWN_RULES: dict[str, Callable[[Any], bool]] = {
    "(has(self.plan) ? 1 : 0) + (has(self.planFrom) ? 1 : 0) + (has(self.script) ? 1 : 0) == 1":
        lambda s: sum(_has(s, f) for f in ("plan", "planFrom", "script")) == 1,
    "has(self.secretKeyRef) != has(self.configMapKeyRef)":
        lambda s: _has(s, "secretKeyRef") != _has(s, "configMapKeyRef"),
    "has(self.secretRef) != has(self.configMapRef)":
        lambda s: _has(s, "secretRef") != _has(s, "configMapRef"),
    "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) "
    ": (!has(self.values) || size(self.values) == 0)":
        lambda s: (_has(s, "values") and len(s["values"] or []) > 0)
        if s.get("operator") in ("In", "NotIn")
        else (not _has(s, "values") or len(s["values"] or []) == 0),
}


def _to_json_schema(node: dict) -> dict:
    """OpenAPI v3 (Kubernetes flavour) to JSON Schema draft 7, recursively."""
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _to_json_schema(value)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _to_json_schema(value)
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    # Server-side field validation: unknown fields are errors, unless the
    # schema keeps them on purpose.
    if ("properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def _rules(node: dict, path: str, out: list) -> None:
    for rule in node.get("x-kubernetes-validations", []):
        out.append((path, rule))
    for name, child in node.get("properties", {}).items():
        _rules(child, f"{path}.{name}", out)
    if isinstance(node.get("items"), dict):
        _rules(node["items"], f"{path}[]", out)
    if isinstance(node.get("additionalProperties"), dict):
        _rules(node["additionalProperties"], f"{path}.*", out)


def _targets(obj: Any, path: str) -> list[tuple[str, Any]]:
    """Every value at `path` (`.a.b[].*`: `[]` each list item, `*` each map
    value), with its concrete path, for the CEL rules declared there."""
    found = [("", obj)]
    for part in [p for p in path.split(".") if p]:
        name, items = (part[:-2], True) if part.endswith("[]") else (part, False)
        step = []
        for where, value in found:
            if not isinstance(value, dict):
                continue
            if name == "*":
                step += [(f"{where}.{k}", v) for k, v in value.items()]
            elif name in value:
                step.append((f"{where}.{name}", value[name]))
        if items:
            step = [(f"{w}[{i}]", v) for w, lst in step if isinstance(lst, list)
                    for i, v in enumerate(lst)]
        found = step
    return [(w, v) for w, v in found if v is not None]


class CrdValidator:
    """Validates objects of one CRD (all served versions)."""

    def __init__(self, crd: dict):
        spec = crd["spec"]
        self.group = spec["group"]
        self.kind = spec["names"]["kind"]
        self.namespaced = spec["scope"] == "Namespaced"
        self.versions: dict[str, tuple[jsonschema.Draft7Validator, list]] = {}
        for version in spec["versions"]:
            if not version.get("served", False):
                continue
            raw = version["schema"]["openAPIV3Schema"]
            schema = _to_json_schema(raw)
            props = schema.setdefault("properties", {})
            props["apiVersion"] = {"type": "string"}
            props["kind"] = {"type": "string"}
            # `kubectl create` accepts generateName in place of a name.
            props["metadata"] = {
                "type": "object",
                "anyOf": [{"required": ["name"]}, {"required": ["generateName"]}],
                "properties": {"name": {"type": "string", "minLength": 1},
                               "generateName": {"type": "string", "minLength": 1}},
            }
            rules: list = []
            _rules(raw, "", rules)
            self.versions[version["name"]] = (jsonschema.Draft7Validator(schema), rules)

    def unknown_rules(self) -> list[str]:
        """CEL rules of the CRD that KNOWN_RULES cannot evaluate."""
        return sorted({rule["rule"] for _, (_, rules) in self.versions.items()
                       for _, rule in rules if rule["rule"] not in KNOWN_RULES})

    def handles(self, obj: dict) -> bool:
        group, _, _ = obj.get("apiVersion", "").partition("/")
        return group == self.group and obj.get("kind") == self.kind

    def errors(self, obj: dict) -> list[str]:
        """Everything the apiserver would reject in `obj`, as messages."""
        _, _, version = obj.get("apiVersion", "").partition("/")
        if version not in self.versions:
            return [f"apiVersion {obj.get('apiVersion')!r}: not served by the CRD "
                    f"(served: {sorted(self.versions)})"]
        validator, rules = self.versions[version]
        found = []
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in err.path) or "<root>"
            found.append(f"{where}: {err.message}")
        if self.namespaced is False and obj.get("metadata", {}).get("namespace"):
            found.append("metadata.namespace: set on a cluster-scoped resource")
        if found:
            return found
        for path, rule in rules:
            check = KNOWN_RULES.get(rule["rule"])
            if check is None:
                found.append(f"{path or '<root>'}: CEL rule {rule['rule']!r} unknown to the checker")
                continue
            for where, target in _targets(obj, path):
                if not check(target):
                    found.append(f"{where.lstrip('.')}: {rule.get('message', rule['rule'])}")
        return found
