"""The registry of key kinds: which Celery task runs a kind, on which queue, with what logic.

Task names are the operations operators reason about (`ckm.sync_namespace`,
`ckm.sync_pod_port`, ...); each takes one argument, the key string, so Flower shows the key
and "re-run with the same arguments" re-runs exactly that key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tasks.keys import Key

CLUSTER_KEY = "cluster/bootstrap"
URGENT_QUEUE = "ckm.urgent"
RESYNC_QUEUE = "ckm.resync"


@dataclass(frozen=True)
class Sync:
    kind: str           # key kind: the first part of the key
    task: str           # Celery task name
    queue: str          # normal queue; deletes go to URGENT_QUEUE, resyncs to RESYNC_QUEUE
    reconcile: Callable  # (context, Key) -> None; raises BadInput / NotReady / others


SYNCS: dict[str, Sync] = {}


def register(kind: str, task: str, queue: str) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        SYNCS[kind] = Sync(kind, task, queue, fn)
        return fn
    return decorator


def sync_for(key: str | Key) -> Sync:
    kind = (key if isinstance(key, Key) else Key.parse(key)).kind
    try:
        return SYNCS[kind]
    except KeyError:
        raise ValueError(f"no sync registered for key kind {kind!r}") from None


def queues() -> list[str]:
    """Every queue, most urgent first (workers consume them in this priority order)."""
    ordered = [URGENT_QUEUE]
    for sync in SYNCS.values():
        if sync.queue not in ordered:
            ordered.append(sync.queue)
    return [*ordered, RESYNC_QUEUE]
