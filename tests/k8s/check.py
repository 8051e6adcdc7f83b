"""Offline checks of Volley's Kubernetes packaging, run by .ci/k8s-check.

- Helm chart: lint (strict) and render with Helm's own engine (Helm 4 SDK
  through helm-python-sdk) for the default values, every chart/volley/ci/*.yaml
  and a second release name; every bad values file in tests/k8s/bad-values/
  must be refused with the message its `# expect:` line names.
- Every rendered object and every file in deploy/: validated against the
  Kubernetes JSON schemas of one version, strict (unknown fields rejected).
  LoadTests are validated against our CRD (crdschema.py); ServiceMonitors
  are not schema-checked (the Prometheus Operator CRD is not available
  offline here) but their wiring is.
- Cross-object wiring of each manifest set (wiring.py), and that deploy/
  and the chart describe the same fleet.
- Negative controls: known-bad objects must be rejected, so a validator
  that silently accepts everything fails the run.
- deploy/Dockerfile against the Cargo package (image.py), and
  `kubectl kustomize deploy/` when kubectl is installed.

Usage: python tests/k8s/check.py [--kube-version 1.33.0]
Prints one line per check and a closing `k8s-check: N passed, M failed`.
Exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable

import yaml

import boot
import crdschema
import image
import wiring

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "chart" / "volley"
DEPLOY = ROOT / "deploy"
BAD_VALUES = ROOT / "tests" / "k8s" / "bad-values"

# Secrets the plain manifests expect to exist before they are applied.
DEPLOY_EXTERNAL_SECRETS = {"volley-token", "volley-ca"}
# Kinds checked by wiring only, and why.
SCHEMA_SKIPPED = {
    "ServiceMonitor": "Prometheus Operator CRD schema not available offline; wiring checked instead",
}


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def result(self, label: str, problems: list[str]) -> None:
        if problems:
            self.failed += 1
            print(f"FAIL  {label}")
            for p in problems:
                print(f"        - {p}")
        else:
            self.passed += 1
            print(f"ok    {label}")

    def run(self, label: str, fn: Callable[[], list[str]]) -> None:
        try:
            problems = fn()
        except Exception as err:  # a crash in one check must not hide the others
            problems = [f"{type(err).__name__}: {err}"]
        self.result(label, problems)


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


class Validators:
    """Kubernetes schemas of one version, plus our CRD."""

    def __init__(self, kube_version: str):
        import kubernetes_validate.utils as kv

        # The library re-reads its (large) schema files for every object.
        kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)
        self.kv = kv
        self.version = kube_version
        supported = sorted({kv.major_minor(v) for v in kv.all_versions()},
                           key=lambda v: tuple(int(x) for x in v.split(".")))
        if kv.major_minor(kube_version.lstrip("v")) not in supported:
            raise SystemExit(f"k8s-check: no Kubernetes schemas for {kube_version}; "
                             f"kubernetes-validate here has {supported[0]} to {supported[-1]}")
        self.crd = crdschema.CrdValidator(load_docs((DEPLOY / "crd.yaml").read_text())[0])

    def errors(self, obj: dict) -> list[str]:
        """Problems of one object; empty when valid."""
        kind = obj.get("kind", "")
        if self.crd.handles(obj):
            return self.crd.errors(obj)
        if kind in SCHEMA_SKIPPED:
            return []
        try:
            self.kv.validate(obj, self.version, strict=True)
        except self.kv.ValidationError as err:
            where = ".".join(str(p) for p in err.path) or "<root>"
            return [f"{where}: {err.message}"]
        except self.kv.SchemaNotFoundError as err:
            return [err.message]
        return []

    def check_all(self, objs: list[dict]) -> list[str]:
        problems = []
        for obj in objs:
            problems += [f"{wiring.summary_of(obj)}: {e}" for e in self.errors(obj)]
        return problems


# === chart ===


def values_from(path: pathlib.Path | None) -> dict:
    return yaml.safe_load(path.read_text()) or {} if path else {}


def render(helm, values: dict, release: str, namespace: str) -> list[dict]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name=release, namespace=namespace, is_install=True)
    objs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        objs += load_docs(text)
    # Helm installs crds/ as they are; check them too.
    objs += load_docs((CHART / "crds" / "loadtests.volley.dev.yaml").read_text())
    return objs


def external_secrets_of(values: dict) -> set[str]:
    return {s for s in (values.get("token", {}).get("existingSecret"),
                        values.get("ca", {}).get("existingSecret")) if s}


def lint(helm, values: dict, kube_version: str) -> list[str]:
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{kube_version}")
    problems = list(report.get("errors", []))
    # Severity 2 = warning, 3 = error; strict lint fails on both.
    problems += [f"{m['path']}: {m['error']}" for m in report.get("messages", []) if m["severity"] >= 2]
    return problems


def schema_covers_values() -> list[str]:
    """Every key of values.yaml is described by values.schema.json, with a
    type, down to the maps and lists that pass through to Kubernetes."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    problems = []
    if schema.get("additionalProperties") is not False:
        problems.append("top level does not set additionalProperties: false")

    def walk(value, node: dict, path: str) -> None:
        if "type" not in node and "oneOf" not in node:
            problems.append(f"{path or '<root>'}: no type in the schema")
        if isinstance(value, dict) and "properties" in node:
            for key, child in value.items():
                sub = node["properties"].get(key)
                if sub is None:
                    problems.append(f"{path}.{key}".lstrip(".") + ": not in the schema")
                else:
                    walk(child, sub, f"{path}.{key}")

    walk(values, schema, "")
    return problems


