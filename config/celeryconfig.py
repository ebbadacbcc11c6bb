"""Celery options derived from Settings: one place decides how every worker behaves.

Why these values: tasks carry keys and are idempotent, so a task is acknowledged only after it
ran (`acks_late`) and given back when its worker dies (`reject_on_worker_lost`); each worker
process takes one message at a time (`prefetch 1`) so a slow key never hides others behind it.
"""

from __future__ import annotations

from config.settings import Settings

# Long enough for any single reconcile; a message unacked for longer is redelivered.
VISIBILITY_TIMEOUT = 3600


def celery_options(settings: Settings) -> dict:
    return {
        "broker_url": settings.broker_url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        # Task events cost every run several Redis publishes: off until a monitor asks for
        # them (Flower broadcasts enable_events while it runs; `ckm flower` disables on exit).
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        # Queues are consumed in the order a worker lists them: urgent first, resync last.
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT,
                                     "queue_order_strategy": "priority",
                                     # used by a sentinel:// broker URL, ignored otherwise
                                     "master_name": settings.redis_sentinel_master},
        "beat_schedule": {"resync": {"task": "ckm.resync",
                                     "schedule": settings.resync_interval,
                                     "options": {"queue": "ckm.resync"}}}
        if settings.resync_interval else {},
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
    }
