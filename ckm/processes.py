"""Start and stop the processes of a local ckm system (benchmarks, `ckm up`, the demo).

Each part is a child process on loopback: a private redis-server, the emulators, workers,
the watcher. `Processes` remembers them and stops them all, children first, on exit.
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
from pathlib import Path

import httpx
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], bool], what: str, proc: subprocess.Popen | None = None,
               timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if ready():
                return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready in {timeout:.0f}s")
        time.sleep(0.05)


def _terminate(*_) -> None:
    raise SystemExit(143)


class Processes:
    """Child processes started for one run; `close()` (or the context manager) stops them."""

    def __init__(self, state_dir: Path, *, env: dict[str, str] | None = None):
        self.state_dir = state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.children: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self) -> Processes:
        # SIGTERM must unwind through __exit__ too, or the children outlive us.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminate)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def spawn(self, name: str, args: list[str], *, env: dict[str, str] | None = None
              ) -> subprocess.Popen:
        log = (self.state_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))
        return proc

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
        wait_until(lambda: redis.Redis.from_url(url).ping(), "redis-server", proc)
        return url

    def contrail(self, port: int = 0, *extra: str) -> str:
        port = port or free_port()
        proc = self.ckm("contrail-emulator", "emulate", "contrail", "--port", str(port), *extra)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/").status_code == 200, "contrail emulator", proc)
        return url

    def kube(self, port: int, kubeconfig: Path, *extra: str) -> str:
        proc = self.ckm("kube-emulator", "emulate", "kube", "--port", str(port),
                        "--kubeconfig", str(kubeconfig), *extra)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/version").status_code == 200, "kube emulator", proc)
        return url

    def close(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self.children):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.children.clear()
