"""The Celery app and its task shells: decode the key, run it through the engine.

`celery -A workers.app ...` (Flower, inspection) and `ckm worker` use this module. Settings
come from the process environment / CKM_CONFIG unless `ckm worker` installed its own.
"""

from __future__ import annotations

import logging

from celery import Celery, signals
from celery.worker.request import Request
from kombu import Exchange, Queue
from kombu.transport import redis as kombu_redis

from config.celeryconfig import celery_options
from workers import context as contexts
from workers import reconcilers  # noqa: F401  (registers the syncs)
from workers.dispatch import enqueue, retry, send
from workers.engine import run_key
from workers.queue import NORMAL
from workers.syncs import SYNCS, URGENT_QUEUE, queues

log = logging.getLogger("ckm.worker")
app = Celery("ckm")

# When the broker connection drops, kombu closes the channel and tries to give back the
# messages this worker holds ("Restoring N unacknowledged message(s)") over the connection
# it has just torn down; that raises AttributeError ('NoneType' ... 'hostname') and Celery
# exits the worker as unrecoverable. Nothing needs that give-back here: the messages come
# back after the visibility timeout, and their keys are resent after `resend_seconds` by
# the queue itself (a late redelivery is a duplicate and runs nothing).
kombu_redis.QoS.restore_at_shutdown = False


def configure(settings) -> Celery:
    app.conf.update(celery_options(settings))
    # Every ckm queue is declared, so Flower's Broker page lists them from its first load;
    # a task sent by hand with no queue (Flower's API) goes to the urgent queue, which
    # every worker consumes first.
    # Each queue has its own direct exchange and routing key, as Celery makes for a queue it
    # was not told about: a shared one would copy every message into every queue.
    app.conf.update(task_queues=[Queue(name, Exchange(name), routing_key=name)
                                 for name in queues()],
                    task_default_queue=URGENT_QUEUE)
    return app


def _send(keys: list[str], lane: int = NORMAL) -> None:
    send(app, keys, lane)


def _dispatch(keys: list[str]) -> None:
    context = contexts.current()
    enqueue(app, context.queue, keys)


class SafeAckRequest(Request):
    """Acknowledging a message after the broker connection was reset raises from inside
    kombu (its channel is gone: `'NoneType' object has no attribute 'client'`); the ack runs
    later on the event loop, where Celery treats anything but a connection error as
    unrecoverable and exits the worker. A lost ack is harmless here: the message comes back
    after the visibility timeout and its key is no longer queued, so it runs nothing."""

    def acknowledge(self):
        self._connection_errors = (*self._connection_errors, AttributeError)
        super().acknowledge()

    def reject(self, requeue=False):
        self._connection_errors = (*self._connection_errors, AttributeError)
        super().reject(requeue=requeue)


def _make_task(task_name: str):
    def run(key: str, queued: bool = False) -> str:
        context = contexts.current()
        if context.dispatch is None:
            context.dispatch = _dispatch
        if not queued:  # sent by hand (Flower, `celery call`): an operator's retry
            retry(app, context.queue, [key])
            return "retried"
        return run_key(context, key, _send, raise_failures=True)

    run.__name__ = run.__qualname__ = task_name.rsplit(".", 1)[-1]
    run.__doc__ = f"Reconcile one key with {task_name} (argument: the key string)."
    return app.task(name=task_name, acks_late=True, reject_on_worker_lost=True,
                    ignore_result=True, Request=SafeAckRequest)(run)


TASKS = {sync.task: _make_task(sync.task) for sync in SYNCS.values()}


@app.task(name="ckm.retry")
def retry_by_hand(*keys: str, all_failed: bool = False) -> dict:
    """An operator's retry (Flower: POST /api/task/async-apply/ckm.retry with
    {"args": [KEY, ...]} or {"kwargs": {"all_failed": true}}): clear each key's failure and
    backoff and run it now, through the queue. A string that is not a key fails the task."""
    from workers.manual import retry_keys

    done = retry_keys(app, contexts.current(), keys, all_failed=all_failed)
    return {"queued": done.queued, "no_stored_object": done.unseen}


@app.task(name="ckm.resync", ignore_result=True)
def resync_all(kind: str | None = None) -> dict:
    """Full resync (every stored key, at low priority) and garbage collection."""
    from workers.resync import resync

    return resync(contexts.current(), app, kinds=[kind] if kind else None)


@signals.worker_ready.connect
def _start_helpers(sender=None, **_):
    """Every worker process runs a sweeper (one sweeps at a time), a watch on its own
    consumer and, if asked, /metrics with /healthz (false when the consumer is stuck)."""
    from watcher.health import serve_health
    from workers.liveness import ConsumerWatch
    from workers.sweeper import Sweeper

    context = contexts.current()
    Sweeper(context, _send).start()
    name = getattr(sender, "hostname", None) or "worker"
    watch = ConsumerWatch(context, name, concurrency=context.settings.worker_concurrency)
    watch.start()
    if context.settings.metrics_port:
        serve_health(context.settings.metrics_port, healthy=watch.healthy,
                     ready=watch.healthy, pages={"/failed": lambda: _failed(context)})


def _failed(context) -> list[dict]:
    """Every failed sync and why (a worker's /failed page), without tracebacks."""
    return [{"key": f.key, "error": f.error, "attempts": f.attempts,
             "first_failed": f.first_failed, "last_failed": f.last_failed,
             "retrying": not f.permanent} for f in context.failures.all()]


configure(contexts.current().settings)
