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
from collections import Counter
from collections.abc import Callable

from celery import Celery

from contrail.client import ContrailClient
from contrail.ensure import annotations_of, delete_if_exists
from contrail.errors import ContrailError
from tasks.fanout import own_keys, store_coordinates
from tasks.model import DELETE_ORDER
from tasks.policy import PEER_KIND
from watcher.store import DesiredStore
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


def resync(context: Context, app: Celery, *, kinds: list[str] | None = None) -> dict[str, int]:
    """Enqueue every key of the given kinds (all when None); GC too on a full resync."""
    if not context.redis.set(LOCK, "1", nx=True, ex=600):
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
                live_peers=set(in_force.index(context).peers), hand_over=hand_over))
            counts["gc-peer-groups"] = len(handed)
            enqueue(app, context.queue, handed)
        context.redis.set(LAST, context.redis.time()[0])
        return dict(counts)
    finally:
        context.redis.delete(LOCK)


def _alive(store: DesiredStore, notes: dict[str, str]) -> bool:
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


def collect_garbage(client: ContrailClient, store: DesiredStore, cluster: str, *,
                    live_peers: set[str],
                    hand_over: Callable[[str, tuple[str, str]], None]) -> list[str]:
    """Delete owned objects whose Kubernetes object is gone; returns the deleted uuids.

    A shared peer group has no Kubernetes object: one that no policy seemed to name is
    handed over to its `peer/...` key (recorded as that key's and the key enqueued), which
    decides under the key's lock with the policies of that moment. Deleting it here could
    race a new policy that starts naming it."""
    if any(store.resource_version(kind) is None for kind in KINDS):
        log.info("GC skipped: the watcher has not listed every kind yet")
        return []
    deleted = []
    for type_ in DELETE_ORDER:
        for item in client.list(type_, fields=["annotations"]):
            notes = annotations_of(item)
            if (notes.get("owner") != "k8s" or notes.get("cluster") != cluster
                    or notes.get("kind") == "Cluster"):
                continue
            if notes.get("kind") == PEER_KIND:
                if _peer_key(notes) not in live_peers:
                    hand_over(_peer_key(notes), (type_, item["uuid"]))
                continue
            if _alive(store, notes):
                continue
            try:
                if type_ == "virtual-machine":
                    unlink_vrouters(client, item["uuid"])
                if delete_if_exists(client, type_, item["uuid"]):
                    deleted.append(item["uuid"])
                    log.info("GC deleted %s %s", type_, ":".join(item["fq_name"]))
            except ContrailError as exc:  # still referenced: the next round gets it
                log.info("GC could not delete %s %s yet: %s", type_, item["uuid"], exc)
    return deleted
