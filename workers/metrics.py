"""Prometheus series of the worker side (one registry per process; see `ckm worker`)."""

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("ckm_reconciles_total", "Reconcile runs by key kind and outcome",
                     ["kind", "outcome"])
RECONCILE_SECONDS = Histogram("ckm_reconcile_seconds", "Time of one reconcile run", ["kind"],
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LATENCY = Histogram("ckm_sync_latency_seconds",
                    "Kubernetes change observed -> Contrail written, by key kind", ["kind"],
                    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
FAILED_SYNCS = Gauge("ckm_failed_syncs", "Keys currently recorded as failed syncs")
QUEUE_DEPTH = Gauge("ckm_queue_depth", "Keys by queue state", ["state"])
RESENT = Counter("ckm_keys_resent_total",
                 "Keys sent again because they stayed queued too long (lost messages)")
STALE_FINISHES = Counter("ckm_stale_finishes_total",
                         "Runs that ended after losing their lease (their outcome discarded)")
CONSUMING = Gauge("ckm_worker_consuming",
                  "0 when this worker had free threads and waiting work but took no message")
