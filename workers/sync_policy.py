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
from workers.apply import AppliedSet, apply
from workers.context import Context
from workers.reconcilers import release_waiters, require, require_project
from workers.syncs import CLUSTER_KEY, register

_parsed: dict[str, policy.Policy | None] = {}  # fingerprint -> parsed policy (per process)
_index: tuple[tuple, policy.PolicyIndex | None] = ((), None)
# "ns/name" -> the last projection of the policy that compiled and was applied. A malformed
# version is a failed sync and is not applied: the last good one stays in force (for its
# groups and for the ports that carry them), so bad input never opens what was isolated.
LAST_GOOD = "ckm:policy:good"


def index(ctx: Context) -> policy.PolicyIndex:
    """The policy index of the current set of policies (rebuilt when any policy changes)."""
    global _index
    hashes = ctx.store.hashes("NetworkPolicy")
    _parse_new(ctx, hashes)
    good = _last_good_of_malformed(ctx, hashes)
    current = (frozenset(hashes.items()), frozenset(good.items()))
    if _index[1] is None or _index[0] != current:
        _index = (current, policy.PolicyIndex(ctx.settings, _in_force(hashes, good)))
    return _index[1]


def policies(ctx: Context) -> list[policy.Policy]:
    """Every policy in force: each stored policy, or, for one whose current version is
    malformed (its own key's failed sync), the last version of it that compiled."""
    hashes = ctx.store.hashes("NetworkPolicy")
    _parse_new(ctx, hashes)
    return _in_force(hashes, _last_good_of_malformed(ctx, hashes))


def _parse(namespace: str, name: str, projection: dict) -> policy.Policy | None:
    try:
        return policy.parse_policy(namespace, name, projection)
    except BadInput:
        return None


def _parse_new(ctx: Context, hashes: dict[str, str]) -> None:
    missing = [f for f, fp in hashes.items() if fp not in _parsed]
    if not missing:
        return
    if len(_parsed) > 2 * len(hashes) + 100:  # forget versions no longer stored
        live = set(hashes.values())
        for fp in [fp for fp in _parsed if fp not in live]:
            del _parsed[fp]
    projections = ctx.store.get_many("NetworkPolicy", [tuple(f.split("/", 1)) for f in missing])
    for field, projection in zip(missing, projections, strict=True):
        if projection is not None:
            _parsed[hashes[field]] = _parse(*field.split("/", 1), projection)


def _last_good_of_malformed(ctx: Context, hashes: dict[str, str]) -> dict[str, str]:
    malformed = sorted(f for f, fp in hashes.items() if fp in _parsed and _parsed[fp] is None)
    if not malformed:
        return {}
    return {f: text for f, text in zip(malformed, ctx.redis.hmget(LAST_GOOD, malformed),
                                       strict=True) if text}


def _in_force(hashes: dict[str, str], good: dict[str, str]) -> list[policy.Policy]:
    out = []
    for field in sorted(hashes):
        parsed = _parsed.get(hashes[field])
        if parsed is None and field in good:
            parsed = _parse(*field.split("/", 1), json.loads(good[field]))
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
        _after_skipped_versions(ctx, key, None)
        apply(ctx.contrail, [], applied)
        ctx.store.forget_tombstone("NetworkPolicy", ns, name)
        ctx.redis.hdel(LAST_GOOD, f"{ns}/{name}")
        return
    parsed = policy.parse_policy(ns, name, projection)
    require_project(ctx, ns)
    _require_peers(ctx, str(key), policy.shared_peers(ctx.settings, parsed))
    selected = [p for _, p in ctx.store.in_namespace("Pod", ns)
                if pod.managed(ctx.settings, ns, p) and parsed.selects(ns, p.get("labels") or {})]
    numbers = (policy.peer_numbers(parsed, _candidates(ctx)) if policy.egress_named(parsed)
               else {})
    apply(ctx.contrail, policy.groups(ctx.settings, parsed, selected, numbers), applied)
    _after_skipped_versions(ctx, key, projection)
    ctx.redis.hset(LAST_GOOD, f"{ns}/{name}", json.dumps(projection, sort_keys=True))
    release_waiters(ctx, str(key))  # pods that waited for these groups take them now


def _after_skipped_versions(ctx: Context, key: Key, projection: dict | None) -> None:
    """After malformed versions (a bad-input failure of this key), the watcher's fan-out
    compared a malformed version with this one, but ports still follow the last good one:
    recompute the groups of the pods that one selected or peered."""
    failure = ctx.failures.get(str(key))
    if failure is None or not failure.permanent:
        return
    good = ctx.redis.hget(LAST_GOOD, f"{key.namespace}/{key.name}")
    if good:
        ctx.enqueue(fanout.policy_pods(key.namespace, key.name, json.loads(good), projection,
                                       ctx.store))


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
