"""The keyed work queue's promises, kept in Redis so they hold across every worker process.

The client-go workqueue guarantees, here for Celery:
  - Stingy: a key queued twice is queued once (`queued` zset); only the first enqueue sends a
    Celery message. A message runs its key only if the key is still queued, so a duplicate
    message (a resend, a redelivery after a worker died) runs nothing.
  - Never stalled: a message can be lost (a broker blip after the key was marked, a worker
    killed holding it, Redis failing over). A key queued for longer than `resend_ms` is sent
    again, at doubling intervals; whichever of its messages comes first runs it, the others
    are dropped.
  - Priority follows the latest need: a key waiting in the resync lane that changes (a delete,
    an edit) is sent again on its own lane; the resync message becomes a duplicate.
  - Exclusive: a key never runs on two workers at once (`processing` hash of key -> token,
    with a lease in `leases` that the runner renews while it works). A run that lost its lease
    is fenced by the engine, and its `finish` changes nothing.
  - Dirty re-run: a key enqueued while it runs is marked `dirty` and sent again when the
    running reconcile finishes, so the last change is never missed.
  - Nothing lost: a worker that dies leaves an expired lease; the sweeper hands the key out
    again (counting it as an attempt, so a key that kills workers cannot loop for ever).
  - Settling: a key that changed while it ran is "hot"; it waits `settle_ms` in `settling`
    (enqueues meanwhile are absorbed) so a burst of changes costs a few runs, not one per run.
  - Delays: retries wait in the `delayed` sorted set (score = due time), not in Celery
    countdowns, which the Redis transport redelivers in loops past its visibility timeout.
  - Store first: no key runs while the desired-state store is incomplete (Redis lost it and
    the watcher is listing again); such keys wait a second in `delayed`.
Each transition is one Lua script, so it is atomic against every other process.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from watcher.store import COMPLETE, OUTBOX, URGENT_OUTBOX

PREFIX = "ckm:q:"
QUEUED, PROCESSING, LEASES, DIRTY, DELAYED, SETTLING, LANES, RESENDS = (
    PREFIX + "queued", PREFIX + "processing", PREFIX + "leases", PREFIX + "dirty",
    PREFIX + "delayed", PREFIX + "settling", PREFIX + "lanes", PREFIX + "resends")
# The queued keys whose message went to the resync lane: how full that lane is, so a resync
# pass hands out keys only as fast as the workers take them (see workers.resync).
RESYNCING = PREFIX + "resyncing"
SINCE = PREFIX + "since"  # key -> when the change it waits for was first seen (sync latency)
KEYS = [QUEUED, PROCESSING, LEASES, DIRTY, DELAYED, SETTLING, LANES, RESENDS, OUTBOX,
        URGENT_OUTBOX, COMPLETE, RESYNCING, SINCE]

# Lanes, most urgent first: the Celery queue a key's message went to.
URGENT, NORMAL, RESYNC = 0, 1, 2

# Outcomes of begin().
BUSY, RUN, STORE_INCOMPLETE, DUPLICATE = 0, 1, 2, 3

# All scripts get the structure names as KEYS in the order above; queued scores are the time
# a key's message is due to be resent if it has not run by then.
_NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

_ENQUEUE = _NOW + """
-- ARGV: lane, resend ms, mark (1: a change, timed from now for the sync latency), keys...
-- Returns the keys that need a Celery message now.
local lane, resend = tonumber(ARGV[1]), tonumber(ARGV[2])
local send = {}
local since = string.format('%.3f', now / 1000)
for i = 4, #ARGV do
  local key = ARGV[i]
  if ARGV[3] == '1' then redis.call('HSETNX', KEYS[13], key, since) end
  redis.call('ZREM', KEYS[9], key)
  redis.call('ZREM', KEYS[10], key)
  redis.call('ZREM', KEYS[5], key)  -- a change runs now, not after a pending backoff
  if redis.call('HEXISTS', KEYS[2], key) == 1 then
    redis.call('SADD', KEYS[4], key)
  elseif not redis.call('ZSCORE', KEYS[6], key) then
    if redis.call('ZADD', KEYS[1], 'NX', now + resend, key) == 1 then
      redis.call('HSET', KEYS[7], key, lane)
      if lane == 2 then redis.call('SADD', KEYS[12], key) end
      table.insert(send, key)
    elseif lane < tonumber(redis.call('HGET', KEYS[7], key) or '9') then
      redis.call('HSET', KEYS[7], key, lane)  -- more urgent than the message it waits for
      redis.call('SREM', KEYS[12], key)
      table.insert(send, key)
    end
  end
