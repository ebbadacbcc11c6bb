"""NetworkPolicy keys: `policy/ns/name` (the policy's security groups), `peer/[ns/]hash` (a
peer group shared by every policy naming the same selectors) and `sgs/ns/pod` ("recompute
SGs": the pod port's group refs). Pod and label churn only ever runs the last, which costs at
most one Contrail call (a PUT of the port's group list), none if unchanged."""

from __future__ import annotations

import json

from contrail.errors import RefsExist
from tasks import fanout, pod, policy
from tasks.keys import Key
from tasks.model import Obj
from tasks.namespace import project
from tasks.outcomes import BadInput, NotReady
from workers import policies_in_force as in_force
from workers.apply import AppliedSet, apply
from workers.context import Context
from workers.reconcilers import release_waiters, require, require_project
from workers.syncs import CLUSTER_KEY, register


def _pods(ctx: Context) -> list[tuple[str, str, dict, dict]]:
    """(namespace, name, projection, namespace labels) of every managed pod."""
    labels = {name: (p.get("labels") or {}) for _, name, p in ctx.store.items("Namespace")}
    return [(ns, name, p, labels.get(ns, {})) for ns, name, p in ctx.store.items("Pod")
            if pod.managed(ctx.settings, ns, p)]


def _candidates(ctx: Context) -> list[tuple[str, dict, dict]]:
    return [(ns, p, ns_labels) for ns, _, p, ns_labels in _pods(ctx)]


@register("policy", "ckm.sync_policy", "ckm.policy")
def sync_policy(ctx: Context, key: Key) -> None:
    ns, name = key.namespace, key.name
    projection = ctx.store.get("NetworkPolicy", ns, name)
    applied = AppliedSet(ctx.redis, str(key))
    good = in_force.last_good(ctx, ns, name)
    if projection is None:
        if good:  # once: a retry (groups still carried) need not scan the pods again
            _recompute(ctx, ns, name, good, None)
            in_force.forget_good(ctx, ns, name)
        apply(ctx.contrail, [], applied)
        ctx.store.forget_tombstone("NetworkPolicy", ns, name)
        return
    try:
        parsed = policy.parse_policy(ns, name, projection)
    except BadInput:
        # Not applied: the last good version stays in force. Ports recomputed before it was
        # recorded (it was being applied when this version arrived) follow it now.
        if good:
            _recompute(ctx, ns, name, good, None)
        raise
    require_project(ctx, ns)
    _require_peers(ctx, str(key), policy.shared_peers(ctx.settings, parsed))
    selected = [p for _, p in ctx.store.in_namespace("Pod", ns)
                if pod.managed(ctx.settings, ns, p) and parsed.selects(ns, p.get("labels") or {})]
    numbers = (policy.peer_numbers(parsed, _candidates(ctx)) if policy.egress_named(parsed)
               else {})
    try:
        apply(ctx.contrail, policy.groups(ctx.settings, parsed, selected, numbers), applied)
    except RefsExist as exc:  # a variant no pod resolves any more, still on a port going away
        raise NotReady(f"a group still carried by ports: {exc}") from exc
    previous = in_force.remember_good(ctx, ns, name, projection)
    if previous is not None and previous != projection:
        _recompute(ctx, ns, name, previous, projection)
    release_waiters(ctx, str(key))  # pods that waited for these groups take them now


def _recompute(ctx: Context, ns: str, name: str, old: dict, new: dict | None) -> None:
    """The watcher's fan-out compares consecutive stored versions; ports and peer groups
    follow the last *applied* one, which a malformed version in between hides from it. Run
    the keys of what `old` touched (no-ops where nothing changed)."""
    ctx.enqueue(fanout.policy_pods(ns, name, old, new, ctx.store)
                + fanout.peer_keys(ns, name, old))


def _require_peers(ctx: Context, waiter: str, shared: list[tuple[str, Obj]]) -> None:
    """Rules name peer groups: make sure the ones this policy names exist first."""
    missing = [key for key, group in shared if group.address not in AppliedSet(ctx.redis, key)]
    if missing:
        for key in missing:
            ctx.redis.sadd(f"ckm:waiting:{key}", waiter)
        ctx.enqueue(missing)
        raise NotReady(f"peer groups not made yet (waiting for {', '.join(missing)})")


