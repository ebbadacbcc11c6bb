"""A whole ckm system of real processes for fault scenarios, and the tools to judge it.

- `RedisServer`: a private `redis-server` on a free loopback port in its own directory (with
  or without `--appendonly yes`) that a test can SIGKILL, SHUTDOWN and restart on the same
  port.
- `FaultStack`: that Redis, `ckm emulate contrail`, `ckm emulate kube --nodes 2`, one or two
  `ckm watcher` processes (they elect through the Lease), `ckm worker` processes and
  `ckm beat`, each logging to a file under the test's tmp_path, with short timings from the
  environment. `kill_worker`, `start_worker`, `kill_watcher`, `leader()` and friends are the
  faults; `context` is an engine context on the private Redis for the test's own reads.
- `converge(stack)`: waits until nothing is pending (as `ckm wait --idle`) *and* the
  Contrail state has stopped changing; returns when it last changed.
- `snapshot(stack)`: the Contrail emulator's state made comparable across runs: objects keyed
  by (type, fq_name), refs by the referenced fq_name, Kubernetes uids replaced by the object
  they name, uuids, timestamps, MACs and allocated addresses dropped or named by their owner.
- `duplicates`, `leaks`: the structural checks; `InvariantChecker`: a thread that samples the
  live invariants every ~0.5 s and keeps the violations that outlive a grace period.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import redis

from ckm.processes import Processes, free_port, wait_until
from config.settings import Settings
from contrail.client import ContrailClient
from workers.context import Context
from workers.status import pending

# Short timings: a dead worker's key is rescued after 2 s, retries back off 50 ms .. 1 s,
# a Contrail call retries for at most 3 s, a full resync + GC runs every 8 s.
TIMINGS = {
    "CKM_LEASE_SECONDS": "2",
    "CKM_BACKOFF_BASE": "0.05",
    "CKM_BACKOFF_CAP": "1",
    "CKM_SETTLE_SECONDS": "0.05",
    "CKM_CONTRAIL_RETRY_SECONDS": "3",
    "CKM_CONTRAIL_TIMEOUT": "5",
    "CKM_RESYNC_INTERVAL": "8",
    "CKM_MAX_ATTEMPTS": "8",
    "CKM_RESEND_SECONDS": "3",
    "CKM_WATCHER_LEASE_SECONDS": "4",
}

WATCHER_MAIN = ("import logging, sys; logging.basicConfig(level=logging.INFO, "
                "format='%(asctime)s %(levelname)s %(name)s: %(message)s'); "
                "logging.getLogger('httpx').setLevel(logging.WARNING); "
                "from ckm.cli import main; sys.argv[0] = 'ckm'; main()")

# Every Contrail type ckm creates, plus the vrouters it links VMs to.
TYPES = ("project", "network-ipam", "virtual-network", "floating-ip-pool", "floating-ip",
         "instance-ip", "virtual-machine", "virtual-machine-interface", "security-group",
         "loadbalancer", "loadbalancer-listener", "loadbalancer-pool", "loadbalancer-member")


REPORTED: list[str] = []


def report(line: str) -> None:
    """Print a result line now; the suite's terminal summary repeats them all."""
    REPORTED.append(line)
    print(line, flush=True)


# --- Redis -----------------------------------------------------------------------------------
class RedisServer:
    """A private redis-server that can be killed and brought back on the same port."""

    def __init__(self, workdir: Path, *, appendonly: bool = False, port: int = 0):
        self.binary = shutil.which("redis-server")
        assert self.binary, "redis-server is not on PATH (apt-get install redis-server)"
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly
                       else ["--appendonly", "no"])
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                *persistence, "--dir", str(self.dir), "--protected-mode", "no"]

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "redis is already running"
        with self.log.open("ab") as log:
            log.write(f"--- start #{self.starts + 1} at {time.time():.3f}\n".encode())
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.starts += 1
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.RedisError):
                # a server loading its AOF answers LOADING errors until it is done
                if client.ping():
                    break
            assert self.proc.poll() is None, f"redis-server exited: {tail(self.log)}"
            assert time.monotonic() < deadline, "redis-server did not answer in 20 s"
            time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL: whatever was not written to the AOF is lost."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def shutdown(self, *, save: bool = False) -> None:
        """A clean SHUTDOWN (fsyncs the AOF when persistence is on)."""
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(self.url).shutdown(save=save, nosave=not save)
        if self.proc:
            self.proc.wait(timeout=20)

    def restart(self, *, down_for: float = 0.0) -> None:
        self.kill()
        if down_for:
            time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log, without the HTTP client's line per request."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<{exc}>"
    return "\n".join([line for line in text if "HTTP Request:" not in line][-lines:])


