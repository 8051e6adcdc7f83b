"""Validate custom resources against Volley's own CRD, offline.

The apiserver validates a LoadTest against the CRD's openAPIV3Schema, with
OpenAPI's `nullable`, its server-side field validation rejecting unknown
fields (kubectl's default since 1.27), and the CEL rules in
`x-kubernetes-validations`. This module does the same with `jsonschema`:
it rewrites the schema into plain JSON Schema, and evaluates every CEL rule
with a real CEL implementation (PyPI `cel-python`) against each value the
rule is declared on. A rule that does not compile is an error, so that a
new rule in the Rust type cannot go unchecked here.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import jsonschema


_CEL = celpy.Environment()


def _compile(rule: str) -> tuple[Any, str | None]:
    """The rule's CEL program, or why it does not compile."""
    try:
        return _CEL.program(_CEL.compile(rule)), None
    except Exception as e:  # celpy raises its own parse and compile errors
        return None, str(e)


def _holds(program: Any, value: Any) -> tuple[bool, str | None]:
    """Whether the rule holds for `self` = `value`; an evaluation error
    fails it, as on the apiserver."""
    try:
        result = program.evaluate({"self": celpy.json_to_cel(value)})
    except Exception as e:
        return False, str(e)
    if isinstance(result, Exception):
        return False, str(result)
    return result is True or result == celpy.celtypes.BoolType(True), None


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
            compiled = [(path, rule, *_compile(rule["rule"])) for path, rule in rules]
            self.versions[version["name"]] = (jsonschema.Draft7Validator(schema), compiled)

    def unknown_rules(self) -> list[str]:
        """CEL rules of the CRD that do not compile, with why."""
        return sorted({f"{rule['rule']!r}: {why}" for _, (_, rules) in self.versions.items()
                       for _, rule, _, why in rules if why is not None})

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
        for path, rule, program, why in rules:
            if program is None:
                found.append(f"{path or '<root>'}: CEL rule {rule['rule']!r} does not compile: {why}")
                continue
            for where, target in _targets(obj, path):
                holds, error = _holds(program, target)
                if not holds:
                    message = rule.get("message", rule["rule"])
                    if error:
                        message += f" (CEL evaluation error: {error})"
                    found.append(f"{where.lstrip('.')}: {message}")
        return found