def check_secret_rbac(objs: list[dict], values: dict) -> list[str]:
    """The Role lets the agents get Secrets (LoadTests' envValueFrom and
    envFrom) exactly as the values ask: any Secret of the namespace, only
    the listed ones (resourceNames), or none."""
    rbac = values.get("rbac", {})
    if not rbac.get("create", True):
        return []
    read, names = rbac.get("readSecrets", True), rbac.get("secretNames", [])
    roles = wiring.of_kind(objs, "Role")
    if not read:
        rules = [r for role in roles for r in role.get("rules", []) if "secrets" in r.get("resources", [])]
        return [f"Secrets readable with rbac.readSecrets=false: {rules}"] if rules else []
    p = []
    # The release's Role, and each watched namespace's (watchNamespaces).
    for ns in sorted({role["metadata"].get("namespace") for role in roles}):
        rules = [r for role in roles if role["metadata"].get("namespace") == ns
                 for r in role.get("rules", []) if "secrets" in r.get("resources", [])]
        if len(rules) != 1 or rules[0].get("verbs") != ["get"]:
            p.append(f"{ns}: expected one rule granting get on secrets, found {rules}")
            continue
        got = rules[0].get("resourceNames", [])
        if got != names:
            p.append(f"{ns}: resourceNames {got}, values ask {names}")
    return p


def _expect(problems: list[str], what: str, got: Any, want: Any) -> None:
    if got != want:
        problems.append(f"{what}: rendered {got!r}, expected {want!r}")


SCRAPE = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}