# --- the stack -------------------------------------------------------------------------------
@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    metrics: str = ""


class FaultStack:
    """Redis, both emulators, watcher(s), workers and beat as real child processes."""

    def __init__(self, tmp_path: Path, *, appendonly: bool = False, beat: bool = True,
                 env: dict[str, str] | None = None, nodes: int = 2):
        self.dir = tmp_path
        self.logs = tmp_path / "logs"
        self.stopped: set[str] = set()  # children the scenario killed or stopped itself
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs = Processes(self.logs)
        self.redis = RedisServer(tmp_path / "redis", appendonly=appendonly)
        self.beat_enabled = beat
        self.nodes = nodes
        self.extra_env = env or {}
        self.workers: list[Child] = []
        self.watchers: list[Child] = []
        self.beat: Child | None = None
        self._serial = Counter()
        self.contrail_url = self.kube_url = ""
        self._context: Context | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, *, workers: int = 2, watchers: int = 1) -> FaultStack:
        self.redis.start()
        self.contrail_url = self.procs.contrail(free_port())
        kubeconfig = self.dir / "kubeconfig"
        self.kube_url = self.procs.kube(free_port(), kubeconfig, "--contrail-url",
                                        self.contrail_url, "--nodes", str(self.nodes))
        for _ in range(watchers):
            self.start_watcher(wait=False)
        for _ in range(workers):
            self.start_worker(wait=False)
        if self.beat_enabled:
            self.beat = Child("beat", self.procs.ckm("beat", "beat", env=self.env()))
        for child in self.workers + self.watchers:
            self._wait_ready(child)
        wait_until(lambda: self.leader() is not None, "a leading watcher", timeout=30)
        return self

    def close(self) -> None:
        self.procs.close()
        self.redis.stop()
        if self._context is not None:
            with contextlib.suppress(Exception):
                self._context.contrail.close()

    def env(self) -> dict[str, str]:
        return {"CKM_BROKER_URL": self.redis.url, "CKM_CONTRAIL_URLS": self.contrail_url,
                "CKM_KUBE_URL": self.kube_url, "CKM_STATE_DIR": str(self.logs),
                "CKM_LOG_LEVEL": "INFO", **TIMINGS, **self.extra_env}

    def _name(self, kind: str) -> str:
        self._serial[kind] += 1
        return f"{kind}-{self._serial[kind]}"

    def _wait_ready(self, child: Child, timeout: float = 60) -> None:
        try:
            wait_until(lambda: httpx.get(child.metrics).status_code == 200, child.name,
                       child.proc, timeout=timeout)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{tail(self.logs / (child.name + '.log'))}") from None

    def start_worker(self, *, wait: bool = True, concurrency: int = 8) -> Child:
        name, port = self._name("worker"), free_port()
        proc = self.procs.ckm(name, "worker", "--concurrency", str(concurrency),
                              "--name", f"{name}@faults",
                              env={**self.env(), "CKM_METRICS_PORT": str(port)})
        child = Child(name, proc, f"http://127.0.0.1:{port}/metrics")
        self.workers.append(child)
        if wait:
            self._wait_ready(child)
        return child

    def start_watcher(self, *, wait: bool = True) -> Child:
        """`ckm watcher` (the real command, with INFO logging set up so that its log shows
        the election and relists; the command itself configures no logging)."""
        name, port = self._name("watcher"), free_port()
        proc = self.procs.spawn(name, [sys.executable, "-c", WATCHER_MAIN, "watcher",
                                       "--metrics-port", str(port), "--identity", name],
                                env=self.env())
        child = Child(name, proc, f"http://127.0.0.1:{port}/healthz")
        self.watchers.append(child)
        if wait:
            self._wait_ready(child)
        return child

    def kill(self, child: Child, sig: int = signal.SIGKILL) -> None:
        self.stopped.add(child.name)
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, sig)
        child.proc.wait(timeout=30)

    def kill_worker(self, child: Child | None = None) -> Child:
        child = child or next(w for w in self.workers if w.proc.poll() is None)
        self.kill(child)
        return child

    def died(self) -> list[str]:
        """ckm processes that exited without being killed or stopped by the scenario."""
        children = self.watchers + self.workers + ([self.beat] if self.beat else [])
        return [f"{c.name} exited by itself (code {c.proc.returncode})" for c in children
                if c.proc.poll() is not None and c.name not in self.stopped]

    def live(self, children: list[Child]) -> list[Child]:
        return [c for c in children if c.proc.poll() is None]

    def stop_engine(self) -> None:
        """SIGTERM every watcher, worker and beat (a clean stop) and wait for them."""
        children = self.live(self.watchers + self.workers + ([self.beat] if self.beat
                                                               else []))
        self.stopped.update(child.name for child in children)
        for child in children:  # all at once, then wait: a warm shutdown takes a moment
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGTERM)
        for child in children:
            child.proc.wait(timeout=30)

    def start_engine(self, *, workers: int = 2, watchers: int = 1) -> None:
        for _ in range(watchers):
            self.start_watcher(wait=False)
        for _ in range(workers):
            self.start_worker(wait=False)
        if self.beat_enabled:
            self.beat = Child("beat", self.procs.ckm(self._name("beat"), "beat",
                                                     env=self.env()))
        for child in self.live(self.workers + self.watchers):
            self._wait_ready(child)

    # --- emulator fault knobs -------------------------------------------------------------
    def kube_admin(self, method: str, path: str, body: Any = None) -> Any:
        """The kube emulator's /_emulator control plane (faults, compact, watches/drop)."""
        answer = httpx.request(method, f"{self.kube_url}/_emulator/{path}", json=body,
                               timeout=10)
        answer.raise_for_status()
        return answer.json()

    def contrail_faults(self, **knobs: Any) -> dict:
        """PUT /_emulator/faults on the Contrail emulator (error_rate, seed, outage_seconds)."""
        answer = httpx.put(f"{self.contrail_url}/_emulator/faults", json=knobs, timeout=10)
        answer.raise_for_status()
        return answer.json()

    @staticmethod
    def freeze(child: Child) -> None:
        os.killpg(child.proc.pid, signal.SIGSTOP)

    @staticmethod
    def thaw(child: Child) -> None:
        os.killpg(child.proc.pid, signal.SIGCONT)

    def leader(self) -> str | None:
        """Identity of the watcher that holds the Lease, as the watcher publishes it."""
        with contextlib.suppress(redis.RedisError):
            value = self.context.redis.get("ckm:leader")
            return value.decode() if isinstance(value, bytes) else value
        return None

    def lease_holder(self) -> str | None:
        """Holder of the Lease in Kubernetes (the source of truth for the election)."""
        with contextlib.suppress(Exception):
            lease = kubernetes.client.CoordinationV1Api(self.api()).read_namespaced_lease(
                "ckm-watcher", "kube-system")
            return lease.spec.holder_identity
        return None

    # --- clients -----------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return Settings(broker_url=self.redis.url, contrail_urls=[self.contrail_url],
                        kube_url=self.kube_url, contrail_retry_seconds=2,
                        contrail_timeout=5)

    @property
    def context(self) -> Context:
        if self._context is None:
            self._context = Context(self.settings)
        return self._context

    def contrail(self) -> ContrailClient:
        """A fresh client (one per thread that reads Contrail)."""
        return ContrailClient.from_settings(self.settings)

    def api(self) -> kubernetes.client.ApiClient:
        config = kubernetes.client.Configuration()
        config.host = self.kube_url
        return kubernetes.client.ApiClient(config)

    def pending(self) -> int | None:
        try:
            return pending(self.context)
        except redis.RedisError:
            return None

    def failed(self) -> dict[str, dict]:
        return {f.key: f.__dict__ for f in self.context.failures.all()}

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for path in [*sorted(self.logs.glob("*.log")), self.redis.log]:
            out.append(f"===== {path.name} (last {lines} lines) =====\n{tail(path, lines)}")
        return "\n".join(out)


