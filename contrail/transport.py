"""HTTP to one or more Contrail API servers: failover, Keystone, retries, metrics.

Every call goes through `Transport.request`. Transient failures (connection errors, timeouts,
502/503/504) are retried with exponential backoff and jitter, moving to the next API server,
until `retry_seconds` have passed; 4xx answers are never retried. A 401 refreshes the Keystone
token once. An optional `gate` (a context-manager factory) wraps each HTTP exchange so the engine
can enforce a cluster-wide concurrency cap and rate limit.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
from prometheus_client import Counter, Histogram
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from contrail.connections import Answer, ConnectionPerThread
from contrail.errors import TRANSIENT_STATUSES, PermissionDenied, Unavailable, error_for

CALLS = Counter("ckm_contrail_calls_total", "Contrail API calls by outcome",
                ["method", "type", "status"])
LATENCY = Histogram("ckm_contrail_call_seconds", "Contrail API call latency",
                    ["method", "type"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

Gate = Callable[[], AbstractContextManager]


class KeystoneAuth:
    """Keystone v3 password authentication; the token is fetched lazily and on demand."""

    def __init__(self, url: str, user: str, password: str, project: str,
                 domain: str = "Default", verify: Any = True, timeout: float = 10):
        self.url = url if url.rstrip("/").endswith("/auth/tokens") else (
            url.rstrip("/") + ("/auth/tokens" if url.rstrip("/").endswith("/v3")
                               else "/v3/auth/tokens"))
        self._body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": domain}}}}}
        self._verify, self._timeout = verify, timeout
        self._token: str | None = None
        self._lock = threading.Lock()

    def token(self, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None:
                self._token = self._fetch()
            return self._token

    def _fetch(self) -> str:
        try:
            answer = httpx.post(self.url, json=self._body, verify=self._verify,
                                timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise Unavailable(f"keystone unreachable: {exc}", method="POST", url=self.url) from exc
        token = answer.headers.get("X-Subject-Token")
        if answer.status_code not in (200, 201) or not token:
            raise PermissionDenied(f"keystone refused the credentials: {answer.text.strip()}",
                                   status=answer.status_code, method="POST", url=self.url)
        return token


class Transport:
    """Kept-alive HTTP to a list of API servers with failover and bounded retries."""

    def __init__(self, urls: list[str], *, auth: KeystoneAuth | None = None,
                 timeout: float = 30.0, retry_seconds: float = 60.0, ca_file: str | None = None,
                 gate: Gate | None = None):
        if not urls:
            raise ValueError("at least one Contrail API URL is needed")
        self.urls = [u.rstrip("/") for u in urls]
        self.auth, self.retry_seconds = auth, retry_seconds
        self.gate = gate or contextlib.nullcontext
        self._http = ConnectionPerThread(timeout=timeout, ca_file=ca_file)
        # Spread processes over the servers; fail over to the next one on transient errors.
        self._current = itertools.count(os.getpid() % len(self.urls))
        self._index = next(self._current) % len(self.urls)

    def close(self) -> None:
        self._http.close()

    @property
    def base_url(self) -> str:
        return self.urls[self._index]

    def _fail_over(self) -> None:
        if len(self.urls) > 1:
            self._index = next(self._current) % len(self.urls)

    def request(self, method: str, path: str, *, kind: str, params: dict | None = None,
                json: Any = None) -> Answer:
        """Send one API call; return the 2xx response or raise a ContrailError."""
        retrying = Retrying(
            stop=stop_after_delay(self.retry_seconds),
            wait=wait_random_exponential(multiplier=0.05, max=5.0),  # full jitter
            retry=retry_if_exception(lambda exc: isinstance(exc, Unavailable)),
            reraise=True)
        for attempt in retrying:
            with attempt:
                return self._once(method, path, kind, params, json)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _once(self, method, path, kind, params, body, refreshed: bool = False) -> Answer:
        url = self.base_url + path
        headers = {"X-Auth-Token": self.auth.token(refresh=refreshed)} if self.auth else None
        started = time.perf_counter()
        try:
            with self.gate():
                answer = self._http.request(method, url, params=params, json=body,
                                            headers=headers)
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
            CALLS.labels(method, kind, "error").inc()
            self._fail_over()
            raise Unavailable(f"{type(exc).__name__}: {exc}", method=method, url=url) from exc
        LATENCY.labels(method, kind).observe(time.perf_counter() - started)
        CALLS.labels(method, kind, str(answer.status_code)).inc()
        if answer.status_code == 401 and self.auth and not refreshed:
            return self._once(method, path, kind, params, body, refreshed=True)
        if answer.status_code >= 400:
            if answer.status_code in TRANSIENT_STATUSES:
                self._fail_over()
            raise error_for(answer.status_code, method, url, answer.text)
        return answer
