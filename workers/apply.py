"""The one thin layer that writes to Contrail: make the desired objects exist, remove the rest.

Reconcilers hand in `desired`, in creation order. What a key has created is remembered in
Redis (`ckm:applied:<key>`), so cleanup deletes exactly the objects that exist and are no
longer desired, by uuid and in dependency order, without listing or probing: one call per
change. Objects made while that memory was lost (a flushed
Redis) are found by the periodic GC through their owner annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from contrail.client import ContrailClient
from contrail.ensure import delete_if_exists, ensure
from tasks.model import Obj, delete_rank


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


class AppliedSet:
    """The Contrail objects (type/uuid) one key has made and not yet deleted."""

    def __init__(self, client: redis.Redis, key: str):
        self.redis, self.name = client, f"ckm:applied:{key}"

    def members(self) -> set[tuple[str, str]]:
        return {tuple(m.split("/", 1)) for m in self.redis.smembers(self.name)}

    def __contains__(self, address: tuple[str, str]) -> bool:
        return bool(self.redis.sismember(self.name, "/".join(address)))

    def add(self, address: tuple[str, str]) -> None:
        self.redis.sadd(self.name, "/".join(address))

    def remove(self, address: tuple[str, str]) -> None:
        self.redis.srem(self.name, "/".join(address))


def apply(client: ContrailClient, desired: list[Obj], applied: AppliedSet) -> Applied:
    """Delete what the key made and no longer wants (first: a replaced object may hold the
    name its successor needs), then create or update the desired objects in order."""
    result = Applied()
    known = applied.members()
    wanted = {obj.address for obj in desired}
    for type_, uuid in sorted(known - wanted, key=lambda a: delete_rank(a[0])):
        if delete_if_exists(client, type_, uuid):
            result.deleted.append(uuid)
        applied.remove((type_, uuid))
    for obj in desired:
        outcome = ensure(client, obj.type, obj.body(), annotations=obj.annotations,
                         create_only=obj.create_only)
        if obj.address not in known:
            applied.add(obj.address)
        if outcome.action == "created":
            result.created.append(obj.uuid)
        elif outcome.action == "updated":
            result.updated.append(obj.uuid)
    return result
