"""Periodic full resync and garbage collection, one at a time across the cluster.

Resync re-enqueues every stored key (and every pending tombstone) at low priority, so drift in
Contrail is repaired even when no event arrives. GC deletes Contrail objects that carry our
owner/cluster annotations but whose Kubernetes object no longer exists (made while ckm was
down, or by a previous incarnation of an object with the same name), in dependency order.
GC refuses to run before the watcher has finished its first list of every kind: an empty
store must never read as "everything was deleted".
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable

from celery import Celery

from contrail.client import ContrailClient
from contrail.ensure import annotations_of, delete_if_exists
from contrail.errors import ContrailError
from tasks.fanout import APP_LABEL, own_keys, store_coordinates
from tasks.model import DELETE_ORDER
from tasks.policy import PEER_KIND
from watcher.store import COMPLETE, DesiredStore
from workers import policies_in_force as in_force
from workers.apply import EPOCH, AppliedSet
from workers.context import Context
from workers.dispatch import enqueue
from workers.syncs import CLUSTER_KEY
from workers.vrouters import unlink_vrouters

log = logging.getLogger("ckm.resync")
LOCK = "ckm:resync:lock"
LAST = "ckm:resync:last"
KINDS = ("Namespace", "Pod", "Service", "EndpointSlice", "NetworkPolicy", "Ingress", "Node")


_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def resync(context: Context, app: Celery, *, kinds: list[str] | None = None) -> dict[str, int]:
    """Enqueue every key of the given kinds (all when None); GC too on a full resync."""
    token = uuid.uuid4().hex
    if not context.redis.set(LOCK, token, nx=True, ex=600):
        log.info("a resync is already running")
        return {}
    try:
        counts: Counter = Counter()
        keys = [] if kinds else [CLUSTER_KEY]
        app_label = context.settings.app_label
        for kind in kinds or KINDS:
            for namespace, name, projection in context.store.items(kind):
                keys += own_keys(kind, namespace, name, projection, app_label=app_label)
            for namespace, name in context.store.tombstones(kind):
                keys += own_keys(kind, namespace, name, context.store.tombstone(
                    kind, namespace, name), app_label=app_label)
        keys = list(dict.fromkeys(keys))  # policies share peer keys
        for key in keys:
            counts[key.split("/", 1)[0]] += 1
        if not kinds:
            # a new epoch: every key's next run verifies its objects against Contrail again
            context.redis.incr(EPOCH)
        enqueue(app, context.queue, keys, resync=True)
        if not kinds:
            handed: list[str] = []

            def hand_over(key: str, address: tuple[str, str]) -> None:
                AppliedSet(context.redis, key).record(address, "gc")
                handed.append(key)

            counts["gc-deleted"] = len(collect_garbage(
                context.contrail, context.store, context.settings.cluster_name,
                live_peers=set(in_force.index(context).peers), hand_over=hand_over,
                app_label=app_label))
            counts["gc-peer-groups"] = len(handed)
            enqueue(app, context.queue, handed)
        context.redis.set(LAST, context.redis.time()[0])
        return dict(counts)
    finally:  # only our own lock: one that expired and was taken since is another resync's
        context.redis.eval(_UNLOCK, 1, LOCK, token)


def _alive(store: DesiredStore, notes: dict[str, str]) -> bool:
    """Whether the Kubernetes object an annotated Contrail object belongs to still exists
    (or its own cleanup is pending)."""
    kind, namespace, name = store_coordinates(
        notes.get("kind", ""), notes.get("namespace", ""), notes.get("name", ""))
    projection = store.get(kind, namespace, name)
    if projection is None:
        # a tombstone means its own cleanup is pending: leave the object to that key
        return store.tombstone(kind, namespace, name) is not None
    uid = notes.get("k8s_uid")
    return not uid or projection.get("uid") == uid


def _peer_key(notes: dict[str, str]) -> str:
    return "/".join(p for p in ("peer", notes.get("namespace"), notes.get("name")) if p)


def _app_used(store: DesiredStore, notes: dict[str, str], app_label: str) -> bool:
    return any((p.get("labels") or {}).get(app_label) == notes.get("name")
               for _, p in store.in_namespace("Pod", notes.get("namespace", "")))


# What GC does with an object, by the owner kind in its annotations. Objects of a kind not
# listed here are never deleted: GC only removes what it knows how to judge.
STORE_KINDS = frozenset({"Namespace", "Pod", "Service", "Ingress", "NetworkPolicy"})
KEEP, HAND_OVER, STORE = "keep", "hand-over", "store"
OWNER_RULES = {
    "Cluster": KEEP,        # bootstrap objects: the cluster key owns and repairs them
    PEER_KIND: HAND_OVER,   # shared peer groups: their peer/... key decides under its lock
    "App": HAND_OVER,       # app networks: their appnet/... key decides under its lock
    **dict.fromkeys(STORE_KINDS, STORE),  # alive while the Kubernetes object is
}


def gc_verdict(store: DesiredStore, notes: dict[str, str], *, live_peers: set[str],
               app_label: str) -> tuple[str, str | None]:
    """("keep" | "delete" | "hand-over", the key to hand over to) for one owned object."""
    kind = notes.get("kind", "")
    rule = OWNER_RULES.get(kind, KEEP)
    if rule == KEEP:
        return KEEP, None
    if kind == PEER_KIND:
        key = _peer_key(notes)
        return (KEEP, None) if key in live_peers else (HAND_OVER, key)
    if kind == "App":
        if _app_used(store, notes, app_label):
            return KEEP, None
        return HAND_OVER, f"appnet/{notes.get('namespace', '')}/{notes.get('name', '')}"
    return (KEEP, None) if _alive(store, notes) else ("delete", None)


def collect_garbage(client: ContrailClient, store: DesiredStore, cluster: str, *,
                    live_peers: set[str], hand_over: Callable[[str, tuple[str, str]], None],
                    app_label: str = APP_LABEL) -> list[str]:
    """Delete owned objects whose Kubernetes object is gone; returns the deleted uuids.

    Runs only over a complete store: after Redis lost its data the store is empty until the
    watcher has listed every kind again, and an empty store must never read as "deleted".
    Objects that stand for no single Kubernetes object (shared peer groups, app networks)
    are handed over to their key (recorded as that key's and the key enqueued), which
    decides under the key's lock with the state of that moment; deleting them here could
    race a pod or policy that starts using them."""
    if not store.complete() or not store.listed(KINDS):
        log.info("GC skipped: the store is not complete (the watcher is still listing)")
        return []
    # A canary of this pass: if Redis loses its data while GC walks Contrail, the canary
    # goes with it, and GC stops before its next delete instead of reading "gone" everywhere.
    canary = f"ckm:gc:{uuid.uuid4().hex}"
    store.redis.set(canary, "1", ex=3600)

    def store_intact() -> bool:
        return all(store.redis.mget(canary, COMPLETE))

    deleted = []
    for type_ in DELETE_ORDER:
        for item in client.list(type_, fields=["annotations"]):
            notes = annotations_of(item)
            if notes.get("owner") != "k8s" or notes.get("cluster") != cluster:
                continue
            verdict, key = gc_verdict(store, notes, live_peers=live_peers,
                                      app_label=app_label)
            if verdict == HAND_OVER:
                hand_over(key, (type_, item["uuid"]))
            if verdict != "delete":
                continue
            if not store_intact():
                log.warning("GC stopped: Redis lost the store during the pass")
                return deleted
            try:
                if type_ == "virtual-machine":
                    unlink_vrouters(client, item["uuid"])
                if delete_if_exists(client, type_, item["uuid"]):
                    deleted.append(item["uuid"])
                    log.info("GC deleted %s %s", type_, ":".join(item["fq_name"]))
            except ContrailError as exc:  # still referenced: the next round gets it
                log.info("GC could not delete %s %s yet: %s", type_, item["uuid"], exc)
    store.redis.delete(canary)
    return deleted
