"""Prometheus series of the watcher."""

from prometheus_client import Counter, Gauge

EVENTS = Counter("ckm_watch_events_total", "Watch events by kind and type", ["kind", "type"])
RELISTS = Counter("ckm_watch_relists_total", "Full lists by kind", ["kind"])
GONE = Counter("ckm_watch_gone_total", "410 Gone answers (history compacted) by kind", ["kind"])
ENQUEUED = Counter("ckm_watch_enqueued_keys_total", "Keys enqueued by the watcher", ["kind"])
LAST_EVENT = Gauge("ckm_watch_last_event_timestamp_seconds",
                   "When the last event of a kind was handled (watch lag = now - this)", ["kind"])
LEADER = Gauge("ckm_watcher_leader", "1 while this watcher holds the lease")
