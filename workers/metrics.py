"""Prometheus series of the worker side (one registry per process; see `ckm worker`).

Per-process series (runs, calls, latencies) are summed across workers. Cluster-wide series
(queue depths, failed syncs, workers up) are exported by one process only, the current
sweeper (see `ClusterSeries`), so no query sums one number once per worker.
"""

import time
from collections import Counter as Tally

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

RECONCILES = Counter("ckm_reconciles_total", "Reconcile runs by key kind and outcome",
                     ["kind", "outcome"])
RECONCILE_SECONDS = Histogram("ckm_reconcile_seconds", "Time of one reconcile run", ["kind"],
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LATENCY = Histogram("ckm_sync_latency_seconds",
                    "Kubernetes change observed -> Contrail written, by key kind", ["kind"],
                    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
RESENT = Counter("ckm_keys_resent_total",
                 "Keys sent again because they stayed queued too long (lost messages)")
STALE_FINISHES = Counter("ckm_stale_finishes_total",
                         "Runs that ended after losing their lease (their outcome discarded)")
CONSUMING = Gauge("ckm_worker_consuming",
                  "0 when this worker had free threads and waiting work but took no message")


class ClusterSeries:
    """Cluster-wide gauges, as last measured by the sweeper, exported only while this process
    sweeps (a sweeper holds its lock for 2 s; a successor takes over within that)."""

    FRESH = 3.0

    def __init__(self) -> None:
        self.at = 0.0
        self.depths: dict[str, int] = {}
        self.failed_by_reason: dict[str, int] = {}
        self.workers_up = self.workers_consuming = 0

    def update(self, *, depths: dict[str, int], failed_by_reason: dict[str, int],
               workers_up: int, workers_consuming: int) -> None:
        self.depths, self.failed_by_reason = depths, failed_by_reason
        self.workers_up, self.workers_consuming = workers_up, workers_consuming
        self.at = time.monotonic()

    def collect(self):
        if time.monotonic() - self.at > self.FRESH:
            return
        depth = GaugeMetricFamily("ckm_queue_depth", "Keys by queue state (cluster-wide)",
                                  labels=["state"])
        for state, value in self.depths.items():
            depth.add_metric([state], value)
        yield depth
        yield GaugeMetricFamily("ckm_failed_syncs", "Keys recorded as failed syncs "
                                "(cluster-wide)", value=sum(self.failed_by_reason.values()))
        reasons = GaugeMetricFamily("ckm_failed_syncs_by_reason",
                                    "Failed syncs by the error's type (cluster-wide)",
                                    labels=["reason"])
        for reason, value in sorted(self.failed_by_reason.items()):
            reasons.add_metric([reason], value)
        yield reasons
        yield GaugeMetricFamily("ckm_workers_up", "Workers heard from in the last 30 s "
                                "(cluster-wide)", value=self.workers_up)
        yield GaugeMetricFamily("ckm_workers_consuming", "Workers up and taking messages "
                                "(cluster-wide)", value=self.workers_consuming)


def reason_of(error: str) -> str:
    """The reason label of a failed sync: its error's type ("BadInput: ..." -> BadInput)."""
    head = error.split(":", 1)[0].strip()
    return head if head.isidentifier() else "Other"


def failed_by_reason(errors) -> dict[str, int]:
    return dict(Tally(reason_of(error) for error in errors))


CLUSTER = ClusterSeries()
REGISTRY.register(CLUSTER)
