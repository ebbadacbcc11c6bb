"""Who may take an address from the pod IPAM right now, cluster-wide.

Contrail's flat-subnet allocator hands out the highest free address first, and one pool
serves every pod network (vnc-rest.md 5.4). So the address a pod move frees for a moment
(delete the old instance-ip, create the new one asking for the same address) is exactly the
one the next allocation anywhere would take. A move therefore holds this lock exclusively;
every other allocation from the pod IPAM (a new pod's instance-ip, an egress floating IP)
holds it shared: they run side by side and wait only while a move is between its delete and
its create.

A move's claim stays until the move has completed, so a worker that dies between the delete
and the create leaves the address reserved for the retry of its key (bounded by
`MOVE_HOLD_MS`); the address itself is kept in `KEEP` for that retry. Shared holds expire after
`SHARED_HOLD_MS` (a worker that dies holding one blocks no move for long).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import redis

from tasks.outcomes import NotReady

MOVES = "ckm:alloc:moves"    # port key -> claim deadline (ms)
SHARED = "ckm:alloc:shared"  # token -> hold deadline (ms)
KEEP = "ckm:alloc:keep"      # port key -> the address its move keeps
MOVE_HOLD_MS = 180_000       # past a worker's lease and rescue: the retry finds its claim
SHARED_HOLD_MS = 30_000
POLL = 0.02

_NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

_SHARED = _NOW + """
-- KEYS: moves, shared. ARGV: token, hold ms. 1: held; 0: a move is in progress, wait.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

_EXCLUSIVE = _NOW + """
-- KEYS: moves, shared. ARGV: port key, hold ms. 1: this move may go; 0: wait (another move,
-- or shared holders still allocating; the claim made here already keeps new ones out).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) > (mine and 1 or 0) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
return 1
"""


class AllocationLock:
    def __init__(self, client: redis.Redis, *, wait: float = 10.0):
        self.redis, self.wait = client, wait
        self._shared = client.register_script(_SHARED)
        self._exclusive = client.register_script(_EXCLUSIVE)

    def _until(self, attempt, what: str) -> None:
        deadline = time.monotonic() + self.wait
        while not attempt():
            if time.monotonic() > deadline:
                raise NotReady(what)
            time.sleep(POLL)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Allocate from the pod IPAM (not while a move holds it)."""
        token = uuid.uuid4().hex
        self._until(lambda: self._shared(keys=[MOVES, SHARED], args=[token, SHARED_HOLD_MS]),
                    "a pod move is keeping its address: allocation waits")
        try:
            yield
        finally:
            self.redis.zrem(SHARED, token)

    def claim_move(self, key: str, address: str) -> None:
        """Hold the pod IPAM for this key's move of `address` (until `end_move`)."""
        self.redis.hset(KEEP, key, address)  # first: the retry of a dead run needs it
        self._until(lambda: self._exclusive(keys=[MOVES, SHARED],
                                            args=[key, MOVE_HOLD_MS]),
                    "another pod move, or allocations in flight: the move waits")

    def kept(self, key: str) -> str | None:
        """The address an unfinished move of this key keeps (its worker died mid-move)."""
        return self.redis.hget(KEEP, key)

    def end_move(self, key: str) -> None:
        self.redis.pipeline().zrem(MOVES, key).hdel(KEEP, key).execute()
