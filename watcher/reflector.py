"""List-then-watch of one kind into the desired-state store, enqueueing the keys it affects.

- The initial LIST is paginated (`limit`/`continue`), never a GET per item.
- WATCH resumes from the last resourceVersion, asks for bookmarks, and restarts on timeout;
  the resourceVersion is kept in Redis, so a restarted (or newly elected) watcher resumes
  instead of relisting.
- 410 Gone (the history was compacted) means: relist and diff against the store; objects
  that vanished meanwhile become deletes.
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

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from tasks.fanout import APP_LABEL, affected_keys, store_coordinates
from watcher import metrics
from watcher.projection import PROJECTIONS
from watcher.store import DesiredStore, fingerprint

log = logging.getLogger("ckm.watcher")

Enqueue = Callable[[list[str], bool], None]  # (keys, urgent)


class Gone(Exception):
    """The resourceVersion we hold is older than the server's history."""


class Reflector:
    def __init__(self, kind: str, list_fn, store: DesiredStore, enqueue: Enqueue, *,
                 page_size: int = 500, watch_timeout: int = 300,
                 app_label: str = APP_LABEL):
        self.kind, self.list_fn, self.store, self.enqueue = kind, list_fn, store, enqueue
        self.app_label = app_label
        self.project = PROJECTIONS[kind]
        self.page_size, self.watch_timeout = page_size, watch_timeout
        self.stop = threading.Event()
        self._response = None
        self._last_saved = 0.0

    # --- loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        version = self.store.resource_version(self.kind)
        failures = 0
        while not self.stop.is_set():
            try:
                if version is None:
                    version = self.relist()
                version = self.watch(version)
                failures = 0
            except Gone:
                metrics.GONE.labels(self.kind).inc()
                log.info("%s: resourceVersion %s expired, relisting", self.kind, version)
                version = None
            except Exception as exc:  # any failure of a long-lived stream: back off, resume
                if self.stop.is_set():
                    break  # close() pulled the stream out from under a read
                failures += 1
                pause = min(30.0, 0.1 * 2 ** failures) * random.uniform(0.5, 1.0)
                log.warning("%s: watch failed (%s); retrying in %.1fs", self.kind, exc, pause)
                self.stop.wait(pause)

    def close(self) -> None:
        self.stop.set()
        response = self._response
        if response is not None:
            # Shut the socket down rather than close the response: closing would wait for
            # the reader thread's buffer lock, while shutdown wakes its blocked read at once.
            connection = getattr(response, "connection", None)
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # --- list ----------------------------------------------------------------------------------
    def relist(self) -> str:
        metrics.RELISTS.labels(self.kind).inc()
        stored = self.store.hashes(self.kind)
        seen: set[str] = set()
        token, version = None, ""
        while True:
            page = self._call(limit=self.page_size, _continue=token)
            for obj in page.get("items") or []:
                seen.add(self._field(obj))
                projection = self.project(obj)
                if stored.get(self._field(obj)) != fingerprint(projection):
                    self.upsert(obj, projection)
            token = (page.get("metadata") or {}).get("continue")
            version = (page.get("metadata") or {}).get("resourceVersion") or version
            if not token:
                break
        for field in set(stored) - seen:  # gone while we were not watching
            namespace, _, name = field.partition("/")
            self.remove(namespace, name)
        self.store.set_resource_version(self.kind, version)
        log.info("%s: listed %d objects at resourceVersion %s", self.kind, len(seen), version)
        return version

    # --- watch ---------------------------------------------------------------------------------
    def watch(self, version: str) -> str:
        self._response = self._call(raw=True, watch=True, resource_version=version,
                                    allow_watch_bookmarks=True,
                                    timeout_seconds=self.watch_timeout,
                                    _request_timeout=(10, self.watch_timeout + 30))
        try:
            for line in iter_resp_lines(self._response):
                if self.stop.is_set():
                    break
                if line:
                    version = self.handle(json.loads(line)) or version
                    self._save(version)
        finally:
            self._response.release_conn()
            self._response = None
        self._save(version, force=True)
        return version

    def handle(self, event: dict[str, Any]) -> str | None:
        """Apply one watch event; returns the resourceVersion it carries."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", ""))
            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
        metrics.EVENTS.labels(self.kind, kind).inc()
        metrics.LAST_EVENT.labels(self.kind).set_to_current_time()
        if kind in ("ADDED", "MODIFIED"):
            self.upsert(obj, self.project(obj))
        elif kind == "DELETED":
            meta = obj.get("metadata") or {}
            _, namespace, name = store_coordinates(self.kind, meta.get("namespace", ""),
                                                   meta.get("name", ""))
            self.remove(namespace, name)
        return (obj.get("metadata") or {}).get("resourceVersion")

    # --- store + fan-out -----------------------------------------------------------------------
    def _field(self, obj: dict) -> str:
        meta = obj.get("metadata") or {}
        _, namespace, name = store_coordinates(self.kind, meta.get("namespace", ""),
                                               meta.get("name", ""))
        return f"{namespace}/{name}"

    def upsert(self, obj: dict, projection: dict) -> None:
        namespace, _, name = self._field(obj).partition("/")
        old = self.store.get(self.kind, namespace, name)
        if self.store.put(self.kind, namespace, name, projection):
            self._enqueue(affected_keys(self.kind, namespace, name, old, projection,
                                        self.store, app_label=self.app_label), False)

    def remove(self, namespace: str, name: str) -> None:
        old = self.store.delete(self.kind, namespace, name)
        if old is not None:
            self._enqueue(affected_keys(self.kind, namespace, name, old, None, self.store,
                                        app_label=self.app_label), True)

    def _enqueue(self, keys: list[str], urgent: bool) -> None:
        if keys:
            metrics.ENQUEUED.labels(self.kind).inc(len(keys))
            self.enqueue(keys, urgent)

    def _save(self, version: str, *, force: bool = False) -> None:
        # Persisting every event would double the Redis writes; once a second is plenty,
        # since replaying a second of events is harmless (the store drops no-op updates).
        now = time.monotonic()
        if force or now - self._last_saved > 1.0:
            self.store.set_resource_version(self.kind, version)
            self._last_saved = now

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
