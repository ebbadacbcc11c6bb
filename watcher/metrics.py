"""Prometheus series of the watcher."""

from prometheus_client import Counter, Gauge

EVENTS = Counter("ckm_watch_events_total", "Watch events by kind and type", ["kind", "type"])
RELISTS = Counter("ckm_watch_relists_total", "Full lists by kind", ["kind"])
GONE = Counter("ckm_watch_gone_total", "410 Gone answers (history compacted) by kind", ["kind"])
ENQUEUED = Counter("ckm_watch_enqueued_keys_total", "Keys enqueued by the watcher", ["kind"])
LAST_EVENT = Gauge("ckm_watch_last_event_timestamp_seconds",
                   "When the last event of a kind was handled (watch lag = now - this)", ["kind"])
LEADER = Gauge("ckm_watcher_leader", "1 while this watcher holds the lease")
BAD_OBJECTS = Counter("ckm_watch_bad_objects_total",
                      "Events whose object could not be handled (each is a failed sync)", ["kind"])
STREAM_ERRORS = Counter("ckm_watch_stream_errors_total",
                        "Watch or list failures of a kind (the stream resumes)", ["kind"])
STORE_LOST = Counter("ckm_watch_store_lost_total",
                     "Relists because Redis no longer held the store (data loss)", ["kind"])
STREAM_HEALTHY = Gauge("ckm_watch_stream_healthy",
                       "0 while a kind's watch keeps failing", ["kind"])