end
return send
"""

_BEGIN = _NOW + """
-- ARGV: key, token, lease ms. Returns 1 to run, 0 if another worker holds a live lease (the
-- key is made dirty), 2 if the store is incomplete (retried in a second), 3 for a message
-- whose key is not queued (a duplicate: its key already ran or runs).
local key = ARGV[1]
if redis.call('ZREM', KEYS[1], key) == 0 then return 3 end
redis.call('HDEL', KEYS[7], key)
redis.call('SREM', KEYS[12], key)
redis.call('HDEL', KEYS[8], key)
if redis.call('EXISTS', KEYS[11]) == 0 then
  redis.call('ZADD', KEYS[5], now + 1000, key)
  return 2
end
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
-- ARGV: key, token, retry delay ms (-1 = no retry), settle ms, resend ms. Returns 1 if the
-- key must be sent now, 0 if not, -1 if the lease had been lost (nothing was changed).
local key = ARGV[1]
if redis.call('HGET', KEYS[2], key) ~= ARGV[2] then return -1 end
redis.call('HDEL', KEYS[2], key)
redis.call('ZREM', KEYS[3], key)
if redis.call('SREM', KEYS[4], key) == 1 then
  if tonumber(ARGV[4]) > 0 then
    redis.call('ZADD', KEYS[6], now + tonumber(ARGV[4]), key)
    return 0
  end
  if redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[5]), key) == 1 then
    redis.call('HSET', KEYS[7], key, 1)
    return 1
  end
  return 0
end
local delay = tonumber(ARGV[3])
if delay >= 0 then redis.call('ZADD', KEYS[5], now + delay, key) end
return 0
"""

_DUE = _NOW + """
-- ARGV: max keys, resend ms, outbox age ms, rescue ms. Returns {keys to send, expired leases
-- (already scheduled for a retry in rescue ms; the sweeper sets their backoff),
-- {key, lane} pairs to resend, outbox keys, urgent outbox keys}.
local limit, resend = ARGV[1], tonumber(ARGV[2])
local send, expired, again = {}, {}, {}
for _, set in ipairs({KEYS[6], KEYS[5]}) do
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)) do
    redis.call('ZREM', set, key)
    if redis.call('HEXISTS', KEYS[2], key) == 1 then
      redis.call('SADD', KEYS[4], key)
    elseif redis.call('ZADD', KEYS[1], 'NX', now + resend, key) == 1 then
      redis.call('HSET', KEYS[7], key, 1)
      table.insert(send, key)
    end
  end
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  redis.call('SREM', KEYS[4], key)
  -- retried in any case, even if the sweeper dies before it sets the backoff
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), key)
  table.insert(expired, key)
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)) do
  local n = redis.call('HINCRBY', KEYS[8], key, 1)
  redis.call('ZADD', KEYS[1], 'XX', now + resend * 2 ^ math.min(n, 6), key)
  table.insert(again, key)
  table.insert(again, redis.call('HGET', KEYS[7], key) or '1')
end
local old = now - tonumber(ARGV[3])
local outbox = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', old, 'LIMIT', 0, limit)
local urgent = redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', old, 'LIMIT', 0, limit)
return {send, expired, again, outbox, urgent}
"""

_REQUEUE = _NOW + """
-- ARGV: lane, resend ms, keys... (an operator's retry). Returns the keys to send: every key
-- not running, queued or not (a lost message must not make a retry a no-op).
local send = {}
for i = 3, #ARGV do
  local key = ARGV[i]
  redis.call('ZREM', KEYS[5], key)
  redis.call('ZREM', KEYS[6], key)
  if redis.call('HEXISTS', KEYS[2], key) == 1 then
    redis.call('SADD', KEYS[4], key)
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), key)
    redis.call('HSET', KEYS[7], key, ARGV[1])
    if ARGV[1] == '2' then redis.call('SADD', KEYS[12], key)
    else redis.call('SREM', KEYS[12], key) end
    table.insert(send, key)
  end
