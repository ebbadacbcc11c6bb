"""The watcher process: win the Lease, then run one reflector per kind until told to stop.

Each leadership claims a new term in Redis; the store refuses writes of an older term, so a
deposed watcher whose reflectors have not stopped yet (a hung call) cannot write over the new
leader's. Reflectors are stopped within a bounded time; a thread that does not stop in time
is abandoned to the fence.
"""

from __future__ import annotations

import json
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
STREAMS_KEY = "ckm:streams"  # kind -> the leader's view of its watch stream, for `ckm status`


class Watcher:
    def __init__(self, client: kubernetes.client.ApiClient, store: DesiredStore,
                 enqueue: Callable[[list[str], bool], None], *,
                 bootstrap_keys: list[str], identity: str | None = None,
                 lease_namespace: str = "kube-system", lease_name: str = "ckm-watcher",
                 lease_seconds: int = 15, kinds: list[str] | None = None,
                 app_label: str = APP_LABEL, on_bad_object=None,
                 unhealthy_after: float = 60.0):
        self.client, self.store, self.enqueue = client, store, enqueue
        self.bootstrap_keys = bootstrap_keys
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.elector = LeaseElector(kubernetes.client.CoordinationV1Api(client),
                                    namespace=lease_namespace, name=lease_name,
                                    identity=self.identity, lease_seconds=lease_seconds)
        self.renew_seconds = max(0.2, lease_seconds / 3)
        self.kinds = kinds or list(KINDS)
        self.app_label = app_label  # fan-out must name the app network the reconcilers use
        self.on_bad_object = on_bad_object
        self.unhealthy_after = unhealthy_after  # a stream failing this long: not ready
        self.term: int | None = None
        self.reflectors: list[Reflector] = []
        self.threads: list[threading.Thread] = []
        self.stop = threading.Event()
        self.last_tick = time.monotonic()

    # --- probes ----------------------------------------------------------------------------
    def healthy(self) -> bool:
        return time.monotonic() - self.last_tick < 3 * self.renew_seconds + 5

    def ready(self) -> bool:
        """A standby is ready; a leader once every kind is listed and no stream keeps
        failing."""
        return self.healthy() and (not self.elector.leader or (
            bool(self.reflectors) and all(r.listed for r in self.reflectors)
            and not self.failing()))

    def failing(self) -> dict[str, str]:
        """Kinds whose stream has failed for longer than `unhealthy_after`, with the error."""
        now = time.monotonic()
        return {r.kind: r.last_error for r in self.reflectors
                if r.failing_since is not None and now - r.failing_since > self.unhealthy_after}

    def _mark_complete(self) -> None:
        """The store is complete once every kind is listed under this leadership."""
        reflectors = self.reflectors
        if (len(reflectors) == len(self.kinds) and all(r.listed for r in reflectors)
                and not self.stop.is_set()):
            held = {r.kind: r.writer.generation for r in reflectors}
            if all(held.values()):
                self.store.mark_complete(held)

    # --- loop ------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.last_tick = time.monotonic()
                leader = self.elector.step()
                metrics.LEADER.set(1 if leader else 0)
                try:
                    self._tend(leader)
                except Exception as exc:  # Redis down: the next round tries again
                    log.warning("watcher round failed: %s: %s", type(exc).__name__, exc)
                self.stop.wait(self.renew_seconds)
        finally:
            self._stop_reflectors()
            self.elector.release()
            metrics.LEADER.set(0)

    def _tend(self, leader: bool) -> None:
        if any(r.stop.is_set() for r in self.reflectors) or any(
                not t.is_alive() for t in self.threads):  # fenced by a newer term, or died
            self._stop_reflectors()
            return
        if leader and not self.reflectors:
            self._start()
        elif not leader and self.reflectors:
            log.warning("%s lost the lease; stopping", self.identity)
            self._stop_reflectors()
        if leader:  # for `ckm status`: who leads, seen without a Kubernetes call
            self.store.redis.set(LEADER_KEY, self.identity,
                                 ex=max(2, int(self.renew_seconds * 3)))
            failing = self.failing()
            for reflector in self.reflectors:
                reflector.verify_store()
                metrics.STREAM_HEALTHY.labels(reflector.kind).set(
                    0 if reflector.kind in failing else 1)
            self._report_streams(failing)
            self._mark_complete()

    def _report_streams(self, failing: dict[str, str]) -> None:
        streams = {r.kind: json.dumps({
            "healthy": r.kind not in failing, "listed": r.listed, "events": r.events,
            "relists": r.relists, "last_event_at": r.last_event_at,
            "error": r.last_error if r.failing_since is not None else ""})
            for r in self.reflectors}
        if not streams:
            return
        self.store.redis.pipeline(transaction=True).delete(STREAMS_KEY).hset(
            STREAMS_KEY, mapping=streams).expire(
            STREAMS_KEY, max(2, int(self.renew_seconds * 3))).execute()

    def _start(self) -> None:
        self.term = self.store.claim_term()
        if self.store.ensure_indexes():  # before any write of this leadership
            log.info("rebuilt the store's index sets")
        log.info("%s is the leader (term %d); watching %s", self.identity, self.term,
                 ", ".join(self.kinds))
        self.reflectors = [
            Reflector(kind, list_function(self.client, kind), self.store, self.enqueue,
                      app_label=self.app_label, term=self.term,
                      on_bad_object=self.on_bad_object, on_listed=self._mark_complete)
            for kind in self.kinds]
        self.threads = [threading.Thread(target=r.run, name=f"reflector:{r.kind}", daemon=True)
                        for r in self.reflectors]
        for thread in self.threads:
            thread.start()
        try:
            self.enqueue(self.bootstrap_keys, True)
        except Exception as exc:  # resync and the next leadership send it again
            log.warning("could not enqueue the bootstrap keys: %s", exc)

    def _stop_reflectors(self, timeout: float = 5.0) -> None:
        for reflector in self.reflectors:
            reflector.close()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():  # stuck in a call: the term fences its writes
                log.warning("%s did not stop in %.0fs; abandoned", thread.name, timeout)
        self.reflectors, self.threads = [], []