def intended(label: str, objs: list[dict]) -> list[str]:
    """What each values set means to render, as its comments say: the pool
    (never merged with the default label), the annotations, the fleet's
    cluster id, the Secrets, the data volume. A values set without an entry
    here is a failure, so a new chart/ci/*.yaml comes with its intent."""
    f = wiring.Fleet(objs)
    meta = f.pod.get("metadata", {})
    annotations = meta.get("annotations", {})
    kinds = {o["kind"] for o in objs}
    p: list[str] = []
    cluster_id = f.env_values.get("VOLLEY_CLUSTER_ID")
    if label == "defaults":
        _expect(p, "nodeSelector", f.spec.get("nodeSelector"), {"volley.dev/pool": "load"})
        _expect(p, "annotations", annotations, {**SCRAPE, "prometheus.io/port": "7070"})
        _expect(p, "VOLLEY_CLUSTER_ID", cluster_id, "volley")
        _expect(p, "serviceAccountName", f.spec.get("serviceAccountName"), "volley-agent")
        _expect(p, "data volume", sorted(f.volumes["data"]), ["emptyDir", "name"])
        _expect(p, "init containers", f.spec.get("initContainers"), None)
        _expect(p, "CRD templates", [o for o in objs if o["kind"] == "CustomResourceDefinition"
                                     and o["metadata"].get("annotations")], [])
        _expect(p, "dashboard ConfigMaps", [o for o in objs if o["kind"] == "ConfigMap"
                                            and "grafana_dashboard" in o["metadata"].get("labels", {})], [])
        _expect(p, "VOLLEY_OUT (no default outputs)", f.env_values.get("VOLLEY_OUT"), None)
    elif label == "defaults, release perf in load-tests":
        # A second release is a second fleet: its own cluster id and pods.
        _expect(p, "VOLLEY_CLUSTER_ID", cluster_id, "perf")
        _expect(p, "instance label", f.pod_labels.get("app.kubernetes.io/instance"), "perf")
        _expect(p, "VOLLEY_SEED_SELECTOR", f.env_values.get("VOLLEY_SEED_SELECTOR"),
                "app.kubernetes.io/name=volley,app.kubernetes.io/instance=perf,"
                "app.kubernetes.io/component=agent")
    elif label == "ci/generated-ca.yaml":
        _expect(p, "nodeSelector", f.spec.get("nodeSelector"),
                {"node-pool": "perf-c6i", "kubernetes.io/os": "linux"})
        _expect(p, "tolerations", f.spec.get("tolerations"),
                [{"key": "perf", "operator": "Exists", "effect": "NoSchedule"}])
        _expect(p, "annotations", annotations, {**SCRAPE, "prometheus.io/port": "8070"})
        _expect(p, "VOLLEY_OUT", f.env_values.get("VOLLEY_OUT"),
                "influxdb=http://influxdb.monitoring:8086/k6,"
                "influxdb=http://backup.monitoring:8086/k6?pushInterval=5s")
        _expect(p, "data hostPath", f.volumes["data"].get("hostPath", {}).get("path"), "/var/lib/volley")
        # The host directory is given to the agent's user before it starts.
        inits = f.spec.get("initContainers", [])
        _expect(p, "init containers", [(c["name"], c.get("command"),
                                        [m["name"] for m in c.get("volumeMounts", [])],
                                        c["securityContext"]["capabilities"])
                                       for c in inits],
                [("data-owner", ["chown", "65532:65532", "/var/lib/volley"], ["data"],
                  {"drop": ["ALL"], "add": ["CHOWN"]})])
        np = next((o["spec"] for o in objs if o["kind"] == "NetworkPolicy"), {})
        api_from = [r.get("from") for r in np.get("ingress", [])
                    if any(pt.get("port") == 8070 for pt in r.get("ports", []))]
        ns = lambda n: [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}}]
        test_pod = [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "volley", "app.kubernetes.io/instance": "volley",
            "app.kubernetes.io/component": "helm-test"}}}]
        _expect(p, "peers allowed on the API port (CI calls, the helm test pod, monitoring scrapes)",
                api_from, [ns("ci"), test_pod, ns("monitoring")])
        dns = [pt for r in np.get("egress", []) for pt in r.get("ports", [])
               if any("namespaceSelector" in t for t in r.get("to", []))
               and r["to"][0]["namespaceSelector"].get("matchLabels", {}).get(
                   "kubernetes.io/metadata.name") == "kube-system"]
        _expect(p, "DNS egress ports", dns,
                [{"protocol": "UDP", "port": 5353}, {"protocol": "TCP", "port": 5353}])
        _expect(p, "generated Secrets, kept on uninstall",
                sorted((wiring.name(o), o["metadata"].get("annotations", {}).get("helm.sh/resource-policy"))
                       for o in objs if o["kind"] == "Secret"),
                [("loadfleet-ca", "keep"), ("loadfleet-token", "keep")])
    elif label == "ci/existing-secrets.yaml":
        _expect(p, "annotations", annotations, {"example.com/owner": "perf-team"})
        _expect(p, "nodeSelector", f.spec.get("nodeSelector"), {"volley.dev/pool": "load"})
        _expect(p, "VOLLEY_CLUSTER_ID", cluster_id, "perf-eu")
        _expect(p, "VOLLEY_LABELS", f.env_values.get("VOLLEY_LABELS"),
                "pool=load,region=eu-west-1,zone=eu-west-1a,team=perf,volley.dev/rack=r12")
        _expect(p, "NetworkPolicy", "NetworkPolicy" in kinds, False)
        _expect(p, "ServiceMonitor", "ServiceMonitor" in kinds, True)
        _expect(p, "generated Secrets", [o for o in objs if o["kind"] == "Secret"], [])
        _expect(p, "image", f.container.get("image"),
                "registry.example.com/perf/volley@sha256:"
                "4f1c8e2a9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e")
        _expect(p, "pod label team", f.pod_labels.get("team"), "perf")
        _expect(p, "extra volume", f.volumes.get("target-ca", {}).get("configMap"),
                {"name": "target-ca-bundle"})
        _expect(p, "extra mount", [m for m in f.container.get("volumeMounts", [])
                                   if m["name"] == "target-ca"],
                [{"name": "target-ca", "mountPath": "/etc/volley/target-ca", "readOnly": True}])
        _expect(p, "dnsConfig", f.spec.get("dnsConfig"), {"options": [{"name": "ndots", "value": "1"}]})
        p += grafana_dashboards(objs, "volley", {"grafana_folder": "Load tests"})
    elif label == "ci/crds-managed.yaml":
        crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
        shipped = load_docs((CHART / "crds" / "loadtests.volley.dev.yaml").read_text())[0]
        templated = [o for o in crds if o["metadata"].get("annotations")]
        _expect(p, "CRDs (crds/ and the template)", len(crds), 2)
        _expect(p, "templated CRD annotations", [o["metadata"]["annotations"] for o in templated],
                [{"helm.sh/resource-policy": "keep"}])
        _expect(p, "templated CRD spec equals crds/", [o["spec"] == shipped["spec"] for o in templated],
                [True])
        _expect(p, "VOLLEY_WATCH_NAMESPACES", f.env_values.get("VOLLEY_WATCH_NAMESPACES"),
                "team-a,team-b,volley")
        # One Role and RoleBinding per other watched namespace, bound to the
        # release's service account, with the LoadTest rules and no pods.
        for kind in ("Role", "RoleBinding"):
            _expect(p, f"{kind}s by namespace", sorted(o["metadata"]["namespace"] for o in objs
                                                       if o["kind"] == kind),
                    ["team-a", "team-b", "volley"])
        release_rules = next(o["rules"] for o in objs if o["kind"] == "Role"
                             and o["metadata"]["namespace"] == "volley")
        for o in objs:
            if o["kind"] == "Role" and o["metadata"]["namespace"] != "volley":
                _expect(p, f"Role rules in {o['metadata']['namespace']}", o["rules"],
                        [r for r in release_rules if r["resources"] != ["pods"]])
            if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] != "volley":
                _expect(p, f"RoleBinding subject in {o['metadata']['namespace']}",
                        [(s_["name"], s_["namespace"]) for s_ in o["subjects"]], [(f.spec["serviceAccountName"], "volley")])
    elif label == "ci/cert-manager.yaml":
        attrs = f.volumes.get("tls", {}).get("csi", {}).get("volumeAttributes", {})
        _expect(p, "CSI issuer", (attrs.get("csi.cert-manager.io/issuer-name"),
                                  attrs.get("csi.cert-manager.io/issuer-kind"),
                                  attrs.get("csi.cert-manager.io/duration")),
                ("volley-fleet", "ClusterIssuer", "720h"))
        _expect(p, "VOLLEY_CA_KEY", "VOLLEY_CA_KEY" in f.env_values, False)
        _expect(p, "CA Secret volume", "ca" in f.volumes, False)
        _expect(p, "generated Secrets, kept on uninstall",
                sorted((wiring.name(o), o["metadata"].get("annotations", {}).get("helm.sh/resource-policy"))
                       for o in objs if o["kind"] == "Secret"),
                [("volley-gossip", "keep"), ("volley-token", "keep")])
        _expect(p, "gossip secret file", f.env_values.get("VOLLEY_GOSSIP_SECRET_FILE"),
                "/etc/volley/gossip/secret")
    else:
        p.append(f"no intent recorded for {label}: add it to intended() in tests/k8s/check.py")
    return p


# The RBAC rules the fake API server of `cargo test --test kube` enforces for
# a render with `rbac.secretNames` and one with `watchNamespaces`
# (tests/kube/rbac.rs): written from the render of each values set, and
# held equal to it.
RENDERED_RBAC = {
    "ci/existing-secrets.yaml": ROOT / "tests" / "k8s" / "rendered" / "rbac-secret-names.yaml",
    "ci/crds-managed.yaml": ROOT / "tests" / "k8s" / "rendered" / "rbac-watch-namespaces.yaml",
}