# --- Kubernetes view ---------------------------------------------------------------------------
@dataclass
class KubeView:
    """What Kubernetes says right now, as plain dicts."""

    pods: dict[tuple[str, str], dict]
    uids: dict[str, str]  # Kubernetes uid -> "<Kind ns/name>"
    pod_ips: dict[str, str]  # podIP -> "ns/name"
    service_ips: dict[str, str]  # clusterIP -> "ns/name"
    slices: dict[tuple[str, str], set[str]]  # (ns, service) -> addresses of pod endpoints
    objects: dict[tuple[str, str, str], str]  # (Kind, ns, name) -> uid
    # (Kind, ns, name) -> what the watcher's projection must show once it has caught up
    signatures: dict[tuple[str, str, str], tuple] = field(default_factory=dict)

    @classmethod
    def read(cls, api: kubernetes.client.ApiClient) -> KubeView:
        def items(path: str) -> list[dict]:
            data = api.call_api(path, "GET", response_type="object", _return_http_data_only=True,
                                _preload_content=True)
            return data.get("items") or []

        uids, objects, signatures = {}, {}, {}
        pods, pod_ips, service_ips = {}, {}, {}
        for kind, path in (("Namespace", "/api/v1/namespaces"), ("Pod", "/api/v1/pods"),
                           ("Service", "/api/v1/services"),
                           ("NetworkPolicy", "/apis/networking.k8s.io/v1/networkpolicies"),
                           ("Ingress", "/apis/networking.k8s.io/v1/ingresses")):
            for obj in items(path):
                meta = obj["metadata"]
                ns = meta.get("namespace", "")
                uids[meta["uid"]] = f"<{kind} {ns}/{meta['name']}>" if ns else \
                    f"<{kind} {meta['name']}>"
                objects[(kind, ns, meta["name"])] = meta["uid"]
                signatures[(kind, ns, meta["name"])] = _signature(kind, obj)
                if kind == "Pod":
                    pods[(ns, meta["name"])] = obj
                    ip = (obj.get("status") or {}).get("podIP")
                    if ip:
                        pod_ips[ip] = f"{ns}/{meta['name']}"
                elif kind == "Service":
                    ip = (obj.get("spec") or {}).get("clusterIP")
                    if ip and ip != "None":
                        service_ips[ip] = f"{ns}/{meta['name']}"
        slices: dict[tuple[str, str], set[str]] = defaultdict(set)
        for piece in items("/apis/discovery.k8s.io/v1/endpointslices"):
            meta = piece["metadata"]
            signatures[("EndpointSlice", meta["namespace"], meta["name"])] = _signature(
                "EndpointSlice", piece)
            service = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            for endpoint in piece.get("endpoints") or []:
                ref = endpoint.get("targetRef") or {}
                if ref.get("kind") == "Pod":
                    slices[(meta["namespace"], service)].update(endpoint.get("addresses") or [])
        return cls(pods, uids, pod_ips, service_ips, dict(slices), objects, signatures)


