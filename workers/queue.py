"""The keyed work queue's promises, kept in Redis so they hold across every worker process.

The client-go workqueue guarantees, here for Celery:
  - Stingy: a key queued twice is queued once (`queued` set); only the first enqueue sends a
    Celery message.
  - Exclusive: a key never runs on two workers at once (`processing` hash of key -> token,
    with a lease in `leases` that the runner renews while it works).
  - Dirty re-run: a key enqueued while it runs is marked `dirty` and sent again when the
    running reconcile finishes, so the last change is never missed.
  - Nothing lost: a worker that dies leaves an expired lease; the sweeper hands the key out
    again (counting it as an attempt, so a key that kills workers cannot loop for ever).
  - Settling: a key that changed while it ran is "hot"; it waits `settle_ms` in `settling`
    (enqueues meanwhile are absorbed) so a burst of changes costs a few runs, not one per run.
  - Delays: retries wait in the `delayed` sorted set (score = due time), not in Celery
    countdowns, which the Redis transport redelivers in loops past its visibility timeout.
Each transition is one Lua script, so it is atomic against every other process.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

PREFIX = "ckm:q:"
QUEUED, PROCESSING, LEASES, DIRTY, DELAYED, SETTLING = (
    PREFIX + "queued", PREFIX + "processing", PREFIX + "leases", PREFIX + "dirty",
    PREFIX + "delayed", PREFIX + "settling")
KEYS = [QUEUED, PROCESSING, LEASES, DIRTY, DELAYED, SETTLING]

# All scripts get the six structure names as KEYS in the order above.
_NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

_ENQUEUE = _NOW + """
-- ARGV: keys to enqueue. Returns the keys that need a Celery message now.
local send = {}
for _, key in ipairs(ARGV) do
  redis.call('ZREM', KEYS[5], key)  -- a change runs now, not after a pending backoff
  if redis.call('HEXISTS', KEYS[2], key) == 1 then
    redis.call('SADD', KEYS[4], key)
  elseif not redis.call('ZSCORE', KEYS[6], key)
         and redis.call('ZADD', KEYS[1], 'NX', now, key) == 1 then
    table.insert(send, key)
  end
end
return send
"""

_BEGIN = _NOW + """
-- ARGV: key, token, lease ms. Returns 1 to run, 0 if another worker holds a live lease.
local key = ARGV[1]
redis.call('ZREM', KEYS[1], key)
local deadline = redis.call('ZSCORE', KEYS[3], key)
if redis.call('HEXISTS', KEYS[2], key) == 1 and deadline and tonumber(deadline) > now then
  redis.call('SADD', KEYS[4], key)
  return 0
end
redis.call('HSET', KEYS[2], key, ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), key)
return 1
"""

_RENEW = _NOW + """
-- ARGV: key, token, lease ms. Returns 1 if the lease is still ours.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""

_FINISH = _NOW + """
-- ARGV: key, token, retry delay ms (-1 = no retry), settle ms. Returns 1 if the key must be
-- sent now, 0 if not, -1 if the lease had been lost (someone else took the key over).
local key = ARGV[1]
if redis.call('HGET', KEYS[2], key) ~= ARGV[2] then return -1 end
redis.call('HDEL', KEYS[2], key)
redis.call('ZREM', KEYS[3], key)
if redis.call('SREM', KEYS[4], key) == 1 then
  if tonumber(ARGV[4]) > 0 then
    redis.call('ZADD', KEYS[6], now + tonumber(ARGV[4]), key)
    return 0
  end
  redis.call('ZADD', KEYS[1], 'NX', now, key)
  return 1
end
local delay = tonumber(ARGV[3])
if delay >= 0 then redis.call('ZADD', KEYS[5], now + delay, key) end
return 0
"""