@register("peer", "ckm.sync_peer_group", "ckm.policy")
def sync_peer_group(ctx: Context, key: Key) -> None:
    """A shared peer group exists while some valid policy names its selectors. Deleting it
    is refused while ports still carry it; it is retried until their sgs keys have run."""
    applied = AppliedSet(ctx.redis, str(key))
    entry = in_force.index(ctx).peers.get(str(key))
    if entry is None:
        try:
            apply(ctx.contrail, [], applied)
        except RefsExist as exc:  # ports drop it as their sgs keys run; then this succeeds
            raise NotReady(f"peer group still carried by ports: {exc}") from exc
        return
    if key.namespace:
        require_project(ctx, key.namespace)
    else:
        require(ctx, CLUSTER_KEY, project(ctx.settings, "default"), "the cluster's project")
    apply(ctx.contrail, [entry[1]], applied)
    release_waiters(ctx, str(key))  # policies and pods that waited for this group


def pod_group_state(ctx: Context, namespace: str, projection: dict, *, only_existing: bool,
                    waiter: str | None = None):
    """(refs, complete): the pod's group refs, and whether every group it should carry
    exists (with `only_existing`, the ones not made yet are left out of the refs)."""
    ns = ctx.store.get("Namespace", "", namespace) or {}
    chosen = in_force.index(ctx).pod_groups(namespace, projection, ns.get("labels") or {})
    owned = [(group, owner) for group, owner in chosen if owner is not None]
    pipe = ctx.redis.pipeline(transaction=False)  # one round trip for every group's check
    for group, owner in owned:
        pipe.hexists(f"ckm:applied:{owner}", "/".join(group.address))
    made = {group.uuid for (group, _), exists in zip(owned, pipe.execute(), strict=True)
            if exists}
    ready, complete = [], True
    for group, owner in chosen:
        if owner is not None and group.uuid not in made:
            if only_existing:
                complete = False
                continue
            if waiter:
                ctx.redis.sadd(f"ckm:waiting:{owner}", waiter)
                # its owner may have no reason of its own to run (a fan-out that missed a
                # change): the group it lacks is one
                ctx.enqueue([owner])
            raise NotReady(f"security group {group.fq_name[-1]} does not exist yet "
                           f"(waiting for {owner})")
        ready.append((group, owner))
    return policy.refs_of(ready), complete


def memo_key(namespace: str, name: str) -> str:
    return f"ckm:sgs:{namespace}/{name}"


def remember(ctx: Context, namespace: str, name: str, refs) -> None:
    ctx.redis.set(memo_key(namespace, name), json.dumps(sorted(r.uuid for r in refs)))


def forget(ctx: Context, namespace: str, name: str) -> None:
    """The port's group refs are unknown: its sgs key must write them."""
    ctx.redis.delete(memo_key(namespace, name))


@register("sgs", "ckm.recompute_sgs", "ckm.policy")
def recompute_sgs(ctx: Context, key: Key) -> None:
    ns, name = key.namespace, key.name
    projection = ctx.store.get("Pod", ns, name)
    if not pod.managed(ctx.settings, ns, projection):
        ctx.redis.delete(memo_key(ns, name))
        return
    place = pod.placement(ctx.settings, ns, projection,
                          ctx.store.get("Namespace", "", ns))
    port = pod.vmi(ctx.settings, ns, name, projection["uid"], place.network, ())
    require(ctx, f"port/{ns}/{name}", port, "the pod's port", waiter=str(key))
    refs, _ = pod_group_state(ctx, ns, projection, only_existing=False, waiter=str(key))
    wanted = json.dumps(sorted(r.uuid for r in refs))
    if ctx.redis.get(memo_key(ns, name)) == wanted:
        return
    ctx.contrail.update("virtual-machine-interface", port.uuid, {
        "security_group_refs": [r.wire(with_attr=False) for r in refs]})
    ctx.redis.set(memo_key(ns, name), wanted)