def rendered_rbac_fixture(label: str, objs: list[dict]) -> list[str]:
    """The fixture holds exactly the Roles and ClusterRoles of the render;
    VOLLEY_K8S_WRITE_FIXTURES=1 rewrites it."""
    # Kind, name and rules only: labels change with every chart version.
    rules = [{"apiVersion": o["apiVersion"], "kind": o["kind"],
              "metadata": {k: v for k, v in o["metadata"].items() if k in ("name", "namespace")},
              "rules": o["rules"]}
             for o in objs if o["kind"] in ("Role", "ClusterRole")]
    text = ("# Rendered by .ci/k8s-check from chart/volley with " + label + "; do not edit.\n"
            "# The fake API server enforces these rules in tests/kube/rbac.rs.\n"
            + yaml.safe_dump_all(rules, sort_keys=True))
    path = RENDERED_RBAC[label]
    if os.environ.get("VOLLEY_K8S_WRITE_FIXTURES") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    on_disk = path.read_text() if path.exists() else ""
    if on_disk != text:
        return [f"{path.relative_to(ROOT)} differs from the render; rewrite it with "
                "VOLLEY_K8S_WRITE_FIXTURES=1 .ci/k8s-check"]
    return []


HELM_TEST_PLAN = CHART / "files" / "helm-test-plan.yaml"


def check_helm_test(objs: list[dict]) -> list[str]:
    """The `helm test` hook: a Pod (and its plan ConfigMap) annotated as a
    test, that is no agent (no Service or seed selector picks it), calls the
    API Service on its port with the agents' token, runs the chart's plan
    file, runs as the agents do, and is let through a NetworkPolicy that
    restricts the API port."""
    hooks = [o for o in objs if o.get("metadata", {}).get("annotations", {}).get("helm.sh/hook") == "test"]
    pods = [o for o in hooks if o["kind"] == "Pod"]
    if len(pods) != 1:
        return [f"expected one test hook Pod, found {len(pods)}"]
    pod, p = pods[0], []
    f = wiring.Fleet([o for o in objs if o not in hooks])
    labels = pod["metadata"].get("labels", {})
    for svc in wiring.of_kind(objs, "Service"):
        if wiring.selects(svc["spec"].get("selector", {}), labels):
            p.append(f"Service {wiring.name(svc)} selects the test pod")
    if wiring.selects(f.ds["spec"]["selector"]["matchLabels"], labels):
        p.append("the DaemonSet's selector (and the seed selector) picks the test pod")
    api = f.service("-api")
    containers = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    token_secret = f.volumes.get("token", {}).get("secret", {}).get("secretName")
    for c in containers:
        args = c.get("args", [])
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}

        def mounted(path: str) -> dict | None:
            for mp, m in mounts.items():
                if path.startswith(mp.rstrip("/") + "/"):
                    return volumes.get(m["name"])
            return None

        agent = args[args.index("--agent") + 1] if "--agent" in args else ""
        want = (f"http://{wiring.name(api)}.{f.namespace}.svc.cluster.local:"
                f"{api['spec']['ports'][0]['port']}") if api else None
        if agent != want:
            p.append(f"{c['name']}: --agent {agent!r}, expected the API Service {want!r}")
        token = args[args.index("--token-file") + 1] if "--token-file" in args else ""
        vol = mounted(token) or {}
        if vol.get("secret", {}).get("secretName") != token_secret or not token.endswith("/token"):
            p.append(f"{c['name']}: --token-file {token!r} is not the agents' token Secret {token_secret}")
        if c.get("image") != f.container.get("image"):
            p.append(f"{c['name']}: image {c.get('image')} is not the agents'")
        if c.get("securityContext") != f.container.get("securityContext"):
            p.append(f"{c['name']}: securityContext differs from the agent's")
    smoke = pod["spec"]["containers"][0]["args"]
    if smoke[:1] != ["run"]:
        p.append(f"the test container does not run a test: {smoke}")
    plan_path = smoke[-1]
    mount = next((m for m in pod["spec"]["containers"][0].get("volumeMounts", [])
                  if plan_path.startswith(m["mountPath"].rstrip("/") + "/")), None)
    cm_name = volumes.get(mount["name"], {}).get("configMap", {}).get("name") if mount else None
    cm = next((o for o in hooks if o["kind"] == "ConfigMap" and wiring.name(o) == cm_name), None)
    key = plan_path.rsplit("/", 1)[-1]
    if cm is None or cm.get("data", {}).get(key) != HELM_TEST_PLAN.read_text():
        p.append(f"{plan_path}: not the hook ConfigMap's copy of {HELM_TEST_PLAN.relative_to(ROOT)}")
    if int(cm["metadata"]["annotations"].get("helm.sh/hook-weight", "0")) >= 0 if cm else False:
        p.append("the plan ConfigMap is not created before the Pod (helm.sh/hook-weight)")
    if pod["spec"].get("restartPolicy") != "Never":
        p.append("restartPolicy is not Never: a failed test would retry instead of failing")
    for np in wiring.of_kind(objs, "NetworkPolicy"):
        allowed = any(
            any(wiring.selects(peer.get("podSelector", {}).get("matchLabels", {}), labels)
                or peer == {"namespaceSelector": {}} for peer in rule.get("from", []))
            and any(pt.get("port") == f.ports["api"]["containerPort"] for pt in rule.get("ports", []))
            for rule in np["spec"].get("ingress", []))
        if not allowed:
            p.append(f"NetworkPolicy {wiring.name(np)} blocks the test pod from the API port")
    return p


@functools.cache
def volley_binary() -> str:
    """The agent binary of this checkout, built if needed (debug, as `cargo test` builds it)."""
    subprocess.run(["cargo", "build", "--quiet", "--bin", "volley"], cwd=ROOT, check=True, timeout=3600)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                                     cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    return str(pathlib.Path(meta["target_directory"]) / "debug" / "volley")


