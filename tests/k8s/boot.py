"""Boot the real `volley agent` as a rendered pod would run it.

For one render of the chart: the agent container's environment (downward
API values filled in as the kubelet would, `$(VAR)` expanded in order), its
args, and its volumes laid out as the kubelet lays them out, with the
ownership and modes that decide whether a non-root agent can use them:
emptyDir 0777, Secret files root:fsGroup with the volume's defaultMode, a
hostPath directory created by "root" 0755 and then handed over by the
rendered init containers (run as root, as their securityContext says), the
cert-manager CSI volume's files for the pod. The agent then runs as the pod's
runAsUser/runAsGroup with fsGroup as its supplementary group (setpriv, no
capabilities, no_new_privs) in a network namespace of its own (the rendered
fixed ports cannot clash with anything), and must print its ready line,
answer the rendered readiness and liveness probes, and write its data
directory.

Not a container: the root filesystem is the host's (not read-only), and each
mount path is mapped to a directory under a temporary root, in the
environment too (VOLLEY_DATA_DIR=/var/lib/volley becomes ROOT/var/lib/volley).
Needs root (to switch user and create namespaces), `unshare`, `setpriv`,
`nsenter`, `ip` and `openssl`.
"""

from __future__ import annotations

import base64
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import wiring

POD_NAME = "volley-agent-x7k2p"
NODE_NAME = "boot-node-1"
POD_IP = "127.0.0.1"
READY_TIMEOUT = 20.0
TOOLS = ("unshare", "setpriv", "nsenter", "ip", "openssl")


def missing_tools() -> list[str]:
    problems = [f"`{t}` not found on PATH" for t in TOOLS if shutil.which(t) is None]
    if os.geteuid() != 0:
        problems.append("not root: switching to the pod's user and creating a network namespace need root")
    return problems


def _field(path: str, namespace: str) -> str:
    return {"spec.nodeName": NODE_NAME, "status.podIP": POD_IP, "metadata.namespace": namespace,
            "metadata.name": POD_NAME}[path]


def environment(f: wiring.Fleet, mounts: dict[str, pathlib.Path]) -> dict[str, str]:
    """The container's env as the kubelet gives it, with mount paths mapped."""
    env: dict[str, str] = {}
    for entry in f.env:
        if "valueFrom" in entry:
            ref = entry["valueFrom"].get("fieldRef")
            if ref is None:
                raise ValueError(f"env {entry['name']}: only fieldRef is supported here, got {entry['valueFrom']}")
            value = _field(ref["fieldPath"], f.namespace)
        else:
            value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                           lambda m: env.get(m.group(1), m.group(0)), entry.get("value") or "")
        env[entry["name"]] = map_path(value, mounts)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def map_path(value: str, mounts: dict[str, pathlib.Path]) -> str:
    best = max((mp for mp in mounts if value == mp or value.startswith(mp.rstrip("/") + "/")),
               key=len, default=None)
    return str(mounts[best]) + value[len(best):] if best else value


def _secret_data(objs: list[dict], name: str, ca_dir: pathlib.Path) -> dict[str, bytes]:
    """A rendered Secret's data, or what an existing Secret of that name holds."""
    for o in wiring.of_kind(objs, "Secret"):
        if wiring.name(o) == name:
            return {k: base64.b64decode(v) for k, v in o.get("data", {}).items()}
    if name.endswith("token"):
        return {"token": secrets.token_urlsafe(32).encode()}
    if name.endswith("gossip"):
        return {"secret": secrets.token_urlsafe(32).encode()}
    return {"ca.crt": (ca_dir / "ca.crt").read_bytes(), "ca.key": (ca_dir / "ca.key").read_bytes()}


def _issue_for_pod(ca_dir: pathlib.Path, out: pathlib.Path, attrs: dict) -> dict[str, bytes]:
    """What cert-manager's CSI driver mounts for this pod, issued by the fleet CA
    with the volume's attributes (${POD_NAME} filled in)."""
    sub = lambda s: s.replace("${POD_NAME}", POD_NAME)
    cn = sub(attrs["csi.cert-manager.io/common-name"])
    dns = [sub(d.strip()) for d in attrs.get("csi.cert-manager.io/dns-names", "").split(",") if d.strip()]
    usages = {u.strip() for u in attrs.get("csi.cert-manager.io/key-usages", "").split(",")}
    eku = [n for u, n in (("server auth", "serverAuth"), ("client auth", "clientAuth")) if u in usages]
    key, csr, crt, ext = (out / n for n in ("tls.key", "tls.csr", "tls.crt", "ext.cnf"))
    if attrs.get("csi.cert-manager.io/key-encoding") != "PKCS8":
        raise ValueError("only PKCS8 keys are issued here")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=30)
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    run("openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-out", str(csr))
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{d}" for d in dns) + "\n"
                   + "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   + (f"extendedKeyUsage={','.join(eku)}\n" if eku else ""))
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.crt"), "-CAkey",
        str(ca_dir / "ca.key"), "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(crt))
    return {"tls.crt": crt.read_bytes(), "tls.key": key.read_bytes(), "ca.crt": (ca_dir / "ca.crt").read_bytes()}


def _write_files(dest: pathlib.Path, files: dict[str, bytes], gid: int, mode: int) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    os.chown(dest, 0, gid)
    dest.chmod(0o755)
    for key, data in files.items():
        path = dest / key
        path.write_bytes(data)
        os.chown(path, 0, gid)
        path.chmod(mode)


