"""An engine context on the test Redis and a fresh Contrail emulator."""

from __future__ import annotations

import pytest

from config.settings import Settings
from workers.context import Context


@pytest.fixture
def make_context(redis_client, redis_url):
    def make(contrail_url: str, **overrides) -> Context:
        settings = Settings(broker_url=redis_url, contrail_urls=[contrail_url],
                            contrail_retry_seconds=0.2, backoff_base=0.01, backoff_cap=0.05,
                            **overrides)
        return Context(settings)
    return make


@pytest.fixture
def context(make_context, contrail_url):
    return make_context(contrail_url)


@pytest.fixture
def celery_stack(make_context, contrail_emulator_factory, tmp_path):
    """Real `ckm worker` processes on the test Redis, against a Contrail emulator.

    Returns a small object: `.context` (this process's engine context), `.app` (the Celery
    app configured for the test Redis), `.contrail_url`, `.start_worker(**env)` -> Popen,
    `.enqueue(keys)` and `.wait_idle(timeout)`.
    """
    import os
    import signal
    import subprocess
    import sys
    import time

    from workers import context as contexts
    from workers.dispatch import enqueue
    from workers.status import pending

    class Stack:
        def __init__(self):
            self.contrail_url = contrail_emulator_factory()
            self.context = make_context(self.contrail_url)
            contexts.install(self.context)
            from workers.app import configure

            self.app = configure(self.context.settings)
            self.workers: list[subprocess.Popen] = []

        def start_worker(self, concurrency=4, **env) -> subprocess.Popen:
            s = self.context.settings
            environ = {**os.environ, "CKM_BROKER_URL": s.broker_url,
                       "CKM_CONTRAIL_URLS": self.contrail_url,
                       "CKM_CONTRAIL_RETRY_SECONDS": "0.2", "CKM_BACKOFF_BASE": "0.01",
                       "CKM_BACKOFF_CAP": "0.2", "CKM_LEASE_SECONDS": "2",
                       "CKM_LOG_LEVEL": "WARNING", **{k: str(v) for k, v in env.items()}}
            name = f"w{len(self.workers)}-{os.getpid()}@test"
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-m", "ckm", "worker", "--concurrency", str(concurrency),
                 "--name", name], env=environ, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            self.workers.append(proc)
            deadline = time.monotonic() + 30
            while not any(name in reply for reply in self.app.control.ping(timeout=0.3)):
                assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
                assert time.monotonic() < deadline, "worker did not come up"
            return proc

        def kill(self, proc):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        def enqueue(self, keys):
            return enqueue(self.app, self.context.queue, keys)

        def wait_idle(self, timeout=60.0):
            deadline = time.monotonic() + timeout
            while pending(self.context):
                assert time.monotonic() < deadline, f"not idle: {self.context.queue.depths()}"
                time.sleep(0.05)

        def close(self):
            for proc in self.workers:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in self.workers:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            contexts.install(None)

    stack = Stack()
    yield stack
    stack.close()
