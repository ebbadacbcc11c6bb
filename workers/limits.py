"""Cluster-wide limits on Contrail calls, shared by every worker process through Redis.

Celery's own `rate_limit` is per worker process; ckm must protect one Contrail API from all
of its workers together. `ContrailGate` is a context manager the Contrail transport enters
around every HTTP exchange: first a token bucket (calls per second, optional), then a
counting semaphore (calls in flight). Holders that vanish (a killed worker) expire after
`hold_timeout` seconds (one HTTP exchange's limit), so a crash cannot shrink the semaphore
for long. A caller waiting for a slot blocks on a wake-up list each release pushes to, rather
than polling Redis. The gate is also the fence (see workers.fencing): a run that no longer
holds its key in Redis (taken over, or Redis lost its data) is refused in the same Lua step
that would admit its call, and a run past its safe time is refused before and after waiting.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import redis

from workers import fencing
from workers.queue import PROCESSING

SEMAPHORE = "ckm:contrail:inflight"
BUCKET = "ckm:contrail:bucket"
PEAK = "ckm:contrail:inflight-peak"
WAKE = "ckm:contrail:released"

_NOW = "local t = redis.call('TIME'); local now = t[1] + t[2] / 1000000\n"

_ACQUIRE = _NOW + """
-- KEYS: semaphore, peak, the queue's processing hash. ARGV: token, cap, hold timeout s, the
-- calling run's key and token ('' outside a run). Returns 1 when acquired, 0 when full, -1
-- when the run no longer holds its key (taken over, or Redis lost it): it must stop.
if ARGV[4] ~= '' and redis.call('HGET', KEYS[3], ARGV[4]) ~= ARGV[5] then return -1 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
if held > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], held) end
return 1
"""

_TAKE_TOKEN = _NOW + """
-- KEYS: bucket. ARGV: rate per s, burst. Returns 0 when a token was taken, else ms to wait.
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], 3600)
return wait
"""


class ContrailGate:
    """Enter around one Contrail call: waits for a rate token and a free in-flight slot."""

    def __init__(self, client: redis.Redis, *, max_inflight: int, rate: float = 0.0,
                 hold_timeout: float = 35.0):
        self.redis, self.max_inflight, self.rate = client, max_inflight, rate
        self.hold_timeout = hold_timeout
        self._acquire = client.register_script(_ACQUIRE)
        self._take = client.register_script(_TAKE_TOKEN)

    def __call__(self) -> contextlib.AbstractContextManager:
        return self._slot()

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        run = fencing.current()
        fencing.check()
        if self.rate > 0:
            while wait_ms := int(self._take(keys=[BUCKET], args=[self.rate,
                                                                 max(1.0, self.rate)])):
                time.sleep(wait_ms / 1000)
        token = uuid.uuid4().hex
        owner = [run.key, run.token] if run is not None else ["", ""]
        while not (got := self._acquire(keys=[SEMAPHORE, PEAK, PROCESSING],
                                        args=[token, self.max_inflight, self.hold_timeout,
                                              *owner])):
            # woken by a release; the timeout covers a holder that died without one
            self.redis.blpop([WAKE], timeout=0.5)
        if got == -1:  # checked by Redis itself, in the same step that admits the call
            run.lost = True
            fencing.check()
        try:
            fencing.check()  # the waits above may have outlasted the lease
        except fencing.LeaseLost:
            self.redis.zrem(SEMAPHORE, token)
            raise
        try:
            yield
        finally:
            self.redis.pipeline(transaction=False).zrem(SEMAPHORE, token).lpush(WAKE, "1") \
                .ltrim(WAKE, 0, self.max_inflight - 1).execute()

    def in_flight(self) -> int:
        return int(self.redis.zcard(SEMAPHORE))

    def peak(self) -> int:
        return int(self.redis.get(PEAK) or 0)
