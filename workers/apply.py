"""The one thin layer that writes to Contrail: make the desired objects exist, remove the rest.

Reconcilers hand in `desired`, in creation order. What a key has written is remembered in
Redis (`ckm:applied:<key>`: address -> fingerprint of the body, and the resync epoch it was
verified in). So:
- an object written before with the same body costs no call at all (a pod update that changes
  nothing relevant, a service with one changed endpoint among a thousand);
- cleanup deletes exactly what exists and is no longer desired, by uuid, in dependency order;
- a full resync bumps the epoch, so each object is verified against Contrail once again
  (drift repaired). Objects made while that memory was lost are found by GC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import redis

from contrail.client import ContrailClient
from contrail.ensure import delete_if_exists, ensure
from tasks.model import Obj, delete_rank
from workers import fencing

EPOCH = "ckm:epoch"
# key -> the epoch a key's last good run verified its objects in; a resync pass skips the keys
# verified in its own epoch (they ran during the pass). Emptied when a pass bumps the epoch.
VERIFIED = "ckm:verified"


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def merge(self, later: Applied) -> Applied:
        """Two applies of one key in a row, as one."""
        return Applied(self.created + later.created, self.updated + later.updated,
                       self.deleted + later.deleted, self.unchanged + later.unchanged)


def fingerprint(obj: Obj) -> str:
    text = json.dumps([obj.body(), obj.annotations], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class AppliedSet:
    """The Contrail objects one key has written: "type/uuid" -> "fingerprint:epoch"."""

    def __init__(self, client: redis.Redis, key: str):
        self.redis, self.name = client, f"ckm:applied:{key}"

    def entries(self) -> dict[tuple[str, str], str]:
        return {tuple(k.split("/", 1)): v for k, v in self.redis.hgetall(self.name).items()}

    def entries_and_epoch(self) -> tuple[dict[tuple[str, str], str], str]:
        raw, epoch = self.redis.pipeline(transaction=False).hgetall(self.name).get(
            EPOCH).execute()
        return {tuple(k.split("/", 1)): v for k, v in raw.items()}, str(epoch or 0)

    def __contains__(self, address: tuple[str, str]) -> bool:
        return bool(self.redis.hexists(self.name, "/".join(address)))

    def record(self, address: tuple[str, str], stamp: str) -> None:
        self.redis.hset(self.name, "/".join(address), stamp)

    def remove(self, address: tuple[str, str]) -> None:
        self.redis.hdel(self.name, "/".join(address))


def apply(client: ContrailClient, desired: list[Obj], applied: AppliedSet) -> Applied:
    """Delete what the key made and no longer wants (first: a replaced object may hold the
    name its successor needs), then create or update the desired objects in order."""
    result = Applied()
    known, epoch = applied.entries_and_epoch()  # one round trip
    run = fencing.current()
    if run is not None:
        run.verified_in(epoch)
    wanted = {obj.address for obj in desired}
    for type_, uuid in sorted(set(known) - wanted, key=lambda a: delete_rank(a[0])):
        if delete_if_exists(client, type_, uuid):
            result.deleted.append(uuid)
        applied.remove((type_, uuid))
    for obj in desired:
        stamp = f"{fingerprint(obj)}:{epoch}"
        if known.get(obj.address) == stamp:
            result.unchanged += 1
            continue
        outcome = ensure(client, obj.type, obj.body(), annotations=obj.annotations,
                         create_only=obj.create_only, adopt=obj.adopt)
        applied.record(obj.address, stamp)
        if outcome.action == "created":
            result.created.append(obj.uuid)
        elif outcome.action == "updated":
            result.updated.append(obj.uuid)
    return result
