"""Per-process resources of a worker: settings, Redis, the queue, the store, the Contrail client.

Built once per process on first use and shared by its threads (every member is thread-safe).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import kubernetes.client
import redis

from config.loading import load
from config.settings import Settings
from contrail.client import ContrailClient
from watcher.store import DesiredStore
from workers.failures import Failures
from workers.limits import ContrailGate
from workers.queue import KeyQueue
from workers.redis_conn import connect


@dataclass
class Context:
    settings: Settings
    # Set by the process that runs reconciles: enqueue keys (dependents of a finished sync).
    dispatch: Callable[[list[str]], None] | None = None

    def enqueue(self, keys: list[str]) -> None:
        if keys and self.dispatch is not None:
            self.dispatch(keys)

    @cached_property
    def kube(self) -> kubernetes.client.ApiClient | None:
        """The Kubernetes API, for events and status write-back; None when not configured."""
        if not (self.settings.kube_url or self.settings.kubeconfig):
            return None
        from watcher.kubeapi import api_client

        return api_client(self.settings)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings.broker_url, master=self.settings.redis_sentinel_master)

    @cached_property
    def queue(self) -> KeyQueue:
        return KeyQueue(self.redis, lease_ms=int(self.settings.lease_seconds * 1000),
                        settle_ms=int(self.settings.settle_seconds * 1000),
                        resend_ms=int(self.settings.resend_seconds * 1000))

    @cached_property
    def failures(self) -> Failures:
        return Failures(self.redis)

    @cached_property
    def store(self) -> DesiredStore:
        return DesiredStore(self.redis)

    @cached_property
    def gate(self) -> ContrailGate:
        return ContrailGate(self.redis, max_inflight=self.settings.contrail_max_inflight,
                            rate=self.settings.contrail_rate_limit,
                            hold_timeout=self.settings.contrail_timeout + 5)

    @cached_property
    def contrail(self) -> ContrailClient:
        return ContrailClient.from_settings(self.settings, gate=self.gate)


_lock = threading.Lock()
_context: Context | None = None


def current() -> Context:
    """This process's context, from the environment and CKM_CONFIG on first use."""
    global _context
    with _lock:
        if _context is None:
            loaded = load()
            for warning in loaded.warnings:
                logging.getLogger(__name__).warning("%s", warning)
            _context = Context(loaded.settings)
        return _context


def install(context: Context | None) -> None:
    """Use this context in this process (`ckm worker` after parsing its flags; tests)."""
    global _context
    with _lock:
        _context = context
