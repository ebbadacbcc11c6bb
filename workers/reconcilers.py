"""The thin per-kind glue: read the key's inputs from the store, compute, apply.

Each function is registered under its key kind and Celery task name. Logic lives in `tasks/`
(pure) and writing in `workers.apply`; these functions only connect the two, check that what
they depend on exists (another key's applied memory, no Contrail call) and enqueue the keys
that depend on what they made.
"""

from __future__ import annotations

from tasks import cluster, namespace
from tasks.keys import Key
from tasks.model import Obj
from tasks.outcomes import NotReady
from workers.apply import AppliedSet, apply
from workers.context import Context
from workers.syncs import CLUSTER_KEY, register

__all__ = ["CLUSTER_KEY", "require", "require_project"]


def require(ctx: Context, key: str, obj: Obj, what: str, *, waiter: str | None = None) -> None:
    """NotReady unless the key that owns `obj` has made it. A `waiter` key is remembered and
    enqueued by the owner once it has run (see `release_waiters`), instead of waiting out its
    backoff."""
    if obj.address not in AppliedSet(ctx.redis, key):
        if waiter:
            ctx.redis.sadd(f"ckm:waiting:{key}", waiter)
        raise NotReady(f"{what} does not exist yet (waiting for {key})")


def release_waiters(ctx: Context, key: str) -> None:
    """Enqueue the keys that found something of `key` missing."""
    name = f"ckm:waiting:{key}"
    waiting = list(ctx.redis.smembers(name))
    if waiting:
        ctx.redis.srem(name, *waiting)
        ctx.enqueue(waiting)


def require_project(ctx: Context, ns: str) -> None:
    require(ctx, f"namespace/{ns}", namespace.project(ctx.settings, ns), f"project of {ns!r}")


@register("cluster", "ckm.bootstrap_cluster", "ckm.namespace")
def bootstrap_cluster(ctx: Context, key: Key) -> None:
    apply(ctx.contrail, cluster.desired(ctx.settings), AppliedSet(ctx.redis, str(key)))


@register("namespace", "ckm.sync_namespace", "ckm.namespace")
def sync_namespace(ctx: Context, key: Key) -> None:
    projection = ctx.store.get("Namespace", "", key.name)
    result = apply(ctx.contrail, namespace.desired(ctx.settings, key.name, projection),
                   AppliedSet(ctx.redis, str(key)))
    if projection is None:
        ctx.store.forget_tombstone("Namespace", "", key.name)
    elif result.created:
        # pods and ingresses that arrived before their namespace can proceed now
        ctx.enqueue([f"port/{key.name}/{p}" for p in ctx.store.names("Pod", key.name)]
                    + [f"ingress/{key.name}/{i}" for i in ctx.store.names("Ingress", key.name)])


# The other kinds register themselves on import.
from workers import sync_pods, sync_policy, sync_services  # noqa: E402,F401
