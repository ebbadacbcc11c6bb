"""The one thin layer that writes to Contrail: make the desired objects exist, remove the rest.

Reconcilers hand in `desired` (creation order) and `possible` (everything the key could own);
objects in `possible` but not in `desired` are deleted, in reverse order, by uuid. Nothing is
listed, so the cost is one call per object in the steady state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contrail.client import ContrailClient
from contrail.ensure import delete_if_exists, ensure
from tasks.model import Obj


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def apply(client: ContrailClient, desired: list[Obj], possible: list[Obj] = ()) -> Applied:
    result = Applied()
    for obj in desired:
        outcome = ensure(client, obj.type, obj.body(), annotations=obj.annotations)
        if outcome.action == "created":
            result.created.append(obj.uuid)
        elif outcome.action == "updated":
            result.updated.append(obj.uuid)
    wanted = {obj.address for obj in desired}
    for obj in reversed(list(possible)):
        if obj.address not in wanted and delete_if_exists(client, obj.type, obj.uuid):
            result.deleted.append(obj.uuid)
    return result