def lay_out(f: wiring.Fleet, root: pathlib.Path, binary: str, run_inits: bool) -> dict[str, pathlib.Path]:
    """Creates every volume of the agent container under `root`; returns mount path -> directory."""
    sc = f.spec.get("securityContext") or {}
    fs_group = int(sc.get("fsGroup", 0))
    ca_dir = root / "_fleet-ca"
    subprocess.run([binary, "ca", "init", "--out", str(ca_dir)], check=True, capture_output=True, timeout=60)
    mounts: dict[str, pathlib.Path] = {}
    by_volume: dict[str, pathlib.Path] = {}
    for m in f.container.get("volumeMounts", []):
        dest = root / m["mountPath"].lstrip("/")
        vol = f.volumes[m["name"]]
        dest.parent.mkdir(parents=True, exist_ok=True)
        for p in [dest.parent, *dest.parent.parents]:
            if p == root.parent:
                break
            p.chmod(0o755)
        if "emptyDir" in vol:
            dest.mkdir()
            dest.chmod(0o777)
        elif "hostPath" in vol:
            # The kubelet's DirectoryOrCreate: root's, 0755.
            dest.mkdir()
            dest.chmod(0o755)
        elif "secret" in vol:
            data = _secret_data(f.objs, vol["secret"]["secretName"], ca_dir)
            _write_files(dest, data, fs_group, vol["secret"].get("defaultMode", 0o644))
        elif "configMap" in vol:
            _write_files(dest, {"ca.crt": (ca_dir / "ca.crt").read_bytes()}, fs_group, 0o644)
        elif vol.get("csi", {}).get("driver") == wiring.CSI_DRIVER:
            attrs = vol["csi"]["volumeAttributes"]
            work = root / "_csi"
            work.mkdir(exist_ok=True)
            group = int(attrs.get("csi.cert-manager.io/fs-group", fs_group))
            _write_files(dest, _issue_for_pod(ca_dir, work, attrs), group, 0o640)
        else:
            raise ValueError(f"volume {vol['name']}: kind not supported here: {sorted(vol)}")
        mounts[m["mountPath"]] = dest
        by_volume[m["name"]] = dest
    if run_inits:
        for init in f.spec.get("initContainers", []):
            command = init.get("command", []) + init.get("args", [])
            init_mounts = {m["mountPath"]: by_volume[m["name"]] for m in init.get("volumeMounts", [])}
            mapped = [map_path(a, init_mounts) for a in command]
            out = subprocess.run(mapped, capture_output=True, text=True, timeout=30)
            if out.returncode != 0:
                raise RuntimeError(f"init container {init['name']} {mapped} failed: {out.stderr.strip()}")
    return mounts


def _probe(pid: int, port: int, path: str) -> bool:
    code = ("import urllib.request,sys\n"
            f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2).status == 200 else 1)")
    out = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", code],
                         capture_output=True, timeout=10)
    return out.returncode == 0


def boot(objs: list[dict], binary: str, run_inits: bool = True) -> tuple[list[str], Any]:
    """Starts the agent of a render; returns (problems, exit code or None if it was ready)."""
    f = wiring.Fleet(objs)
    sc = f.spec.get("securityContext") or {}
    uid, gid = int(sc.get("runAsUser", 0)), int(sc.get("runAsGroup", 0))
    groups = str(sc["fsGroup"]) if "fsGroup" in sc else None
    with tempfile.TemporaryDirectory(prefix="volley-boot-") as tmp:
        root = pathlib.Path(tmp)
        root.chmod(0o755)
        mounts = lay_out(f, root, binary, run_inits)
        env = environment(f, mounts)
        setpriv = ["setpriv", f"--reuid={uid}", f"--regid={gid}",
                   f"--groups={groups}" if groups else "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        # unshare execs sh, which execs setpriv, which execs the agent: one pid.
        cmd = ["unshare", "--net", "--", "sh", "-c", f"{shutil.which('ip')} link set lo up && exec \"$@\"",
               "sh", *setpriv, binary, *f.container.get("args", [])]
        log = root / "agent.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)
        problems: list[str] = []
        try:
            problems = _watch(proc, f, root, uid)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            code = proc.returncode
            if problems:
                tail = log.read_text(errors="replace").strip().splitlines()[-8:]
                problems.append("agent log tail:\n            " + "\n            ".join(tail))
        return problems, code


def _watch(proc: subprocess.Popen, f: wiring.Fleet, root: pathlib.Path, uid: int) -> list[str]:
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while b"\n" not in buf:
        if proc.poll() is not None:
            return [f"the agent exited with code {proc.returncode} before its ready line"]
        if time.monotonic() > deadline:
            return [f"no ready line within {READY_TIMEOUT}s"]
        chunk = proc.stdout.read() or b""
        buf += chunk
        if not chunk:
            time.sleep(0.05)
    first = buf.split(b"\n", 1)[0].decode(errors="replace")
    if '"event":"ready"' not in first.replace(" ", ""):
        return [f"first stdout line is not the ready line: {first!r}"]
    problems = []
    for name in ("readinessProbe", "livenessProbe"):
        probe = f.container.get(name, {}).get("httpGet", {})
        port = probe.get("port")
        port = f.ports[port]["containerPort"] if isinstance(port, str) else port
        while not _probe(proc.pid, port, probe.get("path", "/")):
            if proc.poll() is not None or time.monotonic() > deadline:
                problems.append(f"{name} GET {probe.get('path')} on port {port} never answered 200")
                break
            time.sleep(0.2)
    data_dir = pathlib.Path(map_path(f.env_values.get("VOLLEY_DATA_DIR") or "", {}))
    written = [p for p in (root / str(data_dir).lstrip("/")).rglob("*") if p.stat().st_uid == uid]
    if not written:
        problems.append(f"nothing in the data directory {data_dir} was written by uid {uid}")
    return problems
