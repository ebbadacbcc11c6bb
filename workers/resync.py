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

from celery import Celery

from contrail.client import ContrailClient
from contrail.ensure import annotations_of, delete_if_exists
from contrail.errors import ContrailError
from tasks.fanout import own_keys, store_coordinates
from tasks.model import DELETE_ORDER
from tasks.policy import PEER_KIND
from watcher.store import DesiredStore
from workers import sync_policy
from workers.apply import EPOCH
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
            counts["gc-deleted"] = len(collect_garbage(
                context.contrail, context.store, context.settings.cluster_name,
                live_peers=set(sync_policy.index(context).peers)))
        context.redis.set(LAST, context.redis.time()[0])
        return dict(counts)
    finally:
        context.redis.delete(LOCK)


def _alive(store: DesiredStore, notes: dict[str, str], live_peers: set[str]) -> bool:
    if notes.get("kind") == PEER_KIND:  # shared: alive while some policy names it
        return "/".join(p for p in ("peer", notes.get("namespace"), notes.get("name"))
                        if p) in live_peers
    kind, namespace, name = store_coordinates(
        notes.get("kind", ""), notes.get("namespace", ""), notes.get("name", ""))
    projection = store.get(kind, namespace, name)
    if projection is None:
        # a tombstone means its own cleanup is pending: leave the object to that key
        return store.tombstone(kind, namespace, name) is not None
    uid = notes.get("k8s_uid")
    return not uid or projection.get("uid") == uid


def collect_garbage(client: ContrailClient, store: DesiredStore, cluster: str, *,
                    live_peers: set[str]) -> list[str]:
    """Delete owned objects whose Kubernetes object is gone, and shared peer groups no
    policy names any more; returns the deleted uuids."""
    if any(store.resource_version(kind) is None for kind in KINDS):
        log.info("GC skipped: the watcher has not listed every kind yet")
        return []
    deleted = []
    for type_ in DELETE_ORDER:
        for item in client.list(type_, fields=["annotations"]):
            notes = annotations_of(item)
            if (notes.get("owner") != "k8s" or notes.get("cluster") != cluster
                    or notes.get("kind") == "Cluster" or _alive(store, notes, live_peers)):
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
