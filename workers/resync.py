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
    """Start a pass over every key of the given kinds (all, and GC, when None); returns what
    it started with, or {} when a pass is already running (or starting elsewhere)."""
    token = uuid.uuid4().hex
    if not context.redis.set(LOCK, token, nx=True, ex=600):
        log.info("a resync is already starting")
        return {}
    try:
        running = progress(context)
        if running is not None:
            log.info("a resync pass is still running (%s keys sent); not starting another",
                     running.get("sent", 0))
            return {}
        full = not kinds
        kinds = list(kinds or KINDS)
        objects = sum(context.redis.pipeline(transaction=False).hlen(
            f"ckm:obj:{k}").execute()[0] for k in kinds)
        pipe = context.redis.pipeline()  # MULTI: the new epoch and its pass start together
        if full:
            # a new epoch: every key's next run verifies its objects against Contrail again
            pipe.incr(EPOCH).delete(VERIFIED)
        pipe.delete(PASS).hset(PASS, mapping={
            "kinds": ",".join(kinds), "at": 0, "stage": "objects", "cursor": 0,
            "full": int(full), "objects": objects, "scanned": 0, "sent": 0, "skipped": 0,
            "started": time.time()})
        replies = pipe.execute()
        if full:
            context.redis.hset(PASS, "epoch", replies[0])
            enqueue(app, context.queue, [CLUSTER_KEY], resync=True)
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
    if state is None or context.queue.resync_lane() >= lane_low:
        return 0
    r = context.redis
    kinds = state["kinds"].split(",")
    at, stage, cursor = int(state["at"]), state["stage"], int(state["cursor"])
    epoch = state.get("epoch")
    app_label = context.settings.app_label
    total = 0
    while at < len(kinds) and total < page and steps > 0:
        steps -= 1
        kind, scanned = kinds[at], 0
        if stage == "objects":
            cursor, entries = r.hscan(f"ckm:obj:{kind}", cursor, count=page)
            found = [(*_text(f).partition("/")[::2], v) for f, v in entries.items()]
            keys = [k for ns, name, raw in found
                    for k in own_keys(kind, ns, name, json.loads(raw), app_label=app_label)]
            scanned = len(found)
            if int(cursor) == 0:
                stage = "tombstones"
        else:  # objects deleted whose cleanup has not succeeded yet
            keys = [k for ns, name in context.store.tombstones(kind)
                    for k in own_keys(kind, ns, name, context.store.tombstone(kind, ns, name),
                                      app_label=app_label)]
            at, stage, cursor = at + 1, "objects", 0
        keys = list(dict.fromkeys(keys))  # policies share peer keys
        wanted = len(keys)
        if epoch and keys:
            verified = r.hmget(VERIFIED, keys)
            keys = [k for k, v in zip(keys, verified, strict=True) if _text(v) != epoch]
        if keys:
            send(context.queue.enqueue(keys, RESYNC), RESYNC)
        total += len(keys)
        # saved after the hand-out: dying in between hands the page out again, harmlessly
        if not _save(r, [PASS], [state["started"], at, stage, cursor, scanned, len(keys),
                             wanted - len(keys)]):
            return total  # the pass ended (or was replaced) meanwhile
    if at >= len(kinds) and _finish(r, [PASS, LAST, DONE], [state["started"],
                                                           int(time.time())]):
        log.info("resync pass finished: %s", progress_text(progress(context, DONE)))
    return total


def progress_text(state: dict[str, str]) -> str:
    kinds = state["kinds"].split(",")
    at = min(int(state["at"]), len(kinds) - 1)
    return (f"{kinds[at]} ({int(state['at'])}/{len(kinds)} kinds), "
            f"{state.get('scanned', 0)} of ~{state.get('objects', 0)} objects read, "
            f"{state.get('sent', 0)} keys sent, {state.get('skipped', 0)} already verified")


# Both touch only the pass they read (`started` identifies it), so a slow sweeper cannot
# write a cursor into a pass that ended, or into the next one.
_SAVE = """
if redis.call('HGET', KEYS[1], 'started') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[2], 'stage', ARGV[3], 'cursor', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'scanned', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'sent', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'skipped', ARGV[7])
return 1
"""
_FINISH = """
if redis.call('HGET', KEYS[1], 'started') ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('HSET', KEYS[3], 'finished', ARGV[2])
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


def _save(r, keys, args) -> bool:
    return bool(r.register_script(_SAVE)(keys=keys, args=args))  # EVALSHA


def _finish(r, keys, args) -> bool:
    return bool(r.register_script(_FINISH)(keys=keys, args=args))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
