"""Object storage: the objects, one global resourceVersion counter, per-resource event history.

Like etcd plus the API server's watch cache, and nothing more: no defaulting, no validation,
no HTTP. Stored objects are never mutated in place (every write stores a new dict), so the
history, open watches and list snapshots can hold references to them safely.

All methods are synchronous and must run on the server's event loop thread: that alone makes
every write atomic with respect to watches and lists (no locks).

Per resource the history keeps the last `history_size` events, as the watch cache does;
`compacted[resource]` is the newest resourceVersion no longer in it, so a watch may resume
from any resourceVersion >= that, and older ones get 410 Expired.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from emulators.kube.resources import ResourceType

Obj = dict[str, Any]


@dataclass(frozen=True)
class Event:
    rv: int
    type: str                 # ADDED | MODIFIED | DELETED
    obj: Obj                  # the object as of this event (DELETED: its last state)
    old: Obj | None = None    # the previous state, for selector transitions on watches


@dataclass(eq=False)
class Subscription:
    """One open watch: the store pushes every event of its resource into `queue`."""
    resource: str
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)  # wakes the stream, which then ends


class Store:
    def __init__(self, history_size: int = 1000) -> None:
        self.history_size = max(1, history_size)
        self.rv = 0
        self._objects: dict[str, dict[str, dict[str, Obj]]] = {}
        self._history: dict[str, deque[Event]] = {}
        self.compacted: dict[str, int] = {}
        self.floor = 0  # set by compact(): the resourceVersion every history starts after
        self._subscriptions: dict[str, set[Subscription]] = {}
        self.listeners: list[Callable[[ResourceType, Event], None]] = []

    # --- reads ---------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        return self._objects.get(rt.key, {}).get(namespace, {}).get(name)

    def objects(self, rt: ResourceType, namespace: str | None = None) -> Iterator[Obj]:
        """Objects in etcd key order (namespace, then name); all namespaces when None."""
        by_ns = self._objects.get(rt.key, {})
        namespaces = [namespace] if namespace is not None else sorted(by_ns)
        for ns in namespaces:
            names = by_ns.get(ns, {})
            for name in sorted(names):
                yield names[name]

    def count(self, rt: ResourceType, namespace: str | None = None) -> int:
        by_ns = self._objects.get(rt.key, {})
        if namespace is not None:
            return len(by_ns.get(namespace, {}))
        return sum(len(names) for names in by_ns.values())

    def namespaces_of(self, rt: ResourceType) -> list[str]:
        return [ns for ns, names in self._objects.get(rt.key, {}).items() if names]

    def history(self, rt: ResourceType, after: int) -> list[Event]:
        return [e for e in self._history.get(rt.key, ()) if e.rv > after]

    # --- writes --------------------------------------------------------------------------

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, rt: ResourceType, obj: Obj, rv: int, old: Obj | None) -> None:
        """Store `obj` (already stamped with resourceVersion `rv`) and record the event."""
        meta = obj["metadata"]
        names = self._objects.setdefault(rt.key, {}).setdefault(meta.get("namespace", ""), {})
        names[meta["name"]] = obj
        self._record(rt, Event(rv, "MODIFIED" if old is not None else "ADDED", obj, old))

    def remove(self, rt: ResourceType, last: Obj, rv: int) -> None:
        """Delete the object; `last` is its final state stamped with the deletion's `rv`."""
        meta = last["metadata"]
        names = self._objects.get(rt.key, {}).get(meta.get("namespace", ""), {})
        old = names.pop(meta["name"], None)
        self._record(rt, Event(rv, "DELETED", last, old))

    def _record(self, rt: ResourceType, event: Event) -> None:
        history = self._history.setdefault(rt.key, deque())
        if len(history) >= self.history_size:
            self.compacted[rt.key] = history.popleft().rv
        history.append(event)
        for sub in self._subscriptions.get(rt.key, ()):
            sub.queue.put_nowait(event)
        for listener in self.listeners:
            listener(rt, event)

    # --- watches and faults --------------------------------------------------------------

    def subscribe(self, rt: ResourceType) -> Subscription:
        sub = Subscription(rt.key)
        self._subscriptions.setdefault(rt.key, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.get(sub.resource, set()).discard(sub)

    def oldest_resumable(self, rt: ResourceType) -> int:
        """Watches may resume from this resourceVersion or newer."""
        return max(self.compacted.get(rt.key, 0), self.floor)

    def drop_watches(self) -> int:
        subs = [s for group in self._subscriptions.values() for s in group]
        for sub in subs:
            sub.close()
        return len(subs)

    def compact(self) -> None:
        """Forget all history: resuming from any older resourceVersion now gets 410."""
        self._history.clear()
        self.compacted.clear()
        self.floor = self.rv

    def watch_count(self) -> int:
        return sum(len(group) for group in self._subscriptions.values())
