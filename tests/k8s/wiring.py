"""Cross-object checks on one set of Volley manifests.

A schema says each object is well formed; it cannot say that the Service
selects the agent pods, that a probe names a real port, that $(POD_IP) is
defined before it is used, or that the RBAC rules bound to the agent's
ServiceAccount grant what the agent calls. These checks do, for the plain
manifests and for every chart render alike.

Each check function takes the objects and returns a list of problems
(empty when fine).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Callable

# Environment the agent reads (the fixed agent interface).
REQUIRED_ENV = [
    "NODE_NAME", "POD_IP", "POD_NAMESPACE", "VOLLEY_NODE_ID", "VOLLEY_CLUSTER_ID",
    "VOLLEY_LABELS", "VOLLEY_GOSSIP_LISTEN", "VOLLEY_GOSSIP_ADVERTISE", "VOLLEY_SEEDS",
    "VOLLEY_SEED_SELECTOR",
    "VOLLEY_QUIC_LISTEN", "VOLLEY_QUIC_ADVERTISE", "VOLLEY_API_LISTEN", "VOLLEY_TOKEN_FILE",
    "VOLLEY_CA_CERT", "VOLLEY_DATA_DIR", "VOLLEY_KUBE", "RUST_LOG",
    "VOLLEY_LOG_FORMAT",
]
# The TLS identity, by mode: the fleet CA's key (the agent issues its own
# certificate), or a certificate cert-manager's CSI driver issued the pod.
CA_KEY_ENV = ["VOLLEY_CA_KEY"]
CERT_MANAGER_ENV = ["VOLLEY_CERT", "VOLLEY_KEY", "VOLLEY_GOSSIP_SECRET_FILE"]
CSI_DRIVER = "csi.cert-manager.io"
# The name agents verify each other's QUIC servers for (src/fleet/ca: AGENT_SAN).
AGENT_SAN = "volley-agent"

# (API group, resource, verb) the agent calls, by scope (src/kube/: Api<Node>::get,
# Api<Pod>::list, the LoadTest watcher's list and watch, the claim's status
# update, progress status patches, the TTL's delete, ConfigMap gets, Event
# create and patch). A grant beyond these is a problem, like a missing one.
CLUSTER_PERMISSIONS = {("", "nodes", "get")}
NAMESPACE_PERMISSIONS = (
    {("", "pods", "list")}
    | {("volley.dev", "loadtests", v) for v in ("list", "watch", "delete")}
    | {("volley.dev", "loadtests/status", v) for v in ("update", "patch")}
    | {("", "configmaps", "get")}
    | {("events.k8s.io", "events", v) for v in ("create", "patch")}
)
# Granted or not by choice (the chart's rbac.readSecrets): LoadTests'
# env values from Secrets.
OPTIONAL_NAMESPACE_PERMISSIONS = {("", "secrets", "get")}

# DER of the Ed25519 algorithm identifier (OID 1.3.101.112).
ED25519_OID = bytes([0x06, 0x03, 0x2B, 0x65, 0x70])


def of_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind]


def name(obj: dict) -> str:
    return obj.get("metadata", {}).get("name", "")


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Fleet:
    """The agent DaemonSet of a manifest set and what hangs off it."""

    def __init__(self, objs: list[dict]):
        daemonsets = of_kind(objs, "DaemonSet")
        if len(daemonsets) != 1:
            raise ValueError(f"expected exactly one DaemonSet, found {len(daemonsets)}")
        self.objs = objs
        self.ds = daemonsets[0]
        self.namespace = self.ds["metadata"].get("namespace", "")
        self.pod = self.ds["spec"]["template"]
        self.pod_labels = self.pod["metadata"].get("labels", {})
        self.spec = self.pod["spec"]
        agents = [c for c in self.spec["containers"] if c["name"] == "agent"]
        if len(agents) != 1:
            raise ValueError("the DaemonSet has no container named `agent`")
        self.container = agents[0]
        self.ports = {p["name"]: p for p in self.container.get("ports", [])}
        self.env = self.container.get("env", [])
        self.env_values = {e["name"]: e.get("value") for e in self.env}
        self.mounts = {m["mountPath"]: m for m in self.container.get("volumeMounts", [])}
        self.volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        # Given certificates (cert-manager) instead of the CA key.
        self.cert_manager = "VOLLEY_CERT" in self.env_values

    def service(self, suffix: str) -> dict | None:
        found = [s for s in of_kind(self.objs, "Service") if name(s).endswith(suffix)]
        return found[0] if len(found) == 1 else None

    def mount_for(self, path: str) -> tuple[dict | None, dict | None]:
        """The mount and volume a file path lives in (longest prefix)."""
        best = None
        for mount_path, mount in self.mounts.items():
            if path.startswith(mount_path.rstrip("/") + "/"):
                if best is None or len(mount_path) > len(best["mountPath"]):
                    best = mount
        if best is None:
            return None, None
        return best, self.volumes.get(best["name"])


def _port_of(address: str | None) -> int | None:
    match = re.fullmatch(r".*:(\d+)", address or "")
    return int(match.group(1)) if match else None


def check_daemonset(f: Fleet) -> list[str]:
    problems = []
    sel = f.ds["spec"]["selector"].get("matchLabels", {})
    if not selects(sel, f.pod_labels):
        problems.append(f"DaemonSet selector {sel} does not match its pod labels {f.pod_labels}")
    strategy = f.ds["spec"].get("updateStrategy", {})
    if strategy.get("type") != "RollingUpdate":
        problems.append(f"updateStrategy.type is {strategy.get('type')!r}, expected RollingUpdate")
    if f.spec.get("hostNetwork", False):
        problems.append("hostNetwork is true: NetworkPolicy would not apply")
    if not f.spec.get("nodeSelector"):
        problems.append("no nodeSelector: agents would land on every node, not the load pool")
    if not any(t.get("effect") == "NoSchedule" for t in f.spec.get("tolerations", [])):
        problems.append("no NoSchedule toleration: agents cannot run on the tainted pool")
    if f.spec.get("terminationGracePeriodSeconds", 30) < 60:
        problems.append("terminationGracePeriodSeconds below 60: too short to drain a running test")
    if f.container.get("args") != ["agent"]:
        problems.append(f"container args {f.container.get('args')}, expected ['agent']")
    if not f.container.get("image"):
        problems.append("container has no image")
    for want in ("requests", "limits"):
        if not f.container.get("resources", {}).get(want):
            problems.append(f"container has no resources.{want}")
    return problems


def check_security(f: Fleet) -> list[str]:
    problems = []
    pod_sc = f.spec.get("securityContext", {})
    sc = f.container.get("securityContext", {})
    if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
        problems.append("runAsNonRoot is not set")
    if 0 in (sc.get("runAsUser"), pod_sc.get("runAsUser")):
        problems.append("runs as uid 0")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append("capabilities.drop does not contain ALL")
    if sc.get("capabilities", {}).get("add"):
        problems.append(f"capabilities added: {sc['capabilities']['add']}")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        problems.append(f"seccompProfile.type is {seccomp!r}, expected RuntimeDefault")
    if sc.get("privileged"):
        problems.append("privileged container")
    return problems


def check_env(f: Fleet) -> list[str]:
    problems = []
    names = [e["name"] for e in f.env]
    tls_env, other_env = (CERT_MANAGER_ENV, CA_KEY_ENV) if f.cert_manager else (CA_KEY_ENV, CERT_MANAGER_ENV)
    for required in REQUIRED_ENV + tls_env:
        if required not in names:
            problems.append(f"env {required} missing")
    for excess in other_env:
        if excess in names:
            problems.append(f"env {excess} set: the other TLS mode's")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"env defined twice: {dupes}")
    # Kubernetes expands $(NAME) only from variables defined earlier.
    defined: set[str] = set()
    for entry in f.env:
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", entry.get("value") or ""):
            if ref not in defined:
                problems.append(f"env {entry['name']} uses $({ref}) before {ref} is defined")
        defined.add(entry["name"])
    field_refs = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in f.env}
    # The node id is what the agent's certificate names: the node name it
    # issues itself, or the pod name cert-manager's CSI driver writes.
    node_id = "metadata.name" if f.cert_manager else "spec.nodeName"
    for var, path in (("NODE_NAME", "spec.nodeName"), ("VOLLEY_NODE_ID", node_id),
                      ("POD_IP", "status.podIP"), ("POD_NAMESPACE", "metadata.namespace")):
        if var in field_refs and field_refs[var] != path:
            problems.append(f"env {var} comes from {field_refs[var]!r}, expected downward API {path}")
    for var, port in (("VOLLEY_API_LISTEN", "api"), ("VOLLEY_GOSSIP_LISTEN", "gossip"),
                      ("VOLLEY_GOSSIP_ADVERTISE", "gossip"), ("VOLLEY_QUIC_LISTEN", "quic"),
                      ("VOLLEY_QUIC_ADVERTISE", "quic")):
        want = f.ports.get(port, {}).get("containerPort")
        got = _port_of(f.env_values.get(var))
        if want is None or got != want:
            problems.append(f"env {var}={f.env_values.get(var)!r} does not use container port {port} ({want})")
    # Pod seeds: the selector must pick exactly this DaemonSet's pods, by
    # every selector label (the chart's name its release instance).
    selector = f.env_values.get("VOLLEY_SEED_SELECTOR") or ""
    wanted = dict(pair.split("=", 1) for pair in selector.split(",") if "=" in pair)
    ds_selector = f.ds["spec"]["selector"].get("matchLabels", {})
    if wanted != ds_selector:
        problems.append(f"env VOLLEY_SEED_SELECTOR={selector!r} is not the DaemonSet's selector {ds_selector}")
    for var in ("VOLLEY_GOSSIP_ADVERTISE", "VOLLEY_QUIC_ADVERTISE"):
        if not (f.env_values.get(var) or "").startswith("$(POD_IP):"):
            problems.append(f"env {var} does not advertise $(POD_IP)")
    return problems


def check_ports_and_probes(f: Fleet) -> list[str]:
    problems = []
    for port_name, proto in (("api", "TCP"), ("gossip", "UDP"), ("quic", "UDP")):
        port = f.ports.get(port_name)
        if port is None:
            problems.append(f"container port {port_name} missing")
        elif port.get("protocol", "TCP") != proto:
            problems.append(f"container port {port_name} is {port.get('protocol', 'TCP')}, expected {proto}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        spec = f.container.get(probe)
        if spec is None:
            if probe != "startupProbe":
                problems.append(f"{probe} missing")
            continue
        get = spec.get("httpGet", {})
        if get.get("path") != path:
            problems.append(f"{probe} path {get.get('path')!r}, expected {path}")
        if get.get("port") not in ("api", f.ports.get("api", {}).get("containerPort")):
            problems.append(f"{probe} port {get.get('port')!r} is not the api port")
    prom_port = f.pod["metadata"].get("annotations", {}).get("prometheus.io/port")
    if prom_port is not None and str(prom_port) != str(f.ports.get("api", {}).get("containerPort")):
        problems.append(f"annotation prometheus.io/port={prom_port} is not the api port")
    return problems


def check_services(f: Fleet) -> list[str]:
    problems = []
    gossip, api = f.service("-gossip"), f.service("-api")
    if gossip is None or api is None:
        return ["expected one Service named *-gossip and one named *-api"]
    for svc in (gossip, api):
        if not selects(svc["spec"].get("selector", {}), f.pod_labels):
            problems.append(f"Service {name(svc)} does not select the agent pods")
        for port in svc["spec"]["ports"]:
            target = f.ports.get(port.get("targetPort")) if isinstance(port.get("targetPort"), str) else None
            if target is None:
                problems.append(f"Service {name(svc)} port {port.get('name')}: targetPort "
                                f"{port.get('targetPort')!r} is not a named container port")
            elif target.get("protocol", "TCP") != port.get("protocol", "TCP"):
                problems.append(f"Service {name(svc)} port {port.get('name')}: protocol differs from the container")
    if gossip["spec"].get("clusterIP") != "None":
        problems.append(f"Service {name(gossip)} is not headless")
    if gossip["spec"].get("publishNotReadyAddresses") is not True:
        problems.append(f"Service {name(gossip)} hides not-ready pods: the first agents cannot find each other")
    seeds = f.env_values.get("VOLLEY_SEEDS") or ""
    host, _, port = seeds.rpartition(":")
    gossip_port = next((p["port"] for p in gossip["spec"]["ports"] if p.get("targetPort") == "gossip"), None)
    if not host.startswith(f"{name(gossip)}.") or ".svc." not in host:
        problems.append(f"VOLLEY_SEEDS={seeds!r} does not name Service {name(gossip)}")
    if not port.isdigit() or int(port) != gossip_port:
        problems.append(f"VOLLEY_SEEDS port {port!r} is not the gossip Service port {gossip_port}")
    return problems


def _secret_keys(objs: list[dict], secret: str) -> set[str] | None:
    for obj in of_kind(objs, "Secret"):
        if name(obj) == secret:
            return set(obj.get("data", {})) | set(obj.get("stringData", {}))
    return None


def check_mounts(f: Fleet, external_secrets: set[str]) -> list[str]:
    problems = []
    secret_files = [("VOLLEY_TOKEN_FILE", "token")]
    if f.cert_manager:
        secret_files.append(("VOLLEY_GOSSIP_SECRET_FILE", "secret"))
    else:
        secret_files += [("VOLLEY_CA_CERT", "ca.crt"), ("VOLLEY_CA_KEY", "ca.key")]
    for var, key in secret_files:
        path = f.env_values.get(var) or ""
        mount, volume = f.mount_for(path)
        if mount is None or volume is None or "secret" not in volume:
            problems.append(f"{var}={path!r} is not inside a Secret mount")
            continue
        if not mount.get("readOnly"):
            problems.append(f"{var}: mount {mount['mountPath']} is not readOnly")
        if path.rsplit("/", 1)[-1] != key:
            problems.append(f"{var}={path!r} does not end in the Secret key {key}")
        secret = volume["secret"]["secretName"]
        keys = _secret_keys(f.objs, secret)
        if keys is None and secret not in external_secrets:
            problems.append(f"{var}: Secret {secret} is neither rendered nor an existing Secret")
        if keys is not None and key not in keys:
            problems.append(f"{var}: Secret {secret} has no key {key}")
    data_dir = f.env_values.get("VOLLEY_DATA_DIR") or ""
    mount = f.mounts.get(data_dir)
    if mount is None or mount.get("readOnly"):
        problems.append(f"VOLLEY_DATA_DIR={data_dir!r} is not a writable volume mount")
    if "/tmp" not in f.mounts:
        problems.append("no /tmp mount under a read-only root filesystem")
    return problems


def check_cert_manager(f: Fleet) -> list[str]:
    """In cert-manager mode: the certificate, key and CA come from one
    read-only CSI volume of cert-manager's driver that names the pod as the
    agent's node id and `volley-agent` as its server name, with the usages
    mutual TLS needs and a PKCS#8 key; no pod mounts the CA's key."""
    if not f.cert_manager:
        return []
    problems = []
    volumes = set()
    for var, file in (("VOLLEY_CERT", "tls.crt"), ("VOLLEY_KEY", "tls.key"), ("VOLLEY_CA_CERT", "ca.crt")):
        path = f.env_values.get(var) or ""
        mount, volume = f.mount_for(path)
        if mount is None or volume is None or volume.get("csi", {}).get("driver") != CSI_DRIVER:
            problems.append(f"{var}={path!r} is not inside a {CSI_DRIVER} volume")
            continue
        volumes.add(volume["name"])
        if not mount.get("readOnly") or not volume["csi"].get("readOnly"):
            problems.append(f"{var}: the CSI volume or its mount is not readOnly")
        if path.rsplit("/", 1)[-1] != file:
            problems.append(f"{var}={path!r} is not the driver's file {file}")
    if len(volumes) > 1:
        problems.append(f"certificate, key and CA come from different volumes: {sorted(volumes)}")
    for name_ in volumes:
        attrs = f.volumes[name_]["csi"].get("volumeAttributes", {})
        want = {
            "csi.cert-manager.io/common-name": "${POD_NAME}",
            "csi.cert-manager.io/key-encoding": "PKCS8",
        }
        for key, value in want.items():
            if attrs.get(key) != value:
                problems.append(f"{key}: {attrs.get(key)!r}, expected {value!r}")
        dns = [d.strip() for d in attrs.get("csi.cert-manager.io/dns-names", "").split(",")]
        if AGENT_SAN not in dns:
            problems.append(f"csi.cert-manager.io/dns-names {dns} lacks {AGENT_SAN}")
        usages = {u.strip() for u in attrs.get("csi.cert-manager.io/key-usages", "").split(",")}
        for usage in ("server auth", "client auth", "digital signature"):
            if usage not in usages:
                problems.append(f"csi.cert-manager.io/key-usages lacks {usage!r}")
        if not attrs.get("csi.cert-manager.io/issuer-name"):
            problems.append("csi.cert-manager.io/issuer-name is empty")
        group = str((f.spec.get("securityContext") or {}).get("runAsGroup", ""))
        if attrs.get("csi.cert-manager.io/fs-group") != group:
            problems.append(f"csi.cert-manager.io/fs-group {attrs.get('csi.cert-manager.io/fs-group')!r} "
                            f"is not the agent's group {group!r}: the key would be unreadable")
    # No CA key anywhere near the load nodes.
    for obj in of_kind(f.objs, "Secret"):
        if "ca.key" in obj.get("data", {}) or "ca.key" in obj.get("stringData", {}):
            problems.append(f"Secret {name(obj)} holds ca.key")
    for vol in f.volumes.values():
        secret = vol.get("secret", {}).get("secretName")
        keys = _secret_keys(f.objs, secret) if secret else None
        if secret and (keys is None or "ca.key" in keys) and vol["name"] == "ca":
            problems.append(f"volume {vol['name']} mounts Secret {secret}, the CA's")
    return problems