def boot_render(report: Report, label: str, objs: list[dict]) -> None:
    """The real agent starts as the render's pod would run it (tests/k8s/boot.py).
    VOLLEY_K8S_BOOT=0 leaves it out, saying so."""
    if os.environ.get("VOLLEY_K8S_BOOT") == "0":
        print(f"note  boot as the pod's user [{label}]: left out (VOLLEY_K8S_BOOT=0)")
        return
    missing = boot.missing_tools()
    if missing:
        report.result(f"boot as the pod's user [{label}]",
                      missing + ["run as root (CI does), or set VOLLEY_K8S_BOOT=0 to leave this out"])
        return
    sc = wiring.Fleet(objs).spec.get("securityContext", {})
    who = f"uid {sc.get('runAsUser')} gid {sc.get('runAsGroup')} fsGroup {sc.get('fsGroup')}"
    report.run(f"boots ready as the pod's user ({who}) [{label}]",
               lambda: boot.boot(objs, volley_binary())[0])
    if any("hostPath" in v for v in wiring.Fleet(objs).volumes.values()):
        # Without the init container the host directory stays root's: the
        # agent must refuse to start (the crash loop the init container prevents).
        def without_init() -> list[str]:
            problems, code = boot.boot(objs, volley_binary(), run_inits=False)
            if not problems:
                return ["the agent started on a root-owned hostPath data directory"]
            return [] if code not in (None, 0) else [f"not refused: {problems}"]
        report.run(f"negative control: without its init container the agent cannot use the hostPath [{label}]",
                   without_init)


def helm_test_controls(report: Report, objs: list[dict]) -> None:
    """Known-bad edits of the `helm test` hook the check must catch."""
    def pod(o: list[dict]) -> dict:
        return next(x for x in o if x["kind"] == "Pod")

    def as_agent(o: list[dict]) -> None:
        pod(o)["metadata"]["labels"]["app.kubernetes.io/component"] = "agent"

    def wrong_port(o: list[dict]) -> None:
        args = pod(o)["spec"]["containers"][0]["args"]
        args[args.index("--agent") + 1] = args[args.index("--agent") + 1].replace(":7070", ":7946")

    def stale_plan(o: list[dict]) -> None:
        cm = next(x for x in o if x["kind"] == "ConfigMap" and x["metadata"]["name"].endswith("-test"))
        cm["data"]["smoke.yaml"] += "  - sleep: 1s\n"

    for what, edit, expect in [
        ("a test pod the agents' Services select", as_agent, "selects the test pod"),
        ("a call to the gossip port", wrong_port, "expected the API Service"),
        ("a plan other than the chart's file", stale_plan, "not the hook ConfigMap's copy"),
    ]:
        bad = copy.deepcopy(objs)
        edit(bad)
        found = check_helm_test(bad)
        report.result(f"negative control: helm test check catches {what}",
                      [] if any(expect in p for p in found) else [f"not caught: {found}"])


def cert_manager_controls(report: Report, objs: list[dict]) -> None:
    """Known-bad edits of the cert-manager render the wiring check must catch."""
    def pod(o: list[dict]) -> dict:
        return next(x for x in o if x["kind"] == "DaemonSet")["spec"]["template"]["spec"]

    def attrs(o: list[dict]) -> dict:
        return next(v for v in pod(o)["volumes"] if v["name"] == "tls")["csi"]["volumeAttributes"]

    def mount_ca(o: list[dict]) -> None:
        o.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "volley-ca"},
                  "data": {"ca.crt": "bm90IGEga2V5Cg==", "ca.key": "bm90IGEga2V5Cg=="}})
        pod(o)["volumes"].append({"name": "ca", "secret": {"secretName": "volley-ca"}})

    for what, edit, expect in [
        ("a certificate without the server name volley-agent",
         lambda o: attrs(o).update({"csi.cert-manager.io/dns-names": "${POD_NAME}"}), "lacks volley-agent"),
        ("a PKCS#1 key", lambda o: attrs(o).update({"csi.cert-manager.io/key-encoding": "PKCS1"}),
         "expected 'PKCS8'"),
        ("a certificate without client auth",
         lambda o: attrs(o).update({"csi.cert-manager.io/key-usages": "digital signature,server auth"}),
         "lacks 'client auth'"),
        ("the CA key mounted after all", mount_ca, "holds ca.key"),
    ]:
        bad = copy.deepcopy(objs)
        edit(bad)
        found = dict(wiring.all_checks(bad, set()))["certificates from cert-manager"]
        report.result(f"negative control: cert-manager wiring catches {what}",
                      [] if any(expect in p for p in found) else [f"not caught: {found}"])


def grafana_dashboards(objs: list[dict], namespace: str, annotations: dict) -> list[str]:
    """One ConfigMap per chart/volley/dashboards/*.json, labelled for
    Grafana's sidecar, holding the file unchanged (valid JSON)."""
    p: list[str] = []
    files = sorted((CHART / "dashboards").glob("*.json"))
    maps = [o for o in objs if o["kind"] == "ConfigMap" and "grafana_dashboard" in
            o["metadata"].get("labels", {})]
    _expect(p, "dashboard ConfigMaps", sorted(k for m in maps for k in m.get("data", {})),
            [f.name for f in files])
    for m in maps:
        meta = m["metadata"]
        _expect(p, f"{meta['name']} label", meta["labels"]["grafana_dashboard"], "1")
        _expect(p, f"{meta['name']} namespace", meta.get("namespace"), namespace)
        _expect(p, f"{meta['name']} annotations", meta.get("annotations"), annotations)
        for key, text in m.get("data", {}).items():
            shipped = (CHART / "dashboards" / key).read_text()
            _expect(p, f"{meta['name']} {key} is the file", json.loads(text), json.loads(shipped))
    return p


