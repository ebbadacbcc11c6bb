"""NetworkPolicy keys: `policy/ns/name` (the policy's security groups), `peer/[ns/]hash` (a
peer group shared by every policy naming the same selectors) and `sgs/ns/pod` ("recompute
SGs": the pod port's group refs). Pod and label churn only ever runs the last, which costs at
most one Contrail call (a PUT of the port's group list), none if unchanged."""

from __future__ import annotations

import json

from contrail.errors import RefsExist
from tasks import pod, policy
from tasks.keys import Key
from tasks.model import Obj
from tasks.namespace import project
from tasks.outcomes import BadInput, NotReady
from workers.apply import AppliedSet, apply
from workers.context import Context
from workers.reconcilers import release_waiters, require, require_project
from workers.syncs import CLUSTER_KEY, register

_parsed: dict[str, policy.Policy | None] = {}  # fingerprint -> parsed policy (per process)
_index: tuple[frozenset, policy.PolicyIndex | None] = (frozenset(), None)


def index(ctx: Context) -> policy.PolicyIndex:
    """The policy index of the current set of policies (rebuilt when any policy changes)."""
    global _index
    current = frozenset(ctx.store.hashes("NetworkPolicy").items())
    if _index[1] is None or _index[0] != current:
        _index = (current, policy.PolicyIndex(ctx.settings, policies(ctx)))
    return _index[1]


def policies(ctx: Context) -> list[policy.Policy]:
    """Every valid policy in the store; a malformed one is its own key's failed sync and is
    left out here, so other objects keep syncing."""
    out = []
    fingerprints = ctx.store.hashes("NetworkPolicy")
    missing = [f for f, fp in fingerprints.items() if fp not in _parsed]
    if missing:
        projections = ctx.store.get_many("NetworkPolicy", [tuple(f.split("/", 1))
                                                            for f in missing])
        for field, projection in zip(missing, projections, strict=True):
            if projection is None:
                continue
            namespace, name = field.split("/", 1)
            try:
                _parsed[fingerprints[field]] = policy.parse_policy(namespace, name, projection)
            except BadInput:
                _parsed[fingerprints[field]] = None
    for field in sorted(fingerprints):
        parsed = _parsed.get(fingerprints[field])
        if parsed is not None:
            out.append(parsed)
    return out


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
    if projection is None:
        apply(ctx.contrail, [], applied)
        ctx.store.forget_tombstone("NetworkPolicy", ns, name)
        return
    parsed = policy.parse_policy(ns, name, projection)
    require_project(ctx, ns)
    _require_peers(ctx, str(key), policy.shared_peers(ctx.settings, parsed))
    selected = [p for _, p in ctx.store.in_namespace("Pod", ns)
                if pod.managed(ctx.settings, ns, p) and parsed.selects(ns, p.get("labels") or {})]
    numbers = (policy.peer_numbers(parsed, _candidates(ctx)) if policy.egress_named(parsed)
               else {})
    apply(ctx.contrail, policy.groups(ctx.settings, parsed, selected, numbers), applied)
    release_waiters(ctx, str(key))  # pods that waited for these groups take them now


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
    entry = index(ctx).peers.get(str(key))
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


def pod_group_refs(ctx: Context, namespace: str, projection: dict, *, only_existing: bool,
                   waiter: str | None = None):
    """The pod's group refs; with `only_existing`, groups not made yet are left out (the
    pod's sgs key adds them once their policy key has made them)."""
    ns = ctx.store.get("Namespace", "", namespace) or {}
    chosen = index(ctx).pod_groups(namespace, projection, ns.get("labels") or {})
    owned = [(group, owner) for group, owner in chosen if owner is not None]
    pipe = ctx.redis.pipeline(transaction=False)  # one round trip for every group's check
    for group, owner in owned:
        pipe.hexists(f"ckm:applied:{owner}", "/".join(group.address))
    made = {group.uuid for (group, _), exists in zip(owned, pipe.execute(), strict=True)
            if exists}
    ready = []
    for group, owner in chosen:
        if owner is not None and group.uuid not in made:
            if only_existing:
                continue
            if waiter:
                ctx.redis.sadd(f"ckm:waiting:{owner}", waiter)
            raise NotReady(f"security group {group.fq_name[-1]} does not exist yet")
        ready.append((group, owner))
    return policy.refs_of(ready)


def memo_key(namespace: str, name: str) -> str:
    return f"ckm:sgs:{namespace}/{name}"


def remember(ctx: Context, namespace: str, name: str, refs) -> None:
    ctx.redis.set(memo_key(namespace, name), json.dumps(sorted(r.uuid for r in refs)))


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
    refs = pod_group_refs(ctx, ns, projection, only_existing=False, waiter=str(key))
    wanted = json.dumps(sorted(r.uuid for r in refs))
    if ctx.redis.get(memo_key(ns, name)) == wanted:
        return
    ctx.contrail.update("virtual-machine-interface", port.uuid, {
        "security_group_refs": [r.wire(with_attr=False) for r in refs]})
    ctx.redis.set(memo_key(ns, name), wanted)
