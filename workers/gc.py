"""Garbage collection: delete Contrail objects that carry our owner/cluster annotations but whose
Kubernetes object no longer exists (made while ckm was down, or by a previous incarnation of an
object with the same name), in dependency order.

GC refuses to run before the watcher has finished its first list of every kind: an empty store
must never read as "everything was deleted". It reads Contrail a page at a time and looks the
page's owners up in the store in one round trip, so its memory and Redis traffic do not grow
with the cluster.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable

from contrail.client import ContrailClient
from contrail.ensure import annotations_of, delete_if_exists
from contrail.errors import ContrailError
from tasks.fanout import APP_LABEL, store_coordinates
from tasks.model import DELETE_ORDER
from tasks.policy import PEER_KIND
from watcher.store import COMPLETE, DesiredStore
from workers.vrouters import unlink_vrouters

log = logging.getLogger("ckm.gc")
KINDS = ("Namespace", "Pod", "Service", "EndpointSlice", "NetworkPolicy", "Ingress", "Node")
PAGE = 1000  # Contrail objects per list request

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


class Prefetched:
    """The store as GC reads it for one page: the owners' projections and tombstones fetched
    in one pipeline; anything else is read through."""

    def __init__(self, store: DesiredStore, owners: Iterable[tuple[str, str, str]]):
        self.store = store
        wanted = sorted(set(owners))
        pipe = store.redis.pipeline(transaction=False)
        for kind, namespace, name in wanted:
            pipe.hget(f"ckm:obj:{kind}", f"{namespace}/{name}")
            pipe.hexists(f"ckm:tomb:{kind}", f"{namespace}/{name}")
        replies = pipe.execute() if wanted else []
        self.objects = {w: (json.loads(replies[2 * i]) if replies[2 * i] else None)
                        for i, w in enumerate(wanted)}
        self.tombs = {w: bool(replies[2 * i + 1]) for i, w in enumerate(wanted)}

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        at = (kind, namespace, name)
        return self.objects[at] if at in self.objects else self.store.get(*at)

    def tombstone(self, kind: str, namespace: str, name: str):
        at = (kind, namespace, name)
        if at in self.tombs:
            return {} if self.tombs[at] else None
        return self.store.tombstone(*at)

    def in_namespace(self, kind: str, namespace: str) -> list[tuple[str, dict]]:
        return self.store.in_namespace(kind, namespace)


def _owner(notes: dict[str, str]) -> tuple[str, str, str]:
    return store_coordinates(notes.get("kind", ""), notes.get("namespace", ""),
                             notes.get("name", ""))


def _alive(store, notes: dict[str, str]) -> bool:
    """Whether the Kubernetes object an annotated Contrail object belongs to still exists
    (or its own cleanup is pending)."""
    kind, namespace, name = _owner(notes)
    projection = store.get(kind, namespace, name)
    if projection is None:
        # a tombstone means its own cleanup is pending: leave the object to that key
        return store.tombstone(kind, namespace, name) is not None
    uid = notes.get("k8s_uid")
    return not uid or projection.get("uid") == uid


def _peer_key(notes: dict[str, str]) -> str:
    return "/".join(p for p in ("peer", notes.get("namespace"), notes.get("name")) if p)


def _app_used(store, notes: dict[str, str], app_label: str) -> bool:
    return any((p.get("labels") or {}).get(app_label) == notes.get("name")
               for _, p in store.in_namespace("Pod", notes.get("namespace", "")))


def gc_verdict(store, notes: dict[str, str], *, live_peers: set[str],
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
                    app_label: str = APP_LABEL, page: int = PAGE) -> list[str]:
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
        for items in client.pages(type_, fields=["annotations"], page_limit=page):
            owned = [(item, notes) for item in items
                     if (notes := annotations_of(item)).get("owner") == "k8s"
                     and notes.get("cluster") == cluster]
            view = Prefetched(store, (_owner(n) for _, n in owned
                                      if OWNER_RULES.get(n.get("kind", "")) == STORE))
            for item, notes in owned:
                verdict, key = gc_verdict(view, notes, live_peers=live_peers,
                                          app_label=app_label)
                if verdict == HAND_OVER:
                    hand_over(key, (type_, item["uuid"]))
                if verdict != "delete":
                    continue
                # the page was judged on one read of the store; the owner may have come back
                # since (a namespace created again): judge a delete on the store of now
                if gc_verdict(store, notes, live_peers=live_peers,
                              app_label=app_label)[0] != "delete":
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
