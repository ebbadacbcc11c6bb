"""One way to connect to Redis for every ckm process: a plain URL or Redis Sentinel.

`redis://host:6379/0` connects directly. `sentinel://h1:26379;sentinel://h2:26379/0` (Celery's
own spelling for a Sentinel broker) asks the sentinels for the current master of
`redis_sentinel_master`, so a failover moves every ckm process with it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")


def sentinel_hosts(url: str) -> tuple[list[tuple[str, int]], int]:
    """([(host, port)...], db) of a sentinel:// URL list."""
    hosts, db = [], 0
    for part in url.split(";"):
        parsed = urlsplit(part.strip())
        hosts.append((parsed.hostname or "127.0.0.1", parsed.port or 26379))
        if parsed.path.strip("/").isdigit():
            db = int(parsed.path.strip("/"))
    return hosts, db


def connect(url: str, *, master: str = "mymaster", decode: bool = True) -> redis.Redis:
    if not is_sentinel(url):
        # Timeouts: a Redis that hangs must fail a call, not freeze a worker or the watcher.
        return redis.Redis.from_url(url, decode_responses=decode, health_check_interval=30,
                                    socket_timeout=10, socket_connect_timeout=5)
    hosts, db = sentinel_hosts(url)
    return Sentinel(hosts, socket_timeout=5).master_for(master, db=db, decode_responses=decode)