def _signature(kind: str, obj: dict) -> tuple:
    """The parts of an object the watcher's projection of it must agree on."""
    meta = obj.get("metadata") or {}
    labels = tuple(sorted((meta.get("labels") or {}).items()))
    if kind == "Pod":
        return meta.get("uid"), labels, (obj.get("spec") or {}).get("nodeName") or ""
    if kind == "EndpointSlice":
        return meta.get("uid"), tuple(sorted(a for e in obj.get("endpoints") or []
                                             for a in e.get("addresses") or []))
    return meta.get("uid"), labels


def _projection_signature(kind: str, projection: dict) -> tuple:
    labels = tuple(sorted((projection.get("labels") or {}).items()))
    if kind == "Pod":
        return projection.get("uid"), labels, projection.get("node") or ""
    if kind == "EndpointSlice":
        return projection.get("uid"), tuple(sorted(a for e in projection.get("endpoints") or []
                                                   for a in e.get("addresses") or []))
    return projection.get("uid"), labels


STORE_KINDS = ("Namespace", "Pod", "Service", "EndpointSlice", "NetworkPolicy", "Ingress")


def store_lag(stack: FaultStack, kube: KubeView) -> list[str]:
    """How the watcher's desired-state store differs from Kubernetes now ([] once it has
    seen every change): missing, deleted-but-kept, or stale objects."""
    problems = []
    store = stack.context.store
    for kind in STORE_KINDS:
        have = {(ns, name): _projection_signature(kind, p) for ns, name, p in store.items(kind)}
        want = {(ns, name): sig for (k, ns, name), sig in kube.signatures.items() if k == kind}
        for ns, name in sorted(set(want) - set(have)):
            problems.append(f"store lacks {kind} {ns}/{name}")
        for ns, name in sorted(set(have) - set(want)):
            problems.append(f"store keeps deleted {kind} {ns}/{name}")
        for ns, name in sorted(set(want) & set(have)):
            if want[(ns, name)] != have[(ns, name)]:
                problems.append(f"store has a stale {kind} {ns}/{name}")
    return problems


