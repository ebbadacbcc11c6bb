"""The thin per-kind glue: read the key's inputs from the store, compute, apply.

Each function is registered under its key kind and Celery task name. Logic lives in `tasks/`
(pure) and writing in `workers.apply`; these functions only connect the two.
"""

from __future__ import annotations

from tasks import cluster, namespace
from tasks.keys import Key
from workers.apply import AppliedSet, apply
from workers.context import Context
from workers.syncs import register

CLUSTER_KEY = "cluster/bootstrap"


@register("cluster", "ckm.bootstrap_cluster", "ckm.namespace")
def bootstrap_cluster(ctx: Context, key: Key) -> None:
    apply(ctx.contrail, cluster.desired(ctx.settings), AppliedSet(ctx.redis, str(key)))


@register("namespace", "ckm.sync_namespace", "ckm.namespace")
def sync_namespace(ctx: Context, key: Key) -> None:
    projection = ctx.store.get("Namespace", "", key.name)
    apply(ctx.contrail, namespace.desired(ctx.settings, key.name, projection),
          AppliedSet(ctx.redis, str(key)))
    if projection is None:
        ctx.store.forget_tombstone("Namespace", "", key.name)
