"""Is this worker still consuming? A liveness signal from the consumer itself.

Celery workers have known failure modes where the process lives, its HTTP endpoints answer,
and yet it takes no more messages (after a Redis reset, for instance). Every message this
process takes (`task_prerun`, duplicates included) is a heartbeat. Every few seconds a
thread judges: the worker is stuck when it has had free threads and work was waiting in its
queues, yet it took nothing for `stuck_after` seconds. The verdict feeds the worker's
`/healthz` (the liveness probe), a metric, and a Redis hash `ckm status` reads.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from celery import signals

from workers import metrics
from workers.context import Context
from workers.syncs import queues

log = logging.getLogger("ckm.liveness")
WORKERS = "ckm:workers"  # worker name -> its last verdict (json), for `ckm status`


class ConsumerWatch(threading.Thread):
    def __init__(self, context: Context, name: str, *, concurrency: int,
                 period: float = 5.0, stuck_after: float = 60.0):
        super().__init__(daemon=True, name="consumer-watch")
        self.context, self.worker, self.concurrency = context, name, concurrency
        self.period, self.stuck_after = period, stuck_after
        self.last_taken = time.monotonic()
        self.running = 0
        self.consuming = True
        self._lock = threading.Lock()
        metrics.CONSUMING.set(1)  # until judged otherwise
        signals.task_prerun.connect(self._taken, weak=False)
        signals.task_postrun.connect(self._done, weak=False)

    def _taken(self, **_) -> None:
        with self._lock:
            self.last_taken = time.monotonic()
            self.running += 1

    def _done(self, **_) -> None:
        with self._lock:
            self.running = max(0, self.running - 1)

    def healthy(self) -> bool:
        return self.consuming

    def run(self) -> None:
        while True:  # judged at once, so `ckm status` and ckm_workers_up see a new worker
            try:
                self.judge()
            except Exception as exc:  # Redis down: no verdict this round
                log.info("consumer check skipped: %s", exc)
            time.sleep(self.period)

    def judge(self) -> bool:
        waiting = sum(self.context.redis.llen(q) for q in queues())
        with self._lock:
            idle_for = time.monotonic() - self.last_taken
            free = self.running < self.concurrency
        self.consuming = not (waiting and free and idle_for > self.stuck_after)
        if not self.consuming:
            log.error("worker %s took no message for %.0fs with %d waiting and free threads",
                      self.worker, idle_for, waiting)
        metrics.CONSUMING.set(1 if self.consuming else 0)
        self.context.redis.hset(WORKERS, self.worker, json.dumps({
            "consuming": self.consuming, "idle_seconds": round(idle_for, 1),
            "running": self.running, "at": time.time()}))
        return self.consuming


def workers_seen(context: Context, *, fresh: float = 30.0) -> dict[str, dict]:
    """Worker name -> its last verdict, for workers heard from in the last `fresh` seconds."""
    now = time.time()
    out = {}
    for name, raw in context.redis.hgetall(WORKERS).items():
        state = json.loads(raw)
        if now - state["at"] < fresh:
            out[name] = state
    return out
