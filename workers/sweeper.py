"""The sweeper: moves due retries back onto the queue and rescues keys of dead workers.

Every worker process starts one; a short Redis lock lets only one of them sweep at a time, so
adding workers adds no load. A key whose lease expired (its worker died mid-task) counts as a
failed attempt, so a key that kills every worker that touches it becomes a failed sync instead
of looping for ever.
"""

from __future__ import annotations

import logging
import threading
import uuid

from workers import metrics
from workers.backoff import delay
from workers.context import Context
from workers.engine import Send

log = logging.getLogger("ckm.sweeper")
LOCK = "ckm:sweeper"
# A message can sit in a long queue legitimately; only resend keys queued for longer than this.
RESEND_AFTER = 1800.0


class Sweeper(threading.Thread):
    def __init__(self, context: Context, send: Send, *, period: float = 0.05):
        super().__init__(daemon=True, name="ckm-sweeper")
        self.context, self.send, self.period = context, send, period
        self.token = uuid.uuid4().hex
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            try:
                if self._leader():
                    self.sweep()
            except Exception:  # keep sweeping through Redis hiccups
                log.exception("sweep failed")

    def _leader(self) -> bool:
        r = self.context.redis
        if r.set(LOCK, self.token, nx=True, px=2000):
            return True
        if r.get(LOCK) == self.token:
            r.pexpire(LOCK, 2000)
            return True
        return False

    def sweep(self) -> None:
        queue, failures, settings = (self.context.queue, self.context.failures,
                                     self.context.settings)
        send, expired = queue.due()
        for key in expired:
            attempts = failures.attempt(key)
            log.warning("key %s: its worker died mid-run (attempt %d)", key, attempts)
            if attempts >= settings.max_attempts:
                failures.record(key, error="worker lost while running this key",
                                traceback="", attempts=attempts, permanent=True)
            else:
                queue.schedule(key, delay(attempts, base=settings.backoff_base,
                                          cap=settings.backoff_cap))
        if send:
            self.send(send)
        stale = queue.stale_queued(RESEND_AFTER)
        if stale:
            self.send(stale)
        depths = queue.depths()
        for state in ("queued", "processing", "delayed"):
            metrics.QUEUE_DEPTH.labels(state).set(getattr(depths, state))
        metrics.FAILED_SYNCS.set(failures.count())
