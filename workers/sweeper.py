"""The sweeper: moves due retries back onto the queue and rescues keys of dead workers.

Every worker process starts one; a short Redis lock lets only one of them sweep at a time, so
adding workers adds no load. Each sweep:
  - sends keys whose retry (or settling) is due;
  - rescues keys whose lease expired (their worker died mid-run): each counts as a failed
    attempt and is retried with backoff, so a key that kills every worker that touches it is
    listed as a failed sync (and keeps retrying at the capped backoff) instead of looping;
  - sends again keys queued too long without running (their message may be lost);
  - enqueues keys a watcher wrote into the outbox but did not enqueue (it died in between);
  - hands out the next page of a resync pass when the resync lane has room.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from workers import metrics, resync
from workers.backoff import delay
from workers.context import Context
from workers.engine import Send
from workers.liveness import workers_seen
from workers.queue import NORMAL, RESYNC, URGENT

log = logging.getLogger("ckm.sweeper")
LOCK = "ckm:sweeper"
MEASURE_EVERY = 1.0  # seconds between measurements of the cluster-wide gauges


class Sweeper(threading.Thread):
    def __init__(self, context: Context, send: Send, *, period: float = 0.05,
                 idle_period: float = 0.2, follower_period: float = 0.5):
        super().__init__(daemon=True, name="ckm-sweeper")
        self.context, self.send, self.period = context, send, period
        # A sweep that found nothing to do waits longer (doubling up to `idle_period`), and a
        # process that is not the sweeper only checks every `follower_period` whether it must
        # take over (the lock lasts 2 s): an idle cluster costs Redis a few calls a second.
        self.idle_period, self.follower_period = idle_period, follower_period
        self.token = uuid.uuid4().hex
        self.stopped = threading.Event()
        self.measured = 0.0

    def run(self) -> None:
        wait = self.period
        while not self.stopped.wait(wait):
            try:
                if not self._leader():
                    wait = self.follower_period
                elif self.sweep():
                    wait = self.period
                else:
                    wait = min(self.idle_period, max(wait, self.period) * 2)
            except Exception:  # keep sweeping through Redis hiccups
                log.exception("sweep failed")
                wait = self.period

    def _leader(self) -> bool:
        r = self.context.redis
        if r.set(LOCK, self.token, nx=True, px=2000):
            return True
        if r.get(LOCK) == self.token:
            r.pexpire(LOCK, 2000)
            return True
        return False

    def sweep(self) -> bool:
        """One sweep; True when it found work (the next one comes soon)."""
        queue, failures, settings = (self.context.queue, self.context.failures,
                                     self.context.settings)
        due = queue.due()
        for key in due.expired:
            attempts = failures.attempt(key)
            log.warning("key %s: its worker died mid-run (attempt %d)", key, attempts)
            if attempts >= settings.max_attempts:
                failures.record(key, error="WorkerLost: its worker died while running it",
                                traceback="", attempts=attempts, permanent=False)
            queue.schedule(key, delay(attempts, base=settings.backoff_base,
                                      cap=settings.backoff_cap))
        if due.send:
            self.send(due.send, NORMAL)
        for lane in (URGENT, NORMAL, RESYNC):
            again = [key for key, at in due.resend if at == lane]
            if again:
                metrics.RESENT.inc(len(again))
                log.info("sending %d key(s) again (queued too long): %s", len(again),
                         ", ".join(again[:5]))
                self.send(again, lane)
        for keys, lane in ((due.outbox, NORMAL), (due.urgent_outbox, URGENT)):
            if keys:
                log.info("enqueueing %d key(s) a watcher stored but did not enqueue", len(keys))
                self.send(queue.enqueue(keys, lane), lane)
        handed = resync.advance(self.context, self.send)
        if time.monotonic() - self.measured >= MEASURE_EVERY:
            self.measure()
        return bool(due.send or due.expired or due.resend or due.outbox or due.urgent_outbox
                    or handed)

    def measure(self) -> None:
        """The cluster-wide gauges this process exports while it sweeps."""
        depths = self.context.queue.depths()
        seen = workers_seen(self.context)
        metrics.CLUSTER.update(
            depths={state: getattr(depths, state)
                    for state in ("queued", "processing", "delayed")},
            failed_by_reason=metrics.failed_by_reason(
                f.error for f in self.context.failures.all()),
            workers_up=len(seen),
            workers_consuming=sum(1 for w in seen.values() if w["consuming"]))
        self.measured = time.monotonic()
