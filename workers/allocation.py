"""Who may take an address from the pod IPAM right now, cluster-wide.

Contrail's flat-subnet allocator hands out the highest free address first, and one pool
serves every pod network (vnc-rest.md 5.4). So the address a pod move frees for a moment
(delete the old instance-ip, create the new one asking for the same address) is exactly the
one the next allocation anywhere would take. Moves therefore keep every other allocation from
the pod IPAM (a new pod's instance-ip, an egress floating IP, an ingress VIP) out while they
run; those hold the lock shared, side by side, and wait only while a move is in progress.
Moves do not exclude each other: each asks for its own address.

A move's claim stays until the move has completed, so a worker that dies between the delete
and the create leaves the address reserved for the retry of its key; the address is kept in
`KEEP` for that retry, with the pod's uid (a new pod under the same name is not that move).
A claim never outlives `MOVE_GIVE_UP_MS` from the move's first attempt: a move stuck that long
gives up rather than stop every new pod of the cluster. Shared holds expire after
`SHARED_HOLD_MS` (a worker that dies holding one blocks moves no longer than that).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from tasks.outcomes import NotReady

MOVES = "ckm:alloc:moves"    # port key -> claim deadline (ms)
SHARED = "ckm:alloc:shared"  # token -> hold deadline (ms)
KEEP = "ckm:alloc:keep"      # port key -> "uid address first-attempt-ms"
MOVE_GIVE_UP_MS = 300_000
SHARED_HOLD_MS = 120_000     # longer than one write of a port, retries included
WAIT, POLL = 5.0, 0.05

_NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

_SHARED = _NOW + """
-- KEYS: moves, shared. ARGV: token, hold ms. 1: held; 0: a move is in progress, wait.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

_MOVE = _NOW + """
-- KEYS: moves, shared. ARGV: port key, claim deadline ms. Claims (which keeps new shared
-- holders out from now); 1: go, 0: wait for the shared holders in flight to finish.
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
return 1
"""


class MoveAbandoned(Exception):
    """The move kept the pod IPAM for MOVE_GIVE_UP_MS without completing."""


@dataclass(frozen=True)
class Kept:
    uid: str
    address: str
    since_ms: int


class AllocationLock:
    def __init__(self, client: redis.Redis, *, wait: float = WAIT):
        self.redis, self.wait = client, wait
        self._shared = client.register_script(_SHARED)
        self._move = client.register_script(_MOVE)

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

    def kept(self, key: str, uid: str) -> Kept | None:
        """The address an unfinished move of this pod keeps (its worker died mid-move)."""
        raw = self.redis.hget(KEEP, key)
        if not raw:
            return None
        owner, address, since = raw.split()
        return Kept(owner, address, int(since)) if owner == uid else None

    def claim_move(self, key: str, uid: str, address: str) -> None:
        """Keep the pod IPAM for this pod's move of `address` (until `end_move`)."""
        earlier = self.kept(key, uid)
        now_ms = int(time.time() * 1000)
        since = earlier.since_ms if earlier and earlier.address == address else now_ms
        if now_ms - since > MOVE_GIVE_UP_MS:
            self.end_move(key)
            raise MoveAbandoned(f"the move of {address} has not completed in "
                                f"{MOVE_GIVE_UP_MS // 1000}s")
        self.redis.hset(KEEP, key, f"{uid} {address} {since}")  # first: a retry needs it
        self._until(lambda: self._move(keys=[MOVES, SHARED],
                                       args=[key, since + MOVE_GIVE_UP_MS]),
                    "allocations in flight: the move waits for them")

    def end_move(self, key: str) -> None:
        self.redis.pipeline().zrem(MOVES, key).hdel(KEEP, key).execute()
