"""List-then-watch of one kind into the desired-state store, enqueueing the keys it affects.

- The initial LIST is paginated (`limit`/`continue`), never a GET per item.
- WATCH resumes from the resourceVersion of the last event handled, asks for bookmarks, and
  restarts on timeout. Each event's store write saves that resume point in the same Redis
  step, so a restarted (or newly elected) watcher resumes exactly where the store is.
- 410 Gone (the history was compacted) means: relist and diff against the store; objects
  that vanished meanwhile become deletes.
- The store's generation tells whether Redis still holds what this reflector wrote: when it
  does not (a restart without persistence, a failover to a lagging replica, FLUSHALL), the
  reflector relists; workers and GC wait for the store to be complete again.
- An event that cannot be handled (a malformed object) is that object's failed sync, reported
  through `on_bad_object`; the stream goes on past it.
- Connection errors back off exponentially with jitter and try again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from tasks.fanout import APP_LABEL, affected_keys, store_coordinates
from tasks.keys import Key
from watcher import metrics
from watcher.projection import PROJECTIONS
from watcher.store import CHANGED, DesiredStore, Fenced, StoreLost, fingerprint

log = logging.getLogger("ckm.watcher")

Enqueue = Callable[[list[str], bool], None]  # (keys, urgent)
BadObject = Callable[[str, dict, Exception], None]  # (kind, object, error)

# Failures of the stream itself (not of one object): resume the watch after a pause.
STREAM_ERRORS = (ApiException, redis.RedisError, urllib3.exceptions.HTTPError, OSError)


def _checked(keys: list[str]) -> list[str]:
    """Refuse (as this object's failure) keys that are not keys, before anything is written."""
    for key in keys:
        Key.parse(key)
    return keys


# Kinds whose deletion no key cleans up by their tombstone (their dependents read the store).
NO_CLEANUP = frozenset({"EndpointSlice", "Node"})


class Gone(Exception):
    """The resourceVersion we hold is older than the server's history."""


class Reflector:
    def __init__(self, kind: str, list_fn, store: DesiredStore, enqueue: Enqueue, *,
                 page_size: int = 500, watch_timeout: int = 300,
                 app_label: str = APP_LABEL, term: int | None = None,
                 on_bad_object: BadObject | None = None,
                 on_listed: Callable[[], None] | None = None):
        self.kind, self.list_fn, self.store, self.enqueue = kind, list_fn, store, enqueue
        # Every series exists from the start, at 0: a dashboard shows 0, not "no data".
        for counter in (metrics.RELISTS, metrics.GONE, metrics.STREAM_ERRORS,
                        metrics.BAD_OBJECTS, metrics.STORE_LOST):
            counter.labels(kind)
        for event in ("ADDED", "MODIFIED", "DELETED"):
            metrics.EVENTS.labels(kind, event)
        self.app_label = app_label
        self.project = PROJECTIONS[kind]
        self.page_size, self.watch_timeout = page_size, watch_timeout
        self.writer = store.writer(kind, term=term)
        self.on_bad_object, self.on_listed = on_bad_object, on_listed
        self.stop = threading.Event()
        self.version: str | None = None
        self.listed = False  # the store holds a full list under this reflector's generation
        self.failing_since: float | None = None  # for health: the stream keeps failing
        self.last_error = ""
        self.events = self.relists = 0  # for `ckm status`, since this reflector started
        self.last_event_at: float | None = None  # wall clock
        self._response = None
        self._lost = False

    # --- loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        failures, started = 0, False
        while not self.stop.is_set():
            try:
                if not started:  # inside the loop: a Redis error here must not end it
                    self.version, self.writer.generation = self.store.resume_point(self.kind)
                    if self.version is None or self.writer.generation is None:
                        self.version = None
                    started = True
                    if self.version is not None:
                        self._listed()
                if self.version is None:
                    self.relist()
                    if self.version is None:
                        continue  # stopped in the middle of the list
                self.watch()
                failures, self.failing_since = 0, None
                if self._lost:
                    raise StoreLost(f"{self.kind}: the store lost its generation")
            except Gone:
                metrics.GONE.labels(self.kind).inc()
                log.info("%s: resourceVersion %s expired, relisting", self.kind, self.version)
                self.version = None
            except StoreLost as exc:
                metrics.STORE_LOST.labels(self.kind).inc()
                log.warning("%s: %s; relisting", self.kind, exc)
                self.listed, self.version, self._lost = False, None, False
            except Fenced as exc:
                log.warning("%s: %s; stopping", self.kind, exc)
                self.stop.set()
            except Exception as exc:  # any failure of a long-lived stream: back off, resume
                if self.stop.is_set():
                    break  # close() pulled the stream out from under a read
                if self._lost:  # verify_store() pulled the stream: relist at once
                    self.listed, self.version, self._lost = False, None, False
                    continue
                failures += 1
                self.failing_since = self.failing_since or time.monotonic()
                self.last_error = f"{type(exc).__name__}: {exc}"
                metrics.STREAM_ERRORS.labels(self.kind).inc()
                pause = min(30.0, 0.1 * 2 ** min(failures, 10)) * random.uniform(0.5, 1.0)
                log.warning("%s: watch failed (%s); resuming from %s in %.1fs", self.kind,
                            self.last_error, self.version, pause)
                self.stop.wait(pause)

    def close(self) -> None:
        self.stop.set()
        self._shutdown()

    def _shutdown(self) -> None:
        response = self._response
        if response is not None:
            # Shut the socket down rather than close the response: closing would wait for
            # the reader thread's buffer lock, while shutdown wakes its blocked read at once.
            connection = getattr(response, "connection", None)
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def verify_store(self) -> None:
        """Called from the watcher's loop: a store that lost this kind's generation (Redis
        restarted empty) or holds an older one (it went back to an older snapshot, or
        failed over to a lagging replica) is relisted now, not at the next event."""
        held = self.writer.generation  # read first: it only grows between relists
        if not self.listed or held is None:
            return
        stored = self.store.resume_point(self.kind)[1]
        if stored is None or int(stored) < int(held):
            log.warning("%s: the store lost its data or went back in time; relisting",
                        self.kind)
            metrics.STORE_LOST.labels(self.kind).inc()
            self.listed = False
            self._lost = True
            self._shutdown()

    def _listed(self) -> None:
        self.listed = True
        if self.on_listed is not None:
            self.on_listed()

    # --- list ----------------------------------------------------------------------------------
    def relist(self) -> None:
        metrics.RELISTS.labels(self.kind).inc()
        self.relists += 1
        stored = self.store.hashes(self.kind)
        seen: set[str] = set()
        token, version = None, ""
        while True:
            if self.stop.is_set():
                return
            page = self._call(limit=self.page_size, _continue=token,
                              _request_timeout=(10, 120))
            for obj in page.get("items") or []:
                field = self._field(obj)
                seen.add(field)
                self._guarded(obj, lambda o=obj, f=field: self._relist_one(o, f, stored))
            token = (page.get("metadata") or {}).get("continue")
            version = (page.get("metadata") or {}).get("resourceVersion") or version
            if not token:
                break
        for field in set(stored) - seen:  # gone while we were not watching
            namespace, _, name = field.partition("/")
            self.remove(namespace, name, check=False)
        self.writer.listed(version)
        self.version = version
        log.info("%s: listed %d objects at resourceVersion %s", self.kind, len(seen), version)
        self._listed()

    def _relist_one(self, obj: dict, field: str, stored: dict[str, str]) -> None:
        projection = self.project(obj)
        if stored.get(field) != fingerprint(projection):
            self.upsert(obj, projection, check=False)

    # --- watch ---------------------------------------------------------------------------------
    def watch(self) -> None:
        self._response = self._call(raw=True, watch=True, resource_version=self.version,
                                    allow_watch_bookmarks=True,
                                    timeout_seconds=self.watch_timeout,
                                    _request_timeout=(10, self.watch_timeout + 30))
        try:
            for line in iter_resp_lines(self._response):
                if self.stop.is_set():
                    break
                if line:
                    self.handle(json.loads(line))
        finally:
            self._response.release_conn()
            self._response = None

    def handle(self, event: dict[str, Any]) -> None:
        """Apply one watch event; the resume point moves past it whatever its object holds."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", ""))
            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
        metrics.EVENTS.labels(self.kind, kind).inc()
        metrics.LAST_EVENT.labels(self.kind).set_to_current_time()
        self.events, self.last_event_at = self.events + 1, time.time()
        rv = (obj.get("metadata") or {}).get("resourceVersion") or ""
        if kind in ("ADDED", "MODIFIED"):
            handled = self._guarded(obj, lambda: self.upsert(obj, self.project(obj), rv=rv))
        elif kind == "DELETED":
            meta = obj.get("metadata") or {}
            _, namespace, name = store_coordinates(self.kind, meta.get("namespace", ""),
                                                   meta.get("name", ""))
            handled = self._guarded(obj, lambda: self.remove(namespace, name, rv=rv))
        else:  # BOOKMARK
            handled = False
        if not handled and rv:
            self.writer.advance(rv)
        if rv:
            self.version = rv

    def _guarded(self, obj: dict, step: Callable[[], None]) -> bool:
        """Run one object's step; a failure of that object (not of the stream) becomes its
        failed sync. Returns whether the step ran to the end."""
        try:
            step()
            return True
        except (*STREAM_ERRORS, Gone, Fenced, StoreLost):
            raise
        except Exception as exc:
            meta = obj.get("metadata") or {}
            metrics.BAD_OBJECTS.labels(self.kind).inc()
            log.warning("%s %s/%s cannot be handled: %s: %s", self.kind,
                        meta.get("namespace", ""), meta.get("name", ""), type(exc).__name__, exc)
            if self.on_bad_object is not None:
                try:
                    self.on_bad_object(self.kind, obj, exc)
                except Exception:  # reporting must not stop the stream
                    log.exception("could not report the bad object")
            return False

    # --- store + fan-out -----------------------------------------------------------------------
    def _field(self, obj: dict) -> str:
        meta = obj.get("metadata") or {}
        _, namespace, name = store_coordinates(self.kind, meta.get("namespace", ""),
                                               meta.get("name", ""))
        return f"{namespace}/{name}"

    def upsert(self, obj: dict, projection: dict, *, rv: str = "", check: bool = True) -> None:
        """Store the projection and queue the keys it affects, in one step."""
        namespace, _, name = self._field(obj).partition("/")
        old = self.store.get(self.kind, namespace, name)
        if old == projection:
            if rv:
                self.writer.advance(rv)
            return
        keys = _checked(affected_keys(self.kind, namespace, name, old, projection, self.store,
                                      app_label=self.app_label))
        object_rv = (obj.get("metadata") or {}).get("resourceVersion") or ""
        status = self.writer.put(namespace, name, projection, object_rv=object_rv,
                                 resume_rv=rv, keys=keys, check=check, old=old)
        if status == CHANGED:
            self._enqueue(keys, False)

    def remove(self, namespace: str, name: str, *, rv: str = "", check: bool = True) -> None:
        old = self.store.get(self.kind, namespace, name)
        keys = [] if old is None else _checked(affected_keys(
            self.kind, namespace, name, old, None, self.store, app_label=self.app_label))
        status = self.writer.delete(namespace, name, object_rv=rv, resume_rv=rv, keys=keys,
                                    check=check, old=old)
        if status == CHANGED:
            if self.kind in NO_CLEANUP:  # no key reads their tombstones: none may pile up
                self.store.forget_tombstone(self.kind, namespace, name)
            self._enqueue(keys, True)

    def _enqueue(self, keys: list[str], urgent: bool) -> None:
        if not keys:
            return
        metrics.ENQUEUED.labels(self.kind).inc(len(keys))
        try:
            self.enqueue(keys, urgent)
        except Exception as exc:  # the keys wait in the outbox; the sweeper sends them
            log.warning("%s: enqueue failed (%s); the sweeper will send %d key(s)", self.kind,
                        exc, len(keys))

    def _call(self, *, raw: bool = False, **params):
        params = {k: v for k, v in params.items() if v is not None}
        try:
            response = self.list_fn(_preload_content=False, **params)
        except ApiException as exc:
            if exc.status == 410:  # an expired continue token or resourceVersion
                raise Gone(exc.reason) from exc
            raise
        if raw:
            return response
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()
