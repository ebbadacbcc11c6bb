"""Start and stop the processes of a local ckm system (benchmarks, `ckm up`, the demo).

Each part is a child process on loopback: a private redis-server, the emulators, workers,
the watcher. `Processes` remembers them, restarts one that dies (`supervise`, with backoff),
and stops them all, children first, on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

RESTART_FIRST, RESTART_CAP = 1.0, 30.0  # seconds before restarting a dead child, doubling
STABLE_AFTER = 60.0  # a child up this long before it died starts its backoff afresh


class StartError(RuntimeError):
    """A part of the stack could not start; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_free(port: int, what: str, flag: str) -> None:
    """Fail at once when something already listens on the port: a readiness check would
    otherwise reach that other server and report us up."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StartError(
                f"port {port} for {what} is already in use on 127.0.0.1 ({exc.strerror}): "
                f"stop what listens there, or pass {flag} 0 to pick a free port") from None


def _where(log: Path | None) -> str:
    return f" (log: {log}){_tail(log)}" if log else ""


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n    {line}" for line in text)


def wait_until(ready: Callable[[], bool], what: str, proc: subprocess.Popen | None = None,
               timeout: float = 30.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise StartError(f"{what} exited with code {proc.returncode}{_where(log)}")
        with contextlib.suppress(Exception):
            if ready():
                return
        if time.monotonic() > deadline:
            raise StartError(f"{what} did not become ready in {timeout:.0f}s{_where(log)}")
        time.sleep(0.05)


@dataclass
class Child:
    """One child process and how to start it again."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    deaths: int = 0  # in a row, each without STABLE_AFTER seconds up before it
    restart_at: float | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None


def _terminate(*_) -> None:
    raise SystemExit(143)


class Processes:
    """Child processes started for one run; `close()` (or the context manager) stops them."""

    def __init__(self, state_dir: Path, *, env: dict[str, str] | None = None):
        self.state_dir = state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.children: list[Child] = []

    def __enter__(self) -> Processes:
        # SIGTERM must unwind through __exit__ too, or the children outlive us.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminate)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def spawn(self, name: str, args: list[str], *, env: dict[str, str] | None = None
              ) -> subprocess.Popen:
        env = {**self.env, **(env or {})}
        log = self.state_dir / f"{name}.log"
        child = Child(name, args, env, log, self._popen(args, env, log))
        self.children.append(child)
        return child.proc

    @staticmethod
    def _popen(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with log.open("ab") as out:
            return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def log_of(self, proc: subprocess.Popen) -> Path | None:
        return next((c.log for c in self.children if c.proc is proc), None)

    def supervise(self, report: Callable[[str], None]) -> None:
        """One pass over the children: note each that died, restart it when its backoff is
        over (1 s, doubling to 30 s; afresh after a minute up)."""
        now = time.monotonic()
        for child in self.children:
            if child.alive():
                continue
            if child.restart_at is None:
                up = now - child.started
                child.deaths = 1 if up >= STABLE_AFTER else child.deaths + 1
                delay = min(RESTART_FIRST * 2 ** (child.deaths - 1), RESTART_CAP)
                child.restart_at = now + delay
                report(f"{child.name} exited with code {child.proc.returncode} after {up:.0f}s "
                       f"up; restarting it in {delay:.0f}s (log: {child.log})")
            elif now >= child.restart_at:
                child.proc = self._popen(child.args, child.env, child.log)
                child.started, child.restart_at = now, None
                report(f"{child.name} restarted (pid {child.proc.pid})")

    def ckm(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return self.spawn(name, [sys.executable, "-m", "ckm", *args], env=env)

    def redis(self, port: int = 0) -> str:
        """A private redis-server on loopback; returns its URL (database 0)."""
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not on PATH: install it or pass --broker URL")
        port = port or free_port()
        proc = self.spawn("redis", [binary, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no",
                                    "--dir", str(self.state_dir)])
        url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: redis.Redis.from_url(url).ping(), "redis-server", proc,
                   log=self.log_of(proc))
        return url

    def contrail(self, port: int = 0, *extra: str) -> str:
        port = port or free_port()
        proc = self.ckm("contrail-emulator", "emulate", "contrail", "--port", str(port), *extra)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/").status_code == 200, "contrail emulator", proc,
                   log=self.log_of(proc))
        return url

    def kube(self, port: int, kubeconfig: Path, *extra: str) -> str:
        proc = self.ckm("kube-emulator", "emulate", "kube", "--port", str(port),
                        "--kubeconfig", str(kubeconfig), *extra)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/version").status_code == 200, "kube emulator",
                   proc, log=self.log_of(proc))
        return url

    def close(self) -> None:
        for child in reversed(self.children):
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        for proc in [c.proc for c in reversed(self.children)]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.children.clear()