def _bound_rules(f: Fleet, binding_kind: str, role_kind: str) -> set[tuple[str, str, str]]:
    sa = f.spec.get("serviceAccountName", "default")
    granted = set()
    for binding in of_kind(f.objs, binding_kind):
        if binding_kind == "RoleBinding" and binding["metadata"].get("namespace") != f.namespace:
            continue
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa
                   and s.get("namespace", f.namespace) == f.namespace for s in binding.get("subjects", [])):
            continue
        ref = binding["roleRef"]
        for role in of_kind(f.objs, role_kind):
            if name(role) == ref["name"] and ref["kind"] == role_kind:
                for rule in role.get("rules", []):
                    for g in rule.get("apiGroups", []):
                        for r in rule.get("resources", []):
                            for v in rule.get("verbs", []):
                                granted.add((g, r, v))
    return granted


def check_rbac(f: Fleet) -> list[str]:
    problems = []
    sa = f.spec.get("serviceAccountName")
    if not any(name(o) == sa for o in of_kind(f.objs, "ServiceAccount")):
        problems.append(f"ServiceAccount {sa!r} used by the pods is not defined")
    cluster = _bound_rules(f, "ClusterRoleBinding", "ClusterRole")
    local = _bound_rules(f, "RoleBinding", "Role")
    for missing in sorted(CLUSTER_PERMISSIONS - cluster):
        problems.append(f"cluster-wide permission missing: {missing}")
    for missing in sorted(NAMESPACE_PERMISSIONS - local):
        problems.append(f"namespace permission missing: {missing}")
    for grant in sorted(cluster | local):
        if "*" in grant:
            problems.append(f"wildcard grant {grant}")
    for extra in sorted(cluster - CLUSTER_PERMISSIONS):
        problems.append(f"cluster-wide grant the agent never uses: {extra}")
    for extra in sorted(local - NAMESPACE_PERMISSIONS - OPTIONAL_NAMESPACE_PERMISSIONS):
        problems.append(f"namespace grant the agent never uses: {extra}")
    return problems