def running(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP"))


# --- the Contrail state, made comparable ---------------------------------------------------------
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", re.I)
ADDRESS_FIELDS = {"instance_ip_address", "floating_ip_address", "address", "vip_address"}
# Fields Contrail fills in per run: identities, timestamps, MACs, allocated numeric ids.
DROPPED = {"uuid", "href", "parent_uuid", "parent_href", "id_perms", "perms2",
           "virtual_machine_interface_mac_addresses", "name", "virtual_network_network_id",
           "security_group_id"}


def read_contrail(client: ContrailClient, types=TYPES) -> dict[str, list[dict]]:
    return {type_: client.list(type_, detail=True) for type_ in types}


def annotations(obj: dict) -> dict[str, str]:
    pairs = ((obj.get("annotations") or {}).get("key_value_pair")) or []
    return {p["key"]: p["value"] for p in pairs}


class Canon:
    """Replaces run-specific identities (uids, uuids, addresses) by stable names."""

    def __init__(self, kube: KubeView, state: dict[str, list[dict]]):
        self.kube = kube
        self.names = {o["uuid"]: f"{t}:{':'.join(o['fq_name'])}"
                      for t, objs in state.items() for o in objs}

    def text(self, value: str) -> str:
        def swap(match: re.Match) -> str:
            found = match.group(0)
            return self.kube.uids.get(found) or "<uuid>"

        return UUID.sub(swap, value)

    def address(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return value
        if value in self.kube.pod_ips:
            return f"<ip of pod {self.kube.pod_ips[value]}>"
        if value in self.kube.service_ips:
            return f"<ip of service {self.kube.service_ips[value]}>"
        return "<ip>"

    def value(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in sorted(value.items()) if k not in DROPPED
                    and not k.endswith("uuid")}
        if isinstance(value, list):  # order kept: fq_names, rules and pairs are ordered
            return [self.value(v, key) for v in value]
        if key in ADDRESS_FIELDS:
            return self.address(value)
        if isinstance(value, str):
            if MAC.match(value):
                return "<mac>"
            return self.text(value)
        return value

    def ref(self, ref: dict) -> dict:
        out = {"to": [self.text(p) for p in ref.get("to") or []]}
        if ref.get("attr") is not None:
            out["attr"] = self.value(ref["attr"])
        return out

    def obj(self, obj: dict) -> dict:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in DROPPED or key.endswith(("_back_refs", "uuid")):
                continue
            if key == "annotations":
                out[key] = {k: self.text(v) for k, v in sorted(annotations(obj).items())}
            elif key.endswith("_refs"):
                out[key] = sorted((self.ref(r) for r in value or []),
                                  key=lambda r: json.dumps(r, sort_keys=True))
            elif isinstance(value, list) and value and all(
                    isinstance(v, dict) and "to" in v and "href" in v for v in value):
                continue  # children: each child is an object of its own
            else:
                out[key] = self.value(value, key)
        return out


def snapshot(stack: FaultStack, client: ContrailClient | None = None,
             api: kubernetes.client.ApiClient | None = None,
             kube: KubeView | None = None) -> dict[str, dict]:
    """The canonical Contrail state: "type fq_name" -> canonical object."""
    own_client = client is None
    client = client or stack.contrail()
    api = api or stack.api()
    try:
        kube = kube or KubeView.read(api)
        state = read_contrail(client)
        vrouters = client.list("virtual-router", detail=True)
    finally:
        if own_client:
            client.close()
    return canonical(kube, state, vrouters)


def canonical(kube: KubeView, state: dict[str, list[dict]], vrouters: list[dict]
              ) -> dict[str, dict]:
    canon = Canon(kube, state)
    out: dict[str, dict] = {}
    for type_, objs in state.items():
        for obj in objs:
            name = f"{type_} " + ":".join(canon.text(p) for p in obj["fq_name"])
            body = canon.obj(obj)
            if name in out:  # two objects under one canonical name: keep both visible
                name += f" #{sum(1 for k in out if k.startswith(name))}"
            out[name] = body
    # vrouter -> VM links: a VM must hang off the vrouter of its pod's node (the nodes the
    # scheduler picks differ between runs, so only "its own node" is comparable)
    node_of = {f"k8s__{ns}__{name}": (pod.get("spec") or {}).get("nodeName")
               for (ns, name), pod in kube.pods.items()}
    for vrouter in vrouters:
        node = vrouter["fq_name"][-1]
        for ref in vrouter.get("virtual_machine_refs") or []:
            vm = ":".join(ref["to"])
            where = "its pod's node" if node_of.get(vm) == node else f"vrouter {node}"
            key = f"vrouter-link {canon.text(vm)}"
            out[key + (" (again)" if key in out else "")] = {"on": where}
    return out


def diff(expected: dict[str, dict], actual: dict[str, dict], limit: int = 12) -> str:
    """A readable difference of two snapshots ('' when equal)."""
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    lines = []
    for label, keys in (("missing", missing), ("extra", extra)):
        if keys:
            lines.append(f"{len(keys)} {label}: " + "; ".join(keys[:limit]))
    for key in changed[:limit]:
        want, got = expected[key], actual[key]
        fields = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
        lines.append(f"changed {key}: " + "; ".join(
            f"{f}: want {json.dumps(want.get(f))[:300]} got {json.dumps(got.get(f))[:300]}"
            for f in fields))
    if len(changed) > limit:
        lines.append(f"... and {len(changed) - limit} more changed")
    return "\n".join(lines)


def without(snap: dict[str, dict], owners: set[tuple[str, str, str]]) -> dict[str, dict]:
    """The snapshot minus the objects these Kubernetes objects (kind, ns, name) own."""
    return {k: v for k, v in snap.items() if (
        (v.get("annotations") or {}).get("kind"), (v.get("annotations") or {}).get("namespace"),
        (v.get("annotations") or {}).get("name")) not in owners}


# --- structural checks -------------------------------------------------------------------------
def duplicates(kube: KubeView, state: dict[str, list[dict]]) -> list[str]:
    """Two VMs / VMIs for one pod, two instance-ips for one VMI."""
    problems = []
    per_pod: dict[str, Counter] = defaultdict(Counter)
    for type_ in ("virtual-machine", "virtual-machine-interface"):
        for obj in state[type_]:
            notes = annotations(obj)
            if notes.get("kind") == "Pod":
                per_pod[f"{notes.get('namespace')}/{notes.get('name')}"][type_] += 1
    for pod, counts in sorted(per_pod.items()):
        for type_, n in counts.items():
            if n > 1:
                problems.append(f"pod {pod} has {n} {type_}s")
    per_vmi: Counter = Counter()
    for iip in state["instance-ip"]:
        for ref in iip.get("virtual_machine_interface_refs") or []:
            per_vmi[":".join(ref["to"])] += 1
    problems += [f"VMI {vmi} has {n} instance-ips" for vmi, n in sorted(per_vmi.items()) if n > 1]
    per_address: dict[str, list[str]] = defaultdict(list)
    for iip in state["instance-ip"]:
        if iip.get("instance_ip_address"):
            per_address[iip["instance_ip_address"]].append(":".join(iip["fq_name"]))
    problems += [f"address {a} held by {len(n)} instance-ips: {n}"
                 for a, n in sorted(per_address.items()) if len(n) > 1]
    return problems


def leaks(kube: KubeView, state: dict[str, list[dict]], cluster: str = "k8s") -> list[str]:
    """Objects ckm owns whose Kubernetes owner is gone (or is a newer object of that name)."""
    problems = []
    apps = {(ns, (pod["metadata"].get("labels") or {}).get("opencontrail.org/name"))
            for (ns, _), pod in kube.pods.items()}
    for type_, objs in state.items():
        for obj in objs:
            notes = annotations(obj)
            if notes.get("owner") != "k8s" or notes.get("cluster") != cluster:
                continue
            kind, ns, name = notes.get("kind"), notes.get("namespace", ""), notes.get("name")
            where = f"{type_} {':'.join(obj['fq_name'])} (owner {kind} {ns}/{name})"
            if kind in ("Pod", "Service", "Ingress", "NetworkPolicy"):
                uid = kube.objects.get((kind, ns, name))
                if uid is None:
                    problems.append(f"{where}: the owner is gone")
                elif notes.get("k8s_uid") and notes["k8s_uid"] != uid:
                    problems.append(f"{where}: owned by an older incarnation")
            elif kind == "Namespace" and ("Namespace", "", name) not in kube.objects:
                problems.append(f"{where}: the namespace is gone")
            elif kind == "App" and (ns, name) not in apps:
                problems.append(f"{where}: no pod carries the app label any more")
    return problems


# --- convergence ---------------------------------------------------------------------------------
@dataclass
class Converged:
    at: float  # monotonic time the state last changed (or the engine last became idle)
    snapshot: dict[str, dict]

    def seconds_after(self, moment: float) -> float:
        return max(0.0, self.at - moment)


def converge(stack: FaultStack, *, timeout: float = 60.0, stable: float = 2.0,
             period: float = 0.4) -> Converged:
    """Wait until the watcher has caught up (its store agrees with Kubernetes), nothing is
    pending (as `ckm wait --idle`), and the Contrail state has not changed for `stable`
    seconds (longer than the retry backoff cap, so a retrying key would show)."""
    client, api = stack.contrail(), stack.api()
    deadline = time.monotonic() + timeout
    last: dict | None = None
    changed_at = idle_since = time.monotonic()
    busy_reason = "not sampled"
    try:
        while True:
            now = time.monotonic()
            left = stack.pending()
            try:
                kube = KubeView.read(api)
                lag = store_lag(stack, kube)
                snap = snapshot(stack, client, api, kube)
            except Exception as exc:  # an API mid-restart: not converged
                lag, snap, busy_reason = ["unreadable"], None, f"snapshot failed: {exc}"
            if snap is None or snap != last:
                last, changed_at = snap, now
            if left != 0:
                idle_since = now
                busy_reason = f"pending={left} {_depths(stack)}"
            elif lag:
                idle_since = now
                busy_reason = f"the watcher has not caught up: {lag[:6]} ({len(lag)} in all)"
            if last is not None and left == 0 and now - max(changed_at, idle_since) >= stable:
                return Converged(max(changed_at, idle_since), last)
            if now > deadline:
                raise AssertionError(
                    f"no convergence in {timeout:.0f}s: {busy_reason}; state changed "
                    f"{now - changed_at:.1f}s ago; failed syncs: {list(stack.failed())}")
            time.sleep(period)
    finally:
        client.close()
        api.close()


def _depths(stack: FaultStack) -> str:
    from workers.queue import PROCESSING, QUEUED

    with contextlib.suppress(Exception):
        r = stack.context.redis
        names = [k.decode() if isinstance(k, bytes) else k for k in r.zrange(QUEUED, 0, 7)]
        running = [k.decode() if isinstance(k, bytes) else k for k in r.hkeys(PROCESSING)][:8]
        return (f"{stack.context.queue.depths()} queued={names} processing={running} "
                f"delayed={sorted(stack.context.queue.delayed())[:8]}")
    return ""


# --- invariants sampled during a scenario -----------------------------------------------------
@dataclass
class Violation:
    invariant: str
    subject: str
    detail: str
    first_seen: float
    confirmed: float


class InvariantChecker(threading.Thread):
    """Samples the live invariants every `period` seconds until stopped.

    1. every Running pod's status.podIP is held by that pod's own instance-ip (instance-ip ->
       VMI -> VM whose uuid is the pod uid);
    2. every loadbalancer member of a Service has an address that the service's
       EndpointSlices name (a pod endpoint).
    A violation counts once it has lasted `grace` seconds (a pod that was just created or
    deleted, a sample that straddles a change). Invariant 2 trails the EndpointSlices by
    design, so while a declared fault window is open (`fault()`), its violations do not
    age: they must be gone `grace` seconds after the fault ends. Invariant 1 never pauses:
    a live pod's address must never go away.
    """

    def __init__(self, stack: FaultStack, *, period: float = 0.5, grace: float = 3.0,
                 extra: Callable[[KubeView, dict], list[tuple[str, str, str]]] | None = None):
        super().__init__(daemon=True, name="invariant-checker")
        self.stack, self.period, self.grace, self.extra = stack, period, grace, extra
        self.stopped = threading.Event()
        self.open: dict[tuple[str, str], float] = {}
        self.violations: dict[tuple[str, str], Violation] = {}
        self.samples = 0
        self.errors: Counter = Counter()
        self._fault_open = False
        self._fault_ended = 0.0
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def fault(self) -> Iterator[None]:
        self._fault_open = True
        try:
            yield
        finally:
            self._fault_open = False
            self._fault_ended = time.monotonic()

    def run(self) -> None:
        client, api = self.stack.contrail(), self.stack.api()
        try:
            while not self.stopped.wait(self.period):
                try:
                    self.sample(client, api)
                except Exception as exc:  # an API or Redis mid-restart: try again
                    self.errors[type(exc).__name__] += 1
        finally:
            client.close()
            api.close()

    def stop(self) -> list[Violation]:
        self.stopped.set()
        self.join(15)
        return sorted(self.violations.values(), key=lambda v: v.first_seen)

    def sample(self, client: ContrailClient, api: kubernetes.client.ApiClient) -> None:
        kube = KubeView.read(api)
        state = {t: client.list(t, detail=True) for t in (
            "instance-ip", "virtual-machine-interface", "loadbalancer-member")}
        now = time.monotonic()
        found = [("1 pod IP held by its own instance-ip", *v) for v in pod_ip_problems(
            kube, state)]
        found += [("2 LB member is an endpoint", *v) for v in member_problems(kube, state)]
        if self.extra:
            found += self.extra(kube, state)
        self.samples += 1
        seen = set()
        with self.lock:
            for invariant, subject, detail in found:
                key = (invariant, subject)
                seen.add(key)
                start = self.open.setdefault(key, now)
                if invariant.startswith("2"):  # lag behind the slices: ages outside faults
                    if self._fault_open:
                        start = now
                    elif start < self._fault_ended:
                        start = self._fault_ended
                    self.open[key] = start
                if now - start >= self.grace and key not in self.violations:
                    self.violations[key] = Violation(invariant, subject, detail, start, now)
            for key in list(self.open):
                if key not in seen:
                    del self.open[key]


def pod_ip_problems(kube: KubeView, state: dict[str, list[dict]]) -> list[tuple[str, str]]:
    vm_of_vmi = {}
    for vmi in state["virtual-machine-interface"]:
        refs = vmi.get("virtual_machine_refs") or []
        vm_of_vmi[vmi["uuid"]] = {r.get("uuid") for r in refs}
    holders: dict[str, list[set]] = defaultdict(list)  # address -> VM uuids behind each iip
    for iip in state["instance-ip"]:
        vms = set()
        for ref in iip.get("virtual_machine_interface_refs") or []:
            vms |= vm_of_vmi.get(ref.get("uuid"), set())
        holders[iip.get("instance_ip_address")].append(vms)
    problems = []
    for (ns, name), pod in kube.pods.items():
        if not running(pod):
            continue
        ip, uid = pod["status"]["podIP"], pod["metadata"]["uid"]
        if not any(uid in vms for vms in holders.get(ip, [])):
            who = holders.get(ip)
            problems.append((f"pod {ns}/{name}", f"podIP {ip} (uid {uid}): " + (
                "no instance-ip holds it" if not who else f"held for VMs {who}")))
    return problems


def member_problems(kube: KubeView, state: dict[str, list[dict]]) -> list[tuple[str, str]]:
    problems = []
    for member in state["loadbalancer-member"]:
        notes = annotations(member)
        if notes.get("kind") != "Service":
            continue
        service = (notes.get("namespace"), notes.get("name"))
        address = (member.get("loadbalancer_member_properties") or {}).get("address")
        if address not in kube.slices.get(service, set()):
            endpoints = sorted(kube.slices.get(service, []))
            problems.append((f"member {':'.join(member['fq_name'][-2:])}",
                             f"address {address} of service {'/'.join(service)} is not an "
                             f"endpoint of its EndpointSlices ({endpoints})"))
    return problems
