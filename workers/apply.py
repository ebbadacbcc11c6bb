"""The one thin layer that writes to Contrail: make the desired objects exist, remove the rest.

Reconcilers hand in `desired` (creation order) and `possible` (everything the key could own,
in creation order). What a key has created is remembered in Redis (`ckm:applied:<key>`), so
cleanup deletes exactly the objects that exist and are no longer desired, by uuid, without
listing or probing: one call per change. Objects made while that memory was lost (a flushed
Redis) are found by the periodic GC through their owner annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from contrail.client import ContrailClient
from contrail.ensure import delete_if_exists, ensure
from tasks.model import Obj


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

    def add(self, obj: Obj) -> None:
        self.redis.sadd(self.name, f"{obj.type}/{obj.uuid}")

    def remove(self, obj: Obj) -> None:
        self.redis.srem(self.name, f"{obj.type}/{obj.uuid}")


def apply(client: ContrailClient, desired: list[Obj], possible: list[Obj],
          applied: AppliedSet) -> Applied:
    result = Applied()
    known = applied.members()
    for obj in desired:
        outcome = ensure(client, obj.type, obj.body(), annotations=obj.annotations)
        if obj.address not in known:
            applied.add(obj)
        if outcome.action == "created":
            result.created.append(obj.uuid)
        elif outcome.action == "updated":
            result.updated.append(obj.uuid)
    wanted = {obj.address for obj in desired}
    for obj in reversed(possible):
        if obj.address in known and obj.address not in wanted:
            if delete_if_exists(client, obj.type, obj.uuid):
                result.deleted.append(obj.uuid)
            applied.remove(obj)
    return result