def _allows(rule_ports: list[dict], proto: str, port: int) -> bool:
    return not rule_ports or any(p.get("protocol", "TCP") == proto and p.get("port") == port for p in rule_ports)


def check_networkpolicy(f: Fleet) -> list[str]:
    policies = of_kind(f.objs, "NetworkPolicy")
    if not policies:
        return []
    problems = []
    np = policies[0]["spec"]
    if not selects(np["podSelector"].get("matchLabels", {}), f.pod_labels):
        problems.append("NetworkPolicy does not select the agent pods")
    if set(np.get("policyTypes", [])) != {"Ingress", "Egress"}:
        problems.append(f"policyTypes {np.get('policyTypes')}, expected Ingress and Egress")
    port = {n: p["containerPort"] for n, p in f.ports.items()}

    def fleet_peer(rule: dict, key: str) -> bool:
        return any(selects(peer.get("podSelector", {}).get("matchLabels", {}), f.pod_labels)
                   and "namespaceSelector" not in peer for peer in rule.get(key, []))

    ingress, egress = np.get("ingress", []), np.get("egress", [])
    if not any(_allows(r.get("ports", []), "TCP", port["api"]) for r in ingress):
        problems.append("ingress to the API port is not allowed")
    for p in ("gossip", "quic"):
        if not any(fleet_peer(r, "from") and _allows(r.get("ports", []), "UDP", port[p]) for r in ingress):
            problems.append(f"ingress {p} from fleet pods is not allowed")
        if not any(fleet_peer(r, "to") and _allows(r.get("ports", []), "UDP", port[p]) for r in egress):
            problems.append(f"egress {p} to fleet pods is not allowed")
        if any(not fleet_peer(r, "from") and _allows(r.get("ports", []), "UDP", port[p]) for r in ingress):
            problems.append(f"ingress {p} is open beyond the fleet")
    # DNS: a rule to a namespace allowing one port over UDP and TCP (53, or
    # the chart's networkPolicy.dnsPort).
    def dns(rule: dict) -> bool:
        ports = rule.get("ports", [])
        udp = {p.get("port") for p in ports if p.get("protocol") == "UDP"}
        tcp = {p.get("port") for p in ports if p.get("protocol", "TCP") == "TCP"}
        return any("namespaceSelector" in t for t in rule.get("to", [])) and bool(udp & tcp)
    if not any(dns(r) for r in egress):
        problems.append("egress to DNS (one port, UDP and TCP, in a namespace) is not allowed")
    if not any(any("ipBlock" in peer for peer in r.get("to", []))
               and (_allows(r.get("ports", []), "TCP", 443) or _allows(r.get("ports", []), "TCP", 6443))
               for r in egress):
        problems.append("egress to the API server (ipBlock on 443/6443) is not allowed")
    for i, rule in enumerate(egress):
        if not rule.get("to"):
            problems.append(f"egress rule {i} has no `to`: it allows every destination")
        for peer in rule.get("to", []):
            if peer.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0"):
                problems.append(f"egress rule {i} allows the whole internet")
    return problems


