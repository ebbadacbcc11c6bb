"""Kept-alive HTTP/1.1 connections, one per thread and server, on the standard library.

A worker makes four Contrail calls per pod from 16 threads; httpx spent 1.3-1.4 ms of client CPU
per call, `http.client` on a kept-alive connection 0.57 ms (docs/performance.md). Each thread
owns its connections, so no pool lock is taken per call. A connection the server closed while
idle is detected on its next use and replaced once, at once, without counting as a failure.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import ssl
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

# Raised by a kept-alive connection the server closed while it sat idle.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
         ConnectionAbortedError, http.client.CannotSendRequest, http.client.ResponseNotReady)


class Answer:
    """The parts of an HTTP response the client reads; the body is read whole."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: http.client.HTTPMessage, content: bytes):
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class ConnectionPerThread:
    """HTTP(S) connections to any of a few servers, one per (thread, server)."""

    def __init__(self, *, timeout: float, ca_file: str | None = None,
                 headers: dict[str, str] | None = None):
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._local = threading.local()
        self._every: list[http.client.HTTPConnection] = []  # for close(), from any thread
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def request(self, method: str, url: str, *, params: dict | None = None, json: Any = None,
                headers: dict[str, str] | None = None) -> Answer:
        """One exchange; OSError or http.client.HTTPException when the server cannot be reached
        or answers garbage (a timeout is an OSError too)."""
        parts = urlsplit(url)
        target = parts.path or "/"
        if params:
            target += "?" + urlencode(params)
        body = None if json is None else jsonlib.dumps(json, separators=(",", ":")).encode()
        sent = {**self.headers, **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        origin = f"{parts.scheme}://{parts.netloc}"
        conn, reused = self._connection(origin, parts)
        try:
            return self._exchange(conn, method, target, body, sent)
        except STALE:
            self._drop(origin)
            if not reused:
                raise
        # the server closed an idle connection: send once more on a new one
        conn, _ = self._connection(origin, parts)
        try:
            return self._exchange(conn, method, target, body, sent)
        except BaseException:
            self._drop(origin)
            raise

    def _exchange(self, conn, method, target, body, headers) -> Answer:
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
        except STALE:
            raise
        except BaseException:
            conn.close()  # a timeout or a half-read answer: this connection is unusable
            raise
        if response.will_close:
            conn.close()  # reopened on the next request
        return Answer(response.status, response.headers, content)

    def _connections(self) -> dict[str, http.client.HTTPConnection]:
        if os.getpid() != self._pid:  # a forked child must not share its parent's sockets
            self._local, self._every, self._pid = threading.local(), [], os.getpid()
        mine = getattr(self._local, "by_origin", None)
        if mine is None:
            mine = self._local.by_origin = {}
        return mine

    def _connection(self, origin: str, parts) -> tuple[http.client.HTTPConnection, bool]:
        mine = self._connections()
        conn = mine.get(origin)
        if conn is not None:
            return conn, conn.sock is not None
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout,
                                               context=self._ssl)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        mine[origin] = conn
        with self._lock:
            self._every.append(conn)
        return conn, False

    def _drop(self, origin: str) -> None:
        conn = self._connections().pop(origin, None)
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._every:
                    self._every.remove(conn)

    def close(self) -> None:
        with self._lock:
            every, self._every = self._every, []
        for conn in every:
            conn.close()
        self._local = threading.local()
