"""Latency from a Kubernetes change to the run that made Contrail current, for benchmarks.

Each worker run records its key, outcome and wall-clock start and end (workers.engine's
LAST_RUN). `KeyTimer.track(key, since)` waits for the key's first run that *started* after
`since` and ended `done`: that run read the change and wrote Contrail before it ended. One
thread polls every tracked key in one pipelined round trip.
"""

from __future__ import annotations

import json
import statistics
import threading
import time


class KeyTimer(threading.Thread):
    def __init__(self, redis_client, *, poll: float = 0.02, timeout: float = 600):
        super().__init__(daemon=True, name="key-timer")
        self.redis, self.poll, self.timeout = redis_client, poll, timeout
        self.latencies: list[float] = []
        self.lost = 0
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def track(self, key: str, since: float) -> None:
        with self._lock:
            self._pending[key] = since

    def outstanding(self) -> int:
        with self._lock:
            return len(self._pending)

    def run(self) -> None:
        from workers.engine import LAST_RUN

        while not self._halt.is_set():
            with self._lock:
                pending = list(self._pending.items())
            if pending:
                pipe = self.redis.pipeline(transaction=False)
                for key, _ in pending:
                    pipe.get(LAST_RUN + key)
                now = time.time()
                for (key, since), raw in zip(pending, pipe.execute(), strict=True):
                    run = json.loads(raw) if raw else None
                    if run and run["outcome"] == "done" and run["start"] >= since:
                        self._finish(key, run["end"] - since)
                    elif now - since > self.timeout:
                        self._finish(key, None)
            time.sleep(self.poll)

    def _finish(self, key: str, latency: float | None) -> None:
        with self._lock:
            self._pending.pop(key, None)
        if latency is None:
            self.lost += 1
        else:
            self.latencies.append(latency)

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.outstanding() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def summary(self) -> dict:
        got = sorted(self.latencies)
        out: dict = {"count": len(got), "lost": self.lost + self.outstanding()}
        if got:
            out.update(p50_ms=round(statistics.median(got) * 1000, 1),
                       p99_ms=round(percentile(got, 0.99) * 1000, 1),
                       max_ms=round(got[-1] * 1000, 1),
                       samples_ms=[round(x * 1000, 1) for x in got])
        return out


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))]
