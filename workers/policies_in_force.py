"""Which NetworkPolicies are in force: one PolicyIndex per worker process, rebuilt on change.

Each stored policy is in force as stored, except one whose stored version is malformed (its
own key's failed sync): the last version of it that compiled and was applied (`LAST_GOOD`,
same uid) stays in force instead, so a bad edit never opens what was isolated. Parsed
versions are cached by the fingerprint of the projection they were parsed from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tasks import policy
from tasks.outcomes import BadInput
from watcher.store import canonical, fingerprint
from workers.context import Context

KIND = "NetworkPolicy"
LAST_GOOD = "ckm:policy:good"  # "ns/name" -> canonical JSON of the last version applied


@dataclass(frozen=True)
class _Version:
    parsed: policy.Policy | None  # None: malformed
    uid: str


_versions: dict[str, _Version] = {}  # fingerprint -> parsed version (per process)
_index: tuple[tuple, policy.PolicyIndex | None] = ((), None)


def index(ctx: Context) -> policy.PolicyIndex:
    """The index of the policies in force (rebuilt when any of them changes)."""
    global _index
    stored = _stored(ctx)
    good = _good_of_malformed(ctx, stored)
    current = (frozenset(stored.items()), frozenset(good.items()))
    if _index[1] is None or _index[0] != current:
        _index = (current, policy.PolicyIndex(ctx.settings, _in_force(stored, good)))
    return _index[1]


def policies(ctx: Context) -> list[policy.Policy]:
    stored = _stored(ctx)
    return _in_force(stored, _good_of_malformed(ctx, stored))


# --- the last good version, kept by the policy key -------------------------------------------
def last_good(ctx: Context, namespace: str, name: str) -> dict | None:
    text = ctx.redis.hget(LAST_GOOD, f"{namespace}/{name}")
    return json.loads(text) if text else None


def remember_good(ctx: Context, namespace: str, name: str, projection: dict) -> dict | None:
    """Record the version just applied; returns the one recorded before it."""
    field = f"{namespace}/{name}"
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hget(LAST_GOOD, field)
    pipe.hset(LAST_GOOD, field, canonical(projection))
    previous, _ = pipe.execute()
    return json.loads(previous) if previous else None


def forget_good(ctx: Context, namespace: str, name: str) -> None:
    ctx.redis.hdel(LAST_GOOD, f"{namespace}/{name}")


# --- internals --------------------------------------------------------------------------------
def _parse(field: str, projection: dict) -> policy.Policy | None:
    namespace, name = field.split("/", 1)
    try:
        return policy.parse_policy(namespace, name, projection)
    except BadInput:
        return None


def _stored(ctx: Context) -> dict[str, str]:
    """"ns/name" -> fingerprint of each stored policy, parsing the versions not seen yet."""
    stored = ctx.store.hashes(KIND)
    missing = [f for f, fp in stored.items() if fp not in _versions]
    if not missing:
        return stored
    if len(_versions) > 2 * len(stored) + 100:  # forget versions no longer stored
        live = set(stored.values())
        for fp in [fp for fp in _versions if fp not in live]:
            del _versions[fp]
    for field, projection in zip(missing, ctx.store.get_many(
            KIND, [tuple(f.split("/", 1)) for f in missing]), strict=True):
        if projection is None:  # deleted meanwhile
            del stored[field]
            continue
        # cached under what was read, which may be newer than the hash listed a moment ago
        fp = fingerprint(projection)
        if fp not in _versions:
            _versions[fp] = _Version(_parse(field, projection), projection.get("uid", ""))
        stored[field] = fp
    return stored


def _good_of_malformed(ctx: Context, stored: dict[str, str]) -> dict[str, str]:
    malformed = sorted(f for f, fp in stored.items() if _versions[fp].parsed is None)
    if not malformed:
        return {}
    out = {}
    for field, text in zip(malformed, ctx.redis.hmget(LAST_GOOD, malformed), strict=True):
        # only the same incarnation: a policy re-created malformed starts from nothing
        if text and json.loads(text).get("uid", "") == _versions[stored[field]].uid:
            out[field] = text
    return out


def _in_force(stored: dict[str, str], good: dict[str, str]) -> list[policy.Policy]:
    out = []
    for field in sorted(stored):
        parsed = _versions[stored[field]].parsed
        if parsed is None and field in good:
            parsed = _parse(field, json.loads(good[field]))
        if parsed is not None:
            out.append(parsed)
    return out
