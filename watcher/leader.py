"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several watchers may run; the one holding the Lease is active. The holder renews it every
`renew_seconds`; a standby takes over once it has seen the same record unchanged for
`lease_seconds` by its own clock (never comparing clocks across hosts). Optimistic
concurrency (resourceVersion) makes two standbys racing for an expired lease safe.

Every Lease call has a request timeout, and any failure (API error, timeout, connection
reset) only costs this round: a leader stays leader while its last successful renewal is
younger than `renew_deadline` (two thirds of the lease, as client-go), then steps down, well
before a standby may take over.
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
        self.renew_deadline = lease_seconds * 2 / 3
        self._renewed_at = 0.0  # monotonic time before the last successful renewal was sent
        self.timeout = max(1.0, lease_seconds / 5)  # per Lease call

    def step(self) -> bool:
        """Try to acquire or renew once; returns whether we hold the lease now."""
        started = time.monotonic()
        try:
            self.leader = self._step()
            if self.leader:
                self._renewed_at = started
        except Exception as exc:  # keep electing through any transient failure
            if isinstance(exc, ApiException) and exc.status == 409:
                self.leader = False  # another candidate won the race; not an error
            else:
                log.warning("lease %s/%s: %s: %s", self.namespace, self.name,
                            type(exc).__name__, getattr(exc, "reason", None) or exc)
                self.leader = self.leader and (time.monotonic() - self._renewed_at
                                               < self.renew_deadline)
        return self.leader

    def _step(self) -> bool:
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace,
                                                   _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.api.create_namespaced_lease(self.namespace, V1Lease(
                metadata=V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=self._spec(transitions=0)), _request_timeout=self.timeout)
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
        self.api.replace_namespaced_lease(self.name, self.namespace, lease,
                                          _request_timeout=self.timeout)
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
            lease = self.api.read_namespaced_lease(self.name, self.namespace,
                                                   _request_timeout=self.timeout)
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self.api.replace_namespaced_lease(self.name, self.namespace, lease,
                                                  _request_timeout=self.timeout)
        except Exception as exc:
            log.info("could not release the lease: %s", exc)
        self.leader = False