def check_chart(helm, report: Report, validators: Validators, kube_version: str) -> list[dict]:
    """Lints and renders every values set; returns the default render."""
    cases = [("defaults", None, "volley", "volley"),
             ("defaults, release perf in load-tests", None, "perf", "load-tests")]
    cases += [(f"ci/{p.name}", p, "volley", "volley") for p in sorted((CHART / "ci").glob("*.yaml"))]
    default_objs: list[dict] = []
    report.run("values.schema.json describes every key of values.yaml", schema_covers_values)
    for label, path, release, namespace in cases:
        values = values_from(path)
        report.run(f"helm lint --strict [{label}]", lambda: lint(helm, values, kube_version))
        objs: list[dict] = []

        def do_render() -> list[str]:
            objs.extend(render(helm, values, release, namespace))
            return [] if objs else ["rendered nothing"]

        report.run(f"helm render [{label}] ({release} in {namespace})", do_render)
        if not objs:
            continue
        if label == "defaults":
            default_objs = objs
        kinds = sorted({o["kind"] for o in objs})
        report.run(f"schemas k8s {kube_version} strict [{label}]: {len(objs)} objects ({', '.join(kinds)})",
                   lambda: validators.check_all(objs))
        for check, problems in wiring.all_checks(objs, external_secrets_of(values)):
            report.result(f"wiring [{label}]: {check}", problems)
        report.result(f"RBAC on Secrets as rbac.readSecrets/secretNames say [{label}]",
                      check_secret_rbac(objs, values))
        report.run(f"renders what its values intend [{label}]", lambda: intended(label, objs))
        report.result(f"helm test hook [{label}]", check_helm_test(objs))
        boot_render(report, label, objs)
        if label == "defaults":
            helm_test_controls(report, objs)
        if label == "ci/cert-manager.yaml":
            cert_manager_controls(report, objs)
        if label in RENDERED_RBAC:
            report.run(f"{RENDERED_RBAC[label].relative_to(ROOT)} is the RBAC of [{label}]",
                       lambda: rendered_rbac_fixture(label, objs))
        # Only the Roles and RoleBindings of watchNamespaces live elsewhere.
        watched = set(values.get("watchNamespaces", []))
        names_ok = [f"{wiring.summary_of(o)} not in namespace {namespace}" for o in objs
                    if o.get("metadata", {}).get("namespace") not in (None, namespace)
                    and not (o["kind"] in ("Role", "RoleBinding")
                             and o["metadata"]["namespace"] in watched)]
        report.result(f"namespaces [{label}]", names_ok)
    no_secrets = {"rbac": {"create": True, "readSecrets": False}}
    report.run("RBAC on Secrets as rbac.readSecrets/secretNames say [rbac.readSecrets=false]",
               lambda: check_secret_rbac(render(helm, no_secrets, "volley", "volley"), no_secrets))
    for path in sorted(BAD_VALUES.glob("*.yaml")):
        report.run(f"values refused [bad-values/{path.name}]", lambda: expect_refusal(helm, path))
    return default_objs


def expect_refusal(helm, path: pathlib.Path) -> list[str]:
    text = path.read_text()
    expected = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# expect:")]
    if not expected:
        return [f"{path.name} has no `# expect:` line"]
    try:
        render(helm, yaml.safe_load(text) or {}, "volley", "volley")
    except helm.HelmError as err:
        message = str(err)
        missing = [e for e in expected if e not in message]
        return [f"refused, but the message lacks {missing!r}: {message}"] if missing else []
    return ["rendered without error; the chart must refuse these values"]


# === deploy/ ===


def check_deploy(report: Report, validators: Validators) -> list[dict]:
    files = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")
    objs_by_file: dict[str, list[dict]] = {}
    for path in files:
        rel = str(path.relative_to(ROOT))

        def validate_file(path=path, rel=rel) -> list[str]:
            objs = load_docs(path.read_text())
            objs_by_file[rel] = objs
            if not objs:
                return ["no objects"]
            return validators.check_all(objs)

        report.run(f"schemas k8s {validators.version} strict [{rel}]", validate_file)

    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    resources = kustomization.get("resources", [])
    report.result("deploy/kustomization.yaml lists existing files",
                  [f"{r} does not exist" for r in resources if not (DEPLOY / r).is_file()])
    fleet = [o for r in resources for o in objs_by_file.get(f"deploy/{r}", [])]
    if shutil.which("kubectl"):
        report.run("kubectl kustomize deploy/ builds the listed objects", lambda: kustomize(fleet))
    else:
        print("skip  kubectl kustomize deploy/ (kubectl not installed)")
    # The NetworkPolicy is opt-in but must fit the same fleet.
    fleet_with_np = fleet + objs_by_file.get("deploy/networkpolicy.yaml", [])
    for check, problems in wiring.all_checks(fleet_with_np, DEPLOY_EXTERNAL_SECRETS):
        report.result(f"wiring [deploy/]: {check}", problems)
    report.result("deploy/ secret example matches the mounted Secret name",
                  [] if any(wiring.name(o) == "volley-token"
                            for o in objs_by_file.get("deploy/secret-token.example.yaml", []))
                  else ["secret-token.example.yaml does not define volley-token"])
    examples = [o for k, v in objs_by_file.items() if k.startswith("deploy/examples/") for o in v]
    report.run("deploy/examples: LoadTests find their plans and every ${env.X} they use",
               lambda: check_example_plans(examples))
    return fleet_with_np


