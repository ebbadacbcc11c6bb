"""A whole ckm system on one machine: what `ckm up` runs and `ckm demo` uses.

Each part is a child process on loopback, and each may be replaced by a real one: Redis
(`--broker`), Kubernetes (`--kubeconfig`), Contrail (`--contrail-url`). The running stack is
described in `<state dir>/stack.json`, which other `ckm` commands read when no URLs are
configured.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from ckm.processes import Processes, free_port, require_free, wait_until

STACK_FILE = "stack.json"


@dataclass
class StackInfo:
    kube_url: str
    contrail_url: str
    broker_url: str
    kubeconfig: str
    flower_url: str | None = None
    flower_auth_file: str | None = None  # user:password for Flower's pages and API
    metrics_urls: dict[str, str] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)

    def env(self) -> dict[str, str]:
        """The settings every ckm process of this stack runs with."""
        out = {"CKM_BROKER_URL": self.broker_url, "CKM_CONTRAIL_URLS": self.contrail_url,
               "CKM_KUBECONFIG": self.kubeconfig}
        if self.kube_url:
            out["CKM_KUBE_URL"] = self.kube_url
        return out

    def save(self, state_dir: Path) -> Path:
        path = state_dir / STACK_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        return path


def running_stack(state_dir: Path) -> StackInfo | None:
    """The stack described in the state dir, if its owner process is still alive."""
    path = state_dir / STACK_FILE
    if not path.is_file():
        return None
    info = StackInfo(**json.loads(path.read_text()))
    try:
        os.kill(info.pid, 0)
    except OSError:
        return None
    return info


def flower_auth(state_dir: Path) -> Path:
    """Flower's `ckm:<random>` credentials, made once per state dir and readable only by
    their owner. Flower's REST API (how to retry a sync without a shell) needs them. Written
    whole under a temporary name, so a crash never leaves an empty file (Flower without auth)."""
    path = state_dir / "flower-auth"
    user, _, password = (path.read_text().strip() if path.is_file() else "").partition(":")
    if not (user and password):
        tmp = state_dir / f".flower-auth.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"ckm:{secrets.token_urlsafe(18)}")
        os.replace(tmp, path)
    return path


@dataclass
class StackOptions:
    workers: int = 2
    kube_port: int = 0
    contrail_port: int = 0
    flower_port: int | None = 0  # None: no Flower
    broker: str | None = None
    kubeconfig: str | None = None  # a real cluster instead of the emulator
    contrail_url: str | None = None  # a real Contrail instead of the emulator
    nodes: int = 2
    beat: bool = True
    keep_cluster: bool = False  # the emulated cluster survives a restart (`ckm up`)
    log_level: str = "WARNING"
    contrail_latency_ms: float = 0.0  # the Contrail emulator's added latency per call
    contrail_max_concurrency: int = 0  # the Contrail emulator answers 503 beyond it (0: no cap)
    worker_threads: int | None = None  # threads per worker process (None: the setting)


def start(procs: Processes, options: StackOptions,
          report: Callable[[str, str, float], None] = lambda *_: None) -> StackInfo:
    """Start every part, wait until each answers, and return where they are.

    `report(part, where, seconds)` is called as each part becomes ready. A port given
    explicitly that something else holds fails at once (StartError), before anything starts.
    """
    for port, what, flag in ((options.kube_port, "the Kubernetes emulator", "--kube-port"),
                             (options.contrail_port, "the Contrail emulator", "--contrail-port"),
                             (options.flower_port, "Flower", "--flower-port")):
        if port:
            require_free(port, what, flag)
    state = procs.state_dir
    clock = time.monotonic()

    def ready(part: str, where: str) -> None:
        nonlocal clock
        report(part, where, time.monotonic() - clock)
        clock = time.monotonic()

    broker = options.broker or procs.redis()
    ready("redis", broker)
    contrail = options.contrail_url or procs.contrail(
        options.contrail_port, "--state", str(state / "contrail.db"),
        *(["--latency-ms", str(options.contrail_latency_ms)] if options.contrail_latency_ms
          else []),
        *(["--max-concurrency", str(options.contrail_max_concurrency)]
          if options.contrail_max_concurrency else []))
    ready("contrail", contrail)
    if options.kubeconfig:
        kube_url, kubeconfig = "", options.kubeconfig
    else:
        kubeconfig = str(state / "kubeconfig")
        kube_url = procs.kube(options.kube_port or free_port(), Path(kubeconfig),
                              "--contrail-url", contrail, "--nodes", str(options.nodes),
                              *(["--state", str(state / "kube.json")] if options.keep_cluster
                                else []))
    ready("kubernetes", kube_url or kubeconfig)
    info = StackInfo(kube_url, contrail, broker, kubeconfig)
    env = {**info.env(), "CKM_LOG_LEVEL": options.log_level, "CKM_STATE_DIR": str(state)}
    if options.worker_threads:
        env["CKM_WORKER_CONCURRENCY"] = str(options.worker_threads)
    watcher_port = free_port()
    started = {"watcher": procs.ckm("watcher", "watcher", "--metrics-port", str(watcher_port),
                                    env=env)}
    info.metrics_urls["watcher"] = f"http://127.0.0.1:{watcher_port}/metrics"
    for i in range(options.workers):
        port = free_port()
        started[f"worker-{i}"] = procs.ckm(f"worker-{i}", "worker", "--name", f"worker{i}@%h",
                                           env={**env, "CKM_METRICS_PORT": str(port)})
        info.metrics_urls[f"worker-{i}"] = f"http://127.0.0.1:{port}/metrics"
    if options.beat:
        started["beat"] = procs.ckm("beat", "beat", env=env)
    if options.flower_port is not None:
        port = options.flower_port or free_port()
        auth = flower_auth(state)
        started["flower"] = procs.ckm("flower", "flower", "--port", str(port),
                                      env={**env, "CKM_FLOWER_BASIC_AUTH":
                                           auth.read_text().strip()})
        info.flower_url, info.flower_auth_file = f"http://127.0.0.1:{port}", str(auth)
    watcher = started["watcher"]
    wait_until(lambda: httpx.get(info.metrics_urls["watcher"].replace(
        "/metrics", "/readyz")).status_code == 200, "watcher", watcher, timeout=60,
        log=procs.log_of(watcher))
    ready("watcher", "leading, every watch synced")
    for name, url in info.metrics_urls.items():
        wait_until(lambda u=url: httpx.get(u).status_code == 200, name, started[name],
                   timeout=60, log=procs.log_of(started[name]))
        if name != "watcher":
            ready(name, url.removesuffix("/metrics"))
    if options.beat:
        if started["beat"].poll() is not None:
            wait_until(lambda: False, "beat", started["beat"], log=procs.log_of(started["beat"]))
        ready("beat", "running")
    if info.flower_url:
        wait_until(lambda: httpx.get(info.flower_url + "/healthcheck").status_code in (
            200, 401), "flower", started["flower"], timeout=60,
            log=procs.log_of(started["flower"]))
        ready("flower", info.flower_url)
    info.save(state)
    return info
