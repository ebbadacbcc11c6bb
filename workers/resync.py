"""Periodic resync: every stored key runs again at low priority, paced, so drift in Contrail is
repaired even when no event arrives.

A full pass bumps the epoch, so each key's next run verifies its objects against Contrail
again (workers.apply). A pass is a cursor in Redis (`ckm:resync:pass`), not a burst of
messages: the sweeper hands out the next page of keys (`resync_page`) only while the resync
lane holds fewer than `resync_lane` keys. So, at any cluster size:
  - live changes never wait behind resync work: their lanes are consumed first, and the
    resync lane holds at most about `resync_lane + resync_page` keys;
  - no resync message waits long enough to be resent (no resend storm of a 400k backlog);
  - a pass survives the death of any process: the next sweeper goes on from the cursor;
  - keys that ran since the pass began (a live change) are skipped: they verified already.
A pass still running when the next one is due is left to finish. GC (workers.gc) runs when
a full pass starts.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter

from celery import Celery

from tasks.fanout import own_keys
from workers import policies_in_force as in_force
from workers.apply import EPOCH, VERIFIED, AppliedSet
from workers.context import Context
from workers.dispatch import enqueue
from workers.gc import KINDS, collect_garbage
from workers.queue import RESYNC
from workers.syncs import CLUSTER_KEY

log = logging.getLogger("ckm.resync")
LOCK = "ckm:resync:lock"   # held while a pass starts and GC runs
LAST = "ckm:resync:last"   # when the last pass finished
PASS = "ckm:resync:pass"   # the pass in progress: its cursor and counts
DONE = "ckm:resync:done"   # the last pass that finished: its counts

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def resync(context: Context, app: Celery, *, kinds: list[str] | None = None) -> dict[str, int]:
    """Start a pass over every key of the given kinds (all, with the cluster key and GC, when
    None); returns what it started with, or {} when a pass is already running (or starting
    elsewhere)."""
    token = uuid.uuid4().hex
    if not context.redis.set(LOCK, token, nx=True, ex=600):
        log.info("a resync is already starting")
        return {}
    try:
        full = not kinds
        kinds = list(kinds or KINDS)
        pipe = context.redis.pipeline(transaction=False)
        for kind in kinds:
            pipe.hlen(f"ckm:obj:{kind}")
        objects = sum(pipe.execute())
        # the new epoch (every key's next run verifies its objects against Contrail again) and
        # the pass that verifies it, in one step: a pass always knows its epoch
        started = context.redis.register_script(_START)(
            keys=[PASS, EPOCH, VERIFIED],
            args=[int(full), ",".join(kinds), objects, repr(time.time()),
                  "cluster" if full else "objects"])
        if not started:
            running = progress(context) or {}
            log.info("a resync pass is still running (%s keys sent); not starting another",
                     running.get("sent", 0))
            return {}
        counts: Counter = Counter({"objects": objects})
        if full:
            handed: list[str] = []

            def hand_over(key: str, address: tuple[str, str]) -> None:
                AppliedSet(context.redis, key).record(address, "gc")
                handed.append(key)

            counts["gc-deleted"] = len(collect_garbage(
                context.contrail, context.store, context.settings.cluster_name,
                live_peers=set(in_force.index(context).peers), hand_over=hand_over,
                app_label=context.settings.app_label))
            counts["gc-peer-groups"] = len(handed)
            enqueue(app, context.queue, handed)
        return dict(counts)
    finally:  # only our own lock: one that expired and was taken since is another resync's
        context.redis.eval(_UNLOCK, 1, LOCK, token)


def progress(context: Context, which: str = PASS) -> dict[str, str] | None:
    """The pass in progress (cursor and counts), or None; with DONE, the last finished one."""
    state = context.redis.hgetall(which)
    return {_text(k): _text(v) for k, v in state.items()} or None


def advance(context: Context, send, *, page: int | None = None, lane_low: int | None = None,
            steps: int = 20) -> int:
    """One step of the pass in progress, by whichever process sweeps: while the resync lane
    has room, read the next pages of the store and hand their keys out (skipping keys that
    verified in this pass's epoch); returns how many keys were sent. Safe to run twice or to
    die anywhere: a page handed out twice is absorbed by the queue (a key is queued once)."""
    page = page or context.settings.resync_page
    lane_low = lane_low or context.settings.resync_lane
    state = progress(context)
    if state is None:
        return 0
    queue = context.queue
    if queue.resync_lane() >= lane_low and (
            not queue.heal_resync_lane() or queue.resync_lane() >= lane_low):
        return 0
    r = context.redis
    kinds = state["kinds"].split(",")
    read = (state["at"], state["stage"], state["cursor"])  # compared when saving
    at, stage, cursor = int(read[0]), read[1], int(read[2])
    server = _text(r.info("server")["run_id"])
    if cursor and state.get("server") != server:
        # An HSCAN cursor is a position in one Redis process's hash table: after a restart or
        # a failover it points elsewhere, so the kind is read again from its start (keys
        # handed out twice are absorbed or skipped as verified).
        log.info("resync pass: Redis is another process now; reading %s again", kinds[at])
        cursor, stage = 0, "objects"
    epoch = state.get("epoch")
    app_label = context.settings.app_label
    total = 0
    while at < len(kinds) and total < page and steps > 0:
        steps -= 1
        kind, scanned = kinds[at], 0
        if stage == "cluster":  # a full pass verifies the bootstrap objects first
            keys, stage = [CLUSTER_KEY], "objects"
        else:  # objects, then those deleted whose cleanup has not succeeded yet
            hash_ = f"ckm:{'obj' if stage == 'objects' else 'tomb'}:{kind}"
            cursor, entries = r.hscan(hash_, cursor, count=page)
            cursor = int(cursor)
            keys = [k for field, raw in entries.items()
                    for k in own_keys(kind, *_text(field).partition("/")[::2],
                                      json.loads(raw), app_label=app_label)]
            scanned = len(entries) if stage == "objects" else 0
            if cursor == 0:
                at, stage = (at, "tombstones") if stage == "objects" else (at + 1, "objects")
        keys = list(dict.fromkeys(keys))  # policies share peer keys
        wanted = len(keys)
        if epoch and keys:
            verified = r.hmget(VERIFIED, keys)
            keys = [k for k, v in zip(keys, verified, strict=True) if _text(v) != epoch]
        if keys:
            send(queue.enqueue(keys, RESYNC), RESYNC)
        total += len(keys)
        # saved after the hand-out: dying in between hands the page out again, harmlessly
        if not r.register_script(_SAVE)(keys=[PASS], args=[
                state["started"], *read, at, stage, cursor, server, scanned, len(keys),
                wanted - len(keys)]):
            return total  # another sweeper moved the pass on meanwhile, or it ended
        read = (str(at), stage, str(cursor))
    if at >= len(kinds) and r.register_script(_FINISH)(
            keys=[PASS, LAST, DONE], args=[state["started"], int(time.time())]):
        log.info("resync pass finished: %s", progress_text(progress(context, DONE)))
    return total


def progress_text(state: dict[str, str]) -> str:
    kinds = state["kinds"].split(",")
    at = min(int(state["at"]), len(kinds) - 1)
    return (f"{kinds[at]} ({int(state['at'])}/{len(kinds)} kinds), "
            f"{state.get('scanned', 0)} of ~{state.get('objects', 0)} objects read, "
            f"{state.get('sent', 0)} keys sent, {state.get('skipped', 0)} already verified")


_START = """
-- KEYS: pass, epoch, verified. ARGV: full (1|0), kinds, objects, started, first stage.
-- Returns 0 when a pass is running already.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local epoch = ''
if ARGV[1] == '1' then
  epoch = redis.call('INCR', KEYS[2])
  redis.call('DEL', KEYS[3])
end
redis.call('HSET', KEYS[1], 'kinds', ARGV[2], 'at', 0, 'stage', ARGV[5], 'cursor', 0,
           'full', ARGV[1], 'objects', ARGV[3], 'scanned', 0, 'sent', 0, 'skipped', 0,
           'started', ARGV[4], 'epoch', epoch, 'server', '')
return 1
"""
# Both touch only the pass and the position they read, so a slow sweeper can neither write a
# cursor into a pass that ended (or the next one) nor take the pass back to where it was.
_SAVE = """
if redis.call('HGET', KEYS[1], 'started') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'at') ~= ARGV[2]
   or redis.call('HGET', KEYS[1], 'stage') ~= ARGV[3]
   or redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[5], 'stage', ARGV[6], 'cursor', ARGV[7], 'server', ARGV[8])
redis.call('HINCRBY', KEYS[1], 'scanned', ARGV[9])
redis.call('HINCRBY', KEYS[1], 'sent', ARGV[10])
redis.call('HINCRBY', KEYS[1], 'skipped', ARGV[11])
return 1
"""
_FINISH = """
if redis.call('HGET', KEYS[1], 'started') ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('HSET', KEYS[3], 'finished', ARGV[2])
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