def check_example_plans(objs: list[dict]) -> list[str]:
    """Each example LoadTest's plan exists, is a YAML mapping with a flow,
    and gets every `${env.NAME}` it uses from spec.env (the plan loader
    rejects unknown env variables)."""
    tests = [o for o in objs if o.get("kind") == "LoadTest"]
    if not tests:
        return ["no LoadTest in deploy/examples"]
    config_maps = {(o["metadata"].get("namespace"), wiring.name(o)): o.get("data", {})
                   for o in objs if o.get("kind") == "ConfigMap"}
    problems = []
    for lt in tests:
        spec, label = lt["spec"], wiring.name(lt) or lt["metadata"].get("generateName", "")
        if "script" in spec:
            ref = spec["script"]["configMap"]
            data = config_maps.get((lt["metadata"].get("namespace"), ref["name"]), {})
            text = data.get(ref["file"])
            if text is None:
                problems.append(f"{label}: ConfigMap {ref['name']} file {ref['file']} is not in the examples")
                continue
            used = set(re.findall(r"__ENV\.([A-Za-z_][A-Za-z0-9_]*)", text))
            for name in re.findall(r"from '\./([^']+)'", text):
                if name not in data:
                    problems.append(f"{label}: the script imports ./{name}, not a key of {ref['name']}")
            missing = sorted(used - set(spec.get("env", {})))
            if missing:
                problems.append(f"{label}: the script reads __ENV {missing} but spec.env does not set them")
            continue
        text = spec.get("plan")
        if text is None:
            ref = spec["planFrom"]["configMapKeyRef"]
            data = config_maps.get((lt["metadata"].get("namespace"), ref["name"]), {})
            text = data.get(ref["key"])
            if text is None:
                problems.append(f"{label}: ConfigMap {ref['name']} key {ref['key']} is not in the examples")
                continue
        plan = yaml.safe_load(text)
        if not isinstance(plan, dict) or not ("flow" in plan or "scenarios" in plan):
            problems.append(f"{label}: the plan is not a mapping with flow or scenarios")
            continue
        used = set(re.findall(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}", text))
        given = set(spec.get("env", {})) | set(spec.get("envValueFrom", {}))
        missing = sorted(used - given - set(plan.get("env", {})))
        if missing:
            problems.append(f"{label}: plan uses ${{env.X}} for {missing} but spec.env does not set them")
    return problems


def kustomize(expected: list[dict]) -> list[str]:
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], check=True, capture_output=True,
                         text=True, timeout=120)
    built = load_docs(out.stdout)
    got = sorted((o["kind"], wiring.name(o)) for o in built)
    want = sorted((o["kind"], wiring.name(o)) for o in expected)
    if got != want:
        return [f"kustomize built {got}, expected {want}"]
    ds = next(o for o in built if o["kind"] == "DaemonSet")
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["images"][0]
    img = ds["spec"]["template"]["spec"]["containers"][0]["image"]
    want_img = f"{listed['newName']}:{listed['newTag']}"
    return [] if img == want_img else [f"image {img!r} after kustomize, expected {want_img!r}"]