def check_servicemonitor(f: Fleet, external_secrets: set[str]) -> list[str]:
    monitors = of_kind(f.objs, "ServiceMonitor")
    if not monitors:
        return []
    problems = []
    api, gossip = f.service("-api"), f.service("-gossip")
    spec = monitors[0]["spec"]
    sel = spec["selector"].get("matchLabels", {})
    if api is None or not selects(sel, api["metadata"].get("labels", {})):
        problems.append("ServiceMonitor does not select the API Service")
    if gossip is not None and selects(sel, gossip["metadata"].get("labels", {})):
        problems.append("ServiceMonitor also selects the gossip Service")
    api_ports = {p["name"] for p in (api or {}).get("spec", {}).get("ports", [])}
    for ep in spec.get("endpoints", []):
        if ep.get("port") not in api_ports:
            problems.append(f"ServiceMonitor endpoint port {ep.get('port')!r} is not a port of the API Service")
        if ep.get("path") != "/metrics":
            problems.append(f"ServiceMonitor path {ep.get('path')!r}, expected /metrics")
        cred = ep.get("authorization", {}).get("credentials")
        if cred:
            keys = _secret_keys(f.objs, cred["name"])
            if keys is None and cred["name"] not in external_secrets:
                problems.append(f"ServiceMonitor token Secret {cred['name']} does not exist")
    return problems


