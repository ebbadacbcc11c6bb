"""The watcher process: win the Lease, then run one reflector per kind until told to stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import kubernetes.client

from tasks.fanout import APP_LABEL
from watcher import metrics
from watcher.kubeapi import KINDS, list_function
from watcher.leader import LeaseElector
from watcher.reflector import Reflector
from watcher.store import DesiredStore

log = logging.getLogger("ckm.watcher")
LEADER_KEY = "ckm:leader"


class Watcher:
    def __init__(self, client: kubernetes.client.ApiClient, store: DesiredStore,
                 enqueue: Callable[[list[str], bool], None], *,
                 bootstrap_keys: list[str], identity: str | None = None,
                 lease_namespace: str = "kube-system", lease_name: str = "ckm-watcher",
                 lease_seconds: int = 15, kinds: list[str] | None = None,
                 app_label: str = APP_LABEL):
        self.client, self.store, self.enqueue = client, store, enqueue
        self.bootstrap_keys = bootstrap_keys
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.elector = LeaseElector(kubernetes.client.CoordinationV1Api(client),
                                    namespace=lease_namespace, name=lease_name,
                                    identity=self.identity, lease_seconds=lease_seconds)
        self.renew_seconds = max(0.2, lease_seconds / 3)
        self.kinds = kinds or list(KINDS)
        self.app_label = app_label  # fan-out must name the app network the reconcilers use
        self.reflectors: list[Reflector] = []
        self.threads: list[threading.Thread] = []
        self.stop = threading.Event()
        self.last_tick = time.monotonic()

    # --- probes ----------------------------------------------------------------------------
    def healthy(self) -> bool:
        return time.monotonic() - self.last_tick < 3 * self.renew_seconds + 5

    def ready(self) -> bool:
        """A standby is ready; a leader once every kind has been listed."""
        return self.healthy() and (not self.elector.leader or all(
            self.store.resource_version(kind) is not None for kind in self.kinds))

    # --- loop ------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.last_tick = time.monotonic()
                leader = self.elector.step()
                metrics.LEADER.set(1 if leader else 0)
                if leader:  # for `ckm status`: who leads, seen without a Kubernetes call
                    self.store.redis.set(LEADER_KEY, self.identity,
                                         ex=max(2, int(self.renew_seconds * 3)))
                if leader and not self.reflectors:
                    self._start()
                elif not leader and self.reflectors:
                    log.warning("%s lost the lease; stopping", self.identity)
                    self._stop_reflectors()
                self.stop.wait(self.renew_seconds)
        finally:
            self._stop_reflectors()
            self.elector.release()
            metrics.LEADER.set(0)

    def _start(self) -> None:
        log.info("%s is the leader; watching %s", self.identity, ", ".join(self.kinds))
        self.enqueue(self.bootstrap_keys, True)
        for kind in self.kinds:
            reflector = Reflector(kind, list_function(self.client, kind), self.store,
                                  self.enqueue, app_label=self.app_label)
            thread = threading.Thread(target=reflector.run, name=f"reflector:{kind}",
                                      daemon=True)
            self.reflectors.append(reflector)
            self.threads.append(thread)
            thread.start()

    def _stop_reflectors(self) -> None:
        for reflector in self.reflectors:
            reflector.close()
        for thread in self.threads:
            thread.join(timeout=5)
        self.reflectors, self.threads = [], []