_DUE = _NOW + """
-- ARGV: max keys. Moves due retries to the queue; returns {keys to send, expired leases}.
local send, expired = {}, {}
for _, set in ipairs({KEYS[6], KEYS[5]}) do
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, ARGV[1])) do
    redis.call('ZREM', set, key)
    if redis.call('HEXISTS', KEYS[2], key) == 1 then
      redis.call('SADD', KEYS[4], key)
    elseif redis.call('ZADD', KEYS[1], 'NX', now, key) == 1 then
      table.insert(send, key)
    end
  end
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, ARGV[1])) do
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  redis.call('SREM', KEYS[4], key)
  table.insert(expired, key)
end
return {send, expired}
"""


@dataclass(frozen=True)
class Depths:
    queued: int
    processing: int
    delayed: int

    @property
    def idle(self) -> bool:
        return not (self.queued or self.processing or self.delayed)


class KeyQueue:
    """The Redis half of the queue; the Celery half only carries the key strings."""

    def __init__(self, client: redis.Redis, *, lease_ms: int = 60_000, settle_ms: int = 0):
        self.redis, self.lease_ms, self.settle_ms = client, lease_ms, settle_ms
        register = client.register_script
        self._enqueue, self._begin, self._renew, self._finish, self._due = (
            register(_ENQUEUE), register(_BEGIN), register(_RENEW), register(_FINISH),
            register(_DUE))

    def enqueue(self, keys: list[str]) -> list[str]:
        """Mark keys as needing work; returns those that need a Celery message now."""
        return [_text(k) for k in self._enqueue(keys=KEYS, args=keys)] if keys else []

    def begin(self, key: str, token: str) -> bool:
        """Take the key for this run; False when another live run holds it (it is made dirty)."""
        return bool(self._begin(keys=KEYS, args=[key, token, self.lease_ms]))

    def renew(self, key: str, token: str) -> bool:
        return bool(self._renew(keys=KEYS, args=[key, token, self.lease_ms]))

    def finish(self, key: str, token: str, *, retry_in: float | None = None) -> int:
        """Release the key. 1: send it again now (it changed while running); 0: nothing to
        send (maybe scheduled for a retry); -1: the lease had been lost to another run."""
        delay = -1 if retry_in is None else int(retry_in * 1000)
        return int(self._finish(keys=KEYS, args=[key, token, delay, self.settle_ms]))

    def due(self, limit: int = 1000) -> tuple[list[str], list[str]]:
        """(keys whose retry is due and need sending, keys whose worker died)."""
        send, expired = self._due(keys=KEYS, args=[limit])
        return [_text(k) for k in send], [_text(k) for k in expired]

    def stale_queued(self, older_than: float) -> list[str]:
        """Keys queued for longer than `older_than` seconds (their message may have been lost
        with a crashed producer); their clock restarts, so each is resent once per period."""
        now = self._now_ms()
        keys = [_text(k) for k in self.redis.zrangebyscore(QUEUED, "-inf",
                                                            now - older_than * 1000)]
        if keys:
            self.redis.zadd(QUEUED, dict.fromkeys(keys, now), xx=True)
        return keys

    def schedule(self, key: str, seconds: float) -> None:
        """Run `key` again in `seconds` (a retry decided outside a run)."""
        self.redis.zadd(DELAYED, {key: self._now_ms() + seconds * 1000})

    def _now_ms(self) -> float:
        seconds, micros = self.redis.time()  # the scripts' clock, not this host's
        return seconds * 1000 + micros / 1000

    def forget_delay(self, key: str) -> None:
        self.redis.pipeline().zrem(DELAYED, key).zrem(SETTLING, key).execute()

    def depths(self) -> Depths:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(QUEUED).hlen(PROCESSING).zcard(DELAYED).zcard(SETTLING)
        queued, processing, delayed, settling = pipe.execute()
        return Depths(queued, processing, delayed + settling)

    def delayed(self) -> dict[str, float]:
        """Key -> seconds until its retry."""
        now = self._now_ms()
        return {_text(k): max(0.0, (score - now) / 1000)
                for zset in (SETTLING, DELAYED)
                for k, score in self.redis.zrange(zset, 0, -1, withscores=True)}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
