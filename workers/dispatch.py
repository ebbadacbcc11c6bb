"""Enqueue keys: the only producer API (the watcher, the sweeper, the CLI and resync use it).

A key is sent to Celery only when the Redis queue says it was not queued yet, so a burst of
changes to one object becomes one message. Deletes and namespace/cluster keys go to the urgent
queue; periodic resyncs to the low-priority resync queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from celery import Celery

from workers.queue import KeyQueue
from workers.syncs import RESYNC_QUEUE, URGENT_QUEUE, sync_for

URGENT_KINDS = frozenset({"cluster", "namespace"})


SINCE = "ckm:q:since"  # key -> when the change it waits for was first seen (sync latency)


def mark_changed(client, keys: list[str]) -> None:
    now = str(time.time())
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hsetnx(SINCE, key, now)
    pipe.execute()


def send(app: Celery, keys: Iterable[str], *, urgent: bool = False,
         resync: bool = False) -> None:
    """Publish one Celery message per key (callers have already deduplicated them)."""
    for key in keys:
        sync = sync_for(key)
        queue = (URGENT_QUEUE if urgent or sync.kind in URGENT_KINDS
                 else RESYNC_QUEUE if resync else sync.queue)
        app.send_task(sync.task, args=[key], queue=queue)


def enqueue(app: Celery, queue: KeyQueue, keys: Iterable[str], *, urgent: bool = False,
            resync: bool = False) -> int:
    """Mark keys as needing work and send those not already queued; returns how many sent."""
    keys = list(dict.fromkeys(keys))
    for key in keys:
        sync_for(key)  # refuse unknown kinds before anything is queued
    if keys and not resync:
        mark_changed(queue.redis, keys)
    fresh = queue.enqueue(keys)
    send(app, fresh, urgent=urgent, resync=resync)
    return len(fresh)