end
return send
"""


_HEAL = """
-- ARGV: how many members to check. Drops members of the resync lane's set that are not queued
-- on that lane (left by an older version's scripts, a partial restore, a hand edit), so the
-- lane never reads full for ever; returns how many were dropped.
local n = 0
for _, key in ipairs(redis.call('SRANDMEMBER', KEYS[12], ARGV[1])) do
  if redis.call('HGET', KEYS[7], key) ~= '2' then
    redis.call('SREM', KEYS[12], key)
    n = n + 1
  end
end
return n
"""


@dataclass(frozen=True)
class Depths:
    queued: int
    processing: int
    delayed: int

    @property
    def idle(self) -> bool:
        return not (self.queued or self.processing or self.delayed)


@dataclass(frozen=True)
class Due:
    send: list[str]                 # retries now due: send on their normal lane
    expired: list[str]              # keys whose worker died mid-run (already retried later)
    resend: list[tuple[str, int]]   # (key, lane): queued too long, their message may be lost
    outbox: list[str]               # written by a watcher that did not enqueue them
    urgent_outbox: list[str]


class KeyQueue:
    """The Redis half of the queue; the Celery half only carries the key strings."""

    def __init__(self, client: redis.Redis, *, lease_ms: int = 60_000, settle_ms: int = 0,
                 resend_ms: int = 30_000):
        self.redis, self.lease_ms, self.settle_ms = client, lease_ms, settle_ms
        self.resend_ms = resend_ms
        register = client.register_script
        self._enqueue, self._begin, self._renew, self._finish, self._due, self._requeue = (
            register(_ENQUEUE), register(_BEGIN), register(_RENEW), register(_FINISH),
            register(_DUE), register(_REQUEUE))
        self._heal = register(_HEAL)

    def enqueue(self, keys: list[str], lane: int = NORMAL, *, changed: bool = False
                ) -> list[str]:
        """Mark keys as needing work (`changed`: because of a change, timed from now for the
        sync latency); returns those that need a Celery message now."""
        if not keys:
            return []
        return [_text(k) for k in self._enqueue(
            keys=KEYS, args=[lane, self.resend_ms, int(changed), *keys])]

    def requeue(self, keys: list[str], lane: int = URGENT) -> list[str]:
        """An operator's retry: every key not running is sent, even if it is queued."""
        if not keys:
            return []
        return [_text(k) for k in self._requeue(keys=KEYS, args=[lane, self.resend_ms, *keys])]

    def begin(self, key: str, token: str) -> int:
        """Take the key for this run: RUN, BUSY (another live run holds it; it was made
        dirty), STORE_INCOMPLETE (retried in a second) or DUPLICATE (nothing to do)."""
        return int(self._begin(keys=KEYS, args=[key, token, self.lease_ms]))

    def renew(self, key: str, token: str) -> bool:
        return bool(self._renew(keys=KEYS, args=[key, token, self.lease_ms]))

    def finish(self, key: str, token: str, *, retry_in: float | None = None) -> int:
        """Release the key. 1: send it again now (it changed while running); 0: nothing to
        send (maybe scheduled for a retry); -1: the lease had been lost to another run."""
        delay = -1 if retry_in is None else int(retry_in * 1000)
        return int(self._finish(keys=KEYS, args=[key, token, delay, self.settle_ms,
                                                 self.resend_ms]))

    def finish_in(self, pipe, key: str, token: str, *, retry_in: float | None = None):
        """`finish` as the last command of a pipeline: a bare EVALSHA (redis-py would ask
        SCRIPT EXISTS first, a round trip more). Read its reply with `finished`."""
        delay = -1 if retry_in is None else int(retry_in * 1000)
        pipe.evalsha(self._finish.sha, len(KEYS), *KEYS, key, token, delay, self.settle_ms,
                     self.resend_ms)
        return pipe

    def finished(self, reply, key: str, token: str, *, retry_in: float | None = None) -> int:
        """The reply of `finish_in`; a server that lost the script (restarted, SCRIPT
        FLUSH) did not run it: run it now, loading it."""
        if isinstance(reply, redis.exceptions.NoScriptError):
            return self.finish(key, token, retry_in=retry_in)
        if isinstance(reply, Exception):
            raise reply
        return int(reply)

    def due(self, limit: int = 1000, *, outbox_age_ms: int = 2000,
            rescue_ms: int = 1000) -> Due:
        """What the sweeper must do now (see `Due`)."""
        send, expired, again, outbox, urgent = self._due(
            keys=KEYS, args=[limit, self.resend_ms, outbox_age_ms, rescue_ms])
        pairs = [_text(x) for x in again]
        return Due([_text(k) for k in send], [_text(k) for k in expired],
                   [(pairs[i], int(pairs[i + 1])) for i in range(0, len(pairs), 2)],
                   [_text(k) for k in outbox], [_text(k) for k in urgent])

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

    def resync_lane(self) -> int:
        """Keys queued on the resync lane, not yet taken by a worker."""
        return int(self.redis.scard(RESYNCING))

    def heal_resync_lane(self, sample: int = 1000) -> int:
        """Drop counted keys that are not queued on the resync lane; returns how many."""
        return int(self._heal(keys=KEYS, args=[sample]))

    def delayed(self) -> dict[str, float]:
        """Key -> seconds until its retry."""
        now = self._now_ms()
        return {_text(k): max(0.0, (score - now) / 1000)
                for zset in (SETTLING, DELAYED)
                for k, score in self.redis.zrange(zset, 0, -1, withscores=True)}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
