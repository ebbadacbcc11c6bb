"""Enqueue keys: the only producer API (the watcher, the sweeper, the CLI and resync use it).

A key is sent to Celery only when the Redis queue says it was not queued yet, so a burst of
changes to one object becomes one message. Deletes and namespace/cluster keys go to the urgent
queue; periodic resyncs to the low-priority resync queue.
"""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery

from workers.queue import NORMAL, RESYNC, URGENT, KeyQueue
from workers.syncs import RESYNC_QUEUE, URGENT_QUEUE, sync_for

URGENT_KINDS = frozenset({"cluster", "namespace"})


def lane_of(*, urgent: bool = False, resync: bool = False) -> int:
    return URGENT if urgent else RESYNC if resync else NORMAL


_QUEUED = {"queued": True}
_QUEUED_REPR = repr(_QUEUED)


def send(app: Celery, keys: Iterable[str], lane: int = NORMAL) -> None:
    """Publish one Celery message per key (the queue decided which keys need one). The
    `queued` flag tells the task the key went through the queue (see `workers.app`)."""
    keys = list(keys)
    if not keys:
        return
    # one producer, its messages pipelined: one Redis round trip for the lot (kombu's batch)
    with app.producer_or_acquire() as producer, producer.batch():
        for key in keys:
            sync = sync_for(key)
            # resync work stays on its lane whatever its kind: live work never waits behind it
            queue = (RESYNC_QUEUE if lane == RESYNC else
                     URGENT_QUEUE if lane == URGENT or sync.kind in URGENT_KINDS else sync.queue)
            # the argument's repr given, as Celery would make it (its saferepr costs more)
            app.send_task(sync.task, args=[key], kwargs=_QUEUED, queue=queue,
                          producer=producer, argsrepr=repr([key]), kwargsrepr=_QUEUED_REPR)


def enqueue(app: Celery, queue: KeyQueue, keys: Iterable[str], *, urgent: bool = False,
            resync: bool = False) -> int:
    """Mark keys as needing work and send those not already queued on a lane at least as
    urgent; returns how many were sent."""
    keys = list(dict.fromkeys(keys))
    for key in keys:
        sync_for(key)  # refuse unknown kinds before anything is queued
    lane = lane_of(urgent=urgent, resync=resync)
    fresh = queue.enqueue(keys, lane, changed=not resync)
    send(app, fresh, lane)
    return len(fresh)


def retry(app: Celery, queue: KeyQueue, keys: Iterable[str]) -> int:
    """An operator's retry: send every key now, on the urgent lane, even if it is queued
    (its message may be lost); a key that is running runs again after it."""
    keys = list(dict.fromkeys(keys))
    for key in keys:
        sync_for(key)
    fresh = queue.requeue(keys, URGENT)
    send(app, fresh, URGENT)
    return len(fresh)
