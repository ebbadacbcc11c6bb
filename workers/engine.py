"""Run one key: take it, reconcile it, and turn the outcome into forget / retry / failed sync.

This is the body of every Celery task; it holds no Celery-specific logic, so it can be driven
directly in tests. The reconciler never sleeps or retries by itself: the queue owns time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable

from tasks.keys import Key
from tasks.outcomes import BadInput, NotReady
from workers import fencing, metrics, queue
from workers.backoff import delay
from workers.context import Context
from workers.syncs import sync_for

log = logging.getLogger("ckm.engine")
RUNS = "ckm:runs"  # the most recent runs, newest first: what ran where, when, with what outcome
RUNS_KEPT = 10_000
LAST_RUN, LAST_RUN_SECONDS = "ckm:lastrun:", 7 * 86400
WORKER = f"{socket.gethostname()}:{os.getpid()}"

Send = Callable[..., None]  # (keys, lane=NORMAL)


class _LeaseRenewer(threading.Thread):
    """One thread per process renews the leases of every key this process is running, so a
    live run is never taken over (and no thread is started per run). It survives any error
    (Redis restarting): a run it could not renew for too long fences itself (see
    workers.fencing); a run whose lease was taken over is marked lost."""

    def __init__(self, context: Context):
        super().__init__(daemon=True, name="lease-renewer")
        self.context = context
        self.active: dict[str, fencing.Run] = {}
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            time.sleep(self.context.queue.lease_ms / 3000)
            with self.lock:
                running = list(self.active.values())
            for run in running:
                sent = time.monotonic()
                try:
                    if self.context.queue.renew(run.key, run.token):
                        run.renewed_at = sent
                    elif self._active(run):  # not a run that has just finished
                        run.lost = True
                        log.warning("key %s: its lease was taken over", run.key)
                except Exception as exc:  # keep renewing the others; retry next round
                    log.warning("could not renew the lease of %s: %s", run.key, exc)


    def _active(self, run: fencing.Run) -> bool:
        # a run leaves `active` before it releases its key, so one still here that could not
        # renew has lost the key to someone else
        with self.lock:
            return self.active.get(run.key) is run


_renewers: dict[int, _LeaseRenewer] = {}
_renewers_lock = threading.Lock()


def _renewer(context: Context) -> _LeaseRenewer:
    with _renewers_lock:
        renewer = _renewers.get(id(context))
        if renewer is None:
            renewer = _renewers[id(context)] = _LeaseRenewer(context)
            renewer.start()
        return renewer


class SyncFailed(Exception):
    """Raised by the Celery task after a failed run, so Flower shows the run as FAILURE with
    the reason. The queue has already decided what happens next (retry or failed sync)."""


def run_key(context: Context, key: str, send: Send, *, raise_failures: bool = False) -> str:
    """Reconcile `key` once under its lease; returns the outcome label.

    done, busy (another run holds the key), bad-input, not-ready or error; the error of a
    failed run is kept in `context.failures` and in the run log."""
    token = uuid.uuid4().hex
    asked = time.monotonic()  # the lease runs from the request, not from its answer
    begun = context.queue.begin(key, token)
    if begun != queue.RUN:
        # BUSY: another worker runs it (made dirty, it runs again); DUPLICATE: a resent or
        # redelivered message of a key that already ran; STORE_INCOMPLETE: retried shortly
        label = {queue.BUSY: "busy", queue.DUPLICATE: "duplicate",
                 queue.STORE_INCOMPLETE: "store-incomplete"}[begun]
        metrics.RECONCILES.labels(Key.parse(key).kind, label).inc()
        return label
    sync = sync_for(key)
    renewer = _renewer(context)
    run = fencing.Run(key, token, safe_seconds=_safe_seconds(context), renewed_at=asked)
    with renewer.lock:
        renewer.active[key] = run
    fencing.enter(run)
    started = time.perf_counter()
    retry_in: float | None = None
    outcome, error = "error", None
    try:
        sync.reconcile(context, Key.parse(key))
        outcome = "done"
    except fencing.LeaseLost as exc:
        outcome, error = "fenced", exc
        retry_in = context.settings.backoff_base
    except BadInput as exc:
        outcome, error = "bad-input", exc
        _record(context, key, exc, permanent=True)
        _tell_kubernetes(context, key, exc)
    except Exception as exc:  # transient by policy: Contrail down, NotReady, conflicts, bugs
        outcome, error = ("not-ready" if isinstance(exc, NotReady) else "error"), exc
        attempts = _record(context, key, exc, permanent=False)
        if attempts == context.settings.max_attempts and not run.fenced():
            _tell_kubernetes(context, key, exc)  # now a failed sync: say why, once
        retry_in = delay(attempts, base=context.settings.backoff_base,
                         cap=context.settings.backoff_cap)
    finally:
        fencing.enter(None)
        with renewer.lock:
            if renewer.active.get(key) is run:
                del renewer.active[key]
        metrics.RECONCILE_SECONDS.labels(sync.kind).observe(time.perf_counter() - started)
        metrics.RECONCILES.labels(sync.kind, outcome).inc()
    # The run's ending in one round trip: after a success its latency, its verified epoch and
    # its failure cleared (unless fenced: its successor decides), then the run log, then the
    # key released (last, so nothing of this run is written after another run may start).
    pipe = context.redis.pipeline(transaction=False)
    success = None
    if outcome == "done":
        fenced = run.fenced()
        success = _after_success(pipe, key, clear=not fenced,
                                 epoch=None if fenced else run.epoch)
    _log_run(pipe, key, outcome, started)
    context.queue.finish_in(pipe, key, token, retry_in=retry_in)
    replies = pipe.execute(raise_on_error=False)
    finished = context.queue.finished(replies[-1], key, token, retry_in=retry_in)
    for reply in replies[:-1]:
        if isinstance(reply, Exception):
            raise reply
    if success is not None and success.read(replies, sync.kind):
        log.info("key %s recovered", key)
    if finished == 1:
        send([key])
    elif finished == -1:  # another run owns the key now: this run's ending changes nothing
        metrics.STALE_FINISHES.inc()
        log.warning("key %s: run ended after losing its lease (%s); discarded", key, outcome)
        return "fenced"
    # Only a failed sync shows red in Flower: a brief error being retried, or a run waiting
    # for another key (NotReady), is normal life until it has lasted `max_attempts` runs.
    if error is not None and raise_failures and outcome != "fenced" \
            and context.failures.get(key) is not None:
        then = "not retried until it changes" if retry_in is None else \
            f"retrying in {retry_in:.2f}s"
        raise SyncFailed(f"{key}: {type(error).__name__}: {error} ({then})") from error
    return outcome


# Kubernetes kind -> the key a watch-side failure of one of its objects is filed under
PRIMARY_KEY = {"Namespace": "namespace", "Pod": "port", "Service": "service",
               "Ingress": "ingress", "NetworkPolicy": "policy", "Node": "node"}


def report_bad_object(context: Context, kind: str, obj: dict, exc: Exception) -> str:
    """The watcher could not handle an event of this object: a failed sync of its primary
    key (cleared by that key's next good run) with a Kubernetes Event; returns the key."""
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or "?"
    if kind == "EndpointSlice":
        service = (meta.get("labels") or {}).get("kubernetes.io/service-name") or name
        key = f"members/{namespace}/{service}"
    else:
        key = "/".join(p for p in (PRIMARY_KEY.get(kind, kind.lower()), namespace, name) if p)
    message = f"the watcher cannot handle this {kind}: {type(exc).__name__}: {exc}"
    attempts = context.failures.attempt(key)
    context.failures.record(key, error=message, traceback="", attempts=attempts,
                            permanent=True)
    _tell_kubernetes(context, key, message)
    return key


class _Success:
    """The replies of a success's commands in the run's ending pipeline."""

    def __init__(self, at: int, clear: bool):
        self.at, self.clear = at, clear

    def read(self, replies: list, kind: str) -> bool:
        """Observe the latency; True when a failed sync recovered."""
        if replies[self.at]:
            metrics.LATENCY.labels(kind).observe(
                max(0.0, time.time() - float(replies[self.at])))
        return self.clear and bool(replies[self.at + 3])


def _after_success(pipe, key: str, *, clear: bool, epoch: int | None = None) -> _Success:
    """Queue on the run's ending pipeline: the latency from the Kubernetes change to now (for
    the histogram by kind), the resync epoch the run verified its objects in (a resync pass
    skips the key), and, unless the run was fenced, forget the key's failure."""
    from workers.apply import VERIFIED
    from workers.failures import Failures
    from workers.queue import SINCE

    at = len(pipe)
    pipe.hget(SINCE, key).hdel(SINCE, key)
    if clear:
        Failures.clear_in(pipe, key)
    if epoch is not None:
        pipe.hset(VERIFIED, key, epoch)
    return _Success(at, clear)


def _tell_kubernetes(context: Context, key: str, exc: Exception | str) -> None:
    """A Kubernetes Event on the object, so `kubectl describe` shows what to fix."""
    if context.kube is None:
        return
    from workers.kube import KEY_OBJECTS, post_event

    kind, _, rest = key.partition("/")
    namespace, _, name = rest.rpartition("/") if kind != "namespace" else ("", "", rest)
    uid = version = ""
    if kind in KEY_OBJECTS:
        stored = KEY_OBJECTS[kind][0]
        projection = context.store.get(stored, namespace, name) or {}
        uid = projection.get("uid", "")
        version = context.store.object_version(stored, namespace, name) or ""
    post_event(context.kube, kind, namespace, name, str(exc), uid=uid,
               resource_version=version)


def _log_run(pipe, key: str, outcome: str, started: float) -> None:
    ended = time.time()
    entry = json.dumps({"key": key, "outcome": outcome, "worker": WORKER, "end": ended,
                        "start": ended - (time.perf_counter() - started)})
    # and each key's last run, for `ckm describe` (kept a week after the key last ran)
    pipe.lpush(RUNS, entry).ltrim(RUNS, 0, RUNS_KEPT - 1).set(LAST_RUN + key, entry,
                                                             ex=LAST_RUN_SECONDS)


def _safe_seconds(context: Context) -> float:
    lease = context.queue.lease_ms / 1000
    return max(lease / 2, lease - context.settings.contrail_timeout)


def _record(context: Context, key: str, exc: Exception, *, permanent: bool) -> int:
    """Count the attempt; past the cap (or for bad input at once) record a failed sync.
    A run that no longer holds its key records nothing (its successor decides)."""
    run = fencing.current()
    if run is not None and run.fenced():
        return context.failures.attempts(key) or 1
    attempts = context.failures.attempt(key)
    message = f"{type(exc).__name__}: {exc}"
    if permanent or attempts >= context.settings.max_attempts:
        context.failures.record(key, error=message, traceback=traceback.format_exc(),
                                attempts=attempts, permanent=permanent)
        log.warning("key %s failed (attempt %d): %s", key, attempts, message)
    else:
        log.info("key %s attempt %d failed, will retry: %s", key, attempts, message)
    return attempts
