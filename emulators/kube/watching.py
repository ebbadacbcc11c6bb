"""Watch streams: newline-delimited JSON events, as `?watch=true` answers them.

Semantics copied from the API server's watch cache:

* no resourceVersion, or "0": one ADDED per current object, then changes;
* resourceVersion N: every event after N from the history, then changes; if the history no
  longer reaches back to N, the stream (HTTP 200) carries one ERROR event with the 410
  Expired Status and ends, which is how client-go and the Python client see it;
* selectors are applied to both the old and the new state, so an object that starts
  matching arrives as ADDED and one that stops matching as DELETED;
* BOOKMARK events (only with allowWatchBookmarks) carry just kind, apiVersion and
  metadata.resourceVersion, sent when the stream is idle every `bookmark_interval` seconds;
* the stream ends after timeoutSeconds, on `Store.drop_watches()`, or when the server is
  closing (`closing()` turns true).

The snapshot of the initial state and the subscription are taken together without awaiting,
so no write can fall between them.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from emulators.kube import errors
from emulators.kube.resources import ResourceType
from emulators.kube.store import Event, Store

Obj = dict[str, Any]
_POLL = 0.5  # how often an idle stream checks closing(): cheap, and bounds shutdown time


@dataclass
class WatchRequest:
    rt: ResourceType
    namespace: str | None                      # None: all namespaces (or cluster-scoped)
    matcher: Callable[[Obj], bool] | None
    resource_version: str | None
    bookmarks: bool = False
    timeout: float = 1800.0
    send_initial_events: bool | None = None
    render: Callable[[Obj], Obj] | None = None  # e.g. object → Table for kubectl get -w

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.matcher is None or self.matcher(obj)


def _line(event_type: str, obj: Obj) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _visible(event: Event, req: WatchRequest) -> tuple[str, Obj] | None:
    """How this watch sees a stored event, after selectors (None: it does not)."""
    now_matches = req.matches(event.obj)
    if event.type != "MODIFIED":
        return (event.type, event.obj) if now_matches else None
    was_matching = req.matches(event.old)
    if now_matches:
        return ("MODIFIED" if was_matching else "ADDED"), event.obj
    return ("DELETED", event.obj) if was_matching else None


class WatchStream:
    def __init__(self, store: Store, req: WatchRequest, *, bookmark_interval: float,
                 closing: Callable[[], bool]) -> None:
        self.store, self.req = store, req
        self.bookmark_interval = bookmark_interval
        self.closing = closing
        self.after = 0  # never send an event at or before this resourceVersion

    def _render(self, event_type: str, obj: Obj) -> bytes:
        return _line(event_type, self.req.render(obj) if self.req.render else obj)

    def _bookmark(self, initial_end: bool = False) -> bytes:
        meta: Obj = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _line("BOOKMARK", {"kind": self.req.rt.kind, "apiVersion": self.req.rt.api_version,
                                  "metadata": meta})

    def _initial(self) -> list[bytes] | errors.ApiError:
        req, rv = self.req, self.req.resource_version
        if rv in (None, "", "0") or req.send_initial_events:
            ns = req.namespace if req.rt.namespaced else None
            lines = [self._render("ADDED", o) for o in self.store.objects(req.rt, ns)
                     if req.matches(o)]
            if req.send_initial_events and req.bookmarks:
                lines.append(self._bookmark(initial_end=True))
            return lines
        since = self.after = int(rv)
        oldest = self.store.oldest_resumable(req.rt)
        if since < oldest:
            return errors.too_old_resource_version(since, oldest + 1)
        lines = []
        for event in self.store.history(req.rt, since):
            seen = _visible(event, req)
            if seen:
                lines.append(self._render(*seen))
        return lines

    async def events(self) -> AsyncIterator[bytes]:
        sub = self.store.subscribe(self.req.rt)
        try:
            initial = self._initial()
            if isinstance(initial, errors.ApiError):
                yield _line("ERROR", initial.status())
                return
            for start in range(0, len(initial), 500):
                yield b"".join(initial[start:start + 500])
                await asyncio.sleep(0)
            async for chunk in self._follow(sub.queue):
                yield chunk
        finally:
            self.store.unsubscribe(sub)

    async def _follow(self, queue: asyncio.Queue) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.req.timeout
        interval = self.bookmark_interval if self.req.bookmarks else math.inf
        next_bookmark = loop.time() + interval
        while not self.closing():
            now = loop.time()
            if now >= deadline:
                return
            if now >= next_bookmark and queue.empty():
                # only with nothing queued is every event up to the store's rv out (the
                # promise a bookmark makes); behind a slow reader it waits for the queue
                yield self._bookmark()
                next_bookmark = now + interval
            wait = min(deadline, next_bookmark, now + _POLL) - now
            try:
                event = await asyncio.wait_for(queue.get(), timeout=max(wait, 0.001))
            except TimeoutError:
                continue
            batch = [event]
            while not queue.empty():
                batch.append(queue.get_nowait())
            lines = []
            for item in batch:
                if item is None:
                    if lines:
                        yield b"".join(lines)
                    return
                seen = _visible(item, self.req) if item.rv > self.after else None
                if seen:
                    lines.append(self._render(*seen))
            if lines:
                yield b"".join(lines)
