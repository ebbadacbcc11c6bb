"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several watchers may run; the one holding the Lease is active. The holder renews it every
`renew_seconds`; a standby takes over once it has seen the same record unchanged for
`lease_seconds` by its own clock (never comparing clocks across hosts). Optimistic
concurrency (resourceVersion) makes two standbys racing for an expired lease safe.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from kubernetes.client import CoordinationV1Api, V1Lease, V1LeaseSpec, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("ckm.leader")


def _now() -> datetime:
    return datetime.now(UTC)


class LeaseElector:
    def __init__(self, api: CoordinationV1Api, *, namespace: str, name: str, identity: str,
                 lease_seconds: int = 15):
        self.api, self.namespace, self.name = api, namespace, name
        self.identity, self.lease_seconds = identity, lease_seconds
        self._observed: tuple | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self.leader = False

    def step(self) -> bool:
        """Try to acquire or renew once; returns whether we hold the lease now."""
        try:
            self.leader = self._step()
        except ApiException as exc:
            if exc.status != 409:  # 409: another candidate won the race; not an error
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc.reason)
            self.leader = False
        return self.leader

    def _step(self) -> bool:
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.api.create_namespaced_lease(self.namespace, V1Lease(
                metadata=V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=self._spec(transitions=0)))
            return True
        spec = lease.spec or V1LeaseSpec()
        record = (spec.holder_identity, spec.renew_time)
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        if spec.holder_identity == self.identity:
            lease.spec = self._spec(transitions=spec.lease_transitions or 0,
                                    acquired=spec.acquire_time)
        elif (spec.holder_identity and
              time.monotonic() - self._observed_at < (spec.lease_duration_seconds
                                                      or self.lease_seconds)):
            return False  # someone else holds a live lease
        else:
            log.info("taking over lease %s/%s from %s", self.namespace, self.name,
                     spec.holder_identity)
            lease.spec = self._spec(transitions=(spec.lease_transitions or 0) + 1)
        self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        return True

    def _spec(self, *, transitions: int, acquired: datetime | None = None) -> V1LeaseSpec:
        now = _now()
        return V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=self.lease_seconds,
                           acquire_time=acquired or now, renew_time=now,
                           lease_transitions=transitions)

    def release(self) -> None:
        """Give the lease up on a clean shutdown so a standby takes over at once."""
        if not self.leader:
            return
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            log.info("could not release the lease: %s", exc.reason)
        self.leader = False