def rbac_grants(objs: list[dict], kind: str) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every rule of every `kind` object."""
    return {(g, r, v) for o in wiring.of_kind(objs, kind) for rule in o.get("rules", [])
            for g in rule.get("apiGroups", []) for r in rule.get("resources", [])
            for v in rule.get("verbs", [])}


def compare_rbac(deploy_objs: list[dict], chart_objs: list[dict]) -> list[str]:
    """The chart's rendered Role and ClusterRole grant what deploy/rbac.yaml
    grants: the fake API server of `cargo test --test kube` enforces
    deploy/rbac.yaml, so this carries its proof to the chart."""
    problems = []
    for kind in ("Role", "ClusterRole"):
        d, c = rbac_grants(deploy_objs, kind), rbac_grants(chart_objs, kind)
        if d != c:
            problems.append(f"{kind}: only in deploy/ {sorted(d - c)}; only in the chart {sorted(c - d)}")
    return problems


def compare_deploy_and_chart(deploy_objs: list[dict], chart_objs: list[dict]) -> list[str]:
    """deploy/ and the chart (release volley, defaults) describe the same fleet."""
    problems = []

    def key(o: dict) -> tuple[str, str]:
        return o["kind"], wiring.name(o)

    skip = {"Namespace", "CustomResourceDefinition", "Secret", "NetworkPolicy", "ClusterRole",
            "ClusterRoleBinding"}
    d = {key(o) for o in deploy_objs if o["kind"] not in skip}
    # `helm test` hooks exist only in the chart (kubectl has no tests).
    c = {key(o) for o in chart_objs if o["kind"] not in skip
         and "helm.sh/hook" not in o["metadata"].get("annotations", {})}
    if d != c:
        problems.append(f"objects only in deploy/: {sorted(d - c)}; only in chart: {sorted(c - d)}")
    dd, cd = wiring.Fleet(deploy_objs), wiring.Fleet(chart_objs)
    if [e["name"] for e in dd.env] != [e["name"] for e in cd.env]:
        problems.append("agent env differs:\n          deploy " + str([e["name"] for e in dd.env])
                        + "\n          chart  " + str([e["name"] for e in cd.env]))
    for field in ("ports", "startupProbe", "livenessProbe", "readinessProbe", "volumeMounts",
                  "securityContext", "resources", "args"):
        if dd.container.get(field) != cd.container.get(field):
            problems.append(f"agent container {field} differs")
    for field in ("nodeSelector", "tolerations", "securityContext", "terminationGracePeriodSeconds"):
        if dd.spec.get(field) != cd.spec.get(field):
            problems.append(f"pod spec {field} differs")
    return problems


# === negative controls ===


def negative_controls(report: Report, validators: Validators, chart_objs: list[dict]) -> None:
    """Known-bad inputs that each validator must reject."""
    ds = copy.deepcopy(next(o for o in chart_objs if o["kind"] == "DaemonSet"))
    ds["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    report.result("negative control: strict schema rejects a misspelt field",
                  [] if validators.errors(ds) else ["accepted imagePullPolcy"])

    base = {"apiVersion": "volley.dev/v1alpha1", "kind": "LoadTest", "metadata": {"name": "x"},
            "spec": {"plan": "vus: 1"}}
    bad_specs = {
        "both plan and planFrom": {"plan": "vus: 1",
                                   "planFrom": {"configMapKeyRef": {"name": "a", "key": "b"}}},
        "neither plan nor planFrom": {"minAgents": 2},
        "both plan and script": {"plan": "vus: 1",
                                 "script": {"configMap": {"name": "a", "file": "test.js"}}},
        "script without file": {"script": {"configMap": {"name": "a"}}},
        "minAgents 0": {"plan": "vus: 1", "minAgents": 0},
        "unknown field minAgent": {"plan": "vus: 1", "minAgent": 2},
        "leadTime without unit": {"plan": "vus: 1", "leadTime": "2"},
        "envValueFrom with two sources": {
            "plan": "vus: 1",
            "envValueFrom": {"K": {"secretKeyRef": {"name": "a", "key": "b"},
                                   "configMapKeyRef": {"name": "c", "key": "d"}}}},
        "envValueFrom without a key": {
            "plan": "vus: 1", "envValueFrom": {"K": {"secretKeyRef": {"name": "a"}}}},
        "envFrom without a source": {"plan": "vus: 1", "envFrom": [{"prefix": "X_"}]},
        "negative ttlSecondsAfterFinished": {"plan": "vus: 1", "ttlSecondsAfterFinished": -1},
        "a flat selector (labels outside matchLabels)": {"plan": "vus: 1",
                                                         "selector": {"pool": "load"}},
        "matchExpressions with operator Exist": {
            "plan": "vus: 1",
            "selector": {"matchExpressions": [{"key": "gpu", "operator": "Exist"}]}},
        "matchExpressions In without values": {
            "plan": "vus: 1",
            "selector": {"matchExpressions": [{"key": "region", "operator": "In"}]}},
        "matchExpressions Exists with values": {
            "plan": "vus: 1",
            "selector": {"matchExpressions": [{"key": "gpu", "operator": "Exists",
                                               "values": ["yes"]}]}},
        "phase outside the enum": None,
    }
    problems = [] if not validators.errors(base) else [f"valid LoadTest refused: {validators.errors(base)}"]
    selected = copy.deepcopy(base)
    selected["spec"]["selector"] = {
        "matchLabels": {"pool": "load"},
        "matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["us"]},
                             {"key": "gpu", "operator": "DoesNotExist"}]}
    if validators.errors(selected):
        problems.append(f"valid selector refused: {validators.errors(selected)}")
    for label, spec in bad_specs.items():
        obj = copy.deepcopy(base)
        if spec is None:
            obj["status"] = {"phase": "Done"}
        else:
            obj["spec"] = spec
        if not validators.errors(obj):
            problems.append(f"accepted a LoadTest with {label}")
    unknown = validators.crd.unknown_rules()
    if unknown:
        problems.append(f"CEL rules that do not compile: {unknown}")
    report.result("negative control: LoadTest schema and CEL rules (cel-python)", problems)

    objs = copy.deepcopy(chart_objs)
    env = next(o for o in objs if o["kind"] == "DaemonSet")["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append(env.pop(1))  # POD_IP now defined after its users
    found = dict(wiring.all_checks(objs, set()))["agent environment"]
    report.result("negative control: wiring catches $(POD_IP) used before it is defined",
                  [] if any("before POD_IP is defined" in p for p in found) else ["not caught"])

    for label, edit, expect in [
        ("an excess grant (list nodes)", lambda r: r["kind"] == "ClusterRole" and r["rules"][0]["verbs"].append("list"),
         "cluster-wide grant the agent never uses: ('', 'nodes', 'list')"),
        ("an excess grant (patch loadtests)",
         lambda r: r["kind"] == "Role" and next(x for x in r["rules"] if x["resources"] == ["loadtests"])["verbs"].append("patch"),
         "namespace grant the agent never uses: ('volley.dev', 'loadtests', 'patch')"),
        ("a missing grant (delete loadtests)",
         lambda r: r["kind"] == "Role" and next(x for x in r["rules"] if x["resources"] == ["loadtests"])["verbs"].remove("delete"),
         "namespace permission missing: ('volley.dev', 'loadtests', 'delete')"),
    ]:
        objs = copy.deepcopy(chart_objs)
        for o in objs:
            if o["kind"] in ("Role", "ClusterRole"):
                edit(o)
        found = dict(wiring.all_checks(objs, set()))["RBAC bound to the agent"]
        report.result(f"negative control: RBAC check catches {label}",
                      [] if expect in found else [f"not caught: {found}"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kube-version", default="1.33.0",
                        help="Kubernetes version whose schemas to validate against")
    args = parser.parse_args()

    import helm_python as helm

    print(f"Helm engine: helm-c {helm.helm_c_version()}, Helm SDK {helm.helm_sdk_version()}; "
          f"Kubernetes schemas {args.kube_version} (strict)")
    report = Report()
    validators = Validators(args.kube_version)
    with tempfile.TemporaryDirectory() as home:
        # Keep Helm's cache/config writes away from the user's home.
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            os.environ.setdefault(var, os.path.join(home, var.lower()))
        chart_objs = check_chart(helm, report, validators, args.kube_version)
        deploy_objs = check_deploy(report, validators)
        if deploy_objs:
            boot_render(report, "deploy/", deploy_objs)
        if chart_objs and deploy_objs:
            report.run("deploy/ and chart (release volley, defaults) describe the same fleet",
                       lambda: compare_deploy_and_chart(deploy_objs, chart_objs))
            report.run("deploy/rbac.yaml (enforced by the fake API server) and the chart grant the same",
                       lambda: compare_rbac(deploy_objs, chart_objs))
            negative_controls(report, validators, chart_objs)
        else:
            report.result("deploy/ and chart comparison", ["no default render or no deploy/ fleet to compare"])
    metadata: dict = {}

    def load_metadata() -> list[str]:
        metadata.update(image.cargo_metadata(ROOT))
        return []

    report.run("cargo metadata --locked", load_metadata)
    if metadata:
        report.run("deploy/Dockerfile builds the volley binary with a Rust that fits Cargo.lock",
                   lambda: image.check_dockerfile(ROOT, metadata))
    report.run("deploy/Dockerfile.dockerignore keeps the sources, drops target/ and .git/",
               lambda: image.check_dockerignore(ROOT))
    for kind, why in SCHEMA_SKIPPED.items():
        print(f"note  {kind}: schema validation skipped ({why})")
    print(f"k8s-check: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
