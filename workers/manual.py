"""An operator's retry, shared by `ckm retry` and the `ckm.retry` task (Flower's REST API).

A retry clears the key's failure and backoff and sends it now on the urgent lane, through
the queue: it never runs beside another run of the same key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from celery import Celery

from tasks.keys import Key
from workers.context import Context
from workers.dispatch import retry
from workers.kube import KEY_OBJECTS
from workers.syncs import sync_for


@dataclass
class Retried:
    queued: list[str] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)  # no stored object: runs as a delete


def problem(text: str) -> str | None:
    """Why `text` is not a key ckm can run, or None."""
    try:
        key = Key.parse(text)
    except ValueError as exc:
        return str(exc)
    try:
        sync_for(str(key))
    except (KeyError, ValueError):
        return f"no key kind {key.kind!r}"
    return None


def seen(context: Context, key: str) -> bool:
    """Is the object the key is about in the store (or the key not about one object)?"""
    parsed = Key.parse(key)
    target = KEY_OBJECTS.get(parsed.kind)
    if target is None:
        return True
    kind = target[0]
    return context.store.get(kind, "" if kind == "Namespace" else parsed.namespace,
                             parsed.name) is not None


def retry_keys(app: Celery, context: Context, keys: Iterable[str], *,
               all_failed: bool = False) -> Retried:
    """Run the keys (and every failed sync, if asked) now; raise ValueError naming every
    string that is not a key, before anything is sent."""
    keys = list(keys)
    bad = [f"{key}: {why}" for key in keys if (why := problem(key))]
    if bad:
        raise ValueError("; ".join(bad))
    if all_failed:
        keys += [f.key for f in context.failures.all()]
    chosen = list(dict.fromkeys(keys))
    for key in chosen:
        context.failures.clear(key)
    retry(app, context.queue, chosen)
    return Retried(chosen, [key for key in chosen if not seen(context, key)])