def check_generated_ca(f: Fleet) -> list[str]:
    """A CA generated by the chart must be loadable by the agents:
    PKCS#8 PEM (the only private key form rcgen accepts with ring), Ed25519."""
    problems = []
    for secret in of_kind(f.objs, "Secret"):
        data = secret.get("data", {})
        if "ca.key" not in data:
            continue
        key_pem = base64.b64decode(data["ca.key"]).decode()
        crt_pem = base64.b64decode(data["ca.crt"]).decode()
        if not key_pem.startswith("-----BEGIN PRIVATE KEY-----"):
            problems.append(f"Secret {name(secret)}: ca.key is not PKCS#8 PEM ({key_pem.splitlines()[0]})")
        body = "".join(line for line in key_pem.splitlines() if not line.startswith("-----"))
        if ED25519_OID not in base64.b64decode(body):
            problems.append(f"Secret {name(secret)}: ca.key is not an Ed25519 key")
        if not crt_pem.startswith("-----BEGIN CERTIFICATE-----"):
            problems.append(f"Secret {name(secret)}: ca.crt is not a PEM certificate")
    return problems


def all_checks(objs: list[dict], external_secrets: set[str]) -> list[tuple[str, list[str]]]:
    """Runs every check; returns (check name, problems) pairs."""
    try:
        f = Fleet(objs)
    except (ValueError, KeyError) as err:
        return [("agent DaemonSet", [str(err)])]
    checks: list[tuple[str, Callable[[], list[str]]]] = [
        ("DaemonSet shape", lambda: check_daemonset(f)),
        ("pod security", lambda: check_security(f)),
        ("agent environment", lambda: check_env(f)),
        ("ports and probes", lambda: check_ports_and_probes(f)),
        ("Services and seeds", lambda: check_services(f)),
        ("secret and data mounts", lambda: check_mounts(f, external_secrets)),
        ("certificates from cert-manager", lambda: check_cert_manager(f)),
        ("RBAC bound to the agent", lambda: check_rbac(f)),
        ("NetworkPolicy", lambda: check_networkpolicy(f)),
        ("ServiceMonitor wiring", lambda: check_servicemonitor(f, external_secrets)),
        ("generated CA format", lambda: check_generated_ca(f)),
    ]
    results = []
    for label, run in checks:
        try:
            results.append((label, run()))
        except (KeyError, TypeError, ValueError) as err:  # malformed object: report, don't crash
            results.append((label, [f"malformed manifest: {type(err).__name__}: {err}"]))
    return results


def summary_of(obj: Any) -> str:
    return f"{obj.get('kind')}/{name(obj)}"
